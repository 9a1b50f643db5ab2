"""Golden cases of conformance/rules/smime.py: the subscriber profile (S-01..S-20, J-01).

Each case builds a document, judges it with one rule and says whether the rule must fail (with which
severity) or pass (docs/architecture.md, house habit 7; tests/conformance/golden.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from jitsuin.ca.keys import KeyType
from jitsuin.conformance.findings import Severity, Status
from tests.conformance.golden import (
    DAY,
    Case,
    _critical_ski,
    _policies,
    _subject_with,
    case,
    case_id,
    cases_in,
    check,
)


@case("S-18")
def pkilint_pkix_finding_on_an_smime_leaf(f):
    # X-13 leaves S/MIME leaves to S-18, whose pkilint linter runs the RFC 5280 validators too.
    bad, ca = _critical_ski(f, f.leaf())
    assert f.judge("X-13", bad, extra=[ca.cert]).status is Status.NA
    return f.judge("S-18", bad, extra=[ca.cert])


def _leaf_variant(f, **kwargs):
    ca = f.ca()
    return f.variant(f.leaf(), ca.key, **kwargs), ca


@case("S-01")
def valid_400_days(f):
    leaf = f.leaf()
    bad, ca = _leaf_variant(f, not_after=leaf.not_valid_before_utc + dt.timedelta(days=400))
    return f.judge("S-01", bad, context=f.configured(), extra=[ca.cert])


@case("S-01")
def valid_395_days_with_configuration(f):
    leaf = f.leaf()
    bad, ca = _leaf_variant(f, not_after=leaf.not_valid_before_utc + dt.timedelta(days=395))
    return f.judge("S-01", bad, context=f.configured(), extra=[ca.cert])


@case("S-01", "pass")
def valid_395_days_without_configuration(f):
    leaf = f.leaf()
    shorter, ca = _leaf_variant(f, not_after=leaf.not_valid_before_utc + dt.timedelta(days=395))
    return f.judge("S-01", shorter, extra=[ca.cert])


@case("S-02")
def p384_issuer_signs_with_sha256(f):
    ca = f.ca()
    bad = f.variant(f.leaf(), ca.key, algorithm=hashes.SHA256())
    return f.judge("S-02", bad, extra=[ca.cert])


@case("S-02")
def rsa_issuer_signs_with_sha384(f):
    ca = f.ca(KeyType.RSA_3072, number=3)
    leaf = f.leaf(ca=ca)
    return f.judge("S-02", f.variant(leaf, ca.key, algorithm=hashes.SHA384()), extra=[ca.cert])


@case("S-03")
def p521_subscriber_key(f):

    bad, ca = _leaf_variant(f, public_key=ec.generate_private_key(ec.SECP521R1()).public_key())
    return f.judge("S-03", bad, extra=[ca.cert])


@case("S-03")
def rsa_exponent_3(f):
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    ca = f.ca()
    bad = f.variant(f.leaf(key_type=KeyType.RSA_2048), ca.key, public_key=key.public_key())
    return f.judge("S-03", bad, extra=[ca.cert])


@case("S-04")
def strict_policy_oid(f):
    cp = f"{f.policy.policy_arc}.1.1"
    bad, ca = _leaf_variant(
        f, replace={x509.CertificatePolicies: (_policies("2.23.140.1.5.4.3", cp), False)}
    )
    return f.judge("S-04", bad, context=f.configured(), extra=[ca.cert])


@case("S-04")
def any_policy(f):
    cp = f"{f.policy.policy_arc}.1.1"
    bad, ca = _leaf_variant(
        f,
        replace={
            x509.CertificatePolicies: (_policies("2.23.140.1.5.4.2", cp, "2.5.29.32.0"), False)
        },
    )
    return f.judge("S-04", bad, extra=[ca.cert])


@case("S-04")
def wrong_profile_cp_oid(f):
    other = f"{f.policy.policy_arc}.1.2"  # document-manager's, on a general certificate
    bad, ca = _leaf_variant(
        f, replace={x509.CertificatePolicies: (_policies("2.23.140.1.5.4.2", other), False)}
    )
    return f.judge("S-04", bad, context=f.configured(profile="general"), extra=[ca.cert])


@case("S-05")
def server_auth_purpose(f):
    eku = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.SERVER_AUTH]
    )
    bad, ca = _leaf_variant(f, replace={x509.ExtendedKeyUsage: (eku, False)})
    return f.judge("S-05", bad, extra=[ca.cert])


@case("S-05")
def purposes_differ_from_the_profile(f):
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION])
    bad, ca = _leaf_variant(f, replace={x509.ExtendedKeyUsage: (eku, False)})
    return f.judge("S-05", bad, context=f.configured(), extra=[ca.cert])


@case("S-05", "pass")
def email_protection_only_without_configuration(f):
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION])
    fine, ca = _leaf_variant(f, replace={x509.ExtendedKeyUsage: (eku, False)})
    return f.judge("S-05", fine, extra=[ca.cert])


@case("S-06")
def signing_only_with_configuration(f):
    ku = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    bad, ca = _leaf_variant(f, replace={x509.KeyUsage: (ku, True)})
    return f.judge("S-06", bad, context=f.configured(), extra=[ca.cert])


@case("S-06", "pass")
def signing_only_without_configuration(f):
    ku = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    fine, ca = _leaf_variant(f, replace={x509.KeyUsage: (ku, True)})
    return f.judge("S-06", fine, extra=[ca.cert])


@case("S-06")
def data_encipherment(f):
    ku = x509.KeyUsage(True, False, False, True, False, False, False, False, False)
    bad, ca = _leaf_variant(f, replace={x509.KeyUsage: (ku, True)})
    return f.judge("S-06", bad, extra=[ca.cert])


@case("S-06", severity=Severity.WARNING)
def key_usage_not_critical_warns(f):
    ku = f.leaf().extensions.get_extension_for_class(x509.KeyUsage).value
    bad, ca = _leaf_variant(f, replace={x509.KeyUsage: (ku, False)})
    return f.judge("S-06", bad, extra=[ca.cert])


@case("S-07")
def dns_name_in_san(f):
    san = x509.SubjectAlternativeName(
        [x509.RFC822Name("hanako.yamada@example.com"), x509.DNSName("example.com")]
    )
    bad, ca = _leaf_variant(f, replace={x509.SubjectAlternativeName: (san, False)})
    return f.judge("S-07", bad, extra=[ca.cert])


@case("S-07")
def san_critical(f):
    san = f.leaf().extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    bad, ca = _leaf_variant(f, replace={x509.SubjectAlternativeName: (san, True)})
    return f.judge("S-07", bad, extra=[ca.cert])


@case("S-08")
def email_address_not_in_san(f):
    subject = _subject_with(f, x509.NameAttribute(NameOID.EMAIL_ADDRESS, "other@example.com"))
    bad, ca = _leaf_variant(f, subject=subject)
    return f.judge("S-08", bad, extra=[ca.cert])


@case("S-08", "pass")
def email_address_in_san(f):
    subject = _subject_with(
        f, x509.NameAttribute(NameOID.EMAIL_ADDRESS, "hanako.yamada@example.com")
    )
    fine, ca = _leaf_variant(f, subject=subject)
    return f.judge("S-08", fine, extra=[ca.cert])


@case("S-09")
def organization_in_subject(f):
    bad, ca = _leaf_variant(
        f, subject=_subject_with(f, x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ACME"))
    )
    return f.judge("S-09", bad, extra=[ca.cert])


@case("S-09")
def locality_with_configuration(f):
    bad, ca = _leaf_variant(
        f, subject=_subject_with(f, x509.NameAttribute(NameOID.LOCALITY_NAME, "Tokyo"))
    )
    return f.judge("S-09", bad, context=f.configured(), extra=[ca.cert])


@case("S-10")
def pseudonym_in_subject(f):
    bad, ca = _leaf_variant(
        f, subject=_subject_with(f, x509.NameAttribute(NameOID.PSEUDONYM, "hy"))
    )
    return f.judge("S-10", bad, extra=[ca.cert])


@case("S-10")
def no_personal_name(f):
    subject = _subject_with(f, drop=(NameOID.GIVEN_NAME, NameOID.SURNAME))
    bad, ca = _leaf_variant(f, subject=subject)
    return f.judge("S-10", bad, extra=[ca.cert])


@case("S-10")
def name_not_romanized_with_configuration(f):
    subject = _subject_with(f, x509.NameAttribute(NameOID.SURNAME, "山田"), drop=(NameOID.SURNAME,))
    bad, ca = _leaf_variant(f, subject=subject)
    return f.judge("S-10", bad, context=f.configured(), extra=[ca.cert])


@case("S-11", severity=Severity.WARNING)
def common_name_is_not_the_name(f):
    subject = _subject_with(
        f, x509.NameAttribute(NameOID.COMMON_NAME, "H. Yamada"), drop=(NameOID.COMMON_NAME,)
    )
    bad, ca = _leaf_variant(f, subject=subject)
    return f.judge("S-11", bad, extra=[ca.cert])


@case("S-11", severity=Severity.WARNING)
def common_name_in_the_other_order(f):
    subject = _subject_with(
        f, x509.NameAttribute(NameOID.COMMON_NAME, "Yamada Hanako"), drop=(NameOID.COMMON_NAME,)
    )
    bad, ca = _leaf_variant(f, subject=subject)
    return f.judge("S-11", bad, context=f.configured(), extra=[ca.cert])


@case("S-12")
def unknown_qualification_group(f):
    title = x509.NameAttribute(NameOID.TITLE, "Astronaut")
    bad, ca = _leaf_variant(f, subject=_subject_with(f, title, drop=(NameOID.TITLE,)))
    return f.judge("S-12", bad, context=f.configured(), extra=[ca.cert])


@case("S-12")
def no_title(f):
    bad, ca = _leaf_variant(f, subject=_subject_with(f, drop=(NameOID.TITLE,)))
    return f.judge("S-12", bad, extra=[ca.cert])


@case("S-13")
def number_does_not_match_the_group(f):
    number = x509.NameAttribute(NameOID.SERIAL_NUMBER, "lower-case-not-allowed")
    bad, ca = _leaf_variant(f, subject=_subject_with(f, number, drop=(NameOID.SERIAL_NUMBER,)))
    return f.judge("S-13", bad, context=f.configured(), extra=[ca.cert])


@case("S-13")
def no_serial_number(f):
    bad, ca = _leaf_variant(f, subject=_subject_with(f, drop=(NameOID.SERIAL_NUMBER,)))
    return f.judge("S-13", bad, extra=[ca.cert])


@case("S-14")
def subject_directory_attributes(f):
    # SEQUENCE { Attribute { dateOfBirth (RFC 3739), SET { GeneralizedTime 19850401000000Z } } }
    value = "301f301d06082b06010505070901" + "3111180f" + b"19850401000000Z".hex()
    sda = x509.UnrecognizedExtension(ObjectIdentifier("2.5.29.9"), bytes.fromhex(value))
    bad, ca = _leaf_variant(f, add=[(sda, False)])
    return f.judge("S-14", bad, extra=[ca.cert])


@case("S-14")
def private_extension_outside_the_arc(f):
    private = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    bad, ca = _leaf_variant(f, add=[(private, False)])
    return f.judge("S-14", bad, context=f.configured(), extra=[ca.cert])


@case("S-14", "pass")
def private_extension_under_the_arc(f):
    private = x509.UnrecognizedExtension(
        ObjectIdentifier(f"{f.policy.policy_arc}.5.1"), b"\x05\x00"
    )
    fine, ca = _leaf_variant(f, add=[(private, False)])
    return f.judge("S-14", fine, context=f.configured(), extra=[ca.cert])


@case("S-15")
def https_crl_distribution_point(f):
    dp = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier("https://pki.example.com/crl/1.crl")],
                None,
                None,
                None,
            )
        ]
    )
    bad, ca = _leaf_variant(f, replace={x509.CRLDistributionPoints: (dp, False)})
    return f.judge("S-15", bad, extra=[ca.cert])


@case("S-15")
def other_hosts_urls_with_configuration(f):
    dp = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier("http://elsewhere.example/1.crl")], None, None, None
            )
        ]
    )
    bad, ca = _leaf_variant(f, replace={x509.CRLDistributionPoints: (dp, False)})
    return f.judge("S-15", bad, context=f.configured(), extra=[ca.cert])


@case("S-15")
def no_ocsp_url(f):
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                x509.AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier("http://pki.example.com/ca/1.crt"),
            )
        ]
    )
    bad, ca = _leaf_variant(f, replace={x509.AuthorityInformationAccess: (aia, False)})
    return f.judge("S-15", bad, extra=[ca.cert])


@case("S-16")
def outlives_its_issuer(f):
    ca = f.ca()
    end = ca.cert.not_valid_after_utc
    bad = f.variant(
        f.leaf(),
        ca.key,
        not_before=end - dt.timedelta(days=100),
        not_after=end + dt.timedelta(days=295),
    )
    return f.judge("S-16", bad, extra=[ca.cert])


@case("S-17")
def issued_after_the_cutoff(f):
    ca = f.ca()
    end = ca.cert.not_valid_after_utc
    late = f.variant(f.leaf(), ca.key, not_before=end - dt.timedelta(days=200), not_after=end)
    return f.judge("S-17", late, extra=[ca.cert])


@case("S-17")
def issued_by_the_old_key_after_the_rollover(f):
    r = f.rollover()
    late = f.variant(
        r.old_leaf,
        r.old.key,
        not_before=r.nwn.not_valid_before_utc + DAY,
        not_after=r.nwn.not_valid_before_utc + dt.timedelta(days=397) - dt.timedelta(seconds=1),
    )
    return f.judge("S-17", late, r.ca_set)


@case("S-18")
def pkilint_smime_finding(f):
    bad, ca = _leaf_variant(
        f, subject=_subject_with(f, x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ACME"))
    )
    return f.judge("S-18", bad, extra=[ca.cert])


@case("S-19")
def renewal_reuses_the_key(f):
    ca = f.ca()
    first = f.leaf()
    renewal = f.variant(
        first,
        ca.key,
        serial=x509.random_serial_number(),
        not_before=first.not_valid_before_utc + dt.timedelta(days=300),
        not_after=first.not_valid_after_utc + dt.timedelta(days=300),
    )
    return f.judge("S-19", renewal, [first], extra=[ca.cert])


@case("S-20")
def upper_case_email(f):
    san = x509.SubjectAlternativeName([x509.RFC822Name("Hanako.Yamada@example.com")])
    bad, ca = _leaf_variant(f, replace={x509.SubjectAlternativeName: (san, False)})
    return f.judge("S-20", bad, extra=[ca.cert])


@case("J-01", severity=Severity.INFO)
def six_years(f):
    leaf = f.leaf()
    bad, ca = _leaf_variant(f, not_after=leaf.not_valid_before_utc + dt.timedelta(days=6 * 365))
    return f.judge("J-01", bad, extra=[ca.cert])


@pytest.mark.parametrize("c", cases_in(__name__), ids=case_id)
def test_case(c: Case, factory) -> None:
    check(c, factory)

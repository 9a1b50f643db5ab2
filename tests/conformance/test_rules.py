"""Golden cases, generated at test time (zlint's per-lint table; docs/architecture.md, house habit
7): every rule has at least one failing case here and at least one passing one (on the corpus of
everything jitsuin issues, or here when the rule needs a special context).
``test_every_rule_has_cases`` fails when a rule is missing either.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from jitsuin.ca.keys import KeyType, SoftwareSigner
from jitsuin.ca.revocation import DelegatedResponder, build_response, parse_request
from jitsuin.conformance.documents import LintContext
from jitsuin.conformance.findings import Outcome, Severity, Status
from jitsuin.conformance.registry import REGISTRY, DocKind

DAY = dt.timedelta(days=1)
OFFLINE = (DocKind.CERTIFICATE, DocKind.CRL, DocKind.OCSP_RESPONSE)


@dataclass(frozen=True)
class Case:
    rule: str
    expect: str  # "fail" or "pass"
    name: str
    build: Callable[..., Outcome]
    severity: Severity | None = None  # the severity the failing finding must have


CASES: list[Case] = []


def case(rule: str, expect: str = "fail", severity: Severity | None = None):  # type: ignore[no-untyped-def]
    def register(build: Callable[..., Outcome]) -> Callable[..., Outcome]:
        CASES.append(Case(rule, expect, build.__name__, build, severity))
        return build

    return register


# ==== A. RFC 5280
@case("X-01")
def non_der_boolean(f):
    good = f.leaf().public_bytes(f_der())
    at = good.index(bytes.fromhex("0101ff"))  # basicConstraints critical TRUE
    return f.judge("X-01", good[:at] + bytes.fromhex("010101") + good[at + 3 :])


@case("X-01")
def version_1(f):
    ca = f.ca()
    bad = f.tamper(f.leaf(), ca.key, lambda tbs: tbs.__setitem__("version", "v1"))
    return f.judge("X-01", bad, extra=[ca.cert])


@case("X-02")
def serial_zero(f):
    ca = f.ca()
    bad = f.tamper(f.leaf(), ca.key, lambda tbs: tbs.__setitem__("serial_number", 0))
    return f.judge("X-02", bad, extra=[ca.cert])


@case("X-02")
def serial_short(f):
    ca = f.ca()
    return f.judge("X-02", f.variant(f.leaf(), ca.key, serial=0x1234), extra=[ca.cert])


@case("X-02")
def serial_31_bits(f):
    """The independent corpus's leaf: a 31-bit serial can never hold 64 CSPRNG bits (BR 7.1)."""
    ca = f.ca()
    return f.judge("X-02", f.variant(f.leaf(), ca.key, serial=0x5A5A5A5A), extra=[ca.cert])


@case("X-02")
def serial_seven_octets(f):
    """2^55 - 1: seven content octets, the longest serial that is an error."""
    ca = f.ca()
    return f.judge("X-02", f.variant(f.leaf(), ca.key, serial=2**55 - 1), extra=[ca.cert])


@case("X-02", severity=Severity.WARNING)
def serial_eight_octets_below_2_63(f):
    """2^55: eight content octets; a 64-bit draw with nine leading zero bits looks like this."""
    ca = f.ca()
    return f.judge("X-02", f.variant(f.leaf(), ca.key, serial=2**55), extra=[ca.cert])


@case("X-02", "pass")
def serial_of_64_bits(f):
    ca = f.ca()
    return f.judge("X-02", f.variant(f.leaf(), ca.key, serial=2**63 + 5), extra=[ca.cert])


@case("X-02")
def serial_reused(f):
    ca = f.ca()
    leaf = f.leaf()
    twin = f.variant(f.leaf(n=1), ca.key, serial=leaf.serial_number)
    return f.judge("X-02", leaf, [twin], extra=[ca.cert])


@case("X-03")
def inner_algorithm_differs(f):
    ca = f.ca()

    def edit(tbs):
        tbs["signature"] = {"algorithm": "sha256_ecdsa"}  # the CA (P-384) signs ecdsa-with-SHA384

    return f.judge("X-03", f.tamper(f.leaf(), ca.key, edit), extra=[ca.cert])


@case("X-03")
def signature_does_not_verify(f):
    ca, other = f.ca(), f.ca(n=7)
    return f.judge("X-03", f.variant(f.leaf(), other.key), extra=[ca.cert])


@case("X-04")
def issuer_name_encoded_differently(f):
    ca = f.ca()
    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, "Jitsuin Conformance Test", _ASN1Type.PrintableString
            ),
            x509.NameAttribute(
                NameOID.COMMON_NAME, "Jitsuin Conformance CA", _ASN1Type.PrintableString
            ),
        ]
    )
    return f.judge("X-04", f.variant(f.leaf(), ca.key, issuer=issuer), extra=[ca.cert])


@case("X-05")
def generalized_time_before_2050(f):
    ca = f.ca()

    def edit(tbs):
        tbs["validity"]["not_after"] = asn1_x509.Time(
            name="general_time", value=f.leaf().not_valid_after_utc
        )

    return f.judge("X-05", f.tamper(f.leaf(), ca.key, edit), extra=[ca.cert])


@case("X-06")
def duplicate_extension(f):
    ca = f.ca()

    def edit(tbs):
        extensions = list(tbs["extensions"])
        tbs["extensions"] = [*extensions, extensions[-1].copy()]

    return f.judge("X-06", f.tamper(f.leaf(), ca.key, edit), extra=[ca.cert])


@case("X-06")
def unknown_critical_extension(f):
    ca = f.ca()
    private = x509.UnrecognizedExtension(ObjectIdentifier(f"{f.policy.policy_arc}.9"), b"\x05\x00")
    return f.judge("X-06", f.variant(f.leaf(), ca.key, add=[(private, True)]), extra=[ca.cert])


@case("X-07")
def no_authority_key_identifier(f):
    ca = f.ca()
    return f.judge(
        "X-07", f.variant(f.leaf(), ca.key, drop=[x509.AuthorityKeyIdentifier]), extra=[ca.cert]
    )


@case("X-07")
def aki_is_not_the_issuer_ski(f):
    ca = f.ca()
    wrong = x509.AuthorityKeyIdentifier(b"\x01" * 20, None, None)
    bad = f.variant(f.leaf(), ca.key, replace={x509.AuthorityKeyIdentifier: (wrong, False)})
    return f.judge("X-07", bad, extra=[ca.cert])


@case("X-08")
def ca_without_ski(f):
    ca = f.ca()
    return f.judge("X-08", f.variant(ca.cert, ca.key, drop=[x509.SubjectKeyIdentifier]))


@case("X-08", severity=Severity.WARNING)
def leaf_without_ski(f):
    ca = f.ca()
    return f.judge(
        "X-08", f.variant(f.leaf(), ca.key, drop=[x509.SubjectKeyIdentifier]), extra=[ca.cert]
    )


@case("X-09")
def ca_basic_constraints_not_critical(f):
    ca = f.ca()
    bc = x509.BasicConstraints(ca=True, path_length=None)
    return f.judge("X-09", f.variant(ca.cert, ca.key, replace={x509.BasicConstraints: (bc, False)}))


@case("X-09")
def leaf_with_path_length(f):
    ca = f.ca()

    def edit(tbs):  # cryptography refuses pathLen with cA FALSE: write it into the DER
        for extension in tbs["extensions"]:
            if extension["extn_id"].native == "basic_constraints":
                # cA FALSE is the DEFAULT, so DER leaves it out (X.690 §11.5)
                extension["extn_value"] = asn1_x509.BasicConstraints({"path_len_constraint": 0})

    return f.judge("X-09", f.tamper(f.leaf(), ca.key, edit), extra=[ca.cert])


@case("X-10")
def leaf_with_key_cert_sign(f):
    ca = f.ca()
    ku = x509.KeyUsage(True, True, False, False, True, True, False, False, False)
    return f.judge(
        "X-10", f.variant(f.leaf(), ca.key, replace={x509.KeyUsage: (ku, True)}), extra=[ca.cert]
    )


@case("X-10")
def key_usage_not_critical(f):
    ca = f.ca()
    ku = f.leaf().extensions.get_extension_for_class(x509.KeyUsage).value
    return f.judge(
        "X-10", f.variant(f.leaf(), ca.key, replace={x509.KeyUsage: (ku, False)}), extra=[ca.cert]
    )


def _subject_with(
    f, *attributes: x509.NameAttribute, drop: tuple[ObjectIdentifier, ...] = ()
) -> x509.Name:
    kept = [a for a in f.leaf().subject if a.oid not in drop]
    return x509.Name(kept + list(attributes))


@case("X-11")
def title_as_bmp_string(f):
    ca = f.ca()
    title = x509.NameAttribute(NameOID.TITLE, "Registered Member", _ASN1Type.BMPString)
    subject = _subject_with(f, title, drop=(NameOID.TITLE,))
    return f.judge("X-11", f.variant(f.leaf(), ca.key, subject=subject), extra=[ca.cert])


@case("X-11")
def common_name_too_long(f):
    ca = f.ca()
    with pytest.warns(UserWarning, match="length"):  # cryptography knows the bound too
        cn = x509.NameAttribute(NameOID.COMMON_NAME, "Hanako " + "Y" * 70, _validate=False)
    subject = _subject_with(f, cn, drop=(NameOID.COMMON_NAME,))
    return f.judge("X-11", f.variant(f.leaf(), ca.key, subject=subject), extra=[ca.cert])


@case("X-12", severity=Severity.WARNING)
def subject_unique_id(f):
    ca = f.ca()

    def edit(tbs):
        tbs["subject_unique_id"] = b"\x5a\x01"

    return f.judge("X-12", f.tamper(f.leaf(), ca.key, edit), extra=[ca.cert])


def _critical_ski(f, leaf):
    ca = f.ca()
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return f.variant(leaf, ca.key, replace={x509.SubjectKeyIdentifier: (ski, True)}), ca


@case("X-13")
def pkilint_pkix_finding(f):
    bad, ca = _critical_ski(f, f.tls_leaf())
    return f.judge("X-13", bad, extra=[ca.cert])


@case("S-18")
def pkilint_pkix_finding_on_an_smime_leaf(f):
    # X-13 leaves S/MIME leaves to S-18, whose pkilint linter runs the RFC 5280 validators too.
    bad, ca = _critical_ski(f, f.leaf())
    assert f.judge("X-13", bad, extra=[ca.cert]).status is Status.NA
    return f.judge("S-18", bad, extra=[ca.cert])


@case("X-14")
def expired_at_the_given_time(f):
    return f.judge(
        "X-14", f.leaf(), context=f.configured(at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    )


@case("X-14", "pass")
def valid_at_the_given_time(f):
    return f.judge(
        "X-14", f.leaf(), context=f.configured(at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    )


# ==== B. subscriber profile
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
    from cryptography.hazmat.primitives.asymmetric import ec

    bad, ca = _leaf_variant(f, public_key=ec.generate_private_key(ec.SECP521R1()).public_key())
    return f.judge("S-03", bad, extra=[ca.cert])


@case("S-03")
def rsa_exponent_3(f):
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    ca = f.ca()
    bad = f.variant(f.leaf(key_type=KeyType.RSA_2048), ca.key, public_key=key.public_key())
    return f.judge("S-03", bad, extra=[ca.cert])


def _policies(*oids: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies(
        [x509.PolicyInformation(ObjectIdentifier(o), None) for o in oids]
    )


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


# ==== C. CA and link certificates
@case("C-01")
def root_with_extended_key_usage(f):
    ca = f.ca()
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])
    return f.judge("C-01", f.variant(ca.cert, ca.key, add=[(eku, False)]))


@case("C-01")
def root_without_digital_signature_but_signing_ocsp(f):
    ca = f.ca()
    ku = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    return f.judge(
        "C-01",
        f.variant(ca.cert, ca.key, replace={x509.KeyUsage: (ku, True)}),
        context=f.configured(),
    )


@case("C-01", severity=Severity.WARNING)
def root_with_policies(f):
    ca = f.ca()
    return f.judge("C-01", f.variant(ca.cert, ca.key, add=[(_policies("2.5.29.32.0"), False)]))


@case("C-02")
def ca_valid_eleven_years(f):
    ca = f.ca()
    long = f.variant(
        ca.cert, ca.key, not_after=ca.cert.not_valid_before_utc + dt.timedelta(days=11 * 365)
    )
    return f.judge("C-02", long)


@case("C-02")
def ca_signed_with_sha1(f):
    ca = f.ca(KeyType.RSA_3072, number=3)
    sha1 = hashes.SHA1()  # noqa: S303 (the weak algorithm under test)
    weak = f.tamper(ca.cert, ca.key, lambda tbs: None, algorithm=sha1, algorithm_id="sha1_rsa")
    return f.judge("C-02", weak)


@case("C-03", severity=Severity.WARNING)
def rsa_2048_ca_past_2030(f):
    return f.judge("C-03", f.ca(KeyType.RSA_2048, number=5).cert)


@case("C-04")
def new_generation_renamed(f):
    renamed = x509.Name(
        [
            *list(f.ca().cert.subject)[:2],
            x509.NameAttribute(NameOID.COMMON_NAME, "Jitsuin Conformance CA G2"),
        ]
    )
    r = f.rollover(new_subject=renamed, n=4)
    return f.judge("C-04", r.nwn, [r.owo, r.own, r.nwo])


@case("C-05")
def old_with_new_ends_early(f):
    r = f.rollover()
    own = f.link(r.old, r.new, r.owo.not_valid_before_utc, r.owo.not_valid_after_utc - DAY)
    return f.judge("C-05", own, [r.owo, r.nwn, r.nwo])


@case("C-05")
def old_with_new_starts_at_the_rollover(f):
    r = f.rollover()
    own = f.link(r.old, r.new, r.nwn.not_valid_before_utc, r.owo.not_valid_after_utc)
    return f.judge("C-05", own, [r.owo, r.nwn, r.nwo])


@case("C-06")
def new_with_old_starts_late(f):
    r = f.rollover()
    nwo = f.link(r.new, r.old, r.nwn.not_valid_before_utc + DAY, r.owo.not_valid_after_utc)
    return f.judge("C-06", nwo, [r.owo, r.nwn, r.own])


@case("C-06")
def new_with_old_ends_before_the_last_old_leaf(f):
    r = f.rollover()
    nwo = f.link(r.new, r.old, r.nwn.not_valid_before_utc, r.old_leaf.not_valid_after_utc - DAY)
    return f.judge("C-06", nwo, [r.owo, r.nwn, r.own, r.old_leaf])


@case("C-07")
def rollover_after_the_cutoff(f):
    old = f.ca()
    late = old.cert.not_valid_after_utc - dt.timedelta(days=300)
    new = f.ca(at=late, n=9, number=2)
    own = f.link(old, new, old.cert.not_valid_before_utc, old.cert.not_valid_after_utc)
    nwo = f.link(new, old, late, old.cert.not_valid_after_utc)
    return f.judge("C-07", new.cert, [old.cert, own, nwo])


@case("C-08")
def new_generation_ends_first(f):
    r = f.rollover()
    short = f.variant(r.nwn, r.new.key, not_after=r.owo.not_valid_after_utc - DAY)
    return f.judge("C-08", short, [r.owo, r.own, r.nwo])


@case("C-09")
def link_key_usage_not_critical(f):
    r = f.rollover()
    own = f.link(
        r.old, r.new, r.owo.not_valid_before_utc, r.owo.not_valid_after_utc, ku_critical=False
    )
    return f.judge("C-09", own, [r.owo, r.nwn, r.nwo])


@case("C-09")
def link_fails_the_pkilint_chain_linter(f):
    r = f.rollover()
    # The issuer's SKI is not the link's AKI: pkilint's issuer/subject linter objects.
    own = f.variant(
        r.own,
        r.new.key,
        replace={
            x509.AuthorityKeyIdentifier: (
                x509.AuthorityKeyIdentifier(b"\x02" * 20, None, None),
                False,
            )
        },
    )
    return f.judge("C-09", own, [r.owo, r.nwn, r.nwo])


@case("C-10")
def no_new_with_old(f):
    r = f.rollover()
    return f.judge("C-10", r.nwn, [r.owo, r.own, r.old_leaf, r.new_leaf])


def _leaf_marked_ca(f, **changes):
    """The issue's bad leaf: jitsuin's leaf re-signed by its CA with cA TRUE, keyCertSign and
    cRLSign added; it keeps the S/MIME subscriber policy, the personal subject and the EKU."""
    ca = f.ca()
    leaf = f.leaf()
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    as_ca = x509.KeyUsage(
        ku.digital_signature,
        ku.content_commitment,
        ku.key_encipherment,
        ku.data_encipherment,
        ku.key_agreement,
        True,
        True,
        False,
        False,
    )
    replace = {
        x509.BasicConstraints: (x509.BasicConstraints(ca=True, path_length=0), True),
        x509.KeyUsage: (as_ca, True),
    }
    return ca, f.variant(leaf, ca.key, replace=replace, **changes)


@case("C-12")
def subscriber_marked_ca(f):
    ca, bad = _leaf_marked_ca(f)
    return f.judge("C-12", bad, extra=[ca.cert])


@case("C-12")
def self_issued_ca_with_eku(f):
    ca = f.ca()
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION])
    return f.judge("C-12", f.variant(ca.cert, ca.key, add=[(eku, False)]))


@case("C-12", "pass")
def subordinate_ca_with_smime_eku_and_reserved_policy(f):
    """SBR 7.1.2.2: a subordinate CA's EKU includes emailProtection, its policies may be the
    reserved ones; neither marks it as a subscriber."""
    ca, sub = _subordinate(f)
    return f.judge("C-12", sub, extra=[ca.cert])


def _subordinate(f):
    ca = f.ca()
    key = f.key(KeyType.ECDSA_P256, 60)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Jitsuin Conformance Sub CA")])
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION])
    policies = x509.CertificatePolicies(
        [x509.PolicyInformation(ObjectIdentifier("2.23.140.1.5.4.2"), None)]
    )
    sub = f.variant(
        ca.cert,
        ca.key,
        subject=name,
        public_key=key.public_key(),
        serial=2**70 + 3,
        drop=[x509.SubjectKeyIdentifier],
        add=[
            (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
            (eku, False),
            (policies, False),
        ],
    )
    return ca, sub


def test_subscriber_marked_ca_gets_the_smime_rules(factory) -> None:
    """The S rules and pkilint's S/MIME linter judge a subscriber certificate with cA TRUE (the
    issue's case was "CA certificate … OK (14 rules passed)")."""
    ca, bad = _leaf_marked_ca(factory)
    report = factory.lint([bad, ca.cert])
    (result,) = [d for d in report.documents if d.label == "target"]
    ran = {o.rule for o in result.outcomes if o.status in (Status.PASS, Status.FAIL)}
    assert {"S-18", "S-04", "S-05", "C-12"} <= ran
    failed = {o.rule for o in result.outcomes if o.status is Status.FAIL}
    assert {"C-12", "S-18"} <= failed
    assert report.exit_code() == 1


@case("C-13")
def subordinate_ca_not_declared(f):
    ca, sub = _subordinate(f)
    return f.judge("C-13", sub, context=f.configured(), extra=[ca.cert])


@case("C-13", severity=Severity.INFO)
def subordinate_ca_without_configuration(f):
    """No configuration, no declared intermediates: C-13 says what it misses (INFO)."""
    ca, sub = _subordinate(f)
    return f.judge("C-13", sub, extra=[ca.cert])


@case("C-13", "pass")
def subordinate_ca_declared(f):
    from jitsuin.conformance.documents import key_id

    ca, sub = _subordinate(f)
    context = f.configured(intermediates=frozenset({key_id(sub.public_key())}))
    return f.judge("C-13", sub, context=context, extra=[ca.cert])


# ==== D. CRLs and OCSP
def _when(f):
    return f.rollover().nwn.not_valid_before_utc + DAY


@case("R-01")
def crl_without_number(f):
    ca = f.ca()
    return f.judge("R-01", f.crl(ca, this_update=_when(f), number=None), extra=[ca.cert])


@case("R-01")
def crl_number_goes_back(f):
    r = f.rollover()
    first = f.crl(r.old, this_update=_when(f), number=50)
    second = f.crl(r.new, this_update=_when(f) + DAY, number=40)
    return f.judge("R-01", second, [first], extra=r.ca_set)


@case("R-01")
def crl_signed_by_another_key(f):
    ca, other = f.ca(), f.ca(n=7)
    forged = f.crl(ca, this_update=_when(f), signer_key=other.key)
    return f.judge("R-01", forged, extra=[ca.cert])


@case("R-02")
def crl_valid_fifteen_days(f):
    ca = f.ca()
    return f.judge("R-02", f.crl(ca, this_update=_when(f), days=15), extra=[ca.cert])


@case("R-02")
def next_crl_nine_days_later(f):
    ca = f.ca()
    first = f.crl(ca, this_update=_when(f), number=1)
    second = f.crl(ca, this_update=_when(f) + dt.timedelta(days=9), number=2)
    return f.judge("R-02", first, [second], extra=[ca.cert])


@case("R-03")
def reason_unspecified(f):
    ca = f.ca()
    crl = f.crl(ca, this_update=_when(f), revoked=[(12345678901, x509.ReasonFlags.unspecified)])
    return f.judge("R-03", crl, extra=[ca.cert])


@case("R-03")
def reason_critical(f):
    ca = f.ca()
    crl = f.crl(
        ca,
        this_update=_when(f),
        revoked=[(12345678901, x509.ReasonFlags.superseded)],
        reason_critical=True,
    )
    return f.judge("R-03", crl, extra=[ca.cert])


@case("R-03")
def certificate_hold(f):
    ca = f.ca()
    crl = f.crl(
        ca, this_update=_when(f), revoked=[(12345678901, x509.ReasonFlags.certificate_hold)]
    )
    return f.judge("R-03", crl, extra=[ca.cert])


@case("R-04")
def empty_revoked_certificates(f):
    ca = f.ca()
    crl = f.crl(ca, this_update=_when(f))
    return f.judge(
        "R-04",
        f.tamper_crl(crl, ca.key, lambda tbs: tbs.__setitem__("revoked_certificates", [])),
        extra=[ca.cert],
    )


@case("R-04")
def entry_dropped_while_the_certificate_is_valid(f):
    ca = f.ca()
    leaf = f.leaf(n=20)
    when = leaf.not_valid_before_utc + dt.timedelta(days=30)
    first = f.crl(
        ca,
        this_update=when,
        number=1,
        revoked=[(leaf.serial_number, x509.ReasonFlags.key_compromise)],
    )
    second = f.crl(ca, this_update=when + dt.timedelta(days=5), number=2)
    return f.judge("R-04", second, [first, leaf], extra=[ca.cert])


@case("R-05")
def old_key_certificates_without_a_crl(f):
    r = f.rollover()
    new_crl = f.crl(r.new, this_update=_when(f), number=7)
    return f.judge("R-05", r.owo, [r.nwn, r.own, r.nwo, r.old_leaf, r.new_leaf, new_crl])


@case("R-06")
def ocsp_signed_by_another_key(f):
    ca = f.ca()
    response = f.ocsp(ca, f.leaf(), this_update=_when(f), signer_key=f.ca(n=7).key)
    return f.judge("R-06", response, extra=[ca.cert])


def _delegated(f, *, eku=True, nocheck=True, days=7, starts=-DAY):
    """An OCSP response about a leaf of ``f.ca()`` from a delegated responder whose certificate
    that CA issued, valid ``days`` from ``starts`` after the response's producedAt."""
    ca = f.ca()
    key = f.key(KeyType.ECDSA_P256, 60)
    produced = _when(f)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OCSP responder")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(produced + starts)
        .not_valid_after(produced + starts + dt.timedelta(days=days) - dt.timedelta(seconds=1))
        .add_extension(x509.AuthorityKeyIdentifier(ca.ski, None, None), False)
    )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False
        )
    if nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), False)
    responder = f.sign(builder, ca.key)
    response = f.ocsp(ca, f.leaf(), this_update=produced, responder=(responder, key))
    # the builder stamps producedAt with the wall clock: set it to the case's time and re-sign
    parsed = asn1_ocsp.OCSPResponse.load(response.public_bytes(f_der()))
    basic = parsed["response_bytes"]["response"].parsed
    tbs = basic["tbs_response_data"].copy()
    tbs["produced_at"] = produced
    basic["tbs_response_data"] = tbs
    basic["signature"] = key.sign(tbs.dump(force=True), ec.ECDSA(hashes.SHA256()))
    parsed["response_bytes"]["response"] = asn1_ocsp.BasicOCSPResponse.load(basic.dump(force=True))
    return f.judge("R-06", parsed.dump(force=True), extra=[ca.cert])


@case("R-06")
def delegated_responder_without_nocheck(f):
    return _delegated(f, nocheck=False)


@case("R-06")
def delegated_responder_without_ocsp_signing(f):
    return _delegated(f, eku=False)


@case("R-06")
def delegated_responder_expired_when_the_response_was_produced(f):
    return _delegated(f, starts=-dt.timedelta(days=8))


@case("R-06", severity=Severity.WARNING)
def delegated_responder_valid_90_days(f):
    return _delegated(f, days=90)


@case("R-06", "pass")
def delegated_responder_with_nocheck(f):
    return _delegated(f)


@case("R-06", "pass")
def delegated_responder_of_jitsuin(f):
    """jitsuin's own delegated arrangement ([ocsp] responder = "delegated"): the responder
    certificate from Issuer.issue_ocsp_responder, the response from build_response."""
    ca = f.ca()
    at = _when(f)
    key = f.key(ca.generation.signer.key_type, 61)
    issued = f.issuer(ca, at).issue_ocsp_responder(key.public_key())
    responder = DelegatedResponder(issued.certificate, SoftwareSigner(key))
    leaf = f.leaf()
    cert_id = parse_request(
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, ca.cert, hashes.SHA256())
        .build()
        .public_bytes(f_der())
    )
    der = build_response(ca.generation, cert_id, "good", at, responder=responder)
    return f.judge("R-06", der, extra=[ca.cert])


@case("C-01", "pass")
def root_without_digital_signature_and_a_delegated_responder(f):
    ca = f.ca()
    ku = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    expectations = dataclasses.replace(f.expectations, ca_signs_ocsp=False)
    return f.judge(
        "C-01",
        f.variant(ca.cert, ca.key, replace={x509.KeyUsage: (ku, True)}),
        context=LintContext(expectations=expectations),
    )


@case("R-07")
def ocsp_valid_two_hours(f):
    ca = f.ca()
    return f.judge("R-07", f.ocsp(ca, f.leaf(), this_update=_when(f), hours=2), extra=[ca.cert])


@case("R-07")
def ocsp_without_next_update(f):
    ca = f.ca()
    return f.judge(
        "R-07", f.ocsp(ca, f.leaf(), this_update=_when(f), next_update=False), extra=[ca.cert]
    )


@case("R-08")
def good_but_on_the_crl(f):
    ca = f.ca()
    leaf = f.leaf()
    crl = f.crl(
        ca,
        this_update=_when(f) - DAY,
        revoked=[(leaf.serial_number, x509.ReasonFlags.key_compromise)],
    )
    return f.judge("R-08", f.ocsp(ca, leaf, this_update=_when(f)), [crl], extra=[ca.cert])


@case("R-08")
def good_for_a_serial_never_issued(f):
    ca = f.ca()
    from jitsuin.conformance.documents import LintContext

    context = LintContext(issued=lambda ski, serial: False)
    return f.judge(
        "R-08", f.ocsp(ca, f.leaf(), this_update=_when(f)), context=context, extra=[ca.cert]
    )


@case("R-09")
def pkilint_crl_finding(f):
    ca = f.ca()
    return f.judge("R-09", f.crl(ca, this_update=_when(f), days=15), extra=[ca.cert])


@case("R-10")
def crl_signed_with_sha1(f):
    ca = f.ca()
    sha1 = hashes.SHA1()  # noqa: S303 (the weak algorithm under test)
    crl = f.crl(ca, this_update=_when(f))
    weak = f.tamper_crl(crl, ca.key, lambda tbs: None, algorithm=sha1, algorithm_id="sha1_ecdsa")
    return f.judge("R-10", weak, extra=[ca.cert])


@case("R-11")
def stale_crl(f):
    ca = f.ca()
    crl = f.crl(ca, this_update=_when(f))
    return f.judge(
        "R-11", crl, context=f.configured(at=_when(f) + dt.timedelta(days=30)), extra=[ca.cert]
    )


@case("R-11", "pass")
def current_crl(f):
    ca = f.ca()
    crl = f.crl(ca, this_update=_when(f))
    return f.judge("R-11", crl, context=f.configured(at=_when(f) + DAY), extra=[ca.cert])


# ==== live servers: EST (made-up exchanges; the real runs are in test_live.py)
EST_BASE = "https://est.example.com/.well-known/est"
ACME_BASE = "https://acme.example.com"


def _ex(
    name,
    status,
    *,
    method="POST",
    path="/simpleenroll",
    base=EST_BASE,
    headers=(),
    body=b"",
    tls="TLSv1.3",
):
    from jitsuin.conformance.live import Exchange

    return Exchange(name, method, base + path, status, tuple(headers), body, tls_version=tls)


TEXT = (("Content-Type", "text/plain; charset=utf-8"),)
CHALLENGE = (("WWW-Authenticate", 'Basic realm="est"'), *TEXT)


def _certs_only(*certs):
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    return base64.encodebytes(pkcs7.serialize_certificates(list(certs), Encoding.DER))


def _est_doc(f, **replace):
    from cryptography.hazmat.primitives import serialization

    from jitsuin.conformance.live import est_server

    ca, leaf = f.ca(), f.leaf()
    pkcs7 = (("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),)
    exchanges = {
        "cacerts": _ex(
            "cacerts",
            200,
            method="GET",
            path="/cacerts",
            headers=[("Content-Type", "application/pkcs7-mime")],
            body=_certs_only(ca.cert),
        ),
        "enroll-no-auth": _ex("enroll-no-auth", 401, headers=CHALLENGE, body=b"authenticate"),
        "enroll-bad-auth": _ex("enroll-bad-auth", 401, headers=CHALLENGE, body=b"wrong PIN"),
        "enroll-wrong-type": _ex("enroll-wrong-type", 415, headers=TEXT, body=b"send pkcs10"),
        "enroll-garbage": _ex("enroll-garbage", 400, headers=TEXT, body=b"not base64"),
        "enroll-bad-csr-auth": _ex("enroll-bad-csr-auth", 400, headers=TEXT, body=b"bad CSR"),
        "enroll": _ex("enroll", 200, headers=pkcs7, body=_certs_only(leaf)),
        "enroll-retry": _ex("enroll-retry", 200, headers=pkcs7, body=_certs_only(leaf)),
        "reenroll-no-cert": _ex("reenroll-no-cert", 401, path="/simplereenroll", headers=CHALLENGE),
        "reenroll-other-subject": _ex(
            "reenroll-other-subject", 403, path="/simplereenroll", headers=TEXT
        ),
        "reenroll": _ex(
            "reenroll", 202, path="/simplereenroll", headers=[("Retry-After", "60"), *TEXT]
        ),
        "csrattrs": _ex(
            "csrattrs",
            200,
            method="GET",
            path="/csrattrs",
            headers=[("Content-Type", "application/csrattrs")],
            body=b"MAA=\n",
        ),
        "fullcmc": _ex("fullcmc", 501, path="/fullcmc", headers=TEXT, body=b"not offered"),
    }
    exchanges.update(replace)
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    facts = {"legacy_tls_accepted": False, "tls_version": "TLSv1.3", "enroll_spki": spki}
    return est_server(EST_BASE, [e for e in exchanges.values() if e is not None], facts)


def _run(rule_id, doc):
    return REGISTRY.get(rule_id).run(doc)


for _rule in (
    "E-01",
    "E-02",
    "E-03",
    "E-04",
    "E-05",
    "E-06",
    "E-07",
    "E-08",
    "E-09",
    "E-10",
    "E-11",
):
    case(_rule, "pass")(lambda f, _r=_rule: _run(_r, _est_doc(f)))


@case("E-01")
def est_over_tls_1_1(f):
    doc = _est_doc(f)
    doc.facts["legacy_tls_accepted"] = True
    doc.facts["tls_version"] = "TLSv1.1"
    return _run("E-01", doc)


@case("E-02")
def cacerts_wrong_type_and_body(f):
    bad = _ex(
        "cacerts",
        200,
        method="GET",
        path="/cacerts",
        headers=[("Content-Type", "application/x-pem-file")],
        body=b"-----BEGIN",
    )
    return _run("E-02", _est_doc(f, cacerts=bad))


@case("E-02", severity=Severity.WARNING)
def cacerts_requires_authentication(f):
    """RFC 7030 §4.1.1: /cacerts SHOULD NOT require client authentication."""
    refused = _ex(
        "cacerts",
        401,
        method="GET",
        path="/cacerts",
        headers=[("Content-Type", "text/plain"), ("WWW-Authenticate", 'Basic realm="est"')],
        body=b"authenticate",
    )
    return _run("E-02", _est_doc(f, cacerts=refused))


@case("E-02")
def cacerts_with_a_leaf(f):
    bad = _ex(
        "cacerts",
        200,
        method="GET",
        path="/cacerts",
        headers=[("Content-Type", "application/pkcs7-mime")],
        body=_certs_only(f.leaf()),
    )
    return _run("E-02", _est_doc(f, cacerts=bad))


@case("E-03")
def unauthorized_without_challenge(f):
    return _run("E-03", _est_doc(f, **{"enroll-no-auth": _ex("enroll-no-auth", 401, headers=TEXT)}))


@case("E-03")
def bad_pin_forbidden(f):
    return _run(
        "E-03", _est_doc(f, **{"enroll-bad-auth": _ex("enroll-bad-auth", 403, headers=TEXT)})
    )


@case("E-04")
def json_body_bad_request(f):
    return _run(
        "E-04", _est_doc(f, **{"enroll-wrong-type": _ex("enroll-wrong-type", 400, headers=TEXT)})
    )


@case("E-04")
def json_body_with_credentials(f):
    doc = _est_doc(
        f,
        **{
            "enroll-wrong-type": _ex("enroll-wrong-type", 401, headers=CHALLENGE),
            "enroll-wrong-type-auth": _ex("enroll-wrong-type-auth", 500, headers=TEXT),
        },
    )
    return _run("E-04", doc)


@case("E-05")
def garbage_is_a_server_error(f):
    return _run("E-05", _est_doc(f, **{"enroll-garbage": _ex("enroll-garbage", 500, headers=TEXT)}))


@case("E-05")
def broken_csr_accepted(f):
    return _run("E-05", _est_doc(f, **{"enroll-bad-csr-auth": _ex("enroll-bad-csr-auth", 200)}))


@case("E-06")
def failure_answered_200(f):
    return _run("E-06", _est_doc(f, fullcmc=_ex("fullcmc", 200, path="/fullcmc", headers=TEXT)))


@case("E-06", severity=Severity.WARNING)
def error_in_html(f):
    html = (("Content-Type", "text/html"),)
    return _run("E-06", _est_doc(f, fullcmc=_ex("fullcmc", 501, path="/fullcmc", headers=html)))


@case("E-07")
def enrollment_returns_the_chain(f):
    pkcs7 = (("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),)
    bad = _ex("enroll", 200, headers=pkcs7, body=_certs_only(f.leaf(), f.ca().cert))
    return _run("E-07", _est_doc(f, enroll=bad, **{"enroll-retry": None}))


@case("E-07")
def enrollment_certifies_another_key(f):
    pkcs7 = (("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),)
    bad = _ex("enroll", 200, headers=pkcs7, body=_certs_only(f.leaf(n=1)))
    return _run("E-07", _est_doc(f, enroll=bad, **{"enroll-retry": None}))


@case("E-08")
def pending_without_retry_after(f):
    return _run(
        "E-08", _est_doc(f, reenroll=_ex("reenroll", 202, path="/simplereenroll", headers=TEXT))
    )


@case("E-08")
def retry_issues_twice(f):
    pkcs7 = (("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),)
    again = _ex("enroll-retry", 200, headers=pkcs7, body=_certs_only(f.leaf(n=1)))
    return _run("E-08", _est_doc(f, **{"enroll-retry": again}))


@case("E-09")
def reenroll_for_another_subject_served(f):
    served = _ex("reenroll-other-subject", 200, path="/simplereenroll")
    return _run("E-09", _est_doc(f, **{"reenroll-other-subject": served}))


@case("E-10")
def csrattrs_untyped(f):
    bad = _ex("csrattrs", 200, method="GET", path="/csrattrs", headers=TEXT, body=b"%%%")
    return _run("E-10", _est_doc(f, csrattrs=bad))


@case("E-11")
def fullcmc_accepts_garbage(f):
    return _run("E-11", _est_doc(f, fullcmc=_ex("fullcmc", 200, path="/fullcmc", headers=TEXT)))


# ==== live servers: ACME
PROBLEM = (("Content-Type", "application/problem+json"),)
INDEX = ("Link", f'<{ACME_BASE}/dir>;rel="index"')


def _problem(name, status, kind, *, extra=None, headers=()):
    import json

    body = {
        "type": f"urn:ietf:params:acme:error:{kind}",
        "detail": f"{kind} (made up)",
        **(extra or {}),
    }
    return _ex(
        name,
        status,
        base=ACME_BASE,
        path=f"/{name}",
        headers=[*PROBLEM, INDEX, *headers],
        body=json.dumps(body).encode(),
    )


def _json(name, status, value, *, method="POST", headers=()):
    import json

    return _ex(
        name,
        status,
        method=method,
        base=ACME_BASE,
        path=f"/{name}",
        headers=[
            ("Content-Type", "application/json"),
            ("Replay-Nonce", f"n-{name}"),
            INDEX,
            *headers,
        ],
        body=json.dumps(value).encode(),
    )


def _acme_doc(f, **replace):
    from cryptography.hazmat.primitives import serialization

    from jitsuin.conformance.live import acme_server

    directory = {
        k: f"{ACME_BASE}/{k}"
        for k in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange")
    }
    account = ("Location", f"{ACME_BASE}/acct/1")
    order = {
        "status": "pending",
        "authorizations": [f"{ACME_BASE}/authz/1"],
        "finalize": f"{ACME_BASE}/fin/1",
    }
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (f.leaf(), f.ca().cert))
    nonce = [("Replay-Nonce", "abc_DEF-123"), ("Cache-Control", "no-store"), INDEX]
    algorithms = {"algorithms": ["ES256", "RS256"]}
    exchanges = {
        "directory": _json("directory", 200, {**directory, "meta": {}}, method="GET"),
        "nonce-head": _ex(
            "nonce-head", 200, method="HEAD", base=ACME_BASE, path="/newNonce", headers=nonce
        ),
        "nonce-get": _ex(
            "nonce-get",
            204,
            method="GET",
            base=ACME_BASE,
            path="/newNonce",
            headers=[("Replay-Nonce", "xyz_987"), *nonce[1:]],
        ),
        "bad-content-type": _problem("bad-content-type", 415, "malformed"),
        "bad-nonce": _problem("bad-nonce", 400, "badNonce", headers=[("Replay-Nonce", "fresh1")]),
        "jws-general": _problem("jws-general", 400, "malformed"),
        "jws-unprotected-header": _problem("jws-unprotected-header", 400, "malformed"),
        "jws-jwk-and-kid": _problem("jws-jwk-and-kid", 400, "malformed"),
        "jws-alg-none": _problem("jws-alg-none", 400, "badSignatureAlgorithm", extra=algorithms),
        "jws-alg-hs256": _problem("jws-alg-hs256", 400, "badSignatureAlgorithm", extra=algorithms),
        "url-mismatch": _problem("url-mismatch", 403, "unauthorized"),
        "new-account": _json("new-account", 201, {"status": "valid"}, headers=[account]),
        "existing-account": _json("existing-account", 200, {"status": "valid"}, headers=[account]),
        "new-order": _json("new-order", 201, order, headers=[("Location", f"{ACME_BASE}/order/1")]),
        "finalize-not-ready": _problem("finalize-not-ready", 403, "orderNotReady"),
        "get-order": _ex("get-order", 405, method="GET", base=ACME_BASE, path="/order/1"),
        "authz": _json("authz", 200, {"status": "pending"}),
        "challenge": _json(
            "challenge",
            200,
            {"status": "processing"},
            headers=[("Link", f'<{ACME_BASE}/authz/1>;rel="up"')],
        ),
        "finalize-bad-csr": _problem("finalize-bad-csr", 400, "badCSR"),
        "finalize": _json(
            "finalize", 200, {"status": "valid", "certificate": f"{ACME_BASE}/cert/1"}
        ),
        "certificate": _ex(
            "certificate",
            200,
            base=ACME_BASE,
            path="/cert/1",
            body=pem,
            headers=[
                ("Content-Type", "application/pem-certificate-chain"),
                ("Replay-Nonce", "c1"),
                INDEX,
            ],
        ),
        "revoke-bad-reason": _problem("revoke-bad-reason", 400, "badRevocationReason"),
        "revoke": _ex(
            "revoke", 200, base=ACME_BASE, path="/revoke", headers=[("Replay-Nonce", "r1"), INDEX]
        ),
        "revoke-again": _problem("revoke-again", 400, "alreadyRevoked"),
    }
    exchanges.update(replace)
    facts = {"authz_url": f"{ACME_BASE}/authz/1", "bad_nonce_sent": "stale"}
    return acme_server(f"{ACME_BASE}/dir", [e for e in exchanges.values() if e is not None], facts)


for _rule in [r.id for r in REGISTRY if r.id.startswith("A-")]:
    case(_rule, "pass")(lambda f, _r=_rule: _run(_r, _acme_doc(f)))


@case("A-01")
def directory_without_key_change(f):
    return _run(
        "A-01", _acme_doc(f, directory=_json("directory", 200, {"newNonce": "x"}, method="GET"))
    )


@case("A-02")
def nonce_cacheable(f):
    head = _ex(
        "nonce-head",
        200,
        method="HEAD",
        base=ACME_BASE,
        path="/newNonce",
        headers=[("Replay-Nonce", "abc"), INDEX],
    )
    return _run("A-02", _acme_doc(f, **{"nonce-head": head}))


@case("A-02", severity=Severity.WARNING)
def head_nonce_answers_204(f):
    """RFC 8555 §7.2: HEAD newNonce SHOULD have status 200."""
    head = _ex(
        "nonce-head",
        204,
        method="HEAD",
        base=ACME_BASE,
        path="/newNonce",
        headers=[("Replay-Nonce", "abc"), ("Cache-Control", "no-store"), INDEX],
    )
    return _run("A-02", _acme_doc(f, **{"nonce-head": head}))


@case("A-04", "pass")
def problem_type_outside_the_acme_namespace(f):
    """RFC 8555 §6.7: a type URI outside urn:ietf:params:acme:error: is allowed."""
    import json

    body = json.dumps({"type": "https://example.com/problems/x", "detail": "x"}).encode()
    other = _ex(
        "jws-general",
        400,
        base=ACME_BASE,
        path="/jws-general",
        headers=[("Content-Type", "application/problem+json"), ("Replay-Nonce", "n"), INDEX],
        body=body,
    )
    return _run("A-04", _acme_doc(f, **{"jws-general": other}))


@case("A-03")
def bad_nonce_without_fresh_nonce(f):
    return _run("A-03", _acme_doc(f, **{"bad-nonce": _problem("bad-nonce", 400, "badNonce")}))


@case("A-04", severity=Severity.WARNING)
def error_as_plain_json(f):
    plain = _json("jws-general", 400, {"type": "urn:ietf:params:acme:error:malformed"})
    return _run("A-04", _acme_doc(f, **{"jws-general": plain}))


@case("A-04")
def unregistered_error_type(f):
    return _run("A-04", _acme_doc(f, **{"jws-general": _problem("jws-general", 400, "oops")}))


@case("A-05")
def json_content_type_malformed(f):
    return _run(
        "A-05", _acme_doc(f, **{"bad-content-type": _problem("bad-content-type", 400, "malformed")})
    )


@case("A-06")
def general_serialization_accepted(f):
    return _run("A-06", _acme_doc(f, **{"jws-general": _json("jws-general", 201, {})}))


@case("A-07")
def alg_none_without_algorithms(f):
    return _run(
        "A-07",
        _acme_doc(f, **{"jws-alg-none": _problem("jws-alg-none", 400, "badSignatureAlgorithm")}),
    )


@case("A-08")
def url_mismatch_malformed(f):
    return _run(
        "A-08", _acme_doc(f, **{"url-mismatch": _problem("url-mismatch", 400, "malformed")})
    )


@case("A-09")
def new_account_without_location(f):
    return _run("A-09", _acme_doc(f, **{"new-account": _json("new-account", 200, {})}))


@case("A-10")
def post_without_replay_nonce(f):
    bare = _ex("revoke", 200, base=ACME_BASE, path="/revoke", headers=[INDEX])
    return _run("A-10", _acme_doc(f, revoke=bare))


@case("A-11")
def order_not_pending(f):
    odd = _json(
        "new-order", 201, {"status": "valid"}, headers=[("Location", f"{ACME_BASE}/order/1")]
    )
    return _run("A-11", _acme_doc(f, **{"new-order": odd}))


@case("A-12")
def finalize_before_ready_malformed(f):
    return _run(
        "A-12",
        _acme_doc(f, **{"finalize-not-ready": _problem("finalize-not-ready", 400, "malformed")}),
    )


@case("A-13", severity=Severity.WARNING)
def get_allowed_on_orders(f):
    return _run("A-13", _acme_doc(f, **{"get-order": _json("get-order", 200, {}, method="GET")}))


@case("A-14", severity=Severity.WARNING)
def challenge_without_up_link(f):
    return _run("A-14", _acme_doc(f, challenge=_json("challenge", 200, {"status": "processing"})))


@case("A-14")
def challenge_without_status(f):
    """RFC 8555 §7.1.5: status is REQUIRED in a challenge object."""
    return _run("A-14", _acme_doc(f, challenge=_json("challenge", 200, {"type": "http-01"})))


@case("A-15")
def wrong_csr_accepted(f):
    return _run("A-15", _acme_doc(f, **{"finalize-bad-csr": _json("finalize-bad-csr", 200, {})}))


@case("A-15", severity=Severity.WARNING)
def csr_refused_as_unauthorized(f):
    """Pebble's answer: refused (the MUST holds), but 403 unauthorized where RFC 8555 §7.4 says
    the server SHOULD use badCSR."""
    bad = _problem("finalize-bad-csr", 403, "unauthorized")
    return _run("A-15", _acme_doc(f, **{"finalize-bad-csr": bad}))


@case("A-16")
def certificate_as_der(f):
    der = _ex(
        "certificate",
        200,
        base=ACME_BASE,
        path="/cert/1",
        body=f.leaf().public_bytes(f_der()),
        headers=[("Content-Type", "application/pkix-cert"), ("Replay-Nonce", "c"), INDEX],
    )
    return _run("A-16", _acme_doc(f, certificate=der))


@case("A-17")
def reason_7_accepted(f):
    return _run("A-17", _acme_doc(f, **{"revoke-bad-reason": _json("revoke-bad-reason", 200, {})}))


def f_der():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER


# ==== the tests
@pytest.mark.parametrize("c", CASES, ids=[f"{c.rule}-{c.expect}-{c.name}" for c in CASES])
def test_case(c: Case, factory) -> None:
    outcome = c.build(factory)
    if c.expect == "fail":
        SEEN[c.name] = outcome
    shown = "\n".join(f"{f.severity.name} {f.code}: {f.message}" for f in outcome.findings)
    if c.expect == "pass":
        assert outcome.status is Status.PASS, shown
        return
    assert outcome.status is Status.FAIL, (
        f"{c.rule} did not fail ({outcome.status.value}): {outcome.notes}"
    )
    assert not any(f.severity is Severity.FATAL for f in outcome.findings), shown
    worst = max(f.severity for f in outcome.findings)
    assert worst == (c.severity or REGISTRY.get(c.rule).severity), shown


def test_good_corpus_passes_every_offline_rule(factory) -> None:
    """The passing case of every rule the corpus of jitsuin's own objects exercises: each rule
    passes somewhere and fails nowhere."""
    report = factory.lint(factory.good, factory.configured())
    passed = {o.rule for d in report.documents for o in d.outcomes if o.status is Status.PASS}
    failed = {o.rule for d in report.documents for o in d.outcomes if o.status is Status.FAIL}
    assert not failed
    explicit = {c.rule for c in CASES if c.expect == "pass"}
    offline = {r.id for r in REGISTRY if set(r.kinds) & set(OFFLINE)}
    assert offline - passed - explicit == set()
    PASSED_ON_CORPUS.update(passed)


PASSED_ON_CORPUS: set[str] = set()
SEEN: dict[str, Outcome] = {}


def test_every_rule_has_cases(factory) -> None:
    """Every registered rule has a failing case and a passing case (docs/architecture.md, house
    habit 7)."""
    if not PASSED_ON_CORPUS:
        report = factory.lint(factory.good, factory.configured())
        PASSED_ON_CORPUS.update(
            o.rule for d in report.documents for o in d.outcomes if o.status is Status.PASS
        )
    failing = {c.rule for c in CASES if c.expect == "fail"}
    passing = {c.rule for c in CASES if c.expect == "pass"} | PASSED_ON_CORPUS
    unknown = {c.rule for c in CASES} - {r.id for r in REGISTRY}
    assert not unknown, f"cases for rules that do not exist: {sorted(unknown)}"
    ids = [r.id for r in REGISTRY]
    assert [i for i in ids if i not in failing] == [], "rules without a failing case"
    assert [i for i in ids if i not in passing] == [], "rules without a passing case"


# ==== the cross-check with pkilint
# For each rule that pkilint also implements, the pkilint codes that judge the same requirement.
SHARED = {
    # pkilint's loader refuses input that is not DER outright ("(raised)").
    "X-01": {"pkix.certificate_version_is_not_v3", "itu.invalid_asn1_syntax", "(raised)"},
    "X-02": {"pkix.certificate_serial_number_out_of_range"},
    "X-03": {"pkix.certificate_signature_algorithm_mismatch", "pkix.signature_verification_failed"},
    "X-04": {"pkix.issuer_and_subject_dn_not_binary_equal"},
    "X-05": {
        "pkix.wrong_time_useful_type",
        "pkix.utctime_incorrect_syntax",
        "pkix.generalizedtime_incorrect_syntax",
        "pkix.certificate_negative_validity_period",
    },
    "X-06": {"pkix.duplicate_extension"},
    "X-07": {
        "pkix.authority_key_identifier_missing",
        "pkix.authority_key_id_extension_missing",
        "pkix.authority_key_identifier_keyid_missing",
        "pkix.authority_key_id_keyid_field_missing",
        "pkix.authority_key_identifier_extension_absent",
        "pkix.authority_key_identifier_critical",
        "cabf.authority_key_identifier_has_issuer_cert",
        "pkix.issuer_and_subject_key_identifier_not_equal",
    },
    "X-08": {
        "pkix.certificate_skid_ca_missing",
        "pkix.certificate_skid_end_entity_missing",
        "pkix.certificate_skid_extension_critical",
    },
    "X-09": {
        "pkix.basic_constraints_extension_not_critical",
        "pkix.basic_constraints_has_pathlen_for_non_ca",
    },
    "X-10": {
        "pkix.key_usage_extension_not_critical",
        "pkix.ee_certificate_keycertsign_keyusage_set",
        "pkix.ca_certificate_keycertsign_keyusage_not_set",
        "pkix.ca_certificate_no_ku_extension",
        "cabf.smime.ku_extension_not_critical",
    },
    "X-12": {"pkix.issuer_unique_id_present", "pkix.subject_unique_id_present"},
    "S-01": {"cabf.smime.certificate_validity_period_exceeds_825_days"},
    "S-02": {"cabf.smime.prohibited_signature_algorithm_encoding"},
    "S-03": {
        "cabf.rsa_exponent_prohibited_value",
        "cabf.rsa_modulus_invalid_length",
        "cabf.rsa_exponent_not_in_recommended_range",
        "cabf.smime.unsupported_public_key_type",
        "cabf.smime.prohibited_spki_algorithm_encoding",
    },
    "S-04": {
        "cabf.smime.anypolicy_present",
        "cabf.smime.multiple_reserved_policy_oids",
        "cabf.smime.no_required_reserved_policy_oid",
        "cabf.critical_certificate_policies_extension",
        "cabf.smime.certificate_policies_extension_missing",
    },
    "S-05": {
        "cabf.smime.prohibited_eku_present",
        "cabf.smime.emailprotection_eku_missing",
        "cabf.smime.extended_key_usage_extension_missing",
    },
    "S-06": {
        "cabf.smime.prohibited_ku_present",
        "cabf.smime.key_usage_extension_missing",
        "cabf.smime.ku_extension_not_critical",
        "cabf.smime.unknown_certificate_key_usage_type",
    },
    "S-07": {
        "cabf.smime.san_extension_missing",
        "cabf.smime.prohibited_generalname_type_present",
        "cabf.smime.san_does_not_contain_email_address",
        "pkix.san_extension_is_critical_non_empty_subject",
    },
    "S-08": {
        "cabf.smime.email_address_in_attribute_not_in_san",
        "pkix.subject_email_address_not_in_san",
    },
    "S-09": {"cabf.smime.prohibited_attribute", "pkix.rdn_contains_duplicate_attribute_types"},
    "S-10": {
        "cabf.smime.missing_required_attribute",
        "cabf.smime.mixed_name_and_pseudonym_attributes",
        "cabf.insignificant_attribute_value_present",
    },
    "S-11": {"cabf.smime.common_name_value_unknown_source"},
    "S-14": {"cabf.smime.subject_directory_attributes_extension_prohibited"},
    "S-15": {
        "cabf.smime.crldp_extension_missing",
        "cabf.smime.crldp_fullname_prohibited_uri_scheme",
        "cabf.no_http_crldp_uri",
        "cabf.aia_extension_missing",
        "cabf.aia_ocsp_has_no_http_uri",
        "cabf.aia_ca_issuers_missing",
        "cabf.aia_ca_issuers_has_no_http_uri",
        "cabf.critical_crldp_extension",
        "pkix.certificate_crldp_extension_critical",
        "pkix.authority_information_access_extension_critical",
        "cabf.smime.aia_prohibited_uri_scheme",
    },
    "R-01": {
        "pkix.crl_version_is_not_v2",
        "pkix.crl_version_missing",
        "pkix.crl_number_missing",
        "pkix.crl_number_extension_critical",
        "pkix.crl_signature_algorithm_match",
    },
    "R-02": {"cabf.crl_invalid_validity_period", "cabf.arl_invalid_validity_period"},
    "R-03": {"pkix.crl_reason_code_extension_critical", "cabf.crl_prohibited_reason_code"},
    "R-04": {"pkix.crl_revoked_certificates_empty"},
}
# Where the verdicts differ, and why (docs/conformance.md, "Cross-check with pkilint").
DISAGREEMENTS = {
    (
        "X-02",
        "serial_short",
    ): "pkilint has no 64-bit entropy check (SBR 7.1 cannot be seen in one serial)",
    ("X-02", "serial_31_bits"): "pkilint has no 64-bit entropy check",
    ("X-02", "serial_seven_octets"): "pkilint has no 64-bit entropy check",
    ("X-02", "serial_eight_octets_below_2_63"): "pkilint has no 64-bit entropy check (a warning "
    "here)",
    ("X-02", "serial_reused"): "uniqueness needs the other certificates; pkilint lints one",
    ("X-06", "unknown_critical_extension"): "pkilint does not judge unknown critical extensions",
    ("S-01", "valid_400_days"): "the seed's 396 days (SEED-R1) is narrower than the SBR's 825",
    ("S-01", "valid_395_days_with_configuration"): "SEED-R1 says exactly 396 days",
    ("S-02", "rsa_issuer_signs_with_sha384"): "the SBR allow sha384WithRSAEncryption; the seed "
    "profile pins the hash to the issuer key (SEED-R3)",
    (
        "S-02",
        "p384_issuer_signs_with_sha256",
    ): "pkilint does not tie the hash to the issuer's curve",
    ("S-04", "strict_policy_oid"): "pkilint lints the type the OID names (IV strict) and finds it "
    "fine; the seed profile requires multipurpose",
    (
        "S-04",
        "wrong_profile_cp_oid",
    ): "configuration-dependent: pkilint cannot know the CA's CP OIDs",
    ("S-05", "purposes_differ_from_the_profile"): "configuration-dependent (the profile's EKU set)",
    ("S-06", "signing_only_with_configuration"): "configuration-dependent: SEED-R5 wants dual use",
    ("S-09", "locality_with_configuration"): "configuration-dependent: SEED-R4's attribute set",
    ("S-10", "name_not_romanized_with_configuration"): "romanized names are a seed rule",
    ("S-11", "common_name_is_not_the_name"): "pkilint accepts any CN that is a given/surname/"
    "pseudonym/e-mail value or a combination it recognises",
    ("S-11", "common_name_in_the_other_order"): "configuration-dependent name order",
    ("S-15", "other_hosts_urls_with_configuration"): "configuration-dependent URLs",
    ("R-02", "next_crl_nine_days_later"): "the 7-day reissue interval needs the next CRL",
    ("R-01", "crl_number_goes_back"): "CRL numbers across keys need the other CRLs",
    ("R-01", "crl_signed_by_another_key"): "pkilint does not verify a CRL's signature",
    ("R-04", "entry_dropped_while_the_certificate_is_valid"): "needs the earlier CRL and the "
    "certificate's expiry",
    ("X-04", "issuer_name_encoded_differently"): "pkilint's chain linter reports a byte-unequal "
    "issuer DN as NOTICE (RFC 5280 §7.1 compares normalized names); SBR 7.1.4.1 requires "
    "byte-for-byte",
    ("S-14", "private_extension_outside_the_arc"): "configuration-dependent: the CA's OID arc",
    ("X-09", "leaf_with_path_length"): "pkilint's DER decoder (pyasn1-fasder 0.1.3) refuses "
    "SEQUENCE { INTEGER 0 } as an 'explicitly encoded default value' (itu.invalid_asn1_syntax) "
    "instead of reporting pkix.basic_constraints_has_pathlen_for_non_ca",
    ("S-15", "no_ocsp_url"): "SBR 7.1.2.3c makes the OCSP URL optional; the seed profile "
    "requires it (the CA runs a responder)",
}


def _pkilint_codes(doc) -> set[str]:
    """pkilint's findings at WARNING or above on the judged document, codes without namespace;
    "(raised)" when one of its linters raised instead of reporting."""
    from jitsuin.conformance import pkilint_delegate as delegate
    from jitsuin.conformance.documents import CertificateDoc, CRLDoc

    runs: list = []
    if isinstance(doc, CertificateDoc):
        runs.append(lambda: delegate.lint_pkix_certificate(doc.der))
        if doc.is_smime_subscriber:
            runs.append(lambda: delegate.lint_smime_certificate(doc.der)[1])
        issuer = doc.corpus.issuer_of(doc) or next(
            (c for c in doc.corpus.certificates if c is not doc and c.is_ca), None
        )
        if issuer is not None and issuer is not doc:
            runs.append(lambda: delegate.lint_issuer_subject(issuer.der, doc.der))
    elif isinstance(doc, CRLDoc):
        runs.append(lambda: delegate.lint_crl(doc.der, ca_crl=doc.is_ca_crl))
    codes: set[str] = set()
    for run in runs:
        try:
            found = run()
        except Exception:
            codes.add("(raised)")
            continue
        codes |= {f.code.removeprefix("pkilint:") for f in found if f.severity >= Severity.WARNING}
    return codes


def test_verdicts_agree_with_pkilint(factory) -> None:
    """For every rule pkilint also implements, jitsuin's verdict and pkilint's agree on the
    corpus (every case above and the good corpus), except the listed disagreements."""
    disagreements = {}
    compared = 0
    for c in CASES:
        if c.rule not in SHARED:
            continue
        outcome = c.build(factory)
        doc = factory.last_judged
        if doc is None or doc.kind not in OFFLINE:
            continue
        ours = outcome.status is Status.FAIL
        theirs = bool(_pkilint_codes(doc) & SHARED[c.rule])
        compared += 1
        if ours != theirs:
            disagreements[(c.rule, c.name)] = (ours, sorted(_pkilint_codes(doc)))
    report = factory.lint(factory.good, factory.configured())
    corpus_docs = {d.label: d for d in factory.corpus(factory.good[0], factory.good[1:]).documents}
    for result in report.documents:
        codes = _pkilint_codes(corpus_docs[result.label])
        for outcome in result.outcomes:
            if outcome.rule in SHARED and outcome.status in (Status.PASS, Status.FAIL):
                compared += 1
                if (outcome.status is Status.FAIL) != bool(codes & SHARED[outcome.rule]):
                    disagreements[(outcome.rule, result.label)] = (outcome.status, codes)
    assert compared > 100
    unexplained = {k: v for k, v in disagreements.items() if k not in DISAGREEMENTS}
    assert not unexplained, "\n".join(f"{k}: {v}" for k, v in unexplained.items())
    stale = set(DISAGREEMENTS) - set(disagreements)
    assert not stale, f"listed disagreements that no longer occur: {sorted(stale)}"


def test_docs_list_every_rule_and_disagreement() -> None:
    """docs/conformance.md carries the catalogue and the pkilint disagreements."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "conformance.md").read_text()
    missing = [r.id for r in REGISTRY if f"| {r.id} |" not in text]
    assert not missing, f"rules missing from docs/conformance.md: {missing}"
    assert f"**{len(REGISTRY)} rules**" in text
    undocumented = [k for k in DISAGREEMENTS if f"| {k[0]} | `{k[1]}` |" not in text]
    assert not undocumented, undocumented

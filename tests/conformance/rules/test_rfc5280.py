"""Golden cases of conformance/rules/rfc5280.py: RFC 5280 structure, for every certificate
(X-01..X-14).

Each case builds a document, judges it with one rule and says whether the rule must fail (with which
severity) or pass (docs/architecture.md, house habit 7; tests/conformance/golden.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from jitsuin.conformance.findings import Severity
from tests.conformance.golden import (
    Case,
    _critical_ski,
    _subject_with,
    case,
    case_id,
    cases_in,
    check,
    f_der,
)


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


@case("X-13")
def pkilint_pkix_finding(f):
    bad, ca = _critical_ski(f, f.tls_leaf())
    return f.judge("X-13", bad, extra=[ca.cert])


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


@pytest.mark.parametrize("c", cases_in(__name__), ids=case_id)
def test_case(c: Case, factory) -> None:
    check(c, factory)

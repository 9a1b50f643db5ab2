"""Golden cases of conformance/rules/revocation.py: CRLs and OCSP responses (R-01..R-11).

Each case builds a document, judges it with one rule and says whether the rule must fail (with which
severity) or pass (docs/architecture.md, house habit 7; tests/conformance/golden.py).
"""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jitsuin.ca.keys import KeyType, SoftwareSigner
from jitsuin.ca.revocation import DelegatedResponder, build_response, parse_request
from jitsuin.conformance.documents import LintContext
from jitsuin.conformance.findings import Severity
from tests.conformance.golden import (
    DAY,
    Case,
    case,
    case_id,
    cases_in,
    check,
    f_der,
)


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


@pytest.mark.parametrize("c", cases_in(__name__), ids=case_id)
def test_case(c: Case, factory) -> None:
    check(c, factory)

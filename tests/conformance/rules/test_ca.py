"""Golden cases of conformance/rules/ca.py: CA certificates and rollover link certificates
(C-01..C-13).

Each case builds a document, judges it with one rule and says whether the rule must fail (with which
severity) or pass (docs/architecture.md, house habit 7; tests/conformance/golden.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from jitsuin.ca.keys import KeyType
from jitsuin.conformance.documents import LintContext
from jitsuin.conformance.findings import Severity, Status
from tests.conformance.golden import (
    DAY,
    Case,
    _policies,
    case,
    case_id,
    cases_in,
    check,
)


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


@pytest.mark.parametrize("c", cases_in(__name__), ids=case_id)
def test_case(c: Case, factory) -> None:
    check(c, factory)

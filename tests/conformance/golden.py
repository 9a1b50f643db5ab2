"""Golden cases, generated at test time (zlint's per-lint table; docs/architecture.md, house habit
7): the machinery the test modules in tests/conformance/rules/ share. Each registers its cases with
``@case(rule, expect)``; tests/conformance/test_rules.py checks that every rule has at least one
failing case and one passing one (on the corpus of everything jitsuin issues, or in a case when the
rule needs a special context).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

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


def _subject_with(
    f, *attributes: x509.NameAttribute, drop: tuple[ObjectIdentifier, ...] = ()
) -> x509.Name:
    kept = [a for a in f.leaf().subject if a.oid not in drop]
    return x509.Name(kept + list(attributes))


def _critical_ski(f, leaf):
    ca = f.ca()
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return f.variant(leaf, ca.key, replace={x509.SubjectKeyIdentifier: (ski, True)}), ca


def _policies(*oids: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies(
        [x509.PolicyInformation(ObjectIdentifier(o), None) for o in oids]
    )


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


def _run(rule_id, doc):
    return REGISTRY.get(rule_id).run(doc)


def f_der():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER


def cases_in(module: str) -> list[Case]:
    """The cases a test module registered, in order."""
    return [c for c in CASES if c.build.__module__ == module]


def case_id(c: Case) -> str:
    return f"{c.rule}-{c.expect}-{c.name}"


def check(c: Case, factory) -> None:  # type: ignore[no-untyped-def]
    """A failing case fails with the expected worst severity and no crash; a passing one passes."""
    outcome = c.build(factory)
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

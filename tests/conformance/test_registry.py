"""The registry's own guarantees (docs/architecture.md, house habits 5 and 6): unknown ids are
explicit, a crashing rule is a FATAL finding and never a pass, dates give NE, applies() gives NA, a
finding above the rule's ceiling is a bug, and suppressions keep their reason."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from jitsuin.conformance.findings import Finding, Severity, Status, Violation, suppress
from jitsuin.conformance.registry import REGISTRY, DocKind, Registry, Source, UnknownRule


@dataclass
class Doc:
    kind: DocKind = DocKind.CERTIFICATE
    label: str = "doc"
    effective_time: dt.datetime | None = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    fine: bool = True


def _registry():
    registry = Registry()

    def add(rule_id, check, **kwargs):
        defaults = {
            "citation": "test",
            "source": Source.PROJECT,
            "severity": Severity.ERROR,
            "kinds": [DocKind.CERTIFICATE],
        }
        registry.rule(rule_id, "t", "d", **(defaults | kwargs))(check)
        return registry.get(rule_id)

    return registry, add


def test_a_crashing_rule_is_fatal_never_a_pass():
    _, add = _registry()

    def broken(doc):
        raise KeyError("boom")
        yield  # a generator, like every check

    outcome = add("T-01", broken).run(Doc())
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.severity is Severity.FATAL and finding.code == "T-01:crash"
    assert "KeyError" in finding.message


def test_not_applicable_not_effective_and_ceiling():
    _, add = _registry()
    rule = add(
        "T-02",
        lambda doc: iter([Violation("bad")]),
        applies=lambda doc: doc.fine,
        effective=dt.date(2023, 9, 1),
        ineffective=dt.date(2030, 1, 1),
    )
    assert rule.run(Doc()).status is Status.FAIL
    assert rule.run(Doc(fine=False)).status is Status.NA
    assert rule.run(Doc(effective_time=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))).status is Status.NE
    assert rule.run(Doc(effective_time=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))).status is Status.NE
    assert rule.run(Doc(kind=DocKind.CRL)).status is Status.NA
    low = add(
        "T-03", lambda doc: iter([Violation("too loud", Severity.ERROR)]), severity=Severity.WARNING
    )
    (finding,) = low.run(Doc()).findings
    assert finding.severity is Severity.FATAL  # reporting above the ceiling is a rule bug


def test_ids_are_checked_and_unknown_is_explicit():
    registry, add = _registry()
    with pytest.raises(ValueError):
        add("bad id", lambda doc: iter(()))
    add("T-04", lambda doc: iter(()))
    with pytest.raises(ValueError):
        add("T-04", lambda doc: iter(()))
    with pytest.raises(UnknownRule):
        registry.get("T-99")
    with pytest.raises(UnknownRule):
        REGISTRY.get("X-99")


def test_every_registered_rule_is_described():
    import jitsuin.conformance.runner  # noqa: F401 (registers the rules)

    assert len(REGISTRY) >= 80
    for rule in REGISTRY:
        assert rule.title and len(rule.description) > 30 and rule.citation, rule.id
        assert rule.kinds, rule.id


def test_suppression_keeps_the_reason():
    findings = [
        Finding("X-13", Severity.ERROR, "pkilint:cabf.internal_domain_name", "loopback"),
        Finding("S-11", Severity.WARNING, "S-11", "cn"),
        Finding("S-01", Severity.ERROR, "S-01", "long"),
    ]
    marked = suppress(findings, {"cabf.internal_domain_name": "dev CA", "S-11": "our CN"})
    assert [f.suppressed for f in marked] == ["dev CA", "our CN", None]
    assert [f.counts for f in marked] == [False, False, True]


# RFC 2119 keywords, and the two words a live rule uses beside them: "defined" (the RFC defines
# the message, a status code or media type, without a keyword; a client built to the RFC cannot
# proceed without it, so it is held as a MUST) and "none" (stated without a keyword: a warning).
KEYWORDS = {"MUST", "MUST NOT", "REQUIRED", "SHALL", "SHALL NOT", "SHOULD", "SHOULD NOT"}
AS_ERROR = {"MUST", "MUST NOT", "REQUIRED", "SHALL", "SHALL NOT", "defined"}


def test_live_rules_cite_their_rfc_2119_keyword():
    """RFC 2119: a MUST broken is an ERROR, a SHOULD broken a WARNING. Every live rule names its
    keywords, its description says which part each one governs, and its ceiling follows them:
    ERROR only when a MUST-level part exists."""
    live = [r for r in REGISTRY if r.kinds & {DocKind.EST_SERVER, DocKind.ACME_SERVER}]
    assert len(live) == 28
    for r in live:
        assert r.keyword, f"{r.id} names no RFC 2119 keyword"
        words = [w.strip() for w in r.keyword.split(";")]
        assert set(words) <= KEYWORDS | {"defined", "none"}, (r.id, words)
        for word in words:
            assert word in r.description, f"{r.id}: {word!r} is not in the description"
        ceiling = Severity.ERROR if AS_ERROR & set(words) else Severity.WARNING
        assert r.severity == ceiling, (r.id, r.severity, words)
    assert REGISTRY.get("A-15").to_json()["keyword"] == "MUST; SHOULD"

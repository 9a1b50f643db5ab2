"""The rule registry (docs/architecture.md, house habits 5 and 6): one object per rule, keyed by its
id, carrying its requirement text, citation, source, severity ceiling and effective dates (zlint's
metadata), ``applies()`` (NA) and ``check()`` (findings). A rule that raises yields a FATAL finding,
never a pass (pkilint ``validation.py``: a validator that fails is reported, not skipped)."""

from __future__ import annotations

import datetime as dt
import enum
import re
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from jitsuin.conformance.findings import Finding, Note, Outcome, Severity, Status, Violation


class Source(enum.Enum):
    RFC5280 = "RFC5280"
    SBR = "SBR"  # CA/Browser Forum S/MIME Baseline Requirements
    RFC9810 = "RFC9810"  # CMP (obsoletes RFC 4210): root CA key update, section 4.4
    RFC6960 = "RFC6960"  # OCSP
    RFC7030 = "RFC7030"  # EST (with RFC 8951)
    RFC8555 = "RFC8555"  # ACME
    PROJECT = "PROJECT"  # jitsuin's profile decisions (docs/conformance.md)
    SEED = "SEED"  # the seed procedure's rules SEED-R1..R20
    JP = "JP"  # the Japanese electronic signature act's ordinance (accreditation)


class DocKind(enum.Enum):
    CERTIFICATE = "certificate"
    CRL = "crl"
    OCSP_RESPONSE = "ocsp-response"
    EST_SERVER = "est-server"
    ACME_SERVER = "acme-server"


class Document(Protocol):
    kind: DocKind
    label: str

    @property
    def effective_time(self) -> dt.datetime | None: ...


Check = Callable[[Any], Iterable[Violation | Note]]
Applies = Callable[[Any], bool]


def _always(_doc: object) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    description: str  # the requirement, in words a reviewer can check against the citation
    citation: str
    source: Source
    severity: Severity  # the ceiling: a finding may be lower (e.g. X-08's W for leaves)
    kinds: frozenset[DocKind]
    check: Check
    applies: Applies = _always
    effective: dt.datetime | None = None  # NE for documents dated before
    ineffective: dt.datetime | None = None  # NE for documents dated on or after
    config_dependent: bool = False  # exact values with a jitsuin configuration, else shape
    delegate: str | None = None  # "pkilint" when the rule runs another linter in-process
    # Live rules: the RFC 2119 keywords of the requirement (RFC 2119; a MUST broken is an ERROR,
    # a SHOULD broken a WARNING), e.g. "MUST; SHOULD". The description says which part is which.
    keyword: str | None = None

    def run(self, doc: Any) -> Outcome:
        """Apply the rule to ``doc``: NA, NE, PASS or FAIL with findings; a crash is FATAL."""
        if doc.kind not in self.kinds:
            return Outcome(self.id, Status.NA)
        when = doc.effective_time
        if when is not None and (
            (self.effective is not None and when < self.effective)
            or (self.ineffective is not None and when >= self.ineffective)
        ):
            return Outcome(self.id, Status.NE)
        findings: list[Finding] = []
        notes: list[str] = []
        try:
            if not self.applies(doc):
                return Outcome(self.id, Status.NA)
            for item in self.check(doc):
                if isinstance(item, Note):
                    notes.append(item.message)
                    continue
                severity = item.severity or self.severity
                # FATAL is for a rule or delegate that could not judge the document at all.
                if severity > self.severity and severity is not Severity.FATAL:
                    raise AssertionError(
                        f"rule {self.id} reported {severity.name} above its ceiling "
                        f"{self.severity.name}"
                    )
                findings.append(
                    Finding(self.id, severity, item.code or self.id, item.message, item.node_path)
                )
        except Exception as exc:  # a crashing rule must never look like a pass
            # (docs/architecture.md, house habit 6)
            where = traceback.extract_tb(exc.__traceback__)[-1]
            findings.append(
                Finding(
                    self.id,
                    Severity.FATAL,
                    f"{self.id}:crash",
                    f"the rule could not run: {type(exc).__name__}: {exc} "
                    f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})",
                )
            )
        status = Status.FAIL if findings else Status.PASS
        return Outcome(self.id, status, tuple(findings), tuple(notes))

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "citation": self.citation,
            "source": self.source.value,
            "severity": self.severity.name,
            "applies_to": sorted(k.value for k in self.kinds),
            "effective": self.effective.date().isoformat() if self.effective else None,
            "ineffective": self.ineffective.date().isoformat() if self.ineffective else None,
            "config_dependent": self.config_dependent,
            "delegate": self.delegate,
            "keyword": self.keyword,
        }


class UnknownRule(KeyError):
    pass


_ID = re.compile(r"[A-Z]+-[0-9]{2}")


def _sort_key(rule_id: str) -> tuple[str, int]:
    prefix, _, number = rule_id.partition("-")
    return prefix, int(number)


class Registry:
    """Rules keyed by id, with an explicit unknown (docs/architecture.md, house habit 5)."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}
        self._sorted: list[Rule] | None = None  # by id; made again after an add

    def add(self, rule: Rule) -> Rule:
        if not _ID.fullmatch(rule.id):
            raise ValueError(f"rule id {rule.id!r} is not of the form ABC-01")
        if rule.id in self._rules:
            raise ValueError(f"rule {rule.id} is registered twice")
        self._rules[rule.id] = rule
        self._sorted = None
        return rule

    def rule(
        self,
        rule_id: str,
        title: str,
        description: str,
        *,
        citation: str,
        source: Source,
        severity: Severity,
        kinds: Iterable[DocKind],
        applies: Applies = _always,
        effective: dt.date | None = None,
        ineffective: dt.date | None = None,
        config_dependent: bool = False,
        delegate: str | None = None,
        keyword: str | None = None,
    ) -> Callable[[Check], Check]:
        """Decorator: register ``check`` under ``rule_id``."""

        def at_midnight(day: dt.date | None) -> dt.datetime | None:
            if day is None:
                return None
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)

        def register(check: Check) -> Check:
            self.add(
                Rule(
                    id=rule_id,
                    title=title,
                    description=" ".join(description.split()),
                    citation=citation,
                    source=source,
                    severity=severity,
                    kinds=frozenset(kinds),
                    check=check,
                    applies=applies,
                    effective=at_midnight(effective),
                    ineffective=at_midnight(ineffective),
                    config_dependent=config_dependent,
                    delegate=delegate,
                    keyword=keyword,
                )
            )
            return check

        return register

    def get(self, rule_id: str) -> Rule:
        try:
            return self._rules[rule_id]
        except KeyError:
            raise UnknownRule(f"no rule {rule_id!r}; see `jitsuin lint --list-rules`") from None

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def __iter__(self) -> Iterator[Rule]:
        if self._sorted is None:
            self._sorted = sorted(self._rules.values(), key=lambda r: _sort_key(r.id))
        return iter(self._sorted)

    def __len__(self) -> int:
        return len(self._rules)

    def for_kind(self, kind: DocKind) -> list[Rule]:
        return [r for r in self if kind in r.kinds]


REGISTRY = Registry()
rule = REGISTRY.rule

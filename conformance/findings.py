"""What a rule reports: findings with a severity, and the outcome of one rule on one document.

Severities follow pkilint's and zlint's scale (FATAL > ERROR > WARNING > NOTICE > INFO). A rule
reports a finding only for a violation; what it could not check (no issuer certificate given, a
draft signed with a throwaway key) goes into the outcome's notes, never into a silent pass.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace


class Severity(enum.IntEnum):
    INFO = 1
    NOTICE = 2
    WARNING = 3
    ERROR = 4
    FATAL = 5

    @classmethod
    def parse(cls, name: str) -> Severity:
        try:
            return cls[name.upper()]
        except KeyError:
            known = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {name!r}; choose one of {known}") from None


class Status(enum.Enum):
    """zlint's result vocabulary: a rule passed, failed, did not apply (NA) or was not yet or
    no longer effective for the document's date (NE)."""

    PASS = "pass"  # noqa: S105 (a status, not a password)
    FAIL = "fail"
    NA = "na"
    NE = "ne"


@dataclass(frozen=True, slots=True)
class Violation:
    """What a rule's ``check`` yields; the registry turns it into a ``Finding``."""

    message: str
    severity: Severity | None = None  # None: the rule's own severity
    code: str | None = None  # None: the rule id; delegates give their own namespaced code
    node_path: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Something a rule could not check, or a delegate's finding below the blocking level."""

    message: str


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    code: str
    message: str
    node_path: str | None = None
    suppressed: str | None = None  # the operator's reason, when suppressed

    @property
    def counts(self) -> bool:
        return self.suppressed is None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": self.rule,
            "severity": self.severity.name,
            "code": self.code,
            "message": self.message,
        }
        if self.node_path:
            out["node_path"] = self.node_path
        if self.suppressed is not None:
            out["suppressed"] = self.suppressed
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """One rule on one document."""

    rule: str
    status: Status
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def worst(self) -> Severity | None:
        counted = [f.severity for f in self.findings if f.counts]
        return max(counted) if counted else None


def suppress(findings: Sequence[Finding], suppressed: Mapping[str, str]) -> list[Finding]:
    """Mark findings whose code (with or without the ``pkilint:`` namespace) or rule id the
    operator suppressed, keeping the reason (pkilint's ``finding_filter`` idea)."""
    out = []
    for finding in findings:
        bare = finding.code.split(":", 1)[1] if ":" in finding.code else finding.code
        reason = next(
            (suppressed[k] for k in (finding.code, bare, finding.rule) if k in suppressed), None
        )
        out.append(replace(finding, suppressed=reason) if reason is not None else finding)
    return out


@dataclass(frozen=True, slots=True)
class DocumentResult:
    """Every rule's outcome on one document (one file, or one object inside a file)."""

    label: str
    kind: str
    description: str
    outcomes: tuple[Outcome, ...] = field(default_factory=tuple)

    @property
    def findings(self) -> list[Finding]:
        return [f for o in self.outcomes for f in o.findings]

    def worst(self) -> Severity | None:
        counted = [f.severity for f in self.findings if f.counts]
        return max(counted) if counted else None

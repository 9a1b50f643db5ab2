"""Reports: text for people; JSON shaped like pkilint's (per-rule results with findings) plus
zlint-style ``*_present`` flags; JUnit XML for CI; SARIF 2.1.0 for code-scanning dashboards.
And the rule catalogue (``jitsuin lint --list-rules``)."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterable
from importlib import resources
from xml.etree import ElementTree as ET

from jitsuin.conformance.findings import Finding, Outcome, Severity, Status
from jitsuin.conformance.registry import Rule
from jitsuin.conformance.runner import Report

FORMATS = ("text", "json", "junit", "sarif")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _tool() -> dict[str, str]:
    return {"name": "jitsuin", "version": _version("jitsuin"), "pkilint": _version("pkilint")}


def schema(name: str) -> dict[str, object]:
    """A published JSON Schema shipped in the package: ``lint-report`` (``--format json``) or
    ``rule-catalogue`` (``--list-rules --format json``)."""
    text = resources.files("jitsuin.conformance").joinpath(f"schemas/{name}.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# -- text
def render_text(report: Report, *, verbose: bool = False) -> str:
    lines = []
    for doc in report.documents:
        lines.append(f"{doc.label}: {doc.description}")
        shown = 0
        for outcome in doc.outcomes:
            for f in outcome.findings:
                shown += 1
                tag = f" (suppressed: {f.suppressed})" if f.suppressed is not None else ""
                where = f" [{f.node_path}]" if f.node_path and verbose else ""
                code = f" {f.code}" if f.code != f.rule else ""
                lines.append(f"  {f.severity.name:<7} {f.rule}{code}: {f.message}{where}{tag}")
            if verbose:
                for note in outcome.notes:
                    lines.append(f"  note    {outcome.rule}: {note}")
        if not shown:
            passed = sum(1 for o in doc.outcomes if o.status is Status.PASS)
            lines.append(f"  OK ({passed} rules passed)")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def summary(report: Report) -> str:
    counts = ", ".join(
        f"{report.count(s)} {s.name.lower()}" for s in sorted(Severity, reverse=True)
    )
    suppressed = sum(1 for f in report.findings() if not f.counts)
    return f"{len(report.documents)} document(s): {counts}; {suppressed} suppressed"


# -- JSON
def _outcome_json(outcome: Outcome) -> dict[str, object]:
    out: dict[str, object] = {"rule": outcome.rule, "status": outcome.status.value}
    if outcome.findings:
        out["findings"] = [f.to_json() for f in outcome.findings]
    if outcome.notes:
        out["notes"] = list(outcome.notes)
    return out


def to_json(report: Report) -> dict[str, object]:
    """The report as schemas/lint-report.schema.json describes it."""

    def present(severity: Severity) -> bool:
        return report.count(severity) > 0

    return {
        "tool": _tool(),
        "fatals_present": present(Severity.FATAL),
        "errors_present": present(Severity.ERROR),
        "warnings_present": present(Severity.WARNING),
        "notices_present": present(Severity.NOTICE),
        "summary": {s.name: report.count(s) for s in sorted(Severity, reverse=True)}
        | {"documents": len(report.documents)},
        "files": [
            {
                "path": doc.label,
                "kind": doc.kind,
                "description": doc.description,
                "findings": [f.to_json() for f in doc.findings],
                "results": [_outcome_json(o) for o in doc.outcomes],
            }
            for doc in report.documents
        ],
    }


def render_json(report: Report) -> str:
    return json.dumps(to_json(report), indent=2) + "\n"


# -- JUnit XML
def render_junit(report: Report, *, threshold: Severity = Severity.ERROR) -> str:
    """One testsuite per document, one testcase per rule: failure for a finding at or above
    ``threshold``, error for FATAL, skipped for NA/NE, the rest in system-out."""
    titles = {r.id: r.title for r in report.rules}
    root = ET.Element("testsuites", name="jitsuin conformance")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for doc in report.documents:
        suite = ET.SubElement(root, "testsuite", name=doc.label)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for outcome in doc.outcomes:
            counts["tests"] += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"jitsuin.{doc.kind}",
                name=f"{outcome.rule} {titles.get(outcome.rule, '')}".strip(),
            )
            if outcome.status in (Status.NA, Status.NE):
                counts["skipped"] += 1
                reason = "not applicable" if outcome.status is Status.NA else "not effective"
                ET.SubElement(case, "skipped", message=reason)
                continue
            counted = [f for f in outcome.findings if f.counts]
            fatal = [f for f in counted if f.severity is Severity.FATAL]
            failing = [f for f in counted if threshold <= f.severity < Severity.FATAL]
            text = "\n".join(_line(f) for f in outcome.findings)
            if fatal:
                counts["errors"] += 1
                ET.SubElement(case, "error", message=fatal[0].message, type="FATAL").text = text
            elif failing:
                counts["failures"] += 1
                ET.SubElement(
                    case, "failure", message=failing[0].message, type=failing[0].severity.name
                ).text = text
            elif text or outcome.notes:
                ET.SubElement(case, "system-out").text = "\n".join(
                    [text, *outcome.notes] if text else list(outcome.notes)
                )
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _line(f: Finding) -> str:
    tag = f" (suppressed: {f.suppressed})" if f.suppressed is not None else ""
    return f"{f.severity.name} {f.code}: {f.message}{tag}"


# -- SARIF 2.1.0
_LEVEL = {
    Severity.FATAL: "error",
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.NOTICE: "note",
    Severity.INFO: "note",
}


def to_sarif(report: Report) -> dict[str, object]:
    rules = [
        {
            "id": r.id,
            "name": r.title,
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": r.description},
            "defaultConfiguration": {"level": _LEVEL[r.severity]},
            "properties": {"citation": r.citation, "source": r.source.value},
        }
        for r in report.rules
    ]
    index = {r.id: i for i, r in enumerate(report.rules)}
    results = []
    for doc in report.documents:
        for f in doc.findings:
            result: dict[str, object] = {
                "ruleId": f.rule,
                "level": _LEVEL[f.severity],
                "message": {"text": f.message if f.code == f.rule else f"{f.code}: {f.message}"},
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": doc.label.split("#")[0]}},
                        "logicalLocations": [
                            {"fullyQualifiedName": f.node_path or doc.label, "kind": "object"}
                        ],
                    }
                ],
            }
            if f.rule in index:
                result["ruleIndex"] = index[f.rule]
            if f.suppressed is not None:
                result["suppressions"] = [{"kind": "external", "justification": f.suppressed}]
            results.append(result)
    tool = _tool()
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "jitsuin lint",
                        "version": tool["version"],
                        "informationUri": "https://github.com/jitsuin/jitsuin",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def render_sarif(report: Report) -> str:
    return json.dumps(to_sarif(report), indent=2) + "\n"


def render(report: Report, form: str, *, verbose: bool = False) -> str:
    if form == "json":
        return render_json(report)
    if form == "junit":
        return render_junit(report)
    if form == "sarif":
        return render_sarif(report)
    return render_text(report, verbose=verbose)


# -- the catalogue
def render_catalogue(rules: Iterable[Rule], form: str = "text") -> str:
    rules = list(rules)
    if form == "json":  # schemas/rule-catalogue.schema.json
        catalogue = {"tool": _tool(), "rules": [r.to_json() for r in rules]}
        return json.dumps(catalogue, indent=2) + "\n"
    lines = []
    for r in rules:
        flags = []
        if r.config_dependent:
            flags.append("config")
        if r.delegate:
            flags.append(r.delegate)
        applies = ", ".join(sorted(k.value for k in r.kinds))
        extra = f" [{', '.join(flags)}]" if flags else ""
        lines.append(f"{r.id:<6} {r.severity.name[0]} {r.source.value:<8} {r.title}{extra}")
        lines.append(f"       applies to: {applies}; cites {r.citation}")
        lines.append(f"       {r.description}")
    lines.append(f"{len(rules)} rules")
    return "\n".join(lines) + "\n"

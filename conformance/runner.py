"""Run the registry over documents: files and directories (``jitsuin lint``), a corpus built in
memory (the pre-issuance gate), or what a live server returned (``jitsuin conformance``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

import jitsuin.conformance.rules  # noqa: F401 (registers every rule)
from jitsuin.conformance.documents import (
    Corpus,
    Document,
    LintContext,
    Unreadable,
    load_objects,
)
from jitsuin.conformance.findings import (
    DocumentResult,
    Finding,
    Outcome,
    Severity,
    Status,
    suppress,
)
from jitsuin.conformance.registry import REGISTRY, Rule

# Files a directory walk picks up; a file named on the command line is always read.
PKI_SUFFIXES = {".pem", ".crt", ".cer", ".der", ".crl", ".ocsp", ".p7b", ".p7c", ".b64"}


@dataclass
class Report:
    documents: list[DocumentResult] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)  # the catalogue the run used

    def findings(self) -> list[Finding]:
        return [f for d in self.documents for f in d.findings]

    def worst(self) -> Severity | None:
        counted = [f.severity for f in self.findings() if f.counts]
        return max(counted) if counted else None

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings() if f.counts and f.severity == severity)

    def exit_code(self, threshold: Severity = Severity.ERROR) -> int:
        """1 when a finding at or above ``threshold`` is not suppressed, else 0."""
        worst = self.worst()
        return 1 if worst is not None and worst >= threshold else 0

    def extend(self, other: Report) -> None:
        self.documents.extend(other.documents)
        known = {r.id for r in self.rules}
        self.rules.extend(r for r in other.rules if r.id not in known)


def run_rules(doc: Document | object, rules: Iterable[Rule], context: LintContext) -> list[Outcome]:
    out = []
    for r in rules:
        outcome = r.run(doc)
        if outcome.findings and context.suppress:
            marked = tuple(suppress(outcome.findings, context.suppress))
            status = Status.FAIL if any(f.counts for f in marked) else Status.PASS
            outcome = Outcome(outcome.rule, status, marked, outcome.notes)
        out.append(outcome)
    return out


def _unreadable(item: Unreadable) -> DocumentResult:
    finding = Finding("LOAD", Severity.FATAL, "load.unreadable", item.reason)
    return DocumentResult(
        item.label, "unreadable", item.reason, (Outcome("LOAD", Status.FAIL, (finding,)),)
    )


def lint_corpus(
    corpus: Corpus, rules: Sequence[Rule] | None = None, unreadable: Sequence[Unreadable] = ()
) -> Report:
    catalogue = list(rules) if rules is not None else list(REGISTRY)
    report = Report(rules=catalogue)
    for doc in corpus.reported:
        applicable = [r for r in catalogue if doc.kind in r.kinds]
        outcomes = run_rules(doc, applicable, corpus.context)
        report.documents.append(
            DocumentResult(doc.label, doc.kind.value, doc.description, tuple(outcomes))
        )
    report.documents.extend(_unreadable(u) for u in unreadable)
    return report


def collect(paths: Iterable[str | Path]) -> list[tuple[str, bytes]]:
    """(label, bytes) of every file named, and of every PKI file under every directory named
    (sorted, so runs are reproducible). A missing path raises ``FileNotFoundError``."""
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for directory, _, files in sorted(os.walk(path)):
                for name in sorted(files):
                    file = Path(directory, name)
                    if file.suffix.lower() in PKI_SUFFIXES:
                        out.append((str(file), file.read_bytes()))
        elif path.exists():
            out.append((str(path), path.read_bytes()))
        else:
            raise FileNotFoundError(f"{raw}: no such file or directory")
    return out


def load_corpus(
    files: Iterable[tuple[str, bytes]],
    context: LintContext | None = None,
    extra_certificates: Iterable[x509.Certificate] = (),
) -> tuple[Corpus, list[Unreadable]]:
    documents: list[Document] = []
    unreadable: list[Unreadable] = []
    for label, data in files:
        for item in load_objects(data, label):
            if isinstance(item, Unreadable):
                unreadable.append(item)
            else:
                documents.append(item)
    return Corpus(documents, context, extra_certificates), unreadable


def lint_paths(
    paths: Iterable[str | Path],
    context: LintContext | None = None,
    extra_certificates: Iterable[x509.Certificate] = (),
    rules: Sequence[Rule] | None = None,
) -> Report:
    """``jitsuin lint``: every certificate, CRL and OCSP response in ``paths``, judged together
    (so a directory holding a CA set gets the cross-object rules)."""
    corpus, unreadable = load_corpus(collect(paths), context, extra_certificates)
    return lint_corpus(corpus, rules, unreadable)

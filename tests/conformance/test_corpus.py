"""Everything jitsuin issues (both profiles x every key type, the TLS server certificate, a CA
generation rollover with its link certificates, CRLs, OCSP responses) lints clean."""

from __future__ import annotations

from jitsuin.conformance.findings import Severity
from jitsuin.conformance.report import render_text


def test_good_corpus_has_no_error_or_warning(factory):
    report = factory.lint(factory.good, factory.configured())
    bad = [f for f in report.findings() if f.severity >= Severity.WARNING]
    assert not bad, render_text(report)


def test_good_corpus_without_configuration(factory):
    report = factory.lint(factory.good)
    bad = [f for f in report.findings() if f.severity >= Severity.WARNING]
    assert not bad, render_text(report)

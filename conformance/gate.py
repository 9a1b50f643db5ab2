"""The pre-issuance lint gate: the rule registry (pkilint included) runs on every draft before
the CA signs it (the S/MIME BR require pre-issuance linting, SBR 4.3.1.2), and on every CRL and
OCSP response before it is published.

Findings at ERROR or above block, except codes the operator suppressed with a reason. (The
registry's delegate rules X-13/S-18/R-09 turn a pkilint WARNING into an ERROR, so pkilint blocks
at WARNING.) pkilint itself is imported on the first lint.
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.profiles import Profile
from jitsuin.conformance.documents import (
    CertificateDoc,
    Corpus,
    CRLDoc,
    Document,
    Expectations,
    LintContext,
    OCSPDoc,
)
from jitsuin.conformance.findings import Finding, Severity
from jitsuin.conformance.runner import lint_corpus
from jitsuin.conformance.shapes import ShapeCache

# The gate's arguments and findings cross to lint processes (``IssuanceLint(executor=...)``) by
# pickle; cryptography's OIDs and names do not pickle by themselves, so they travel as their
# constructor arguments.
copyreg.pickle(x509.ObjectIdentifier, lambda o: (x509.ObjectIdentifier, (o.dotted_string,)))
copyreg.pickle(x509.NameAttribute, lambda a: (x509.NameAttribute, (a.oid, a.value, a._type)))
copyreg.pickle(
    x509.RelativeDistinguishedName, lambda r: (x509.RelativeDistinguishedName, (list(r),))
)
copyreg.pickle(x509.Name, lambda n: (x509.Name, (list(n.rdns),)))

# A loopback or private host in CRL/OCSP/caIssuers URLs is right for a development CA and wrong
# for a public one; the embedded default configuration suppresses it with this reason.
LOOPBACK_SUPPRESSION = {
    "cabf.internal_domain_name": "the development CA publishes CRL, OCSP and CA certificate "
    "URLs on a loopback address",
}


# -- the registry as the gate


def _blocking(findings: Sequence[Finding], threshold: Severity) -> list[str]:
    return [
        f"{f.rule} {f.severity.name}"
        + (f" {f.code}" if f.code != f.rule else "")
        + f": {f.message}"
        for f in findings
        if f.counts and f.severity >= threshold
    ]


def _lint_one(
    document: Document,
    issuers: Iterable[x509.Certificate],
    context: LintContext,
    others: Iterable[Document] = (),
) -> list[Finding]:
    others = list(others)
    corpus = Corpus([document, *others], context, issuers)
    for other in others:
        other.context_only = True
    report = lint_corpus(corpus)
    return [f for d in report.documents[:1] for f in d.findings]


def lint_certificate(
    certificate: x509.Certificate,
    issuers: Iterable[x509.Certificate] = (),
    *,
    profile: str | None = None,
    expectations: Expectations | None = None,
    suppressed: Mapping[str, str] | None = None,
    draft: bool = False,
    shapes: ShapeCache | None = None,
) -> list[Finding]:
    """Every finding of every rule on one certificate; ``issuers`` are the CA certificates it
    may chain to (the cross-object rules need them). ``shapes``: run pkilint incrementally
    (conformance/shapes.py), the same findings at less cost for a draft of a shape seen before."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    context = LintContext(
        expectations=expectations,
        profile=profile,
        suppress=dict(suppressed or {}),
        draft=draft,
        shapes=shapes,
    )
    return _lint_one(CertificateDoc(der, "draft" if draft else "certificate"), issuers, context)


def lint_crl(
    crl_der: bytes,
    issuers: Iterable[x509.Certificate],
    *,
    previous: Iterable[bytes] = (),
    issued_certificates: Iterable[x509.Certificate] = (),
    expectations: Expectations | None = None,
    suppressed: Mapping[str, str] | None = None,
    draft: bool = False,
) -> list[Finding]:
    """docs/conformance.md D on a CRL about to be published: ``issuers`` are the CA certificates
    (every generation and link certificate), ``previous`` the CRLs published before it (for the
    number and reissue rules), ``issued_certificates`` the revoked certificates it should still
    list."""
    context = LintContext(expectations=expectations, suppress=dict(suppressed or {}), draft=draft)
    others: list[Document] = [CRLDoc(d, f"previous CRL {i}") for i, d in enumerate(previous, 1)]
    others += [
        CertificateDoc(
            c.public_bytes(serialization.Encoding.DER), f"certificate {c.serial_number:x}", parsed=c
        )
        for c in issued_certificates
    ]
    return _lint_one(CRLDoc(crl_der, "crl"), issuers, context, others)


def lint_ocsp_response(
    response_der: bytes,
    issuers: Iterable[x509.Certificate],
    *,
    issued: Callable[[bytes, int], bool | None] | None = None,
    crls: Iterable[bytes] = (),
    suppressed: Mapping[str, str] | None = None,
    draft: bool = False,
) -> list[Finding]:
    """docs/conformance.md D on an OCSP response about to be sent; ``issued(issuer_ski, serial)``
    says whether the CA ever issued that serial (R-08: an unused serial is never "good"), and a
    serial on one of ``crls`` (the published CRLs) is never "good" either."""
    context = LintContext(suppress=dict(suppressed or {}), draft=draft, issued=issued)
    others: list[Document] = [CRLDoc(d, f"published CRL {i}") for i, d in enumerate(crls, 1)]
    return _lint_one(OCSPDoc(response_der, "ocsp"), issuers, context, others)


def _lint_draft_der(
    der: bytes,
    issuer_ders: Sequence[bytes],
    profile: str,
    expectations: Expectations | None,
    suppressed: Mapping[str, str],
    incremental: bool = False,
) -> list[Finding]:
    """``IssuanceLint.findings`` in a lint process: everything arrives as DER or pickled data;
    the shapes are kept in the process."""
    return lint_certificate(
        x509.load_der_x509_certificate(der),
        [x509.load_der_x509_certificate(d) for d in issuer_ders],
        profile=profile,
        expectations=expectations,
        suppressed=suppressed,
        draft=True,
        shapes=_PROCESS_SHAPES if incremental else None,
    )


_PROCESS_SHAPES = ShapeCache()


class IssuanceLint:
    """The pre-issuance gate (SBR 4.3.1.2; docs/conformance.md, "The pre-issuance gate"):
    callable as ``jitsuin.ca.issuance.Lint``. Runs the whole registry, pkilint included, on the
    draft (the same TBS signed with a throwaway key) and returns the findings at ERROR or above,
    which make the issuer refuse with ``CAError(LINT)``. Also checks CRLs and OCSP responses
    before they are published (``check_crl``, ``check_ocsp_response``)."""

    def __init__(
        self,
        expectations: Expectations | None = None,
        *,
        suppressed: Mapping[str, str] | None = None,
        issuers: Callable[[], Iterable[x509.Certificate]] | Iterable[x509.Certificate] = (),
        threshold: Severity = Severity.ERROR,
        executor: Executor | None = None,
        incremental: bool = False,
    ) -> None:
        """``executor``: a process pool to lint drafts in (the issuing thread waits for the
        answer with the GIL released, so the linting, most of an issuance's CPU, runs on another
        core); None lints in the calling thread. ``incremental``: ``[ca] lint = "incremental"``,
        pkilint judges what a draft shares with an earlier one of the same shape once
        (conformance/shapes.py; the findings are the same as linting it whole)."""
        self.expectations = expectations
        self.executor = executor
        self.shapes = ShapeCache() if incremental else None
        self.suppressed = dict(suppressed or {})
        self._issuers = issuers
        self.threshold = threshold

    def issuers(self) -> list[x509.Certificate]:
        source = self._issuers() if callable(self._issuers) else self._issuers
        return list(source)

    def findings(self, draft: x509.Certificate, profile: Profile) -> list[Finding]:
        if self.executor is not None:
            return self._findings_elsewhere(draft, profile, self.executor)
        return lint_certificate(
            draft,
            self.issuers(),
            profile=profile.name,
            expectations=self.expectations,
            suppressed=self.suppressed,
            draft=True,
            shapes=self.shapes,
        )

    def _findings_elsewhere(
        self, draft: x509.Certificate, profile: Profile, executor: Executor
    ) -> list[Finding]:
        """The findings from the executor's process. A lint process that died (killed, out of
        memory) breaks its pool: the draft is linted once more (an executor that replaces a
        broken pool, as the server's does, lints it in a new process), and when that fails too
        the issuance is refused: a draft no lint has passed is never signed (SBR 4.3.1.2)."""
        der = draft.public_bytes(serialization.Encoding.DER)
        issuers = [c.public_bytes(serialization.Encoding.DER) for c in self.issuers()]
        args = (
            der,
            issuers,
            profile.name,
            self.expectations,
            self.suppressed,
            self.shapes is not None,
        )
        try:
            return cast(list[Finding], executor.submit(_lint_draft_der, *args).result())
        except BrokenExecutor:
            pass  # once more, below
        try:
            return cast(list[Finding], executor.submit(_lint_draft_der, *args).result())
        except BrokenExecutor:
            raise CAError(
                Kind.LINT_UNAVAILABLE,
                "the pre-issuance lint could not run (its process stopped); nothing was signed, "
                "try again later",
            ) from None

    def __call__(self, draft: x509.Certificate, profile: Profile) -> Sequence[str]:
        return _blocking(self.findings(draft, profile), self.threshold)

    def check_crl(self, crl_der: bytes, **kwargs: Any) -> None:
        """Raise ``CAError(LINT)`` when the CRL has a finding at the threshold or above."""
        found = lint_crl(
            crl_der,
            kwargs.pop("issuers", None) or self.issuers(),
            expectations=self.expectations,
            suppressed=self.suppressed,
            **kwargs,
        )
        _refuse("CRL", _blocking(found, self.threshold))

    def check_ocsp_response(self, response_der: bytes, **kwargs: Any) -> None:
        """Raise ``CAError(LINT)`` when the OCSP response has a finding at the threshold or
        above."""
        found = lint_ocsp_response(
            response_der,
            kwargs.pop("issuers", None) or self.issuers(),
            suppressed=self.suppressed,
            **kwargs,
        )
        _refuse("OCSP response", _blocking(found, self.threshold))


def _refuse(what: str, blocking: list[str]) -> None:
    if blocking:
        raise CAError(Kind.LINT, f"the lint refused the {what}: " + "; ".join(blocking))

"""docs/conformance.md C: CA certificates and rollover link certificates (C-01..C-10).

OwO = OldWithOld, NwN = NewWithNew (self-signed, one per generation), OwN = OldWithNew (old
public key signed by the new key), NwO = NewWithOld (new public key signed by the old key);
RFC 9810 §4.4 (formerly RFC 4210 §4.4). The set rules see the rollover through
``jitsuin.conformance.lineage``: they apply when the files hold two generations joined by links.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import verification

from jitsuin.ca.profiles import SUBSCRIBER_VALIDITY
from jitsuin.conformance import pkilint_delegate
from jitsuin.conformance.documents import CertificateDoc
from jitsuin.conformance.findings import Note, Severity, Violation
from jitsuin.conformance.lineage import Lineage, Rollover, lineage_of
from jitsuin.conformance.registry import Source, rule
from jitsuin.conformance.rules import scope
from jitsuin.conformance.signature import STRONG, describe

E, W = Severity.ERROR, Severity.WARNING
Found = Iterator[Violation | Note]
CA_MAX_VALIDITY = dt.timedelta(days=3653)  # 10 years with three leap days (SEED-R15)
KEYS_PAST = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)  # "keys used past 2030"


def _role(doc: CertificateDoc) -> tuple[Lineage, Rollover, str] | None:
    lineage = lineage_of(doc)
    if lineage is None:
        return None
    found = lineage.rollover_of(doc)
    if found is None:
        return None
    rollover, role = found
    return lineage, rollover, role


def _has_role(*roles: str):  # type: ignore[no-untyped-def]
    def applies(doc: CertificateDoc) -> bool:
        if not doc.is_ca:
            return False
        found = _role(doc)
        return found is not None and found[2] in roles

    return applies


def _margin(doc: CertificateDoc) -> dt.timedelta:
    e = doc.ctx.expectations
    return e.ca.cutoff_margin if e is not None else dt.timedelta(0)


@rule(
    "C-01",
    "Root CA certificate profile",
    """A self-signed CA certificate: basicConstraints critical with cA TRUE; keyUsage critical with
    keyCertSign and cRLSign (and digitalSignature when the CA key signs OCSP responses itself,
    which a jitsuin configuration says), nothing else; no extKeyUsage; subjectKeyIdentifier
    present; an authorityKeyIdentifier, if any, names its own key; certificatePolicies NOT
    RECOMMENDED (a warning).""",
    citation="SBR 7.1.2.1; RFC 5280 §4.2.1.3, §4.2.1.9",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: doc.is_ca and doc.self_signed,
    config_dependent=True,
)
def c01(doc: CertificateDoc) -> Found:
    bc = doc.ext(x509.BasicConstraints)
    if bc is None or not bc.ca or not doc.critical(x509.BasicConstraints):
        yield Violation("basicConstraints is not critical with cA TRUE")
    ku = doc.ext(x509.KeyUsage)
    if ku is None:
        yield Violation("keyUsage is missing")
    else:
        if not doc.critical(x509.KeyUsage):
            yield Violation("keyUsage is not critical")
        if not (ku.key_cert_sign and ku.crl_sign):
            yield Violation("keyUsage lacks keyCertSign or cRLSign")
        others = [
            n
            for n in (
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
            )
            if getattr(ku, n)
        ]
        if others:
            yield Violation(f"keyUsage also has {', '.join(others)}")
        e = doc.ctx.expectations
        if e is not None and e.ca_signs_ocsp and not ku.digital_signature:
            yield Violation("keyUsage lacks digitalSignature, but the CA key signs OCSP responses")
    if doc.ext(x509.ExtendedKeyUsage) is not None:
        yield Violation("a root CA certificate carries extKeyUsage")
    if doc.ski is None:
        yield Violation("subjectKeyIdentifier is missing")
    if doc.aki is not None and doc.aki != doc.ski:
        yield Violation("authorityKeyIdentifier does not name the certificate's own key")
    if doc.ext(x509.CertificatePolicies) is not None:
        yield Violation("certificatePolicies is present (NOT RECOMMENDED in a root)", W)


@rule(
    "C-02",
    "CA validity and signature",
    """A CA certificate (self-signed or link) is valid at most 10 years (3653 days) and signed
    with SHA-256 or stronger (sha256/384/512WithRSAEncryption, ecdsa-with-SHA256/384/512).""",
    citation="SEED-R15; SEED-R3; docs/conformance.md C-02",
    source=Source.PROJECT,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=scope.is_ca,
)
def c02(doc: CertificateDoc) -> Found:
    period = scope.validity(doc)
    if period > CA_MAX_VALIDITY:
        yield Violation(f"valid {scope.days(period)}: more than 10 years (3653 days)")
    algorithm = doc.asn1["signature_algorithm"].dump()
    if algorithm not in STRONG:
        yield Violation(f"signed with {describe(algorithm)}; SHA-256 or stronger is required")


@rule(
    "C-03",
    "CA key strength past 2030",
    """A CA key used after 2030 offers at least 128-bit security: RSA of 3072 bits or more, or
    ECDSA on P-256 or a larger curve.""",
    citation="NIST SP 800-57 Part 1 Rev. 5 §5.6.3; CRYPTREC; docs/conformance.md C-03",
    source=Source.PROJECT,
    severity=W,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: doc.is_ca and doc.not_after >= KEYS_PAST,
)
def c03(doc: CertificateDoc) -> Found:
    key = doc.cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 3072:
        yield Violation(f"an RSA-{key.key_size} CA key used until {doc.not_after.year}")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        yield Violation(f"a {key.curve.name} CA key used until {doc.not_after.year}")


@rule(
    "C-04",
    "Every generation has the same subject",
    """All CA certificates of one CA (generations and link certificates) carry a byte-identical
    subject DN, and each link certificate's issuer DN is that same DN.""",
    citation="SBR 7.1.4.1; RFC 5280 §6.1 (self-issued); docs/conformance.md C-04",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: doc.is_ca and lineage_of(doc) is not None,
)
def c04(doc: CertificateDoc) -> Found:
    lineage = lineage_of(doc)
    assert lineage is not None
    first = lineage.generations[0].self_signed or lineage.certificates[0]
    name = first.asn1["tbs_certificate"]["subject"].dump()
    if doc.asn1["tbs_certificate"]["subject"].dump() != name:
        yield Violation(
            f"the subject differs from {first.label}'s {first.cert.subject.rfc4514_string()!r}"
        )
    if doc.asn1["tbs_certificate"]["issuer"].dump() != name:
        yield Violation(
            f"the issuer differs from the CA's subject {first.cert.subject.rfc4514_string()!r}"
        )


def _ids(
    doc: CertificateDoc, aki: bytes | None, ski: bytes | None, signer: str, subject: str
) -> Found:
    if aki is not None and doc.aki != aki:
        yield Violation(f"authorityKeyIdentifier is not the {signer} key's SKI {aki.hex()}")
    if ski is not None and doc.ski != ski:
        yield Violation(f"subjectKeyIdentifier is not the {subject} key's SKI {ski.hex()}")


@rule(
    "C-05",
    "OldWithNew link certificate",
    """OldWithNew carries the old public key signed by the new key, AKI = the new SKI, SKI = the
    old SKI, and runs to the old CA certificate's notAfter from no later than its notBefore
    (RFC 9810: the OldWithOld validity; RFC 4210: from the old key's generation).""",
    citation="RFC 9810 §4.4.1; RFC 4210 §4.4.1; SEED-R16",
    source=Source.RFC9810,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=_has_role("OwN"),
)
def c05(doc: CertificateDoc) -> Found:
    found = _role(doc)
    assert found is not None
    _, rollover, _ = found
    old, new = rollover.old.self_signed, rollover.new.self_signed
    yield from _ids(doc, rollover.new.ski, rollover.old.ski, "new", "old")
    if old is None:
        yield Note("OldWithOld is not among the files: validity not compared")
        return
    if doc.not_after != old.not_after:
        yield Violation(
            f"notAfter {doc.not_after.isoformat()} is not OldWithOld's "
            f"{old.not_after.isoformat()} (SEED-R16)"
        )
    if doc.not_before > old.not_before:
        yield Violation(
            f"notBefore {doc.not_before.isoformat()} is after OldWithOld's "
            f"{old.not_before.isoformat()}: old-key certificates issued before it cannot "
            "chain to the new key"
        )
    if new is None:
        yield Note("NewWithNew is not among the files")


@rule(
    "C-06",
    "NewWithOld link certificate",
    """NewWithOld carries the new public key signed by the old key, AKI = the old SKI, SKI = the
    new SKI; notBefore = NewWithNew's notBefore; it ends no earlier than the last old-key
    certificate among the files and no later than OldWithOld's notAfter.""",
    citation="RFC 9810 §4.4.1; RFC 4210 §4.4.1; SEED-R17",
    source=Source.RFC9810,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=_has_role("NwO"),
)
def c06(doc: CertificateDoc) -> Found:
    found = _role(doc)
    assert found is not None
    lineage, rollover, _ = found
    old, new = rollover.old.self_signed, rollover.new.self_signed
    yield from _ids(doc, rollover.old.ski, rollover.new.ski, "old", "new")
    if new is not None and doc.not_before != new.not_before:
        yield Violation(
            f"notBefore {doc.not_before.isoformat()} is not NewWithNew's "
            f"{new.not_before.isoformat()}"
        )
    if old is not None and doc.not_after > old.not_after:
        yield Violation(
            f"notAfter {doc.not_after.isoformat()} is after OldWithOld's "
            f"{old.not_after.isoformat()}"
        )
    leaves = lineage.leaves.get(rollover.old.key, [])
    if leaves:
        last = max(leaves, key=lambda c: c.not_after)
        if last.not_after > doc.not_after:
            yield Violation(
                f"ends {doc.not_after.isoformat()}, before the old-key certificate "
                f"{last.label} ({last.not_after.isoformat()}) (SEED-R17)"
            )


@rule(
    "C-07",
    "Rollover before the old key's cut-off",
    """The rollover (NewWithNew's notBefore) is no later than OldWithOld's notAfter - 396 days
    (with a profile file, its longest subscriber validity) + 1 s - the configured margin, so
    every old-key subscriber certificate fits inside OldWithOld.""",
    citation="SEED-R15; docs/conformance.md C-07 (derived from S-16)",
    source=Source.PROJECT,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=_has_role("NwN"),
    config_dependent=True,
)
def c07(doc: CertificateDoc) -> Found:
    found = _role(doc)
    assert found is not None
    _, rollover, _ = found
    old = rollover.old.self_signed
    if old is None:
        yield Note("OldWithOld is not among the files")
        return
    e = doc.ctx.expectations
    room = e.longest_validity if e is not None else SUBSCRIBER_VALIDITY
    cutoff = old.not_after - room + scope.ONE_SECOND - _margin(doc)
    if doc.not_before > cutoff:
        yield Violation(
            f"the rollover at {doc.not_before.isoformat()} is after the old key's cut-off "
            f"{cutoff.isoformat()}"
        )


@rule(
    "C-08",
    "Generations overlap",
    """NewWithNew starts before OldWithOld ends, and ends after it (so it outlives the next
    planned rollover of the old generation).""",
    citation="RFC 9810 §4.4.1",
    source=Source.RFC9810,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=_has_role("NwN"),
)
def c08(doc: CertificateDoc) -> Found:
    found = _role(doc)
    assert found is not None
    _, rollover, _ = found
    old = rollover.old.self_signed
    if old is None:
        yield Note("OldWithOld is not among the files")
        return
    if doc.not_before >= old.not_after:
        yield Violation(f"NewWithNew starts {doc.not_before.isoformat()}, after OldWithOld ended")
    if doc.not_after <= old.not_after:
        yield Violation("NewWithNew does not outlive OldWithOld")


@rule(
    "C-09",
    "Link certificate extensions",
    """A link certificate has basicConstraints critical with cA TRUE and keyUsage critical with
    keyCertSign and cRLSign; pkilint's issuer/subject chain linter is clean for (NewWithNew,
    OldWithNew) and (OldWithOld, NewWithOld).""",
    citation="RFC 5280 §4.2.1.3, §4.2.1.9; RFC 9810 §4.4.1; delegated to pkilint "
    "lint_pkix_signer_signee_cert_chain",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=_has_role("OwN", "NwO"),
)
def c09(doc: CertificateDoc) -> Found:
    bc = doc.ext(x509.BasicConstraints)
    if bc is None or not bc.ca or not doc.critical(x509.BasicConstraints):
        yield Violation("basicConstraints is not critical with cA TRUE")
    ku = doc.ext(x509.KeyUsage)
    if ku is None or not doc.critical(x509.KeyUsage) or not (ku.key_cert_sign and ku.crl_sign):
        yield Violation("keyUsage is not critical with keyCertSign and cRLSign")
    signer = doc.issuer
    if signer is None or not doc.ctx.pkilint:
        return
    findings = pkilint_delegate.lint_issuer_subject(
        signer.der, doc.der, verify_signature=not (doc.ctx.draft and not doc.context_only)
    )
    yield from scope.delegated(findings, f"pkilint chain ({signer.label} -> this)")


def _validate(
    leaf: CertificateDoc,
    anchor: CertificateDoc,
    intermediates: Sequence[CertificateDoc],
    at: dt.datetime | None,
) -> str | None:
    """None when ``leaf`` validates to ``anchor`` (RFC 5280 §6 by cryptography), else why not."""
    if at is None:
        chain = [leaf, anchor, *intermediates]
        at = max(c.not_before for c in chain)
        if at > min(c.not_after for c in chain):
            at = leaf.not_before
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store([anchor.cert]))
        .time(at)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
    )
    try:
        builder.build_client_verifier().verify(leaf.cert, [c.cert for c in intermediates])
    except verification.VerificationError as exc:
        return str(exc)
    return None


@rule(
    "C-10",
    "Both trust anchors validate both generations",
    """With the link certificates, a relying party that trusts only the old or only the new CA
    certificate validates subscriber certificates of both keys; without them the cross pairs
    fail (so the links, not a shortcut, make them work). NewWithNew is never offered as an
    intermediate.""",
    citation="RFC 9810 §4.4.2, §4.4.3; SEED-R14; docs/conformance.md C-10",
    source=Source.RFC9810,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: (
        doc.is_ca
        and (found := _role(doc)) is not None
        and found[2] == "NwN"
        and any(found[0].leaves.get(k) for k in (found[1].old.key, found[1].new.key))
    ),
)
def c10(doc: CertificateDoc) -> Found:
    found = _role(doc)
    assert found is not None
    lineage, rollover, _ = found
    old = rollover.old.self_signed
    if old is None:
        yield Note("OldWithOld is not among the files")
        return
    links = rollover.old_with_new + rollover.new_with_old
    at = doc.ctx.at
    for key_name, key in (("old-key", rollover.old.key), ("new-key", rollover.new.key)):
        leaves = [c for c in lineage.leaves.get(key, []) if c.is_smime_subscriber or not c.is_ca]
        if not leaves:
            yield Note(f"no {key_name} certificate among the files")
            continue
        leaf = leaves[0]
        for anchor_name, anchor in (("old", old), ("new", doc)):
            problem = _validate(leaf, anchor, links, at)
            if problem is not None:
                yield Violation(
                    f"{key_name} certificate {leaf.label} does not validate for a relying party "
                    f"that trusts the {anchor_name} CA certificate: {problem}"
                )
            cross = (key_name == "old-key") != (anchor_name == "old")
            if cross and _validate(leaf, anchor, [], at) is None:
                yield Violation(
                    f"{key_name} certificate {leaf.label} validates to the {anchor_name} CA "
                    "certificate without any link certificate"
                )


@rule(
    "C-12",
    "A CA certificate carries no subscriber content",
    """A certificate with cA TRUE names no natural person (no givenName, surname, pseudonym or
    emailAddress in the subject, no rfc822Name in subjectAltName) and carries no subscriber
    policy of the configuration. A self-issued one (a generation or a link certificate, SBR
    7.1.2.1) has no extendedKeyUsage and no reserved S/MIME BR policy OID either; a subordinate
    CA may have both (SBR 7.1.2.2). Such a certificate is a subscriber certificate with the cA
    bit set: it is also judged by the S rules and pkilint's S/MIME linter.""",
    citation="RFC 5280 §4.2.1.9; SBR 7.1.2.1, 7.1.2.2, 7.1.2.3, 7.1.4.2.2",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=scope.is_ca,
)
def c12(doc: CertificateDoc) -> Found:
    # RFC 5280 §4.2.1.9: cA asserts that the subject is a CA; a subscriber's marks say otherwise.
    for mark in doc.subscriber_marks:
        yield Violation(
            f"cA is TRUE but the certificate carries {mark}: a subscriber certificate marked "
            "as a CA",
            node_path="certificate.tbsCertificate.extensions",
        )


def _generation_keys(doc: CertificateDoc) -> set[str]:
    """Keys with a self-signed CA certificate among the files and the given CA certificates."""
    return {c.key for c in doc.corpus.ca_certificates if c.self_signed}


@rule(
    "C-13",
    "A CA certificate is a generation, a link or a declared intermediate",
    """A certificate with cA TRUE is self-signed (a generation), a link certificate (self-issued,
    its key and its signer's key both generations of this CA), or the certificate of a
    subordinate CA the user declared (--intermediate). Without a configuration and without
    declared intermediates the CA's structure is unknown: a certificate that is none of the
    first two gets an INFO finding saying so, never a silent pass.""",
    citation="RFC 5280 §4.2.1.9, §6.1; RFC 9810 §4.4; SBR 7.1.2.1, 7.1.2.2",
    source=Source.PROJECT,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: doc.is_ca and not doc.self_signed,
    config_dependent=True,
)
def c13(doc: CertificateDoc) -> Found:
    ctx = doc.ctx
    if doc.key in ctx.intermediates:
        return
    issuer = doc.issuer
    generations = _generation_keys(doc)
    if (
        doc.self_issued
        and issuer is not None
        and issuer.key != doc.key
        and {doc.key, issuer.key} <= generations
    ):
        return  # RFC 9810 §4.4: OldWithNew or NewWithOld
    what = "neither self-signed nor a link certificate between two generations"
    if ctx.expectations is None and not ctx.intermediates:
        yield Violation(
            f"cA is TRUE and the certificate is {what}; whether it is a subordinate CA of this "
            "CA cannot be judged without a configuration (--config) or declared intermediates "
            "(--intermediate)",
            Severity.INFO,
        )
        return
    yield Violation(
        f"cA is TRUE and the certificate is {what}, nor a declared intermediate (--intermediate)"
    )

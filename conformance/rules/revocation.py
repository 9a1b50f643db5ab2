"""docs/conformance.md D: CRLs and OCSP responses (R-01..R-11).

A CRL whose issuingDistributionPoint says onlyContainsCACerts is a CA CRL (ARL); any other is a
subscriber CRL. The cross-object parts (CRL numbers across keys, reissue interval, entries that
must stay, coverage after a rollover, OCSP vs CRL) look at the other files of the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from jitsuin.ca.revocation import Reason
from jitsuin.conformance import pkilint_delegate
from jitsuin.conformance.documents import CertificateDoc, CRLDoc, OCSPDoc
from jitsuin.conformance.findings import Note, Severity, Violation
from jitsuin.conformance.lineage import lineage_of
from jitsuin.conformance.registry import Source, rule
from jitsuin.conformance.rules import scope
from jitsuin.conformance.signature import STRONG, describe, verifies

E = Severity.ERROR
Found = Iterator[Violation | Note]
OCSP_NOCHECK = ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")  # RFC 6960 §4.2.2.2.1
# SBR 4.9.10 / 4.9.7: no OCSP response nor subscriber CRL is valid longer; a nocheck responder
# certificate valid longer outlasts what any one status object may claim (R-06, a warning).
RESPONDER_VALIDITY_WARNING = dt.timedelta(days=10)
CRL_REASON = x509.oid.CRLEntryExtensionOID.CRL_REASON


def _same_ca(a: CRLDoc, b: CRLDoc) -> bool:
    """Two CRLs of one CA: the same issuer DN (every generation of a CA shares it, C-04)."""
    return a.crl.issuer.public_bytes() == b.crl.issuer.public_bytes()


@rule(
    "R-01",
    "CRL structure and issuer",
    """The CRL is v2; its issuer DN is byte-for-byte the signing CA certificate's subject; its
    authorityKeyIdentifier equals the signer's SKI; its signature verifies; cRLNumber is present,
    not critical, and increases with thisUpdate across all keys of the CA.""",
    citation="RFC 5280 §5.1.2.1, §5.1.2.3, §5.2.1, §5.2.3; RFC 9810 §4.4.3",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CRLS,
)
def r01(doc: CRLDoc) -> Found:
    tbs = doc.asn1["tbs_cert_list"]
    if tbs["version"].native != "v2":
        yield Violation(
            f"version is {tbs['version'].native or 'v1 (absent)'}, not v2",
            node_path="certificateList.tbsCertList.version",
        )
    if tbs["signature"].dump() != doc.asn1["signature_algorithm"].dump():
        yield Violation("tbsCertList.signature differs from signatureAlgorithm")
    try:
        number = doc.crl.extensions.get_extension_for_class(x509.CRLNumber)
    except x509.ExtensionNotFound:
        yield Violation("cRLNumber is missing")
    else:
        if number.critical:
            yield Violation("cRLNumber is critical")
    if doc.aki is None:
        yield Violation("authorityKeyIdentifier is missing")
    issuer = doc.issuer
    if issuer is None:
        claimed = [c for c in doc.corpus.certificates if doc.aki is not None and c.ski == doc.aki]
        if claimed and not (doc.ctx.draft and not doc.context_only):
            yield Violation(f"the signature does not verify with the key of {claimed[0].label}")
        else:
            yield Note("the signing CA certificate is not among the files: signature not checked")
    else:
        if tbs["issuer"].dump() != issuer.asn1["tbs_certificate"]["subject"].dump():
            yield Violation("the issuer DN is not byte-identical to the signer's subject")
        if doc.aki is not None and issuer.ski is not None and doc.aki != issuer.ski:
            yield Violation(
                f"authorityKeyIdentifier {doc.aki.hex()} is not the signer's SKI {issuer.ski.hex()}"
            )
    if doc.number is None:
        return
    for other in doc.corpus.crls:
        if other is doc or other.number is None or not _same_ca(doc, other):
            continue
        mine, theirs = doc.crl.last_update_utc, other.crl.last_update_utc
        if theirs < mine and other.number >= doc.number:
            yield Violation(
                f"cRLNumber {doc.number} does not exceed {other.number} of the earlier "
                f"{other.label}"
            )


@rule(
    "R-02",
    "CRL validity interval",
    """nextUpdate is present; for a subscriber CRL nextUpdate - thisUpdate is at most 10 days and
    the next CRL of the same key follows within 7 days; for a CA CRL at most 12 months.""",
    citation="SBR 4.9.7; RFC 5280 §5.1.2.5",
    source=Source.SBR,
    severity=E,
    kinds=scope.CRLS,
)
def r02(doc: CRLDoc) -> Found:
    this, following = doc.crl.last_update_utc, doc.crl.next_update_utc
    if following is None:
        yield Violation("nextUpdate is missing")
        return
    limit = dt.timedelta(days=366) if doc.is_ca_crl else dt.timedelta(days=10)
    if following - this > limit:
        kind = "a CA CRL" if doc.is_ca_crl else "a subscriber CRL"
        yield Violation(
            f"nextUpdate is {scope.days(following - this)} after thisUpdate; {kind} allows "
            f"{scope.days(limit)}"
        )
    if following < this:
        yield Violation("nextUpdate is before thisUpdate")
    if doc.is_ca_crl:
        return
    later = [
        o
        for o in doc.corpus.crls
        if o is not doc and o.aki == doc.aki and _same_ca(o, doc) and o.crl.last_update_utc > this
    ]
    if later:
        successor = min(later, key=lambda o: o.crl.last_update_utc)
        gap = successor.crl.last_update_utc - this
        if gap > dt.timedelta(days=7):
            yield Violation(
                f"the next CRL of this key ({successor.label}) came {scope.days(gap)} "
                "later; at most 7 days"
            )


def _ca_serials(doc: CRLDoc) -> set[int]:
    """Serials of CA certificates among the files that this CRL's issuer signed."""
    return {
        c.cert.serial_number
        for c in doc.corpus.certificates
        if c.is_ca and c.aki is not None and c.aki == doc.aki and not c.self_signed
    }


@rule(
    "R-03",
    "CRL reason codes",
    """reasonCode is never critical, never unspecified (omit it instead), never certificateHold
    or removeFromCRL, and is one the S/MIME BR allow for the CRL's scope; entries for CA
    certificates (every entry of a CA CRL) carry a reasonCode.""",
    citation="SBR 7.2.2; RFC 5280 §5.3.1",
    source=Source.SBR,
    severity=E,
    kinds=scope.CRLS,
)
def r03(doc: CRLDoc) -> Found:
    ca_serials = _ca_serials(doc)
    for i, entry in enumerate(doc.crl):
        path = f"certificateList.tbsCertList.revokedCertificates.{i}"
        try:
            extension = entry.extensions.get_extension_for_oid(CRL_REASON)
        except x509.ExtensionNotFound:
            if doc.is_ca_crl or entry.serial_number in ca_serials:
                yield Violation(
                    f"the entry for CA certificate {entry.serial_number:x} has no reasonCode",
                    node_path=path,
                )
            continue
        reason = extension.value.reason  # type: ignore[attr-defined]
        if extension.critical:
            yield Violation(f"reasonCode of {entry.serial_number:x} is critical", node_path=path)
        if reason is x509.ReasonFlags.unspecified:
            yield Violation(
                f"reasonCode of {entry.serial_number:x} is unspecified: omit it instead",
                node_path=path,
            )
        elif not Reason(reason.value).allowed_on_crl(ca_certificates=doc.is_ca_crl):
            yield Violation(
                f"reasonCode {reason.name} of {entry.serial_number:x} is not allowed here",
                node_path=path,
            )


@rule(
    "R-04",
    "CRL entries: no empty list, nothing dropped early",
    """An empty revokedCertificates is omitted, not encoded as an empty SEQUENCE; a serial, once
    listed, stays on every later CRL of the CA until one CRL after the certificate expires.""",
    citation="RFC 5280 §5.1.2.6, §3.3",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CRLS,
)
def r04(doc: CRLDoc) -> Found:
    revoked = doc.asn1["tbs_cert_list"]["revoked_certificates"]
    if type(revoked).__name__ != "Void" and len(revoked) == 0:
        yield Violation(
            "revokedCertificates is present but empty",
            node_path="certificateList.tbsCertList.revokedCertificates",
        )
    this = doc.crl.last_update_utc
    expiry: dict[int, dt.datetime] = {}
    for cert in doc.corpus.certificates:
        if cert.aki is not None and doc.aki is not None and cert.aki == doc.aki:
            expiry[cert.cert.serial_number] = cert.not_after
    earlier = [
        o
        for o in doc.corpus.crls
        if o is not doc and _same_ca(o, doc) and o.aki == doc.aki and o.crl.last_update_utc < this
    ]
    dropped: set[int] = set()
    for other in earlier:
        for serial in other.serials - doc.serials:
            if serial in dropped or serial not in expiry:
                continue
            expired = expiry[serial]
            # RFC 5280 §3.3: it must appear on one CRL issued beyond the certificate's validity.
            beyond = [o for o in earlier if o.crl.last_update_utc > expired and serial in o.serials]
            if not beyond:
                dropped.add(serial)
                yield Violation(
                    f"serial {serial:x} (listed on {other.label}, expires "
                    f"{expired.isoformat()}) is dropped too early"
                )


@rule(
    "R-05",
    "Every generation's certificates are covered after a rollover",
    """When two generations are among the files, each key that signed subscriber certificates also
    signed a CRL, and that CRL's signer is reachable through a link certificate from the other
    generation's trust anchor (OldWithNew for the old key, NewWithOld for the new).""",
    citation="RFC 9810 §4.4.3; PKITS §4.5.4",
    source=Source.RFC9810,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: (
        doc.is_ca
        and doc.self_signed
        and bool(doc.corpus.crls)
        and (lineage := lineage_of(doc)) is not None
        and bool(lineage.leaves.get(doc.key))
    ),
)
def r05(doc: CertificateDoc) -> Found:
    lineage = lineage_of(doc)
    assert lineage is not None
    crls = [c for c in doc.corpus.crls if c.issuer is not None and c.issuer.key == doc.key]
    if not crls:
        count = len(lineage.leaves[doc.key])
        yield Violation(
            f"no CRL signed by this key covers its {count} certificate(s) among the files"
        )
    for r in lineage.rollovers:
        if r.old.key == doc.key and not r.old_with_new:
            yield Violation(
                "no OldWithNew: a relying party trusting the new CA cannot validate this key's CRL"
            )
        if r.new.key == doc.key and not r.new_with_old:
            yield Violation(
                "no NewWithOld: a relying party trusting the old CA cannot validate this key's CRL"
            )


def _key_hash(cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """RFC 6960 §4.1.1 issuerKeyHash / §4.2.1 byKey: the hash of the subjectPublicKey BIT STRING
    value (without tag, length and unused-bits octet)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bits = asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
    return hashlib.new(algorithm.name, bits).digest()


def _ocsp_issuer(doc: OCSPDoc) -> CertificateDoc | None:
    response = doc.response
    algorithm = response.hash_algorithm
    for cert in doc.corpus.certificates:
        if not cert.is_ca:
            continue
        if _key_hash(cert.cert, algorithm) == response.issuer_key_hash:
            return cert
    return None


def _responder_matches(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_key_hash is not None:
        return _key_hash(cert, hashes.SHA1()) == response.responder_key_hash  # noqa: S303 (RFC 6960 §4.2.1)
    return response.responder_name == cert.subject


def _ocsp_signed_by(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    try:
        algorithm = response.signature_hash_algorithm
    except Exception:
        return False
    return verifies(cert.public_key(), response.signature, response.tbs_response_bytes, algorithm)


@rule(
    "R-06",
    "OCSP responder",
    """The response is signed by the key of the CA that issued the certificate, or by a delegated
    responder certificate that the CA's key issued with the id-kp-OCSPSigning purpose and
    id-pkix-ocsp-nocheck, valid when the response was produced; the responderID names the
    signer. Both arrangements pass. A delegated responder certificate valid longer than 10 days
    is a warning: with nocheck it cannot be revoked, so a stolen responder key vouches for
    revoked certificates until it expires, longer than the S/MIME BR let any one CRL or OCSP
    response stay valid.""",
    citation="RFC 6960 §4.2.2.2, §4.2.2.2.1; SBR 4.9.9, 4.9.10",
    source=Source.RFC6960,
    severity=E,
    kinds=scope.OCSP_RESPONSES,
    applies=scope.is_successful,
)
def r06(doc: OCSPDoc) -> Found:
    response = doc.response
    draft = doc.ctx.draft and not doc.context_only
    issuer = _ocsp_issuer(doc)
    delegated = [c for c in response.certificates if _responder_matches(response, c)]
    if issuer is not None and _responder_matches(response, issuer.cert) and not delegated:
        if not draft and not _ocsp_signed_by(response, issuer.cert):
            yield Violation(f"the signature does not verify with the CA key of {issuer.label}")
        return
    if not delegated:
        if issuer is None:
            yield Note(
                "the issuing CA certificate is not among the files and no responder "
                "certificate is included"
            )
        else:
            yield Violation(
                "the responderID names neither the issuing CA nor an included responder certificate"
            )
        return
    responder = delegated[0]
    try:
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        yield Violation("the delegated responder certificate lacks id-kp-OCSPSigning")
    try:
        responder.extensions.get_extension_for_oid(OCSP_NOCHECK)
    except x509.ExtensionNotFound:
        yield Violation(
            "the delegated responder certificate lacks id-pkix-ocsp-nocheck (SBR 4.9.9)"
        )
    if not draft and not _ocsp_signed_by(response, responder):
        yield Violation("the signature does not verify with the responder certificate's key")
    produced = response.produced_at_utc
    if not responder.not_valid_before_utc <= produced <= responder.not_valid_after_utc:
        yield Violation(
            f"the response was produced at {produced.isoformat()}, outside the delegated "
            f"responder certificate's validity ({responder.not_valid_before_utc.isoformat()} to "
            f"{responder.not_valid_after_utc.isoformat()})"
        )
    span = responder.not_valid_after_utc - responder.not_valid_before_utc + scope.ONE_SECOND
    if span > RESPONDER_VALIDITY_WARNING:
        yield Violation(
            f"the delegated responder certificate is valid {scope.days(span)}, more than "
            f"{scope.days(RESPONDER_VALIDITY_WARNING)}: with id-pkix-ocsp-nocheck it cannot be "
            "revoked, so a compromise of its key lasts that long (RFC 6960 §4.2.2.2.1)",
            Severity.WARNING,
        )
    if issuer is None:
        yield Note(
            "the issuing CA certificate is not among the files: the responder's issuer is "
            "not checked"
        )
    else:
        responder_doc = CertificateDoc(
            responder.public_bytes(serialization.Encoding.DER), "(responder)", parsed=responder
        )
        responder_doc.corpus = doc.corpus
        if not responder_doc.signed_with(issuer.cert.public_key()):
            yield Violation(
                f"the responder certificate was not issued by the CA key of {issuer.label}"
            )


@rule(
    "R-07",
    "OCSP validity interval",
    """Every response has nextUpdate, and nextUpdate - thisUpdate is at least 8 hours and at most
    10 days.""",
    citation="SBR 4.9.10; RFC 6960 §4.2.2.1",
    source=Source.SBR,
    severity=E,
    kinds=scope.OCSP_RESPONSES,
    applies=scope.is_successful,
)
def r07(doc: OCSPDoc) -> Found:
    for single in doc.response.responses:
        following, this = single.next_update_utc, single.this_update_utc
        if following is None:
            yield Violation(f"the response for {single.serial_number:x} has no nextUpdate")
            continue
        span = following - this
        if span < dt.timedelta(hours=8):
            yield Violation(
                f"the response for {single.serial_number:x} is valid {span}: less than 8 hours"
            )
        if span > dt.timedelta(days=10):
            yield Violation(
                f"the response for {single.serial_number:x} is valid {scope.days(span)}: "
                "more than 10 days"
            )


@rule(
    "R-08",
    "OCSP status",
    """No reasonCode singleExtension (the reason belongs in revokedInfo); a revoked CA certificate
    has a revocationReason; a serial the CA never issued is never "good" (from any key); a serial
    on the CA's CRL of that key is not "good" in a later response.""",
    citation="SBR 4.9.10, 7.3; RFC 6960 §2.2, §4.2.1",
    source=Source.SBR,
    severity=E,
    kinds=scope.OCSP_RESPONSES,
    applies=scope.is_successful,
)
def r08(doc: OCSPDoc) -> Found:
    issuer = _ocsp_issuer(doc)
    issued = doc.ctx.issued
    raw = doc.basic["tbs_response_data"]["responses"]
    for i, single in enumerate(doc.response.responses):
        serial = single.serial_number
        for extension in raw[i]["single_extensions"]:
            if extension["extn_id"].dotted == CRL_REASON.dotted_string:
                yield Violation(
                    f"the response for {serial:x} carries reasonCode as a singleExtension"
                )
        status = single.certificate_status
        if issuer is None:
            continue
        if status is ocsp.OCSPCertStatus.REVOKED and single.revocation_reason is None:
            revoked_ca = any(
                c.is_ca and c.cert.serial_number == serial and c.aki == issuer.ski
                for c in doc.corpus.certificates
            )
            if revoked_ca:
                yield Violation(f"revoked CA certificate {serial:x} has no revocationReason")
        if status is not ocsp.OCSPCertStatus.GOOD:
            continue
        if issued is not None and issuer.ski is not None and issued(issuer.ski, serial) is False:
            yield Violation(f"serial {serial:x} was never issued but is reported good")
        for crl in doc.corpus.crls:
            if (
                crl.aki == issuer.ski
                and serial in crl.serials
                and crl.crl.last_update_utc <= single.this_update_utc
            ):
                yield Violation(f"serial {serial:x} is on {crl.label} but reported good")


@rule(
    "R-09",
    "pkilint CRL and OCSP linters",
    """pkilint's lint_crl -p BR (type CRL or ARL) and lint_ocsp_response report no finding at
    WARNING or above.""",
    citation="RFC 5280 §5; RFC 6960; SBR 4.9.7, 7.2 (delegated to pkilint)",
    source=Source.SBR,
    severity=E,
    kinds=scope.REVOCATION,
    applies=scope.uses_pkilint,
    delegate="pkilint",
)
def r09(doc: CRLDoc | OCSPDoc) -> Found:
    if isinstance(doc, CRLDoc):
        kind = "ARL" if doc.is_ca_crl else "CRL"
        yield from scope.delegated(
            pkilint_delegate.lint_crl(doc.der, ca_crl=doc.is_ca_crl),
            f"pkilint lint_crl -t {kind} -p BR",
        )
    else:
        yield from scope.delegated(
            pkilint_delegate.lint_ocsp_response(doc.der), "pkilint lint_ocsp_response"
        )


@rule(
    "R-10",
    "CRL and OCSP signature algorithm",
    """CRLs and OCSP responses are signed with SHA-256 or stronger, in the byte-exact encodings
    of RFC 4055 / RFC 5758.""",
    citation="SEED-R3; SBR 7.1.3.2",
    source=Source.SEED,
    severity=E,
    kinds=scope.REVOCATION,
    applies=lambda doc: not isinstance(doc, OCSPDoc) or doc.successful,
)
def r10(doc: CRLDoc | OCSPDoc) -> Found:
    if isinstance(doc, CRLDoc):
        algorithm = doc.asn1["signature_algorithm"].dump()
    else:
        algorithm = doc.basic["signature_algorithm"].dump()
    if algorithm not in STRONG:
        yield Violation(f"signed with {describe(algorithm)}; SHA-256 or stronger is required")


@rule(
    "R-11",
    "Current at the given time",
    """With a time given (--at), a CRL or OCSP response is current then: thisUpdate <= time <=
    nextUpdate. Without one the rule does not apply.""",
    citation="RFC 5280 §6.3.3 (a); RFC 6960 §3.2 (5)",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.REVOCATION,
    applies=lambda doc: doc.ctx.at is not None and (not isinstance(doc, OCSPDoc) or doc.successful),
)
def r11(doc: CRLDoc | OCSPDoc) -> Found:
    at = doc.ctx.at
    assert at is not None
    if isinstance(doc, CRLDoc):
        spans = [(doc.crl.last_update_utc, doc.crl.next_update_utc)]
    else:
        spans = [(s.this_update_utc, s.next_update_utc) for s in doc.response.responses]
    for this, following in spans:
        if at < this:
            yield Violation(f"not yet current at {at.isoformat()} (thisUpdate {this.isoformat()})")
        if following is not None and at > following:
            yield Violation(f"stale at {at.isoformat()} (nextUpdate {following.isoformat()})")

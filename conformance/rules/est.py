"""EST points of docs/protocols.md (RFC 7030 with RFC 8951), judged on the exchanges the live
harness records (E-01..E-11). Probe names are the keys of ``ServerDoc.exchanges``; a rule applies
when its probes were made (some need credentials the run was given)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from jitsuin.conformance.findings import Note, Severity, Violation
from jitsuin.conformance.live import Exchange, ServerDoc
from jitsuin.conformance.registry import DocKind, Source, rule

E, W = Severity.ERROR, Severity.WARNING
Found = Iterator[Violation | Note]
EST = (DocKind.EST_SERVER,)

# Probes whose request is wrong, so a 2xx answer is always a failure.
FAILURE_PROBES = (
    "enroll-no-auth",
    "enroll-bad-auth",
    "enroll-wrong-type",
    "enroll-wrong-type-auth",
    "enroll-garbage",
    "enroll-garbage-auth",
    "enroll-bad-csr-auth",
    "reenroll-no-cert",
    "reenroll-other-subject",
    "fullcmc",
)
ENROLLMENTS = ("enroll", "reenroll")


def _any(*names: str):  # type: ignore[no-untyped-def]
    return lambda doc: doc.has(*names)


def certs_only(body: bytes) -> list[x509.Certificate]:
    """RFC 7030 §4.1.3, §4.2.3 (RFC 8951 §3.2): a base64 body holding a certs-only CMS."""
    text = re.sub(rb"\s+", b"", body)
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the body is not base64 ({exc})") from None
    return pkcs7.load_der_pkcs7_certificates(der)


def _label(e: Exchange) -> str:
    return f"{e.method} {e.url.rsplit('/.well-known/est', 1)[-1] or e.url}"


@rule(
    "E-01",
    "TLS 1.2 or later only",
    """EST MUST be served over HTTPS (RFC 7030 §3.2.1, §3.3.1), and TLS 1.0 and 1.1 MUST NOT be
    negotiated (RFC 8996 §5): TLS 1.2 or 1.3 only; a client offering at most TLS 1.1 is
    refused.""",
    citation="RFC 7030 §3.2.1, §3.3.1; RFC 8996",
    source=Source.RFC7030,
    severity=E,
    keyword="MUST; MUST NOT",
    kinds=EST,
    applies=lambda doc: bool(doc.answered()),
)
def e01(doc: ServerDoc) -> Found:
    if not doc.label.startswith("https://"):
        yield Violation(f"the EST base {doc.label} is not an https:// URL")
    for e in doc.answered():
        if not e.url.startswith("https://"):
            yield Violation(f"{_label(e)} was served without TLS")
    version = doc.facts.get("tls_version")
    if doc.label.startswith("https://") and version not in ("TLSv1.2", "TLSv1.3"):
        yield Violation(f"the server negotiated {version or 'no TLS handshake'}")
    legacy = doc.facts.get("legacy_tls_accepted")
    if legacy is True:
        yield Violation("a handshake offering at most TLS 1.1 was accepted")
    elif legacy is None:
        yield Note("TLS 1.1 could not be offered by this client: not probed")


@rule(
    "E-02",
    "cacerts",
    """GET /cacerts SHOULD NOT require client authentication (§4.1.1: a 401 or 403 is a
    warning). A successful answer MUST be 200 with application/pkcs7-mime, a base64 certs-only
    CMS that MUST hold the CA certificate (§4.1.3), and only CA certificates.""",
    citation="RFC 7030 §4.1.1, §4.1.2, §4.1.3; RFC 8951 §3.2",
    source=Source.RFC7030,
    severity=E,
    keyword="MUST; SHOULD NOT",
    kinds=EST,
    applies=_any("cacerts"),
)
def e02(doc: ServerDoc) -> Found:
    e = doc.get("cacerts")
    assert e is not None
    if e.status in (401, 403):  # §4.1.1: SHOULD NOT require client authentication
        yield Violation(f"/cacerts answered {e.status}: it requires client authentication", W)
        return
    if e.status != 200:
        yield Violation(f"/cacerts answered {e.status}: {e.text[:200]}")
        return
    if e.media_type != "application/pkcs7-mime":
        yield Violation(f"/cacerts is {e.media_type or 'untyped'}, not application/pkcs7-mime")
    try:
        certificates = certs_only(e.body)
    except ValueError as exc:
        yield Violation(f"/cacerts is not a certs-only CMS: {exc}")
        return
    if not certificates:
        yield Violation("/cacerts holds no certificate")
    for cert in certificates:
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            yield Violation(
                f"/cacerts carries a non-CA certificate {cert.subject.rfc4514_string()}"
            )


@rule(
    "E-03",
    "401 with WWW-Authenticate",
    """An enrollment without credentials, or with a wrong enrollment ID and PIN, is answered 401,
    which MUST carry WWW-Authenticate (RFC 9110 §11.6.1); issuing is the CA's decision after
    authorizing the client (§3.7), so a re-enrollment without the client certificate is refused
    (401 or 403), never served.""",
    citation="RFC 7030 §3.2.3, §3.7, §4.2; RFC 9110 §11.6.1",
    source=Source.RFC7030,
    severity=E,
    keyword="MUST",
    kinds=EST,
    applies=_any("enroll-no-auth", "enroll-bad-auth", "reenroll-no-cert"),
)
def e03(doc: ServerDoc) -> Found:
    for name in ("enroll-no-auth", "enroll-bad-auth"):
        e = doc.get(name)
        if e is None:
            continue
        if e.status != 401:
            yield Violation(f"{_label(e)} ({name}) answered {e.status}, not 401")
        elif not e.header("WWW-Authenticate"):
            yield Violation(f"{_label(e)} ({name}) answered 401 without WWW-Authenticate")
    e = doc.get("reenroll-no-cert")
    if e is not None and e.status not in (401, 403):
        yield Violation(f"{_label(e)} without a client certificate answered {e.status}")


def _wanted(doc: ServerDoc, names: tuple[str, str], status: int, what: str) -> Found:
    """The anonymous probe should give ``status``; a 401 there is fine when the server checks
    credentials first, and then the probe with real credentials decides."""
    anonymous, authenticated = (doc.get(n) for n in names)
    if authenticated is not None:
        if authenticated.status != status:
            yield Violation(
                f"{what} with valid credentials answered {authenticated.status}, not "
                f"{status}: {authenticated.text[:200]}"
            )
        return
    assert anonymous is not None
    if anonymous.status == 401:
        yield Note(
            f"{what}: the server checks credentials first (401); run with credentials to "
            f"see the {status}"
        )
    elif anonymous.status != status:
        yield Violation(f"{what} answered {anonymous.status}, not {status}: {anonymous.text[:200]}")


@rule(
    "E-04",
    "415 for anything but application/pkcs10",
    """The CSR MUST come as application/pkcs10 (§4.2.1); any other media type is answered 415
    (defined in RFC 9110 §15.5.16).""",
    citation="RFC 7030 §4.2.1; RFC 9110 §15.5.16",
    source=Source.RFC7030,
    severity=E,
    keyword="MUST; defined",
    kinds=EST,
    applies=_any("enroll-wrong-type", "enroll-wrong-type-auth"),
)
def e04(doc: ServerDoc) -> Found:
    yield from _wanted(doc, ("enroll-wrong-type", "enroll-wrong-type-auth"), 415, "a JSON body")


@rule(
    "E-05",
    "400 for a body that is not a CSR",
    """A body that is not base64, or a CSR whose signature does not verify (its proof of
    possession, §3.4), is answered 400 (defined in §4.2.3).""",
    citation="RFC 7030 §3.4, §4.2.1, §4.2.3; RFC 8951 §3.2",
    source=Source.RFC7030,
    severity=E,
    keyword="defined",
    kinds=EST,
    applies=_any("enroll-garbage", "enroll-garbage-auth", "enroll-bad-csr-auth"),
)
def e05(doc: ServerDoc) -> Found:
    if doc.has("enroll-garbage", "enroll-garbage-auth"):
        yield from _wanted(doc, ("enroll-garbage", "enroll-garbage-auth"), 400, "a non-base64 body")
    e = doc.get("enroll-bad-csr-auth")
    if e is not None and e.status != 400:
        yield Violation(f"a CSR with a broken signature answered {e.status}, not 400")


@rule(
    "E-06",
    "Errors are errors, in text/plain",
    """A failed request is never answered 2xx (defined in §4.2.3); its 4xx/5xx answer SHOULD carry
    a text/plain reason (docs/protocols.md EST 8: a warning when it does not).""",
    citation="RFC 7030 §4.2.3; docs/protocols.md EST 8",
    source=Source.RFC7030,
    severity=E,
    keyword="SHOULD; defined",
    kinds=EST,
    applies=_any(*FAILURE_PROBES),
)
def e06(doc: ServerDoc) -> Found:
    for e in doc.answered(FAILURE_PROBES):
        if e.status is not None and 200 <= e.status < 300:
            yield Violation(f"{_label(e)} ({e.name}) failed but answered {e.status}")
        elif e.media_type != "text/plain":
            yield Violation(
                f"{_label(e)} ({e.name}) answered {e.status} with "
                f"{e.media_type or 'no type'}, not text/plain",
                W,
            )


@rule(
    "E-07",
    "The enrolled certificate",
    """A successful simpleenroll or simplereenroll MUST answer 200 with application/pkcs7-mime
    (§4.2.3), a base64 certs-only CMS holding exactly the new certificate, which certifies the
    CSR's public key (re-enrollment: with the current certificate's subject).
    smime-type=certs-only (§4.2.3 names it without a keyword: none) is a warning.""",
    citation="RFC 7030 §4.2.2, §4.2.3",
    source=Source.RFC7030,
    severity=E,
    keyword="MUST; none",
    kinds=EST,
    applies=lambda doc: any((e := doc.get(n)) is not None and e.status != 202 for n in ENROLLMENTS),
)
def e07(doc: ServerDoc) -> Found:
    for name in ENROLLMENTS:
        e = doc.get(name)
        if e is None or e.status == 202:
            continue
        if e.status != 200:
            yield Violation(f"{name} answered {e.status}: {e.text[:200]}")
            continue
        if e.media_type != "application/pkcs7-mime":
            yield Violation(
                f"{name} answered {e.media_type or 'untyped'}, not application/pkcs7-mime"
            )
        elif e.media_parameters.get("smime-type") != "certs-only":
            yield Violation(f"{name} answered without smime-type=certs-only", W)
        try:
            certificates = certs_only(e.body)
        except ValueError as exc:
            yield Violation(f"{name} did not answer a certs-only CMS: {exc}")
            continue
        if len(certificates) != 1:
            yield Violation(
                f"{name} answered {len(certificates)} certificates, not just the new one"
            )
        if not certificates:
            continue
        spki = (
            certificates[0]
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        wanted = doc.facts.get(f"{name}_spki")
        if wanted is not None and spki != wanted:
            yield Violation(f"{name}: the certificate does not certify the CSR's key")
        subject = doc.facts.get(f"{name}_subject")
        if subject is not None and certificates[0].subject.public_bytes() != subject:
            yield Violation(f"{name}: the new certificate's subject differs from the current one")


@rule(
    "E-08",
    "202 with Retry-After; a retry issues at most once",
    """A 202 carries Retry-After, delta-seconds or an HTTP-date (defined in §4.2.3, RFC 9110
    §10.2.3); sending the same CSR again after success does not yield a second, different
    certificate (docs/protocols.md).""",
    citation="RFC 7030 §4.2.3; RFC 9110 §10.2.3",
    source=Source.RFC7030,
    severity=E,
    keyword="defined",
    kinds=EST,
    applies=lambda doc: any(e.status == 202 for e in doc.answered()) or doc.has("enroll-retry"),
)
def e08(doc: ServerDoc) -> Found:
    for e in doc.answered():
        if e.status != 202:
            continue
        value = (e.header("Retry-After") or "").strip()
        if not value:
            yield Violation(f"{_label(e)} ({e.name}) answered 202 without Retry-After")
        elif not value.isdigit() and not re.fullmatch(
            r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT", value
        ):
            yield Violation(
                f"{_label(e)} ({e.name}) Retry-After {value!r} is neither seconds nor an HTTP-date"
            )
    first, again = doc.get("enroll"), doc.get("enroll-retry")
    if first is None or again is None or first.status != 200 or again.status != 200:
        return
    try:
        a, b = certs_only(first.body), certs_only(again.body)
    except ValueError:
        return
    if a and b and a[0] != b[0]:
        yield Violation("the same CSR sent again got a second, different certificate")


@rule(
    "E-09",
    "Re-enrollment keeps the subject",
    """The subject of a re-enrollment MUST be identical to the current certificate's (§4.2.2): a
    CSR for another subject is never served; that it is refused with 403 rather than another
    4xx (none: no keyword) is a warning.""",
    citation="RFC 7030 §4.2.2",
    source=Source.RFC7030,
    severity=E,
    keyword="MUST; none",
    kinds=EST,
    applies=_any("reenroll-other-subject"),
)
def e09(doc: ServerDoc) -> Found:
    e = doc.get("reenroll-other-subject")
    assert e is not None
    if e.status is not None and 200 <= e.status < 300:
        yield Violation(f"a re-enrollment for another subject answered {e.status}")
    elif e.status != 403:
        yield Violation(f"a re-enrollment for another subject answered {e.status}, not 403", W)


@rule(
    "E-10",
    "csrattrs",
    """GET /csrattrs MUST answer 200 with application/csrattrs (a base64 CsrAttrs) when it has
    attributes, or 204/404 when it has none (defined in §4.5.2).""",
    citation="RFC 7030 §4.5.2; RFC 8951 §3.2",
    source=Source.RFC7030,
    severity=E,
    keyword="MUST; defined",
    kinds=EST,
    applies=_any("csrattrs"),
)
def e10(doc: ServerDoc) -> Found:
    e = doc.get("csrattrs")
    assert e is not None
    if e.status in (204, 404):
        return
    if e.status != 200:
        yield Violation(f"/csrattrs answered {e.status}")
        return
    if e.media_type != "application/csrattrs":
        yield Violation(f"/csrattrs is {e.media_type or 'untyped'}, not application/csrattrs")
    try:
        der = base64.b64decode(re.sub(rb"\s+", b"", e.body), validate=True)
        items = _AnySequence.load(der)
        kinds = {item.dump()[0] for item in items}  # AttrOrOID: OID (0x06) or Attribute (0x30)
    except (binascii.Error, ValueError, TypeError) as exc:
        yield Violation(f"/csrattrs is not a base64 CsrAttrs SEQUENCE: {exc}")
        return
    if not kinds <= {0x06, 0x30}:
        yield Violation(f"/csrattrs holds items that are neither OIDs nor attributes ({kinds})")


class _AnySequence(core.SequenceOf):
    _child_spec = core.Any


@rule(
    "E-11",
    "fullcmc when not offered",
    """A server that does not offer Full CMC never answers /fullcmc 2xx (defined in §4.3); 404 or
    501 rather than another 4xx (none: no keyword) is preferred, a warning otherwise.""",
    citation="RFC 7030 §4.3; docs/protocols.md EST 11",
    source=Source.RFC7030,
    severity=E,
    keyword="defined; none",
    kinds=EST,
    applies=_any("fullcmc"),
)
def e11(doc: ServerDoc) -> Found:
    e = doc.get("fullcmc")
    assert e is not None
    if e.status is not None and 200 <= e.status < 300:
        yield Violation(f"/fullcmc answered {e.status} to a garbage body")
    elif e.status not in (404, 501):
        yield Violation(f"/fullcmc answered {e.status}, not 404 or 501", W)

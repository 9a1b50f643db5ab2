"""ACME points of docs/protocols.md (RFC 8555), judged on the exchanges the live harness records
(A-01..A-17). They run against any ACME server; the harness is shown against Pebble."""

from __future__ import annotations

import re
from collections.abc import Iterator

from cryptography import x509

from jitsuin.conformance.findings import Note, Severity, Violation
from jitsuin.conformance.live import Exchange, ServerDoc
from jitsuin.conformance.registry import DocKind, Source, rule

E, W = Severity.ERROR, Severity.WARNING
Found = Iterator[Violation | Note]
ACME = (DocKind.ACME_SERVER,)
URN = "urn:ietf:params:acme:error:"
# RFC 8555 §6.7 and §9.7.4 (the registry), RFC 9773 §7.4 (alreadyReplaced).
ERROR_TYPES = {
    "accountDoesNotExist",
    "alreadyReplaced",
    "alreadyRevoked",
    "badCSR",
    "badNonce",
    "badPublicKey",
    "badRevocationReason",
    "badSignatureAlgorithm",
    "caa",
    "compound",
    "connection",
    "dns",
    "externalAccountRequired",
    "incorrectResponse",
    "invalidContact",
    "malformed",
    "orderNotReady",
    "rateLimited",
    "rejectedIdentifier",
    "serverInternal",
    "tls",
    "unauthorized",
    "unsupportedContact",
    "unsupportedIdentifier",
    "userActionRequired",
}
_NONCE = re.compile(r"[A-Za-z0-9_-]+")
DIRECTORY_FIELDS = ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange")
# Successful POSTs (RFC 8555 §6.5: every one carries Replay-Nonce).
POSTS = (
    "new-account",
    "existing-account",
    "new-order",
    "authz",
    "challenge",
    "finalize",
    "order-poll",
    "certificate",
    "revoke",
)


def _any(*names: str):  # type: ignore[no-untyped-def]
    return lambda doc: doc.has(*names)


def problem_type(e: Exchange) -> str | None:
    body = e.json()
    if isinstance(body, dict) and isinstance(body.get("type"), str):
        return body["type"]
    return None


def _expect_problem(
    e: Exchange, status: int | tuple[int, ...], kind: str, what: str, severity: Severity = E
) -> Found:
    statuses = (status,) if isinstance(status, int) else status
    got = problem_type(e)
    if e.status is not None and 200 <= e.status < 300:
        yield Violation(f"{what} was accepted ({e.status})")
        return
    if e.status not in statuses or got != URN + kind:
        shown = got.removeprefix(URN) if got else "no problem type"
        yield Violation(f"{what} answered {e.status} {shown}, not {statuses[0]} {kind}", severity)


@rule(
    "A-01",
    "Directory",
    """GET on the directory URL answers 200 application/json (defined in §7.1.1: the entry point a
    client built to the RFC needs): an object with the newNonce, newAccount, newOrder,
    revokeCert and keyChange URLs, each https (use of HTTPS is REQUIRED, §6.1), and meta, if
    present, an object.""",
    citation="RFC 8555 §6.1, §7.1.1",
    source=Source.RFC8555,
    severity=E,
    keyword="REQUIRED; defined",
    kinds=ACME,
    applies=_any("directory"),
)
def a01(doc: ServerDoc) -> Found:
    e = doc.get("directory")
    assert e is not None
    if e.status != 200:
        yield Violation(f"the directory answered {e.status}")
        return
    if e.media_type != "application/json":
        yield Violation(f"the directory is {e.media_type or 'untyped'}, not application/json")
    body = e.json()
    if not isinstance(body, dict):
        yield Violation("the directory is not a JSON object")
        return
    for name in DIRECTORY_FIELDS:
        value = body.get(name)
        if not isinstance(value, str) or not value.startswith("https://"):
            yield Violation(f"the directory has no https {name} URL")
    if "meta" in body and not isinstance(body["meta"], dict):
        yield Violation("the directory's meta is not an object")


@rule(
    "A-02",
    "newNonce",
    """HEAD newNonce MUST answer with a fresh base64url Replay-Nonce and SHOULD have status 200 (a
    warning otherwise); GET newNonce MUST answer 204 with one; both MUST carry Cache-Control:
    no-store (§7.2). Link rel="index" to the directory (§7.1, none: no keyword) is a
    warning.""",
    citation="RFC 8555 §7.2, §6.5.1, §7.1",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST; SHOULD; none",
    kinds=ACME,
    applies=_any("nonce-head", "nonce-get"),
)
def a02(doc: ServerDoc) -> Found:
    seen: set[str] = set()
    for name, status in (("nonce-head", 200), ("nonce-get", 204)):
        e = doc.get(name)
        if e is None:
            continue
        if e.status != status:
            # §7.2: HEAD "SHOULD have status code 200"; GET MUST answer 204.
            yield Violation(
                f"{e.method} newNonce answered {e.status}, not {status}", W if status == 200 else E
            )
        nonce = e.header("Replay-Nonce")
        if not nonce or not _NONCE.fullmatch(nonce):
            yield Violation(f"{e.method} newNonce has no base64url Replay-Nonce ({nonce!r})")
        elif nonce in seen:
            yield Violation(f"{e.method} newNonce repeated a nonce")
        else:
            seen.add(nonce)
        if "no-store" not in (e.header("Cache-Control") or "").lower():
            yield Violation(f"{e.method} newNonce lacks Cache-Control: no-store")
        if not e.links("index"):
            yield Violation(f'{e.method} newNonce lacks Link rel="index"', W)


@rule(
    "A-03",
    "badNonce with a fresh nonce",
    """A request with a nonce the server did not issue MUST be answered 400 badNonce, and that
    error response MUST carry a fresh Replay-Nonce for the retry (§6.5).""",
    citation="RFC 8555 §6.5, §6.7",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST",
    kinds=ACME,
    applies=_any("bad-nonce"),
)
def a03(doc: ServerDoc) -> Found:
    e = doc.get("bad-nonce")
    assert e is not None
    yield from _expect_problem(e, 400, "badNonce", "a request with an unknown nonce")
    nonce = e.header("Replay-Nonce")
    if not nonce or not _NONCE.fullmatch(nonce):
        yield Violation("the badNonce error carries no fresh Replay-Nonce")
    elif nonce == doc.facts.get("bad_nonce_sent"):
        yield Violation("the badNonce error hands back the rejected nonce")


@rule(
    "A-04",
    "Problem documents",
    """An error response SHOULD be a problem document, application/problem+json (a warning
    otherwise). Its type MUST NOT be an urn:ietf:params:acme:error: type the IANA registry does
    not list (an error); a type outside that namespace is allowed (MAY). A problem document
    without detail (optional, RFC 7807 §3.2) is a notice.""",
    citation="RFC 8555 §6.7; RFC 7807 §3",
    source=Source.RFC8555,
    severity=E,
    keyword="SHOULD; MUST NOT",
    kinds=ACME,
    applies=lambda doc: any(
        e.status and e.status >= 400 and e.method != "HEAD" for e in doc.answered()
    ),
)
def a04(doc: ServerDoc) -> Found:
    for e in doc.answered():
        if not e.status or e.status < 400 or e.method == "HEAD" or e.status == 405:
            continue
        if e.media_type != "application/problem+json":
            # §6.7: the server "SHOULD provide additional information using a problem document".
            yield Violation(
                f"{e.name}: {e.status} answered as {e.media_type or 'untyped'}, not "
                "application/problem+json",
                W,
            )
            continue
        kind = problem_type(e)
        # §6.7: servers MUST NOT use the ACME URN namespace for errors the registry does not
        # list; another type URI is allowed.
        if kind is not None and kind.startswith(URN) and kind.removeprefix(URN) not in ERROR_TYPES:
            yield Violation(f"{e.name}: problem type {kind!r} is not a registered ACME error")
        body = e.json()
        if isinstance(body, dict) and not body.get("detail"):  # RFC 7807 §3.2: optional
            yield Violation(f"{e.name}: the problem document has no detail", Severity.NOTICE)


@rule(
    "A-05",
    "415 for anything but application/jose+json",
    """A POST whose Content-Type is not application/jose+json MUST be answered 415 (§6.2).""",
    citation="RFC 8555 §6.2",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST",
    kinds=ACME,
    applies=_any("bad-content-type"),
)
def a05(doc: ServerDoc) -> Found:
    e = doc.get("bad-content-type")
    assert e is not None
    if e.status != 415:
        kind = (problem_type(e) or "").removeprefix(URN)
        yield Violation(f"a POST as application/json answered {e.status} {kind}, not 415")


@rule(
    "A-06",
    "Only flattened JWS with exactly one of jwk and kid",
    """The JWS MUST NOT have multiple signatures (general serialization) nor an unprotected
    header, and servers MUST reject a protected header with both jwk and kid (§6.2): each is
    refused with 400 malformed.""",
    citation="RFC 8555 §6.2",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST NOT; MUST",
    kinds=ACME,
    applies=_any("jws-general", "jws-unprotected-header", "jws-jwk-and-kid"),
)
def a06(doc: ServerDoc) -> Found:
    for name, what in (
        ("jws-general", "a general-serialization JWS"),
        ("jws-unprotected-header", "a JWS with an unprotected header"),
        ("jws-jwk-and-kid", "a JWS with both jwk and kid"),
    ):
        e = doc.get(name)
        if e is not None:
            yield from _expect_problem(e, 400, "malformed", what)


@rule(
    "A-07",
    "Signature algorithm allow-list",
    """alg MUST NOT be "none" or a MAC algorithm: a JWS with alg "none" or HS256 MUST be refused
    with 400 badSignatureAlgorithm, and that problem document MUST list the accepted
    algorithms (§6.2).""",
    citation="RFC 8555 §6.2, §6.7",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST NOT; MUST",
    kinds=ACME,
    applies=_any("jws-alg-none", "jws-alg-hs256"),
)
def a07(doc: ServerDoc) -> Found:
    for name, what in (("jws-alg-none", 'alg "none"'), ("jws-alg-hs256", "alg HS256")):
        e = doc.get(name)
        if e is None:
            continue
        yield from _expect_problem(e, 400, "badSignatureAlgorithm", f"a JWS with {what}")
        body = e.json()
        if problem_type(e) == URN + "badSignatureAlgorithm" and not (
            isinstance(body, dict) and isinstance(body.get("algorithms"), list)
        ):
            yield Violation(f"the badSignatureAlgorithm answer to {what} has no algorithms list")


@rule(
    "A-08",
    "url mismatch is unauthorized",
    """A JWS whose protected url differs from the request URL MUST be rejected as unauthorized
    (§6.4).""",
    citation="RFC 8555 §6.4",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST",
    kinds=ACME,
    applies=_any("url-mismatch"),
)
def a08(doc: ServerDoc) -> Found:
    e = doc.get("url-mismatch")
    assert e is not None
    yield from _expect_problem(e, (401, 403), "unauthorized", "a JWS for another URL")


@rule(
    "A-09",
    "newAccount",
    """newAccount answers 201 with the account URL in Location (defined in §7.3: it is the kid
    every later request carries); asking again with onlyReturnExisting MUST answer 200 with the
    same Location (§7.3.1).""",
    citation="RFC 8555 §7.3, §7.3.1",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST; defined",
    kinds=ACME,
    applies=_any("new-account"),
)
def a09(doc: ServerDoc) -> Found:
    e = doc.get("new-account")
    assert e is not None
    if e.status != 201:
        yield Violation(f"newAccount answered {e.status}: {e.text[:200]}")
    if not e.header("Location"):
        yield Violation("newAccount answered without Location")
    again = doc.get("existing-account")
    if again is None:
        return
    if again.status != 200:
        yield Violation(f"newAccount with onlyReturnExisting answered {again.status}, not 200")
    if again.header("Location") != e.header("Location"):
        yield Violation("newAccount with onlyReturnExisting gave another Location")


@rule(
    "A-10",
    "Replay-Nonce and Link rel=index on every response",
    """Every successful POST response MUST carry a Replay-Nonce (§6.5). Link rel="index" on every
    response other than the directory (§7.1, none: no keyword) is a warning.""",
    citation="RFC 8555 §6.5, §7.1",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST; none",
    kinds=ACME,
    applies=_any(*POSTS),
)
def a10(doc: ServerDoc) -> Found:
    for e in doc.answered(POSTS):
        if e.status is not None and e.status < 300 and not e.header("Replay-Nonce"):
            yield Violation(f"{e.name}: a successful POST without Replay-Nonce")
    for e in doc.answered():
        if e.name != "directory" and e.status != 405 and not e.links("index"):
            yield Violation(f'{e.name}: no Link rel="index"', W)


@rule(
    "A-11",
    "newOrder",
    """newOrder answers 201 with Location (defined in §7.4) and a pending or ready order with its
    REQUIRED authorizations and finalize fields (§7.1.3).""",
    citation="RFC 8555 §7.4, §7.1.3",
    source=Source.RFC8555,
    severity=E,
    keyword="REQUIRED; defined",
    kinds=ACME,
    applies=_any("new-order"),
)
def a11(doc: ServerDoc) -> Found:
    e = doc.get("new-order")
    assert e is not None
    if e.status != 201:
        yield Violation(f"newOrder answered {e.status}: {e.text[:200]}")
        return
    if not e.header("Location"):
        yield Violation("newOrder answered without Location")
    order = e.json()
    if not isinstance(order, dict):
        yield Violation("the order is not a JSON object")
        return
    if order.get("status") not in ("pending", "ready"):
        yield Violation(f"a new order has status {order.get('status')!r}")
    if not isinstance(order.get("authorizations"), list) or not isinstance(
        order.get("finalize"), str
    ):
        yield Violation("the order lacks authorizations or finalize")


@rule(
    "A-12",
    "orderNotReady",
    """Finalizing an order that is not ready MUST be answered 403 orderNotReady (§7.4).""",
    citation="RFC 8555 §7.4",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST",
    kinds=ACME,
    applies=_any("finalize-not-ready"),
)
def a12(doc: ServerDoc) -> Found:
    e = doc.get("finalize-not-ready")
    assert e is not None
    yield from _expect_problem(e, 403, "orderNotReady", "finalizing a pending order")


@rule(
    "A-13",
    "GET only for the directory and newNonce",
    """A plain GET on an order is refused (405): resources other than the directory and newNonce
    are fetched with POST-as-GET (§6.3, which words the refusal with none of the RFC 2119
    keywords: a warning).""",
    citation="RFC 8555 §6.3",
    source=Source.RFC8555,
    severity=W,
    keyword="none",
    kinds=ACME,
    applies=_any("get-order"),
)
def a13(doc: ServerDoc) -> Found:
    e = doc.get("get-order")
    assert e is not None
    if e.status != 405:
        yield Violation(f"a GET on the order answered {e.status}, not 405")


@rule(
    "A-14",
    "Challenge response",
    """Responding to a challenge (POST with {}) answers 200 with the challenge, whose REQUIRED
    status is pending, processing or valid (§7.1.5, §7.5.1). Link rel="up" to its
    authorization (none: no keyword) is a warning.""",
    citation="RFC 8555 §7.5.1, §7.1.5",
    source=Source.RFC8555,
    severity=E,
    keyword="REQUIRED; none",
    kinds=ACME,
    applies=_any("challenge"),
)
def a14(doc: ServerDoc) -> Found:
    e = doc.get("challenge")
    assert e is not None
    if e.status != 200:
        yield Violation(f"the challenge response answered {e.status}")
        return
    body = e.json()
    if not isinstance(body, dict) or body.get("status") not in ("pending", "processing", "valid"):
        yield Violation(
            f"the challenge status is {body.get('status') if isinstance(body, dict) else body!r}"
        )
    authz = doc.facts.get("authz_url")
    if authz not in e.links("up"):
        yield Violation('the challenge response lacks Link rel="up" to its authorization', W)


@rule(
    "A-15",
    "badCSR",
    """The CSR MUST name exactly the order's identifiers (§7.4): a server that finalizes with a CSR
    for other identifiers is in error. The refusal SHOULD use error code badCSR, status 400 (a
    warning otherwise: Pebble answers 403 unauthorized).""",
    citation="RFC 8555 §7.4",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST; SHOULD",
    kinds=ACME,
    applies=_any("finalize-bad-csr"),
)
def a15(doc: ServerDoc) -> Found:
    e = doc.get("finalize-bad-csr")
    assert e is not None
    # §7.4: accepting the CSR is an error; another refusal than badCSR breaks a SHOULD.
    yield from _expect_problem(e, 400, "badCSR", "a CSR for other identifiers", W)


@rule(
    "A-16",
    "Finalize and download",
    """Finalizing a ready order answers 200 with the order, processing or valid; the valid order
    names the certificate, which downloads as application/pem-certificate-chain (defined in
    §7.4, §7.4.2, §9.1). A processing order without Retry-After and a download without the
    chain (none: no keyword) are warnings.""",
    citation="RFC 8555 §7.4, §7.4.2, §9.1",
    source=Source.RFC8555,
    severity=E,
    keyword="defined; none",
    kinds=ACME,
    applies=_any("finalize"),
)
def a16(doc: ServerDoc) -> Found:
    e = doc.get("finalize")
    assert e is not None
    if e.status != 200:
        yield Violation(f"finalize answered {e.status}: {e.text[:200]}")
        return
    body = e.json()
    status = body.get("status") if isinstance(body, dict) else None
    if status == "processing" and not e.header("Retry-After"):
        yield Violation("a processing order without Retry-After", W)
    cert = doc.get("certificate")
    if cert is None:
        yield Violation("no certificate could be downloaded")
        return
    if cert.status != 200:
        yield Violation(f"the certificate download answered {cert.status}")
        return
    if cert.media_type != "application/pem-certificate-chain":
        yield Violation(
            f"the certificate is {cert.media_type or 'untyped'}, not "
            "application/pem-certificate-chain"
        )
    try:
        chain = x509.load_pem_x509_certificates(cert.body)
    except ValueError as exc:
        yield Violation(f"the certificate is not a PEM chain: {exc}")
        return
    if len(chain) < 2:
        yield Violation("the download holds the leaf only, no chain", W)


@rule(
    "A-17",
    "Revocation",
    """A revocation reason the server does not allow (7, unused in RFC 5280) MUST be refused with
    badRevocationReason; a valid revocation answers 200 and revoking again is refused with
    alreadyRevoked (defined in §7.6).""",
    citation="RFC 8555 §7.6; RFC 5280 §5.3.1",
    source=Source.RFC8555,
    severity=E,
    keyword="MUST; defined",
    kinds=ACME,
    applies=_any("revoke-bad-reason", "revoke", "revoke-again"),
)
def a17(doc: ServerDoc) -> Found:
    bad = doc.get("revoke-bad-reason")
    if bad is not None:
        yield from _expect_problem(bad, 400, "badRevocationReason", "revocation reason 7")
    ok = doc.get("revoke")
    if ok is not None and ok.status != 200:
        yield Violation(f"revokeCert answered {ok.status}: {ok.text[:200]}")
    again = doc.get("revoke-again")
    if again is not None:
        yield from _expect_problem(again, 400, "alreadyRevoked", "revoking twice")

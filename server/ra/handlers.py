"""The operator API under /ra/ and the applicant's online input: thin handlers over RAService,
which checks every permission. Errors leave as RFC 9457 problem documents through one mapping
table.

A new workflow step's route goes here (server/ra/workflow.py lists the five files to touch); next,
describe its path in server/ra/openapi.py."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes

from jitsuin.ca.errors import CAError
from jitsuin.protocol.problems import JITSUIN_TYPE_BASE, Problem
from jitsuin.protocol.untrusted import InputError, decimal, read_json
from jitsuin.server import logging_json
from jitsuin.server.error_map import refusal
from jitsuin.server.keys import AUTHORITY, RA, REENROLLMENT
from jitsuin.server.middlewares import problem_response
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.openapi import OPENAPI
from jitsuin.server.ra.service import Body, application_json, credential_known_to
from jitsuin.server.ra.workflow import REDEEMABLE, Event
from jitsuin.server.storage import AuditChainBroken, Operator

routes = web.RouteTableDef()

STATUS: dict[RAKind, tuple[int, str]] = {
    RAKind.INVALID: (422, "The request breaks a rule"),
    RAKind.MALFORMED: (400, "Malformed request"),
    RAKind.NOT_FOUND: (404, "Not found"),
    RAKind.ILLEGAL_TRANSITION: (409, "Not allowed in the application's current state"),
    RAKind.CONFLICT: (409, "Conflict"),
    RAKind.FORBIDDEN: (403, "Forbidden"),
    RAKind.UNAUTHORIZED: (401, "Authentication required"),
    RAKind.LOCKED: (403, "Credential locked or used"),
    RAKind.EXPIRED: (403, "Credential expired"),
    RAKind.PENDING: (409, "Waiting for the CA"),
    RAKind.THROTTLED: (429, "Too many tries from this address"),  # RFC 6585 §4
}

NO_STORE = {"Cache-Control": "no-store"}


def ra_problem(exc: RAError) -> web.Response:
    status, title = STATUS[exc.kind]
    headers = dict(NO_STORE)
    if exc.kind is RAKind.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="jitsuin-ra"'
    if "retryAfter" in exc.extensions:  # RFC 6585 §4: 429 says when to come back
        headers["Retry-After"] = str(exc.extensions["retryAfter"])
    problem = Problem(
        status=status,
        title=title,
        detail=exc.message,
        type=JITSUIN_TYPE_BASE + exc.kind.value,
        extensions=exc.extensions,
    )
    return problem_response(problem, headers)


def ca_problem(exc: CAError) -> web.Response:
    """The CA's refusal as server/error_map.py decides it, as an RFC 9457 problem."""
    decided = refusal(exc)
    problem = Problem(
        status=decided.status, title="Request refused by the CA", detail=decided.detail,
        type=JITSUIN_TYPE_BASE + decided.problem,
    )  # fmt: skip
    return problem_response(problem, NO_STORE | decided.headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def source_of(request: web.Request) -> str:
    """The address that a wrong credential's wait is kept for: the TCP peer. Behind a reverse
    proxy that is the proxy (X-Forwarded-For is not trusted), and every applicant then shares
    the proxy's wait; the hard limit of wrong tries holds either way."""
    return request.remote or "unknown"


def errors_as_problems(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except RAError as exc:
            return ra_problem(exc)
        except CAError as exc:
            return ca_problem(exc)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _peer_certificate(request: web.Request) -> bytes | None:
    """The DER of the TLS client certificate, if the peer presented one. The HTTPS listener asks
    for one (ssl.CERT_OPTIONAL) and accepts only chains to a generation of this CA (RFC 8446
    §4.4.2.4: the handshake fails otherwise); plain HTTP has none."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True) or None


async def operator_of(request: web.Request) -> Operator:
    """The operator making the request: by the API token (RFC 6750 §2.1 'Authorization: Bearer')
    or, when the request has no Authorization header at all, by the TLS client certificate bound
    to the operator (``jitsuin ra operator-bind-cert``). If both are present the token decides:
    a bad token is refused even with a good certificate."""
    header = request.headers.get("Authorization")
    if header is None:
        peer = _peer_certificate(request)
        if peer is not None:
            return logging_json.acting(await request.app[RA].authenticate_certificate(peer))
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RAError(
            RAKind.UNAUTHORIZED,
            "send the operator API token as 'Authorization: Bearer', or a bound TLS client "
            "certificate",
        )
    if not token.strip().isascii():
        # Tokens are ASCII (jto_ + base64url); aiohttp hands other header bytes on as lone
        # surrogates, which no hash can take.
        raise RAError(RAKind.UNAUTHORIZED, "unknown or disabled operator token")
    return logging_json.acting(await request.app[RA].authenticate(token.strip()))


async def json_body(request: web.Request) -> Any:
    """The request's JSON body ({} when there is none), read within the limits of
    ``jitsuin.protocol.untrusted``; anything else is a 400 problem (RFC 9457)."""
    if not request.can_read_body:
        return {}
    if request.content_type != "application/json":
        raise RAError(RAKind.MALFORMED, "send the body as application/json")
    try:
        return read_json(await request.read())
    except InputError as exc:
        raise RAError(RAKind.MALFORMED, f"the body: {exc.message}") from None


def _reply(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(body, status=status, headers={**NO_STORE, **headers})


# What the ids and names in paths look like (credentials.new_application_id, operator names):
# anything else names nothing, and never reaches the store (U+0000 is refused by PostgreSQL).
_APPLICATION_ID = re.compile(r"APP-[0-9A-Z]{8}")
_OPERATOR_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")


def _app_id(request: web.Request) -> str:
    raw = request.match_info["id"]
    if not _APPLICATION_ID.fullmatch(raw):
        raise RAError(RAKind.NOT_FOUND, f"there is no application {raw[:40]!r}")
    return raw


def _operator_name(request: web.Request) -> str:
    raw = request.match_info["name"]
    if not _OPERATOR_NAME.fullmatch(raw):
        raise RAError(RAKind.NOT_FOUND, f"there is no operator {raw[:40]!r}")
    return raw


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return decimal(raw, f"query parameter {name}", maximum)
    except InputError as exc:
        raise RAError(RAKind.MALFORMED, exc.message) from None


def _int_path(request: web.Request, what: str) -> int:
    """The {id} of a path as a number; anything else names nothing (404)."""
    raw = request.match_info["id"]
    try:
        return decimal(raw, what, 2**63 - 1)
    except InputError:
        raise RAError(RAKind.NOT_FOUND, f"there is no {what} {raw[:40]!r}") from None


# -- operator API ----------------------------------------------------------------------------
@routes.get("/ra/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


@routes.post("/ra/applications")
@errors_as_problems
async def create(request: web.Request) -> web.Response:
    app = await request.app[RA].create(await operator_of(request), await json_body(request))
    return _reply(application_json(app), 201, Location=f"/ra/applications/{app.id}")


@routes.get("/ra/applications")
@errors_as_problems
async def list_applications(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    limit = _int_query(request, "limit", 100, 1000)
    offset = _int_query(request, "offset", 0, 10**9)
    apps = await request.app[RA].list(operator, request.query.get("state"), limit, offset)
    return _reply({"applications": [application_json(a) for a in apps]})


@routes.get("/ra/applications/{id}")
@errors_as_problems
async def read(request: web.Request) -> web.Response:
    app = await request.app[RA].read(await operator_of(request), _app_id(request))
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/review")
@errors_as_problems
async def review(request: web.Request) -> web.Response:
    ra = request.app[RA]
    app = await ra.review(await operator_of(request), _app_id(request), await json_body(request))
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/resubmit")
@errors_as_problems
async def resubmit(request: web.Request) -> web.Response:
    app = await request.app[RA].resubmit(await operator_of(request), _app_id(request))
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/inquiry")
@errors_as_problems
async def inquiry(request: web.Request) -> web.Response:
    """Dispatch the inquiry letter. The access code is in this response only (and the letter)."""
    ra = request.app[RA]
    sent = await ra.dispatch_inquiry(
        await operator_of(request), _app_id(request), await json_body(request)
    )
    letter_html = sent.letter_html
    if "text/html" in request.headers.get("Accept", ""):
        return web.Response(text=letter_html, content_type="text/html", headers=NO_STORE)
    return _reply(
        {
            "application": application_json(sent.application),
            "enrollmentId": sent.enrollment_id,
            "accessCode": sent.access_code,
            "letterHtml": letter_html,
        }
    )


@routes.post("/ra/applications/{id}/letter")
@errors_as_problems
async def letter(request: web.Request) -> web.Response:
    ra = request.app[RA]
    app = await ra.record_letter(
        await operator_of(request), _app_id(request), await json_body(request)
    )
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/payment")
@errors_as_problems
async def payment(request: web.Request) -> web.Response:
    ra = request.app[RA]
    app = await ra.record_payment(
        await operator_of(request), _app_id(request), await json_body(request)
    )
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/approve")
@errors_as_problems
async def approve(request: web.Request) -> web.Response:
    app = await request.app[RA].approve(await operator_of(request), _app_id(request))
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/reissue-pin")
@errors_as_problems
async def reissue_pin(request: web.Request) -> web.Response:
    app = await request.app[RA].reissue_pin(await operator_of(request), _app_id(request))
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/reject")
@errors_as_problems
async def reject(request: web.Request) -> web.Response:
    ra = request.app[RA]
    operator = await operator_of(request)
    app = await ra.close(operator, _app_id(request), Event.REJECT, await json_body(request))
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/abandon")
@errors_as_problems
async def abandon(request: web.Request) -> web.Response:
    ra = request.app[RA]
    operator = await operator_of(request)
    app = await ra.close(operator, _app_id(request), Event.ABANDON, await json_body(request))
    return _reply(application_json(app))


@routes.post("/ra/applications/{id}/revoke")
@errors_as_problems
async def revoke(request: web.Request) -> web.Response:
    ra = request.app[RA]
    app = await ra.revoke(await operator_of(request), _app_id(request), await json_body(request))
    return _reply(application_json(app))


@routes.get("/ra/applications/{id}/disclosure")
@errors_as_problems
async def disclosure(request: web.Request) -> web.Response:
    data = await request.app[RA].disclose(await operator_of(request), _app_id(request))
    return _reply(data)


@routes.get("/ra/mail")
@errors_as_problems
async def mail(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    limit = _int_query(request, "limit", 100, 1000)
    records = await request.app[RA].mail(operator, request.query.get("status"), limit)
    return _reply(
        {
            "mail": [
                {
                    "id": m.id,
                    "application": m.application_id,
                    "kind": m.kind,
                    "recipient": m.recipient,
                    "status": m.status,
                    "attempts": m.attempts,
                    "lastError": m.last_error,
                    "nextAttemptAt": m.next_attempt_at.isoformat(),
                    "sentAt": m.sent_at.isoformat() if m.sent_at else None,
                }
                for m in records
            ]
        }
    )


@routes.post("/ra/mail/{id}/retry")
@errors_as_problems
async def retry_mail(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    mail_id = _int_path(request, "mail")
    await request.app[RA].retry_mail(operator, mail_id)
    return _reply({"id": mail_id, "status": "pending"}, 202)


@routes.get("/ra/audit")
@errors_as_problems
async def audit(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    after = _int_query(request, "after", 0, 10**12)
    limit = _int_query(request, "limit", 100, 1000)
    entries = await request.app[RA].audit_log(operator, after, limit)
    return _reply(
        {
            "entries": [
                {
                    "seq": e.seq,
                    "at": e.event.at.isoformat(),
                    "actor": e.event.actor,
                    "action": e.event.action,
                    "target": e.event.target,
                    "details": e.event.details,
                    "hash": e.hash,
                }
                for e in entries
            ]
        }
    )


@routes.get("/ra/audit/verify")
@errors_as_problems
async def audit_verify(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    try:
        count = await request.app[RA].verify_audit(operator)
    except AuditChainBroken as exc:
        return _reply({"ok": False, "error": str(exc)}, 409)
    return _reply({"ok": True, "entries": count})


@routes.get("/ra/reenrollments")
@errors_as_problems
async def reenrollments(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    records = await request.app[RA].reenrollments(operator, request.query.get("status"))
    return _reply(
        {
            "reenrollments": [
                {
                    "id": r.id,
                    "subscriber": r.subscriber_id,
                    "profile": r.profile,
                    "previousSerial": r.previous_serial,
                    "status": r.status,
                    "createdAt": r.created_at.isoformat(),
                    "decidedBy": r.decided_by,
                    "certificateSerial": r.certificate_serial,
                }
                for r in records
            ]
        }
    )


@routes.post("/ra/reenrollments/{id}/{decision:approve|reject}")
@errors_as_problems
async def decide_reenrollment(request: web.Request) -> web.Response:
    """EST re-enrollment waiting for an operator (per-profile policy): the client's retry of
    the same CSR then gets the certificate."""
    operator = await operator_of(request)
    request_id = _int_path(request, "re-enrollment")
    approve = request.match_info["decision"] == "approve"
    await request.app[RA].decide_reenrollment(
        operator, request.app[REENROLLMENT], request_id, approve
    )
    return _reply({"id": request_id, "status": "approved" if approve else "rejected"})


@routes.post("/ra/ca/rollover")
@errors_as_problems
async def ca_rollover(request: web.Request) -> web.Response:
    """The next CA generation and its link certificates (SEED-R15...R17); admin only."""
    new = await request.app[RA].rollover(await operator_of(request))
    link = request.app[AUTHORITY].links[-1]
    return _reply(
        {
            "generation": new.number,
            "sha256": new.certificate.fingerprint(hashes.SHA256()).hex(),
            "oldWithNew": link.old_with_new.fingerprint(hashes.SHA256()).hex(),
            "newWithOld": link.new_with_old.fingerprint(hashes.SHA256()).hex(),
        },
        201,
    )


@routes.put("/ra/operators/{name}/certificate")
@errors_as_problems
async def bind_operator_certificate(request: web.Request) -> web.Response:
    """Bind the operator to one TLS client certificate issued by this CA (an admin, or the
    operator themself presenting it in the handshake; audited). The body is
    ``{"certificate": "<PEM>"}``; a later binding replaces the earlier one."""
    ra = request.app[RA]
    operator = await operator_of(request)
    body = Body(await json_body(request))
    pem = body.text("certificate", limit=65536)
    body.done()
    binding = await ra.bind_certificate(
        operator, _operator_name(request), pem.encode(), _peer_certificate(request)
    )
    return _reply(binding)


@routes.delete("/ra/operators/{name}/certificate")
@errors_as_problems
async def unbind_operator_certificate(request: web.Request) -> web.Response:
    """The operator's certificate no longer authenticates it (admin only; audited)."""
    operator = await operator_of(request)
    await request.app[RA].unbind_certificate(operator, _operator_name(request))
    return web.Response(status=204, headers=NO_STORE)


async def _empty(request: web.Request) -> Operator:
    """The operator making the request, whose body must be empty ({})."""
    operator = await operator_of(request)
    Body(await json_body(request)).done()
    return operator


@routes.post("/ra/operators/{name}/disable")
@errors_as_problems
async def disable_operator(request: web.Request) -> web.Response:
    """Cut the operator off at once: its token and bound certificate get 401 from the next
    request on (admin only; audited). An admin cannot disable themself."""
    ra = request.app[RA]
    operator = await _empty(request)
    name = _operator_name(request)
    at = await ra.disable_operator(operator, name)
    return _reply({"name": name, "disabled": True, "disabledAt": at.isoformat()})


@routes.post("/ra/operators/{name}/enable")
@errors_as_problems
async def enable_operator(request: web.Request) -> web.Response:
    """The operator's token and bound certificate work again (admin only; audited)."""
    ra = request.app[RA]
    operator = await _empty(request)
    name = _operator_name(request)
    await ra.enable_operator(operator, name)
    return _reply({"name": name, "disabled": False, "disabledAt": None})


@routes.post("/ra/operators/{name}/token")
@errors_as_problems
async def rotate_operator_token(request: web.Request) -> web.Response:
    """A new API token for the operator, in this response only; the old one stops working at
    once (an admin, or the operator themself; audited). ``setBy``: who else may know it."""
    ra = request.app[RA]
    operator = await _empty(request)
    name = _operator_name(request)
    token = await ra.rotate_operator_token(operator, name)
    return _reply(
        {"name": name, "token": token, "setBy": list(credential_known_to(operator, name))}
    )


# -- the applicant ---------------------------------------------------------------------------
@routes.post("/applicant/status")
@errors_as_problems
async def applicant_status(request: web.Request) -> web.Response:
    """Where the application stands, by the enrollment ID: the state and whether the PIN can
    still be used, never personal data (SEED-R18)."""
    ra = request.app[RA]
    app = await ra.status(await json_body(request))
    pin = None
    if app.state in REDEEMABLE and app.pin_expires_at is not None:
        pin = {
            "expiresAt": app.pin_expires_at.isoformat(),
            "expired": ra.clock.now() > app.pin_expires_at,
            "locked": app.pin_attempts >= ra.config.ra.max_attempts,
        }
    return _reply({"state": app.state, "pin": pin})


@routes.post("/applicant/online-input")
@errors_as_problems
async def online_input(request: web.Request) -> web.Response:
    """Seed step 6 (SEED-R12): confirm the online input with the mailed credential."""
    data = await json_body(request)
    app = await request.app[RA].online_input(data, source_of(request))
    confirmed = app.online_input_at is not None
    return _reply(
        {
            "state": app.state,
            "confirmed": confirmed,
            "profile": app.profile,
            "familyName": app.family_name,
            "givenName": app.given_name,
            "email": app.email,
            "qualificationGroup": app.qualification_group,
            "qualificationNumber": app.qualification_number,
        }
    )

"""EST over HTTPS at /.well-known/est/ (RFC 7030), one label per profile. Errors are text/plain
with a reason (RFC 7030 §4.2.3); never a 200 for a failure. Every decision about a known
application or certificate is audited; refusals of requests that proved no credential are counted
and logged instead (server/refusals.py)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

from aiohttp import BasicAuth, web
from asn1crypto import core
from cryptography import x509
from cryptography.x509.oid import NameOID

from jitsuin.ca.errors import CAError
from jitsuin.ca.issuance import profile_named
from jitsuin.ca.profiles import PERSONAL_PROFILES
from jitsuin.protocol import est
from jitsuin.server.error_map import refusal
from jitsuin.server.keys import AUTHORITY, RA, REENROLLMENT
from jitsuin.server.operator_auth import source_of
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.storage import AuditEvent

routes = web.RouteTableDef()
REALM = 'Basic realm="jitsuin EST", charset="UTF-8"'
_LABEL = "{label:(general|document-manager)}"

_RA_STATUS = {
    RAKind.UNAUTHORIZED: 401,
    RAKind.LOCKED: 401,  # a used or locked PIN is a bad credential (RFC 7030 §3.2.3)
    RAKind.EXPIRED: 401,
    RAKind.NOT_FOUND: 401,
    RAKind.PENDING: 202,
    RAKind.INVALID: 400,
    RAKind.MALFORMED: 400,
    RAKind.ILLEGAL_TRANSITION: 403,
    RAKind.FORBIDDEN: 403,
    RAKind.CONFLICT: 409,
    RAKind.THROTTLED: 429,  # RFC 6585 §4 with Retry-After: this address must wait
}


class ESTFailure(Exception):
    def __init__(self, status: int, reason: str, *, recorded: bool = False, **headers: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.recorded = recorded  # the RA recorded it already (RAError.recorded)
        self.headers = headers


def _text(status: int, reason: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=reason + "\n", headers=headers)


def _tls(request: web.Request) -> ssl.SSLObject:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        # RFC 7030 §3.2.1 / RFC 8996: EST runs over TLS 1.2 or later only.
        raise ESTFailure(403, "EST is served over HTTPS only")
    return ssl_object


def _csr_body(request_body: bytes, content_type: str) -> bytes:
    if content_type != est.PKCS10:
        raise ESTFailure(415, f"send the CSR as {est.PKCS10} (base64), not {content_type!r}")
    try:
        return est.decode_base64_body(request_body)
    except est.BadBody as exc:
        raise ESTFailure(400, str(exc)) from None


# Beside the text/plain reason (for people), a machine-readable one for clients that explain it
# in the user's language (the browser pickup page): the RA or CA error kind, or a finer reason
# (pin_used, pin_locked), and the wrong tries left before the PIN locks.
ERROR_HEADER = "Jitsuin-Error"
ATTEMPTS_HEADER = "Jitsuin-Attempts-Left"


def _from_ra(exc: RAError, retry_after: int) -> ESTFailure:
    status = _RA_STATUS[exc.kind]
    hint = {ERROR_HEADER: str(exc.extensions.get("reason", exc.kind.value))}
    if "attemptsLeft" in exc.extensions:
        hint[ATTEMPTS_HEADER] = str(exc.extensions["attemptsLeft"])
    if status == 401:
        hint["WWW-Authenticate"] = REALM
    elif status == 202:
        hint["Retry-After"] = str(retry_after)
    elif status == 429:  # RFC 6585 §4
        hint["Retry-After"] = str(exc.extensions["retryAfter"])
    return ESTFailure(status, exc.message, recorded=exc.recorded, **hint)


def _from_ca(exc: CAError) -> ESTFailure:
    """The CA's refusal as server/error_map.py decides it, as text/plain with the kind named."""
    decided = refusal(exc)
    return ESTFailure(
        decided.status, decided.detail, **decided.headers, **{ERROR_HEADER: decided.problem}
    )


def _certificate(der: bytes) -> web.Response:
    """RFC 7030 §4.2.3: a certs-only CMS with just the issued certificate, base64."""
    body = est.certs_only([x509.load_der_x509_certificate(der)])
    return web.Response(
        body=body,
        headers={"Content-Type": est.PKCS7_CERTS_ONLY, "Content-Transfer-Encoding": "base64"},
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def audited(operation: str) -> Callable[[Handler], Handler]:
    """Answer ESTFailure as text/plain. A refusal of a request that proved a credential (the
    PIN, or a client certificate of this CA) is appended to the audit log, with the actor the
    handler named in ``request["est_actor"]``; any other refusal decided nothing about anyone
    known and is counted and logged (server/refusals.py), so that strangers cannot fill the
    append-only audit log."""

    def wrap(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except ESTFailure as exc:
                authority = request.app[AUTHORITY]
                now = authority.clock.now()
                if "est_actor" in request:
                    await authority.store.append_audit(
                        AuditEvent(
                            now,
                            request["est_actor"],
                            f"est.{operation}.refused",
                            request.get("est_target", request.path),
                            {"status": exc.status, "reason": exc.reason},
                        )
                    )
                elif not exc.recorded:
                    authority.refusals.note(f"est.{operation}", now, f"{exc.status} {exc.reason}")
                return _text(exc.status, exc.reason, **exc.headers)

        wrapped.__name__ = handler.__name__
        return wrapped

    return wrap


@routes.get("/.well-known/est/cacerts")
@routes.get(f"/.well-known/est/{_LABEL}/cacerts")
@audited("cacerts")
async def cacerts(request: web.Request) -> web.Response:
    """RFC 7030 §4.1: the CA certificates, no client authentication."""
    _tls(request)
    # After a rollover: OldWithOld, OldWithNew, NewWithOld, NewWithNew (RFC 7030 §4.1.3).
    authority = request.app[AUTHORITY]
    certificates = [authority.generations[0].certificate]
    for link in authority.links:
        new = authority.generation(link.new)
        assert new is not None
        certificates += [link.old_with_new, link.new_with_old, new.certificate]
    return web.Response(
        body=est.certs_only(certificates),
        headers={"Content-Type": est.PKCS7, "Content-Transfer-Encoding": "base64"},
    )


@routes.post("/.well-known/est/simpleenroll")
@routes.post(f"/.well-known/est/{_LABEL}/simpleenroll")
@audited("simpleenroll")
async def simpleenroll(request: web.Request) -> web.Response:
    """RFC 7030 §4.2.1 with HTTP Basic: user = enrollment ID, password = download PIN
    (SEED-R13). The certificate is made now, from the vetted record."""
    _tls(request)
    header = request.headers.get("Authorization")
    if not header:
        raise ESTFailure(401, "authenticate with the enrollment ID and the download PIN",
                         **{"WWW-Authenticate": REALM})  # fmt: skip
    try:
        auth = BasicAuth.decode(header)
    except ValueError:
        raise ESTFailure(
            401, "malformed Basic credentials", **{"WWW-Authenticate": REALM}
        ) from None
    csr_der = _csr_body(await request.read(), request.content_type)
    ra = request.app[RA]
    try:
        app = await ra.check_pin(auth.login, auth.password, csr_der, "est", source_of(request))
        # The PIN is right: what follows is decided about this application, and audited.
        request["est_actor"] = f"applicant:{app.enrollment_id}:est"
        request["est_target"] = f"application/{app.id}"
        redeemed = await ra.redeem_checked(
            app, csr_der, "est", profile=request.match_info.get("label")
        )
    except RAError as exc:
        raise _from_ra(exc, ra.config.ra.retry_after_seconds) from None
    except CAError as exc:
        raise _from_ca(exc) from None
    return _certificate(redeemed.certificate_der)


@routes.post("/.well-known/est/simplereenroll")
@routes.post(f"/.well-known/est/{_LABEL}/simplereenroll")
@audited("simplereenroll")
async def simplereenroll(request: web.Request) -> web.Response:
    """RFC 7030 §4.2.2: authenticated by the TLS client certificate being renewed."""
    peer = _tls(request).getpeercert(binary_form=True)
    if not peer:
        raise ESTFailure(401, "re-enrollment needs the current certificate as the TLS client "
                         "certificate", **{"WWW-Authenticate": REALM})  # fmt: skip
    request["est_actor"] = f"certificate:{x509.load_der_x509_certificate(peer).serial_number:x}"
    csr_der = _csr_body(await request.read(), request.content_type)
    service = request.app[REENROLLMENT]
    retry_after = request.app[RA].config.ra.retry_after_seconds
    try:
        result = await service.reenroll(peer, csr_der, profile=request.match_info.get("label"))
    except RAError as exc:
        raise _from_ra(exc, retry_after) from None
    except CAError as exc:
        raise _from_ca(exc) from None
    if result.status == "pending":
        return _text(202, f"waiting for an operator (request {result.request_id})",
                     **{"Retry-After": str(retry_after)})  # fmt: skip
    assert result.certificate_der is not None
    return _certificate(result.certificate_der)


@routes.get("/.well-known/est/csrattrs")
@routes.get(f"/.well-known/est/{_LABEL}/csrattrs")
@audited("csrattrs")
async def csrattrs(request: web.Request) -> web.Response:
    """RFC 7030 §4.5: the key types and attributes the profile accepts (RFC 8295 §E style)."""
    _tls(request)
    profile = profile_named(request.match_info.get("label", PERSONAL_PROFILES[0]))
    curves = [k.curve.name for k in profile.key_types if not k.is_rsa]
    curve_oids = {"secp256r1": "1.2.840.10045.3.1.7", "secp384r1": "1.3.132.0.34"}
    rsa_sizes = [core.Integer(k.rsa_bits) for k in profile.key_types if k.is_rsa]
    body = est.csr_attributes(
        oids=[
            "1.2.840.10045.4.3.2",  # ecdsa-with-SHA256
            "1.2.840.113549.1.1.11",  # sha256WithRSAEncryption
            NameOID.EMAIL_ADDRESS.dotted_string,  # filled from the vetted record if left out
        ],
        attributes=[
            ("1.2.840.10045.2.1", [core.ObjectIdentifier(curve_oids[c]) for c in curves]),
            ("1.2.840.113549.1.1.1", rsa_sizes),
        ],
    )
    return web.Response(
        body=body, headers={"Content-Type": est.CSRATTRS, "Content-Transfer-Encoding": "base64"}
    )


@routes.post("/.well-known/est/serverkeygen")
@routes.post(f"/.well-known/est/{_LABEL}/serverkeygen")
@audited("serverkeygen")
async def serverkeygen(request: web.Request) -> web.Response:
    """Not offered by design: the subscriber's private key never exists outside the subscriber's
    device (docs/divergences.md). 404, not 501: RFC 9110 §15.6.2 keeps 501 for a method the
    server does not know, and a client asking for an operation this server lacks is not a
    server fault (nothing to page an operator for)."""
    raise ESTFailure(404, "serverkeygen is not offered: the private key is made by the "
                     "subscriber and never leaves the subscriber's device")  # fmt: skip


@routes.post("/.well-known/est/fullcmc")
@routes.post(f"/.well-known/est/{_LABEL}/fullcmc")
@audited("fullcmc")
async def fullcmc(request: web.Request) -> web.Response:
    raise ESTFailure(404, "fullcmc is not offered (RFC 7030 §4.3 is optional)")

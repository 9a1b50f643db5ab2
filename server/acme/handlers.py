"""ACME over HTTPS at /acme/ (RFC 8555): thin aiohttp handlers over ``AcmeService``.

The edge does what §6 asks of every request and response: POST with application/jose+json only
(415 otherwise), GET only for the directory, newNonce and renewalInfo (405 otherwise), the JWS
checked against the configured external URL, a fresh Replay-Nonce on every POST response and
every error (§6.5), Link rel="index" on every response but the directory's (§7.1), and every
refusal as an RFC 9457 problem document with an ACME error type (§6.7).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from jitsuin.ca.errors import CAError
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from jitsuin.server.acme.common import Reply, Verified
from jitsuin.server.acme.errors import from_ca, from_ra
from jitsuin.server.acme.paths import Path
from jitsuin.server.acme.requests import JwkMode
from jitsuin.server.acme.service import AcmeService
from jitsuin.server.keys import ACME
from jitsuin.server.operator_auth import source_of
from jitsuin.server.ra.errors import RAError

routes = web.RouteTableDef()
JOSE_JSON = "application/jose+json"

Handler = Callable[[web.Request, AcmeService, Verified | None], Awaitable[Reply]]


def _reply(reply: Reply) -> web.StreamResponse:
    if isinstance(reply.body, bytes):
        response = web.Response(body=reply.body, status=reply.status)
        response.content_type = reply.content_type
    else:
        response = web.Response(
            body=json.dumps(reply.body, ensure_ascii=False).encode(),
            status=reply.status,
            content_type=reply.content_type,
        )
    if reply.location:
        response.headers["Location"] = reply.location
    for url, rel in reply.links:
        response.headers.add("Link", f'<{url}>;rel="{rel}"')
    if reply.retry_after is not None:
        response.headers["Retry-After"] = str(reply.retry_after)
    return response


def _problem(exc: AcmeError) -> web.StreamResponse:
    response = web.Response(
        status=exc.status, body=exc.problem().encode(), content_type=PROBLEM_MEDIA_TYPE
    )
    for name, value in exc.headers:
        response.headers.add(name, value)
    return response


def endpoint(  # type: ignore[no-untyped-def]
    methods: tuple[str, ...],
    *,
    jwk: JwkMode = JwkMode.NEVER,
    index: bool = True,
    nonce: bool = False,
):
    """The §6 edge around a handler; ``jwk``: the key the JWS may be signed with; ``nonce``: every
    response carries a fresh Replay-Nonce (newNonce), not only POSTs and errors."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            service = request.app[ACME]
            try:
                if request.method not in methods:
                    # §6.3: GET only for the directory and newNonce; the rest is POST.
                    raise AcmeError(
                        ErrorType.MALFORMED,
                        f"{request.method} is not allowed here; use {' or '.join(methods)}",
                        status=405,
                        headers=[("Allow", ", ".join(methods))],
                    )
                verified = None
                if request.method == "POST":
                    if "Replay-Nonce" in request.headers:
                        raise AcmeError(
                            ErrorType.MALFORMED,
                            "Replay-Nonce is a response header; send the nonce in the JWS",
                        )
                    if request.content_type != JOSE_JSON:
                        # §6.2: application/jose+json only.
                        raise AcmeError(
                            ErrorType.MALFORMED,
                            f"send the JWS as {JOSE_JSON}, not {request.content_type!r}",
                            status=415,
                        )
                    try:
                        body = await request.read()
                    except web.HTTPRequestEntityTooLarge:
                        # §6.7: every error is an ACME problem, a body too large included.
                        raise AcmeError(
                            ErrorType.MALFORMED,
                            f"the request body is larger than {request.client_max_size} bytes",
                            status=413,
                        ) from None
                    url = service.urls.external(request.raw_path)
                    verified = await service.requests.verify(body, url, jwk=jwk)
                response = _reply(await handler(request, service, verified))
            except AcmeError as exc:
                response = _problem(exc)
            except CAError as exc:
                response = _problem(from_ca(exc))
            except RAError as exc:
                response = _problem(from_ra(exc))
            if nonce or request.method == "POST" or response.status >= 400:
                response.headers["Replay-Nonce"] = await service.nonces.new()
            if index:
                response.headers.add("Link", f'<{service.urls.of(Path.DIRECTORY)}>;rel="index"')
            response.headers["Cache-Control"] = "no-store"
            if request.method == "HEAD" and not response.body:
                # RFC 9110 §9.3.2: the header fields a GET would get, Content-Length included.
                # aiohttp leaves it out of an empty HEAD answer, and a client that cannot tell
                # where the answer ends (aiohttp's) closes the connection after each newNonce.
                response.headers["Content-Length"] = "0"
            return response

        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    return wrap


_GET = ("GET", "HEAD", "POST")


@routes.route("*", Path.DIRECTORY.route)
@endpoint(_GET, index=False)
async def directory(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    """§7.1.1; a POST-as-GET is answered too (§6.3)."""
    if verified is not None and not verified.post_as_get:
        raise AcmeError(ErrorType.MALFORMED, "the directory takes POST-as-GET (empty payload)")
    return Reply(service.directory())


@routes.route("*", Path.NEW_NONCE.route)
@endpoint(_GET, nonce=True)
async def new_nonce(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    """§7.2: HEAD -> 200, GET -> 204, both with Replay-Nonce and Cache-Control: no-store."""
    if verified is not None and not verified.post_as_get:
        raise AcmeError(ErrorType.MALFORMED, "newNonce takes POST-as-GET (empty payload)")
    return Reply(b"", status=204 if request.method == "GET" else 200)


@routes.route("*", Path.NEW_ACCOUNT.route)
@endpoint(("POST",), jwk=JwkMode.REQUIRED)
async def new_account(
    request: web.Request, service: AcmeService, verified: Verified | None
) -> Reply:
    assert verified is not None
    return await service.accounts.new_account(verified, source_of(request))


@routes.route("*", Path.ACCOUNT.route)
@endpoint(("POST",))
async def account(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    assert verified is not None
    return await service.accounts.account(verified, request.match_info["id"])


@routes.route("*", Path.ACCOUNT_ORDERS.route)
@endpoint(("POST",))
async def orders(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    assert verified is not None
    return await service.orders.orders(
        verified, request.match_info["id"], request.query.get("cursor")
    )


@routes.route("*", Path.KEY_CHANGE.route)
@endpoint(("POST",))
async def key_change(
    request: web.Request, service: AcmeService, verified: Verified | None
) -> Reply:
    assert verified is not None
    return await service.accounts.key_change(verified)


@routes.route("*", Path.NEW_ORDER.route)
@endpoint(("POST",))
async def new_order(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    assert verified is not None
    return await service.orders.new_order(verified)


@routes.route("*", Path.NEW_AUTHZ.route)
@endpoint(("POST",))
async def new_authz(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    assert verified is not None
    return await service.authorizations.new_authz(verified)


@routes.route("*", Path.ORDER.route)
@endpoint(("POST",))
async def order(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    assert verified is not None
    return await service.orders.order(verified, request.match_info["id"])


@routes.route("*", Path.FINALIZE.route)
@endpoint(("POST",))
async def finalize(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    assert verified is not None
    return await service.issuance.finalize(verified, request.match_info["id"])


@routes.route("*", Path.AUTHZ.route)
@endpoint(("POST",))
async def authorization(
    request: web.Request, service: AcmeService, verified: Verified | None
) -> Reply:
    assert verified is not None
    return await service.authorizations.authorization(verified, request.match_info["id"])


@routes.route("*", Path.CHALLENGE.route)
@endpoint(("POST",))
async def challenge(request: web.Request, service: AcmeService, verified: Verified | None) -> Reply:
    assert verified is not None
    return await service.authorizations.challenge(verified, request.match_info["id"])


@routes.route("*", Path.CERTIFICATE.route)
@routes.route("*", Path.CERTIFICATE_ALTERNATE.route)
@endpoint(("POST",))
async def certificate(
    request: web.Request, service: AcmeService, verified: Verified | None
) -> Reply:
    assert verified is not None
    alternate = int(request.match_info.get("alternate", "0"))
    accept = request.headers.get("Accept", "")
    return await service.issuance.certificate(verified, request.match_info["id"], alternate, accept)


@routes.route("*", Path.REVOKE_CERT.route)
@endpoint(("POST",), jwk=JwkMode.ALLOWED)
async def revoke_cert(
    request: web.Request, service: AcmeService, verified: Verified | None
) -> Reply:
    assert verified is not None
    return await service.revocation.revoke(verified)


@routes.route("*", Path.RENEWAL_INFO_CERT.route)
@endpoint(("GET", "HEAD"))
async def renewal_info(
    request: web.Request, service: AcmeService, verified: Verified | None
) -> Reply:
    """RFC 9773 §4.1: an unauthenticated GET."""
    return await service.revocation.renewal_info(request.match_info["cert_id"])


async def close(app: web.Application) -> None:
    await app[ACME].close()

"""RFC 9457 problem documents for the server's JSON APIs (the RA's operator API, the
applicant's online input, ACME's operator endpoints): the RA's and the CA's refusals through one
mapping table, and the decorator that turns them into problems at the edge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from jitsuin.ca.errors import CAError
from jitsuin.protocol.problems import JITSUIN_TYPE_BASE, Problem
from jitsuin.server.error_map import refusal
from jitsuin.server.middlewares import problem_response
from jitsuin.server.ra.errors import RAError, RAKind

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

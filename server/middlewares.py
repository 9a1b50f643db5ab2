"""Middlewares: every error leaves as an RFC 9457 problem document; internal detail never does."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from jitsuin.protocol.problems import MEDIA_TYPE, Problem

log = logging.getLogger("jitsuin.server")

# Request ids: a per-process prefix and a counter (cheap; unique across processes and restarts).
_PREFIX = f"{os.getpid():x}{os.urandom(3).hex()}-"
_COUNTER = itertools.count(1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=problem.status,
        body=problem.encode(),
        content_type=MEDIA_TYPE,
        headers=headers,
    )


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = f"{_PREFIX}{next(_COUNTER):x}"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.content_type == MEDIA_TYPE:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        response = problem_response(
            Problem(status=exc.status, title=exc.reason, detail=exc.text or None),
            headers,
        )
    except Exception:
        log.exception(
            "unhandled error in %s %s (request %s)", request.method, request.path, request_id
        )
        response = problem_response(
            Problem(
                status=500,
                title="Internal Server Error",
                detail=f"the server could not complete the request (request id {request_id})",
            )
        )
    response.headers.setdefault("X-Request-Id", request_id)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response

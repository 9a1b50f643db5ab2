"""Middlewares: every error leaves as an RFC 9457 problem document; internal detail never does."""

from __future__ import annotations

import asyncio
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


def request_body_deadline(
    seconds: float,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A middleware that lets a handler run only once the whole request body has arrived, within
    ``seconds`` of the request head; it is left unread for the handler, as it came. A client that
    sends its body slower is answered 408 (RFC 9110 §15.5.9) and its connection closed, so that
    a trickled body cannot hold a connection, and a place under the listener's limits, for ever
    (the head has its own deadline, server/connections.py). A body announced longer than the
    application takes goes to the handler at once, whose read refuses it (413); a chunked body
    of more than aiohttp's read buffer (128 KiB) is not taken in whole and gets the 408."""

    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists and (request.content_length or 0) <= request.client_max_size:
            try:
                async with asyncio.timeout(seconds):
                    await request.content.wait_eof()
            except TimeoutError:
                problem = Problem(
                    status=408,
                    title="Request Timeout",
                    detail=f"the request body did not arrive within {seconds:g} s",
                )
            except ConnectionError:  # the client left mid-body: nobody reads the answer
                problem = Problem(status=400, title="Bad Request", detail="incomplete body")
            else:
                return await handler(request)
            response = problem_response(problem)
            response.force_close()
            return response
        return await handler(request)

    return deadline

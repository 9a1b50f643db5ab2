"""Middlewares: every error leaves as an RFC 9457 problem document; internal detail never does."""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from jitsuin.protocol.problems import MEDIA_TYPE, Problem

log = logging.getLogger("jitsuin.server")

# Request ids: a per-process prefix and a counter (cheap; unique across processes and restarts).
_PREFIX = f"{os.getpid():x}{os.urandom(3).hex()}-"
_COUNTER = itertools.count(1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def _one_line(exc: HttpProcessingError, limit: int = 200) -> str:
    """aiohttp's parser error as one printable line: its messages span lines (the offending
    bytes and a caret under them) and quote what the client sent."""
    text = " ".join(str(exc.message or type(exc).__name__).split())
    return _UNPRINTABLE.sub("?", text)[:limit]


class _MalformedHTTP(logging.Filter):
    """aiohttp logs a request its own parser refused (bad request line, header, chunking:
    "Error handling request from <peer>") at ERROR with the parser's traceback, before any
    handler or middleware runs. Such a request never reached jitsuin and is the client's fault:
    one WARNING line with the peer and the reason, so that a scanner's garbage cannot fill the
    log with tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "malformed HTTP request from %s: %s"
            record.args = (peer, _one_line(exc))
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_MALFORMED_HTTP = _MalformedHTTP()


def quiet_malformed_http() -> None:
    """Install the one-line logging of malformed HTTP on aiohttp's server logger (idempotent:
    the same filter object is added once)."""
    logging.getLogger("aiohttp.server").addFilter(_MALFORMED_HTTP)


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
    except HttpProcessingError as exc:
        # The body broke off or was badly framed (chunking, length, encoding) while a handler
        # read it: the client's fault, one line, never a 500.
        log.warning(
            "malformed HTTP body in %s %s (request %s): %s",
            request.method, request.path, request_id, _one_line(exc),
        )  # fmt: skip
        response = problem_response(
            Problem(status=400, title="Bad Request", detail=f"malformed HTTP: {_one_line(exc)}")
        )
    except Exception:
        # The safety net: one log entry with the request id and the traceback; the client gets
        # the request id to quote, never the traceback.
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

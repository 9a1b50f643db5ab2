"""Middlewares: every error leaves as an RFC 9457 problem document; internal detail never does."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
import weakref
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

from jitsuin.protocol.problems import MEDIA_TYPE, Problem
from jitsuin.server import logging_json, metrics

log = logging.getLogger("jitsuin.server")

# Request ids: a per-process prefix and a counter (cheap; unique across processes and restarts).
_PREFIX = f"{os.getpid():x}{os.urandom(3).hex()}-"
_COUNTER = itertools.count(1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """aiohttp's parser error as one printable line: its messages span lines (the offending
    bytes and a caret under them) and quote what the client sent. A body error
    (RequestPayloadError) names the parser's error as its cause."""
    cause = exc.__cause__ if isinstance(exc, web.RequestPayloadError) else None
    found = cause if isinstance(cause, HttpProcessingError) else exc
    message = found.message if isinstance(found, HttpProcessingError) else str(found)
    text = " ".join(str(message or type(found).__name__).split())
    return _UNPRINTABLE.sub("?", text)[:limit]


# Body errors the middleware has logged: aiohttp meets the same exception again when it reads
# the rest of the body after the response (its "lingering close") and would log it a second time.
_LOGGED: weakref.WeakSet[BaseException] = weakref.WeakSet()


class _MalformedHTTP(logging.Filter):
    """aiohttp logs a request its own parser refused (bad request line, header, chunking:
    "Error handling request from <peer>") at ERROR with the parser's traceback, before any
    handler or middleware runs, and a body that fails to decode once more after the response;
    it also logs a traceback when a client leaves before aiohttp's own "100 Continue" is
    written. All are the client's doing: one line each (WARNING for malformed HTTP, INFO for a
    client that left), so that a scanner cannot fill the log with tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        if exc in _LOGGED:  # the middleware has logged this body error already
            return False
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        if isinstance(exc, (HttpProcessingError, web.RequestPayloadError)):
            record.msg = "malformed HTTP request from %s: %s"
            record.args = (peer, _one_line(exc))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        elif isinstance(exc, ConnectionResetError):
            record.msg = "client %s closed the connection before the answer"
            record.args = (peer,)
            record.levelno, record.levelname = logging.INFO, "INFO"
        else:
            return True
        record.exc_info = record.exc_text = None
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


def observe(*, log_access: bool) -> Middleware:
    """The outermost middleware: each request timed once, for its metrics
    (``metrics.request_answered``) and, where ``log_access``, its access log line
    (``logging_json.log_access``)."""

    @web.middleware
    async def observed(request: web.Request, handler: Handler) -> web.StreamResponse:
        logging_json.ACTOR.set(None)
        metrics.request_started(request)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            seconds = time.perf_counter() - started
            metrics.request_answered(request, status, seconds)
            if log_access:
                logging_json.log_access(request, status, seconds)

    return observed


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = f"{_PREFIX}{next(_COUNTER):x}"
    logging_json.REQUEST_ID.set(request_id)
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
    except (HttpProcessingError, web.RequestPayloadError) as exc:
        # The body could not be read as sent (framing, Content-Encoding) while a handler read
        # it: the client's fault, one line, never a 500.
        _LOGGED.add(exc)
        log.warning(
            "malformed HTTP body in %s %s (request %s): %s",
            request.method, request.path, request_id, _one_line(exc),
        )  # fmt: skip
        response = problem_response(
            Problem(status=400, title="Bad Request", detail=f"malformed HTTP: {_one_line(exc)}")
        )
    except Exception as exc:
        if isinstance(exc, ConnectionResetError) and request.transport is None:
            # The client closed the connection while its body was read: nobody is left to
            # answer and nothing failed here, so one line, not a traceback.
            log.info(
                "client closed the connection during %s %s (request %s)",
                request.method, request.path, request_id,
            )  # fmt: skip
            response = problem_response(Problem(status=400, title="Bad Request"))
        else:
            # The safety net: one log entry with the request id and the traceback; the client
            # gets the request id to quote, never the traceback.
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

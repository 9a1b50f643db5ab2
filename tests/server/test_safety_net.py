"""The catch-all (server/middlewares.py) as a safety net over a real aiohttp server on loopback:
a fault that escapes a handler is logged once, with the request id and the traceback, and the
client gets an RFC 9457 problem with the request id and no traceback; a body that breaks off
mid-chunk is the client's fault (400, one line)."""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
from aiohttp import web

from jitsuin.server.middlewares import problems, quiet_malformed_http


async def _broken(request: web.Request) -> web.Response:
    raise KeyError("internal detail the client must not see")


READING = web.AppKey("reading", asyncio.Event)


HANDLED = web.AppKey("handled", asyncio.Event)


async def _reads_body(request: web.Request) -> web.Response:
    request.app[READING].set()
    try:
        return web.Response(body=await request.read())
    finally:
        # The middleware's except clause runs right after this, before the loop switches.
        request.app[HANDLED].set()


async def _serve(free_port) -> tuple[web.AppRunner, int]:
    quiet_malformed_http()
    app = web.Application(middlewares=[problems])
    app[READING] = asyncio.Event()
    app[HANDLED] = asyncio.Event()
    app.router.add_get("/broken", _broken)
    app.router.add_post("/echo", _reads_body)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port, app


async def test_an_unhandled_fault_is_logged_once_and_answered_without_traceback(free_port, caplog):
    runner, port, _ = await _serve(free_port)
    try:
        with caplog.at_level(logging.INFO):
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/broken") as reply,
            ):
                status, media, body = reply.status, reply.content_type, await reply.json()
                request_id = reply.headers["X-Request-Id"]
    finally:
        await runner.cleanup()
    assert (status, media) == (500, "application/problem+json")
    assert request_id in body["detail"]
    assert "internal detail" not in str(body) and "Traceback" not in str(body)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in caplog.records]
    assert request_id in errors[0].getMessage() and "/broken" in errors[0].getMessage()
    assert errors[0].exc_info and isinstance(errors[0].exc_info[1], KeyError)


async def test_a_body_that_does_not_decode_is_a_400_in_one_line(free_port, caplog):
    """The body arrives while the handler reads it (after the handler started), so aiohttp's
    decoding error reaches the middleware through the body stream."""
    runner, port, app = await _serve(free_port)
    loop = asyncio.get_running_loop()
    try:
        with (
            caplog.at_level(logging.INFO),
            socket.create_connection(("127.0.0.1", port), timeout=30) as sock,
        ):
            sock.sendall(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                b"Content-Length: 16\r\n\r\n"
            )
            await app[READING].wait()
            sock.sendall(b"this is not gzip")
            answer = b""
            while chunk := await loop.run_in_executor(None, sock.recv, 65536):
                answer += chunk
    finally:
        await runner.cleanup()
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer
    assert b"Traceback" not in answer
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name != "aiohttp.access"]
    assert all(r.exc_info is None for r in caplog.records), records
    assert len(records) == 1 and records[0][0] == "WARNING", records
    assert "malformed HTTP" in records[0][1], records


async def test_a_client_that_leaves_mid_body_is_one_line(free_port, caplog):
    runner, port, app = await _serve(free_port)
    try:
        with caplog.at_level(logging.INFO):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
                await app[READING].wait()
            await app[HANDLED].wait()
    finally:
        await runner.cleanup()
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name != "aiohttp.access"]
    assert all(r.exc_info is None for r in caplog.records), records
    assert len(records) == 1 and records[0][0] == "INFO", records
    assert "client closed the connection during POST /echo" in records[0][1]


async def test_a_client_that_leaves_before_100_continue_is_one_line(free_port, caplog):
    """aiohttp writes "100 Continue" itself, before any middleware, and meets a closed
    connection; its log record is waited for (it comes once the server has seen the EOF)."""
    runner, port, _ = await _serve(free_port)
    try:
        with caplog.at_level(logging.INFO):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 10\r\n\r\n"
                )
                sock.shutdown(socket.SHUT_WR)
            for _ in range(1000):
                if any(r.name == "aiohttp.server" for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
    finally:
        await runner.cleanup()
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name != "aiohttp.access"]
    assert all(r.exc_info is None for r in caplog.records), records
    assert records == [("INFO", "client 127.0.0.1 closed the connection before the answer")]

"""Connection limits and deadlines in front of aiohttp's HTTP server, for every listener.

aiohttp bounds what one request may hold (``client_max_size``, header sizes) but not how many
connections a client may open nor how long it may take to start a request: its keep-alive timer
defaults to an hour. A client that opens connections and trickles a request head through them
held each one, and its buffers, for as long as it liked. Here:

- ``Listener`` is the aiohttp site of one listener. It accepts through ``Gate``, which counts
  the open connections of the listener, in all and per source address (an IPv4 address, or an
  IPv6 /64: one host usually holds a whole /64), and closes a connection that would go beyond
  ``[http] max_connections`` or ``max_connections_per_address`` as soon as it is accepted,
  before any TLS or HTTP work is spent on it.
- On the HTTPS listener the TLS handshake runs here (``loop.start_tls``), after that check, and
  must finish within ``tls_handshake_timeout``; so must the close_notify exchange at the end.
- aiohttp's keep-alive timer, set to ``request_head_timeout``, closes a connection whose handler
  is waiting for a request head that has not fully arrived: from the start of the connection
  and again from each response. That is the deadline for the first request head, for each later
  one and for an idle kept-alive connection alike (tests/server/test_connections.py holds
  aiohttp to it). The body has its own deadline (middlewares.request_body_deadline).

The counts are per process: with ``serve --workers N`` each worker holds its own, and the kernel
spreads one address's connections over the workers. An open TLS connection costs about 0.3 MB
(asyncio gives each a 256 KiB read buffer), a plain one a few KB: ``max_connections`` bounds
what one listener's clients can take, and after a burst the freed memory is given back.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import logging
import resource
import socket
import ssl
import time
from collections import Counter
from typing import Any

from aiohttp import web

from jitsuin.server.config import HTTPConfig, Listen

log = logging.getLogger("jitsuin.connections")

REFUSAL_LOG_SECONDS = 60.0  # at most one log line per listener this often about refusals
# A burst: this many connections open at once on a listener. When fewer than a quarter of its
# peak remain open, the C heap's free pages go back to the system (bench/run.py slow measures it).
BURST = 64

try:  # glibc; elsewhere the heap keeps what it has
    _malloc_trim = ctypes.CDLL(None).malloc_trim
except AttributeError:
    _malloc_trim = None


def give_back_memory() -> None:
    """Return the C heap's free pages to the system (glibc ``malloc_trim``). What the TLS and
    parser buffers of thousands of connections took stays with glibc after they closed, spread
    among chunks still in use, and glibc trims only the top of its heap by itself."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def address_key(host: str) -> str:
    """What the per-address limit counts by: the IPv4 address (also when it arrives mapped into
    IPv6), or the /64 of an IPv6 address."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def allow_file_descriptors(limits: HTTPConfig, listeners: int) -> None:
    """Raise this process's open-file limit (up to the hard limit) so that ``listeners`` full
    listeners fit beside the store, logs and TLS files: with the usual soft limit of 1024,
    accept() would fail (EMFILE, and asyncio stops accepting for a second) before
    max_connections is reached."""
    needed = listeners * limits.max_connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < needed:
        log.warning(
            "open files are limited to %d (ulimit -Hn): fewer than %d connections per listener "
            "can be open; lower [http] max_connections or raise the limit",
            wanted,
            limits.max_connections,
        )


class Gate:
    """The protocol factory of one listener: counts its connections and admits or closes each."""

    def __init__(
        self, server: web.Server, limits: HTTPConfig, name: str, tls: ssl.SSLContext | None
    ) -> None:
        self.server = server
        self.limits = limits
        self.name = name
        self.tls = tls
        self.open: Counter[str] = Counter()
        self.total = 0
        self.connections: set[GuardedConnection] = set()
        self.refused = 0
        self._logged = 0.0
        self.peak = 0  # the most connections open at once since the last trim

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self)

    def admit(self, key: str) -> bool:
        if (
            self.total >= self.limits.max_connections
            or self.open[key] >= self.limits.max_connections_per_address
        ):
            self._refusal(key)
            return False
        self.total += 1
        self.open[key] += 1
        self.peak = max(self.peak, self.total)
        return True

    def release(self, key: str) -> None:
        self.total -= 1
        self.open[key] -= 1
        if not self.open[key]:
            del self.open[key]
        if self.peak >= BURST and self.total < self.peak // 4:
            self.peak = self.total
            # In a thread: trimming a heap of hundreds of MB takes a while, and glibc locks
            # each arena only while it trims that one.
            asyncio.get_running_loop().run_in_executor(None, give_back_memory)

    def _refusal(self, key: str) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._logged >= REFUSAL_LOG_SECONDS:
            self._logged = now
            log.warning(
                "%s: refused %d connection(s) over the limits since the last report (%d open, "
                "%d from %s; [http] max_connections %d, max_connections_per_address %d)",
                self.name,
                self.refused,
                self.total,
                self.open[key],
                key,
                self.limits.max_connections,
                self.limits.max_connections_per_address,
            )
            self.refused = 0


class GuardedConnection(asyncio.Protocol):
    """One accepted connection: counted by its gate while it is open, then handed to aiohttp's
    request handler (after the TLS handshake on HTTPS), which it forwards everything to."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.key: str | None = None  # set while the connection counts against the limits
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.BaseTransport | None = None
        # What the TLS layer delivers between the end of the handshake and the hand-over.
        self._early: list[bytes] = []
        self._early_eof = False
        self._handshaking: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        key = address_key(str(peer[0])) if isinstance(peer, tuple) else ""
        if not self.gate.admit(key):
            transport.abort()
            return
        self.key = key
        self.transport = transport
        self.gate.connections.add(self)
        if self.gate.tls is None:
            self._hand_over(transport)
        else:
            transport.pause_reading()  # type: ignore[attr-defined]  # the ClientHello waits for TLS
            self._handshaking = asyncio.get_running_loop().create_task(self._handshake(transport))

    async def _handshake(self, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        assert self.gate.tls is not None
        try:
            secured = await loop.start_tls(
                transport,  # type: ignore[arg-type]
                self,
                self.gate.tls,
                server_side=True,
                ssl_handshake_timeout=self.gate.limits.tls_handshake_timeout,
                # and the closing exchange: a client that never answers the server's
                # close_notify would hold its place for asyncio's default 30 s more.
                ssl_shutdown_timeout=self.gate.limits.tls_handshake_timeout,
            )
        except OSError:  # a TLS alert, a reset, or too slow: start_tls has closed it
            self._release()
            return
        if secured is None:  # closed while the handshake was finishing
            self._release()
            return
        self.transport = secured
        self._hand_over(secured)
        for data in self._early:
            self.inner.data_received(data)  # type: ignore[union-attr]
        self._early.clear()
        if self._early_eof:
            self.inner.eof_received()  # type: ignore[union-attr]

    def _hand_over(self, transport: asyncio.BaseTransport) -> None:
        self.inner = self.gate.server()
        self.inner.connection_made(transport)

    def _release(self) -> None:
        if self.key is not None:
            self.gate.release(self.key)
            self.gate.connections.discard(self)
            self.key = None

    # -- forwarded to aiohttp ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            self._early.append(data)
        else:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.inner is None:
            self._early_eof = True
            return None
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]


class Listener(web.BaseSite):
    """The aiohttp site of one listener: binds ``listen`` (or listens on the socket a worker of
    ``serve --workers N`` inherited) and accepts through a ``Gate``."""

    def __init__(
        self,
        runner: web.BaseRunner,
        listen: Listen,
        sock: socket.socket | None,
        limits: HTTPConfig,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._listen = listen
        self._sock = sock
        self._limits = limits
        self.gate: Gate | None = None

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._listen}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self.gate = Gate(server, self._limits, self.name, self._ssl_context)
        where: dict[str, Any] = (
            {"sock": self._sock}
            if self._sock is not None
            else {"host": self._listen.host, "port": self._listen.port}
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.gate, backlog=self._backlog, **where)

    async def stop(self) -> None:
        await super().stop()
        if self.gate is not None:  # connections still in their TLS handshake (aiohttp's own
            for connection in list(self.gate.connections):  # are closed by the runner)
                if connection.inner is None:
                    connection.abort()

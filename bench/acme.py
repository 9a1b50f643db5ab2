"""An asyncio ACME load client (RFC 8555) for bench/run.py: N full orders at concurrency C against
any directory URL, with figures (orders/s, latency percentiles, server CPU per order).

Each order is the whole flow a client goes through: newOrder -> POST-as-GET the authorization ->
answer its http-01 challenge -> poll the authorization until valid -> finalize -> poll the order
until valid -> download the certificate. The server must accept every challenge without looking
(jitsuin: ``[acme.test] validation_always_succeeds``; Pebble: ``PEBBLE_VA_ALWAYS_VALID=1``).
Every order names a fresh DNS name, so no authorization is reused. Polls come every
``poll_interval`` seconds whatever Retry-After says, so that the figures measure the server and
not its advice. Accounts (one per concurrent worker; with EAB when keys are given) are made
before the clock starts; the load is bounded by the order count and a time limit.

Written against aiohttp, josepy (JWK, thumbprints, JWA signatures) and cryptography only; it
shares no code with the server it measures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import josepy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_TICK = os.sysconf("SC_CLK_TCK")


class AcmeFailure(Exception):
    pass


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``serve --workers N``'s worker processes, the lint
    processes of ``[ca] lint_processes``)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat(int(entry.name))[1])  # field 4 of proc(5): the parent
            except (OSError, IndexError):  # gone meanwhile
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        one = todo.pop()
        tree.append(one)
        todo += parents.get(one, [])
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and of its live descendants (``process_tree``); reaped
    children (cutime/cstime) are not counted."""
    pids = process_tree(pid)
    total = 0
    for one in pids:
        try:
            fields = _stat(one)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / _TICK


@dataclass
class Account:
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    kid: str | None = None

    def __post_init__(self) -> None:
        self.jwk = josepy.JWKEC(key=self.key.public_key())
        self.jwk_json = self.jwk.to_json()
        self.thumbprint = b64u(self.jwk.thumbprint())


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One directory; a pool of the Replay-Nonces the server handed out (RFC 8555 §6.5)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        directory_url: str,
        context: ssl.SSLContext | bool,
        poll_interval: float,
    ) -> None:
        self.session = session
        self.directory_url = directory_url
        self.ssl = context
        self.poll_interval = poll_interval
        self.directory: dict[str, Any] = {}
        self.nonces: list[str] = []
        self.requests = 0

    async def start(self) -> None:
        async with self.session.get(self.directory_url, ssl=self.ssl) as reply:
            if reply.status != 200:
                raise AcmeFailure(f"directory: HTTP {reply.status}")
            self.directory = await reply.json(content_type=None)

    async def nonce(self) -> str:
        if self.nonces:
            return self.nonces.pop()
        async with self.session.head(self.directory["newNonce"], ssl=self.ssl) as reply:
            self.requests += 1
            return reply.headers["Replay-Nonce"]

    def _jws(self, account: Account, url: str, payload: Any, nonce: str, use_jwk: bool) -> bytes:
        protected: dict[str, Any] = {"alg": "ES256", "nonce": nonce, "url": url}
        if use_jwk:
            protected["jwk"] = account.jwk_json
        else:
            protected["kid"] = account.kid
        header = b64u(json.dumps(protected).encode())
        body = "" if payload is None else b64u(json.dumps(payload).encode())
        signature = josepy.ES256.sign(account.key, f"{header}.{body}".encode())
        return json.dumps(
            {"protected": header, "payload": body, "signature": b64u(signature)}
        ).encode()

    async def post(
        self, account: Account, url: str, payload: Any = None, *, use_jwk: bool = False
    ) -> Reply:
        """POST a JWS (``payload`` None: POST-as-GET); a badNonce is retried with the fresh nonce
        that came with it (§6.5), at most 5 times."""
        for _ in range(6):
            data = self._jws(account, url, payload, await self.nonce(), use_jwk)
            async with self.session.post(
                url, data=data, headers={"Content-Type": "application/jose+json"}, ssl=self.ssl
            ) as reply:
                body = await reply.read()
                self.requests += 1
                if "Replay-Nonce" in reply.headers:
                    self.nonces.append(reply.headers["Replay-Nonce"])
                result = Reply(reply.status, reply.headers, body)
            if result.status == 400 and b"badNonce" in body:
                continue
            if result.status >= 400:
                raise AcmeFailure(f"POST {url}: HTTP {result.status} {body[:300]!r}")
            return result
        raise AcmeFailure(f"POST {url}: badNonce six times")

    async def register(self, account: Account, eab: tuple[str, str] | None) -> None:
        url = self.directory["newAccount"]
        payload: dict[str, Any] = {"termsOfServiceAgreed": True}
        if eab is not None:
            kid, mac = eab
            protected = b64u(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
            inner = b64u(json.dumps(account.jwk_json).encode())
            key = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
            signature = josepy.HS256.sign(key, f"{protected}.{inner}".encode())
            payload["externalAccountBinding"] = {
                "protected": protected,
                "payload": inner,
                "signature": b64u(signature),
            }
        reply = await self.post(account, url, payload, use_jwk=True)
        account.kid = reply.headers["Location"]

    async def poll(self, account: Account, url: str, done: str, deadline: float) -> Any:
        while True:
            body = (await self.post(account, url)).json()
            status = body.get("status")
            if status == done:
                return body
            if status == "invalid":
                raise AcmeFailure(f"{url} became invalid: {body.get('error')}")
            if time.monotonic() > deadline:
                raise AcmeFailure(f"{url} still {status} at the time limit")
            await asyncio.sleep(self.poll_interval)

    async def order(self, account: Account, name: str, csr_der: bytes, deadline: float) -> None:
        """One full order; raises AcmeFailure when a step fails."""
        identifiers = [{"type": "dns", "value": name}]
        reply = await self.post(account, self.directory["newOrder"], {"identifiers": identifiers})
        order_url = reply.headers["Location"]
        order = reply.json()
        for authz_url in order["authorizations"]:
            authz = (await self.post(account, authz_url)).json()
            if authz["status"] == "valid":
                continue
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            await self.post(account, challenge["url"], {})
            await self.poll(account, authz_url, "valid", deadline)
        finalized = (await self.post(account, order["finalize"], {"csr": b64u(csr_der)})).json()
        if finalized.get("status") != "valid":
            finalized = await self.poll(account, order_url, "valid", deadline)
        reply = await self.post(account, finalized["certificate"])
        if b"-----BEGIN CERTIFICATE-----" not in reply.body:
            raise AcmeFailure("the certificate download is not a PEM chain")


def csr_for(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


@dataclass
class Result:
    label: str
    concurrency: int
    done: int = 0
    failed: int = 0
    elapsed: float = 0.0  # until the last order completed
    latencies: list[float] = field(default_factory=list)
    server_cpu: float | None = None  # seconds of server CPU during the orders
    client_cpu: float = 0.0  # seconds of this process's CPU during the orders
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    stalls: int = 0  # runs stopped because no order completed for stall_seconds

    def add(self, other: Result) -> None:
        """Another segment of the same load (after a restart of a stalled server)."""
        self.done += other.done
        self.failed += other.failed
        self.elapsed += other.elapsed
        self.latencies += other.latencies
        if other.server_cpu is not None:
            self.server_cpu = (self.server_cpu or 0.0) + other.server_cpu
        self.client_cpu += other.client_cpu
        self.requests += other.requests
        self.errors += other.errors
        self.stalls += other.stalls

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    def quantile(self, q: int) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    @property
    def cpu_ms_per_order(self) -> float | None:
        if self.server_cpu is None or not self.done:
            return None
        return self.server_cpu * 1000 / self.done

    def line(self) -> str:
        cpu = self.cpu_ms_per_order
        text = (
            f"ACME {self.label}, concurrency {self.concurrency}: {self.done} orders in "
            f"{self.elapsed:.1f} s = {self.rate:,.1f} orders/s; latency p50 "
            f"{self.quantile(50) * 1000:.0f} ms, p95 {self.quantile(95) * 1000:.0f} ms, p99 "
            f"{self.quantile(99) * 1000:.0f} ms; server CPU "
            + (f"{cpu:.1f} ms/order" if cpu is not None else "n/a")
            + f"; client CPU {self.client_cpu * 1000 / max(self.done, 1):.1f} ms/order"
            + f"; {self.requests / max(self.done, 1):.1f} requests/order"
        )
        if self.stalls:
            text += f"; STALLED {self.stalls}x (restarted; stalled time not counted)"
        if self.failed:
            text += f"; {self.failed} FAILED (first: {self.errors[0]})"
        return text


async def load(
    label: str,
    directory_url: str,
    *,
    orders: int,
    concurrency: int,
    time_limit: float,
    ca_bundle: Path | None = None,
    eab_keys: list[tuple[str, str]] | None = None,
    server_pid: int | None = None,
    poll_interval: float = 0.05,
    domain: str = "bench.example.com",
    stall_seconds: float = 10.0,
) -> Result:
    """``orders`` full orders by ``concurrency`` workers (one account each; ``eab_keys[i]`` binds
    worker i's account), stopped at ``time_limit`` seconds, or when no order has completed for
    ``stall_seconds`` (``Result.stalls`` = 1; the orders in flight are dropped, not failed, and
    ``elapsed`` ends at the last completion). ``server_pid``: whose CPU to count."""
    context: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True
    )
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    timeout = aiohttp.ClientTimeout(total=stall_seconds + 5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = Client(session, directory_url, context, poll_interval)
        await client.start()
        accounts = [Account() for _ in range(concurrency)]
        await asyncio.gather(
            *(client.register(a, eab_keys[i] if eab_keys else None) for i, a in enumerate(accounts))
        )
        # The CSRs (and their keys) are made before the clock starts: client work, not load.
        run = secrets.token_hex(3)
        names = [f"o{n}-{run}.{domain}" for n in range(orders)]
        csrs = [csr_for(name) for name in names]
        queue = list(zip(names, csrs, strict=True))
        queue.reverse()
        result = Result(label, concurrency)
        client.requests = 0
        start = time.monotonic()
        deadline = start + time_limit
        last = start

        async def worker(account: Account) -> None:
            nonlocal last
            while queue and time.monotonic() < deadline:
                name, csr = queue.pop()
                began = time.monotonic()
                try:
                    await client.order(account, name, csr, deadline)
                except (AcmeFailure, aiohttp.ClientError, TimeoutError, KeyError) as exc:
                    result.failed += 1
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                    if result.failed >= 20 and not result.latencies:
                        queue.clear()  # nothing works: stop instead of hammering
                    continue
                last = time.monotonic()
                result.latencies.append(last - began)

        async def watchdog(workers: asyncio.Future[Any]) -> None:
            while not workers.done():
                await asyncio.sleep(0.5)
                if time.monotonic() - last > stall_seconds:
                    result.stalls = 1
                    workers.cancel()
                    return

        server_before = cpu_seconds(server_pid) if server_pid else None
        client_before = time.process_time()
        workers = asyncio.gather(*(worker(a) for a in accounts))
        dog = asyncio.ensure_future(watchdog(workers))
        try:
            await workers
        except asyncio.CancelledError:
            if not result.stalls:
                raise
        dog.cancel()
        result.elapsed = (last if result.stalls else time.monotonic()) - start
        result.done = len(result.latencies)
        result.client_cpu = time.process_time() - client_before
        if server_pid and server_before is not None:
            result.server_cpu = cpu_seconds(server_pid) - server_before
        result.requests = client.requests
        return result

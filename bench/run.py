"""jitsuin benchmarks: prints figures (and ratios where two things are compared); never pass/fail.

    .venv/bin/python bench/run.py crl [--entries 100000 1000000]
    .venv/bin/python bench/run.py issue [--count 200]
    .venv/bin/python bench/run.py ocsp [--seconds 10] [--connections 32] [--workers N]
    .venv/bin/python bench/run.py est [--count 200] [--concurrency 8] [--workers N]
    .venv/bin/python bench/run.py memory
    .venv/bin/python bench/run.py slow [--connections 3000] [--seconds 60]
    .venv/bin/python bench/run.py acme [--orders 400] [--concurrency 8 32] [--seconds 60]
    .venv/bin/python bench/run.py acme --directory URL [--ca-bundle PEM] [--eab KID:HMAC ...]
    .venv/bin/python bench/run.py fuzz [--requests 1000000] [--concurrency 64] [--seconds 1800]
                                       [--workers N] [--families est,ra,...] [--seed N]
    .venv/bin/python bench/run.py profile acme|est [--count 200] [--concurrency 8] [--out SVG]
                                               [--gil]
    .venv/bin/python bench/run.py lint-diff [--count 10000] [--seed N] [--jobs N]
    .venv/bin/python bench/run.py all

Servers listen on 127.0.0.1 only, in a temporary data directory (with --workers N > 1, on the
PostgreSQL server at 127.0.0.1:5432, database test, in a schema of their own dropped afterwards);
every load loop is bounded in count and in time. OCSP load uses wrk (Debian package `wrk`) when
installed, else an asyncio client.
ACME runs jitsuin and Pebble (Debian package `pebble`) side by side with the same load client
(bench/acme.py) and prints the ratio jitsuin/Pebble.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration

BIN = Path(sys.executable).parent
JITSUIN = str(BIN / "jitsuin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


# Several processes need the shared store (server/workers.py): each run gets a schema of its own
# in this database (JITSUIN_BENCH_POSTGRES overrides it), dropped afterwards.
POSTGRES = os.environ.get("JITSUIN_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


# ``--lint-processes``: the servers' ``[ca] lint_processes`` (0: the gate lints in-process).
LINT_PROCESSES = 0
# ``--lint``: the servers' ``[ca] lint`` (None: the default configuration's).
LINT_MODE: str | None = None


def with_lint_mode(text: str) -> str:
    """The configuration ``text`` with ``--lint``'s ``[ca] lint``, if given."""
    if LINT_MODE:
        text = text.replace("\n[ca]\n", f'\n[ca]\nlint = "{LINT_MODE}"\n', 1)
        assert "lint = " in text, "the default configuration has no [ca] table"
    return text


class Server:
    def __init__(
        self,
        home: Path,
        workers: int,
        extra_config: str = "",
        postgres: bool | None = None,
        test_mode: bool = False,
    ) -> None:
        self.home = home
        # [acme.test] knobs are refused unless the environment of jitsuin allows them.
        self.env = {**os.environ, "JITSUIN_ALLOW_TEST_MODE": "1"} if test_mode else None
        self.http_port, self.https_port = free_port(), free_port()
        path = configuration.write_default(home, KeyType.ECDSA_P384, configuration.DEFAULT_SUBJECT)
        text = path.read_text()
        text = text.replace("127.0.0.1:8080", f"127.0.0.1:{self.http_port}")
        text = text.replace("127.0.0.1:8443", f"127.0.0.1:{self.https_port}")
        self.schema: str | None = None
        if workers > 1 if postgres is None else postgres:
            self.schema = f"bench_{secrets.token_hex(4)}"
            text = text.replace("sqlite:///jitsuin.db", f"{POSTGRES}?schema={self.schema}")
            assert self.schema in text, "the default configuration's database_url changed"
        if LINT_PROCESSES:
            text = text.replace("\n[ca]\n", f"\n[ca]\nlint_processes = {LINT_PROCESSES}\n", 1)
            assert "lint_processes" in text, "the default configuration has no [ca] table"
        text = with_lint_mode(text)
        self.backend = "SQLite" if self.schema is None else "PostgreSQL"
        path.write_text(text + extra_config)
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.https = f"https://localhost:{self.https_port}"
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [JITSUIN, "--home", str(self.home), "serve"]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        log = (self.home / "server.log").open("wb")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{self.http}/health", timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise SystemExit((self.home / "server.log").read_text()) from None
                time.sleep(0.1)
        raise SystemExit("the server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.schema is not None:
            asyncio.run(_drop_schema(self.schema))


async def _drop_schema(schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


@contextmanager
def running(
    workers: int = 1, extra_config: str = "", postgres: bool | None = None, test_mode: bool = False
) -> Iterator[Server]:
    """``postgres``: on PostgreSQL (default: when ``workers`` > 1, which need it); ``test_mode``:
    allow ``[acme.test]`` knobs in ``extra_config`` (JITSUIN_ALLOW_TEST_MODE=1)."""
    with tempfile.TemporaryDirectory(prefix="jitsuin-bench-") as tmp:
        server = Server(Path(tmp), workers, extra_config, postgres, test_mode)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def issue(server: Server) -> tuple[x509.Certificate, x509.Certificate]:
    """One certificate through `jitsuin issue`; returns (leaf, CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    (server.home / "req.pem").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    record = {
        "subscriber_id": "bench",
        "family_name": "Yamada",
        "given_name": "Taro",
        "email": "taro@example.jp",
        "qualification_group": "member",
        "qualification_number": "AB-1",
    }
    (server.home / "subject.json").write_text(json.dumps(record))
    subprocess.run(
        [
            JITSUIN,
            "--home",
            str(server.home),
            "issue",
            "--csr",
            str(server.home / "req.pem"),
            "--subject",
            str(server.home / "subject.json"),
            "--profile",
            "general",
            "--out",
            str(server.home / "leaf.pem"),
        ],
        check=True,
        capture_output=True,
    )
    with urllib.request.urlopen(f"{server.http}/ca.pem", timeout=5) as reply:
        ca = x509.load_pem_x509_certificate(reply.read())
    return x509.load_pem_x509_certificate((server.home / "leaf.pem").read_bytes()), ca


# -- CRL -------------------------------------------------------------------------------------------
def bench_crl(sizes: list[int]) -> None:
    from jitsuin.ca.clock import FixedClock
    from jitsuin.ca.generations import create_generation
    from jitsuin.ca.keys import SoftwareSigner, generate_private_key
    from jitsuin.ca.revocation import Revoked, build_crl

    clock = FixedClock()
    name = x509.Name.from_rfc4514_string(configuration.DEFAULT_SUBJECT)
    signer = SoftwareSigner(generate_private_key(KeyType.ECDSA_P384))
    generation = create_generation(1, signer, name, clock)
    now = clock.now()
    later = now + dt.timedelta(days=100)
    print("CRL: generate and sign (ECDSA P-384)")
    for size in sizes:
        entries = [Revoked(secrets.randbits(159), now, "keyCompromise", later) for _ in range(size)]
        start = time.perf_counter()
        der = build_crl(generation, entries, 1, now)
        elapsed = time.perf_counter() - start
        print(
            f"  {size:>9,} entries: {elapsed:6.2f} s  {len(der) / 1e6:7.1f} MB  "
            f"{size / elapsed:>10,.0f} entries/s"
        )


# -- issuance through the pre-issuance gate --------------------------------------------------------
def bench_issue(count: int) -> None:
    """``count`` tls-server certificates issued in this process by a fresh CA (P-384), each linted
    by the pre-issuance gate (the whole rule registry, pkilint included) before it is signed."""
    from jitsuin.ca.clock import SystemClock
    from jitsuin.server.authority import Authority

    async def run(home: Path) -> None:
        path = configuration.write_default(home, KeyType.ECDSA_P384, configuration.DEFAULT_SUBJECT)
        path.write_text(with_lint_mode(path.read_text()))
        authority = await Authority.open(configuration.load(path, home), SystemClock())
        try:
            keys = [ec.generate_private_key(ec.SECP256R1()).public_key() for _ in range(count + 1)]
            lifetime = dt.timedelta(days=90)
            started = time.perf_counter()
            authority.issuer.issue_tls_server(keys[0], ["warm.example.com"], [], lifetime)
            first = time.perf_counter() - started  # includes importing pkilint
            started, cpu_started = time.perf_counter(), time.process_time()
            for n, key in enumerate(keys[1:]):
                authority.issuer.issue_tls_server(key, [f"o{n}.example.com"], [], lifetime)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        finally:
            await authority.close()
        print(
            f"issuance through the gate (tls-server, CA P-384, lint {LINT_MODE or 'default'}), "
            f"{count} certificates: "
            f"{elapsed / count * 1000:.2f} ms each, {count / elapsed:,.0f}/s on one thread, "
            f"CPU {cpu / count * 1000:.2f} ms per certificate (the first: {first * 1000:.0f} ms)"
        )

    with tempfile.TemporaryDirectory(prefix="jitsuin-bench-") as tmp:
        asyncio.run(run(Path(tmp)))


# -- OCSP ------------------------------------------------------------------------------------------
def ocsp_url(server: Server) -> str:
    leaf, ca = issue(server)
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA1()).build()
    encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
    return f"{server.http}/ocsp/{urllib.parse.quote(encoded, safe='')}"


def wrk(url: str, seconds: int, connections: int) -> tuple[float, str]:
    # One wrk thread: it drives far more than the server answers, and on a 2-core machine a
    # second thread would take CPU from the server processes being measured.
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    )
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out.stdout)
    return rate, p99.group(1) if p99 else "?"


async def python_load(url: str, seconds: int, connections: int, limit: int = 200_000) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < deadline and done < limit:
            async with session.get(url) as reply:
                await reply.read()
                assert reply.status == 200
            done += 1

    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    return done / (time.monotonic() - start)


def bench_ocsp(seconds: int, connections: int, workers: int, postgres: bool = False) -> float:
    with running(workers, postgres=postgres or workers > 1) as server:
        url = ocsp_url(server)
        with urllib.request.urlopen(url, timeout=5) as reply:  # warm the signed-response cache
            assert ocsp.load_der_ocsp_response(reply.read()).certificate_status.name == "GOOD"
        if shutil.which("wrk"):
            # Untimed first: each process signs, lints (importing pkilint) and caches its answer.
            wrk(url, 3, connections)
            rate, p99 = wrk(url, seconds, connections)
            tool = f"wrk, p99 {p99}"
        else:
            rate = asyncio.run(python_load(url, seconds, connections))
            tool = "asyncio client (install wrk for a load tool outside Python)"
        assert server.process is not None
        print(
            f"OCSP GET, {workers} process(es) on {server.backend}, {connections} connections, "
            f"{seconds} s: "
            f"{rate:,.0f} responses/s ({tool}); server RSS {rss_mb(server.process.pid):.0f} MB"
        )
        return rate


# -- EST -------------------------------------------------------------------------------------------
async def own_token(ra, name: str, role: str) -> str:  # type: ignore[no-untyped-def]
    """A new operator's API token after the operator took it over from the host CLI that made
    it: under the two-person rule whoever set a credential acts with it too."""
    handed_over = await ra.add_operator("cli:bench", name, role)
    return await ra.rotate_operator_token(await ra.authenticate(handed_over), name)


async def vet(ra, reviewer, n: int):  # type: ignore[no-untyped-def]
    """Application ``n`` walked by ``reviewer`` through the RA service to online input
    received (the step before approval); returns (application, enrollment ID)."""
    today = dt.date.today().isoformat()
    record = await ra.create(
        reviewer,
        {
            "profile": "general",
            "familyName": "Yamada",
            "givenName": "Taro",
            "email": f"taro{n}@example.jp",
            "qualificationGroup": "member",
            "qualificationNumber": f"AB-{n}",
            "postalAddress": "Tokyo",
            "dateOfBirth": "1980-01-01",
            "billing": {"addressee": "self"},
        },
    )
    await ra.review(
        reviewer,
        record.id,
        {
            "receivedOn": today,
            "residentRecord": {
                "issuedOn": today,
                "original": True,
                "showsIndividualNumber": False,
                "nameMatches": True,
                "addressMatches": True,
                "dateOfBirthMatches": True,
            },
            "seal": {"selfInking": False},
        },
    )
    sent = await ra.dispatch_inquiry(reviewer, record.id, {"trackingNumber": "RD1"})
    await ra.record_letter(
        reviewer, record.id, {"signed": True, "sealed": True, "selfInking": False}
    )
    inv = sent.application
    await ra.record_payment(
        reviewer, record.id, {"invoiceNumber": inv.invoice_number, "amount": inv.invoice_amount}
    )
    await ra.online_input(
        {
            "enrollmentId": sent.enrollment_id,
            "accessCode": sent.access_code,
            "confirm": True,
        },
        "127.0.0.1",
    )
    return record, sent.enrollment_id


async def mailed_pins(ra, limit: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Enrollment ID -> download PIN, read from the sealed outbox with the RA key (operator
    access: the PIN mails are not delivered in the benchmarks)."""
    import email as email_lib

    pins = {}
    for mail in await ra.store.mail(None, limit=limit):
        if mail.body_sealed:
            message = email_lib.message_from_bytes(ra.open_mail(mail.body_sealed))
            body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
            enrollment = re.search(r"Enrollment ID: (\S+)", body).group(1)  # type: ignore[union-attr]
            pins[enrollment] = re.search(r"Download PIN: (\d+)", body).group(1)  # type: ignore[union-attr]
    return pins


async def _approved(server: Server, count: int) -> list[tuple[str, str]]:
    """``count`` applications walked to approval through the RA service on the server's own data
    directory; the PINs are read from the sealed outbox with the RA key (operator access)."""
    from jitsuin.ca.clock import SystemClock
    from jitsuin.server.authority import Authority
    from jitsuin.server.ra.credentials import Keyring
    from jitsuin.server.ra.service import RAService

    cfg = configuration.load(server.home / "jitsuin.toml", server.home)
    authority = await Authority.open(cfg, SystemClock(), create=False)
    ra = RAService(authority, cfg, Keyring(cfg.ra_secret()))
    try:
        rev = await ra.authenticate(await own_token(ra, "rev", "reviewer"))
        app = await ra.authenticate(await own_token(ra, "app", "approver"))
        out = []
        for n in range(count):
            record, enrollment_id = await vet(ra, rev, n)
            await ra.approve(app, record.id)
            out.append(enrollment_id)
        pins = await mailed_pins(ra, count * 2)
        return [(e, pins[e]) for e in out]
    finally:
        await authority.close()


async def _enroll(
    server: Server, credentials: list[tuple[str, str]], concurrency: int
) -> list[float]:
    context = ssl.create_default_context(cafile=str(server.home / "ca.pem"))
    queue = list(credentials)
    latencies: list[float] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            enrollment, pin = queue.pop()
            key = ec.generate_private_key(ec.SECP256R1())
            csr = (
                x509.CertificateSigningRequestBuilder()
                .subject_name(x509.Name([]))
                .sign(key, hashes.SHA256())
            )
            body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
            start = time.perf_counter()
            async with session.post(
                f"{server.https}/.well-known/est/simpleenroll",
                data=body,
                headers={
                    "Content-Type": "application/pkcs10",
                    "Authorization": aiohttp.encode_basic_auth(enrollment, pin),
                },
                ssl=context,
            ) as reply:
                await reply.read()
                assert reply.status == 200, reply.status
            latencies.append(time.perf_counter() - start)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return latencies


def bench_est(count: int, concurrency: int, workers: int, postgres: bool = False) -> float:
    with running(workers, postgres=postgres or workers > 1) as server:
        with urllib.request.urlopen(f"{server.http}/ca.pem", timeout=5) as reply:
            (server.home / "ca.pem").write_bytes(reply.read())
        credentials = asyncio.run(_approved(server, count + workers))
        # One first enrollment per process, untimed: the first lint imports pkilint and builds
        # its linters (reported apart, as what the first subscriber after a start waits).
        first = asyncio.run(_enroll(server, credentials[:workers], workers))
        assert server.process is not None
        cpu_seconds = _acme_client().cpu_seconds
        cpu_before = cpu_seconds(server.process.pid)
        start = time.perf_counter()
        latencies = asyncio.run(_enroll(server, credentials[workers:], concurrency))
        elapsed = time.perf_counter() - start
        cpu = (cpu_seconds(server.process.pid) - cpu_before) * 1000 / count
        q = statistics.quantiles(latencies, n=100)
        print(
            f"EST simpleenroll, {workers} process(es) on {server.backend}, "
            f"{LINT_PROCESSES} lint process(es), {count} pre-approved pickups, "
            f"concurrency {concurrency}: "
            f"{count / elapsed:,.1f} enrollments/s; latency p50 {q[49] * 1000:.0f} ms, "
            f"p95 {q[94] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms "
            f"(the first after start: {max(first) * 1000:,.0f} ms); "
            f"server CPU {cpu:.1f} ms/enrollment (with its worker and lint processes)"
        )
        if workers == 1:
            print(f"  server RSS after the load: {rss_mb(server.process.pid):.0f} MB")
        return count / elapsed


class PeakRSS:
    """The highest RSS of a server process, and of it with its child processes (the lint
    processes), sampled every 0.1 s in a thread while the ``with`` block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.main = self.total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        tree = _acme_client().process_tree
        while True:
            sizes = {}
            for pid in tree(self.pid):
                try:
                    sizes[pid] = rss_mb(pid)
                except (OSError, AttributeError):  # gone meanwhile
                    continue
            self.main = max(self.main, sizes.get(self.pid, 0.0))
            self.total = max(self.total, sum(sizes.values()))
            if self._stop.wait(0.1):
                return

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_memory() -> None:
    """RSS idle, and at the peak of 5 s of OCSP load and of 100 EST enrollments (issuance through
    the gate). With lint processes the server's own figure and the sum over it and its child
    processes (the lint processes and multiprocessing's resource tracker) are both shown; the sum
    counts shared library pages once per process."""
    with running(1) as server:
        assert server.process is not None
        pid = server.process.pid
        time.sleep(1)
        with PeakRSS(pid) as idle:
            time.sleep(0.3)
        url = ocsp_url(server)
        with PeakRSS(pid) as ocsp_load:
            asyncio.run(python_load(url, 5, 16))
        with urllib.request.urlopen(f"{server.http}/ca.pem", timeout=5) as reply:
            (server.home / "ca.pem").write_bytes(reply.read())
        credentials = asyncio.run(_approved(server, 100))
        with PeakRSS(pid) as est_load:
            asyncio.run(_enroll(server, credentials, 8))

    def figure(peak: PeakRSS) -> str:
        if not LINT_PROCESSES:
            return f"{peak.main:.0f} MB"
        return f"{peak.main:.0f} MB ({peak.total:.0f} MB with its child processes)"

    print(
        f"memory, {LINT_PROCESSES} lint process(es): RSS idle {figure(idle)}; "
        f"peak under 5 s of OCSP load {figure(ocsp_load)}; "
        f"peak under 100 EST enrollments {figure(est_load)}"
    )


# -- slow clients ----------------------------------------------------------------------------------
SLOW_HEAD = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: "


async def _slow_clients(
    port: int, count: int, sources: int, tls: bool, seconds: float, trickle: float = 2.0
) -> tuple[list[float], list[float], int]:
    """``count`` connections from ``sources`` loopback addresses, each sending half a request
    head and then a byte every ``trickle`` seconds. Returns the seconds after which the server
    closed each one (at once: refused at accept; later: by a deadline, 10 s), split at 5 s, and how
    many were still open after ``seconds``."""
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    at_once: list[float] = []
    later: list[float] = []
    still_open = 0
    connecting = asyncio.Semaphore(200)  # stay within the listen backlog while connecting

    async def one(n: int) -> None:
        nonlocal still_open
        source = f"127.0.{n % sources // 250}.{n % sources % 250 + 1}"
        async with connecting:
            started = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=context, local_addr=(source, 0)
                )
            except (OSError, ssl.SSLError):  # refused during the TLS handshake
                at_once.append(time.monotonic() - started)
                return
        try:
            writer.write(SLOW_HEAD)
            while time.monotonic() - started < seconds:
                try:
                    if not await asyncio.wait_for(reader.read(1024), trickle):
                        break
                except TimeoutError:
                    writer.write(b"x")
            else:
                still_open += 1
                return
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()
        elapsed = time.monotonic() - started
        (at_once if elapsed < 5.0 else later).append(elapsed)

    await asyncio.gather(*(one(n) for n in range(count)))
    return at_once, later, still_open


def bench_slow(connections: int, seconds: int) -> None:
    """Slow clients against one server process (SQLite): ``connections`` connections that each
    send half a request head and trickle a byte every 2 s, on the plain and on the HTTPS
    listener, from one address and spread over 30 addresses, with the default [http] limits and
    with the limits lifted (every connection admitted, only the head deadline closes them). The
    server's RSS before, at the peak, and 5 s after the last connection closed."""
    scenarios = [
        ("defaults, one address", {}, 1),
        ("defaults, 30 addresses", {}, 30),
        (
            "limits lifted, 30 addresses",
            {"max_connections": 100_000, "max_connections_per_address": 100_000},
            30,
        ),
    ]
    for tls in (False, True):
        for label, settings, sources in scenarios:
            with tempfile.TemporaryDirectory(prefix="jitsuin-bench-") as tmp:
                server = Server(Path(tmp), 1)
                path = server.home / configuration.CONFIG_NAME
                text = path.read_text()
                for key, value in settings.items():
                    text, found = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
                    assert found == 1, f"the configuration template has no [http] {key}"
                path.write_text(text)
                server.start()
                try:
                    assert server.process is not None
                    pid = server.process.pid
                    time.sleep(1)
                    before = rss_mb(pid)
                    port = server.https_port if tls else server.http_port
                    started = time.monotonic()
                    with PeakRSS(pid) as peak:
                        at_once, later, still_open = asyncio.run(
                            _slow_clients(port, connections, sources, tls, seconds)
                        )
                        took = time.monotonic() - started
                        time.sleep(5)
                    after = rss_mb(pid)
                finally:
                    server.stop()
            later.sort()
            closing = (
                f"{len(later)} closed by a deadline after {later[0]:.1f}-{later[-1]:.1f} s "
                f"(median {statistics.median(later):.1f} s)"
                if later
                else "none closed by a deadline"
            )
            print(
                f"slow clients, {'HTTPS' if tls else 'HTTP'}, {label}: {connections} connections "
                f"in {took:.0f} s: {len(at_once)} closed at accept, {closing}, "
                f"{still_open} still open after {seconds} s; server RSS {before:.0f} MB before, "
                f"{peak.main:.0f} MB at the peak, {after:.0f} MB 5 s after the last closed"
            )


# -- ACME ------------------------------------------------------------------------------------------
# jitsuin's Pebble-like test knobs: every challenge valid without looking, no delay, no nonce
# rejected; a rate limit no benchmark reaches.
ACME_CONFIG = """
[acme]
orders_per_hour = 1000000

[acme.test]
validation_always_succeeds = true
"""
ACME_DOMAIN = "bench.example.com"


def _https_json(server: Server, path: str, token: str, body: object) -> dict:
    request = urllib.request.Request(
        server.https + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    context = ssl.create_default_context(cafile=str(server.home / "ca.pem"))
    with urllib.request.urlopen(request, context=context, timeout=30) as reply:
        return json.loads(reply.read())


def _operator(server: Server) -> str:
    """An approver's API token."""
    out = subprocess.run(
        [JITSUIN, "--home", str(server.home), "ra", "operator-add", "bench", "--role", "approver"],
        capture_output=True,
        text=True,
        check=True,
        env=server.env,
    )
    return out.stdout.strip().splitlines()[-1]


def _eab_keys(server: Server, token: str, count: int) -> list[tuple[str, str]]:
    """``count`` tls-server EAB keys made by an approver through the operator API."""
    keys = []
    for _ in range(count):
        made = _https_json(server, "/ra/acme/eab-keys", token, {"allowed": [ACME_DOMAIN]})
        keys.append((made["kid"], made["hmacKey"]))
    return keys


class Pebble:
    """Pebble on loopback: challenges always valid, no artificial sleeps, no nonce rejection."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.directory = f"https://localhost:{self.port}/dir"
        self.ca_bundle = home / "pebble-tls-ca.pem"
        self.process: subprocess.Popen[bytes] | None = None

    def _tls_files(self) -> tuple[Path, Path]:
        """A throwaway TLS CA and a localhost certificate (Debian's package ships none)."""
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bench TLS CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert, key_path = self.home / "pebble-cert.pem", self.home / "pebble-key.pem"
        self.ca_bundle.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert, key_path

    def start(self) -> None:
        binary = shutil.which("pebble")
        if binary is None:
            raise SystemExit("pebble is not installed (Debian package `pebble`)")
        cert, key = self._tls_files()
        config = self.home / "pebble-config.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"127.0.0.1:{self.port}",
                        "managementListenAddress": f"127.0.0.1:{free_port()}",
                        "certificate": str(cert),
                        "privateKey": str(key),
                        "httpPort": free_port(),
                        "tlsPort": free_port(),
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                    }
                }
            )
        )
        env = {
            **os.environ,
            "PEBBLE_VA_ALWAYS_VALID": "1",
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": os.environ.get("PEBBLE_AUTHZREUSE", "50"),
        }
        log = (self.home / "pebble.log").open("wb")
        self.process = subprocess.Popen(
            [binary, "-config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.home,
        )
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                raise SystemExit((self.home / "pebble.log").read_text())
            time.sleep(0.1)
        raise SystemExit("pebble did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@contextmanager
def pebble_running() -> Iterator[Pebble]:
    with tempfile.TemporaryDirectory(prefix="pebble-bench-") as tmp:
        pebble = Pebble(Path(tmp))
        pebble.start()
        try:
            yield pebble
        finally:
            pebble.stop()


def _acme_client():  # type: ignore[no-untyped-def]
    """bench/acme.py, loaded by path (``import acme`` would find certbot's package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_acme", Path(__file__).with_name("acme.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_acme"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def bench_acme(
    orders: int, concurrencies: list[int], seconds: int, poll: float, workers: int = 1
) -> None:
    """jitsuin and Pebble, both fresh for each concurrency and running side by side, loaded in
    turn by the same client. Pebble 2.4.0 (Debian) can deadlock under concurrent load (its
    in-memory store takes locks in two orders); a stalled Pebble is restarted and the rest of the
    orders run on the new one, the stalled time left out."""
    client = _acme_client()
    print(
        "ACME full orders (newOrder, authz, http-01, poll authz, finalize, poll order, "
        f"certificate), {orders} per run, at most {seconds} s, polls every {poll * 1000:.0f} ms; "
        f"jitsuin ({'PostgreSQL' if workers > 1 else 'SQLite'}, {workers} process(es), "
        f"{LINT_PROCESSES} lint process(es), "
        f"CA key {KeyType.ECDSA_P384.value}) and Pebble on loopback"
    )
    for concurrency in concurrencies:
        with (
            running(workers, ACME_CONFIG, test_mode=True) as server,
            pebble_running() as pebble,
        ):
            assert server.process is not None
            with urllib.request.urlopen(f"{server.http}/ca.pem", timeout=5) as reply:
                (server.home / "ca.pem").write_bytes(reply.read())
            eab = _eab_keys(server, _operator(server), concurrency + workers)
            common = {"concurrency": concurrency, "poll_interval": poll, "domain": ACME_DOMAIN}
            # Two orders per process first, untimed, on each server: jitsuin's first finalize
            # in a process imports pkilint and builds its linters (about a second), which is not
            # throughput.
            warm = {**common, "concurrency": workers, "orders": 2 * workers, "time_limit": seconds}
            asyncio.run(
                client.load(
                    "warm-up",
                    f"{server.https}/acme/directory",
                    ca_bundle=server.home / "ca.pem",
                    eab_keys=eab[:workers],
                    **warm,
                )
            )
            eab = eab[workers:]
            asyncio.run(
                client.load("warm-up", pebble.directory, ca_bundle=pebble.ca_bundle, **warm)
            )
            mine = asyncio.run(
                client.load(
                    "jitsuin",
                    f"{server.https}/acme/directory",
                    orders=orders,
                    time_limit=seconds,
                    ca_bundle=server.home / "ca.pem",
                    eab_keys=eab,
                    server_pid=server.process.pid,
                    **common,
                )
            )
            print("  " + mine.line())
            theirs = client.Result("Pebble", concurrency)
            began = time.monotonic()
            for _ in range(10):  # segments: a stalled Pebble is restarted
                left = seconds - (time.monotonic() - began)
                if theirs.done >= orders or left <= 1:
                    break
                if theirs.stalls:
                    pebble.stop()
                    pebble.start()
                assert pebble.process is not None
                theirs.add(
                    asyncio.run(
                        client.load(
                            "Pebble",
                            pebble.directory,
                            orders=orders - theirs.done,
                            time_limit=left,
                            ca_bundle=pebble.ca_bundle,
                            server_pid=pebble.process.pid,
                            **common,
                        )
                    )
                )
                if not theirs.stalls:
                    break
            print("  " + theirs.line())
            cpu = ""
            if mine.cpu_ms_per_order and theirs.cpu_ms_per_order:
                cpu = f", server CPU/order {mine.cpu_ms_per_order / theirs.cpu_ms_per_order:.2f}x"
            print(
                f"  ratio jitsuin/Pebble at concurrency {concurrency}: orders/s "
                f"{mine.rate / theirs.rate:.2f}x, p50 latency "
                f"{mine.quantile(50) / theirs.quantile(50):.2f}x{cpu}"
            )


def bench_acme_url(
    directory: str,
    ca_bundle: str | None,
    eab: list[str],
    orders: int,
    concurrencies: list[int],
    seconds: int,
    poll: float,
    pid: int | None,
    domain: str,
) -> None:
    """The load client alone against any directory URL (the server's CPU only with --pid)."""
    load = _acme_client().load

    keys = [tuple(e.split(":", 1)) for e in eab] or None
    for concurrency in concurrencies:
        if keys is not None and len(keys) < concurrency:
            raise SystemExit(f"--eab: {concurrency} keys needed (one account per worker)")
        result = asyncio.run(
            load(
                directory,
                directory,
                orders=orders,
                concurrency=concurrency,
                time_limit=seconds,
                ca_bundle=Path(ca_bundle) if ca_bundle else None,
                eab_keys=keys,  # type: ignore[arg-type]
                server_pid=pid,
                poll_interval=poll,
                domain=domain,
            )
        )
        print(result.line())


# -- the incremental gate's differential test -----------------------------------------------------
def _lint_diff_module():  # type: ignore[no-untyped-def]
    """bench/lint_diff.py, loaded by path."""
    import importlib.util

    if "bench_lint_diff" in sys.modules:
        return sys.modules["bench_lint_diff"]
    spec = importlib.util.spec_from_file_location(
        "bench_lint_diff", Path(__file__).with_name("lint_diff.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_lint_diff"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _lint_diff_shard(
    count: int, seed: int
) -> tuple[int, int, int, int, int, float, float, list[str]]:
    """One process's share: (drafts, unreadable, refused, shapes, hits, whole s, incremental s,
    differences)."""
    lint_diff = _lint_diff_module()
    lab = lint_diff.Lab.create()
    tally = lint_diff.run(lab, lint_diff.Generator(lab, seed).drafts(count))
    return (
        tally.drafts,
        tally.unreadable,
        tally.blocked,
        lab.shapes.misses,
        lab.shapes.hits,
        tally.full_seconds,
        tally.incremental_seconds,
        [str(d) for d in tally.differences],
    )


def bench_lint_diff(count: int, seed: int, jobs: int) -> None:
    """bench/lint_diff.py at full count: ``count`` drafts, jitsuin's own and mutated, each linted
    whole and incrementally, in ``jobs`` processes (seeds ``seed``, ``seed + 1``, ...); any
    difference is printed (with the DER) and fails the run."""
    from concurrent.futures import ProcessPoolExecutor

    _lint_diff_module()
    started = time.perf_counter()
    shares = [count // jobs + (1 if i < count % jobs else 0) for i in range(jobs)]
    with ProcessPoolExecutor(jobs) as pool:
        results = list(pool.map(_lint_diff_shard, shares, [seed + i for i in range(jobs)]))
    took = time.perf_counter() - started
    drafts, unreadable, blocked, misses, hits = (sum(r[i] for r in results) for i in range(5))
    whole, incremental = (sum(r[i] for r in results) for i in (5, 6))
    differences = [d for r in results for d in r[7]]
    done = max(drafts, 1)
    print(
        f"lint-diff, seeds {seed}..{seed + jobs - 1}: {drafts:,} drafts compared ({unreadable} "
        f"unreadable either way, not compared), {blocked:,} refused by the gate; "
        f"{len(differences)} differences; {misses:,} shapes, {hits:,} later drafts of a known "
        f"shape; lint per draft: whole {whole / done * 1000:.2f} ms, incremental "
        f"{incremental / done * 1000:.2f} ms (wall, {jobs} process(es)); {took:.0f} s"
    )
    for difference in differences[:10]:
        print(f"  DIFFERENCE {difference}")
    if differences:
        raise SystemExit(1)


# -- profile ---------------------------------------------------------------------------------------
PROFILES = Path(__file__).with_name("profiles")  # .gitignored
# Where a sample's CPU goes: the first category (in this order) with a frame on its stack
# (py-spy writes paths relative to sys.path: "func (pkilint/validation.py:180)").
CATEGORIES = [
    ("pkilint", ("(pkilint/", "(pyasn1_fasder/", "(validators/")),
    ("lint, our rules", ("(conformance/",)),
    ("store", ("(server/storage/", "(aiosqlite/", "(asyncpg/", "(sqlite3/")),
    ("CA key signature", ("sign_draft",)),
    ("JOSE", ("(josepy/", "(protocol/jose.py")),
    ("JSON", ("(json/",)),
    ("TLS", ("(ssl.py", "(asyncio/sslproto.py")),
    ("aiohttp", ("(aiohttp/", "(multidict/", "(yarl/")),
    ("asyncio", ("(asyncio/",)),
]


def _shares(collapsed: Path) -> list[tuple[str, float]]:
    """Share of samples per category, from py-spy's raw (collapsed stack) output."""
    counts: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        samples = int(number)
        total += samples
        category = next(
            (name for name, marks in CATEGORIES if any(m in stack for m in marks)), "other"
        )
        counts[category] = counts.get(category, 0) + samples
    return sorted(((k, v / max(total, 1)) for k, v in counts.items()), key=lambda kv: -kv[1])


def bench_profile(
    what: str, count: int, concurrency: int, out: Path | None, gil: bool = False
) -> None:
    """py-spy records the server (and any lint process) while ``count`` ACME orders or EST
    enrollments run after a warm-up; writes a flame graph SVG and the collapsed stacks beside it
    (bench/profiles/, outside git) and prints where the samples went. With ``gil`` only the
    thread holding the GIL is sampled: Python's CPU, without threads waiting on fsync or a
    queue (which py-spy otherwise counts as busy)."""
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(spy).exists():
        raise SystemExit(
            "py-spy is not installed: pip install -e '.[test]' (or pip install py-spy)"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    svg = out or PROFILES / f"{what}-{stamp}.svg"
    svg.parent.mkdir(parents=True, exist_ok=True)
    raw = svg.with_suffix(".collapsed.txt")
    extra = ACME_CONFIG if what == "acme" else ""
    with running(1, extra, test_mode=what == "acme") as server:
        assert server.process is not None
        pid = server.process.pid
        with urllib.request.urlopen(f"{server.http}/ca.pem", timeout=5) as reply:
            (server.home / "ca.pem").write_bytes(reply.read())
        if what == "acme":
            client = _acme_client()
            eab = _eab_keys(server, _operator(server), concurrency + 1)
            common = {"poll_interval": 0.05, "domain": ACME_DOMAIN, "time_limit": 120}
            directory = f"{server.https}/acme/directory"
            bundle = server.home / "ca.pem"
            asyncio.run(
                client.load(
                    "warm-up",
                    directory,
                    ca_bundle=bundle,
                    eab_keys=eab[:1],
                    orders=2,
                    concurrency=1,
                    **common,
                )
            )

            def load() -> str:
                result = asyncio.run(
                    client.load(
                        "jitsuin",
                        directory,
                        ca_bundle=bundle,
                        eab_keys=eab[1:],
                        orders=count,
                        concurrency=concurrency,
                        server_pid=pid,
                        **common,
                    )
                )
                return str(result.line())
        else:
            credentials = asyncio.run(_approved(server, count + 1))
            asyncio.run(_enroll(server, credentials[:1], 1))

            def load() -> str:
                started = time.perf_counter()
                asyncio.run(_enroll(server, credentials[1:], concurrency))
                return f"EST: {count} enrollments in {time.perf_counter() - started:.1f} s"

        spies = [
            subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--subprocesses",
                    "--nonblocking",
                    "--rate",
                    "200",
                    *(["--gil"] if gil else []),
                    "--format",
                    form,
                    "--output",
                    str(path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for form, path in (("flamegraph", svg), ("raw", raw))
        ]
        time.sleep(1)  # py-spy attaches
        try:
            print(load())
        finally:
            for one in spies:
                one.send_signal(signal.SIGINT)
            for one in spies:
                one.wait(timeout=60)
    print(f"flame graph: {svg}\ncollapsed stacks: {raw}")
    print("server samples by category (the first matching frame on each stack):")
    for name, share in _shares(raw):
        print(f"  {name:<18} {share * 100:5.1f} %")


# -- fuzz ------------------------------------------------------------------------------------------
def bench_fuzz(
    requests: int,
    concurrency: int,
    seconds: int,
    seed: int,
    workers: int = 1,
    families: tuple[str, ...] = (),
) -> None:
    """A fresh server (SQLite; PostgreSQL with --workers N > 1), then bench/fuzz.py's stream of
    malformed requests against it; memory and CPU are the server's with its worker processes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_fuzz", Path(__file__).with_name("fuzz.py"))
    assert spec is not None and spec.loader is not None
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules["bench_fuzz"] = fuzz  # dataclasses look their module up
    spec.loader.exec_module(fuzz)
    unknown = set(families) - set(fuzz.FAMILIES)
    if unknown:
        raise SystemExit(f"--families: {', '.join(sorted(unknown))}; choose from {fuzz.FAMILIES}")
    client = _acme_client()

    def memory(pid: int) -> float:
        total = 0.0
        for one in client.process_tree(pid):
            with contextlib.suppress(OSError, AttributeError):  # gone meanwhile
                total += rss_mb(one)
        return total

    with running(workers) as server:
        assert server.process is not None
        target = fuzz.prepare(server.http, server.https, server.home, server.process.pid, JITSUIN)
        asyncio.run(
            fuzz.run(
                target, requests, concurrency, seconds, seed, memory, client.cpu_seconds, families
            )
        )
        fuzz.log_summary(server.home / "server.log")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "what",
        choices=[
            *("crl", "issue", "ocsp", "est", "memory", "slow", "acme", "fuzz", "profile"),
            *("lint-diff", "all"),
        ],
    )
    parser.add_argument("target", nargs="?", choices=["acme", "est"], help="profile: the load")
    parser.add_argument("--out", type=Path, help="profile: the SVG (default bench/profiles/)")
    parser.add_argument(
        "--gil", action="store_true", help="profile: sample only the thread holding the GIL"
    )
    parser.add_argument("--entries", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--seconds",
        type=int,
        help="ocsp: load time (10); acme, slow: limit (60); fuzz: limit (1800)",
    )
    parser.add_argument("--requests", type=int, default=1_000_000, help="fuzz: requests to send")
    parser.add_argument(
        "--seed", type=int, help="fuzz, lint-diff: the random seed (printed; default random)"
    )
    parser.add_argument("--families", help="fuzz: only these, comma-separated (default: all)")
    parser.add_argument("--connections", type=int, help="ocsp: 32; slow: 3000")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="lint-diff: processes")
    parser.add_argument(
        "--lint-processes", type=int, default=0, help="est, acme: the servers' [ca] lint_processes"
    )
    parser.add_argument(
        "--lint",
        choices=["incremental", "full"],
        help="issue, est, acme, memory, profile: [ca] lint",
    )
    parser.add_argument("--count", type=int, help="issue, est, profile: 200; lint-diff: 10000")
    parser.add_argument("--concurrency", type=int, nargs="+", help="est: 8; acme: 8 32; fuzz: 64")
    parser.add_argument("--orders", type=int, default=400, help="acme: orders per run")
    parser.add_argument("--poll", type=float, default=0.05, help="acme: seconds between polls")
    parser.add_argument("--directory", help="acme: load this directory URL instead")
    parser.add_argument("--ca-bundle", help="acme --directory: the TLS trust anchors")
    parser.add_argument("--eab", nargs="+", default=[], help="acme --directory: KID:HMAC ...")
    parser.add_argument("--pid", type=int, help="acme --directory: the server process")
    parser.add_argument("--domain", default=ACME_DOMAIN, help="acme --directory: names under it")
    args = parser.parse_args()
    global LINT_PROCESSES
    LINT_PROCESSES = args.lint_processes
    global LINT_MODE
    LINT_MODE = args.lint
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if args.what in ("crl", "all"):
        bench_crl(args.entries)
    if args.what in ("issue", "all"):
        bench_issue(args.count or 200)
    if args.what in ("ocsp", "all"):
        # With --workers N the one-process baseline runs on PostgreSQL too: the ratio is scaling.
        one = bench_ocsp(args.seconds or 10, args.connections or 32, 1, args.workers > 1)
        if args.workers > 1:
            many = bench_ocsp(args.seconds or 10, args.connections or 32, args.workers)
            print(f"  ratio {args.workers} processes / 1 process: {many / one:.2f}x")
    if args.what in ("est", "all"):
        concurrency = (args.concurrency or [8])[0]
        one = bench_est(args.count or 200, concurrency, 1, args.workers > 1)
        if args.workers > 1:
            many = bench_est(args.count or 200, concurrency, args.workers)
            print(f"  ratio {args.workers} processes / 1 process: {many / one:.2f}x")
    if args.what in ("memory", "all"):
        bench_memory()
    if args.what in ("slow", "all"):
        bench_slow(args.connections or 3000, args.seconds or 60)
    if args.what == "lint-diff":  # not in "all": a long run of its own
        seed = args.seed if args.seed is not None else secrets.randbits(32)
        bench_lint_diff(args.count or 10_000, seed, args.jobs)
    if args.what == "profile":  # not in "all": it writes files
        if args.target is None:
            raise SystemExit("profile: name the load, acme or est")
        bench_profile(
            args.target, args.count or 200, (args.concurrency or [8])[0], args.out, args.gil
        )
    if args.what == "fuzz":  # not in "all": it is a long run of its own
        seed = args.seed if args.seed is not None else secrets.randbits(32)
        families = tuple(args.families.split(",")) if args.families else ()
        bench_fuzz(
            args.requests,
            (args.concurrency or [64])[0],
            args.seconds or 1800,
            seed,
            args.workers,
            families,
        )
    if args.what in ("acme", "all"):
        concurrencies = args.concurrency or [8, 32]
        seconds = args.seconds or 60
        if args.directory:
            bench_acme_url(
                args.directory,
                args.ca_bundle,
                args.eab,
                args.orders,
                concurrencies,
                seconds,
                args.poll,
                args.pid,
                args.domain,
            )
        else:
            bench_acme(args.orders, concurrencies, seconds, args.poll, args.workers)


if __name__ == "__main__":
    main()

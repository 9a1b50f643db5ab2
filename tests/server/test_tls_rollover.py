"""A rollover reaches the running HTTPS listener: after `jitsuin ca rollover`, new
connections get a server certificate of the new generation, with the NewWithOld link behind it,
from `jitsuin serve` and from every worker of `jitsuin serve --workers N`, with no restart.

Real processes and real clients: the server is `jitsuin serve` on loopback, the rollover is the
CLI in another process, the TLS clients are curl and openssl s_client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jitsuin.ca.clock import SystemClock
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority
from jitsuin.server.storage import open_store

STARTUP_SECONDS = 60
# The servers look for a rollover every 5 s (Authority.follow_rollovers); this is how long a
# test waits for it before it says the listener never followed, not a measured bound.
FOLLOW_SECONDS = 60

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl"
)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _served_leaf(port: int) -> x509.Certificate:
    """The certificate a new TLS connection to the listener is given (not verified here)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _served_chain(port: int) -> list[x509.Certificate]:
    """Every certificate the listener sends, as openssl s_client shows them."""
    shown = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts"],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    return x509.load_pem_x509_certificates(shown.stdout.encode())


def _curl(port: int, cacert: str) -> subprocess.CompletedProcess[str]:
    """curl over HTTPS to /health trusting ``cacert``, through bash so that the README's
    ``--cacert <(curl -s …/ca.pem)`` runs as written."""
    return subprocess.run(
        [
            "bash",
            "-c",
            f"curl -sS -o /dev/null -w '%{{http_code}}' --cacert {cacert} "
            f"https://localhost:{port}/health",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _key_id(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> bytes:
    value = cert.extensions.get_extension_for_class(kind).value
    return value.key_identifier if isinstance(value, x509.AuthorityKeyIdentifier) else value.digest


def _cli(home: Path, *args: str) -> str:
    """A `jitsuin` command in a process of its own, the data directory from JITSUIN_HOME."""
    env = {**os.environ, "JITSUIN_HOME": str(home)}
    env.pop("JITSUIN_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "jitsuin.server", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _rollover(home: Path) -> None:
    _cli(home, "ca", "rollover")


def _server_tls_issuances(config: configuration.Config) -> list[int]:
    """The generation of every server TLS certificate the audit log records."""

    async def read() -> list[int]:
        store = await open_store(config)
        try:
            entries = await store.audit_log(limit=100_000)
        finally:
            await store.close()
        return [
            e.event.details["generation"]
            for e in entries
            if e.event.action == "certificate.issue"
            and e.event.details.get("purpose") == "server TLS"
        ]

    return asyncio.run(read())


def _start(home: Path, config: configuration.Config, *serve: str) -> subprocess.Popen[bytes]:
    log = (home.parent / "serve.log").open("ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("JITSUIN_CONFIG", None)
    with log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jitsuin.server", "--home", str(home), "serve", *serve],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    health = f"http://127.0.0.1:{config.server.http.port}/health"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited: {(home.parent / 'serve.log').read_text()}")
        with contextlib.suppress(OSError):
            _get(health)
            assert config.server.https is not None
            _served_leaf(config.server.https.port)  # the HTTPS listeners are up too
            return process
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"no answer from {health}: {(home.parent / 'serve.log').read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_for_new_leaf(port: int, old: x509.Certificate, streak: int) -> set[x509.Certificate]:
    """Connect until ``streak`` new connections in a row are given a certificate other than
    ``old``; the distinct certificates of that streak."""
    seen: list[x509.Certificate] = []
    deadline = time.monotonic() + FOLLOW_SECONDS
    while len(seen) < streak:
        assert time.monotonic() < deadline, "the HTTPS listener still presents the old certificate"
        leaf = _served_leaf(port)
        seen = [*seen, leaf] if leaf != old else []
        if not seen:
            time.sleep(0.2)
    return set(seen)


@pytest.fixture
def home(tmp_path, write_home, free_port):
    home = tmp_path / "home"
    path = write_home(home, http_port=free_port(), https_port=free_port())
    return home, path


def test_serve_presents_a_certificate_of_the_new_generation_after_a_rollover(home):
    home, path = home
    config = configuration.load(path, home)
    assert config.server.https is not None
    http, https = config.server.public_http_url, config.server.https.port
    server = _start(home, config)
    try:
        old_ca = home.parent / "old-ca.pem"
        old_ca.write_bytes(_get(f"{http}/ca.pem"))
        first = x509.load_pem_x509_certificate(old_ca.read_bytes())
        # No rollover yet, so no link: OpenSSL completes the chain from the context's store
        # (the client-certificate trust) with generation 1 itself.
        before = _served_chain(https)
        assert before[1:] == [first]
        assert _key_id(before[0], x509.AuthorityKeyIdentifier) == _key_id(
            first, x509.SubjectKeyIdentifier
        )
        assert _curl(https, str(old_ca)).stdout == "200"

        _rollover(home)
        (leaf,) = _wait_for_new_leaf(https, before[0], 1)

        new_ca = x509.load_pem_x509_certificate(_get(f"{http}/ca.pem"))
        link = x509.load_der_x509_certificate(_get(f"{http}/ca/links/1-2/new-with-old.crt"))
        assert _key_id(leaf, x509.AuthorityKeyIdentifier) == _key_id(
            new_ca, x509.SubjectKeyIdentifier
        )
        # The chain: the new leaf, then NewWithOld (RFC 9810 §4.4) for clients of the old anchor.
        assert _served_chain(https) == [leaf, link]
        # The README's command, with what /ca.pem serves now, on a new connection ...
        fresh = _curl(https, f"<(curl -s {http}/ca.pem)")
        assert fresh.stdout == "200", fresh.stderr
        # ... and a client that pinned the previous ca.pem still connects, through the link.
        pinned = _curl(https, str(old_ca))
        assert pinned.stdout == "200", pinned.stderr
        assert server.poll() is None  # no restart
        # One server certificate per generation, each audited.
        assert sorted(_server_tls_issuances(config)) == [1, 2]

        # A second rollover, through the API of this very server (the in-process path).
        second_ca = home.parent / "second-ca.pem"
        second_ca.write_bytes(_get(f"{http}/ca.pem"))
        token = _cli(home, "ra", "operator-add", "root", "--role", "admin").splitlines()[-1]
        rolled = subprocess.run(  # the token on stdin (-H @-), not on a command line
            [
                "curl",
                "-sS",
                "-X",
                "POST",
                "--cacert",
                str(second_ca),
                "-H",
                "@-",
                f"https://localhost:{https}/ra/ca/rollover",
            ],
            input=f"Authorization: Bearer {token}\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert '"generation": 3' in rolled.stdout, rolled.stdout + rolled.stderr
        (third,) = _wait_for_new_leaf(https, leaf, 1)
        assert _served_chain(https) == [
            third,
            x509.load_der_x509_certificate(_get(f"{http}/ca/links/2-3/new-with-old.crt")),
        ]
        assert _curl(https, f"<(curl -s {http}/ca.pem)").stdout == "200"
        assert _curl(https, str(second_ca)).stdout == "200"
        # Only the newest link is sent: a client two generations behind is not bridged.
        skipped = _curl(https, str(old_ca))
        assert skipped.stdout == "000"
        assert "unable to get local issuer certificate" in skipped.stderr
        assert sorted(_server_tls_issuances(config)) == [1, 2, 3]
    finally:
        _stop(server)
    log = (home.parent / "serve.log").read_text()
    assert "HTTPS listener: certificate of generation 2" in log
    assert "Traceback" not in log


def test_every_worker_presents_the_one_new_certificate_after_a_rollover(
    postgres_schema, tmp_path, write_home, free_port
):
    home = tmp_path / "home"
    path = write_home(home, http_port=free_port(), https_port=free_port())
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("sqlite:///jitsuin.db", postgres_schema.url), encoding="utf-8")
    config = configuration.load(path, home)
    assert config.server.https is not None
    https = config.server.https.port
    server = _start(home, config, "--workers", "2")
    try:
        before = _served_leaf(https)
        _rollover(home)
        # 40 new connections in a row get generation 2's certificate: SO_REUSEPORT spreads
        # them over both workers (test_scale_out shows the spread), so each has reloaded ...
        leaves = _wait_for_new_leaf(https, before, 40)
        # ... the same one: the first worker to see the rollover issued it, the other loaded it.
        assert len(leaves) == 1
        assert sorted(_server_tls_issuances(config)) == [1, 2]
        fresh = _curl(https, f"<(curl -s {config.server.public_http_url}/ca.pem)")
        assert fresh.stdout == "200", fresh.stderr
    finally:
        _stop(server)
    assert server.returncode == 0, (tmp_path / "serve.log").read_text()


async def test_two_servers_on_one_data_directory_issue_one_tls_certificate(home):
    """Two Authorities (as two workers) on one data directory both find the server certificate
    stale after a rollover and reissue it at the same moment: the lock on ``tls/`` makes the
    second wait and load the first one's certificate instead of issuing its own."""
    home, path = home
    config = configuration.load(path, home)
    first = await Authority.open(config, SystemClock())
    second = await Authority.open(config, SystemClock())
    try:
        await first.tls_files()
        await first.rollover("test")
        await second.refresh()
        chains = await asyncio.gather(first.tls_files(), second.tls_files())
    finally:
        await first.close()
        await second.close()
    assert chains[0] == chains[1]
    leaf, link = x509.load_pem_x509_certificates(chains[0][0].read_bytes())
    assert leaf.issuer == link.subject
    assert sorted(await asyncio.to_thread(_server_tls_issuances, config)) == [1, 2]


async def test_a_key_that_does_not_match_the_certificate_is_replaced_with_both(home):
    """A reissue cut short between writing tls/server.key and tls/server.pem leaves a key for
    which the certificate was never issued: the server makes a new pair rather than failing to
    start (load_cert_chain: key values mismatch)."""
    home, path = home
    config = configuration.load(path, home)
    authority = await Authority.open(config, SystemClock())
    try:
        _, key_file = await authority.tls_files()
        stray = ec.generate_private_key(ec.SECP256R1())
        key_file.write_bytes(
            stray.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        chain = await authority.load_tls(context)
    finally:
        await authority.close()
    leaf = x509.load_pem_x509_certificate(chain)
    assert leaf.public_key() != stray.public_key()
    assert sorted(await asyncio.to_thread(_server_tls_issuances, config)) == [1, 1]

"""Slow, idle and too many clients (server/connections.py), HSTS and the TLS 1.2 cipher suites,
against `jitsuin serve` processes on loopback with the [http] settings shortened: raw sockets
that send half a request head, never finish a TLS handshake, trickle a body, or open one
connection too many from one address (the kernel lets a client bind any 127.0.0.0/8 address).

No assertion is about time: a timeout is shown by the server closing the connection without an
answer, waited for within a generous bound."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jitsuin.server import config as configuration
from jitsuin.server.connections import address_key

PATIENCE = 30.0  # how long a test waits for the server to close a connection it must close
HEAD = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
# A request whose handler then waits for the rest of the body: the connection stays open and
# counted for as long as the body deadline allows, whatever the head deadline is.
HELD = HEAD + b"POST /ocsp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0"


@dataclass
class Running:
    home: Path
    http_port: int
    https_port: int
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return (self.home / "server.log").read_text()


def _settings(home: Path, **values: int | float) -> None:
    path = home / configuration.CONFIG_NAME
    text = path.read_text()
    for key, value in values.items():
        text, found = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
        assert found == 1, f"the default configuration has no [http] {key}"
    path.write_text(text)


@contextlib.contextmanager
def serving(home: Path, write_home, free_port, *extra: str, **values: int | float):
    http_port, https_port = free_port(), free_port()
    write_home(home, http_port=http_port, https_port=https_port)
    _settings(home, **values)
    with _run(home, http_port, https_port, *extra) as running:
        yield running


@contextlib.contextmanager
def _run(home: Path, http_port: int, https_port: int, *extra: str) -> Iterator[Running]:
    jitsuin = shutil.which("jitsuin") or str(Path(sys.executable).parent / "jitsuin")
    env = {key: value for key, value in os.environ.items() if key != "JITSUIN_CONFIG"}
    # The soft open-file limit most shells start with, whatever this one has.
    command = ["sh", "-c", 'ulimit -Sn 1024 && exec "$0" "$@"', jitsuin, "--home", str(home)]
    with (home / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [*command, "serve", *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    running = Running(home, http_port, https_port, process)
    try:
        for _ in range(600):
            assert process.poll() is None, running.log()
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=2):
                    pass
                with tls_socket(https_port, "127.0.0.1"):
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not start:\n" + running.log())
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # who the server is does not matter here
    return context


def tcp_socket(port: int, source: str) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", port), timeout=PATIENCE, source_address=(source, 0)
    )


def tls_socket(port: int, source: str) -> socket.socket:
    return client_context().wrap_socket(tcp_socket(port, source), server_hostname="localhost")


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed);
    fails if it is still open after PATIENCE seconds."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"still open after {PATIENCE:.0f} s; received {received[:200]!r}")
    except (ConnectionError, ssl.SSLError):
        pass
    return received


def held(port: int, source: str, tls: bool) -> socket.socket | None:
    """A connection the server accepted (it answered a request on it) and that stays open in a
    handler waiting for a body; None when the server closed it at once."""
    try:
        sock = tls_socket(port, source) if tls else tcp_socket(port, source)
    except (ConnectionError, ssl.SSLError):
        return None  # closed during the TLS handshake: refused
    try:
        sock.sendall(HELD)
        reply = sock.recv(65536)
    except (ConnectionError, ssl.SSLError):
        reply = b""
    if not reply:
        sock.close()
        return None
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    return sock


def eventually_held(port: int, source: str, tls: bool = False) -> socket.socket:
    deadline = time.monotonic() + PATIENCE
    while (sock := held(port, source, tls)) is None:
        assert time.monotonic() < deadline, f"no connection from {source} accepted again"
        time.sleep(0.1)
    return sock


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4 through a dual-stack socket
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # one host, one /64
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_the_per_address_limit_counts_ipv4_addresses_and_ipv6_64s(peer, key):
    assert address_key(peer) == key


# -- deadlines ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short(tmp_path_factory, write_home, free_port):
    """A server whose every deadline is one second."""
    home = tmp_path_factory.mktemp("deadlines") / "home"
    with serving(
        home,
        write_home,
        free_port,
        request_head_timeout_seconds=1,
        request_body_timeout_seconds=1,
        tls_handshake_timeout_seconds=1,
    ) as running:
        yield running


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_half_sent_request_head_is_closed_without_an_answer(short, tls):
    port = short.https_port if tls else short.http_port
    with tls_socket(port, "127.0.0.2") if tls else tcp_socket(port, "127.0.0.2") as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        assert read_until_closed(sock) == b""
    # and a whole head on a new connection is answered
    with tls_socket(port, "127.0.0.2") if tls else tcp_socket(port, "127.0.0.2") as sock:
        sock.sendall(HEAD)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_an_idle_connection_and_a_half_sent_second_head_are_closed(short):
    with tcp_socket(short.http_port, "127.0.0.2") as sock:
        assert read_until_closed(sock) == b""  # connected, never sent a byte
    with tcp_socket(short.http_port, "127.0.0.2") as sock:
        sock.sendall(HEAD + b"GET /health HTTP/1.1\r\nHost: loc")
        received = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.count(b"HTTP/1.1 ") == 1  # the first answered, the second never finished


def test_a_request_in_the_same_packet_as_the_tls_finished_message_is_answered(short):
    """The server's TLS layer can deliver the request before the connection is handed to the
    HTTP server: it must not be lost."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with tcp_socket(short.https_port, "127.0.0.2") as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                incoming.write(sock.recv(65536))
        tls.write(HEAD)  # behind the client's Finished, which has not been sent yet
        sock.sendall(outgoing.read())
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            assert data, f"closed without an answer; received {received!r}"
            incoming.write(data)
            with contextlib.suppress(ssl.SSLWantReadError):
                received += tls.read(65536)
    assert received.startswith(b"HTTP/1.1 200 "), received


def test_a_tls_handshake_that_never_finishes_is_closed(short):
    with tcp_socket(short.https_port, "127.0.0.2") as sock:
        assert read_until_closed(sock) == b""  # no ClientHello
    with tcp_socket(short.https_port, "127.0.0.2") as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, and no more
        assert read_until_closed(sock) == b""


def test_a_client_that_never_answers_the_tls_close_is_dropped(short):
    with tls_socket(short.https_port, "127.0.0.2") as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: loc")
        assert read_until_closed(sock) == b""  # the server's close_notify, never answered
        with socket.socket(fileno=os.dup(sock.fileno())) as raw:
            raw.settimeout(20)  # asyncio's default wait for the answer is 30 s
            with contextlib.suppress(ConnectionError):  # then the TCP connection is closed
                assert raw.recv(1) == b""


def test_a_trickled_body_is_answered_408_and_closed(short):
    with tls_socket(short.https_port, "127.0.0.2") as sock:
        sock.sendall(b"POST /ocsp HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0")
        received = read_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), received
    assert b"application/problem+json" in received
    assert b"Connection: close" in received


def test_a_whole_body_reaches_the_handler_and_a_too_long_one_is_refused_at_once(short):
    with tls_socket(short.https_port, "127.0.0.2") as sock:
        sock.sendall(
            b"POST /ocsp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ocsp-request"
            b"\r\nContent-Length: 3\r\n\r\nabc"
        )
        reply = sock.recv(65536)
    # The OCSP responder's own answer to a request that is not DER (RFC 6960 malformedRequest).
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    assert b"application/ocsp-response" in reply
    with tls_socket(short.https_port, "127.0.0.2") as sock:
        sock.sendall(
            b"POST /ocsp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ocsp-request"
            b"\r\nContent-Length: 100000\r\n\r\n"
        )
        sock.sendall(b"0" * 70_000)  # more than client_max_size, and the rest never comes
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")


def test_the_open_file_limit_is_raised_for_the_connection_limits(short):
    """Two listeners of 1000 connections each do not fit under a soft limit of 1024."""
    limits = Path(f"/proc/{short.process.pid}/limits").read_text()
    soft, hard = next(line for line in limits.splitlines() if line.startswith("Max open files"))[
        len("Max open files") :
    ].split()[:2]
    assert int(soft) >= min(2 * 1000 + 256, int(hard))


# -- HSTS and cipher suites -----------------------------------------------------------------------
def test_hsts_on_https_responses_and_not_on_plain_http(short):
    for path in ("/health", "/ca.pem", "/no-such-page"):
        with tls_socket(short.https_port, "127.0.0.1") as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            head = sock.recv(65536).split(b"\r\n\r\n")[0].decode() + "\r\n"
        assert "\r\nStrict-Transport-Security: max-age=63072000\r\n" in head, head
        # RFC 6797 §7.2: never over plain HTTP
        with tcp_socket(short.http_port, "127.0.0.1") as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            head = sock.recv(65536).split(b"\r\n\r\n")[0].decode() + "\r\n"
        assert "Strict-Transport-Security" not in head, head


def s_client(port: int, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "localhost",
            *options,
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "cipher",
    [
        "AES256-SHA256",  # RSA key exchange, CBC
        "ECDHE-ECDSA-AES256-SHA384",  # the two CBC suites TLS 1.2 offered before
        "ECDHE-ECDSA-AES128-SHA256",
    ],
)
def test_tls_1_2_refuses_cbc_suites(short, cipher):
    refused = s_client(short.https_port, "-tls1_2", "-cipher", cipher)
    assert refused.returncode != 0
    assert "Cipher is (NONE)" in refused.stdout, refused.stdout


@pytest.mark.parametrize(
    "cipher", ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"]
)
def test_tls_1_2_accepts_ecdhe_with_aead(short, cipher):
    accepted = s_client(short.https_port, "-tls1_2", "-cipher", cipher)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert f"New, TLSv1.2, Cipher is {cipher}" in accepted.stdout
    tls13 = s_client(short.https_port, "-tls1_3")
    assert "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" in tls13.stdout


# -- connection limits ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limited(tmp_path_factory, write_home, free_port):
    """At most 8 open connections per listener, 3 from one address."""
    home = tmp_path_factory.mktemp("limits") / "home"
    with serving(
        home,
        write_home,
        free_port,
        request_head_timeout_seconds=1,
        request_body_timeout_seconds=60,
        tls_handshake_timeout_seconds=1,
        max_connections=8,
        max_connections_per_address=3,
    ) as running:
        yield running


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_one_connection_too_many_from_one_address_is_closed_at_accept(limited, tls):
    port = limited.https_port if tls else limited.http_port
    source = "127.0.0.3" if tls else "127.0.0.4"
    first = [held(port, source, tls) for _ in range(3)]
    try:
        assert all(first)
        assert held(port, source, tls) is None  # the fourth
        other = held(port, "127.0.0.5", tls)  # another address is not affected
        assert other is not None
        other.close()
        first.pop().close()  # a closed connection frees its place
        first.append(eventually_held(port, source, tls))
    finally:
        for sock in first:
            if sock is not None:
                sock.close()
    assert (
        f"refused 1 connection(s) over the limits since the last report (3 open, 3 from {source};"
        in limited.log()
    )


def test_connections_beyond_the_listener_limit_are_closed_at_accept(limited):
    """Ten addresses, one connection each: none reaches the per-address limit of 3, and no more
    than 8 are open at once (fewer if connections of other tests are still counted)."""
    sockets = [held(limited.http_port, f"127.0.1.{n}", False) for n in range(10)]
    try:
        accepted = [sock for sock in sockets if sock is not None]
        assert 1 <= len(accepted) <= 8
        assert len(sockets) - len(accepted) >= 2
        accepted[0].close()
        accepted[0] = eventually_held(limited.http_port, "127.0.1.100")
    finally:
        for sock in sockets:
            if sock is not None:
                sock.close()


def test_failed_tls_handshakes_give_their_places_back(limited):
    source = "127.0.0.6"
    for _ in range(4):
        with tcp_socket(limited.https_port, source) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not TLS
            read_until_closed(sock)
        with tcp_socket(limited.https_port, source) as sock:
            assert read_until_closed(sock) == b""  # no handshake: closed after its deadline
        with tcp_socket(limited.https_port, source) as sock:
            sock.sendall(b"\x16\x03\x01")  # gone in the middle of a ClientHello
        refused = s_client(limited.https_port, "-tls1_2", "-cipher", "AES256-SHA256")
        assert refused.returncode != 0
    # The handshakes' places were all given back: the address still gets its three.
    sockets = [eventually_held(limited.https_port, source, tls=True) for _ in range(3)]
    try:
        assert held(limited.https_port, source, tls=True) is None
    finally:
        for sock in sockets:
            sock.close()


# -- serve --workers N ----------------------------------------------------------------------------
def test_workers_close_slow_clients_and_limit_each_address(
    postgres_schema, tmp_path, write_home, free_port
):
    home = tmp_path / "home"
    http_port, https_port = free_port(), free_port()
    write_home(home, http_port=http_port, https_port=https_port)
    _settings(
        home,
        request_head_timeout_seconds=1,
        request_body_timeout_seconds=60,
        tls_handshake_timeout_seconds=1,
        max_connections_per_address=2,
    )
    path = home / configuration.CONFIG_NAME
    text = path.read_text().replace("sqlite:///jitsuin.db", postgres_schema.url)
    path.write_text(text)
    with _run(home, http_port, https_port, "--workers", "2") as running:
        for sock in (tcp_socket(http_port, "127.0.0.7"), tls_socket(https_port, "127.0.0.7")):
            with sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: loc")
                assert read_until_closed(sock) == b""
        with tcp_socket(https_port, "127.0.0.7") as sock:
            assert read_until_closed(sock) == b""  # no TLS handshake
        for tls, port in ((False, running.http_port), (True, running.https_port)):
            # Each worker holds its own counts, and the kernel spreads connections over both.
            sockets = [held(port, "127.0.0.8", tls) for _ in range(6)]
            try:
                accepted = sum(sock is not None for sock in sockets)
                assert 2 <= accepted <= 4, accepted
            finally:
                for sock in sockets:
                    if sock is not None:
                        sock.close()

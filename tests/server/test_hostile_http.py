"""Hostile input to a running `jitsuin serve` over plain HTTP: an OCSP request
for a hash algorithm nobody knows is an unsigned malformedRequest (RFC 6960 §2.3, §4.2.1), a
generation number of 5,000 digits is a 404, and bytes that are not HTTP are logged as one line,
never as a traceback."""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

SHA1_OID = bytes.fromhex("06052b0e03021a")  # 1.3.14.3.2.26
UNKNOWN_OID = bytes.fromhex("06052b0e03021b")  # 1.3.14.3.2.27: no hash cryptography knows


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any):
    with live_jitsuin.server(tmp_path_factory.mktemp("hostile-http"), operators=()) as running:
        yield running


def get(url: str, data: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.headers.get_content_type(), reply.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get_content_type(), exc.read()


def unknown_hash_request(server) -> bytes:
    ca = x509.load_der_x509_certificate(get(f"{server.http}/ca.crt")[2])
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(ca, ca, hashes.SHA1())  # noqa: S303 (its OID is replaced below)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    assert der.count(SHA1_OID) == 1
    return der.replace(SHA1_OID, UNKNOWN_OID)


def assert_malformed_request(status: int, media: str, body: bytes) -> None:
    assert (status, media) == (200, "application/ocsp-response")  # RFC 6960 App. A.1
    response = ocsp.load_der_ocsp_response(body)
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_post_with_an_unknown_hash_is_malformed_request(server):
    der = unknown_hash_request(server)
    reply = get(f"{server.http}/ocsp", der, {"Content-Type": "application/ocsp-request"})
    assert_malformed_request(*reply)


def test_ocsp_get_with_an_unknown_hash_is_malformed_request(server):
    encoded = urllib.parse.quote(base64.b64encode(unknown_hash_request(server)).decode(), safe="")
    assert_malformed_request(*get(f"{server.http}/ocsp/{encoded}"))


def test_ocsp_request_for_a_negative_serial_is_malformed_request(server):
    """RFC 5280 §4.1.2.2: serial numbers are positive; the issuer hashes match this CA."""
    ca = x509.load_der_x509_certificate(get(f"{server.http}/ca.crt")[2])
    name_hash = hashlib.sha256(ca.subject.public_bytes()).digest()
    key_bits = ca.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            name_hash, hashlib.sha256(key_bits).digest(), 0x01020304, hashes.SHA256()
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    positive = bytes.fromhex("020401020304")
    assert der.count(positive) == 1
    negative = der.replace(positive, bytes.fromhex("020481020304"))
    assert ocsp.load_der_ocsp_request(negative).serial_number < 0
    reply = get(f"{server.http}/ocsp", negative, {"Content-Type": "application/ocsp-request"})
    assert_malformed_request(*reply)
    encoded = urllib.parse.quote(base64.b64encode(negative).decode(), safe="")
    assert_malformed_request(*get(f"{server.http}/ocsp/{encoded}"))


def test_ocsp_request_for_two_certificates_is_malformed_request(server, tmp_path):
    """OpenSSL's request about two serials at once (``openssl ocsp -cert a -cert b``): one
    CertID per request is answered (S/MIME BR responders may limit to one), the rest
    malformedRequest, never a 500."""
    (tmp_path / "ca.pem").write_bytes(get(f"{server.http}/ca.pem")[2])
    request = ["openssl", "ocsp", "-issuer", str(tmp_path / "ca.pem"), "-no_nonce"]
    request += ["-serial", "0x10", "-serial", "0x11", "-reqout", str(tmp_path / "two.der")]
    subprocess.run(request, check=True, capture_output=True)
    two = (tmp_path / "two.der").read_bytes()
    with pytest.raises(NotImplementedError):  # cryptography reads one request only
        ocsp.load_der_ocsp_request(two)
    reply = get(f"{server.http}/ocsp", two, {"Content-Type": "application/ocsp-request"})
    assert_malformed_request(*reply)
    encoded = urllib.parse.quote(base64.b64encode(two).decode(), safe="")
    assert_malformed_request(*get(f"{server.http}/ocsp/{encoded}"))


@pytest.mark.parametrize("encoded", ["%21%21not-base64", "A", "AAAA", "%C2%B2", "%00", "-_-_"])
def test_ocsp_get_that_does_not_decode_is_malformed_request(server, encoded):
    assert_malformed_request(*get(f"{server.http}/ocsp/{encoded}"))


@pytest.mark.parametrize(
    "path",
    [
        "/ca/" + "9" * 5000 + ".crt",
        "/crl/" + "9" * 5000 + ".crl",
        "/ca/links/" + "1" * 4400 + "-2/old-with-new.crt",
        "/ca/%C2%B2.crt",
    ],
)
def test_generation_numbers_beyond_any_generation_are_not_found(server, path):
    status, media, _ = get(server.http + path)
    assert (status, media) == (404, "application/problem+json")


def raw_exchange(server, data: bytes) -> bytes:
    """Send ``data`` as it is over a fresh connection; the server's whole answer."""
    port = urllib.parse.urlsplit(server.http).port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


# name: (bytes, log lines). aiohttp treats a bad method in a connection's first bytes as
# non-HTTP noise (TLS to the plain port, scanners) and logs it at DEBUG only: no line at INFO.
MALFORMED = {
    "request line": (b"GET /\x01\x02 HTTP/1.1\r\nHost: x\r\n\r\n", 1),
    "header": (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 1),
    "header line too long": (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 1),
    "content-length": (b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 1),
    "chunk size": (
        b"POST /ocsp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/ocsp-request\r\n\r\nzz\r\n\r\n",
        1,
    ),
    "version": (b"GET / HTTP/9.9x\r\nHost: x\r\n\r\n", 1),
    "escape sequences": (b"GET / HTTP/1.1\r\nHost: x\r\n\x1b[31m\r\n\r\n", 1),
    "method": (b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n", 0),
}


@pytest.mark.parametrize(("data", "count"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_http_is_a_400_and_one_log_line(server, data, count):
    log = server.home / "server.log"
    before = log.read_text(errors="replace")
    answer = raw_exchange(server, data)
    assert answer.startswith(b"HTTP/1.0 400 ") or answer.startswith(b"HTTP/1.1 400 "), answer
    added = log.read_text(errors="replace")[len(before) :]
    assert "Traceback" not in added, added
    lines = [line for line in added.splitlines() if line.strip()]
    assert len(lines) == count, added
    for line in lines:
        assert "WARNING aiohttp.server malformed HTTP request from 127.0.0.1: " in line, line
        assert all(32 <= ord(ch) < 127 for ch in line), line


def test_malformed_http_over_tls_is_one_log_line_too(server):
    log = server.home / "server.log"
    before = log.read_text(errors="replace")
    port = urllib.parse.urlsplit(server.https).port
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        server.tls().wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 400 "), answer
    added = log.read_text(errors="replace")[len(before) :]
    assert "Traceback" not in added, added
    errors = [line for line in added.splitlines() if "aiohttp.server" in line]
    assert len(errors) == 1 and "WARNING" in errors[0] and "malformed HTTP" in errors[0], added

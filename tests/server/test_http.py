"""The server as an operator runs it: `jitsuin --home HOME serve` in its own process, on free
loopback ports, checked with urllib, curl and openssl."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jitsuin.ca.generations import issuance_cutoff

STARTUP_SECONDS = 30


def console_script() -> str:
    found = shutil.which("jitsuin") or str(Path(sys.executable).parent / "jitsuin")
    assert Path(found).is_file(), "the jitsuin console script is not installed"
    return found


@dataclass
class Response:
    status: int
    content_type: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def fetch(url: str, method: str = "GET", context: ssl.SSLContext | None = None) -> Response:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return Response(
                response.status,
                response.headers.get_content_type(),
                dict(response.headers),
                response.read(),
            )
    except urllib.error.HTTPError as error:
        with error:
            return Response(
                error.code, error.headers.get_content_type(), dict(error.headers), error.read()
            )


class Server:
    """One `jitsuin serve` process; output goes to files so no pipe can fill up."""

    def __init__(self, home: Path, http_port: int, https_port: int) -> None:
        self.home = home
        self.http = f"http://127.0.0.1:{http_port}"
        self.https_port = https_port
        self.stdout_path = home.parent / f"{home.name}.stdout"
        self.stderr_path = home.parent / f"{home.name}.stderr"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("JITSUIN_CONFIG", None)
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                [console_script(), "--home", str(self.home), "serve"],
                stdout=out,
                stderr=err,
                env=env,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(OSError):
                if fetch(f"{self.http}/health").status == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"the server did not answer /health in {STARTUP_SECONDS} s:\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it will not stop; the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        return self.process.returncode

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory, write_home, free_port):
    home = tmp_path_factory.mktemp("http") / "home"
    http_port, https_port = free_port(), free_port()
    # The default configuration as written by `jitsuin init`; only the ports differ.
    write_home(home, http_port=http_port, https_port=https_port)
    running = Server(home, http_port, https_port).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ca(server) -> x509.Certificate:
    response = fetch(f"{server.http}/ca.crt")
    assert response.status == 200
    return x509.load_der_x509_certificate(response.body)


@pytest.fixture(scope="module")
def ca_pem_file(server, ca) -> Path:
    path = server.home.parent / "ca.pem"
    path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return path


# -- publication over plain HTTP ------------------------------------------------------------------
def test_ca_certificate_der_matches_health(server, ca):
    response = fetch(f"{server.http}/ca.crt")
    assert response.content_type == "application/pkix-cert"  # RFC 2585 §4.1
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-Id"]
    health = fetch(f"{server.http}/health").json()
    assert health["ca"]["sha256"] == ca.fingerprint(hashes.SHA256()).hex()
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is True
    assert ca.subject == ca.issuer


def test_every_form_of_the_ca_certificate_is_the_same(server, ca):
    der = ca.public_bytes(serialization.Encoding.DER)
    pem = fetch(f"{server.http}/ca.pem")
    assert pem.status == 200
    assert pem.content_type == "application/x-pem-file"
    assert pem.body.startswith(b"-----BEGIN CERTIFICATE-----")
    assert x509.load_pem_x509_certificate(pem.body) == ca

    numbered = fetch(f"{server.http}/ca/1.crt")
    assert (numbered.status, numbered.content_type, numbered.body) == (
        200,
        "application/pkix-cert",
        der,
    )
    assert x509.load_pem_x509_certificate(fetch(f"{server.http}/ca/1.pem").body) == ca

    chain = fetch(f"{server.http}/chain.pem")
    assert chain.status == 200
    assert x509.load_pem_x509_certificates(chain.body) == [ca]


@pytest.mark.parametrize("path", ["/ca/9.crt", "/ca/9.pem", "/ca/0.crt"])
def test_an_unknown_generation_is_a_problem_document(server, path):
    response = fetch(f"{server.http}{path}")
    assert response.status == 404
    assert response.content_type == "application/problem+json"  # RFC 9457 §3
    problem = response.json()
    generation = path.split("/")[-1].split(".")[0]
    assert problem == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": f"there is no CA generation {generation}",
    }


def test_unknown_paths_and_methods_are_problem_documents(server):
    response = fetch(f"{server.http}/no/such/thing")
    assert (response.status, response.content_type) == (404, "application/problem+json")
    assert response.json()["status"] == 404

    response = fetch(f"{server.http}/ca.crt", method="POST")
    assert (response.status, response.content_type) == (405, "application/problem+json")
    assert response.json()["title"] == "Method Not Allowed"
    assert "GET" in response.headers["Allow"]


def test_health_reports_the_ca(server, ca):
    response = fetch(f"{server.http}/health")
    assert response.content_type == "application/json"
    health = response.json()
    assert health["status"] == "ok"
    now = dt.datetime.now(dt.UTC)
    assert abs(dt.datetime.fromisoformat(health["time"]) - now) < dt.timedelta(seconds=30)
    assert health["ca"] == {
        "generation": 1,
        "notBefore": ca.not_valid_before_utc.isoformat(),
        "notAfter": ca.not_valid_after_utc.isoformat(),
        "issuanceCutoff": issuance_cutoff(ca, dt.timedelta(days=30)).isoformat(),
        "sha256": ca.fingerprint(hashes.SHA256()).hex(),
    }


def test_the_index_lists_the_published_urls(server, ca):
    index = fetch(f"{server.http}/").json()
    assert index["caCertificate"] == f"{server.http}/ca.crt"
    assert index["caCertificatePem"] == f"{server.http}/ca.pem"
    assert index["health"] == f"{server.http}/health"
    assert index["generations"] == [
        {
            "number": 1,
            "certificate": f"{server.http}/ca/1.crt",
            "sha256": ca.fingerprint(hashes.SHA256()).hex(),
        }
    ]


def test_startup_output_names_the_ca_certificate_url(server, ca):
    out = server.stdout_path.read_text()
    assert f"CA certificate: {server.http}/ca.crt (DER)  {server.http}/ca.pem (PEM)" in out
    assert f"health: {server.http}/health" in out
    assert f"HTTPS (enrollment): https://localhost:{server.https_port}/" in out
    assert ca.fingerprint(hashes.SHA256()).hex(":").upper() in out


# -- the HTTPS listener ---------------------------------------------------------------------------
def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_https_verifies_with_the_ca_certificate(server, ca, ca_pem_file, host):
    result = curl("--cacert", str(ca_pem_file), f"https://{host}:{server.https_port}/health")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ca"]["sha256"] == ca.fingerprint(hashes.SHA256()).hex()

    # Trusting another CA instead, the same request fails verification (curl exit 60).
    unrelated = server.home.parent / f"unrelated-{host}.pem"
    unrelated.write_bytes(_other_ca_pem())
    result = curl("--cacert", str(unrelated), f"https://{host}:{server.https_port}/health")
    assert result.returncode == 60, (result.returncode, result.stderr)


def _other_ca_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unrelated CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_the_tls_certificate_is_a_server_certificate_from_the_ca(server, ca, ca_pem_file):
    context = ssl.create_default_context(cafile=str(ca_pem_file))
    raw = socket.create_connection(("127.0.0.1", server.https_port), timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)

    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is False
    # It is the file the server keeps in its home (so a restart can reuse it).
    on_disk = x509.load_pem_x509_certificate((server.home / "tls" / "server.pem").read_bytes())
    assert on_disk == cert


def s_client(port: int, *protocol: str) -> subprocess.CompletedProcess:
    # SECLEVEL=0: OpenSSL 3 refuses TLS 1.0/1.1 itself at the default level; this lets the
    # client offer it, so a refusal comes from the server.
    return subprocess.run(
        [
            *("openssl", "s_client", "-connect", f"127.0.0.1:{port}", *protocol),
            *("-cipher", "DEFAULT@SECLEVEL=0", "-servername", "localhost"),
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_tls_below_1_2_is_refused(server, tmp_path, free_port):
    refused = s_client(server.https_port, "-tls1_1")
    assert refused.returncode != 0
    assert "New, (NONE), Cipher is (NONE)" in refused.stdout  # no session was established

    accepted = s_client(server.https_port, "-tls1_2")
    assert accepted.returncode == 0, accepted.stderr
    assert "New, TLSv1.2, Cipher is " in accepted.stdout

    # Control: the same client does speak TLS 1.1 to a server that allows it, so the refusal
    # above is the jitsuin server's doing.
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-subj", "/CN=localhost", "-days", "1"),
            *("-keyout", str(key_file), "-out", str(cert_file)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    port = free_port()
    legacy = subprocess.Popen(
        [
            *("openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-www", "-tls1_1"),
            *("-cipher", "DEFAULT@SECLEVEL=0", "-key", str(key_file), "-cert", str(cert_file)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.05)
        control = s_client(port, "-tls1_1")
        assert control.returncode == 0, control.stdout + control.stderr
        assert "Cipher is (NONE)" not in control.stdout
        assert "Protocol  : TLSv1.1" in control.stdout
    finally:
        legacy.kill()
        legacy.wait(timeout=10)


# -- lifecycle ------------------------------------------------------------------------------------
def test_sigterm_exits_0_and_a_restart_keeps_the_ca_and_the_tls_certificate(
    tmp_path, write_home, free_port, snapshot
):
    home = tmp_path / "home"
    http_port, https_port = free_port(), free_port()
    write_home(home, http_port=http_port, https_port=https_port)

    first = Server(home, http_port, https_port).start()
    try:
        fingerprint = fetch(f"{first.http}/health").json()["ca"]["sha256"]
        tls_file = home / "tls" / "server.pem"
        tls_bytes, tls_mtime = tls_file.read_bytes(), tls_file.stat().st_mtime_ns
        key_bytes = (home / "keys" / "ca-1.key.pem").read_bytes()
    finally:
        code = first.stop()
    assert code == 0, first.output()
    assert "Traceback" not in first.output()

    second = Server(home, http_port, https_port).start()
    try:
        assert fetch(f"{second.http}/health").json()["ca"]["sha256"] == fingerprint
        assert fetch(f"{second.http}/ca.crt").status == 200
    finally:
        code = second.stop()
    assert code == 0, second.output()

    assert tls_file.read_bytes() == tls_bytes
    assert tls_file.stat().st_mtime_ns == tls_mtime
    assert (home / "keys" / "ca-1.key.pem").read_bytes() == key_bytes
    state = snapshot(home / "jitsuin.db")
    assert len(state.generations) == 1
    assert state.actions == ["ca.generation.create", "certificate.issue"]  # one TLS certificate
    assert state.chain_length == 2


def test_rollover_warning_on_health_log_and_ca_show(tmp_path, write_home, free_port):
    """SEED-R15: from ``rollover_warning_days`` before the issuance cut-off the server
    warns at start (log), on /health and in `jitsuin ca show`. A fresh CA's cut-off is about
    8.8 years away, so a 4,000-day warning period is already running."""
    home = tmp_path / "home"
    http_port, https_port = free_port(), free_port()
    config = write_home(home, http_port=http_port, https_port=https_port)
    config.write_text(
        config.read_text().replace("[ca]\n", "[ca]\nrollover_warning_days = 4000\n", 1)
    )
    running = Server(home, http_port, https_port).start()
    try:
        health = fetch(f"{running.http}/health").json()
        shown = subprocess.run(
            [console_script(), "--home", str(home), "ca", "show"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        running.stop()
    assert health["status"] == "warning"
    (warning,) = health["warnings"]
    assert "generation 1 stops issuing at" in warning and "jitsuin ca rollover" in warning
    assert f"WARNING: {warning}" in running.output()
    assert shown.returncode == 0, shown.stderr
    assert "WARNING: generation 1 stops issuing at" in shown.stderr

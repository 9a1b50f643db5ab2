"""A running jitsuin (a real process on loopback) with ACME, a real SMTP server for the PIN
e-mails, a small authoritative DNS server the validation authority is pointed at, and an ACME
client of our own (josepy-based JWS from jitsuin.protocol.jose + requests) that can send both the
right and the wrong thing.

Adapted from tests/server/est/conftest.py (with --import-mode=importlib a conftest cannot import
another); the ACME-specific parts are the DNS server, the http-01 responder and the client.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import requests
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jitsuin.ca.keys import KeyType
from jitsuin.protocol.jose import b64u_decode, b64u_encode, jwk_of, sign_flattened
from jitsuin.server import config as configuration

ZONE = "jitsuin.test"
TERMS = "https://localhost/terms-of-service"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- SMTP -----------------------------------------------------------------------------------------
class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"

    def mail_for(self, enrollment_id: str, after: int = 0, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.messages[after:]):
                body = message.get_body().get_content()  # type: ignore[union-attr]
                if enrollment_id in body:
                    return body
            time.sleep(0.1)
        raise AssertionError(f"no PIN e-mail for {enrollment_id} within {timeout} s")


# -- DNS ------------------------------------------------------------------------------------------
class DNSServer:
    """An authoritative server for ZONE on UDP loopback: every name under it has A 127.0.0.1
    unless ``records`` says otherwise; ``records[(name, type)]`` = list of rdata texts."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[tuple[str, str]] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(wire), peer)
            except Exception:  # noqa: S112 (a bad query is dropped, as a server would)
                continue

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text().rstrip(".").lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            values = self.records.get((name, rdtype))
            if values is None and rdtype == "A" and (name == ZONE or name.endswith("." + ZONE)):
                values = ["127.0.0.1"]
            if values:
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, "IN", rdtype, *values)
                )
            elif not (name == ZONE or name.endswith("." + ZONE) or name == "test"):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def stop(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
        self.sock.close()


# -- http-01 responder ----------------------------------------------------------------------------
class Http01:
    """Serves /.well-known/acme-challenge/<token> on 127.0.0.1:port while in a with block."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.tokens: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []  # (path, Host)

    def __enter__(self) -> Http01:
        tokens, seen = self.tokens, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Host", "")))
                token = self.path.rsplit("/", 1)[-1]
                body = tokens.get(token)
                if body is None or not self.path.startswith("/.well-known/acme-challenge/"):
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=2)


# -- the server process ---------------------------------------------------------------------------
def jitsuin_cli() -> str:
    path = Path(sys.executable).parent / "jitsuin"
    found = str(path) if path.exists() else shutil.which("jitsuin")
    assert found, "the jitsuin console script is not installed (./scripts/test installs it)"
    return found


@dataclass
class Server:
    home: Path
    http: str
    https: str
    ca_pem: Path
    inbox: Inbox
    dns: DNSServer
    http01_port: int
    alpn_port: int
    process: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def acme(self) -> str:
        return self.https + "/acme"

    @property
    def directory_url(self) -> str:
        return self.acme + "/directory"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def start(self) -> None:
        log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [jitsuin_cli(), "--home", str(self.home), "serve"], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{self.http}/ca.pem", timeout=1) as reply:
                    self.ca_pem.write_bytes(reply.read())
                with urllib.request.urlopen(self.directory_url, context=self.tls(), timeout=1):
                    return
            except OSError:
                assert self.process.poll() is None, (self.home / "server.log").read_text()
                time.sleep(0.1)
        raise AssertionError("server did not start: " + (self.home / "server.log").read_text())

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [jitsuin_cli(), "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    def api(
        self, method: str, path: str, operator: str | None, body: Any = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.https + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if operator:
            request.add_header("Authorization", f"Bearer {self.tokens[operator]}")
        try:
            with urllib.request.urlopen(request, context=self.tls(), timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def ok(self, method: str, path: str, operator: str | None, body: Any = None) -> Any:
        status, reply = self.api(method, path, operator, body)
        assert status in (200, 201), (method, path, status, reply)
        return reply

    def eab_key(self, allowed: list[str] | None = None, **policy: Any) -> tuple[str, str]:
        """An operator-made EAB key for tls-server: (kid, base64url MAC key)."""
        made = self.ok("POST", "/ra/acme/eab-keys", "bob", {"allowed": allowed or [ZONE], **policy})
        return made["kid"], made["hmacKey"]

    def application(self, profile: str = "general", *, approve: bool = True) -> dict[str, str]:
        """Seed steps 1-9 for a new applicant; once approved, the PIN and the EAB key from the
        e-mail the server sent (FLOW.md: both in one mail)."""
        n = len(self.inbox.messages)
        unique = os.urandom(4).hex()
        group, number = (
            ("member", f"AB-{unique.upper()}")
            if profile == "general"
            else ("document-information-manager", str(int(unique, 16) % 10**8).zfill(8))
        )
        created = self.ok(
            "POST",
            "/ra/applications",
            "alice",
            {
                "profile": profile,
                "familyName": "Yamada",
                "givenName": "Hanako",
                "email": f"hanako.{unique}@example.com",
                "qualificationGroup": group,
                "qualificationNumber": number,
                "postalAddress": "1-2-3 Kasumigaseki, Tokyo",
                "dateOfBirth": "1985-04-01",
                "billing": {"addressee": "self"},
            },
        )
        app_id = created["id"]
        today = time.strftime("%Y-%m-%d", time.gmtime())
        self.ok(
            "POST",
            f"/ra/applications/{app_id}/review",
            "alice",
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
        sent = self.ok(
            "POST", f"/ra/applications/{app_id}/inquiry", "alice", {"trackingNumber": "RD1JP"}
        )
        invoice = sent["application"]["invoice"]
        self.ok(
            "POST",
            f"/ra/applications/{app_id}/letter",
            "alice",
            {"signed": True, "sealed": True, "selfInking": False},
        )
        self.ok(
            "POST",
            f"/ra/applications/{app_id}/payment",
            "alice",
            {"invoiceNumber": invoice["number"], "amount": invoice["amount"]},
        )
        self.ok(
            "POST",
            "/applicant/online-input",
            None,
            {
                "enrollmentId": sent["enrollmentId"],
                "accessCode": sent["accessCode"],
                "confirm": True,
            },
        )
        result = {"id": app_id, "enrollment_id": sent["enrollmentId"], "email": created["email"]}
        if approve:
            self.ok("POST", f"/ra/applications/{app_id}/approve", "bob")
            result.update(self.secrets_for(sent["enrollmentId"], after=n))
        return result

    def secrets_for(self, enrollment_id: str, after: int = 0) -> dict[str, str]:
        body = self.inbox.mail_for(enrollment_id, after=after)
        pin = re.search(r"Download PIN: (\d{8})", body)
        mac = re.search(r"HMAC key = ([A-Za-z0-9_-]+)", body)
        kid = re.search(r"External Account Binding kid = ([A-Z0-9-]+)", body)
        assert pin and mac and kid, body
        return {"pin": pin.group(1), "hmac": mac.group(1), "kid": kid.group(1)}


def _write_config(server_home: Path, ports: dict[str, int], dns_port: int, extra: str = "") -> None:
    path = configuration.write_default(
        server_home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT
    )
    text = (
        path.read_text()
        .replace("127.0.0.1:8080", f"127.0.0.1:{ports['http']}")
        .replace("127.0.0.1:8443", f"127.0.0.1:{ports['https']}")
        .replace("smtp_port = 25", f"smtp_port = {ports['smtp']}\npoll_seconds = 0.2")
        .replace("invoice_amount = 11000", "invoice_amount = 11000\nretry_after_seconds = 2")
    )
    text += f"""
[est]
reenroll_approval = ["document-manager"]

[acme]
resolver = "127.0.0.1:{dns_port}"
http01_port = {ports["http01"]}
tlsalpn01_port = {ports["alpn"]}
caa_identities = ["{ZONE}"]
terms_of_service = "{TERMS}"
website = "https://localhost/"
orders_page_size = 3
retry_after_seconds = 1
orders_per_hour = 40
{extra}
"""
    path.write_text(text)


def _server(
    tmp_path_factory: pytest.TempPathFactory, name: str, extra: str = ""
) -> Iterator[Server]:
    inbox = Inbox()
    ports = {k: free_port() for k in ("smtp", "http", "https", "http01", "alpn")}
    controller = Controller(inbox, hostname="127.0.0.1", port=ports["smtp"])
    controller.start()
    dns_server = DNSServer()
    home = tmp_path_factory.mktemp(name)
    _write_config(home, ports, dns_server.port, extra)
    running = Server(
        home=home,
        http=f"http://127.0.0.1:{ports['http']}",
        https=f"https://localhost:{ports['https']}",
        ca_pem=home / "ca.pem",
        inbox=inbox,
        dns=dns_server,
        http01_port=ports["http01"],
        alpn_port=ports["alpn"],
    )
    try:
        running.start()
        for operator, role in (("alice", "reviewer"), ("bob", "approver"), ("root", "admin")):
            out = running.cli("ra", "operator-add", operator, "--role", role)
            running.tokens[operator] = out.strip().splitlines()[-1]
        yield running
    finally:
        running.stop()
        controller.stop()
        dns_server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server(tmp_path_factory, "acme-home")


@pytest.fixture(scope="session")
def test_mode_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same, with Pebble-like test knobs on."""
    extra = (
        "\n[acme.test]\nreject_nonce_share = 0.5\nvalidation_always_succeeds = true\n"
        "validation_delay_seconds = 1.5\n"
    )
    yield from _server(tmp_path_factory, "acme-test-mode", extra)


# -- the client -----------------------------------------------------------------------------------
def new_key(kind: str = "ES256") -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if kind == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


def make_csr(
    key: Any,
    dns: list[str] = (),
    emails: list[str] = (),
    ips: list[str] = (),
    cn: str | None = None,
) -> bytes:
    import ipaddress

    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.RFC822Name(e) for e in emails]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


class Client:
    """An ACME client that does each step by hand, so tests can break any of them."""

    def __init__(self, server: Server, key: Any = None, alg: str = "ES256") -> None:
        self.server = server
        self.alg = alg
        self.key = key if key is not None else new_key(alg)
        self.kid: str | None = None
        self.retry_bad_nonce = False  # for the test-mode server, which rejects some on purpose
        self.bad_nonces = 0
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.session.verify = str(server.ca_pem)
        self.directory = self.session.get(server.directory_url, timeout=30).json()

    def url(self, name: str) -> str:
        return self.directory[name]

    @property
    def jwk(self) -> dict[str, str]:
        return jwk_of(self.key.public_key()).to_json()

    @property
    def thumbprint(self) -> str:
        return jwk_of(self.key.public_key()).thumbprint()

    def nonce(self) -> str:
        return self.session.head(self.url("newNonce"), timeout=30).headers["Replay-Nonce"]

    def jws(
        self,
        url: str,
        payload: Any = None,
        *,
        use_jwk: bool = False,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        key: Any = None,
        alg: str | None = None,
    ) -> dict[str, str]:
        protected: dict[str, Any] = {"nonce": self.nonce(), "url": url}
        if use_jwk:
            signer = key if key is not None else self.key
            protected["jwk"] = jwk_of(signer.public_key()).to_json()
        else:
            protected["kid"] = self.kid
        protected.update(header or {})
        for name in drop:
            protected.pop(name, None)
        body = payload if isinstance(payload, bytes) or payload is None else json.dumps(payload)
        if isinstance(body, str):
            body = body.encode()
        return sign_flattened(
            protected, body, key if key is not None else self.key, alg or self.alg
        )

    def post(
        self,
        url: str,
        payload: Any = None,
        *,
        raw: Any = None,
        content_type: str = "application/jose+json",
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> requests.Response:
        for _ in range(20 if self.retry_bad_nonce and raw is None else 1):
            body = raw if raw is not None else self.jws(url, payload, **kw)
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            reply = self.session.post(
                url,
                data=data,
                headers={"Content-Type": content_type, **(headers or {})},
                timeout=60,
            )
            if not (reply.status_code == 400 and "badNonce" in reply.text):
                break
            self.bad_nonces += 1
        return reply

    def eab(self, kid: str, mac_b64: str, alg: str = "HS256", url: str | None = None) -> dict:
        return sign_flattened(
            {"kid": kid, "url": url or self.url("newAccount")},
            json.dumps(self.jwk).encode(),
            b64u_decode(mac_b64),
            alg,
        )

    def register(
        self, kid: str, mac_b64: str, *, contact: list[str] | None = None, alg: str = "HS256"
    ) -> requests.Response:
        payload: dict[str, Any] = {
            "termsOfServiceAgreed": True,
            "externalAccountBinding": self.eab(kid, mac_b64, alg),
        }
        if contact is not None:
            payload["contact"] = contact
        reply = self.post(self.url("newAccount"), payload, use_jwk=True)
        if reply.status_code in (200, 201):
            self.kid = reply.headers["Location"]
        return reply

    def new_order(self, identifiers: list[dict[str, str]], **extra: Any) -> requests.Response:
        return self.post(self.url("newOrder"), {"identifiers": identifiers, **extra})

    def get(self, url: str) -> requests.Response:
        return self.post(url, None)

    def wait(self, url: str, done: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(url).json()
            if body.get("status") in done or time.monotonic() > deadline:
                return body
            time.sleep(0.3)

    def finalize(self, order: dict[str, Any], csr_der: bytes) -> requests.Response:
        return self.post(order["finalize"], {"csr": b64u_encode(csr_der)})

    def key_authorization(self, token: str) -> str:
        return f"{token}.{self.thumbprint}"


def dns_ids(*names: str) -> list[dict[str, str]]:
    return [{"type": "dns", "value": n} for n in names]


def links(response: requests.Response) -> list[tuple[str, str]]:
    """(url, rel) of every Link header value."""
    found = []
    for value in response.raw.headers.get_all("Link") or []:
        for part in value.split(","):
            match = re.match(r'\s*<([^>]*)>\s*;\s*rel="?([^";]+)"?', part)
            if match:
                found.append((match.group(1), match.group(2)))
    return found


@pytest.fixture(scope="session")
def helpers() -> Any:
    """Functions for the test modules (a conftest cannot be imported with importlib mode)."""

    class H:
        Client = Client
        Http01 = Http01
        new_key = staticmethod(new_key)
        make_csr = staticmethod(make_csr)
        dns_ids = staticmethod(dns_ids)
        links = staticmethod(links)
        free_port = staticmethod(free_port)
        ZONE = ZONE
        TERMS = TERMS

    return H

"""A running jitsuin (a real process on loopback) with ACME, a real SMTP server for the PIN
e-mails (the ``live_jitsuin`` machinery of tests/conftest.py), a small authoritative DNS server the
validation authority is pointed at, and an ACME client of our own (josepy-based JWS from
jitsuin.protocol.jose + requests) that can send both the right and the wrong thing.

The ACME-specific parts are here: the DNS server, the http-01 responder and the client.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jitsuin.protocol.jose import b64u_decode, b64u_encode, jwk_of, sign_flattened

ZONE = "jitsuin.test"
TERMS = "https://localhost/terms-of-service"


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
    """Serves /.well-known/acme-challenge/<token> on 127.0.0.1:port while in a with block;
    ``redirects[path]`` = a Location answered with 302 instead (checked first), and
    ``bodies[path]`` = a body served at any other path."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.tokens: dict[str, str] = {}
        self.redirects: dict[str, str] = {}
        self.bodies: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []  # (path, Host)

    def __enter__(self) -> Http01:
        tokens, seen, redirects, bodies = self.tokens, self.requests, self.redirects, self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Host", "")))
                if self.path in redirects:
                    self.send_response(302)
                    self.send_header("Location", redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path in bodies:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(bodies[self.path].encode())
                    return
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
class Server:
    """The shared live server (tests/conftest.py ``LiveServer``: ``home``, ``http``, ``https``,
    ``ca_pem``, ``inbox``, ``api``/``ok``, ``application``, ``restart``, ``cli``...) with the
    ACME parts: the DNS server and the ports the validation authority connects to."""

    def __init__(self, live: Any, dns: DNSServer, http01_port: int, alpn_port: int) -> None:
        self.live = live
        self.dns = dns
        self.http01_port = http01_port
        self.alpn_port = alpn_port

    def __getattr__(self, name: str) -> Any:
        return getattr(self.live, name)

    @property
    def acme(self) -> str:
        return self.https + "/acme"

    @property
    def directory_url(self) -> str:
        return self.acme + "/directory"

    def eab_key(self, allowed: list[str] | None = None, **policy: Any) -> tuple[str, str]:
        """An operator-made EAB key for tls-server: (kid, base64url MAC key)."""
        made = self.ok("POST", "/ra/acme/eab-keys", "bob", {"allowed": allowed or [ZONE], **policy})
        return made["kid"], made["hmacKey"]


ACME_CONFIG = """
[acme]
resolver = "127.0.0.1:{dns_port}"
http01_port = {http01_port}
tlsalpn01_port = {alpn_port}
caa_identities = ["{ZONE}"]
terms_of_service = "{TERMS}"
website = "https://localhost/"
orders_page_size = 3
retry_after_seconds = 1
orders_per_hour = 40
{extra}
"""


def _server(
    live_jitsuin: Any,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    extra: str = "",
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    dns_server = DNSServer()
    http01_port = live_jitsuin.lasting_port()
    alpn_port = live_jitsuin.lasting_port(http01_port)
    acme = ACME_CONFIG.format(
        dns_port=dns_server.port,
        http01_port=http01_port,
        alpn_port=alpn_port,
        ZONE=ZONE,
        TERMS=TERMS,
        extra=extra,
    )
    try:
        with live_jitsuin.server(
            tmp_path_factory.mktemp(name),
            retry_after_seconds=2,
            reenroll_approval=["document-manager"],
            toml=acme,
            ready_path="/acme/directory",
            eab_in_mail=True,
            env=env,
        ) as live:
            yield Server(live, dns_server, http01_port, alpn_port)
    finally:
        dns_server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any) -> Iterator[Server]:
    yield from _server(live_jitsuin, tmp_path_factory, "acme-home")


@pytest.fixture(scope="session")
def test_mode_server(
    tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any
) -> Iterator[Server]:
    """The same, with Pebble-like test knobs on."""
    extra = (
        "challenge_wait_seconds = 0.3\n"  # shorter than the delay: answered "processing"
        "\n[acme.test]\nreject_nonce_share = 0.5\nvalidation_always_succeeds = true\n"
        "validation_delay_seconds = 1.5\n"
    )
    # Test-mode knobs are refused unless the environment allows them (docs/threat-model.md).
    allow = {"JITSUIN_ALLOW_TEST_MODE": "1"}
    yield from _server(live_jitsuin, tmp_path_factory, "acme-test-mode", extra, allow)


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
def helpers(live_jitsuin: Any) -> Any:
    """Functions for the test modules (a conftest cannot be imported with importlib mode)."""

    class H:
        Client = Client
        Http01 = Http01
        new_key = staticmethod(new_key)
        make_csr = staticmethod(make_csr)
        dns_ids = staticmethod(dns_ids)
        links = staticmethod(links)
        free_port = staticmethod(live_jitsuin.free_port)
        ZONE = ZONE
        TERMS = TERMS

    return H

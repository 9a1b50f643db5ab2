"""A long stream of malformed requests against a running jitsuin (``bench/run.py fuzz``).

Every endpoint family is hit, on both listeners: ACME (no account; signed by a stranger with a
hostile protected header; signed by a real account with a hostile payload), EST (bodies, content
types, Basic credentials, labels), the RA API (with real operator tokens of each role and with bad
ones), the applicant API, OCSP GET and POST, the CRL and CA certificate paths, health, the browser
pages, and a small share of raw bytes on sockets (HTTP that is not HTTP, over TCP and TLS).

Requests are cheap to make: each is a pre-built valid request picked at random and changed in one
cheap way (a byte flipped, the body cut, a member replaced by a hostile value, a pre-built hostile
body, a hostile path segment, query, content type or credential). The client is aiohttp with
keep-alive and many concurrent connections, so one client core drives the server's core.

Printed: requests sent, answers by status, 5xx (with samples), refusals not in the protocol's
own format (with samples), client-side errors, server and client CPU per request, the server's
RSS before, at 10 % and at the end (and its peak, sampled every second), whether the audit chain
verifies once the load is over, and what the server logged as tracebacks.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import random
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yarl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp

from jitsuin.protocol.jose import b64u_decode, b64u_encode, jwk_of, sign_flattened

PROBLEM = "application/problem+json"


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


UNICODE_DIGITS = ["²", "٣", "५", "１２", "𝟗", "Ⅻ", "〇", "¹⁰"]
EXTREME_DATES = [
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2024-02-30",
    "+10000-01-01",
    "２０２４-０１-０１",
]
# Python values that JSON can carry, in the wrong place or of the wrong size.
HOSTILE_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    10**18,
    10**19,
    -(10**30),
    1.5,
    1e308,
    "",
    " ",
    "x" * 300,
    "\u0000",
    "\ud800",
    "\u202e",
    "../../etc/passwd",
    "'; DROP TABLE x; --",
    "<script>",
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": {"c": {}}}},
    ["ES256"],
    {"alg": "ES256"},
    *UNICODE_DIGITS,
    *EXTREME_DATES,
    "mailto:a@b",
    "a" * 70_000,
]
# Whole bodies a JSON reader must survive.
HOSTILE_BODIES: list[bytes] = [
    *(_nested(n, k) for n in (11, 100, 1_000, 10_000, 30_000) for k in ("array", "object")),
    b"7" * 4_301,
    b'{"a":' + b"9" * 10_000 + b"}",
    b'{"a":1e999999}',
    b"NaN",
    b'{"a":-Infinity}',
    b'{"a":1,"a":2}',
    b'"\\ud800"',
    b'{"a":"\\u0000"}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00",
    b"\x80\x81\x82",
    json.dumps({"a": "x"}).encode("utf-16"),
    b"{}trailing",
    b"",
    b"null",
    b"[]",
    b"{" * 5,
    b'{"' + b"k" * 70_000 + b'":1}',
]
HOSTILE_SEGMENTS = [
    "..",
    "%2e%2e",
    "%00",
    "a%2Fb",
    "9" * 40,
    "-1",
    "0",
    "%ff%fe",
    "%C2%B2",
    "%E2%85%AB",
    "x" * 3000,
    "%25",
    "%",
    "a%20b",
    "%0d%0aX:%20y",
    "%F0%9D%9F%97",
]
HOSTILE_QUERIES = [
    "limit=%C2%B2",
    "limit=9999999999999999999999",
    "offset=-1",
    "after=%D9%A3",
    "limit=",
    "state=%00",
    "status=%ff",
    "lang=%F0%9D%9F%97",
    "lang=" + "x" * 2000,
    "%",
    "&&&=&",
    "a=%zz",
    "cursor=%E2%80%AE",
    "limit=1e3",
    "limit=0x10",
    "limit=%20%207",
]
CONTENT_TYPES = [
    "application/json",
    "application/jose+json",
    "application/pkcs10",
    "application/ocsp-request",
    "text/plain",
    "application/json; charset=latin-1",
    "multipart/form-data; boundary=x",
    "",
    "application/x-www-form-urlencoded",
    "*/*",
]
BEARERS = [
    "Bearer",
    "Bearer ",
    "Bearer x",
    "bearer " + "a" * 5000,
    "Basic Ym9iOmJvYg==",
    "Bearer ÿþ",
    "Token x",
    "Bearer  \t",
]
BASICS = [
    "Basic",
    "Basic ",
    "Basic !!!",
    "Basic " + "A" * 5000,
    "Digest x",
    "Basic ÿ",
    "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
    "Basic " + base64.b64encode(b":").decode(),
    "Basic " + base64.b64encode(b"no-colon").decode(),
]


def _raw_garbage() -> list[bytes]:
    """Bytes for a socket: not HTTP, or HTTP that breaks the rules."""
    host = b"Host: localhost\r\n"
    return [
        b"\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\n" + host + b"\r\n",
        b"GET / HTTP/1.1\r\n" + host + b"X: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + host + b"".join(b"X%d: y\r\n" % i for i in range(200)) + b"\r\n",
        b"POST /ocsp HTTP/1.1\r\n" + host + b"Content-Type: application/ocsp-request\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        b"POST /applicant/status HTTP/1.1\r\n" + host + b"Content-Length: -1\r\n\r\n",
        b"POST /applicant/status HTTP/1.1\r\n" + host + b"Content-Length: 5\r\n"
        b"Content-Length: 6\r\n\r\nhello",
        b"GET /ra/applications HTTP/1.1\r\n" + host + b"Authorization: Bearer \xff\xfe\r\n\r\n",
        b"GET /ra/applications HTTP/1.1\r\n" + host + b"Authorization: Bearer \xc3\r\n\r\n",
        b"POST /.well-known/est/simpleenroll HTTP/1.1\r\n"
        + host
        + b"Authorization: Basic \xff\xfe\r\nContent-Length: 0\r\n\r\n",
        b"GET / HTT",
        b"GET / HTTP/1.1\r\nHost",
        b"\x16\x03\x01\x00\x05hello",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET http://evil.example/ HTTP/1.1\r\n" + host + b"\r\n",
        b"GET / HTTP/1.1\r\n" + host + b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n",
        b"GET /%ff%fe HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /health HTTP/1.1\r\n Host: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX:\x7f\r\n\r\n",
        bytes(range(256)),
    ]


# -- the target ----------------------------------------------------------------------------------
@dataclass
class Target:
    """A running server and what the fuzz needs from it: tokens, a real application in step 6
    (awaiting online input), an ACME account with its key."""

    http: str
    https: str
    ca_pem: Path
    pid: int
    tokens: dict[str, str]
    app_id: str = ""
    received: list[str] = field(default_factory=list)  # just entered: a review is allowed
    enrollment_id: str = ""
    access_code: str = ""
    invoice: str = ""
    account: str = ""
    acme_key: Any = None
    stranger_key: Any = None
    directory: dict[str, Any] = field(default_factory=dict)

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.https + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, context=self.tls(), timeout=30) as reply:
                return reply.status, reply.headers, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()


def prepare(http: str, https: str, home: Path, pid: int, jitsuin: str) -> Target:
    """Operators of each role (CLI), an application walked to awaiting online input (RA API), an
    ACME EAB key and an account made with it."""
    with urllib.request.urlopen(f"{http}/ca.pem", timeout=10) as reply:
        (home / "ca.pem").write_bytes(reply.read())
    tokens = {}
    for name, role in (
        ("fuzz-admin", "admin"),
        ("fuzz-reviewer", "reviewer"),
        ("fuzz-approver", "approver"),
    ):
        out = subprocess.run(
            [jitsuin, "--home", str(home), "ra", "operator-add", name, "--role", role],
            capture_output=True,
            text=True,
            check=True,
        )
        tokens[role] = out.stdout.strip().splitlines()[-1]
    target = Target(http, https, home / "ca.pem", pid, tokens)
    reviewer = tokens["reviewer"]
    status, _, app = target.call("POST", "/ra/applications", APPLICATION, reviewer)
    assert status == 201, app
    target.app_id = app["id"]
    for _ in range(3):
        status, _, entered = target.call("POST", "/ra/applications", APPLICATION, reviewer)
        assert status == 201, entered
        target.received.append(entered["id"])
    for step, body in (("review", review_today()), ("inquiry", {"trackingNumber": "RD1JP"})):
        status, _, reply = target.call(
            "POST", f"/ra/applications/{target.app_id}/{step}", body, reviewer
        )
        assert status == 200, reply
    target.enrollment_id, target.access_code = reply["enrollmentId"], reply["accessCode"]
    invoice = reply["application"]["invoice"]
    target.invoice = invoice["number"]
    for step, body in (
        ("letter", {"signed": True, "sealed": True, "selfInking": False}),
        ("payment", {"invoiceNumber": invoice["number"], "amount": invoice["amount"]}),
    ):
        status, _, reply = target.call(
            "POST", f"/ra/applications/{target.app_id}/{step}", body, reviewer
        )
        assert status == 200, reply
    # ACME: an EAB key and an account.
    status, _, made = target.call(
        "POST", "/ra/acme/eab-keys", {"allowed": ["example.com"]}, tokens["approver"]
    )
    assert status == 201, made
    with urllib.request.urlopen(target.https + "/acme/directory", context=target.tls()) as reply:
        target.directory = json.loads(reply.read())
    target.acme_key = ec.generate_private_key(ec.SECP256R1())
    target.stranger_key = ec.generate_private_key(ec.SECP256R1())
    jwk = jwk_of(target.acme_key.public_key()).to_json()
    eab = sign_flattened(
        {"kid": made["kid"], "url": target.directory["newAccount"]},
        json.dumps(jwk).encode(),
        b64u_decode(made["hmacKey"]),
        "HS256",
    )
    head = urllib.request.Request(target.https + "/acme/new-nonce", method="HEAD")
    with urllib.request.urlopen(head, context=target.tls()) as reply:
        nonce = reply.headers["Replay-Nonce"]
    protected = {"alg": "ES256", "nonce": nonce, "url": target.directory["newAccount"], "jwk": jwk}
    payload = {"termsOfServiceAgreed": True, "externalAccountBinding": eab}
    status, headers, reply = target.call(
        "POST",
        "/acme/new-account",
        content_type="application/jose+json",
        raw=signed(protected, json.dumps(payload).encode(), target.acme_key),
    )
    assert status == 201, reply
    target.account = headers["Location"]
    return target


APPLICATION = {
    "profile": "general",
    "familyName": "Yamada",
    "givenName": "Taro",
    "email": "taro.fuzz@example.jp",
    "qualificationGroup": "member",
    "qualificationNumber": "AB-1234",
    "postalAddress": "1-1 Chiyoda, Tokyo",
    "dateOfBirth": "1980-01-02",
    "billing": {"addressee": "self"},
}


def review_today() -> dict[str, Any]:
    """A review that passes: the documents received today, the resident record issued today."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    return {
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
    }


def _es256(key: Any, message: bytes) -> str:
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return b64u_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def signed(protected: Any, payload: bytes, key: Any) -> bytes:
    """A flattened JWS with exactly this protected header (hostile members kept), ES256."""
    header = b64u_encode(json.dumps(protected).encode())
    body = b64u_encode(payload)
    signature = _es256(key, f"{header}.{body}".encode())
    return json.dumps({"protected": header, "payload": body, "signature": signature}).encode()


# -- requests ------------------------------------------------------------------------------------
@dataclass(slots=True)
class Request:
    family: str  # acme, ra, est, ocsp, pki, page (what format a refusal must have)
    method: str
    path: str  # already percent-encoded
    headers: dict[str, str]
    body: bytes | None = None
    plain: bool = False  # the plain-HTTP listener


class Maker:
    """Builds one hostile request at a time from pre-built valid ones and cheap changes."""

    def __init__(self, target: Target, rng: random.Random, families: tuple[str, ...] = ()) -> None:
        self.t = target
        self.rng = rng
        self.nonces: collections.deque[str] = collections.deque(maxlen=2000)
        app, enr = target.app_id, target.enrollment_id
        # Valid JSON bodies (as dicts) per route; a request mutates one member or the bytes.
        self.ra_routes: list[tuple[str, str, dict[str, Any] | None]] = [
            ("POST", "/ra/applications", APPLICATION),
            ("POST", f"/ra/applications/{app}/review", review_today()),
            *(("POST", f"/ra/applications/{i}/review", review_today()) for i in target.received),
            ("POST", f"/ra/applications/{app}/resubmit", {"note": "x"}),
            ("POST", f"/ra/applications/{app}/inquiry", {"trackingNumber": "RD1JP"}),
            (
                "POST",
                f"/ra/applications/{app}/letter",
                {"signed": True, "sealed": True, "selfInking": False},
            ),
            (
                "POST",
                f"/ra/applications/{app}/payment",
                {"invoiceNumber": target.invoice, "amount": 1},
            ),
            ("POST", f"/ra/applications/{app}/reject", {"reason": "x"}),
            ("POST", f"/ra/applications/{app}/reissue-pin", None),
            ("POST", "/ra/applications/APP-NOPE/abandon", {"reason": "x"}),
            ("POST", "/ra/applications/APP-NOPE/revoke", {"reason": "keyCompromise"}),
            ("POST", "/ra/applications/APP-NOPE/approve", None),
            ("POST", "/ra/mail/999999/retry", None),
            ("POST", "/ra/reenrollments/999999/approve", None),
            ("POST", "/ra/reenrollments/1/reject", None),
            ("POST", "/ra/operators/zed-nobody/disable", {}),
            ("POST", "/ra/operators/zed-nobody/enable", {}),
            ("POST", "/ra/operators/zed-nobody/token", {}),
            ("PUT", "/ra/operators/zed-nobody/certificate", {"certificate": "-----BEGIN x"}),
            ("DELETE", "/ra/operators/zed-nobody/certificate", None),
            (
                "POST",
                "/ra/acme/eab-keys",
                {
                    "allowed": ["example.com"],
                    "expiresInDays": 1,
                    "maxCertificates": 1,
                    "certificateLifetimeDays": 1,
                },
            ),
            ("POST", "/ra/acme/eab-keys/kid-nope/disable", None),
            ("GET", "/ra/applications?limit=5&offset=0&state=received", None),
            ("GET", f"/ra/applications/{app}", None),
            ("GET", f"/ra/applications/{app}/disclosure", None),
            ("GET", "/ra/mail?status=sent&limit=5", None),
            ("GET", "/ra/audit?after=0&limit=5", None),
            ("GET", "/ra/audit/verify", None),
            ("GET", "/ra/reenrollments?status=pending", None),
            ("GET", "/ra/acme/eab-keys", None),
            ("GET", "/ra/acme/eab-keys/kid-nope", None),
            ("GET", "/ra/openapi.json", None),
            ("POST", "/applicant/status", {"enrollmentId": enr}),
            (
                "POST",
                "/applicant/online-input",
                {"enrollmentId": enr, "accessCode": "WRONG", "confirm": False},
            ),
        ]
        self.acme_payloads: list[tuple[str, dict[str, Any] | None]] = [
            (
                "/acme/new-order",
                {
                    "identifiers": [{"type": "dns", "value": "a.example.com"}],
                    "notBefore": "2030-01-01T00:00:00Z",
                },
            ),
            ("/acme/new-authz", {"identifier": {"type": "dns", "value": "a.example.com"}}),
            ("/acme/revoke-cert", {"certificate": "AAAA", "reason": 1}),
            ("/acme/order/nope/finalize", {"csr": "AAAA"}),
            ("/acme/key-change", {"account": target.account, "oldKey": {}}),
            (urllib.parse.urlsplit(target.account).path, {"contact": ["mailto:a@example.com"]}),
            (urllib.parse.urlsplit(target.account).path + "/orders", None),
            ("/acme/order/nope", None),
            ("/acme/authz/nope", None),
            ("/acme/chall/nope", {}),
            ("/acme/cert/nope", None),
            ("/acme/new-account", {"onlyReturnExisting": True}),
        ]
        self.acme_paths = [p for p, _ in self.acme_payloads] + [
            "/acme/directory",
            "/acme/new-nonce",
            "/acme/new-account",
            "/acme/renewal-info/x.y",
        ]
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )
        self.csr_b64 = base64.b64encode(csr)
        ca = x509.load_pem_x509_certificate(target.ca_pem.read_bytes())
        self.ocsp_ders = [
            ocsp.OCSPRequestBuilder()
            .add_certificate(ca, ca, algorithm)
            .build()
            .public_bytes(serialization.Encoding.DER)
            for algorithm in (hashes.SHA1(), hashes.SHA256(), hashes.SHA512())
        ]
        sha256 = bytes.fromhex("0609608648016503040201")
        self.ocsp_ders.append(self.ocsp_ders[1].replace(sha256, sha256[:-1] + b"\x63"))
        self.makers: list[tuple[int, Callable[[], Request]]] = [
            (10, self.acme_unsigned),
            (7, self.acme_stranger),
            (8, self.acme_account),
            (14, self.est),
            (20, self.ra),
            (8, self.applicant),
            (11, self.ocsp),
            (8, self.pki),
            (8, self.page),
        ]
        chosen = [(w, f) for w, f in self.makers if not families or f.__name__ in families]
        self.weights = [w for w, _ in chosen]
        self.functions = [f for _, f in chosen]

    def make(self) -> Request:
        return self.rng.choices(self.functions, self.weights)[0]()

    # -- cheap changes
    def hostile_json(self, valid: dict[str, Any] | None) -> bytes:
        rng = self.rng
        roll = rng.random()
        if valid is None or roll < 0.3:
            return rng.choice(HOSTILE_BODIES)
        if roll < 0.75:  # one member replaced (or added) with a hostile value
            body = dict(valid)
            name = rng.choice([*body, "x", "id"]) if body else "x"
            value = rng.choice(HOSTILE_VALUES)
            if isinstance(body.get(name), dict) and rng.random() < 0.5:
                inner = dict(body[name])
                inner[rng.choice([*inner, "x"]) if inner else "x"] = value
                value = inner
            body[name] = value
            return json.dumps(body).encode("utf-8", "surrogatepass")
        return self.mutate(json.dumps(valid).encode())

    def mutate(self, data: bytes) -> bytes:
        rng = self.rng
        if not data:
            return rng.choice(HOSTILE_BODIES)
        roll = rng.random()
        if roll < 0.4:
            out = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                out[rng.randrange(len(out))] = rng.randrange(256)
            return bytes(out)
        if roll < 0.6:
            return data[: rng.randrange(len(data))]
        cut = rng.randrange(len(data))
        fragment = rng.choice([b"[" * 50, b"9" * 5000, b"\xff", b'"\\ud800"', b"\x00", b"{}"])
        return data[:cut] + fragment + data[cut:]

    def path_segment(self) -> str:
        return self.rng.choice(HOSTILE_SEGMENTS)

    def query(self) -> str:
        return self.rng.choice(HOSTILE_QUERIES)

    # -- the families
    def acme_unsigned(self) -> Request:
        rng = self.rng
        path = rng.choice(self.acme_paths)
        method = rng.choice(["POST", "POST", "POST", "GET", "HEAD", "PUT", "DELETE"])
        headers = {"Content-Type": rng.choice(["application/jose+json", *CONTENT_TYPES])}
        if rng.random() < 0.2:
            path = path.rsplit("/", 1)[0] + "/" + self.path_segment()
        if rng.random() < 0.1:
            path += "?" + self.query()
        body = (
            rng.choice(HOSTILE_BODIES)
            if rng.random() < 0.5
            else self.mutate(b'{"protected":"e30","payload":"","signature":"AA"}')
        )
        return Request("acme", method, path, headers, body if method == "POST" else None)

    def _nonce(self) -> str:
        if self.nonces:
            return self.nonces.popleft()
        return "bm9ub25jZQ"  # refused as badNonce: still a request

    def acme_stranger(self) -> Request:
        """No account: a correctly signed JWS whose protected header is hostile."""
        rng = self.rng
        path = rng.choice(self.acme_paths)
        key = self.t.stranger_key
        protected: dict[str, Any] = {
            "alg": "ES256",
            "nonce": self._nonce(),
            "url": self.t.https + path,
            "jwk": jwk_of(key.public_key()).to_json(),
        }
        for _ in range(rng.randint(1, 2)):
            name = rng.choice(["alg", "nonce", "url", "jwk", "kid", "crit", "b64"])
            if name == "jwk" and isinstance(protected["jwk"], dict) and rng.random() < 0.5:
                jwk = dict(protected["jwk"])
                jwk[rng.choice(["kty", "crv", "x", "y", "d", "n"])] = rng.choice(HOSTILE_VALUES)
                protected["jwk"] = jwk
            else:
                protected[name] = rng.choice(HOSTILE_VALUES)
        payload = rng.choice([b"{}", b"", b"not JSON", *HOSTILE_BODIES[:6]])
        body = signed(protected, payload, key)
        return Request("acme", "POST", path, {"Content-Type": "application/jose+json"}, body)

    def acme_account(self) -> Request:
        """The real account, a fresh nonce when there is one, a hostile payload."""
        rng = self.rng
        path, valid = rng.choice(self.acme_payloads)
        protected = {
            "alg": "ES256",
            "kid": self.t.account,
            "nonce": self._nonce(),
            "url": self.t.https + path,
        }
        payload = self.hostile_json(valid) if rng.random() < 0.9 else b"\xff not JSON"
        body = signed(protected, payload, self.t.acme_key)
        return Request("acme", "POST", path, {"Content-Type": "application/jose+json"}, body)

    def est(self) -> Request:
        rng = self.rng
        operation = rng.choice(
            [
                "simpleenroll",
                "simplereenroll",
                "simpleenroll",
                "cacerts",
                "csrattrs",
                "serverkeygen",
                "fullcmc",
            ]
        )
        label = rng.choice(["", "", "general/", "document-manager/", self.path_segment() + "/"])
        headers = {"Content-Type": rng.choice(["application/pkcs10"] * 3 + CONTENT_TYPES)}
        roll = rng.random()
        if roll < 0.4:
            user = f"{self.t.enrollment_id}:{rng.choice(['00000000', '', 'x' * 100, '²'])}"
            headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
        elif roll < 0.8:
            headers["Authorization"] = rng.choice(BASICS)
        body = self.mutate(self.csr_b64) if rng.random() < 0.7 else rng.choice(HOSTILE_BODIES)
        method = "GET" if operation in ("cacerts", "csrattrs") else "POST"
        if rng.random() < 0.1:
            method = rng.choice(["PUT", "DELETE", "GET", "POST"])
        path = f"/.well-known/est/{label}{operation}"
        return Request("est", method, path, headers, body if method == "POST" else None)

    def ra(self) -> Request:
        rng = self.rng
        method, path, valid = rng.choice(self.ra_routes[:-2])
        return self._api(method, path, valid)

    def applicant(self) -> Request:
        method, path, valid = self.rng.choice(self.ra_routes[-2:])
        return self._api(method, path, valid)

    def _api(self, method: str, path: str, valid: dict[str, Any] | None) -> Request:
        rng = self.rng
        headers = {
            "Content-Type": "application/json" if rng.random() < 0.8 else rng.choice(CONTENT_TYPES)
        }
        roll = rng.random()
        if roll < 0.75:
            headers["Authorization"] = "Bearer " + rng.choice(list(self.t.tokens.values()))
        elif roll < 0.9:
            headers["Authorization"] = rng.choice(BEARERS)
        if rng.random() < 0.15:
            head, _, tail = path.partition("?")
            parts = head.split("/")
            if len(parts) > 3:
                parts[3] = self.path_segment()
            path = "/".join(parts) + ("?" + tail if tail else "")
        if rng.random() < 0.2:
            path = path.split("?")[0] + "?" + self.query()
        body = self.hostile_json(valid) if method != "GET" else None
        return Request("ra", method, path, headers, body, plain=rng.random() < 0.05)

    def ocsp(self) -> Request:
        rng = self.rng
        der = (
            self.mutate(rng.choice(self.ocsp_ders))
            if rng.random() < 0.8
            else rng.choice(self.ocsp_ders)
        )
        plain = rng.random() < 0.7
        if rng.random() < 0.5:
            content_type = (
                "application/ocsp-request" if rng.random() < 0.9 else rng.choice(CONTENT_TYPES)
            )
            return Request("ocsp", "POST", "/ocsp", {"Content-Type": content_type}, der, plain)
        encoded = base64.b64encode(der).decode()
        roll = rng.random()
        if roll < 0.2:
            encoded = encoded.rstrip("=")
        elif roll < 0.3:
            encoded = self.path_segment()
        return Request(
            "ocsp", "GET", "/ocsp/" + urllib.parse.quote(encoded, safe=""), {}, None, plain
        )

    def pki(self) -> Request:
        rng = self.rng
        n = rng.choice(["1", "0", "2", "9" * 30, "18446744073709551616", "00001", "%C2%B2"])
        path = rng.choice(
            [
                f"/crl/{n}.crl",
                f"/ca/{n}.crt",
                f"/ca/{n}.pem",
                f"/ca/links/{n}-{n}/old-with-new.crt",
                "/ca.crt",
                "/ca.pem",
                "/chain.pem",
                "/health",
                "/ca/index.json",
                "/",
                "/" + self.path_segment(),
            ]
        )
        if rng.random() < 0.3:
            path += "?" + self.query()
        method = rng.choice(["GET"] * 6 + ["POST", "HEAD", "PUT", "OPTIONS"])
        return Request(
            "pki", method, path, {}, b"x" if method == "POST" else None, rng.random() < 0.6
        )

    def page(self) -> Request:
        rng = self.rng
        path = rng.choice(
            [
                "/",
                "/online-input",
                "/status",
                "/pickup",
                "/ca-certificates",
                "/check",
                "/static/" + self.path_segment(),
                "/static/app.css",
            ]
        )
        query = self.query() if rng.random() < 0.7 else f"lang={rng.choice(UNICODE_DIGITS)}"
        return Request("page", "GET", f"{path}?{query}", {"Accept": "text/html"})


# What --families names: the request makers of Maker, and raw sockets.
FAMILIES = (
    "acme_unsigned",
    "acme_stranger",
    "acme_account",
    "est",
    "ra",
    "applicant",
    "ocsp",
    "pki",
    "page",
    "raw",
)
RAW_AT_ONCE = 16  # raw-socket exchanges in flight at most
READ_TIMEOUT = 5  # seconds a raw socket waits for the status line


# -- the run -------------------------------------------------------------------------------------
@dataclass
class Tally:
    sent: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    by_family: collections.Counter[str] = field(default_factory=collections.Counter)
    server_errors: dict[str, str] = field(default_factory=dict)  # key -> a sample
    server_error_count: int = 0
    wrong_format: dict[str, str] = field(default_factory=dict)
    wrong_format_count: int = 0
    client_errors: collections.Counter[str] = field(default_factory=collections.Counter)


def record(tally: Tally, request: Request, status: int, headers: Any, body: bytes) -> None:
    tally.statuses[str(status)] += 1
    tally.by_family[request.family] += 1
    if status >= 500:
        path = request.path.split("?")[0]
        tally.server_error_count += 1
        key = f"{status} {request.method} {re.sub(r'/[^/]*$', '/…', path)[:60]}"
        if key not in tally.server_errors and len(tally.server_errors) < 30:
            sent = (request.body or b"")[:160]
            tally.server_errors[key] = (
                f"{request.method} {request.path[:120]} {request.headers} body={sent!r} "
                f"-> {body[:200]!r}"
            )
        return
    if status < 400 or "X-Request-Id" not in headers:
        return  # refused by the HTTP parser before any route: plain text is all there is
    if status == 409 and request.path.startswith("/ra/audit/verify"):
        tally.statuses["409 (audit chain reported broken)"] += 1  # a verdict, as documented
        return
    kind = headers.get("Content-Type", "").split(";")[0]
    expected = {
        "acme": (PROBLEM,),
        "ra": (PROBLEM,),
        "ocsp": (PROBLEM, "application/ocsp-response"),
        "est": ("text/plain", PROBLEM) if status in (404, 405, 413) else ("text/plain",),
        "pki": (PROBLEM,),
        "page": (PROBLEM, "text/html"),
    }[request.family]
    if kind not in expected:
        tally.wrong_format_count += 1
        key = f"{request.family} {status} {kind}"
        if key not in tally.wrong_format and len(tally.wrong_format) < 20:
            tally.wrong_format[key] = f"{request.method} {request.path[:100]} -> {body[:200]!r}"


async def raw_socket(
    target: Target, rng: random.Random, garbage: list[bytes], tally: Tally
) -> None:
    url = yarl.URL(target.http if rng.random() < 0.5 else target.https)
    # On the HTTPS port, one time in five the bytes go without TLS: garbage for the handshake.
    tls = url.scheme == "https" and rng.random() < 0.8
    data = rng.choice(garbage)
    tally.by_family["raw"] += 1
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                url.host,
                url.port,
                ssl=target.tls() if tls else None,
                server_hostname="localhost" if tls else None,
            ),
            10,
        )
    except (OSError, TimeoutError) as exc:
        tally.client_errors[f"raw connect {type(exc).__name__}"] += 1
        return
    try:
        writer.write(data)
        await writer.drain()
        if rng.random() < 0.2:  # half a request, then gone
            tally.statuses["raw: closed by the client"] += 1
            return
        line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        match = re.match(rb"HTTP/1\.[01] (\d{3})", line)
        status = match.group(1).decode() if match else ""
        tally.statuses[f"raw {status}" if status else "raw: no HTTP answer"] += 1
        if status.startswith("5"):
            tally.server_error_count += 1
            key = f"raw {status} {data[:40]!r}"
            tally.server_errors.setdefault(key, repr(data[:120]))
    except (OSError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        tally.statuses[f"raw: {type(exc).__name__}"] += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 5)


async def run(
    target: Target,
    total: int,
    concurrency: int,
    seconds: float,
    seed: int,
    rss_mb: Callable[[int], float],
    cpu_seconds: Callable[[int], float],
    families: tuple[str, ...] = (),
) -> Tally:
    """``total`` requests (or ``seconds``, whichever ends first) on ``concurrency`` connections;
    ``rss_mb(pid)`` and ``cpu_seconds(pid)`` read the server's memory and CPU time (with its
    worker processes); ``families``, if given, the only families sent (FAMILIES)."""
    rng = random.Random(seed)
    maker = Maker(target, rng, families)
    raw_share = 0.015 if not families or "raw" in families else 0.0
    if not maker.functions:  # --families raw: nothing but raw sockets
        raw_share = 1.0
    garbage = _raw_garbage()
    tally = Tally()
    rss = {"before": rss_mb(target.pid), "peak": rss_mb(target.pid)}
    cpu = cpu_seconds(target.pid), time.process_time()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    marks = {max(1, total * k // 10): k * 10 for k in range(1, 11)}

    raw_tasks: set[asyncio.Task[None]] = set()

    async def sample_rss() -> None:
        while True:
            await asyncio.sleep(1)
            rss["peak"] = max(rss["peak"], rss_mb(target.pid))

    connector_args = {"limit": concurrency, "force_close": False, "enable_cleanup_closed": True}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=target.tls(), **connector_args),
        timeout=timeout,
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    ) as session:
        sampler = asyncio.create_task(sample_rss())

        async def worker() -> None:
            while tally.sent < total and time.monotonic() < deadline:
                tally.sent += 1
                n = tally.sent
                if n in marks:
                    mark = marks[n]
                    now = rss_mb(target.pid)
                    if mark == 10:
                        rss["10%"] = now
                    elapsed = time.monotonic() - started
                    print(
                        f"  {mark:3d} %: {n:,} requests in {elapsed:,.0f} s "
                        f"({n / elapsed:,.0f}/s), "
                        f"5xx {tally.server_error_count}, server RSS {now:.0f} MB",
                        flush=True,
                    )
                if rng.random() < raw_share:
                    if not maker.functions:  # raw sockets only: the workers are the sockets
                        await raw_socket(target, rng, garbage, tally)
                        continue
                    if len(raw_tasks) < RAW_AT_ONCE:
                        # Apart from the workers: a socket the server leaves hanging must not
                        # hold a worker for the read timeout.
                        task = asyncio.create_task(raw_socket(target, rng, garbage, tally))
                        raw_tasks.add(task)
                        task.add_done_callback(raw_tasks.discard)
                        continue
                request = maker.make()
                base = target.http if request.plain else target.https
                try:
                    async with session.request(
                        request.method,
                        yarl.URL(base + request.path, encoded=True),
                        headers=request.headers,
                        data=request.body,
                    ) as reply:
                        body = await reply.read()
                        nonce = reply.headers.get("Replay-Nonce")
                        if nonce:
                            maker.nonces.append(nonce)
                        record(tally, request, reply.status, reply.headers, body)
                except (aiohttp.ClientError, TimeoutError, ValueError, UnicodeError) as exc:
                    tally.client_errors[type(exc).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await asyncio.gather(*raw_tasks)
        sampler.cancel()
    rss["end"] = rss_mb(target.pid)
    server_cpu, client_cpu = cpu_seconds(target.pid) - cpu[0], time.process_time() - cpu[1]
    # The append-only audit log after the storm, read at rest (RA API, admin).
    status, _, verdict = target.call("GET", "/ra/audit/verify", token=target.tokens["admin"])
    audit = f"{status} {verdict}"
    elapsed = time.monotonic() - started
    print(
        f"fuzz: {tally.sent:,} requests in {elapsed:,.0f} s ({tally.sent / elapsed:,.0f}/s), "
        f"{concurrency} connections, seed {seed}"
    )
    print(
        f"  CPU: server {server_cpu:,.0f} s ({server_cpu / tally.sent * 1000:.2f} ms/request), "
        f"client {client_cpu:,.0f} s ({client_cpu / tally.sent * 1000:.2f} ms/request)"
    )
    print("  by family: " + ", ".join(f"{k} {v:,}" for k, v in sorted(tally.by_family.items())))
    print("  statuses: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(tally.statuses.items()) if v))
    print(f"  5xx: {tally.server_error_count}")
    for key, sample in tally.server_errors.items():
        print(f"    {key}\n      {sample}")
    print(f"  refusals not in the protocol's format: {tally.wrong_format_count}")
    for key, sample in tally.wrong_format.items():
        print(f"    {key}: {sample}")
    if tally.client_errors:
        print(
            "  client-side errors: " + ", ".join(f"{k} {v}" for k, v in tally.client_errors.items())
        )
    print(
        f"  server RSS (with its processes): before {rss['before']:.0f} MB, "
        f"at 10 % {rss.get('10%', float('nan')):.0f} MB, "
        f"end {rss['end']:.0f} MB, peak {rss['peak']:.0f} MB "
        f"(end - 10 %: {rss['end'] - rss.get('10%', rss['before']):+.0f} MB)"
    )
    print(f"  audit chain at rest: {audit}")
    return tally


_TRACEBACK = re.compile(r"^Traceback [^\n]*\n(?:[ \t][^\n]*\n)*(\S[^\n]*)", re.MULTILINE)


def log_summary(log: Path) -> None:
    """The server log's size, and what its catch-all logged: each distinct exception once with
    its count, and the first traceback in full."""
    text = log.read_text(errors="replace")
    found = list(_TRACEBACK.finditer(text))
    print(f"  server.log: {len(text) / 1e6:.1f} MB, {len(found)} tracebacks")
    for line, count in collections.Counter(m.group(1) for m in found).most_common(10):
        print(f"    {count} x {line[:200]}")
    if found:
        start = text.rfind("\n", 0, found[0].start() - 1) + 1
        print(text[start : found[0].end()][-4000:])

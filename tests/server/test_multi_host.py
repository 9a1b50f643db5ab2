"""Two hosts, one database (docs/operations.md, "Several hosts"): two ``jitsuin serve --workers 2``
instances, each with a data directory of its own, share one PostgreSQL schema and one CA key in
one PKCS#11 token. Host B's directory holds only what an operator copies from host A: the
configuration (its listeners edited), the RA secret and the token's PIN file; no key, no TLS
certificate, no audit checkpoint file.

SoftHSM2 keeps a token in local files; a real HSM is reached over the network by every host. Both
instances pointing at one SOFTHSM2_CONF token directory is the model of that one network HSM:
each process logs in on its own, as each host would.

Under concurrent load over both hosts (8 applications created on one host and approved on the
other, EST issuance, revocations that each publish a CRL at once), then a rollover on host A
followed by issuance on host B, the test checks what must stay exact across hosts: unique
serials, CRL numbers that increase with no gap or duplicate, one PIN e-mail per approval, and
OCSP and CRL answers that agree; and that an ACME nonce from one host is good once, on the other.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import itertools
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp

from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration

LIBRARY = Path("/usr/lib/softhsm/libsofthsm2.so")
JITSUIN = str(Path(sys.executable).parent / "jitsuin")
PIN = "246810"
APPLICATIONS = 8  # approved before the rollover: issued over both hosts, half of them revoked
REVOKED = 6  # of them, at once over both hosts
AFTER_ROLLOVER = 4  # approved before the rollover, issued on host B after it


class Mailbox:
    """aiosmtpd handler: every message received, with the enrollment ID it names."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"

    def bodies(self) -> list[str]:
        return [m.get_body().get_content() for m in list(self.messages)]  # type: ignore[union-attr]

    def mail_for(self, enrollment_id: str, after: int = 0, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in reversed(self.bodies()[after:]):
                if enrollment_id in body:
                    return body
            time.sleep(0.1)
        raise AssertionError(f"no PIN e-mail for {enrollment_id} within {timeout} s")

    def pin_for(self, enrollment_id: str, after: int = 0, timeout: float = 60.0) -> str:
        match = re.search(r"Download PIN: (\d{8})", self.mail_for(enrollment_id, after, timeout))
        assert match
        return match.group(1)


@pytest.fixture
def token(tmp_path) -> dict[str, str]:
    """A fresh SoftHSM2 token (jitsuin-test): the environment that finds it."""
    root = tmp_path / "hsm"
    (root / "tokens").mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    assert LIBRARY.exists(), "SoftHSM2 is not installed: ./scripts/test installs softhsm2"
    init = ["softhsm2-util", "--init-token", "--free", "--label", "jitsuin-test"]
    subprocess.run([*init, "--pin", PIN, "--so-pin", "13579"], check=True, env=env)
    return env


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    inbox = Mailbox()
    port = _free_ports()["http"]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _jitsuin(env: dict[str, str], home: Path, *args: str) -> str:
    done = subprocess.run(
        [JITSUIN, "--home", str(home), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _host_a(home: Path, url: str, smtp_port: int, ports: dict[str, int]) -> None:
    """Host A's data directory, as `jitsuin init --pkcs11-*` writes it, pointed at PostgreSQL and
    the test's mail relay; the PIN file in secrets/ (each host has its own copy)."""
    token = configuration.TokenSettings(LIBRARY, "jitsuin-test", Path("secrets/pkcs11-pin"))
    path = configuration.write_default(
        home,
        KeyType.ECDSA_P256,
        configuration.DEFAULT_SUBJECT,
        http=configuration.Listen("127.0.0.1", ports["http"]),
        https=configuration.Listen("127.0.0.1", ports["https"]),
        smtp=configuration.Listen("127.0.0.1", smtp_port),
        token=token,
    )
    text = path.read_text()
    for old, new in (
        ('database_url = "sqlite:///jitsuin.db"', f'database_url = "{url}"'),
        (f"smtp_port = {smtp_port}", f"smtp_port = {smtp_port}\npoll_seconds = 0.2"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text + f'\n[metrics]\nlisten = "127.0.0.1:{ports["metrics"]}"\n')
    pin = home / "secrets" / "pkcs11-pin"
    pin.write_text(PIN + "\n")
    pin.chmod(0o600)


def _host_b(a: Path, b: Path, a_ports: dict[str, int], b_ports: dict[str, int]) -> None:
    """What an operator copies to a second host: the configuration (here only its listeners
    change: on two machines even they would not), the RA secret and the token's PIN file."""
    (b / "secrets").mkdir(parents=True, mode=0o700)
    b.chmod(0o700)
    text = (a / "jitsuin.toml").read_text()
    for name in ("https", "metrics"):  # public_http_url stays: one public name for both
        old, new = f"127.0.0.1:{a_ports[name]}", f"127.0.0.1:{b_ports[name]}"
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    old = f'http_listen = "127.0.0.1:{a_ports["http"]}"'
    assert text.count(old) == 1
    text = text.replace(old, f'http_listen = "127.0.0.1:{b_ports["http"]}"')
    (b / "jitsuin.toml").write_text(text)
    (b / "jitsuin.toml").chmod(0o600)
    for secret in ("secrets/ra.key", "secrets/pkcs11-pin"):
        shutil.copy2(a / secret, b / secret)


class Host:
    """One instance: its URLs, the operators' tokens (shared: one database) and the RA flow."""

    def __init__(self, name: str, home: Path, ports: dict[str, int], inbox: Mailbox) -> None:
        self.name, self.home, self.inbox = name, home, inbox
        self.http = f"http://127.0.0.1:{ports['http']}"
        self.https = f"https://localhost:{ports['https']}"
        self.tokens: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.ca_pem = home / "trust.pem"

    def start(self, env: dict[str, str]) -> None:
        log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [JITSUIN, "--home", str(self.home), "serve", "--workers", "2"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        for _ in range(600):
            assert self.process.poll() is None, (self.home / "server.log").read_text()
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.http}/ca.pem", timeout=2) as reply:
                    self.ca_pem.write_bytes(reply.read())
                with urllib.request.urlopen(f"{self.https}/health", context=self.tls(), timeout=2):
                    return
            time.sleep(0.1)
        raise AssertionError("no answer: " + (self.home / "server.log").read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def call(self, method: str, path: str, operator: str | None, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.https + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if operator:
            request.add_header("Authorization", f"Bearer {self.tokens[operator]}")
        try:
            with urllib.request.urlopen(request, context=self.tls(), timeout=60) as reply:
                status, answer = reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, exc.read()
        assert status in (200, 201), (self.name, method, path, status, answer)
        return answer

    def get(self, path: str, data: bytes | None = None, content_type: str = "") -> bytes:
        request = urllib.request.Request(self.http + path, data=data)
        if content_type:
            request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.read()

    def vetted(self) -> dict[str, str]:
        """A new application walked up to approval here (docs/flow.md, steps 1-8)."""
        unique = os.urandom(4).hex()
        created = self.call(
            "POST",
            "/ra/applications",
            "alice",
            {
                "profile": "general",
                "familyName": "Yamada",
                "givenName": "Hanako",
                "email": f"hanako.{unique}@example.com",
                "qualificationGroup": "member",
                "qualificationNumber": f"AB-{unique.upper()}",
                "postalAddress": "1-2-3 Kasumigaseki, Tokyo",
                "dateOfBirth": "1985-04-01",
                "billing": {"addressee": "self"},
            },
        )
        app_id = created["id"]
        today = time.strftime("%Y-%m-%d", time.gmtime())
        record = {
            "issuedOn": today,
            "original": True,
            "showsIndividualNumber": False,
            "nameMatches": True,
            "addressMatches": True,
            "dateOfBirthMatches": True,
        }
        review = {"receivedOn": today, "residentRecord": record, "seal": {"selfInking": False}}
        self.call("POST", f"/ra/applications/{app_id}/review", "alice", review)
        sent = self.call(
            "POST", f"/ra/applications/{app_id}/inquiry", "alice", {"trackingNumber": "RD1JP"}
        )
        invoice = sent["application"]["invoice"]
        letter = {"signed": True, "sealed": True, "selfInking": False}
        self.call("POST", f"/ra/applications/{app_id}/letter", "alice", letter)
        payment = {"invoiceNumber": invoice["number"], "amount": invoice["amount"]}
        self.call("POST", f"/ra/applications/{app_id}/payment", "alice", payment)
        online = {
            "enrollmentId": sent["enrollmentId"],
            "accessCode": sent["accessCode"],
            "confirm": True,
        }
        self.call("POST", "/applicant/online-input", None, online)
        return {"id": app_id, "enrollment_id": sent["enrollmentId"]}

    def approve(self, app: dict[str, str]) -> str:
        """Approve here; the PIN, from the one e-mail either host's mail queue sent."""
        self.call("POST", f"/ra/applications/{app['id']}/approve", "bob")
        return self.inbox.pin_for(app["enrollment_id"])

    def enroll(self, app: dict[str, str], pin: str) -> x509.Certificate:
        """EST simpleenroll (RFC 7030 §4.2.1) here, with a new P-256 key."""
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
        der = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        basic = base64.b64encode(f"{app['enrollment_id']}:{pin}".encode()).decode()
        request = urllib.request.Request(
            self.https + "/.well-known/est/simpleenroll",
            data=base64.b64encode(der),
            headers={"Content-Type": "application/pkcs10", "Authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(request, context=self.tls(), timeout=60) as reply:
            body = reply.read()
        return pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))[0]

    def generations(self) -> list[x509.Certificate]:
        index = json.loads(self.get("/ca/index.json"))
        return [
            x509.load_der_x509_certificate(self.get(f"/ca/{g['number']}.crt"))
            for g in index["generations"]
        ]

    def ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
        der = request.public_bytes(serialization.Encoding.DER)
        response = ocsp.load_der_ocsp_response(self.get("/ocsp", der, "application/ocsp-request"))
        assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        issuer.public_key().verify(  # type: ignore[call-arg]
            response.signature,
            response.tbs_response_bytes,
            ec.ECDSA(response.signature_hash_algorithm),  # type: ignore[arg-type]
        )
        return response


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_account(host: Host, nonce: str) -> tuple[int, dict[str, Any]]:
    """POST newAccount on ``host`` (RFC 8555 §7.3) with ``nonce``, signed by a new P-256 key
    (ES256, RFC 7518 §3.4): the status and the problem document or account."""
    with urllib.request.urlopen(f"{host.https}/acme/directory", context=host.tls()) as reply:
        url = json.load(reply)["newAccount"]
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    header = {"alg": "ES256", "jwk": jwk, "nonce": nonce, "url": url}
    protected = _b64(json.dumps(header).encode())
    payload = _b64(json.dumps({"termsOfServiceAgreed": True}).encode())
    r, s = decode_dss_signature(
        key.sign(f"{protected}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    )
    body = {
        "protected": protected,
        "payload": payload,
        "signature": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
    }
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/jose+json"}
    )
    try:
        with urllib.request.urlopen(request, context=host.tls(), timeout=60) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _nonce(host: Host) -> str:
    with urllib.request.urlopen(f"{host.https}/acme/directory", context=host.tls()) as reply:
        url = json.load(reply)["newNonce"]
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, context=host.tls(), timeout=60) as reply:
        return reply.headers["Replay-Nonce"]


def _free_ports() -> dict[str, int]:
    ports: dict[str, int] = {}
    held = []
    for name in ("http", "https", "metrics"):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        held.append(sock)
        ports[name] = sock.getsockname()[1]
    for sock in held:
        sock.close()
    return ports


def _issuer_number(cert: x509.Certificate, generations: list[x509.Certificate]) -> int:
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    for number, generation in enumerate(generations, start=1):
        ski = generation.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        if ski.digest == aki.key_identifier:
            cert.verify_directly_issued_by(generation)
            return number
    raise AssertionError("issued by no published generation")


def test_two_hosts_share_one_database_and_one_token(postgres_schema, tmp_path, token, mailbox):
    inbox, smtp_port = mailbox
    a_home, b_home = tmp_path / "host-a", tmp_path / "host-b"
    a_ports, b_ports = _free_ports(), _free_ports()
    _host_a(a_home, postgres_schema.url, smtp_port, a_ports)
    assert "CA generation 1" in _jitsuin(token, a_home, "init")
    _host_b(a_home, b_home, a_ports, b_ports)
    _jitsuin(token, b_home, "check-config")
    assert sorted(p.relative_to(b_home).as_posix() for p in b_home.rglob("*")) == [
        "jitsuin.toml",
        "secrets",
        "secrets/pkcs11-pin",
        "secrets/ra.key",
    ]

    a, b = Host("A", a_home, a_ports, inbox), Host("B", b_home, b_ports, inbox)
    hosts = (a, b)
    try:
        for host in hosts:
            host.start(token)
        for name, role in (("alice", "reviewer"), ("bob", "approver"), ("root", "admin")):
            made = _jitsuin(token, a_home, "ra", "operator-add", name, "--role", role)
            a.tokens[name] = made.strip().splitlines()[-1]
            # The operator's own token, made on host B with the one host A's CLI made.
            b.tokens[name] = a.tokens[name]
            own = b.call("POST", f"/ra/operators/{name}/token", name)["token"]
            a.tokens[name] = b.tokens[name] = own

        # -- ACME nonces live in the database: one from host A is good once, on host B
        # (RFC 8555 §6.5), and then on neither
        nonce = _nonce(a)
        status, answer = _new_account(b, nonce)
        # accepted (and used) there: the request is judged on its merits, here it has no EAB
        assert (status, answer["type"]) == (
            400,
            "urn:ietf:params:acme:error:externalAccountRequired",
        )
        status, answer = _new_account(a, nonce)
        assert (status, answer["type"]) == (400, "urn:ietf:params:acme:error:badNonce")

        # -- load: each application vetted on one host, approved on the other, issued on either
        def issue(n: int) -> tuple[dict[str, str], x509.Certificate]:
            here, there = hosts[n % 2], hosts[(n + 1) % 2]
            app = here.vetted()
            pin = there.approve(app)
            return app, hosts[(n // 2) % 2].enroll(app, pin)

        def prepare(n: int) -> tuple[dict[str, str], str]:
            app = hosts[n % 2].vetted()
            return app, hosts[(n + 1) % 2].approve(app)

        with ThreadPoolExecutor(8) as pool:
            issued = list(pool.map(issue, range(APPLICATIONS)))
            waiting = list(pool.map(prepare, range(AFTER_ROLLOVER)))
            # revoked at once over both hosts: each revocation publishes a CRL at once
            revoked = issued[:REVOKED]
            list(
                pool.map(
                    lambda n: hosts[n % 2].call(
                        "POST",
                        f"/ra/applications/{revoked[n][0]['id']}/revoke",
                        "bob",
                        {"reason": "keyCompromise"},
                    ),
                    range(len(revoked)),
                )
            )

        # -- a rollover on host A; host B's very next issuances use generation 2
        rolled = a.call("POST", "/ra/ca/rollover", "root")
        assert rolled, rolled
        # At once, before any worker's periodic look: generation 2 and its link certificate are
        # served by every worker of both hosts (one that has not loaded them yet does so now).
        published = [
            (host.get("/ca/2.crt"), host.get("/ca/links/1-2/new-with-old.crt"))
            for host in hosts
            for _ in range(8)
        ]
        assert len(set(published)) == 1
        with ThreadPoolExecutor(AFTER_ROLLOVER) as pool:
            later = list(pool.map(lambda item: b.enroll(*item), waiting))
        generations = [
            x509.load_der_x509_certificate(der)
            for (der,) in postgres_schema.execute(
                "SELECT certificate_der FROM ca_generations ORDER BY number"
            )
        ]
        assert len(generations) == 2
        assert x509.load_der_x509_certificate(published[0][0]) == generations[1]
        assert [_issuer_number(c, generations) for _, c in issued] == [1] * APPLICATIONS
        assert [_issuer_number(c, generations) for c in later] == [2] * AFTER_ROLLOVER

        # -- serials: unique among everything either host issued (TLS certificates included)
        certificates = [c for _, c in issued] + later
        assert len({c.serial_number for c in certificates}) == len(certificates)
        rows = postgres_schema.execute("SELECT generation, serial FROM certificates")
        assert len(rows) == len(set(rows)) == len({serial for _, serial in rows})
        assert {format(c.serial_number, "x") for c in certificates} <= {s for _, s in rows}

        # -- CRL numbers: 1, 2, ... with no gap or duplicate, each in its CRL, rising in time
        crls = postgres_schema.execute("SELECT number, generation, der FROM crls ORDER BY number")
        assert [row[0] for row in crls] == list(range(1, len(crls) + 1))
        assert len(crls) >= len(revoked)  # one per revocation at least
        for number, generation, der in crls:
            crl = x509.load_der_x509_crl(der)
            assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == (
                number
            )
            assert crl.is_signature_valid(generations[generation - 1].public_key())  # type: ignore[arg-type]
        # A revoked certificate stays on every later CRL (RFC 5280 §3.3): each CRL of a
        # generation lists what the one numbered before it listed, whichever host made either.
        for generation in {row[1] for row in crls}:
            listed = [
                {r.serial_number for r in x509.load_der_x509_crl(row[2])}
                for row in crls
                if row[1] == generation
            ]
            for before, after in itertools.pairwise(listed):
                assert before <= after, (generation, listed)

        # -- the mail queue: one PIN e-mail per approval, whichever host's worker sent it
        approved = [app for app, _ in issued] + [app for app, _ in waiting]
        bodies = inbox.bodies()
        assert len(bodies) == len(approved)
        for app in approved:
            assert sum(app["enrollment_id"] in body for body in bodies) == 1, app
        assert postgres_schema.execute("SELECT status, count(*) FROM mail_outbox GROUP BY 1") == [
            ("sent", len(approved))
        ]

        # -- OCSP and CRL answers agree between the hosts; what they publish, once every worker
        # has looked again (each within its refresh interval, 5 s)
        deadline = time.monotonic() + 60
        while any(host.generations() != generations for host in hosts for _ in range(8)):
            assert time.monotonic() < deadline, "a host still publishes generation 1 alone"
            time.sleep(0.5)
        gone = {c.serial_number for _, c in revoked}
        for number in range(1, len(generations) + 1):
            a_crl, b_crl = a.get(f"/crl/{number}.crl"), b.get(f"/crl/{number}.crl")
            assert a_crl == b_crl
            listed = {r.serial_number for r in x509.load_der_x509_crl(a_crl)}
            assert listed == (gone if number == 1 else set())
        for cert in certificates:
            issuer = generations[_issuer_number(cert, generations) - 1]
            answers = [host.ocsp(cert, issuer) for host in hosts]
            facts = {
                (
                    r.serial_number,
                    r.certificate_status,
                    r.revocation_time_utc,
                    r.revocation_reason,
                )
                for r in answers
            }
            assert len(facts) == 1, facts
            (status,) = {f[1] for f in facts}
            expected = ocsp.OCSPCertStatus.REVOKED if cert.serial_number in gone else None
            assert status == (expected or ocsp.OCSPCertStatus.GOOD)
        assert postgres_schema.execute("SELECT count(*) FROM ca_generations") == [(2,)]
        for host in hosts:
            assert host.process is not None and host.process.poll() is None
    finally:
        for host in hosts:
            host.stop()
    for host in hosts:
        assert host.process is not None and host.process.returncode == 0, (
            host.home / "server.log"
        ).read_text()
    for home in (a_home, b_home):
        assert not list(home.glob("keys/ca-*"))  # the CA key never was a file on either host
        # Each host's own audit checkpoints (its own key) are in the one shared log.
        verified = _jitsuin(token, home, "audit", "verify")
        assert "audit log OK" in verified
        assert re.search(r"checkpoint: entry \d+ of .* is in the log", verified), verified

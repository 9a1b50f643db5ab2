"""A live jitsuin for the tests that need one: a real ``jitsuin serve`` process on loopback, a real
SMTP server (aiosmtpd) that receives the PIN e-mails, operators added with the CLI, and an RA flow
driven through the operator API that walks an application to approval and reads the enrollment
ID, the PIN (and, where the mail carries it, the ACME EAB key) from the e-mail.

Nothing is mocked. With ``--import-mode=importlib`` neither a test module nor another conftest can
import this file, so the machinery is reached through the session fixture ``live_jitsuin``:
``live_jitsuin.server(home, **options)`` is a context manager that writes the configuration (the
options are the edits an operator would make), starts the server and stops it on exit. The
conftests of tests/server/est, tests/server/web, tests/server/acme and tests/conformance build
their ``server`` fixtures on it.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration

OPERATORS = (("alice", "reviewer"), ("bob", "approver"), ("root", "admin"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lasting_port(*taken: int) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the kernel's ephemeral
    range: for a port that tests bind again and again over a session (an http-01 responder), which
    an outgoing connection's ephemeral local port must not take meanwhile."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(max(1024, low - 12000), low), 200):
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low} on 127.0.0.1")


def jitsuin_cli() -> str:
    path = Path(sys.executable).parent / "jitsuin"
    found = str(path) if path.exists() else shutil.which("jitsuin")
    assert found, "the jitsuin console script is not installed (./scripts/test installs it)"
    return found


class Inbox:
    """aiosmtpd handler: keeps every message it is given (the PIN e-mails)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"

    def mail_for(self, enrollment_id: str, after: int = 0, timeout: float = 15.0) -> str:
        """The body of the newest message that names ``enrollment_id`` among messages after
        index ``after``, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.messages[after:]):
                body = message.get_body().get_content()  # type: ignore[union-attr]
                if enrollment_id in body:
                    return body
            time.sleep(0.1)
        raise AssertionError(f"no PIN e-mail for {enrollment_id} within {timeout} s")

    def pin_for(self, enrollment_id: str, after: int = 0, timeout: float = 15.0) -> str:
        """The newest PIN mailed for ``enrollment_id`` among messages after index ``after``."""
        body = self.mail_for(enrollment_id, after, timeout)
        match = re.search(r"Download PIN: (\d{8})", body)
        assert match, body
        return match.group(1)

    def eab_for(self, enrollment_id: str) -> str:
        """The ACME External Account Binding HMAC key mailed with the PIN (docs/flow.md)."""
        for message in reversed(self.messages):
            body = message.get_body().get_content()  # type: ignore[union-attr]
            match = re.search(rf"kid = {re.escape(enrollment_id)}, HMAC key = (\S+)", body)
            if match:
                return match.group(1)
        raise AssertionError(f"no EAB key mailed for {enrollment_id}")


@dataclass
class LiveServer:
    """A jitsuin server process in ``home``, its mailbox and the operators' bearer tokens."""

    home: Path
    http: str
    https: str
    ca_pem: Path
    inbox: Inbox
    ready_path: str | None = None  # an https path that must answer too before start() returns
    eab_in_mail: bool = False  # approval mails carry the ACME EAB key (read by application())
    env: dict[str, str] = field(default_factory=dict)  # added to the environment of jitsuin
    process: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.home / "jitsuin.toml"

    @property
    def database(self) -> Path:
        return self.home / "jitsuin.db"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))

    # -- the process
    def start(self) -> None:
        log = (self.home / "server.log").open("ab")
        self.process = subprocess.Popen(
            [jitsuin_cli(), "--home", str(self.home), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
        )
        log.close()
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{self.http}/ca.pem", timeout=1) as reply:
                    self.ca_pem.write_bytes(reply.read())
                if self.ready_path is not None:
                    url = self.https + self.ready_path
                    with urllib.request.urlopen(url, context=self.tls(), timeout=1):
                        pass
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
            env={**os.environ, **self.env},
        )
        return out.stdout

    # -- HTTP
    def fetch(
        self, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            self.https + path, data=data, headers=headers or {}, method="POST" if data else "GET"
        )
        try:
            with urllib.request.urlopen(request, context=self.tls(), timeout=30) as reply:
                return reply.status, dict(reply.headers), reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

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

    # -- the RA flow
    def application(
        self,
        profile: str = "general",
        *,
        returned: bool = True,
        online_input: bool = True,
        approve: bool = True,
    ) -> dict[str, str]:
        """Walk the seed's steps 1-9 for a new applicant through the operator API: up to the
        inquiry letter, then (``returned``) the signed letter and the payment, then
        (``online_input``) step 6 through the applicant API, then (``approve``) the approval.
        Returns the ids, the access code and, once approved, what the e-mail the server sent
        carries (``secrets_for``)."""
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
        result = {
            "id": app_id,
            "enrollment_id": sent["enrollmentId"],
            "access_code": sent["accessCode"],
            "email": created["email"],
            "qualification_number": number,
        }
        if not returned:
            return result
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
        if online_input:
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
        if approve:
            self.ok("POST", f"/ra/applications/{app_id}/approve", "bob")
            result.update(self.secrets_for(sent["enrollmentId"], after=n))
            self.wait_state(app_id, "pin_sent")
        return result

    def secrets_for(self, enrollment_id: str, after: int = 0) -> dict[str, str]:
        """The PIN from the approval e-mail and, with ``eab_in_mail``, the EAB key mailed with
        it (docs/flow.md: both in one mail) as ``hmac`` and ``kid``."""
        if not self.eab_in_mail:
            return {"pin": self.inbox.pin_for(enrollment_id, after=after)}
        body = self.inbox.mail_for(enrollment_id, after=after)
        pin = re.search(r"Download PIN: (\d{8})", body)
        mac = re.search(r"HMAC key = ([A-Za-z0-9_-]+)", body)
        kid = re.search(r"External Account Binding kid = ([A-Z0-9-]+)", body)
        assert pin and mac and kid, body
        return {"pin": pin.group(1), "hmac": mac.group(1), "kid": kid.group(1)}

    def approve(self, app_id: str, enrollment_id: str, after: int | None = None) -> str:
        n = len(self.inbox.messages) if after is None else after
        self.ok("POST", f"/ra/applications/{app_id}/approve", "bob")
        pin = self.inbox.pin_for(enrollment_id, after=n)
        self.wait_state(app_id, "pin_sent")
        return pin

    def wait_state(self, app_id: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
        """The outbox worker records ``pin_sent`` only after the SMTP server took the mail, so
        the mail can reach the inbox a moment before the state changes: poll, bounded."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.state(app_id)
            if record["state"] == state or time.monotonic() > deadline:
                assert record["state"] == state, record
                return record
            time.sleep(0.05)

    def state(self, app_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/ra/applications/{app_id}", "bob")

    def expire_pin(self, enrollment_id: str) -> None:
        """Time passes: the stored PIN expiry is moved into the past, as the server's clock
        would find it once the PIN's lifetime (config ``pin_ttl_hours``) is over."""
        with sqlite3.connect(self.database, timeout=30) as db:
            changed = db.execute(
                "UPDATE applications SET pin_expires_at = ? WHERE enrollment_id = ?",
                ("2000-01-01T00:00:00+00:00", enrollment_id),
            ).rowcount
        assert changed == 1

    # -- EST and the CA's certificates
    def simpleenroll(self, enrollment_id: str, pin: str, csr_der: bytes) -> tuple[int, bytes]:
        token = base64.b64encode(f"{enrollment_id}:{pin}".encode()).decode()
        status, _, body = self.fetch(
            "/.well-known/est/simpleenroll",
            data=base64.b64encode(csr_der),
            headers={"Content-Type": "application/pkcs10", "Authorization": f"Basic {token}"},
        )
        return status, body

    def enrolled(
        self, folder: Path, profile: str = "general"
    ) -> tuple[dict[str, str], x509.Certificate, Path, Path]:
        """The RA flow to approval, then EST simpleenroll with the mailed PIN and a new P-256
        key: (the application, the certificate, its PEM and its key's PEM, written in
        ``folder``). The certificate authenticates a TLS client (EST re-enrollment, operators)."""
        folder.mkdir(parents=True, exist_ok=True)
        app = self.application(profile)
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
        status, body = self.simpleenroll(
            app["enrollment_id"],
            app["pin"],
            csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER),
        )
        assert status == 200, body
        cert = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))[0]
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
        cert_pem, key_pem = folder / "cert.pem", folder / "key.pem"
        cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return app, cert, cert_pem, key_pem

    def ca_certificates(self) -> list[x509.Certificate]:
        """The published generations, from the plain-HTTP listener (as relying parties get them:
        no trust anchor needed, so it works across rollovers)."""

        def get(path: str) -> bytes:
            with urllib.request.urlopen(self.http + path, timeout=30) as reply:
                return reply.read()

        index = json.loads(get("/ca/index.json"))
        return [
            x509.load_der_x509_certificate(get(f"/ca/{g['number']}.crt"))
            for g in index["generations"]
        ]

    def trust_current_ca(self) -> None:
        """Fetch ``ca.pem`` again, as a client does after a rollover: the HTTPS listener's chain
        reaches back one generation only (NewWithOld)."""
        with urllib.request.urlopen(f"{self.http}/ca.pem", timeout=30) as reply:
            self.ca_pem.write_bytes(reply.read())


def write_config(
    home: Path,
    *,
    http_port: int,
    https_port: int,
    smtp_port: int,
    retry_after_seconds: int | None = None,
    attempt_backoff_seconds: int | None = None,
    max_attempts: int | None = None,
    reenroll_approval: Sequence[str] = (),
    lint_processes: int = 0,
    ca_toml: str = "",
    toml: str = "",
) -> Path:
    """The configuration of ``jitsuin init`` in ``home``, edited as an operator would: the
    listeners and the mail relay on the given loopback ports (the mail queue polled every 0.2 s),
    optionally ``[ra] retry_after_seconds``, ``attempt_backoff_seconds`` and
    ``max_attempts``, ``[ca] lint_processes`` and ``[est] reenroll_approval``, ``ca_toml``
    added to [ca], and ``toml`` appended (further sections)."""
    path = configuration.write_default(home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    text = path.read_text()
    edits = [
        ("127.0.0.1:8080", f"127.0.0.1:{http_port}"),
        ("127.0.0.1:8443", f"127.0.0.1:{https_port}"),
        ("smtp_port = 25", f"smtp_port = {smtp_port}\npoll_seconds = 0.2"),
    ]
    if retry_after_seconds is not None:
        edits.append(("[ra]\n", f"[ra]\nretry_after_seconds = {retry_after_seconds}\n"))
    if attempt_backoff_seconds is not None:
        edits.append(
            (
                "attempt_backoff_seconds = 15 ",
                f"attempt_backoff_seconds = {attempt_backoff_seconds} ",
            )
        )
    if max_attempts is not None:
        edits.append(("max_attempts = 5 ", f"max_attempts = {max_attempts} "))
    if lint_processes:
        edits.append(("\n[ca]\n", f"\n[ca]\nlint_processes = {lint_processes}\n"))
    if ca_toml:
        edits.append(("\n[ca]\n", f"\n[ca]\n{ca_toml}\n"))
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    if reenroll_approval:
        text += f"\n[est]\nreenroll_approval = {json.dumps(list(reenroll_approval))}\n"
    path.write_text(text + toml)
    return path


@contextlib.contextmanager
def running_server(
    home: Path,
    *,
    operators: Sequence[tuple[str, str]] = OPERATORS,
    ready_path: str | None = None,
    eab_in_mail: bool = False,
    env: dict[str, str] | None = None,
    **config: Any,
) -> Iterator[LiveServer]:
    """A jitsuin server in ``home`` (configured by ``write_config(home, **config)``) with its
    own SMTP server and ``operators`` (name, role) added; stopped on exit. ``env`` is added to
    the environment of jitsuin (the server and the CLI)."""
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http_port, https_port = free_port(), free_port()
    write_config(home, http_port=http_port, https_port=https_port, smtp_port=smtp_port, **config)
    running = LiveServer(
        home=home,
        http=f"http://127.0.0.1:{http_port}",
        https=f"https://localhost:{https_port}",
        ca_pem=home / "ca.pem",
        inbox=inbox,
        ready_path=ready_path,
        eab_in_mail=eab_in_mail,
        env=dict(env or {}),
    )
    try:
        running.start()
        for name, role in operators:
            out = running.cli("ra", "operator-add", name, "--role", role)
            running.tokens[name] = out.strip().splitlines()[-1]
            # The operator replaces the token the host CLI made with one of their own (README):
            # until then the CLI's user counts as acting too (two-person rule).
            running.tokens[name] = running.ok("POST", f"/ra/operators/{name}/token", name)["token"]
        yield running
    finally:
        running.stop()
        controller.stop()


class LiveJitsuin:
    """What the ``live_jitsuin`` fixture hands to the conftests below."""

    server = staticmethod(running_server)
    free_port = staticmethod(free_port)
    lasting_port = staticmethod(lasting_port)
    cli = staticmethod(jitsuin_cli)
    Server = LiveServer


@pytest.fixture(scope="session")
def live_jitsuin() -> type[LiveJitsuin]:
    """``live_jitsuin.server(home, **options)``: a running jitsuin (see ``running_server``);
    ``live_jitsuin.free_port()``, ``live_jitsuin.cli()`` (the console script's path)."""
    return LiveJitsuin

"""A running jitsuin server (a real process on loopback), a real SMTP server that receives the
PIN e-mails, and an RA flow driven through the operator API, for the EST tests."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"

    def pin_for(self, enrollment_id: str, after: int = 0, timeout: float = 15.0) -> str:
        """The newest PIN mailed for ``enrollment_id`` among messages after index ``after``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.messages[after:]):
                body = message.get_body().get_content()  # type: ignore[union-attr]
                if enrollment_id in body:
                    match = re.search(r"Download PIN: (\d{8})", body)
                    assert match, body
                    return match.group(1)
            time.sleep(0.1)
        raise AssertionError(f"no PIN e-mail for {enrollment_id} within {timeout} s")


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
    process: subprocess.Popen[bytes]
    inbox: Inbox
    tokens: dict[str, str] = field(default_factory=dict)

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))

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

    def application(self, profile: str = "general", *, approve: bool = True) -> dict[str, str]:
        """Walk the seed's steps 1-9 for a new applicant; returns the ids and, once approved,
        the PIN from the e-mail the server sent."""
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
        self.ok(
            "POST",
            f"/ra/applications/{app_id}/review",
            "alice",
            {
                "receivedOn": time.strftime("%Y-%m-%d", time.gmtime()),
                "residentRecord": {
                    "issuedOn": time.strftime("%Y-%m-%d", time.gmtime()),
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
            result["pin"] = self.inbox.pin_for(sent["enrollmentId"], after=n)
        return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    home = tmp_path_factory.mktemp("est-home")
    http_port, https_port = free_port(), free_port()
    path = configuration.write_default(home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    text = (
        path.read_text()
        .replace("127.0.0.1:8080", f"127.0.0.1:{http_port}")
        .replace("127.0.0.1:8443", f"127.0.0.1:{https_port}")
        .replace("smtp_port = 25", f"smtp_port = {smtp_port}\npoll_seconds = 0.2")
    )
    # document-manager re-enrollment waits for an operator (the 202 flow); general does not.
    path.write_text(text + '\n[est]\nreenroll_approval = ["document-manager"]\n')
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [jitsuin_cli(), "--home", str(home), "serve"], stdout=log, stderr=subprocess.STDOUT
    )
    http = f"http://127.0.0.1:{http_port}"
    ca_pem = home / "ca.pem"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{http}/ca.pem", timeout=1) as reply:
                    ca_pem.write_bytes(reply.read())
                break
            except OSError:
                assert process.poll() is None, (home / "server.log").read_text()
                time.sleep(0.1)
        else:
            raise AssertionError("server did not start: " + (home / "server.log").read_text())
        running = Server(home, http, f"https://localhost:{https_port}", ca_pem, process, inbox)
        for name, role in (("alice", "reviewer"), ("bob", "approver"), ("root", "admin")):
            out = subprocess.run(
                [jitsuin_cli(), "--home", str(home), "ra", "operator-add", name, "--role", role],
                capture_output=True,
                text=True,
                check=True,
            )
            running.tokens[name] = out.stdout.strip().splitlines()[-1]
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        controller.stop()


@pytest.fixture(scope="session")
def cli() -> str:
    return jitsuin_cli()

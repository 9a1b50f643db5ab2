"""The browser pages as a subscriber meets them: a running jitsuin server (a real process on
loopback), a real SMTP server that receives the PIN e-mails, an RA flow driven through the
operator API, and Debian's headless Chromium driven by Playwright.

Nothing is mocked. Adapted from tests/server/est/conftest.py (with ``--import-mode=importlib`` a
test module cannot import another conftest). Screenshots go to test-artifacts/screenshots/
(ignored by git).
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import os
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from playwright.sync_api import Browser, Page, Request, sync_playwright

from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# PROTOCOLS.md §5.3: the flags Debian's Chromium needs here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RETRY_AFTER_SECONDS = 1  # what the server tells a waiting EST client (the 202 test waits for it)


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

    @property
    def database(self) -> Path:
        return self.home / "jitsuin.db"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))

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
        Returns the ids, the access code and, once approved, the PIN from the e-mail."""
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
            result["pin"] = self.approve(app_id, sent["enrollmentId"], after=n)
        return result

    def approve(self, app_id: str, enrollment_id: str, after: int | None = None) -> str:
        n = len(self.inbox.messages) if after is None else after
        self.ok("POST", f"/ra/applications/{app_id}/approve", "bob")
        return self.inbox.pin_for(enrollment_id, after=n)

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

    def simpleenroll(self, enrollment_id: str, pin: str, csr_der: bytes) -> tuple[int, bytes]:
        token = base64.b64encode(f"{enrollment_id}:{pin}".encode()).decode()
        status, _, body = self.fetch(
            "/.well-known/est/simpleenroll",
            data=base64.b64encode(csr_der),
            headers={"Content-Type": "application/pkcs10", "Authorization": f"Basic {token}"},
        )
        return status, body

    def ca_certificates(self) -> list[x509.Certificate]:
        index = json.loads(self.fetch("/ca/index.json")[2])
        return [
            x509.load_der_x509_certificate(self.fetch(f"/ca/{g['number']}.crt")[2])
            for g in index["generations"]
        ]


@contextlib.contextmanager
def running_server(home: Path) -> Iterator[Server]:
    """A jitsuin server in ``home`` with its own SMTP server and operators alice (reviewer),
    bob (approver) and root (admin); stopped on exit."""
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http_port, https_port = free_port(), free_port()
    path = configuration.write_default(home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    text = path.read_text()
    for old, new in (
        ("127.0.0.1:8080", f"127.0.0.1:{http_port}"),
        ("127.0.0.1:8443", f"127.0.0.1:{https_port}"),
        ("smtp_port = 25", f"smtp_port = {smtp_port}\npoll_seconds = 0.2"),
        ("[ra]\n", f"[ra]\nretry_after_seconds = {RETRY_AFTER_SECONDS}\n"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [jitsuin_cli(), "--home", str(home), "serve"], stdout=log, stderr=subprocess.STDOUT
    )
    http = f"http://127.0.0.1:{http_port}"
    ca_pem = home / "ca.pem"
    try:
        for _ in range(300):
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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server the browser tests share (each test makes its own applications)."""
    with running_server(tmp_path_factory.mktemp("web-home")) as started:
        yield started


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Server]]:
    """``start_server()``: a server of the test's own, for tests that change the CA."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(running_server(tmp_path_factory.mktemp("web-own")))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: ./scripts/test installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


# Every securitypolicyviolation event (a script or style the CSP blocked) is kept for the checks.
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@dataclass
class Visit:
    """One browser tab on the server, with everything it sent and every script error."""

    page: Page
    server: Server
    lang: str
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        separator = "&" if "?" in path else "?"
        suffix = f"{separator}lang=en" if self.lang == "en" else ""
        fragment = ""
        if "#" in path:
            path, fragment = path.split("#", 1)
            fragment = "#" + fragment
        reply = self.page.goto(self.server.https + path + suffix + fragment)
        assert reply is not None and reply.status == 200, path
        assert self.page.evaluate("document.documentElement.lang") == self.lang

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations || []")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{self.lang}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def visit(browser: Browser, server: Server) -> Iterator[Callable[..., Visit]]:
    """``visit(lang, on=server)``: a fresh browser context (no shared state) in ``lang``. At
    the end, no page may have thrown or hit the Content-Security-Policy."""
    opened: list[tuple[Any, Visit]] = []

    def open_visit(lang: str = "ja", on: Server = server) -> Visit:
        context = browser.new_context(
            ignore_https_errors=True,  # the server's TLS certificate comes from the test CA
            locale="ja-JP" if lang == "ja" else "en-US",
            accept_downloads=True,
            viewport={"width": 1024, "height": 800},
        )
        context.add_init_script(_CSP_LISTENER)
        page = context.new_page()
        page.set_default_timeout(20_000)
        current = Visit(page, on, lang)
        page.on("request", lambda request: current.requests.append(request))
        page.on("pageerror", lambda exc: current.errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                current.errors.append(f"console: {msg.text}")
                if "Content Security Policy" in msg.text
                else None
            ),
        )
        opened.append((context, current))
        return current

    yield open_visit
    problems = []
    for context, current in opened:
        if not current.page.is_closed():
            problems += [f"CSP violation: {v}" for v in current.csp_violations()]
        problems += current.errors
        context.close()
    assert problems == [], problems

"""The RA workflow as it runs: a home written by ``write_default``, a real SQLite file, the aiohttp
application on a loopback port, and a real SMTP server (aiosmtpd) that receives the PIN e-mails.

Nothing is mocked. The ``ra_server`` fixture is a factory: ``await ra_server(**options)`` starts
one server (options edit the TOML the way an operator would) and returns an ``RAServer`` with the
operators below already added, an HTTP client, the mailbox, and helpers that walk an application
through the seed's steps. Everything started is stopped at the end of the test.

With ``--import-mode=importlib`` the tests cannot import this file; they reach the helpers as
methods of ``RAServer`` and of the objects it returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import json
import re
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jitsuin.ca.clock import UTC, FixedClock
from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration
from jitsuin.server.app import create_app
from jitsuin.server.authority import Authority
from jitsuin.server.keys import RA
from jitsuin.server.ra.service import RAService
from jitsuin.server.storage import ApplicationRecord

WAIT_SECONDS = 10.0

# name -> role. Two of each so that the two-person rule can be met and broken.
OPERATORS = {
    "root": "admin",
    "eve": "admin",
    "alice": "reviewer",
    "carol": "reviewer",
    "bob": "approver",
    "dave": "approver",
}


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clamped to the month's last day."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    for candidate in range(day.day, 0, -1):
        try:
            return dt.date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")


# -- HTTP ---------------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    content_type: str
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8")

    def expect(self, status: int) -> Reply:
        assert self.status == status, f"expected {status}, got {self.status}: {self.raw[:600]!r}"
        return self

    def problem(self, status: int) -> dict[str, Any]:
        """An RFC 9457 problem document with this status."""
        self.expect(status)
        assert self.content_type == "application/problem+json", self.content_type
        body = self.json
        assert body["status"] == status
        return body


# -- SMTP ---------------------------------------------------------------------------------------
@dataclass
class PinMail:
    message: EmailMessage
    to: str
    subject: str
    text: str
    enrollment_id: str
    pin: str
    eab_key: str


class Mailbox:
    """A real SMTP server (aiosmtpd in its own thread) that keeps what it receives."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[list[str], bytes]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages_to(self, recipient: str) -> list[EmailMessage]:
        with self._lock:
            found = [raw for rcpt, raw in self.received if recipient in rcpt]
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in found]  # type: ignore[misc]

    async def wait_for(self, recipient: str, count: int) -> list[EmailMessage]:
        """Wait until ``count`` messages to ``recipient`` have arrived."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            messages = self.messages_to(recipient)
            if len(messages) >= count:
                return messages
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"{len(self.messages_to(recipient))} of {count} mails to {recipient} arrived "
            f"within {WAIT_SECONDS}s"
        )

    @staticmethod
    def parse_pin_mail(message: EmailMessage) -> PinMail:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None, "the PIN mail has no text/plain part"
        text = body.get_content()

        def one(pattern: str) -> str:
            # Once in the Japanese part and once in the English part, the same value.
            found = re.findall(pattern, text)
            assert len(found) == 2 and len(set(found)) == 1, f"{pattern!r}: {found} in:\n{text}"
            return found[0]

        pin = one(r"(?:ダウンロードPIN|Download PIN): (\S+)")
        enrollment = one(r"(?:受付番号|Enrollment ID): (\S+)")
        eab = one(r"(?:HMAC鍵|HMAC key) = (\S+)")
        return PinMail(
            message=message,
            to=str(message["To"]),
            subject=str(message["Subject"]),
            text=text,
            enrollment_id=enrollment,
            pin=pin,
            eab_key=eab,
        )


# -- an application walked through the steps ---------------------------------------------------
@dataclass
class Flow:
    id: str
    email: str
    enrollment_id: str | None = None
    access_code: str | None = None
    invoice_number: str | None = None
    pin_mail: PinMail | None = None

    @property
    def pin(self) -> str:
        assert self.pin_mail is not None
        return self.pin_mail.pin


STEPS = (
    "received",
    "documents_accepted",
    "inquiry_sent",
    "awaiting_online_input",
    "online_input_received",
    "pin_sent",
)


@dataclass
class RAServer:
    home: Path
    config: configuration.Config
    clock: FixedClock
    authority: Authority
    app: web.Application
    runner: web.AppRunner
    base: str
    session: ClientSession
    mailbox: Mailbox
    tokens: dict[str, str]
    _counter: int = 0

    @property
    def ra(self) -> RAService:
        return self.app[RA]

    @property
    def database(self) -> Path:
        return self.config.database_path

    # -- HTTP ------------------------------------------------------------------------------------
    async def call(
        self,
        method: str,
        path: str,
        as_: str | None = None,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request; ``as_`` names the operator whose token is sent."""
        sent = dict(headers or {})
        if as_ is not None:
            sent["Authorization"] = f"Bearer {self.tokens[as_]}"
        async with self.session.request(
            method, self.base + path, headers=sent, json=body
        ) as response:
            raw = await response.read()
            return Reply(response.status, dict(response.headers), response.content_type, raw)

    async def record(self, app_id: str) -> ApplicationRecord:
        """The stored application, read through the store (not audited, not over HTTP)."""
        return await self.authority.store.application(app_id)

    async def wait_state(self, app_id: str, state: str) -> ApplicationRecord:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            record = await self.record(app_id)
            if record.state == state:
                return record
            await asyncio.sleep(0.02)
        raise AssertionError(f"{app_id} is {(await self.record(app_id)).state}, not {state}")

    # -- request bodies --------------------------------------------------------------------------
    def application_body(self, **overrides: Any) -> dict[str, Any]:
        self._counter += 1
        body: dict[str, Any] = {
            "profile": "general",
            "familyName": "Yamada",
            "givenName": "Taro",
            "email": f"taro{self._counter}@example.jp",
            "qualificationGroup": "member",
            "qualificationNumber": "AB-1234",
            "postalAddress": "1-1 Chiyoda, Chiyoda-ku, Tokyo",
            "dateOfBirth": "1980-01-02",
            "billing": {"addressee": "self"},
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    def review_body(
        self,
        received: dt.date | None = None,
        issued: dt.date | None = None,
        selfInking: bool = False,
        **checks: bool,
    ) -> dict[str, Any]:
        received = received or self.clock.now().date() - dt.timedelta(days=2)
        issued = issued or received - dt.timedelta(days=20)
        record = {
            "issuedOn": issued.isoformat(),
            "original": True,
            "showsIndividualNumber": False,
            "nameMatches": True,
            "addressMatches": True,
            "dateOfBirthMatches": True,
            **checks,
        }
        return {
            "receivedOn": received.isoformat(),
            "residentRecord": record,
            "seal": {"selfInking": selfInking},
        }

    # -- the steps -------------------------------------------------------------------------------
    async def create(self, as_: str = "alice", **overrides: Any) -> Flow:
        body = self.application_body(**overrides)
        reply = (await self.call("POST", "/ra/applications", as_, body=body)).expect(201)
        created = reply.json
        assert created["state"] == "received"
        return Flow(id=created["id"], email=created["email"])

    async def prepare(
        self,
        until: str,
        *,
        creator: str = "alice",
        reviewer: str = "alice",
        approver: str = "bob",
        letter_first: bool = True,
        **overrides: Any,
    ) -> Flow:
        """A new application walked through the steps up to the state ``until`` (in STEPS)."""
        assert until in STEPS, until
        flow = await self.create(creator, **overrides)
        stop = STEPS.index(until)
        path = f"/ra/applications/{flow.id}"
        if stop >= 1:
            reply = await self.call("POST", path + "/review", reviewer, body=self.review_body())
            assert reply.expect(200).json["state"] == "documents_accepted"
        if stop >= 2:
            sent = await self.dispatch(flow, reviewer)
            assert sent["application"]["state"] == "inquiry_sent"
        if stop >= 3:
            steps = [self.letter, self.pay] if letter_first else [self.pay, self.letter]
            for step in steps:
                await step(flow, reviewer)
            assert (await self.record(flow.id)).state == "awaiting_online_input"
        if stop >= 4:
            reply = await self.online_input(flow.enrollment_id, flow.access_code, confirm=True)
            assert reply.expect(200).json["state"] == "online_input_received"
        if stop >= 5:
            await self.approve(flow, approver)
        return flow

    async def dispatch(self, flow: Flow, as_: str = "alice") -> dict[str, Any]:
        reply = await self.call(
            "POST",
            f"/ra/applications/{flow.id}/inquiry",
            as_,
            body={"trackingNumber": "RD123456785JP"},
        )
        sent = reply.expect(200).json
        flow.enrollment_id = sent["enrollmentId"]
        flow.access_code = sent["accessCode"]
        flow.invoice_number = sent["application"]["invoice"]["number"]
        return sent

    async def letter(self, flow: Flow, as_: str = "alice") -> dict[str, Any]:
        body = {"signed": True, "sealed": True, "selfInking": False}
        reply = await self.call("POST", f"/ra/applications/{flow.id}/letter", as_, body=body)
        return reply.expect(200).json

    async def pay(self, flow: Flow, as_: str = "alice") -> dict[str, Any]:
        body = {"invoiceNumber": flow.invoice_number, "amount": self.config.ra.invoice_amount}
        reply = await self.call("POST", f"/ra/applications/{flow.id}/payment", as_, body=body)
        return reply.expect(200).json

    async def online_input(self, enrollment_id: Any, access_code: Any, confirm: bool) -> Reply:
        body = {"enrollmentId": enrollment_id, "accessCode": access_code, "confirm": confirm}
        return await self.call("POST", "/applicant/online-input", body=body)

    async def approve(self, flow: Flow, as_: str = "bob") -> PinMail:
        """Approve, wait for the PIN e-mail and for ``pin_sent``; returns the parsed mail."""
        before = len(self.mailbox.messages_to(flow.email))
        reply = await self.call("POST", f"/ra/applications/{flow.id}/approve", as_)
        assert reply.expect(200).json["state"] == "approved"
        return await self.next_pin_mail(flow, before)

    async def next_pin_mail(self, flow: Flow, before: int) -> PinMail:
        messages = await self.mailbox.wait_for(flow.email, before + 1)
        flow.pin_mail = self.mailbox.parse_pin_mail(messages[before])
        await self.wait_state(flow.id, "pin_sent")
        return flow.pin_mail

    # -- the subscriber's side -------------------------------------------------------------------
    @staticmethod
    def csr(subject: x509.Name | None = None) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        """A fresh P-256 key and a PEM CSR for it (empty subject unless given)."""
        key = ec.generate_private_key(ec.SECP256R1())
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject or x509.Name([]))
            .sign(key, hashes.SHA256())
        )
        return key, request.public_bytes(serialization.Encoding.PEM)


async def _start_server(
    home: Path,
    port: int,
    smtp_port: int,
    *,
    clock: FixedClock,
    send_mail: bool,
    start_smtp: bool,
    two_person_rule: bool,
    pin_ttl_hours: int,
    mail_max_attempts: int,
    retry_seconds: int,
    poll_seconds: float,
    started: list[Any],
) -> RAServer:
    path = configuration.write_default(home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    text = path.read_text(encoding="utf-8")
    edits = {
        "smtp_port = 25": (
            f"smtp_port = {smtp_port}\npoll_seconds = {poll_seconds}\n"
            f"retry_seconds = {retry_seconds}\nmax_attempts = {mail_max_attempts}"
        ),
        "two_person_rule = true": f"two_person_rule = {str(two_person_rule).lower()}",
        "pin_ttl_hours = 336": f"pin_ttl_hours = {pin_ttl_hours}",
    }
    for default, edited in edits.items():
        assert text.count(default) == 1, f"write_default no longer writes {default!r}"
        text = text.replace(default, edited)
    path.write_text(text, encoding="utf-8")
    config = configuration.load(path, home)
    assert config.mail.smtp_port == smtp_port
    assert config.ra.two_person_rule is two_person_rule

    mailbox = Mailbox(smtp_port)
    if start_smtp:
        mailbox.start()
    started.append(mailbox.stop)
    authority = await Authority.open(config, clock)
    started.append(authority.close)
    app = create_app(authority, send_mail=send_mail)
    # Each operator replaces the token the host CLI made with one of their own, as the README
    # asks: until then the CLI's user counts as acting too (two-person rule).
    tokens = {}
    for name, role in OPERATORS.items():
        handed_over = await app[RA].add_operator("cli:host", name, role)
        tokens[name] = await app[RA].rotate_operator_token(
            await app[RA].authenticate(handed_over), name
        )
    runner = web.AppRunner(app)
    await runner.setup()
    started.append(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    session = ClientSession()
    started.append(session.close)
    return RAServer(
        home=home,
        config=config,
        clock=clock,
        authority=authority,
        app=app,
        runner=runner,
        base=f"http://127.0.0.1:{port}",
        session=session,
        mailbox=mailbox,
        tokens=tokens,
    )


@pytest.fixture
async def ra_server(tmp_path, free_port):
    """``await ra_server(**options)`` -> a running RAServer (see ``_start_server`` for options)."""
    started: list[Any] = []
    count = 0

    async def start(
        *,
        clock: FixedClock | None = None,
        send_mail: bool = True,
        start_smtp: bool = True,
        two_person_rule: bool = True,
        pin_ttl_hours: int = 336,
        mail_max_attempts: int = 8,
        retry_seconds: int = 60,
        poll_seconds: float = 0.05,
    ) -> RAServer:
        nonlocal count
        count += 1
        return await _start_server(
            tmp_path / f"home{count}",
            free_port(),
            free_port(),
            clock=clock or FixedClock(dt.datetime.now(UTC)),
            send_mail=send_mail,
            start_smtp=start_smtp,
            two_person_rule=two_person_rule,
            pin_ttl_hours=pin_ttl_hours,
            mail_max_attempts=mail_max_attempts,
            retry_seconds=retry_seconds,
            poll_seconds=poll_seconds,
            started=started,
        )

    yield start
    for stop in reversed(started):
        result = stop()
        if asyncio.iscoroutine(result):
            await result


@pytest.fixture
async def server(ra_server) -> RAServer:
    """One server with the defaults: mail worker on, SMTP up, two-person rule on."""
    return await ra_server()


@pytest.fixture(scope="session")
def months_back():
    return months_before

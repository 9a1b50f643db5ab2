"""A pickup the moment the PIN e-mail arrives races the mailer's approved -> pin_sent step: the
pickup redeems in approved or pin_sent alike (no 409, no discarded signature), and the mailer,
finding an application already issued, still marks its mail sent and goes on with its batch.

The recipient is a real SMTP server (aiosmtpd) that starts the pickup as soon as it has the PIN
mail, before the mailer has heard its 250 reply: the mailer's step then runs while the pickup
is signing, as when an applicant clicks the link at once."""

from __future__ import annotations

import asyncio
import email
import email.policy
from typing import Any

from aiosmtpd.controller import Controller

from jitsuin.server.ra.errors import RAError
from jitsuin.server.ra.mailer import Mailer

APPLICATIONS = 12


class PickingUp:
    """An SMTP handler whose recipient picks the certificate up on receipt of the PIN mail."""

    def __init__(self, server: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.pickups: list[asyncio.Task[Any]] = []

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        mail = self.server.mailbox.parse_pin_mail(message)
        self.loop.call_soon_threadsafe(self._start, mail.enrollment_id, mail.pin)
        return "250 OK"

    def _start(self, enrollment_id: str, pin: str) -> None:
        self.pickups.append(self.loop.create_task(self._pickup(enrollment_id, pin)))

    async def _pickup(self, enrollment_id: str, pin: str) -> Any:
        _, csr = self.server.csr()
        try:
            return await self.server.ra.redeem(enrollment_id, pin, csr, "est", "192.0.2.1")
        except RAError as exc:
            return exc


async def test_pickups_racing_the_mailer_all_redeem_and_every_mail_is_marked_sent(ra_server):
    server = await ra_server(send_mail=False, start_smtp=False)
    flows = [await server.prepare("online_input_received") for _ in range(APPLICATIONS)]
    for flow in flows:
        reply = await server.call("POST", f"/ra/applications/{flow.id}/approve", "bob")
        assert reply.expect(200).json["state"] == "approved"

    recipient = PickingUp(server, asyncio.get_running_loop())
    smtp = Controller(recipient, hostname="127.0.0.1", port=server.config.mail.smtp_port)
    smtp.start()
    try:
        mailer = Mailer(server.ra, server.config.mail)
        delivered = await mailer.send_due()  # one batch: every mail, each picked up at once
        results = await asyncio.gather(*recipient.pickups)
    finally:
        smtp.stop()

    refused = [r for r in results if isinstance(r, RAError)]
    assert refused == [], [f"{r.kind.value}: {r.message}" for r in refused]
    assert (delivered, len(results)) == (APPLICATIONS, APPLICATIONS)
    assert all(not r.repeated for r in results)
    assert {(await server.record(f.id)).state for f in flows} == {"issued"}
    sent = (await server.call("GET", "/ra/mail?status=sent", "bob")).expect(200).json["mail"]
    assert len(sent) == APPLICATIONS
    store = server.authority.store
    # Every signature of the CA key is one certificate handed out: none thrown away.
    assert await store.intents("discarded") == []
    assert await store.intents("reserved") == []
    assert len(await store.intents("issued")) == APPLICATIONS
    actions = [e.event.action for e in await store.audit_log(limit=10_000)]
    assert "certificate.discarded" not in actions

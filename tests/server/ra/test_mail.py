"""The PIN e-mail outbox when the SMTP relay is down: approval still succeeds, the mail waits
with its attempts and last error visible, fails after mail.max_attempts, and an operator's retry
delivers it once the relay is back. The outbox is driven with Mailer.send_due and a FixedClock."""

from __future__ import annotations

import datetime as dt

from jitsuin.server.ra.mailer import Mailer


async def outbox(server, status=None, as_="bob"):
    query = f"?status={status}" if status else ""
    reply = await server.call("GET", "/ra/mail" + query, as_)
    return reply.expect(200).json["mail"]


async def test_mail_failure_retry_and_delivery(ra_server):
    server = await ra_server(
        send_mail=False, start_smtp=False, mail_max_attempts=3, retry_seconds=10
    )
    mailer = Mailer(server.ra, server.config.mail)
    flow = await server.prepare("online_input_received")

    # The relay is down: approval still succeeds and the PIN mail waits in the outbox.
    reply = await server.call("POST", f"/ra/applications/{flow.id}/approve", "bob")
    assert reply.expect(200).json["state"] == "approved"
    (queued,) = await outbox(server, "pending")
    assert queued["application"] == flow.id
    assert queued["recipient"] == flow.email
    assert (queued["kind"], queued["attempts"], queued["lastError"]) == ("pin", 0, None)

    assert await mailer.send_due() == 0
    (waiting,) = await outbox(server, "pending")
    assert waiting["attempts"] == 1
    assert waiting["lastError"]  # e.g. "SMTPConnectError: ... Connection refused"
    assert dt.datetime.fromisoformat(waiting["nextAttemptAt"]) == server.clock.now() + (
        dt.timedelta(seconds=10)
    )
    # Not due yet: nothing is tried.
    assert await mailer.send_due() == 0
    assert (await outbox(server, "pending"))[0]["attempts"] == 1

    server.clock.advance(dt.timedelta(seconds=10))  # first retry after retry_seconds
    assert await mailer.send_due() == 0
    (waiting,) = await outbox(server, "pending")
    assert waiting["attempts"] == 2
    assert dt.datetime.fromisoformat(waiting["nextAttemptAt"]) == server.clock.now() + (
        dt.timedelta(seconds=20)  # the delay doubles
    )
    server.clock.advance(dt.timedelta(seconds=20))
    assert await mailer.send_due() == 0
    assert await outbox(server, "pending") == []
    (failed,) = await outbox(server, "failed")
    assert failed["attempts"] == 3 and failed["lastError"]
    assert (await server.record(flow.id)).state == "approved"
    assert server.mailbox.received == []

    # Only approvers and admins handle mail; a retry of a mail that is not failed is refused.
    (await server.call("POST", f"/ra/mail/{failed['id']}/retry", "alice")).problem(403)
    (await server.call("POST", "/ra/mail/999/retry", "bob")).problem(409)
    (await server.call("POST", "/ra/mail/abc/retry", "bob")).problem(404)

    # The relay comes back; an operator re-queues the mail; it is delivered.
    server.mailbox.start()
    reply = await server.call("POST", f"/ra/mail/{failed['id']}/retry", "bob")
    assert reply.expect(202).json == {"id": failed["id"], "status": "pending"}
    assert (await outbox(server, "pending"))[0]["id"] == failed["id"]
    assert await mailer.send_due() == 1
    (sent,) = await outbox(server, "sent")
    assert sent["id"] == failed["id"]
    assert sent["sentAt"] == server.clock.now().isoformat()
    assert (await server.record(flow.id)).state == "pin_sent"
    (message,) = server.mailbox.messages_to(flow.email)
    mail = server.mailbox.parse_pin_mail(message)
    assert mail.enrollment_id == flow.enrollment_id
    # The delivered PIN is the one the application holds.
    _, csr = server.csr()
    redeemed = await server.ra.redeem(flow.enrollment_id, mail.pin, csr, "test", "192.0.2.1")
    assert redeemed.application.state == "issued"
    # A sent mail cannot be retried; its sealed body is gone.
    (await server.call("POST", f"/ra/mail/{failed['id']}/retry", "bob")).problem(409)
    (stored,) = await server.authority.store.mail("sent")
    assert stored.body_sealed is None

    audit = [e.event.action for e in await server.authority.store.audit_log(limit=1000)]
    assert audit.count("mail.retry") == 2
    assert audit.count("mail.failed") == 1
    assert audit.count("mail.requeue") == 1
    assert audit.count("mail.sent") == 1


async def test_reissued_pin_supersedes_the_waiting_mail(ra_server):
    server = await ra_server(send_mail=False, start_smtp=False, retry_seconds=10)
    mailer = Mailer(server.ra, server.config.mail)
    flow = await server.prepare("online_input_received")
    (await server.call("POST", f"/ra/applications/{flow.id}/approve", "bob")).expect(200)
    assert await mailer.send_due() == 0
    (await server.call("POST", f"/ra/applications/{flow.id}/reissue-pin", "bob")).expect(200)
    (superseded,) = await outbox(server, "superseded")
    (pending,) = await outbox(server, "pending")
    assert superseded["id"] < pending["id"]
    (stored,) = await server.authority.store.mail("superseded")
    assert stored.body_sealed is None  # the old PIN's mail is wiped, never sent

    server.mailbox.start()
    assert await mailer.send_due() == 1
    assert len(server.mailbox.received) == 1
    assert (await server.record(flow.id)).state == "pin_sent"


async def test_mail_listing_refuses_unknown_status(server):
    (await server.call("GET", "/ra/mail?status=lost", "bob")).problem(400)


async def test_the_pin_mail_is_readable_in_the_raw_message(ra_server):
    """A mail sink or a relay's log shows the raw message: the PIN, the enrollment ID and the EST
    URL must be readable there (quoted-printable UTF-8), not hidden in base64."""
    server = await ra_server(send_mail=False, start_smtp=True)
    mailer = Mailer(server.ra, server.config.mail)
    flow = await server.prepare("online_input_received")
    (await server.call("POST", f"/ra/applications/{flow.id}/approve", "bob")).expect(200)
    assert await mailer.send_due() == 1
    ((_, raw),) = server.mailbox.received
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b'Content-Type: text/plain; charset="utf-8"' in head
    assert b"Content-Transfer-Encoding: quoted-printable" in head
    mail = server.mailbox.parse_pin_mail(server.mailbox.messages_to(flow.email)[0])
    assert f"Download PIN: {mail.pin}".encode() in body
    assert f"Enrollment ID: {mail.enrollment_id}".encode() in body
    # The EST URL the applicant copies is whole on a line (no soft line break inside it).
    est = f"{server.config.server.public_https_url}/.well-known/est/general/simpleenroll"
    assert f"\r\n  {est}\r\n".encode() in body

"""Delivers queued PIN e-mails over SMTP (aiosmtplib). A failed send is retried with back-off and
stays visible to operators (GET /ra/mail); the PIN is never lost or silently unsent."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import logging
from email.message import Message

import aiosmtplib

from jitsuin.server.config import MailConfig
from jitsuin.server.ra.service import RAService
from jitsuin.server.storage import AuditEvent, Conflict, MailRecord

log = logging.getLogger("jitsuin.mail")
LEASE = dt.timedelta(minutes=5)


class Mailer:
    def __init__(self, service: RAService, config: MailConfig) -> None:
        self.service = service
        self.config = config
        self.store = service.store
        self.clock = service.clock

    async def _password(self) -> str | None:
        if self.config.password_file is None:
            return None
        return self.config.password_file.read_text().strip()

    async def send_due(self) -> int:
        """Send every mail that is due; returns how many were delivered."""
        delivered = 0
        now = self.clock.now()
        for mail in await self.store.due_mail(now, limit=20):
            if not await self.store.claim_mail(mail.id, now, now + LEASE):
                continue  # another process took it
            if await self._send(mail):
                delivered += 1
        return delivered

    async def _send(self, mail: MailRecord) -> bool:
        target = f"application/{mail.application_id}"
        if mail.body_sealed is None:
            return False
        message: Message = email.message_from_bytes(self.service.open_mail(mail.body_sealed))
        try:
            await aiosmtplib.send(
                message,
                hostname=self.config.smtp_host,
                port=self.config.smtp_port,
                start_tls=self.config.starttls,
                username=self.config.username,
                password=await self._password(),
                timeout=30,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            attempts = mail.attempts + 1
            final = attempts >= self.config.max_attempts
            delay = dt.timedelta(seconds=self.config.retry_seconds * 2 ** (attempts - 1))
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.warning("mail %s to %s failed (attempt %d): %s", mail.id, target, attempts, error)
            # Conflict: superseded by a reissued PIN meanwhile.
            with contextlib.suppress(Conflict):
                await self.store.mark_mail(
                    mail.id,
                    "failed" if final else "pending",
                    AuditEvent(
                        self.clock.now(),
                        "system",
                        "mail.failed" if final else "mail.retry",
                        target,
                        {"mail": mail.id, "attempt": attempts, "error": error},
                    ),
                    error=error,
                    next_attempt_at=self.clock.now() + delay,
                )
            return False
        try:
            await self.store.mark_mail(
                mail.id,
                "sent",
                AuditEvent(self.clock.now(), "system", "mail.sent", target, {"mail": mail.id}),
                sent_at=self.clock.now(),
            )
        except Conflict:
            return True
        await self.service.pin_mailed(mail.application_id)
        return True

    async def run(self) -> None:
        """Poll the outbox until cancelled."""
        while True:
            try:
                await self.send_due()
            except Exception:
                log.exception("the mail outbox could not be processed")
            await asyncio.sleep(self.config.poll_seconds)

"""What admins and approvers look at and fix: the audit log, the mail outbox, disclosure on an
in-person request (SEED-R18), re-enrollment requests waiting for an operator, and the CA
rollover."""

from __future__ import annotations

from typing import Any, Protocol

from jitsuin.ca.generations import CAGeneration
from jitsuin.server.ra.base import RABase, application_json
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.storage import (
    AuditEntry,
    Conflict,
    MailRecord,
    Operator,
    ReenrollmentRecord,
)


class Reenrollment(Protocol):
    """Where re-enrollment requests are decided (server/est/service.py)."""

    async def decide(self, request_id: int, approve: bool, operator: str) -> None: ...


MAIL_STATUSES = ("pending", "sent", "failed", "superseded")
REENROLLMENT_STATUSES = ("pending", "approved", "rejected", "issued")


class Oversight(RABase):
    async def audit_read(
        self, operator: Operator, action: str, target: str, subjects: list[str]
    ) -> None:
        """A read of personal data (addresses, names) is audited (SEED-R18)."""
        await self.store.append_audit(self._event(operator, action, target, {"subjects": subjects}))

    # -- the audit log ----------------------------------------------------------------------------
    async def audit_log(self, operator: Operator, after: int, limit: int) -> list[AuditEntry]:
        self.allow(operator, Permission.AUDIT_READ)
        return await self.store.audit_log(after, limit)

    async def verify_audit(self, operator: Operator) -> int:
        """How many entries the hash chain holds; ``AuditChainBroken`` if it is broken."""
        self.allow(operator, Permission.AUDIT_VERIFY)
        return await self.store.verify_audit_chain()

    # -- the PIN e-mail outbox --------------------------------------------------------------------
    async def mail(self, operator: Operator, status: str | None, limit: int) -> list[MailRecord]:
        """The outbox, an audited read of the recipients' addresses (SEED-R18)."""
        self.allow(operator, Permission.MAIL_READ)
        if status not in (None, *MAIL_STATUSES):
            raise RAError(RAKind.MALFORMED, "status is pending, sent, failed or superseded")
        records = await self.store.mail(status, limit)
        await self.audit_read(operator, "mail.list", "mail", [m.application_id for m in records])
        return records

    async def retry_mail(self, operator: Operator, mail_id: int) -> None:
        self.allow(operator, Permission.MAIL_RETRY)
        try:
            await self.store.retry_mail(
                mail_id, self.clock.now(), self._event(operator, "mail.requeue", f"mail/{mail_id}")
            )
        except Conflict as exc:
            raise RAError(RAKind.CONFLICT, str(exc)) from None

    # -- SEED-R18: disclosure on an in-person request ---------------------------------------------
    async def disclose(self, operator: Operator, app_id: str) -> dict[str, Any]:
        self.allow(operator, Permission.DISCLOSE)
        app = await self._load(app_id)
        people = await self.store.applications_by_email(app.email)
        certificates = []
        for a in people:
            if a.certificate_generation is not None and a.certificate_serial is not None:
                cert = await self.store.certificate(
                    a.certificate_generation, int(a.certificate_serial, 16)
                )
                certificates.append(
                    {
                        "serial": a.certificate_serial,
                        "subject": cert.subject,
                        "notBefore": cert.not_before.isoformat(),
                        "notAfter": cert.not_after.isoformat(),
                        "status": cert.status,
                    }
                )
        await self.store.append_audit(
            self._audit(
                operator,
                "application.disclose",
                app_id,
                {"applications": [a.id for a in people]},
            )
        )
        return {
            "subject": app.email,
            "exportedAt": self.clock.now().isoformat(),
            "exportedBy": operator.name,
            "applications": [application_json(a) for a in people],
            "certificates": certificates,
            "note": "The Individual Number is never stored by this CA (SEED-R8).",
        }

    # -- EST re-enrollment waiting for an operator (per-profile policy) ---------------------------
    async def reenrollments(
        self, operator: Operator, status: str | None
    ) -> list[ReenrollmentRecord]:
        self.allow(operator, Permission.REENROLLMENTS_READ)
        if status not in (None, *REENROLLMENT_STATUSES):
            raise RAError(RAKind.MALFORMED, "status is pending, approved, rejected or issued")
        records = await self.store.reenrollments(status)
        await self.audit_read(
            operator, "reenrollment.list", "reenrollments", [r.subscriber_id for r in records]
        )
        return records

    async def decide_reenrollment(
        self, operator: Operator, reenrollment: Reenrollment, request_id: int, approve: bool
    ) -> None:
        """The client's retry of the same CSR then gets the certificate (or the refusal)."""
        self.allow(operator, Permission.REENROLLMENTS_DECIDE)
        await reenrollment.decide(request_id, approve, operator.name)

    # -- the CA ----------------------------------------------------------------------------------
    async def rollover(self, operator: Operator) -> CAGeneration:
        """The next CA generation and its link certificates (SEED-R15...R17)."""
        self.allow(operator, Permission.CA_ROLLOVER)
        return await self.authority.rollover(operator.name)

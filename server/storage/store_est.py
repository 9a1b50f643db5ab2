"""EST's part of the store (``ESTStore``): re-enrollment requests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jitsuin.server.storage import (
    AuditEvent,
    CertificateRecord,
    Conflict,
    NotFound,
    ReenrollmentRecord,
)
from jitsuin.server.storage.driver import (
    Row,
    Session,
    Violation,
    moment,
    when,
)
from jitsuin.server.storage.store_base import Part, hex_serial


class ESTPart(Part):
    """``ESTStore``."""

    async def _reenrollments(self, where: str, *args: Any) -> list[ReenrollmentRecord]:
        rows = await self._db.fetch(
            f"SELECT {_REENROLL_COLUMNS} FROM reenrollments {where} ORDER BY id",  # noqa: S608
            *args,
        )
        return [_reenrollment(r) for r in rows]

    async def reenrollment(
        self, previous_generation: int, previous_serial: str, csr_sha256: str
    ) -> ReenrollmentRecord | None:
        found = await self._reenrollments(
            "WHERE previous_generation = ? AND previous_serial = ? AND csr_sha256 = ?",
            previous_generation,
            previous_serial,
            csr_sha256,
        )
        return found[0] if found else None

    async def reenrollment_by_id(self, reenrollment_id: int) -> ReenrollmentRecord:
        found = await self._reenrollments("WHERE id = ?", reenrollment_id)
        if not found:
            raise NotFound(f"no re-enrollment request {reenrollment_id}")
        return found[0]

    async def reenrollments(self, status: str | None = None) -> list[ReenrollmentRecord]:
        if status is None:
            return await self._reenrollments("")
        return await self._reenrollments("WHERE status = ?", status)

    async def add_reenrollment(
        self, record: ReenrollmentRecord, audit: AuditEvent
    ) -> ReenrollmentRecord:
        async def body(db: Session) -> int:
            try:
                row = await db.fetchrow(
                    "INSERT INTO reenrollments (previous_generation, previous_serial, csr_sha256,"
                    " csr_der, profile, subscriber_id, status, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    record.previous_generation,
                    record.previous_serial,
                    record.csr_sha256,
                    record.csr_der,
                    record.profile,
                    record.subscriber_id,
                    record.status,
                    record.created_at,
                )
            except Violation as exc:
                raise Conflict("this re-enrollment request exists") from exc
            assert row is not None
            await self._append(db, audit)
            return int(row[0])

        return await self.reenrollment_by_id(await self._db.transaction(body))

    async def decide_reenrollment(
        self, reenrollment_id: int, status: str, operator: str, at: dt.datetime, audit: AuditEvent
    ) -> None:
        await self._change_one(
            "UPDATE reenrollments SET status = ?, decided_by = ?, decided_at = ?"
            " WHERE id = ? AND status = 'pending'",
            (status, operator, at, reenrollment_id),
            Conflict(f"re-enrollment request {reenrollment_id} is not pending"),
            audit,
        )

    async def complete_reenrollment(
        self, reenrollment_id: int, certificate: CertificateRecord, audit: AuditEvent
    ) -> None:
        async def body(db: Session) -> None:
            changed = await db.execute(
                "UPDATE reenrollments SET status = 'issued', certificate_generation = ?,"
                " certificate_serial = ? WHERE id = ? AND status IN ('pending', 'approved')",
                certificate.generation,
                hex_serial(certificate.serial),
                reenrollment_id,
            )
            if changed != 1:
                raise Conflict(f"re-enrollment request {reenrollment_id} was already decided")
            await self._insert_certificate(db, certificate)
            await self._append(db, audit)

        await self._db.transaction(body)


_REENROLL_COLUMNS = (
    "id, previous_generation, previous_serial, csr_sha256, csr_der, profile, subscriber_id,"
    " status, created_at, decided_by, decided_at, certificate_generation, certificate_serial"
)


def _reenrollment(row: Row) -> ReenrollmentRecord:
    return ReenrollmentRecord(
        id=row[0],
        previous_generation=row[1],
        previous_serial=row[2],
        csr_sha256=row[3],
        csr_der=bytes(row[4]),
        profile=row[5],
        subscriber_id=row[6],
        status=row[7],
        created_at=when(row[8]),
        decided_by=row[9],
        decided_at=moment(row[10]),
        certificate_generation=row[11],
        certificate_serial=row[12],
    )

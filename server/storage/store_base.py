"""What every part of the store shares: the driver, the audit append that ends each writing
transaction, and the recording of a certificate (CA, RA, EST and ACME all record them)."""

from __future__ import annotations

from typing import Any

from jitsuin.server.storage import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    CertificateRecord,
    Conflict,
    canonical_details,
    chain_hash,
)
from jitsuin.server.storage.driver import (
    Driver,
    Session,
    Violation,
)


async def insert_new(db: Session, exists: str, sql: str, *args: Any) -> None:
    """Run the INSERT ``sql``; a row the schema refuses (its key exists) is Conflict(``exists``)."""
    try:
        await db.execute(sql, *args)
    except Violation as exc:
        raise Conflict(exists) from exc


def hex_serial(serial: int) -> str:
    """Serials are kept as lower-case hex text: 159 bits fit no integer column."""
    return format(serial, "x")


class Part:
    """The state every part of ``SQLStore`` works with."""

    _db: Driver

    @staticmethod
    async def _append(db: Session, event: AuditEvent) -> AuditEntry:
        """Chain ``event`` onto the committed head. Call it last in a transaction: on
        PostgreSQL the audit log's lock is held until COMMIT, so other writers queue here for
        as short a time as possible."""
        await db.lock_audit_log()
        last = await db.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        digest = chain_hash(prev_hash, seq, event)
        await db.execute(
            "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            seq,
            event.at,
            event.actor,
            event.action,
            event.target,
            canonical_details(event.details),
            prev_hash,
            digest,
        )
        return AuditEntry(seq=seq, event=event, prev_hash=prev_hash, hash=digest)

    async def _change_one(
        self, update: str, args: tuple[Any, ...], refused: Exception, audit: AuditEvent
    ) -> None:
        """``update`` with its audit entry in one transaction; it must change exactly one row
        (``refused`` is raised otherwise, nothing written)."""

        async def body(db: Session) -> None:
            if await db.execute(update, *args) != 1:
                raise refused
            await self._append(db, audit)

        await self._db.transaction(body)

    @staticmethod
    async def _insert_certificate(db: Session, record: CertificateRecord) -> None:
        try:
            await db.execute(
                "INSERT INTO certificates (generation, serial, der, subscriber_id, subject,"
                " email, profile, status, not_before, not_after, issued_at, spki_sha256)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                record.generation,
                hex_serial(record.serial),
                record.der,
                record.subscriber_id,
                record.subject,
                record.email,
                record.profile,
                record.status,
                record.not_before,
                record.not_after,
                record.issued_at,
                record.spki_sha256,
            )
        except Violation as exc:
            if "spki_sha256" in exc.columns:
                raise Conflict("this key was already certified for this subscriber") from exc
            if "serial" in exc.columns:
                raise Conflict(f"serial {record.serial:x} exists in this generation") from exc
            raise Conflict(str(exc)) from exc  # an unknown generation
        await db.execute(
            "UPDATE signing_intents SET state = 'issued', settled_at = ?"
            " WHERE generation = ? AND serial = ? AND state = 'reserved'",
            record.issued_at,
            record.generation,
            hex_serial(record.serial),
        )

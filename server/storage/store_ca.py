"""The CA's part of the store (``CAStore``, ``AuditStore``): generations and links,
certificates and their signing intents, revocation, CRLs, and the audit log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from jitsuin.server.storage import (
    AuditEntry,
    AuditEvent,
    CertificateRecord,
    Conflict,
    CRLRecord,
    GenerationRecord,
    IntentRecord,
    LinkRecord,
    NotFound,
    application_revoked,
    verify_audit_log,
)
from jitsuin.server.storage.driver import (
    Row,
    Session,
    Violation,
    moment,
    when,
)
from jitsuin.server.storage.store_base import Part, hex_serial, insert_new


class CAPart(Part):
    """``CAStore``."""

    # -- CA generations ----------------------------------------------------------------------
    async def add_generation(
        self, record: GenerationRecord, audit: AuditEvent, link: LinkRecord | None = None
    ) -> None:
        async def body(db: Session) -> None:
            await insert_new(
                db,
                f"CA generation {record.number} exists",
                "INSERT INTO ca_generations (number, certificate_der, key_ref, created_at)"
                " VALUES (?, ?, ?, ?)",
                record.number,
                record.certificate_der,
                record.key_ref,
                record.created_at,
            )
            if link is not None:
                await db.execute(
                    "INSERT INTO ca_links (old_generation, new_generation, old_with_new,"
                    " new_with_old) VALUES (?, ?, ?, ?)",
                    link.old_generation,
                    link.new_generation,
                    link.old_with_new,
                    link.new_with_old,
                )
            await self._append(db, audit)

        await self._db.transaction(body)

    async def links(self) -> list[LinkRecord]:
        rows = await self._db.lookups.fetch(  # a row per rollover
            "SELECT old_generation, new_generation, old_with_new, new_with_old FROM ca_links"
            " ORDER BY old_generation"
        )
        return [LinkRecord(r[0], r[1], bytes(r[2]), bytes(r[3])) for r in rows]

    async def generations(self) -> list[GenerationRecord]:
        rows = await self._db.lookups.fetch(  # a row per generation: read before each signature
            "SELECT number, certificate_der, key_ref, created_at FROM ca_generations"
            " ORDER BY number"
        )
        return [GenerationRecord(r[0], bytes(r[1]), r[2], when(r[3])) for r in rows]

    # -- revocation status -------------------------------------------------------------------
    async def revoked(
        self, generation: int
    ) -> list[tuple[int, dt.datetime, str | None, dt.datetime]]:
        rows = await self._db.fetch(
            "SELECT serial, revoked_at, revocation_reason, not_after FROM certificates"
            " WHERE generation = ? AND status = 'revoked' ORDER BY revoked_at, id",
            generation,
        )
        return [(int(r[0], 16), when(r[1]), r[2], when(r[3])) for r in rows]

    async def latest_expiry(self, generation: int) -> dt.datetime | None:
        row = await self._db.fetchrow(
            "SELECT max(not_after) FROM certificates WHERE generation = ?", generation
        )
        return moment(row[0]) if row else None

    async def next_crl(
        self, generation: int
    ) -> tuple[int, list[tuple[int, dt.datetime, str | None, dt.datetime]]]:
        async def body(db: Session) -> tuple[int, list[Row]]:
            # The counter's row stays locked until this transaction ends, and the revoked
            # certificates are read after it is taken: whoever draws the next number reads
            # later, so it lists at least these (RFC 5280 §3.3, §5.2.3), in any process.
            row = await db.fetchrow(
                "INSERT INTO counters (name, value) VALUES ('crl', 1)"
                " ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value"
            )
            assert row is not None
            rows = await db.fetch(
                "SELECT serial, revoked_at, revocation_reason, not_after FROM certificates"
                " WHERE generation = ? AND status = 'revoked' ORDER BY revoked_at, id",
                generation,
            )
            return int(row[0]), rows

        number, rows = await self._db.transaction(body)
        return number, [(int(r[0], 16), when(r[1]), r[2], when(r[3])) for r in rows]

    async def add_crl(self, record: CRLRecord) -> None:
        async def body(db: Session) -> None:
            await insert_new(
                db,
                f"CRL number {record.number} exists",
                "INSERT INTO crls (number, generation, this_update, next_update, der)"
                " VALUES (?, ?, ?, ?, ?)",
                record.number,
                record.generation,
                record.this_update,
                record.next_update,
                record.der,
            )

        await self._db.transaction(body)

    async def latest_crl(self, generation: int) -> CRLRecord | None:
        row = await self._db.fetchrow(
            "SELECT number, generation, this_update, next_update, der FROM crls"
            " WHERE generation = ? ORDER BY number DESC LIMIT 1",
            generation,
        )
        if row is None:
            return None
        return CRLRecord(row[0], row[1], when(row[2]), when(row[3]), bytes(row[4]))

    # -- certificates ------------------------------------------------------------------------
    async def record_certificate(self, record: CertificateRecord, audit: AuditEvent) -> None:
        async def body(db: Session) -> None:
            await self._insert_certificate(db, record)
            await self._append(db, audit)

        await self._db.transaction(body)

    # -- signing intents ---------------------------------------------------------------------
    async def reserve_intent(self, intent: IntentRecord) -> None:
        serial = hex_serial(intent.serial)

        async def body(db: Session) -> None:
            try:
                inserted = await db.execute(
                    "INSERT INTO signing_intents (generation, serial, profile, tbs_sha256,"
                    " requester, target, reserved_at) SELECT ?, ?, ?, ?, ?, ?, ?"
                    " WHERE NOT EXISTS (SELECT 1 FROM certificates"
                    " WHERE generation = ? AND serial = ?)",
                    intent.generation,
                    serial,
                    intent.profile,
                    intent.tbs_sha256,
                    intent.requester,
                    intent.target,
                    intent.reserved_at,
                    intent.generation,
                    serial,
                )
            except Violation as exc:
                raise Conflict(f"serial {serial} is already reserved in this generation") from exc
            if inserted != 1:
                raise Conflict(f"serial {serial} is already certified in this generation")

        await self._db.transaction(body)

    async def discard_intent(
        self, generation: int, serial: int, at: dt.datetime, audit: AuditEvent
    ) -> None:
        async def body(db: Session) -> None:
            # One conditional statement: of two racing discards (or a discard and the
            # certificate's recording) exactly one settles the intent.
            changed = await db.execute(
                "UPDATE signing_intents SET state = 'discarded', settled_at = ?"
                " WHERE generation = ? AND serial = ? AND state = 'reserved'",
                at,
                generation,
                hex_serial(serial),
            )
            if changed != 1:
                row = await db.fetchrow(
                    "SELECT state FROM signing_intents WHERE generation = ? AND serial = ?",
                    generation,
                    hex_serial(serial),
                )
                if row is None:
                    raise NotFound(f"no signing intent for serial {serial:x}")
                raise Conflict(f"the signing intent for serial {serial:x} is {row[0]}")
            await self._append(db, audit)

        await self._db.transaction(body)

    async def intents(self, state: str, limit: int = 1000) -> list[IntentRecord]:
        rows = await self._db.fetch(
            "SELECT generation, serial, profile, tbs_sha256, requester, target, reserved_at,"
            " state, settled_at FROM signing_intents WHERE state = ?"
            " ORDER BY reserved_at, generation, serial LIMIT ?",
            state,
            limit,
        )
        return [
            IntentRecord(r[0], int(r[1], 16), *r[2:6], when(r[6]), r[7], moment(r[8])) for r in rows
        ]

    async def certificates_without_intent(self, limit: int = 1000) -> list[tuple[int, int]]:
        rows = await self._db.fetch(
            "SELECT c.generation, c.serial FROM certificates c LEFT JOIN signing_intents i"
            " ON i.generation = c.generation AND i.serial = c.serial AND i.state = 'issued'"
            " WHERE i.serial IS NULL ORDER BY c.id LIMIT ?",
            limit,
        )
        return [(r[0], int(r[1], 16)) for r in rows]

    async def certificate(self, generation: int, serial: int) -> CertificateRecord:
        row = await self._db.lookups.fetchrow(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE generation = ? AND serial = ?",  # noqa: S608
            generation,
            hex_serial(serial),
        )
        if row is None:
            raise NotFound(f"no certificate with serial {serial:x} in generation {generation}")
        return _certificate(row)

    async def certificates(self, limit: int = 100, offset: int = 0) -> list[CertificateRecord]:
        rows = await self._db.fetch(
            f"SELECT {_CERT_COLUMNS} FROM certificates ORDER BY id LIMIT ? OFFSET ?",  # noqa: S608
            limit,
            offset,
        )
        return [_certificate(r) for r in rows]

    async def count_certificates(self) -> int:
        row = await self._db.fetchrow("SELECT count(*) FROM certificates")
        return int(row[0]) if row else 0

    async def used_keys(self, subscriber_id: str) -> set[str]:
        rows = await self._db.lookups.fetch(
            "SELECT spki_sha256 FROM certificates WHERE subscriber_id = ?", subscriber_id
        )
        return {row[0] for row in rows}

    # -- revocation ------------------------------------------------------------------------------
    async def revoke_certificate(
        self, generation: int, serial: int, reason: str, at: dt.datetime, audit: AuditEvent
    ) -> None:
        async def body(db: Session) -> None:
            changed = await db.execute(
                "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?"
                " WHERE generation = ? AND serial = ? AND status = 'valid'",
                at,
                reason,
                generation,
                hex_serial(serial),
            )
            if changed != 1:
                raise Conflict(f"certificate {serial:x} is unknown or already revoked")
            closed = await db.fetch(
                "UPDATE applications SET state = 'revoked', closed_reason = ?, updated_at = ?,"
                " version = version + 1 WHERE certificate_generation = ?"
                " AND certificate_serial = ? AND state = 'issued' RETURNING id",
                reason,
                at,
                generation,
                hex_serial(serial),
            )
            await self._append(db, audit)
            for (application_id,) in closed:
                await self._append(db, application_revoked(application_id, reason, audit))

        await self._db.transaction(body)


_AUDIT_SELECT = "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log"


def _audit_entry(r: Any) -> AuditEntry:
    return AuditEntry(
        seq=r[0],
        event=AuditEvent(when(r[1]), r[2], r[3], r[4], json.loads(r[5])),
        prev_hash=r[6],
        hash=r[7],
    )


class AuditPart(Part):
    """``AuditStore``."""

    async def append_audit(self, event: AuditEvent) -> AuditEntry:
        return await self._db.transaction(lambda db: self._append(db, event))

    async def audit_log(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        rows = await self._db.fetch(
            f"{_AUDIT_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", after_seq, limit
        )
        return [_audit_entry(r) for r in rows]

    async def audit_entries(
        self,
        target: str | None = None,
        actor: str | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        conditions, args = ["seq < ?"], [before_seq if before_seq is not None else 2**62]
        if target is not None:
            conditions.append("target = ?")
            args.append(target)
        if actor is not None:
            conditions.append("actor = ?")
            args.append(actor)
        rows = await self._db.fetch(
            f"{_AUDIT_SELECT} WHERE {' AND '.join(conditions)} ORDER BY seq DESC LIMIT ?",
            *args,
            limit,
        )
        return [_audit_entry(r) for r in rows]

    async def verify_audit_chain(self) -> int:
        async def read_head() -> tuple[int, str] | None:
            row = await self._db.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1")
            return (row[0], row[1]) if row else None

        return await verify_audit_log(
            lambda after: self.audit_log(after_seq=after, limit=1000), read_head
        )


_CERT_COLUMNS = (
    "generation, serial, der, subscriber_id, subject, email, profile, not_before,"
    " not_after, issued_at, spki_sha256, status, revoked_at, revocation_reason"
)


def _certificate(row: Row) -> CertificateRecord:
    return CertificateRecord(
        generation=row[0],
        serial=int(row[1], 16),
        der=bytes(row[2]),
        subscriber_id=row[3],
        subject=row[4],
        email=row[5],
        profile=row[6],
        not_before=when(row[7]),
        not_after=when(row[8]),
        issued_at=when(row[9]),
        spki_sha256=row[10],
        status=row[11],
        revoked_at=moment(row[12]),
        revocation_reason=row[13],
    )

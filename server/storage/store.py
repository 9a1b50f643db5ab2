"""The one store: every ``Store`` method, written once over a ``Driver`` (``driver.py``).

``SQLiteStore`` (``sqlite.py``) and ``PostgresStore`` (``postgres.py``) are this class with
their driver and their keeper of ACME nonces. Each writing method is one transaction
(``self._db.transaction``) that ends with its audit entry (``_append``): on PostgreSQL the audit
log's lock is then held for as short a time as possible. ``Conflict`` and ``NotFound`` carry the
same messages on both databases (tests/server/test_store_contract.py).

To add a query: write it here once with ``?`` placeholders, passing datetimes and bools as
Python values, and decode time columns with ``when`` / ``moment``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import Any, Protocol

from jitsuin.server.storage import (
    ACME_CANCELLABLE_ORDERS,
    GENESIS_HASH,
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallengeRecord,
    AcmeEABKeyRecord,
    AcmeOrderRecord,
    ApplicationRecord,
    Attempt,
    AttemptPolicy,
    AuditEntry,
    AuditEvent,
    CertificateRecord,
    Conflict,
    Credential,
    CRLRecord,
    GenerationRecord,
    IntentRecord,
    LinkRecord,
    MailRecord,
    NotFound,
    Operator,
    OutboxMail,
    Outcome,
    ReenrollmentRecord,
    acme_cancelled,
    application_revoked,
    canonical_details,
    chain_hash,
    entry_persons,
    persons_column,
    persons_from_column,
    verify_audit_log,
)
from jitsuin.server.storage.driver import (
    Driver,
    Reader,
    Row,
    Session,
    Violation,
    marks,
    moment,
    when,
)


class Nonces(Protocol):
    """Where a store keeps the ACME nonces it hands out (RFC 8555 §6.5): in the process's memory
    (``sqlite.MemoryNonces``) or in a table every process sees (``postgres.TableNonces``)."""

    async def add(self, values: Sequence[str], expires_at: dt.datetime) -> None: ...

    async def use(self, value: str, now: dt.datetime) -> bool: ...

    async def prune(self, now: dt.datetime) -> int: ...


async def _insert(db: Session, exists: str, sql: str, *args: Any) -> None:
    """Run the INSERT ``sql``; a row the schema refuses (its key exists) is Conflict(``exists``)."""
    try:
        await db.execute(sql, *args)
    except Violation as exc:
        raise Conflict(exists) from exc


def _hex(serial: int) -> str:
    """Serials are kept as lower-case hex text: 159 bits fit no integer column."""
    return format(serial, "x")


class SQLStore:
    def __init__(self, driver: Driver, nonces: Nonces) -> None:
        self._db = driver
        self._nonces = nonces

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        row = await self._db.fetchrow("SELECT max(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

    # -- CA generations ----------------------------------------------------------------------
    async def add_generation(
        self, record: GenerationRecord, audit: AuditEvent, link: LinkRecord | None = None
    ) -> None:
        async def body(db: Session) -> None:
            await _insert(
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
        rows = await self._db.fetch(
            "SELECT old_generation, new_generation, old_with_new, new_with_old FROM ca_links"
            " ORDER BY old_generation"
        )
        return [LinkRecord(r[0], r[1], bytes(r[2]), bytes(r[3])) for r in rows]

    async def generations(self) -> list[GenerationRecord]:
        rows = await self._db.fetch(
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

    async def next_counter(self, name: str) -> int:
        async def body(db: Session) -> Row | None:
            return await db.fetchrow(
                "INSERT INTO counters (name, value) VALUES (?, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                name,
            )

        row = await self._db.transaction(body)
        assert row is not None
        return int(row[0])

    async def add_crl(self, record: CRLRecord) -> None:
        async def body(db: Session) -> None:
            await _insert(
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

    @staticmethod
    async def _insert_certificate(db: Session, record: CertificateRecord) -> None:
        try:
            await db.execute(
                "INSERT INTO certificates (generation, serial, der, subscriber_id, subject,"
                " email, profile, status, not_before, not_after, issued_at, spki_sha256)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                record.generation,
                _hex(record.serial),
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
            _hex(record.serial),
        )

    # -- signing intents ---------------------------------------------------------------------
    async def reserve_intent(self, intent: IntentRecord) -> None:
        serial = _hex(intent.serial)

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
                _hex(serial),
            )
            if changed != 1:
                row = await db.fetchrow(
                    "SELECT state FROM signing_intents WHERE generation = ? AND serial = ?",
                    generation,
                    _hex(serial),
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
        row = await self._db.fetchrow(
            f"SELECT {_CERT_COLUMNS} FROM certificates WHERE generation = ? AND serial = ?",  # noqa: S608
            generation,
            _hex(serial),
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
        rows = await self._db.fetch(
            "SELECT spki_sha256 FROM certificates WHERE subscriber_id = ?", subscriber_id
        )
        return {row[0] for row in rows}

    # -- audit log ---------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> AuditEntry:
        return await self._db.transaction(lambda db: self._append(db, event))

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

    async def audit_log(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        rows = await self._db.fetch(
            "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            after_seq,
            limit,
        )
        return [
            AuditEntry(
                seq=r[0],
                event=AuditEvent(when(r[1]), r[2], r[3], r[4], json.loads(r[5])),
                prev_hash=r[6],
                hash=r[7],
            )
            for r in rows
        ]

    async def verify_audit_chain(self) -> int:
        async def read_head() -> tuple[int, str] | None:
            row = await self._db.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1")
            return (row[0], row[1]) if row else None

        return await verify_audit_log(
            lambda after: self.audit_log(after_seq=after, limit=1000), read_head
        )

    async def audit_persons(self, target: str, actions: frozenset[str]) -> set[str]:
        if not actions:
            return set()
        rows = await self._db.fetch(
            "SELECT actor, details FROM audit_log"  # noqa: S608
            f" WHERE target = ? AND action IN ({marks(len(actions))})",
            target,
            *sorted(actions),
        )
        return {p for actor, details in rows for p in entry_persons(actor, json.loads(details))}

    # -- operators -------------------------------------------------------------------------------
    async def add_operator(self, operator: Operator, token_hash: str, audit: AuditEvent) -> None:
        async def body(db: Session) -> None:
            await _insert(
                db,
                f"operator {operator.name!r} exists",
                "INSERT INTO operators (name, role, token_hash, created_at, token_set_by)"
                " VALUES (?, ?, ?, ?, ?)",
                operator.name,
                operator.role,
                token_hash,
                operator.created_at,
                persons_column(operator.token_set_by),
            )
            await self._append(db, audit)

        await self._db.transaction(body)

    async def _operator_where(self, clause: str, *args: Any) -> Operator | None:
        row = await self._db.fetchrow(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE {clause}",  # noqa: S608
            *args,
        )
        return _operator(row) if row else None

    async def operator_by_token(self, token_hash: str) -> Operator | None:
        return await self._operator_where("token_hash = ?", token_hash)

    async def operator_by_certificate(self, sha256: str) -> Operator | None:
        return await self._operator_where("cert_sha256 = ?", sha256)

    async def operators(self) -> list[Operator]:
        rows = await self._db.fetch(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators ORDER BY name"  # noqa: S608
        )
        return [_operator(r) for r in rows]

    async def bind_operator_certificate(
        self,
        name: str,
        sha256: str,
        generation: int,
        serial: int,
        audit: AuditEvent,
        *,
        bound_by: tuple[str, ...],
    ) -> None:
        await self._set_operator_credential(
            name,
            "UPDATE operators SET cert_sha256 = ?, cert_generation = ?, cert_serial = ?,"
            " cert_bound_by = ? WHERE name = ?",
            (sha256, generation, _hex(serial), persons_column(bound_by), name),
            "the certificate is bound to another operator",
            audit,
        )

    async def rotate_operator_token(
        self, name: str, token_hash: str, audit: AuditEvent, *, set_by: tuple[str, ...]
    ) -> None:
        await self._set_operator_credential(
            name,
            "UPDATE operators SET token_hash = ?, token_set_by = ? WHERE name = ?",
            (token_hash, persons_column(set_by), name),
            "the token hash belongs to another operator",
            audit,
        )

    async def _set_operator_credential(
        self, name: str, update: str, args: tuple[Any, ...], taken: str, audit: AuditEvent
    ) -> None:
        """Run ``update`` of the operator ``name`` with its audit entry in one transaction:
        NotFound without such an operator, Conflict (``taken``) when another operator has the
        credential."""

        async def body(db: Session) -> None:
            try:
                changed = await db.execute(update, *args)
            except Violation as exc:
                raise Conflict(taken) from exc
            if changed != 1:
                raise NotFound(f"there is no operator {name!r}")
            await self._append(db, audit)

        await self._db.transaction(body)

    async def unbind_operator_certificate(self, name: str, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET cert_sha256 = NULL, cert_generation = NULL,"
            " cert_serial = NULL, cert_bound_by = NULL WHERE name = ? AND cert_sha256 IS NOT NULL",
            (name,),
            f"operator {name!r} has no certificate bound",
            audit,
        )

    async def disable_operator(self, name: str, at: dt.datetime, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL",
            (at, name),
            f"operator {name!r} is disabled already",
            audit,
        )

    async def enable_operator(self, name: str, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET disabled_at = NULL WHERE name = ? AND disabled_at IS NOT NULL",
            (name,),
            f"operator {name!r} is not disabled",
            audit,
        )

    async def _change_operator(
        self, name: str, update: str, args: tuple[Any, ...], conflict: str, audit: AuditEvent
    ) -> None:
        """Run a conditional ``update`` of the operator ``name`` with its audit entry in one
        transaction: NotFound without such an operator, Conflict (``conflict``) when its
        condition does not hold."""

        async def body(db: Session) -> None:
            if await db.execute(update, *args) != 1:
                if await db.fetchrow("SELECT 1 FROM operators WHERE name = ?", name) is None:
                    raise NotFound(f"there is no operator {name!r}")
                raise Conflict(conflict)
            await self._append(db, audit)

        await self._db.transaction(body)

    # -- applications ----------------------------------------------------------------------------
    async def create_application(self, record: ApplicationRecord, audit: AuditEvent) -> None:
        values = _application_columns({f.name: getattr(record, f.name) for f in fields(record)})

        async def body(db: Session) -> None:
            await _insert(
                db,
                f"application {record.id} exists",
                f"INSERT INTO applications ({', '.join(values)})"  # noqa: S608
                f" VALUES ({marks(len(values))})",
                *values.values(),
            )
            await self._append(db, audit)

        await self._db.transaction(body)

    @staticmethod
    async def _application_where(db: Reader, tail: str, *args: Any) -> list[ApplicationRecord]:
        rows = await db.fetch(
            f"SELECT {', '.join(_APPLICATION_FIELDS)} FROM applications {tail}",  # noqa: S608
            *args,
        )
        return [_application(r) for r in rows]

    async def application(self, application_id: str) -> ApplicationRecord:
        found = await self._application_where(self._db, "WHERE id = ?", application_id)
        if not found:
            raise NotFound(f"no application {application_id}")
        return found[0]

    async def application_by_enrollment_id(self, enrollment_id: str) -> ApplicationRecord:
        found = await self._application_where(self._db, "WHERE enrollment_id = ?", enrollment_id)
        if not found:
            raise NotFound("unknown enrollment ID")
        return found[0]

    async def applications_by_email(self, email: str) -> list[ApplicationRecord]:
        return await self._application_where(
            self._db, "WHERE email = ? ORDER BY created_at, id", email
        )

    async def applications(
        self, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApplicationRecord]:
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        return await self._application_where(
            self._db, f"{where} ORDER BY created_at, id LIMIT ? OFFSET ?", *args, limit, offset
        )

    async def update_application(
        self,
        application_id: str,
        version: int,
        changes: Mapping[str, Any],
        audit: AuditEvent,
        mail: OutboxMail | None = None,
        certificate: CertificateRecord | None = None,
    ) -> ApplicationRecord:
        values = _application_columns(dict(changes))
        unknown = set(values) - set(_APPLICATION_FIELDS)
        if unknown or "id" in values or "version" in values:
            raise ValueError(
                f"not updatable: {sorted(unknown | ({'id', 'version'} & set(values)))}"
            )
        assignments = ", ".join(f"{name} = ?" for name in values)

        async def body(db: Session) -> ApplicationRecord:
            # One conditional statement: on PostgreSQL (READ COMMITTED) a concurrent writer's
            # row lock is waited for, then the version is compared with the committed row, so
            # of two racing updates exactly one applies.
            changed = await db.execute(
                f"UPDATE applications SET {assignments}, version = version + 1"  # noqa: S608
                " WHERE id = ? AND version = ?",
                *values.values(),
                application_id,
                version,
            )
            if changed != 1:
                current = await self._application_where(db, "WHERE id = ?", application_id)
                if not current:
                    raise NotFound(f"no application {application_id}")
                raise Conflict(
                    f"application {application_id} changed meanwhile (now {current[0].state})"
                )
            for counter in _ATTEMPT_COUNTERS & set(values):
                # A new credential (new letter, new PIN): the waits of its old tries go too.
                await db.execute(
                    "DELETE FROM attempt_throttle WHERE application_id = ? AND counter = ?",
                    application_id,
                    counter,
                )
            if certificate is not None:
                await self._insert_certificate(db, certificate)
            if mail is not None:
                await db.execute(
                    "UPDATE mail_outbox SET status = 'superseded', body_sealed = NULL"
                    " WHERE application_id = ? AND kind = ? AND status IN ('pending', 'failed')",
                    mail.application_id,
                    mail.kind,
                )
                await db.execute(
                    "INSERT INTO mail_outbox (application_id, kind, recipient, body_sealed,"
                    " status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                    mail.application_id,
                    mail.kind,
                    mail.recipient,
                    mail.body_sealed,
                    mail.next_attempt_at,
                    audit.at,
                )
            await self._append(db, audit)
            (updated,) = await self._application_where(db, "WHERE id = ?", application_id)
            return updated

        return await self._db.transaction(body)

    async def try_credential(
        self,
        application_id: str,
        credential: Credential,
        policy: AttemptPolicy,
        source: str,
        now: dt.datetime,
        matches: Callable[[Any], bool],
        failure: AuditEvent,
    ) -> Attempt:
        counter, column = credential.counter, credential.column
        refund = f"UPDATE applications SET {counter} = {counter} - 1 WHERE id = ?"  # noqa: S608
        throttle = "application_id = ? AND counter = ? AND source = ?"

        async def body(db: Session) -> Attempt:
            # Count first, in one conditional statement, so a try beyond the limit is never
            # compared however many arrive at once: tries of one application take turns until
            # COMMIT (SQLite: BEGIN IMMEDIATE; PostgreSQL: the row lock, the limit re-checked
            # after the wait).
            claimed = await db.fetchrow(
                f"UPDATE applications SET {counter} = {counter} + 1"  # noqa: S608
                f" WHERE id = ? AND {counter} < ? RETURNING {counter}, {column}",
                application_id,
                policy.limit,
            )
            if claimed is None:
                row = await db.fetchrow(
                    f"SELECT {counter} FROM applications WHERE id = ?",  # noqa: S608
                    application_id,
                )
                if row is None:
                    raise NotFound(f"no application {application_id}")
                return Attempt(Outcome.LOCKED, int(row[0]))
            tried, stored = int(claimed[0]), claimed[1]
            waiting = await db.fetchrow(
                f"SELECT wrong, retry_at FROM attempt_throttle WHERE {throttle}",  # noqa: S608
                application_id,
                counter,
                source,
            )
            wrong_here = int(waiting[0]) if waiting else 0
            if waiting and when(waiting[1]) > now:
                await db.execute(refund, application_id)
                return Attempt(Outcome.THROTTLED, tried - 1, when(waiting[1]))
            if matches(stored):
                await db.execute(refund, application_id)
                await db.execute(
                    f"DELETE FROM attempt_throttle WHERE {throttle}",  # noqa: S608
                    application_id,
                    counter,
                    source,
                )
                return Attempt(Outcome.RIGHT, tried - 1)
            await db.execute(
                "INSERT INTO attempt_throttle (application_id, counter, source, wrong, retry_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (application_id, counter, source)"
                " DO UPDATE SET wrong = excluded.wrong, retry_at = excluded.retry_at",
                application_id,
                counter,
                source,
                wrong_here + 1,
                now + policy.wait(wrong_here + 1),
            )
            await self._append(db, failure)
            return Attempt(Outcome.WRONG, tried)

        return await self._db.transaction(body)

    # -- mail outbox -----------------------------------------------------------------------------
    async def due_mail(self, now: dt.datetime, limit: int = 10) -> list[MailRecord]:
        rows = await self._db.fetch(
            f"SELECT {_MAIL_COLUMNS} FROM mail_outbox"  # noqa: S608
            " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            now,
            limit,
        )
        return [_mail(r) for r in rows]

    async def mail(self, status: str | None = None, limit: int = 100) -> list[MailRecord]:
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = await self._db.fetch(
            f"SELECT {_MAIL_COLUMNS} FROM mail_outbox {where} ORDER BY id LIMIT ?",  # noqa: S608
            *args,
            limit,
        )
        return [_mail(r) for r in rows]

    async def claim_mail(self, mail_id: int, now: dt.datetime, until: dt.datetime) -> bool:
        """Take a due mail for sending until ``until``, so that one process sends it."""

        async def body(db: Session) -> int:
            return await db.execute(
                "UPDATE mail_outbox SET next_attempt_at = ?"
                " WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?",
                until,
                mail_id,
                now,
            )

        return await self._db.transaction(body) == 1

    async def mark_mail(
        self,
        mail_id: int,
        status: str,
        audit: AuditEvent,
        error: str | None = None,
        next_attempt_at: dt.datetime | None = None,
        sent_at: dt.datetime | None = None,
    ) -> None:
        await self._change_one(
            "UPDATE mail_outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = coalesce(?, next_attempt_at), sent_at = ?,"
            " body_sealed = CASE WHEN ? THEN NULL ELSE body_sealed END"
            " WHERE id = ? AND status = 'pending'",
            (status, error, next_attempt_at, sent_at, status == "sent", mail_id),
            Conflict(f"mail {mail_id} is no longer pending"),
            audit,
        )

    async def retry_mail(self, mail_id: int, now: dt.datetime, audit: AuditEvent) -> None:
        await self._change_one(
            "UPDATE mail_outbox SET status = 'pending', next_attempt_at = ?"
            " WHERE id = ? AND status = 'failed' AND body_sealed IS NOT NULL",
            (now, mail_id),
            Conflict(f"mail {mail_id} is not a failed mail that can be retried"),
            audit,
        )

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
                _hex(serial),
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
                _hex(serial),
            )
            await self._append(db, audit)
            for (application_id,) in closed:
                await self._append(db, application_revoked(application_id, reason, audit))

        await self._db.transaction(body)

    # -- EST re-enrollment -------------------------------------------------------------------------
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
                _hex(certificate.serial),
                reenrollment_id,
            )
            if changed != 1:
                raise Conflict(f"re-enrollment request {reenrollment_id} was already decided")
            await self._insert_certificate(db, certificate)
            await self._append(db, audit)

        await self._db.transaction(body)

    # == ACME (RFC 8555): nonces, EAB keys, accounts, orders, authorizations, challenges ==========
    async def acme_add_nonce(self, value: str, expires_at: dt.datetime) -> None:
        await self._nonces.add([value], expires_at)

    async def acme_add_nonces(self, values: Sequence[str], expires_at: dt.datetime) -> None:
        await self._nonces.add(values, expires_at)

    async def acme_use_nonce(self, value: str, now: dt.datetime) -> bool:
        return await self._nonces.use(value, now)

    async def acme_prune_nonces(self, now: dt.datetime) -> int:
        return await self._nonces.prune(now)

    async def acme_add_eab_key(self, record: AcmeEABKeyRecord, audit: AuditEvent) -> None:
        async def body(db: Session) -> None:
            await _insert(
                db,
                f"EAB key {record.kid} exists",
                f"INSERT INTO acme_eab_keys ({_EAB_COLUMNS}) VALUES ({marks(12)})",  # noqa: S608
                record.kid,
                record.key_sealed,
                json.dumps(list(record.allowed)),
                record.lifetime_days,
                record.max_certificates,
                record.expires_at,
                record.note,
                record.created_by,
                record.created_at,
                record.used_at,
                record.account_id,
                record.disabled_at,
            )
            await self._append(db, audit)

        await self._db.transaction(body)

    async def acme_eab_key(self, kid: str) -> AcmeEABKeyRecord:
        row = await self._db.fetchrow(
            f"SELECT {_EAB_COLUMNS} FROM acme_eab_keys WHERE kid = ?",  # noqa: S608
            kid,
        )
        if row is None:
            raise NotFound(f"no EAB key {kid}")
        return _eab_key(row)

    async def acme_eab_keys(self) -> list[AcmeEABKeyRecord]:
        rows = await self._db.fetch(
            f"SELECT {_EAB_COLUMNS} FROM acme_eab_keys ORDER BY created_at, kid"  # noqa: S608
        )
        return [_eab_key(r) for r in rows]

    async def acme_disable_eab_key(self, kid: str, at: dt.datetime, audit: AuditEvent) -> None:
        await self._change_one(
            "UPDATE acme_eab_keys SET disabled_at = coalesce(disabled_at, ?) WHERE kid = ?",
            (at, kid),
            NotFound(f"no EAB key {kid}"),
            audit,
        )

    async def acme_create_account(
        self, record: AcmeAccountRecord, audit: AuditEvent, operator_key: bool
    ) -> None:
        async def body(db: Session) -> None:
            if operator_key:
                # EAB single use across processes: the second of two racing bindings waits for
                # the first's lock, then finds used_at set and updates nothing.
                changed = await db.execute(
                    "UPDATE acme_eab_keys SET used_at = ?, account_id = ?"
                    " WHERE kid = ? AND used_at IS NULL AND disabled_at IS NULL",
                    record.created_at,
                    record.id,
                    record.eab_kid,
                )
                if changed != 1:
                    raise Conflict(f"EAB key {record.eab_kid} is used, disabled or unknown")
            try:
                await db.execute(
                    f"INSERT INTO acme_accounts ({_ACCOUNT_COLUMNS}) VALUES ({marks(12)})",  # noqa: S608
                    record.id,
                    record.thumbprint,
                    canonical_details(record.jwk),
                    json.dumps(list(record.contact)),
                    record.status,
                    record.kind,
                    record.eab_kid,
                    record.eab_alg,
                    record.application_id,
                    bool(record.terms_agreed),
                    record.created_at,
                    record.updated_at,
                )
            except Violation as exc:
                if "thumbprint" in exc.columns:
                    raise Conflict("this key already has an account") from exc
                if "eab_kid" in exc.columns:
                    raise Conflict("this external account binding was used before") from exc
                raise Conflict(str(exc)) from exc
            await self._append(db, audit)

        await self._db.transaction(body)

    async def _acme_account_where(self, clause: str, *args: Any) -> AcmeAccountRecord | None:
        row = await self._db.fetchrow(
            f"SELECT {_ACCOUNT_COLUMNS} FROM acme_accounts WHERE {clause}",  # noqa: S608
            *args,
        )
        return _acme_account(row) if row else None

    async def acme_account(self, account_id: str) -> AcmeAccountRecord:
        found = await self._acme_account_where("id = ?", account_id)
        if found is None:
            raise NotFound(f"no ACME account {account_id}")
        return found

    async def acme_account_by_thumbprint(self, thumbprint: str) -> AcmeAccountRecord | None:
        return await self._acme_account_where("thumbprint = ?", thumbprint)

    async def acme_update_account(
        self, account_id: str, changes: Mapping[str, Any], audit: AuditEvent
    ) -> AcmeAccountRecord:
        values = _account_columns(
            changes, {"contact", "status", "terms_agreed", "jwk", "thumbprint", "updated_at"}
        )
        assignments = ", ".join(f"{name} = ?" for name in values)

        async def body(db: Session) -> None:
            try:
                changed = await db.execute(
                    f"UPDATE acme_accounts SET {assignments} WHERE id = ?",  # noqa: S608
                    *values.values(),
                    account_id,
                )
            except Violation as exc:
                raise Conflict("this key already has an account") from exc
            if changed != 1:
                raise NotFound(f"no ACME account {account_id}")
            await self._append(db, audit)

        await self._db.transaction(body)
        return await self.acme_account(account_id)

    @staticmethod
    async def _acme_insert_authz(db: Session, authz: AcmeAuthzRecord) -> None:
        await db.execute(
            "INSERT INTO acme_authorizations (id, account_id, identifier_type, identifier_value,"
            " wildcard, status, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            authz.id,
            authz.account_id,
            authz.identifier_type,
            authz.identifier_value,
            bool(authz.wildcard),
            authz.status,
            authz.expires_at,
            authz.created_at,
        )
        if authz.challenges:
            await db.executemany(
                "INSERT INTO acme_challenges (id, authz_id, type, token, status, validated_at,"
                " error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        challenge.id,
                        authz.id,
                        challenge.type,
                        challenge.token,
                        challenge.status,
                        challenge.validated_at,
                        canonical_details(challenge.error) if challenge.error else None,
                        challenge.updated_at,
                    )
                    for challenge in authz.challenges
                ],
            )

    async def acme_add_order(
        self,
        order: AcmeOrderRecord,
        new_authorizations: list[AcmeAuthzRecord],
        audit: AuditEvent,
    ) -> None:
        async def body(db: Session) -> None:
            for authz in new_authorizations:
                await self._acme_insert_authz(db, authz)
            await db.execute(
                "INSERT INTO acme_orders (id, account_id, status, expires_at, identifiers,"
                " profile, replaces, error, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                order.id,
                order.account_id,
                order.status,
                order.expires_at,
                json.dumps([list(i) for i in order.identifiers]),
                order.profile,
                order.replaces,
                canonical_details(order.error) if order.error else None,
                order.created_at,
                order.updated_at,
            )
            if order.authz_ids:
                await db.executemany(
                    "INSERT INTO acme_order_authorizations (order_id, authz_id) VALUES (?, ?)",
                    [(order.id, authz_id) for authz_id in order.authz_ids],
                )
            await self._append(db, audit)

        await self._db.transaction(body)

    async def acme_add_authorization(self, authz: AcmeAuthzRecord, audit: AuditEvent) -> None:
        async def body(db: Session) -> None:
            await self._acme_insert_authz(db, authz)
            await self._append(db, audit)

        await self._db.transaction(body)

    @staticmethod
    async def _acme_orders_where(db: Reader, clause: str, *args: Any) -> list[AcmeOrderRecord]:
        """The orders ``clause`` selects, each with its authorizations' ids in creation order:
        two queries, run on one connection (``Driver.read``) or in the caller's transaction."""
        rows = await db.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM acme_orders WHERE {clause}",  # noqa: S608
            *args,
        )
        if not rows:
            return []
        links = await db.fetch(
            "SELECT l.order_id, l.authz_id FROM acme_order_authorizations l"  # noqa: S608
            " JOIN acme_authorizations a ON a.id = l.authz_id"
            f" WHERE l.order_id IN ({marks(len(rows))}) ORDER BY a.seq",
            *(row[1] for row in rows),
        )
        authz_ids: dict[str, list[str]] = {}
        for order_id, authz_id in links:
            authz_ids.setdefault(order_id, []).append(authz_id)
        return [_acme_order(row, tuple(authz_ids.get(row[1], ()))) for row in rows]

    async def _acme_orders(self, clause: str, *args: Any) -> list[AcmeOrderRecord]:
        return await self._db.read(lambda db: self._acme_orders_where(db, clause, *args))

    async def acme_order(self, order_id: str) -> AcmeOrderRecord:
        found = await self._acme_orders("id = ?", order_id)
        if not found:
            raise NotFound(f"no ACME order {order_id}")
        return found[0]

    async def acme_orders(
        self, account_id: str, after_seq: int, limit: int
    ) -> list[AcmeOrderRecord]:
        return await self._acme_orders(
            "account_id = ? AND seq > ? ORDER BY seq LIMIT ?", account_id, after_seq, limit
        )

    async def acme_update_order(
        self,
        order_id: str,
        expected_status: str,
        changes: Mapping[str, Any],
        audit: AuditEvent | None = None,
        certificate: CertificateRecord | None = None,
    ) -> AcmeOrderRecord:
        allowed = {
            "status", "error", "csr_der", "reenrollment_id", "certificate_generation",
            "certificate_serial", "updated_at",
        }  # fmt: skip
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        values = {
            name: canonical_details(value) if name == "error" and value is not None else value
            for name, value in changes.items()
        }
        assignments = ", ".join(f"{name} = ?" for name in values)

        async def body(db: Session) -> AcmeOrderRecord:
            # The status check and the change are one statement: of two processes finalizing
            # one order, exactly one moves it on (and records its certificate).
            changed = await db.execute(
                f"UPDATE acme_orders SET {assignments} WHERE id = ? AND status = ?",  # noqa: S608
                *values.values(),
                order_id,
                expected_status,
            )
            if changed != 1:
                raise Conflict(f"order {order_id} is no longer {expected_status}")
            if certificate is not None:
                await self._insert_certificate(db, certificate)
            if audit is not None:
                await self._append(db, audit)
            (found,) = await self._acme_orders_where(db, "id = ?", order_id)
            return found

        return await self._db.transaction(body)

    async def acme_order_by_certificate(
        self, generation: int, serial: int
    ) -> AcmeOrderRecord | None:
        found = await self._acme_orders(
            "certificate_generation = ? AND certificate_serial = ?", generation, _hex(serial)
        )
        return found[0] if found else None

    async def acme_orders_replacing(self, cert_id: str) -> list[AcmeOrderRecord]:
        return await self._acme_orders("replaces = ? ORDER BY seq", cert_id)

    async def acme_count_orders(
        self, account_id: str, since: dt.datetime
    ) -> tuple[int, dt.datetime | None]:
        row = await self._db.fetchrow(
            "SELECT count(*), min(created_at) FROM acme_orders"
            " WHERE account_id = ? AND created_at > ?",
            account_id,
            since,
        )
        assert row is not None
        return int(row[0]), moment(row[1])

    async def acme_count_certificates(self, eab_kid: str) -> int:
        row = await self._db.fetchrow(
            "SELECT count(*) FROM acme_orders o JOIN acme_accounts a ON a.id = o.account_id"
            " WHERE a.eab_kid = ? AND o.certificate_serial IS NOT NULL",
            eab_kid,
        )
        return int(row[0]) if row else 0

    @staticmethod
    async def _acme_authz_where(db: Reader, clause: str, *args: Any) -> AcmeAuthzRecord | None:
        """The first authorization ``clause`` selects, with its challenges (as
        ``_acme_orders_where``, two queries)."""
        row = await db.fetchrow(
            f"SELECT {_AUTHZ_COLUMNS} FROM acme_authorizations WHERE {clause}",  # noqa: S608
            *args,
        )
        if row is None:
            return None
        challenges = await db.fetch(
            f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE authz_id = ?"  # noqa: S608
            " ORDER BY seq",
            row[0],
        )
        return _acme_authz(row, tuple(_acme_challenge(c) for c in challenges))

    async def _acme_authz(self, clause: str, *args: Any) -> AcmeAuthzRecord | None:
        return await self._db.read(lambda db: self._acme_authz_where(db, clause, *args))

    async def acme_authorization(self, authz_id: str) -> AcmeAuthzRecord:
        found = await self._acme_authz("id = ?", authz_id)
        if found is None:
            raise NotFound(f"no ACME authorization {authz_id}")
        return found

    async def acme_reusable_authorization(
        self,
        account_id: str,
        identifier_type: str,
        identifier_value: str,
        wildcard: bool,
        now: dt.datetime,
    ) -> AcmeAuthzRecord | None:
        return await self._acme_authz(
            "account_id = ? AND identifier_type = ? AND identifier_value = ? AND wildcard = ?"
            " AND status = 'valid' AND expires_at > ? ORDER BY seq DESC LIMIT 1",
            account_id,
            identifier_type,
            identifier_value,
            bool(wildcard),
            now,
        )

    async def acme_update_authorization(
        self, authz_id: str, expected_status: str, status: str, audit: AuditEvent | None = None
    ) -> AcmeAuthzRecord:
        async def body(db: Session) -> AcmeAuthzRecord:
            changed = await db.execute(
                "UPDATE acme_authorizations SET status = ? WHERE id = ? AND status = ?",
                status,
                authz_id,
                expected_status,
            )
            if changed != 1:
                raise Conflict(f"authorization {authz_id} is no longer {expected_status}")
            if audit is not None:
                await self._append(db, audit)
            found = await self._acme_authz_where(db, "id = ?", authz_id)
            assert found is not None
            return found

        return await self._db.transaction(body)

    async def acme_challenge(self, challenge_id: str) -> AcmeChallengeRecord:
        row = await self._db.fetchrow(
            f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = ?",  # noqa: S608
            challenge_id,
        )
        if row is None:
            raise NotFound(f"no ACME challenge {challenge_id}")
        return _acme_challenge(row)

    async def acme_update_challenge(
        self,
        challenge_id: str,
        expected_status: str,
        status: str,
        at: dt.datetime,
        error: Mapping[str, Any] | None = None,
        authz_status: str | None = None,
        audit: AuditEvent | None = None,
    ) -> AcmeChallengeRecord:
        async def body(db: Session) -> AcmeChallengeRecord:
            changed = await db.execute(
                "UPDATE acme_challenges SET status = ?, updated_at = ?, error = ?,"
                " validated_at = CASE WHEN ? THEN ? ELSE validated_at END"
                " WHERE id = ? AND status = ?",
                status,
                at,
                canonical_details(error) if error else None,
                status == "valid",
                at,
                challenge_id,
                expected_status,
            )
            if changed != 1:
                raise Conflict(f"challenge {challenge_id} is no longer {expected_status}")
            if authz_status is not None:
                await db.execute(
                    "UPDATE acme_authorizations SET status = ? WHERE status = 'pending' AND id ="
                    " (SELECT authz_id FROM acme_challenges WHERE id = ?)",
                    authz_status,
                    challenge_id,
                )
            if audit is not None:
                await self._append(db, audit)
            row = await db.fetchrow(
                f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = ?",  # noqa: S608
                challenge_id,
            )
            assert row is not None
            return _acme_challenge(row)

        return await self._db.transaction(body)

    async def acme_deactivate_account(
        self,
        account_id: str,
        changes: Mapping[str, Any],
        order_error: Mapping[str, Any],
        audit: AuditEvent,
    ) -> AcmeAccountRecord:
        if changes.get("status") != "deactivated":
            raise ValueError("acme_deactivate_account sets status 'deactivated'")
        values = _account_columns(changes, {"contact", "status", "terms_agreed", "updated_at"})
        assignments = ", ".join(f"{name} = ?" for name in values)
        cancellable = marks(len(ACME_CANCELLABLE_ORDERS))

        async def body(db: Session) -> None:
            changed = await db.execute(
                f"UPDATE acme_accounts SET {assignments}"  # noqa: S608
                " WHERE id = ? AND status = 'valid'",
                *values.values(),
                account_id,
            )
            if changed != 1:
                row = await db.fetchrow("SELECT status FROM acme_accounts WHERE id = ?", account_id)
                if row is None:
                    raise NotFound(f"no ACME account {account_id}")
                raise Conflict(f"ACME account {account_id} is {row[0]}, not valid")
            # Only what is read here is changed: the rows are locked as they are read
            # (``for_update``), so an order issued meanwhile is not cancelled.
            orders = await db.fetch(
                "SELECT id, status FROM acme_orders"  # noqa: S608
                f" WHERE account_id = ? AND status IN ({cancellable}) ORDER BY seq"
                f"{db.for_update}",
                account_id,
                *ACME_CANCELLABLE_ORDERS,
            )
            if orders:
                await db.execute(
                    "UPDATE acme_orders SET status = 'invalid', error = ?, updated_at = ?"  # noqa: S608
                    f" WHERE id IN ({marks(len(orders))})",
                    canonical_details(order_error),
                    audit.at,
                    *(row[0] for row in orders),
                )
            authzs = await db.fetch(
                "SELECT id FROM acme_authorizations"  # noqa: S608
                f" WHERE account_id = ? AND status = 'pending' ORDER BY seq{db.for_update}",
                account_id,
            )
            if authzs:
                await db.execute(
                    "UPDATE acme_authorizations SET status = 'deactivated'"  # noqa: S608
                    f" WHERE id IN ({marks(len(authzs))})",
                    *(row[0] for row in authzs),
                )
            await self._append(db, audit)
            for order_id, previous in orders:
                await self._append(db, acme_cancelled("order", order_id, previous, audit))
            for (authz_id,) in authzs:
                await self._append(db, acme_cancelled("authz", authz_id, "pending", audit))

        await self._db.transaction(body)
        return await self.acme_account(account_id)


# -- columns and row readers ----------------------------------------------------------------------
_CERT_COLUMNS = (
    "generation, serial, der, subscriber_id, subject, email, profile, not_before,"
    " not_after, issued_at, spki_sha256, status, revoked_at, revocation_reason"
)
_OPERATOR_COLUMNS = (
    "name, role, created_at, disabled_at, cert_sha256, cert_generation, cert_serial,"
    " token_set_by, cert_bound_by"
)
_MAIL_COLUMNS = (
    "id, application_id, kind, recipient, body_sealed, status, attempts, last_error,"
    " next_attempt_at, created_at, sent_at"
)
_REENROLL_COLUMNS = (
    "id, previous_generation, previous_serial, csr_sha256, csr_der, profile, subscriber_id,"
    " status, created_at, decided_by, decided_at, certificate_generation, certificate_serial"
)
_EAB_COLUMNS = (
    "kid, key_sealed, allowed, lifetime_days, max_certificates, expires_at, note, created_by,"
    " created_at, used_at, account_id, disabled_at"
)
_ACCOUNT_COLUMNS = (
    "id, thumbprint, jwk, contact, status, kind, eab_kid, eab_alg, application_id,"
    " terms_agreed, created_at, updated_at"
)
_ORDER_COLUMNS = (
    "seq, id, account_id, status, expires_at, identifiers, profile, replaces, error, csr_der,"
    " reenrollment_id, certificate_generation, certificate_serial, created_at, updated_at"
)
_AUTHZ_COLUMNS = (
    "id, account_id, identifier_type, identifier_value, wildcard, status, expires_at, created_at"
)
_CHALLENGE_COLUMNS = "id, authz_id, type, token, status, updated_at, validated_at, error"

# The applications table has one column per ApplicationRecord field, of the same name.
_APPLICATION_FIELDS = tuple(f.name for f in fields(ApplicationRecord))
_APPLICATION_TIMES = frozenset(name for name in _APPLICATION_FIELDS if name.endswith("_at"))
_ATTEMPT_COUNTERS = frozenset(c.counter for c in Credential)


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


def _application_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Application fields as their columns take them: times as datetimes (ISO 8601 text is
    read as one), the review as canonical JSON."""
    out = {}
    for name, value in values.items():
        if name in _APPLICATION_TIMES and isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        elif name == "review" and value is not None:
            value = canonical_details(value)
        out[name] = value
    return out


def _application(row: Row) -> ApplicationRecord:
    values = dict(zip(_APPLICATION_FIELDS, row, strict=True))
    for name in _APPLICATION_TIMES:
        values[name] = moment(values[name])
    if values["review"]:
        values["review"] = json.loads(values["review"])
    if values["eab_key_sealed"] is not None:
        values["eab_key_sealed"] = bytes(values["eab_key_sealed"])
    return ApplicationRecord(**values)


def _operator(row: Row) -> Operator:
    return Operator(
        name=row[0],
        role=row[1],
        created_at=when(row[2]),
        disabled_at=moment(row[3]),
        certificate_sha256=row[4],
        certificate_generation=row[5],
        certificate_serial=int(row[6], 16) if row[6] is not None else None,
        token_set_by=persons_from_column(row[7]),
        certificate_bound_by=persons_from_column(row[8]) if row[4] is not None else (),
    )


def _mail(row: Row) -> MailRecord:
    return MailRecord(
        id=row[0],
        application_id=row[1],
        kind=row[2],
        recipient=row[3],
        body_sealed=bytes(row[4]) if row[4] is not None else None,
        status=row[5],
        attempts=row[6],
        last_error=row[7],
        next_attempt_at=when(row[8]),
        created_at=when(row[9]),
        sent_at=moment(row[10]),
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


def _eab_key(row: Row) -> AcmeEABKeyRecord:
    return AcmeEABKeyRecord(
        kid=row[0],
        key_sealed=bytes(row[1]),
        allowed=tuple(json.loads(row[2])),
        lifetime_days=row[3],
        max_certificates=row[4],
        expires_at=moment(row[5]),
        note=row[6],
        created_by=row[7],
        created_at=when(row[8]),
        used_at=moment(row[9]),
        account_id=row[10],
        disabled_at=moment(row[11]),
    )


def _account_columns(changes: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    """The acme_accounts columns ``changes`` sets (only ``allowed`` ones), as they keep them."""
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "contact":
            value = json.dumps(list(value))
        elif name == "jwk":
            value = canonical_details(value)
        elif name == "terms_agreed":
            value = bool(value)
        values[name] = value
    return values


def _acme_account(row: Row) -> AcmeAccountRecord:
    return AcmeAccountRecord(
        id=row[0],
        thumbprint=row[1],
        jwk=json.loads(row[2]),
        contact=tuple(json.loads(row[3])),
        status=row[4],
        kind=row[5],
        eab_kid=row[6],
        eab_alg=row[7],
        application_id=row[8],
        terms_agreed=bool(row[9]),
        created_at=when(row[10]),
        updated_at=when(row[11]),
    )


def _acme_order(row: Row, authz_ids: tuple[str, ...]) -> AcmeOrderRecord:
    return AcmeOrderRecord(
        seq=row[0],
        id=row[1],
        account_id=row[2],
        status=row[3],
        expires_at=when(row[4]),
        identifiers=tuple((i[0], i[1]) for i in json.loads(row[5])),
        profile=row[6],
        replaces=row[7],
        error=json.loads(row[8]) if row[8] else None,
        csr_der=bytes(row[9]) if row[9] is not None else None,
        reenrollment_id=row[10],
        certificate_generation=row[11],
        certificate_serial=row[12],
        created_at=when(row[13]),
        updated_at=when(row[14]),
        authz_ids=authz_ids,
    )


def _acme_authz(row: Row, challenges: tuple[AcmeChallengeRecord, ...]) -> AcmeAuthzRecord:
    return AcmeAuthzRecord(
        id=row[0],
        account_id=row[1],
        identifier_type=row[2],
        identifier_value=row[3],
        wildcard=bool(row[4]),
        status=row[5],
        expires_at=when(row[6]),
        created_at=when(row[7]),
        challenges=challenges,
    )


def _acme_challenge(row: Row) -> AcmeChallengeRecord:
    return AcmeChallengeRecord(
        id=row[0],
        authz_id=row[1],
        type=row[2],
        token=row[3],
        status=row[4],
        updated_at=when(row[5]),
        validated_at=moment(row[6]),
        error=json.loads(row[7]) if row[7] else None,
    )

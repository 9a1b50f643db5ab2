"""The shared store for several server processes: PostgreSQL through an asyncpg pool.

It mirrors ``sqlite.py`` method by method: the same transaction boundaries, the same ``Conflict``
and ``NotFound`` messages, the same records. What must not race across processes is decided by
the database, never by this process:

- Audit appends serialize on ``LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE`` (the mode
  conflicts with itself, not with readers), taken as the last step of every writing transaction
  and held until it commits; the chain head is read after the lock is granted, so under READ
  COMMITTED it is the committed head. The primary key on ``seq`` and the unique ``hash`` are the
  backstop.
- Optimistic updates (``version``), attempt counters, mail claims and status changes are single
  ``UPDATE`` statements: PostgreSQL re-checks their WHERE clause after waiting for a concurrent
  writer's row lock, so exactly one of two racing processes wins.
- Certificate uniqueness (serial per generation, SEED-R2 key per subscriber) is the table's
  named UNIQUE constraints; violations map to ``Conflict`` by constraint name.

``database_url`` is a libpq URL (``postgresql://USER@HOST:PORT/DATABASE``); ``?schema=NAME``
keeps jitsuin's tables in that schema (created on first start), so one database can hold several
installations or test runs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any

import asyncpg

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
from jitsuin.server.storage.migrations import migrations

# pg_advisory_xact_lock key serializing migrations of processes that start together ("jitsuin").
_MIGRATION_LOCK = 0x6A697473_75696E
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def connect_arguments(url: str) -> tuple[str, str | None]:
    """Split ``url`` into the DSN asyncpg takes and jitsuin's own ``schema`` parameter."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a postgresql:// URL: {url!r}")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), None)
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"schema {schema!r}: use lower-case letters, digits and _")
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), schema


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _rows(status: str) -> int:
    """The row count of a command tag such as 'UPDATE 1'."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool, schema: str | None) -> None:
        self._pool = pool
        self._schema = schema

    @classmethod
    async def open(cls, url: str, *, max_connections: int = 10) -> PostgresStore:
        dsn, schema = connect_arguments(url)
        settings = {"search_path": f'"{schema}"'} if schema else {}
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=max_connections, server_settings=settings
        )
        try:
            store = cls(pool, schema)
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._pool.acquire() as connection, connection.transaction():
            yield connection

    async def _migrate(self) -> None:
        async with self._transaction() as db:
            # Server processes starting together: one migrates, the others wait and find it done.
            await db.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if self._schema:
                await db.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)"
            )
            applied = {r[0] for r in await db.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in migrations("postgresql"):
                if version in applied:
                    continue
                await db.execute(sql)  # several statements: the simple query protocol
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                    version,
                    name,
                    dt.datetime.now(dt.UTC),
                )

    async def schema_version(self) -> int:
        value = await self._pool.fetchval("SELECT max(version) FROM schema_migrations")
        return int(value) if value is not None else 0

    # -- CA generations ----------------------------------------------------------------------
    async def add_generation(
        self, record: GenerationRecord, audit: AuditEvent, link: LinkRecord | None = None
    ) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    "INSERT INTO ca_generations (number, certificate_der, key_ref, created_at)"
                    " VALUES ($1, $2, $3, $4)",
                    record.number,
                    record.certificate_der,
                    record.key_ref,
                    _utc(record.created_at),
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict(f"CA generation {record.number} exists") from exc
            if link is not None:
                await db.execute(
                    "INSERT INTO ca_links (old_generation, new_generation, old_with_new,"
                    " new_with_old) VALUES ($1, $2, $3, $4)",
                    link.old_generation,
                    link.new_generation,
                    link.old_with_new,
                    link.new_with_old,
                )
            await self._append(db, audit)

    async def links(self) -> list[LinkRecord]:
        rows = await self._pool.fetch(
            "SELECT old_generation, new_generation, old_with_new, new_with_old FROM ca_links"
            " ORDER BY old_generation"
        )
        return [LinkRecord(r[0], r[1], bytes(r[2]), bytes(r[3])) for r in rows]

    # -- revocation status -------------------------------------------------------------------
    async def revoked(
        self, generation: int
    ) -> list[tuple[int, dt.datetime, str | None, dt.datetime]]:
        rows = await self._pool.fetch(
            "SELECT serial, revoked_at, revocation_reason, not_after FROM certificates"
            " WHERE generation = $1 AND status = 'revoked' ORDER BY revoked_at, id",
            generation,
        )
        return [(int(r[0], 16), r[1], r[2], r[3]) for r in rows]

    async def latest_expiry(self, generation: int) -> dt.datetime | None:
        value: dt.datetime | None = await self._pool.fetchval(
            "SELECT max(not_after) FROM certificates WHERE generation = $1", generation
        )
        return value

    async def next_counter(self, name: str) -> int:
        async with self._transaction() as db:
            value = await db.fetchval(
                "INSERT INTO counters (name, value) VALUES ($1, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                name,
            )
        return int(value)

    async def add_crl(self, record: CRLRecord) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    "INSERT INTO crls (number, generation, this_update, next_update, der)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    record.number,
                    record.generation,
                    _utc(record.this_update),
                    _utc(record.next_update),
                    record.der,
                )
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise Conflict(f"CRL {record.number}: {exc}") from exc

    async def latest_crl(self, generation: int) -> CRLRecord | None:
        row = await self._pool.fetchrow(
            "SELECT number, generation, this_update, next_update, der FROM crls"
            " WHERE generation = $1 ORDER BY number DESC LIMIT 1",
            generation,
        )
        if row is None:
            return None
        return CRLRecord(row[0], row[1], row[2], row[3], bytes(row[4]))

    async def generations(self) -> list[GenerationRecord]:
        rows = await self._pool.fetch(
            "SELECT number, certificate_der, key_ref, created_at FROM ca_generations"
            " ORDER BY number"
        )
        return [GenerationRecord(r[0], bytes(r[1]), r[2], r[3]) for r in rows]

    # -- certificates ------------------------------------------------------------------------
    async def record_certificate(self, record: CertificateRecord, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            await self._insert_certificate(db, record)
            await self._append(db, audit)

    async def _insert_certificate(self, db: asyncpg.Connection, record: CertificateRecord) -> None:
        try:
            await db.execute(
                "INSERT INTO certificates (generation, serial, der, subscriber_id, subject,"
                " email, profile, status, not_before, not_after, issued_at, spki_sha256)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                record.generation,
                format(record.serial, "x"),
                record.der,
                record.subscriber_id,
                record.subject,
                record.email,
                record.profile,
                record.status,
                _utc(record.not_before),
                _utc(record.not_after),
                _utc(record.issued_at),
                record.spki_sha256,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "certificates_key_unique":
                raise Conflict("this key was already certified for this subscriber") from exc
            if exc.constraint_name == "certificates_serial_unique":
                raise Conflict(f"serial {record.serial:x} exists in this generation") from exc
            raise Conflict(str(exc)) from exc
        except asyncpg.IntegrityConstraintViolationError as exc:  # an unknown generation
            raise Conflict(str(exc)) from exc
        await db.execute(
            "UPDATE signing_intents SET state = 'issued', settled_at = $1"
            " WHERE generation = $2 AND serial = $3 AND state = 'reserved'",
            _utc(record.issued_at),
            record.generation,
            format(record.serial, "x"),
        )

    # -- signing intents ---------------------------------------------------------------------
    async def reserve_intent(self, intent: IntentRecord) -> None:
        serial = format(intent.serial, "x")
        async with self._transaction() as db:
            try:
                status = await db.execute(
                    "INSERT INTO signing_intents (generation, serial, profile, tbs_sha256,"
                    " requester, target, reserved_at) SELECT $1, $2, $3, $4, $5, $6, $7"
                    " WHERE NOT EXISTS (SELECT 1 FROM certificates"
                    " WHERE generation = $1 AND serial = $2)",
                    intent.generation,
                    serial,
                    intent.profile,
                    intent.tbs_sha256,
                    intent.requester,
                    intent.target,
                    _utc(intent.reserved_at),
                )
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise Conflict(f"serial {serial} is already reserved in this generation") from exc
            if status != "INSERT 0 1":
                raise Conflict(f"serial {serial} is already certified in this generation")

    async def discard_intent(
        self, generation: int, serial: int, at: dt.datetime, audit: AuditEvent
    ) -> None:
        async with self._transaction() as db:
            state = await db.fetchval(
                "SELECT state FROM signing_intents WHERE generation = $1 AND serial = $2"
                " FOR UPDATE",
                generation,
                format(serial, "x"),
            )
            if state is None:
                raise NotFound(f"no signing intent for serial {serial:x}")
            if state != "reserved":
                raise Conflict(f"the signing intent for serial {serial:x} is {state}")
            await db.execute(
                "UPDATE signing_intents SET state = 'discarded', settled_at = $1"
                " WHERE generation = $2 AND serial = $3",
                _utc(at),
                generation,
                format(serial, "x"),
            )
            await self._append(db, audit)

    async def intents(self, state: str, limit: int = 1000) -> list[IntentRecord]:
        rows = await self._pool.fetch(
            "SELECT generation, serial, profile, tbs_sha256, requester, target, reserved_at,"
            " state, settled_at FROM signing_intents WHERE state = $1"
            " ORDER BY reserved_at, generation, serial LIMIT $2",
            state,
            limit,
        )
        return [IntentRecord(r[0], int(r[1], 16), *r[2:]) for r in rows]

    async def certificates_without_intent(self, limit: int = 1000) -> list[tuple[int, int]]:
        rows = await self._pool.fetch(
            "SELECT c.generation, c.serial FROM certificates c LEFT JOIN signing_intents i"
            " ON i.generation = c.generation AND i.serial = c.serial AND i.state = 'issued'"
            " WHERE i.serial IS NULL ORDER BY c.id LIMIT $1",
            limit,
        )
        return [(r[0], int(r[1], 16)) for r in rows]

    _CERT_COLUMNS = (
        "generation, serial, der, subscriber_id, subject, email, profile, not_before,"
        " not_after, issued_at, spki_sha256, status, revoked_at, revocation_reason"
    )

    @staticmethod
    def _certificate(row: asyncpg.Record) -> CertificateRecord:
        return CertificateRecord(
            generation=row[0],
            serial=int(row[1], 16),
            der=bytes(row[2]),
            subscriber_id=row[3],
            subject=row[4],
            email=row[5],
            profile=row[6],
            not_before=row[7],
            not_after=row[8],
            issued_at=row[9],
            spki_sha256=row[10],
            status=row[11],
            revoked_at=row[12],
            revocation_reason=row[13],
        )

    async def certificate(self, generation: int, serial: int) -> CertificateRecord:
        row = await self._pool.fetchrow(
            f"SELECT {self._CERT_COLUMNS} FROM certificates"  # noqa: S608
            " WHERE generation = $1 AND serial = $2",
            generation,
            format(serial, "x"),
        )
        if row is None:
            raise NotFound(f"no certificate with serial {serial:x} in generation {generation}")
        return self._certificate(row)

    async def certificates(self, limit: int = 100, offset: int = 0) -> list[CertificateRecord]:
        rows = await self._pool.fetch(
            f"SELECT {self._CERT_COLUMNS} FROM certificates ORDER BY id LIMIT $1 OFFSET $2",  # noqa: S608
            limit,
            offset,
        )
        return [self._certificate(r) for r in rows]

    async def count_certificates(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM certificates"))

    async def used_keys(self, subscriber_id: str) -> set[str]:
        rows = await self._pool.fetch(
            "SELECT spki_sha256 FROM certificates WHERE subscriber_id = $1", subscriber_id
        )
        return {row[0] for row in rows}

    # -- audit log ---------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> AuditEntry:
        async with self._transaction() as db:
            return await self._append(db, event)

    async def _append(self, db: asyncpg.Connection, event: AuditEvent) -> AuditEntry:
        """Chain ``event`` onto the committed head. Call it last in a transaction: the lock is
        held until COMMIT, so other writers queue here for as short a time as possible."""
        await db.execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
        last = await db.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        digest = chain_hash(prev_hash, seq, event)
        await db.execute(
            "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            seq,
            _utc(event.at),
            event.actor,
            event.action,
            event.target,
            canonical_details(event.details),
            prev_hash,
            digest,
        )
        return AuditEntry(seq=seq, event=event, prev_hash=prev_hash, hash=digest)

    async def audit_log(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        rows = await self._pool.fetch(
            "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log"
            " WHERE seq > $1 ORDER BY seq LIMIT $2",
            after_seq,
            limit,
        )
        return [
            AuditEntry(
                seq=r[0],
                event=AuditEvent(
                    at=r[1], actor=r[2], action=r[3], target=r[4], details=json.loads(r[5])
                ),
                prev_hash=r[6],
                hash=r[7],
            )
            for r in rows
        ]

    async def verify_audit_chain(self) -> int:
        async def read_head() -> tuple[int, str] | None:
            row = await self._pool.fetchrow("SELECT seq, hash FROM audit_head WHERE id = 1")
            return (row[0], row[1]) if row else None

        return await verify_audit_log(
            lambda after: self.audit_log(after_seq=after, limit=1000), read_head
        )

    # -- operators -------------------------------------------------------------------------------
    async def add_operator(self, operator: Operator, token_hash: str, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    "INSERT INTO operators (name, role, token_hash, created_at, token_set_by)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    operator.name,
                    operator.role,
                    token_hash,
                    _utc(operator.created_at),
                    persons_column(operator.token_set_by),
                )
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise Conflict(f"operator {operator.name!r} exists") from exc
            await self._append(db, audit)

    async def operator_by_token(self, token_hash: str) -> Operator | None:
        row = await self._pool.fetchrow(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE token_hash = $1",  # noqa: S608
            token_hash,
        )
        return _operator(row) if row else None

    async def operators(self) -> list[Operator]:
        rows = await self._pool.fetch(
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
        async with self._transaction() as db:
            try:
                status = await db.execute(
                    "UPDATE operators SET cert_sha256 = $1, cert_generation = $2, cert_serial = $3,"
                    " cert_bound_by = $4 WHERE name = $5",
                    sha256,
                    generation,
                    format(serial, "x"),
                    persons_column(bound_by),
                    name,
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("the certificate is bound to another operator") from exc
            if _rows(status) != 1:
                raise NotFound(f"there is no operator {name!r}")
            await self._append(db, audit)

    async def unbind_operator_certificate(self, name: str, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET cert_sha256 = NULL, cert_generation = NULL,"
            " cert_serial = NULL, cert_bound_by = NULL WHERE name = $1 AND cert_sha256 IS NOT NULL",
            (),
            f"operator {name!r} has no certificate bound",
            audit,
        )

    async def operator_by_certificate(self, sha256: str) -> Operator | None:
        row = await self._pool.fetchrow(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE cert_sha256 = $1",  # noqa: S608
            sha256,
        )
        return _operator(row) if row else None

    async def disable_operator(self, name: str, at: dt.datetime, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET disabled_at = $2 WHERE name = $1 AND disabled_at IS NULL",
            (_utc(at),),
            f"operator {name!r} is disabled already",
            audit,
        )

    async def enable_operator(self, name: str, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET disabled_at = NULL WHERE name = $1 AND disabled_at IS NOT NULL",
            (),
            f"operator {name!r} is not disabled",
            audit,
        )

    async def _change_operator(
        self, name: str, update: str, args: tuple[Any, ...], conflict: str, audit: AuditEvent
    ) -> None:
        """Run a conditional ``update`` of the operator ``name`` ($1; ``args`` from $2) with its
        audit entry in one transaction: NotFound without such an operator, Conflict (``conflict``)
        when its condition does not hold."""
        async with self._transaction() as db:
            if _rows(await db.execute(update, name, *args)) != 1:
                if await db.fetchval("SELECT 1 FROM operators WHERE name = $1", name) is None:
                    raise NotFound(f"there is no operator {name!r}")
                raise Conflict(conflict)
            await self._append(db, audit)

    async def rotate_operator_token(
        self, name: str, token_hash: str, audit: AuditEvent, *, set_by: tuple[str, ...]
    ) -> None:
        async with self._transaction() as db:
            try:
                status = await db.execute(
                    "UPDATE operators SET token_hash = $1, token_set_by = $2 WHERE name = $3",
                    token_hash,
                    persons_column(set_by),
                    name,
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("the token hash belongs to another operator") from exc
            if _rows(status) != 1:
                raise NotFound(f"there is no operator {name!r}")
            await self._append(db, audit)

    # -- applications ----------------------------------------------------------------------------
    async def create_application(self, record: ApplicationRecord, audit: AuditEvent) -> None:
        values = _to_columns({f.name: getattr(record, f.name) for f in fields(record)})
        columns = ", ".join(values)
        marks = ", ".join(f"${n}" for n in range(1, len(values) + 1))
        async with self._transaction() as db:
            try:
                await db.execute(
                    f"INSERT INTO applications ({columns}) VALUES ({marks})",  # noqa: S608
                    *values.values(),
                )
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise Conflict(f"application {record.id} exists") from exc
            await self._append(db, audit)

    @staticmethod
    async def _application_where(
        db: asyncpg.Connection | asyncpg.Pool, clause: str, *args: Any
    ) -> ApplicationRecord | None:
        row = await db.fetchrow(f"SELECT * FROM applications WHERE {clause}", *args)  # noqa: S608
        return _application(row) if row else None

    async def application(self, application_id: str) -> ApplicationRecord:
        found = await self._application_where(self._pool, "id = $1", application_id)
        if found is None:
            raise NotFound(f"no application {application_id}")
        return found

    async def application_by_enrollment_id(self, enrollment_id: str) -> ApplicationRecord:
        found = await self._application_where(self._pool, "enrollment_id = $1", enrollment_id)
        if found is None:
            raise NotFound("unknown enrollment ID")
        return found

    async def applications_by_email(self, email: str) -> list[ApplicationRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM applications WHERE email = $1 ORDER BY created_at, id", email
        )
        return [_application(r) for r in rows]

    async def audit_persons(self, target: str, actions: frozenset[str]) -> set[str]:
        rows = await self._pool.fetch(
            "SELECT actor, details FROM audit_log WHERE target = $1 AND action = ANY($2::text[])",
            target,
            sorted(actions),
        )
        return {p for actor, details in rows for p in entry_persons(actor, json.loads(details))}

    async def applications(
        self, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApplicationRecord]:
        if state:
            rows = await self._pool.fetch(
                "SELECT * FROM applications WHERE state = $1 ORDER BY created_at, id"
                " LIMIT $2 OFFSET $3",
                state,
                limit,
                offset,
            )
        else:
            rows = await self._pool.fetch(
                "SELECT * FROM applications ORDER BY created_at, id LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        return [_application(r) for r in rows]

    async def update_application(
        self,
        application_id: str,
        version: int,
        changes: Mapping[str, Any],
        audit: AuditEvent,
        mail: OutboxMail | None = None,
        certificate: CertificateRecord | None = None,
    ) -> ApplicationRecord:
        values = _to_columns(dict(changes))
        unknown = set(values) - _APPLICATION_COLUMNS
        if unknown or "id" in values or "version" in values:
            raise ValueError(
                f"not updatable: {sorted(unknown | ({'id', 'version'} & set(values)))}"
            )
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(values, start=1))
        n = len(values)
        async with self._transaction() as db:
            # READ COMMITTED: a concurrent writer's row lock is waited for, then the version is
            # compared with the committed row, so of two racing updates exactly one applies.
            status = await db.execute(
                f"UPDATE applications SET {assignments}, version = version + 1"  # noqa: S608
                f" WHERE id = ${n + 1} AND version = ${n + 2}",
                *values.values(),
                application_id,
                version,
            )
            if _rows(status) != 1:
                current = await self._application_where(db, "id = $1", application_id)
                if current is None:
                    raise NotFound(f"no application {application_id}")
                raise Conflict(
                    f"application {application_id} changed meanwhile (now {current.state})"
                )
            for counter in _ATTEMPT_COUNTERS & set(values):
                # A new credential (new letter, new PIN): the waits of its old tries go too.
                await db.execute(
                    "DELETE FROM attempt_throttle WHERE application_id = $1 AND counter = $2",
                    application_id,
                    counter,
                )
            if certificate is not None:
                await self._insert_certificate(db, certificate)
            if mail is not None:
                await db.execute(
                    "UPDATE mail_outbox SET status = 'superseded', body_sealed = NULL"
                    " WHERE application_id = $1 AND kind = $2 AND status IN ('pending', 'failed')",
                    mail.application_id,
                    mail.kind,
                )
                await db.execute(
                    "INSERT INTO mail_outbox (application_id, kind, recipient, body_sealed,"
                    " status, next_attempt_at, created_at)"
                    " VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
                    mail.application_id,
                    mail.kind,
                    mail.recipient,
                    mail.body_sealed,
                    _utc(mail.next_attempt_at),
                    _utc(audit.at),
                )
            await self._append(db, audit)
            updated = await self._application_where(db, "id = $1", application_id)
        assert updated is not None
        return updated

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
        async with self._transaction() as db:
            # Count first, in one conditional statement: its row lock makes tries of one
            # application from any process take turns until COMMIT, and PostgreSQL re-checks
            # the limit after the wait, so a try beyond it is never compared.
            claimed = await db.fetchrow(
                f"UPDATE applications SET {counter} = {counter} + 1"  # noqa: S608
                f" WHERE id = $1 AND {counter} < $2 RETURNING {counter}, {column}",
                application_id,
                policy.limit,
            )
            if claimed is None:
                value = await db.fetchval(
                    f"SELECT {counter} FROM applications WHERE id = $1",  # noqa: S608
                    application_id,
                )
                if value is None:
                    raise NotFound(f"no application {application_id}")
                return Attempt(Outcome.LOCKED, int(value))
            tried, stored = int(claimed[0]), claimed[1]
            waiting = await db.fetchrow(
                "SELECT wrong, retry_at FROM attempt_throttle"
                " WHERE application_id = $1 AND counter = $2 AND source = $3",
                application_id,
                counter,
                source,
            )
            wrong_here = int(waiting[0]) if waiting else 0
            refund = f"UPDATE applications SET {counter} = {counter} - 1 WHERE id = $1"  # noqa: S608
            if waiting and waiting[1] > now:
                await db.execute(refund, application_id)
                return Attempt(Outcome.THROTTLED, tried - 1, waiting[1])
            if matches(stored):
                await db.execute(refund, application_id)
                await db.execute(
                    "DELETE FROM attempt_throttle"
                    " WHERE application_id = $1 AND counter = $2 AND source = $3",
                    application_id,
                    counter,
                    source,
                )
                return Attempt(Outcome.RIGHT, tried - 1)
            await db.execute(
                "INSERT INTO attempt_throttle (application_id, counter, source, wrong, retry_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (application_id, counter, source)"
                " DO UPDATE SET wrong = excluded.wrong, retry_at = excluded.retry_at",
                application_id,
                counter,
                source,
                wrong_here + 1,
                _utc(now + policy.wait(wrong_here + 1)),
            )
            await self._append(db, failure)
        return Attempt(Outcome.WRONG, tried)

    # -- mail outbox -----------------------------------------------------------------------------
    _MAIL_COLUMNS = (
        "id, application_id, kind, recipient, body_sealed, status, attempts, last_error,"
        " next_attempt_at, created_at, sent_at"
    )

    async def due_mail(self, now: dt.datetime, limit: int = 10) -> list[MailRecord]:
        rows = await self._pool.fetch(
            f"SELECT {self._MAIL_COLUMNS} FROM mail_outbox"  # noqa: S608
            " WHERE status = 'pending' AND next_attempt_at <= $1"
            " ORDER BY next_attempt_at LIMIT $2",
            _utc(now),
            limit,
        )
        return [_mail(r) for r in rows]

    async def mail(self, status: str | None = None, limit: int = 100) -> list[MailRecord]:
        if status:
            rows = await self._pool.fetch(
                f"SELECT {self._MAIL_COLUMNS} FROM mail_outbox WHERE status = $1"  # noqa: S608
                " ORDER BY id LIMIT $2",
                status,
                limit,
            )
        else:
            rows = await self._pool.fetch(
                f"SELECT {self._MAIL_COLUMNS} FROM mail_outbox ORDER BY id LIMIT $1",  # noqa: S608
                limit,
            )
        return [_mail(r) for r in rows]

    async def claim_mail(self, mail_id: int, now: dt.datetime, until: dt.datetime) -> bool:
        """Take a due mail for sending until ``until``, so that one process sends it."""
        async with self._transaction() as db:
            status = await db.execute(
                "UPDATE mail_outbox SET next_attempt_at = $1"
                " WHERE id = $2 AND status = 'pending' AND next_attempt_at <= $3",
                _utc(until),
                mail_id,
                _utc(now),
            )
            return _rows(status) == 1

    async def mark_mail(
        self,
        mail_id: int,
        status: str,
        audit: AuditEvent,
        error: str | None = None,
        next_attempt_at: dt.datetime | None = None,
        sent_at: dt.datetime | None = None,
    ) -> None:
        async with self._transaction() as db:
            result = await db.execute(
                "UPDATE mail_outbox SET status = $1, attempts = attempts + 1, last_error = $2,"
                " next_attempt_at = coalesce($3::timestamptz, next_attempt_at),"
                " sent_at = $4::timestamptz,"
                " body_sealed = CASE WHEN $1 = 'sent' THEN NULL ELSE body_sealed END"
                " WHERE id = $5 AND status = 'pending'",
                status,
                error,
                _utc(next_attempt_at) if next_attempt_at else None,
                _utc(sent_at) if sent_at else None,
                mail_id,
            )
            if _rows(result) != 1:
                raise Conflict(f"mail {mail_id} is no longer pending")
            await self._append(db, audit)

    async def retry_mail(self, mail_id: int, now: dt.datetime, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            result = await db.execute(
                "UPDATE mail_outbox SET status = 'pending', next_attempt_at = $1"
                " WHERE id = $2 AND status = 'failed' AND body_sealed IS NOT NULL",
                _utc(now),
                mail_id,
            )
            if _rows(result) != 1:
                raise Conflict(f"mail {mail_id} is not a failed mail that can be retried")
            await self._append(db, audit)

    # -- revocation ------------------------------------------------------------------------------
    async def revoke_certificate(
        self, generation: int, serial: int, reason: str, at: dt.datetime, audit: AuditEvent
    ) -> None:
        async with self._transaction() as db:
            result = await db.execute(
                "UPDATE certificates SET status = 'revoked', revoked_at = $1,"
                " revocation_reason = $2 WHERE generation = $3 AND serial = $4"
                " AND status = 'valid'",
                _utc(at),
                reason,
                generation,
                format(serial, "x"),
            )
            if _rows(result) != 1:
                raise Conflict(f"certificate {serial:x} is unknown or already revoked")
            closed = await db.fetch(
                "UPDATE applications SET state = 'revoked', closed_reason = $1, updated_at = $2,"
                " version = version + 1 WHERE certificate_generation = $3"
                " AND certificate_serial = $4 AND state = 'issued' RETURNING id",
                reason,
                _utc(at),
                generation,
                format(serial, "x"),
            )
            events = [audit] + [application_revoked(row[0], reason, audit) for row in closed]
            for event in events:
                await self._append(db, event)

    # -- EST re-enrollment -------------------------------------------------------------------------
    _REENROLL_COLUMNS = (
        "id, previous_generation, previous_serial, csr_sha256, csr_der, profile, subscriber_id,"
        " status, created_at, decided_by, decided_at, certificate_generation, certificate_serial"
    )

    async def _reenrollments(self, where: str, *args: Any) -> list[ReenrollmentRecord]:
        rows = await self._pool.fetch(
            f"SELECT {self._REENROLL_COLUMNS} FROM reenrollments {where} ORDER BY id",  # noqa: S608
            *args,
        )
        return [_reenrollment(r) for r in rows]

    async def reenrollment(
        self, previous_generation: int, previous_serial: str, csr_sha256: str
    ) -> ReenrollmentRecord | None:
        found = await self._reenrollments(
            "WHERE previous_generation = $1 AND previous_serial = $2 AND csr_sha256 = $3",
            previous_generation,
            previous_serial,
            csr_sha256,
        )
        return found[0] if found else None

    async def reenrollment_by_id(self, reenrollment_id: int) -> ReenrollmentRecord:
        found = await self._reenrollments("WHERE id = $1", reenrollment_id)
        if not found:
            raise NotFound(f"no re-enrollment request {reenrollment_id}")
        return found[0]

    async def reenrollments(self, status: str | None = None) -> list[ReenrollmentRecord]:
        if status is None:
            return await self._reenrollments("")
        return await self._reenrollments("WHERE status = $1", status)

    async def add_reenrollment(
        self, record: ReenrollmentRecord, audit: AuditEvent
    ) -> ReenrollmentRecord:
        async with self._transaction() as db:
            try:
                new_id = await db.fetchval(
                    "INSERT INTO reenrollments (previous_generation, previous_serial, csr_sha256,"
                    " csr_der, profile, subscriber_id, status, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    record.previous_generation,
                    record.previous_serial,
                    record.csr_sha256,
                    record.csr_der,
                    record.profile,
                    record.subscriber_id,
                    record.status,
                    _utc(record.created_at),
                )
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise Conflict("this re-enrollment request exists") from exc
            await self._append(db, audit)
        assert new_id is not None
        return await self.reenrollment_by_id(new_id)

    async def decide_reenrollment(
        self, reenrollment_id: int, status: str, operator: str, at: dt.datetime, audit: AuditEvent
    ) -> None:
        async with self._transaction() as db:
            result = await db.execute(
                "UPDATE reenrollments SET status = $1, decided_by = $2, decided_at = $3"
                " WHERE id = $4 AND status = 'pending'",
                status,
                operator,
                _utc(at),
                reenrollment_id,
            )
            if _rows(result) != 1:
                raise Conflict(f"re-enrollment request {reenrollment_id} is not pending")
            await self._append(db, audit)

    async def complete_reenrollment(
        self, reenrollment_id: int, certificate: CertificateRecord, audit: AuditEvent
    ) -> None:
        async with self._transaction() as db:
            result = await db.execute(
                "UPDATE reenrollments SET status = 'issued', certificate_generation = $1,"
                " certificate_serial = $2 WHERE id = $3 AND status IN ('pending', 'approved')",
                certificate.generation,
                format(certificate.serial, "x"),
                reenrollment_id,
            )
            if _rows(result) != 1:
                raise Conflict(f"re-enrollment request {reenrollment_id} was already decided")
            await self._insert_certificate(db, certificate)
            await self._append(db, audit)

    # == ACME (RFC 8555): mirrors sqlite.py's block of the same name (migration 0006) ===========
    async def acme_add_nonce(self, value: str, expires_at: dt.datetime) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    "INSERT INTO acme_nonces (value, expires_at) VALUES ($1, $2)",
                    value,
                    _utc(expires_at),
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("this nonce exists") from exc

    async def acme_add_nonces(self, values: Sequence[str], expires_at: dt.datetime) -> None:
        async with self._transaction() as db:
            try:
                await db.executemany(
                    "INSERT INTO acme_nonces (value, expires_at) VALUES ($1, $2)",
                    [(value, _utc(expires_at)) for value in values],
                )
            except asyncpg.UniqueViolationError as exc:
                raise Conflict("a nonce exists") from exc

    async def acme_use_nonce(self, value: str, now: dt.datetime) -> bool:
        async with self._transaction() as db:
            # Of two processes deleting one nonce, the second waits for the first's row lock,
            # then finds the row gone: a nonce is redeemed once (RFC 8555 §6.5).
            status = await db.execute(
                "DELETE FROM acme_nonces WHERE value = $1 AND expires_at > $2", value, _utc(now)
            )
            return _rows(status) == 1

    async def acme_prune_nonces(self, now: dt.datetime) -> int:
        async with self._transaction() as db:
            status = await db.execute("DELETE FROM acme_nonces WHERE expires_at <= $1", _utc(now))
            return _rows(status)

    _EAB_COLUMNS = (
        "kid, key_sealed, allowed, lifetime_days, max_certificates, expires_at, note, created_by,"
        " created_at, used_at, account_id, disabled_at"
    )

    async def acme_add_eab_key(self, record: AcmeEABKeyRecord, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    f"INSERT INTO acme_eab_keys ({self._EAB_COLUMNS})"  # noqa: S608
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    record.kid,
                    record.key_sealed,
                    json.dumps(list(record.allowed)),
                    record.lifetime_days,
                    record.max_certificates,
                    _opt_utc(record.expires_at),
                    record.note,
                    record.created_by,
                    _utc(record.created_at),
                    _opt_utc(record.used_at),
                    record.account_id,
                    _opt_utc(record.disabled_at),
                )
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise Conflict(f"EAB key {record.kid} exists") from exc
            await self._append(db, audit)

    async def acme_eab_key(self, kid: str) -> AcmeEABKeyRecord:
        row = await self._pool.fetchrow(
            f"SELECT {self._EAB_COLUMNS} FROM acme_eab_keys WHERE kid = $1",  # noqa: S608
            kid,
        )
        if row is None:
            raise NotFound(f"no EAB key {kid}")
        return _eab_key(row)

    async def acme_eab_keys(self) -> list[AcmeEABKeyRecord]:
        rows = await self._pool.fetch(
            f"SELECT {self._EAB_COLUMNS} FROM acme_eab_keys ORDER BY created_at, kid"  # noqa: S608
        )
        return [_eab_key(r) for r in rows]

    async def acme_disable_eab_key(self, kid: str, at: dt.datetime, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            status = await db.execute(
                "UPDATE acme_eab_keys SET disabled_at = coalesce(disabled_at, $1) WHERE kid = $2",
                _utc(at),
                kid,
            )
            if _rows(status) != 1:
                raise NotFound(f"no EAB key {kid}")
            await self._append(db, audit)

    _ACCOUNT_COLUMNS = (
        "id, thumbprint, jwk, contact, status, kind, eab_kid, eab_alg, application_id,"
        " terms_agreed, created_at, updated_at"
    )

    async def acme_create_account(
        self, record: AcmeAccountRecord, audit: AuditEvent, operator_key: bool
    ) -> None:
        async with self._transaction() as db:
            if operator_key:
                # EAB single use across processes: the second of two racing bindings waits for
                # the first's row lock, then finds used_at set and updates nothing.
                status = await db.execute(
                    "UPDATE acme_eab_keys SET used_at = $1, account_id = $2"
                    " WHERE kid = $3 AND used_at IS NULL AND disabled_at IS NULL",
                    _utc(record.created_at),
                    record.id,
                    record.eab_kid,
                )
                if _rows(status) != 1:
                    raise Conflict(f"EAB key {record.eab_kid} is used, disabled or unknown")
            try:
                await db.execute(
                    f"INSERT INTO acme_accounts ({self._ACCOUNT_COLUMNS})"  # noqa: S608
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
                    _utc(record.created_at),
                    _utc(record.updated_at),
                )
            except asyncpg.IntegrityConstraintViolationError as exc:
                constraint = getattr(exc, "constraint_name", None) or ""
                if "thumbprint" in constraint:
                    raise Conflict("this key already has an account") from exc
                if "eab_kid" in constraint:
                    raise Conflict("this external account binding was used before") from exc
                raise Conflict(str(exc)) from exc
            await self._append(db, audit)

    async def _acme_account_where(self, clause: str, *args: Any) -> AcmeAccountRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {self._ACCOUNT_COLUMNS} FROM acme_accounts WHERE {clause}",  # noqa: S608
            *args,
        )
        return _acme_account(row) if row else None

    async def acme_account(self, account_id: str) -> AcmeAccountRecord:
        found = await self._acme_account_where("id = $1", account_id)
        if found is None:
            raise NotFound(f"no ACME account {account_id}")
        return found

    async def acme_account_by_thumbprint(self, thumbprint: str) -> AcmeAccountRecord | None:
        return await self._acme_account_where("thumbprint = $1", thumbprint)

    async def acme_update_account(
        self, account_id: str, changes: Mapping[str, Any], audit: AuditEvent
    ) -> AcmeAccountRecord:
        allowed = {"contact", "status", "terms_agreed", "jwk", "thumbprint", "updated_at"}
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
            elif isinstance(value, dt.datetime):
                value = _utc(value)
            values[name] = value
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(values, start=1))
        async with self._transaction() as db:
            try:
                status = await db.execute(
                    f"UPDATE acme_accounts SET {assignments}"  # noqa: S608
                    f" WHERE id = ${len(values) + 1}",
                    *values.values(),
                    account_id,
                )
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise Conflict("this key already has an account") from exc
            if _rows(status) != 1:
                raise NotFound(f"no ACME account {account_id}")
            await self._append(db, audit)
        return await self.acme_account(account_id)

    @staticmethod
    async def _acme_insert_authz(db: asyncpg.Connection, authz: AcmeAuthzRecord) -> None:
        await db.execute(
            "INSERT INTO acme_authorizations (id, account_id, identifier_type, identifier_value,"
            " wildcard, status, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            authz.id,
            authz.account_id,
            authz.identifier_type,
            authz.identifier_value,
            bool(authz.wildcard),
            authz.status,
            _utc(authz.expires_at),
            _utc(authz.created_at),
        )
        if authz.challenges:
            await db.executemany(
                "INSERT INTO acme_challenges (id, authz_id, type, token, status, validated_at,"
                " error, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    (
                        challenge.id,
                        authz.id,
                        challenge.type,
                        challenge.token,
                        challenge.status,
                        _opt_utc(challenge.validated_at),
                        canonical_details(challenge.error) if challenge.error else None,
                        _utc(challenge.updated_at),
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
        async with self._transaction() as db:
            for authz in new_authorizations:
                await self._acme_insert_authz(db, authz)
            await db.execute(
                "INSERT INTO acme_orders (id, account_id, status, expires_at, identifiers,"
                " profile, replaces, error, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                order.id,
                order.account_id,
                order.status,
                _utc(order.expires_at),
                json.dumps([list(i) for i in order.identifiers]),
                order.profile,
                order.replaces,
                canonical_details(order.error) if order.error else None,
                _utc(order.created_at),
                _utc(order.updated_at),
            )
            if order.authz_ids:
                await db.executemany(
                    "INSERT INTO acme_order_authorizations (order_id, authz_id) VALUES ($1, $2)",
                    [(order.id, authz_id) for authz_id in order.authz_ids],
                )
            await self._append(db, audit)

    async def acme_add_authorization(self, authz: AcmeAuthzRecord, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            await self._acme_insert_authz(db, authz)
            await self._append(db, audit)

    _ORDER_COLUMNS = (
        "seq, id, account_id, status, expires_at, identifiers, profile, replaces, error, csr_der,"
        " reenrollment_id, certificate_generation, certificate_serial, created_at, updated_at"
    )

    async def _acme_orders_where(
        self, db: asyncpg.Connection | asyncpg.Pool, clause: str, *args: Any
    ) -> list[AcmeOrderRecord]:
        rows = await db.fetch(
            f"SELECT {self._ORDER_COLUMNS} FROM acme_orders WHERE {clause}",  # noqa: S608
            *args,
        )
        if not rows:
            return []
        links = await db.fetch(
            "SELECT l.order_id, l.authz_id FROM acme_order_authorizations l"
            " JOIN acme_authorizations a ON a.id = l.authz_id"
            " WHERE l.order_id = ANY($1::text[]) ORDER BY a.seq",
            [row[1] for row in rows],
        )
        authz_ids: dict[str, list[str]] = {}
        for order_id, authz_id in links:
            authz_ids.setdefault(order_id, []).append(authz_id)
        return [_acme_order(row, tuple(authz_ids.get(row[1], ()))) for row in rows]

    async def acme_order(self, order_id: str) -> AcmeOrderRecord:
        found = await self._acme_orders_where(self._pool, "id = $1", order_id)
        if not found:
            raise NotFound(f"no ACME order {order_id}")
        return found[0]

    async def acme_orders(
        self, account_id: str, after_seq: int, limit: int
    ) -> list[AcmeOrderRecord]:
        return await self._acme_orders_where(
            self._pool,
            "account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            account_id,
            after_seq,
            limit,
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
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "error" and value is not None:
                value = canonical_details(value)
            elif isinstance(value, dt.datetime):
                value = _utc(value)
            values[name] = value
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(values, start=1))
        n = len(values)
        async with self._transaction() as db:
            # The status check and the change are one statement: of two processes finalizing
            # one order, exactly one moves it on (and records its certificate).
            status = await db.execute(
                f"UPDATE acme_orders SET {assignments}"  # noqa: S608
                f" WHERE id = ${n + 1} AND status = ${n + 2}",
                *values.values(),
                order_id,
                expected_status,
            )
            if _rows(status) != 1:
                raise Conflict(f"order {order_id} is no longer {expected_status}")
            if certificate is not None:
                await self._insert_certificate(db, certificate)
            if audit is not None:
                await self._append(db, audit)
            found = await self._acme_orders_where(db, "id = $1", order_id)
        return found[0]

    async def acme_order_by_certificate(
        self, generation: int, serial: int
    ) -> AcmeOrderRecord | None:
        found = await self._acme_orders_where(
            self._pool,
            "certificate_generation = $1 AND certificate_serial = $2",
            generation,
            format(serial, "x"),
        )
        return found[0] if found else None

    async def acme_orders_replacing(self, cert_id: str) -> list[AcmeOrderRecord]:
        return await self._acme_orders_where(self._pool, "replaces = $1 ORDER BY seq", cert_id)

    async def acme_count_orders(
        self, account_id: str, since: dt.datetime
    ) -> tuple[int, dt.datetime | None]:
        row = await self._pool.fetchrow(
            "SELECT count(*), min(created_at) FROM acme_orders"
            " WHERE account_id = $1 AND created_at > $2",
            account_id,
            _utc(since),
        )
        assert row is not None
        return int(row[0]), row[1]

    async def acme_count_certificates(self, eab_kid: str) -> int:
        value = await self._pool.fetchval(
            "SELECT count(*) FROM acme_orders o JOIN acme_accounts a ON a.id = o.account_id"
            " WHERE a.eab_kid = $1 AND o.certificate_serial IS NOT NULL",
            eab_kid,
        )
        return int(value or 0)

    _AUTHZ_COLUMNS = (
        "id, account_id, identifier_type, identifier_value, wildcard, status, expires_at,"
        " created_at"
    )

    async def _acme_authz_where(
        self, db: asyncpg.Connection | asyncpg.Pool, clause: str, *args: Any
    ) -> AcmeAuthzRecord | None:
        row = await db.fetchrow(
            f"SELECT {self._AUTHZ_COLUMNS} FROM acme_authorizations WHERE {clause}",  # noqa: S608
            *args,
        )
        if row is None:
            return None
        challenges = await db.fetch(
            f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE authz_id = $1"  # noqa: S608
            " ORDER BY seq",
            row[0],
        )
        return AcmeAuthzRecord(
            id=row[0],
            account_id=row[1],
            identifier_type=row[2],
            identifier_value=row[3],
            wildcard=bool(row[4]),
            status=row[5],
            expires_at=row[6],
            created_at=row[7],
            challenges=tuple(_acme_challenge(c) for c in challenges),
        )

    async def acme_authorization(self, authz_id: str) -> AcmeAuthzRecord:
        found = await self._acme_authz_where(self._pool, "id = $1", authz_id)
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
        return await self._acme_authz_where(
            self._pool,
            "account_id = $1 AND identifier_type = $2 AND identifier_value = $3"
            " AND wildcard = $4 AND status = 'valid' AND expires_at > $5"
            " ORDER BY seq DESC LIMIT 1",
            account_id,
            identifier_type,
            identifier_value,
            bool(wildcard),
            _utc(now),
        )

    async def acme_update_authorization(
        self, authz_id: str, expected_status: str, status: str, audit: AuditEvent | None = None
    ) -> AcmeAuthzRecord:
        async with self._transaction() as db:
            result = await db.execute(
                "UPDATE acme_authorizations SET status = $1 WHERE id = $2 AND status = $3",
                status,
                authz_id,
                expected_status,
            )
            if _rows(result) != 1:
                raise Conflict(f"authorization {authz_id} is no longer {expected_status}")
            if audit is not None:
                await self._append(db, audit)
            found = await self._acme_authz_where(db, "id = $1", authz_id)
        assert found is not None
        return found

    async def acme_challenge(self, challenge_id: str) -> AcmeChallengeRecord:
        row = await self._pool.fetchrow(
            f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = $1",  # noqa: S608
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
        async with self._transaction() as db:
            result = await db.execute(
                "UPDATE acme_challenges SET status = $1, updated_at = $2, error = $3,"
                " validated_at = CASE WHEN $1 = 'valid' THEN $2 ELSE validated_at END"
                " WHERE id = $4 AND status = $5",
                status,
                _utc(at),
                canonical_details(error) if error else None,
                challenge_id,
                expected_status,
            )
            if _rows(result) != 1:
                raise Conflict(f"challenge {challenge_id} is no longer {expected_status}")
            if authz_status is not None:
                await db.execute(
                    "UPDATE acme_authorizations SET status = $1 WHERE status = 'pending' AND id ="
                    " (SELECT authz_id FROM acme_challenges WHERE id = $2)",
                    authz_status,
                    challenge_id,
                )
            if audit is not None:
                await self._append(db, audit)
            row = await db.fetchrow(
                f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = $1",  # noqa: S608
                challenge_id,
            )
        return _acme_challenge(row)

    async def acme_deactivate_account(
        self,
        account_id: str,
        changes: Mapping[str, Any],
        order_error: Mapping[str, Any],
        audit: AuditEvent,
    ) -> AcmeAccountRecord:
        values = _deactivation_values(changes)
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(values, start=1))
        n = len(values)
        cancellable = list(ACME_CANCELLABLE_ORDERS)
        async with self._transaction() as db:
            result = await db.execute(
                f"UPDATE acme_accounts SET {assignments}"  # noqa: S608
                f" WHERE id = ${n + 1} AND status = 'valid'",
                *values.values(),
                account_id,
            )
            if _rows(result) != 1:
                row = await db.fetchrow(
                    "SELECT status FROM acme_accounts WHERE id = $1", account_id
                )
                if row is None:
                    raise NotFound(f"no ACME account {account_id}")
                raise Conflict(f"ACME account {account_id} is {row[0]}, not valid")
            # FOR UPDATE: a row another transaction moves on meanwhile (an order issued) is
            # re-checked against the WHERE clause, so only what is read here is updated.
            orders = await db.fetch(
                "SELECT id, status FROM acme_orders WHERE account_id = $1"
                " AND status = ANY($2::text[]) ORDER BY seq FOR UPDATE",
                account_id,
                cancellable,
            )
            await db.execute(
                "UPDATE acme_orders SET status = 'invalid', error = $1, updated_at = $2"
                " WHERE id = ANY($3::text[])",
                canonical_details(order_error),
                _utc(audit.at),
                [row[0] for row in orders],
            )
            authzs = await db.fetch(
                "SELECT id FROM acme_authorizations WHERE account_id = $1"
                " AND status = 'pending' ORDER BY seq FOR UPDATE",
                account_id,
            )
            await db.execute(
                "UPDATE acme_authorizations SET status = 'deactivated' WHERE id = ANY($1::text[])",
                [row[0] for row in authzs],
            )
            await self._append(db, audit)
            for row in orders:
                await self._append(db, acme_cancelled("order", row[0], row[1], audit))
            for row in authzs:
                await self._append(db, acme_cancelled("authz", row[0], "pending", audit))
        return await self.acme_account(account_id)

    # == end of ACME ==============================================================================

    # == the RA console: the audit log filtered (one block) =======================================
    _AUDIT_COLUMNS_SQL = (
        "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log"
    )

    async def audit_entries(
        self,
        target: str | None = None,
        actor: str | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        conditions, args = ["seq < $1"], [before_seq if before_seq is not None else 2**62]
        if target is not None:
            args.append(target)
            conditions.append(f"target = ${len(args)}")
        if actor is not None:
            args.append(actor)
            conditions.append(f"actor = ${len(args)}")
        rows = await self._pool.fetch(
            f"{self._AUDIT_COLUMNS_SQL} WHERE {' AND '.join(conditions)}"
            f" ORDER BY seq DESC LIMIT ${len(args) + 1}",
            *args,
            limit,
        )
        return [
            AuditEntry(
                seq=r[0],
                event=AuditEvent(
                    at=r[1], actor=r[2], action=r[3], target=r[4], details=json.loads(r[5])
                ),
                prev_hash=r[6],
                hash=r[7],
            )
            for r in rows
        ]


def _reenrollment(row: asyncpg.Record) -> ReenrollmentRecord:
    return ReenrollmentRecord(
        id=row[0],
        previous_generation=row[1],
        previous_serial=row[2],
        csr_sha256=row[3],
        csr_der=bytes(row[4]),
        profile=row[5],
        subscriber_id=row[6],
        status=row[7],
        created_at=row[8],
        decided_by=row[9],
        decided_at=row[10],
        certificate_generation=row[11],
        certificate_serial=row[12],
    )


_APPLICATION_COLUMNS = frozenset(f.name for f in fields(ApplicationRecord))
_ATTEMPT_COUNTERS = frozenset(c.counter for c in Credential)
_TIME_COLUMNS = frozenset(name for name in _APPLICATION_COLUMNS if name.endswith("_at"))


def _to_columns(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if isinstance(value, dt.datetime):
            value = _utc(value)
        elif name in _TIME_COLUMNS and isinstance(value, str):
            value = _utc(dt.datetime.fromisoformat(value))  # as SQLite would have kept it
        elif name == "review" and value is not None:
            value = canonical_details(value)
        out[name] = value
    return out


def _application(row: asyncpg.Record) -> ApplicationRecord:
    values = dict(row)
    if values.get("review"):
        values["review"] = json.loads(values["review"])
    if values.get("eab_key_sealed") is not None:
        values["eab_key_sealed"] = bytes(values["eab_key_sealed"])
    return ApplicationRecord(**values)


_OPERATOR_COLUMNS = (
    "name, role, created_at, disabled_at, cert_sha256, cert_generation, cert_serial,"
    " token_set_by, cert_bound_by"
)


def _operator(row: asyncpg.Record) -> Operator:
    return Operator(
        name=row[0],
        role=row[1],
        created_at=row[2],
        disabled_at=row[3],
        certificate_sha256=row[4],
        certificate_generation=row[5],
        certificate_serial=int(row[6], 16) if row[6] is not None else None,
        token_set_by=persons_from_column(row[7]),
        certificate_bound_by=persons_from_column(row[8]) if row[4] is not None else (),
    )


def _mail(row: asyncpg.Record) -> MailRecord:
    return MailRecord(
        id=row[0],
        application_id=row[1],
        kind=row[2],
        recipient=row[3],
        body_sealed=bytes(row[4]) if row[4] is not None else None,
        status=row[5],
        attempts=row[6],
        last_error=row[7],
        next_attempt_at=row[8],
        created_at=row[9],
        sent_at=row[10],
    )


# -- ACME row readers -----------------------------------------------------------------------------
_CHALLENGE_COLUMNS = "id, authz_id, type, token, status, updated_at, validated_at, error"


def _opt_utc(value: dt.datetime | None) -> dt.datetime | None:
    return _utc(value) if value is not None else None


def _eab_key(row: asyncpg.Record) -> AcmeEABKeyRecord:
    return AcmeEABKeyRecord(
        kid=row[0],
        key_sealed=bytes(row[1]),
        allowed=tuple(json.loads(row[2])),
        lifetime_days=row[3],
        max_certificates=row[4],
        expires_at=row[5],
        note=row[6],
        created_by=row[7],
        created_at=row[8],
        used_at=row[9],
        account_id=row[10],
        disabled_at=row[11],
    )


def _acme_account(row: asyncpg.Record) -> AcmeAccountRecord:
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
        created_at=row[10],
        updated_at=row[11],
    )


def _acme_order(row: asyncpg.Record, authz_ids: tuple[str, ...]) -> AcmeOrderRecord:
    return AcmeOrderRecord(
        seq=row[0],
        id=row[1],
        account_id=row[2],
        status=row[3],
        expires_at=row[4],
        identifiers=tuple((i[0], i[1]) for i in json.loads(row[5])),
        profile=row[6],
        replaces=row[7],
        error=json.loads(row[8]) if row[8] else None,
        csr_der=bytes(row[9]) if row[9] is not None else None,
        reenrollment_id=row[10],
        certificate_generation=row[11],
        certificate_serial=row[12],
        created_at=row[13],
        updated_at=row[14],
        authz_ids=authz_ids,
    )


def _acme_challenge(row: asyncpg.Record) -> AcmeChallengeRecord:
    return AcmeChallengeRecord(
        id=row[0],
        authz_id=row[1],
        type=row[2],
        token=row[3],
        status=row[4],
        updated_at=row[5],
        validated_at=row[6],
        error=json.loads(row[7]) if row[7] else None,
    )


def _deactivation_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The acme_accounts columns ``acme_deactivate_account`` sets, as PostgreSQL takes them."""
    if changes.get("status") != "deactivated":
        raise ValueError("acme_deactivate_account sets status 'deactivated'")
    unknown = set(changes) - {"contact", "status", "terms_agreed", "updated_at"}
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "contact":
            value = json.dumps(list(value))
        elif name == "terms_agreed":
            value = bool(value)
        elif isinstance(value, dt.datetime):
            value = _utc(value)
        values[name] = value
    return values

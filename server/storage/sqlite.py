"""The embedded store: one SQLite file in WAL mode (aiosqlite).

Writes run in ``BEGIN IMMEDIATE`` transactions, so several processes sharing the file serialize
on SQLite's write lock, and one asyncio lock keeps coroutines of this process from interleaving
statements of different transactions on the single connection. The ACME writes (many per order)
run whole in the connection's thread (``_atomic``): one trip there per transaction, so that both
locks are held for the statements and not for the event loop's turns between them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

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

T = TypeVar("T")

# The most ACME nonces a store holds in memory (about 20 MB); see SQLiteStore.acme_add_nonce.
MAX_NONCES = 100_000


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


async def _first(db: aiosqlite.Connection, sql: str, args: tuple[Any, ...] = ()) -> Any:
    """The first row of a query, or None, in one trip to the connection's thread (a cursor's
    execute, fetch and close take a trip each)."""
    rows = await db.execute_fetchall(sql, args)
    return next(iter(rows), None)


class _Immediate:
    """The connection calls of a transaction body, answered synchronously: ``_atomic`` runs the
    body in the connection's own thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, parameters: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, tuple(parameters))

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, tuple(parameters)).fetchall()

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> sqlite3.Cursor:
        return self._conn.executemany(sql, parameters)


def _drive(conn: sqlite3.Connection, body: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``body`` to its end without an event loop: every call it awaits returns at once."""
    steps = cast(Coroutine[Any, Any, T], body(_Immediate(conn)))
    try:
        steps.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    steps.close()
    raise RuntimeError("a store body waited for something other than the database")


def _run_atomic(db: aiosqlite.Connection, body: Callable[[Any], Awaitable[T]]) -> T:
    """In aiosqlite's thread: BEGIN IMMEDIATE, the body, COMMIT; ROLLBACK when it raises."""
    conn: sqlite3.Connection = db._conn  # the thread's own connection
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = _drive(conn, body)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _run_read(db: aiosqlite.Connection, body: Callable[[Any], Awaitable[T]]) -> T:
    """In aiosqlite's thread: the body's queries, as separate reads would run them."""
    return _drive(db._conn, body)


class SQLiteStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._nonces: dict[str, dt.datetime] = {}  # ACME nonces (below): value -> expiry

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteStore:
        db = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=10000")
            store = cls(db)
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock, self._transaction_locked() as db:
            yield db

    @asynccontextmanager
    async def _transaction_locked(self) -> AsyncIterator[aiosqlite.Connection]:
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        await self._db.execute("COMMIT")

    async def _atomic(self, body: Callable[[Any], Awaitable[T]]) -> T:
        """``body(db)`` in a BEGIN IMMEDIATE transaction run whole in the connection's thread:
        one trip there instead of one per statement, so that the write lock (this process's
        and SQLite's) is held for the statements and not for the event loop's turns between
        them. ``db`` answers the calls transaction bodies make (execute, execute_fetchall,
        executemany) at once; a body that waits for anything else is refused."""
        async with self._lock:
            execute = self._in_thread()
            if execute is None:
                async with self._transaction_locked() as db:
                    return await body(db)
            return cast(T, await execute(_run_atomic, self._db, body))

    def _in_thread(self) -> Callable[..., Awaitable[Any]] | None:
        """aiosqlite's queue to its thread (None with an aiosqlite that has none)."""
        execute = getattr(self._db, "_execute", None)
        return execute if hasattr(type(self._db), "_conn") else None

    async def _read(self, body: Callable[[Any], Awaitable[T]]) -> T:
        """``body(db)``'s queries in one trip to the connection's thread instead of one each."""
        execute = self._in_thread()
        if execute is None:
            return await body(self._db)
        return cast(T, await execute(_run_read, self._db, body))

    async def _migrate(self) -> None:
        async with self._transaction() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            rows = await db.execute_fetchall("SELECT version FROM schema_migrations")
            applied = {row[0] for row in rows}
            for version, name, sql in migrations("sqlite"):
                if version in applied:
                    continue
                # executescript would COMMIT our transaction; run statement by statement.
                for statement in _statements(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, _time(dt.datetime.now(dt.UTC))),
                )

    async def schema_version(self) -> int:
        row = await _first(self._db, "SELECT max(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

    # -- CA generations ----------------------------------------------------------------------
    async def add_generation(
        self, record: GenerationRecord, audit: AuditEvent, link: LinkRecord | None = None
    ) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    "INSERT INTO ca_generations (number, certificate_der, key_ref, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (
                        record.number,
                        record.certificate_der,
                        record.key_ref,
                        _time(record.created_at),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"CA generation {record.number} exists") from exc
            if link is not None:
                await db.execute(
                    "INSERT INTO ca_links (old_generation, new_generation, old_with_new,"
                    " new_with_old) VALUES (?, ?, ?, ?)",
                    (
                        link.old_generation,
                        link.new_generation,
                        link.old_with_new,
                        link.new_with_old,
                    ),
                )
            await self._append(db, audit)

    async def links(self) -> list[LinkRecord]:
        rows = await self._db.execute_fetchall(
            "SELECT old_generation, new_generation, old_with_new, new_with_old FROM ca_links"
            " ORDER BY old_generation"
        )
        return [LinkRecord(r[0], r[1], bytes(r[2]), bytes(r[3])) for r in rows]

    # -- revocation status -------------------------------------------------------------------
    async def revoked(
        self, generation: int
    ) -> list[tuple[int, dt.datetime, str | None, dt.datetime]]:
        rows = await self._db.execute_fetchall(
            "SELECT serial, revoked_at, revocation_reason, not_after FROM certificates"
            " WHERE generation = ? AND status = 'revoked' ORDER BY revoked_at",
            (generation,),
        )
        return [(int(r[0], 16), _parse_time(r[1]), r[2], _parse_time(r[3])) for r in rows]

    async def latest_expiry(self, generation: int) -> dt.datetime | None:
        row = await _first(
            self._db, "SELECT max(not_after) FROM certificates WHERE generation = ?", (generation,)
        )
        return _parse_time(row[0]) if row and row[0] else None

    async def next_counter(self, name: str) -> int:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1",
                (name,),
            )
            row = await _first(db, "SELECT value FROM counters WHERE name = ?", (name,))
        assert row is not None
        return int(row[0])

    async def add_crl(self, record: CRLRecord) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    "INSERT INTO crls (number, generation, this_update, next_update, der)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        record.number,
                        record.generation,
                        _time(record.this_update),
                        _time(record.next_update),
                        record.der,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"CRL number {record.number} exists") from exc

    async def latest_crl(self, generation: int) -> CRLRecord | None:
        row = await _first(
            self._db,
            "SELECT number, generation, this_update, next_update, der FROM crls"
            " WHERE generation = ? ORDER BY number DESC LIMIT 1",
            (generation,),
        )
        if row is None:
            return None
        return CRLRecord(row[0], row[1], _parse_time(row[2]), _parse_time(row[3]), bytes(row[4]))

    async def generations(self) -> list[GenerationRecord]:
        rows = await self._db.execute_fetchall(
            "SELECT number, certificate_der, key_ref, created_at FROM ca_generations"
            " ORDER BY number"
        )
        return [GenerationRecord(r[0], bytes(r[1]), r[2], _parse_time(r[3])) for r in rows]

    # -- certificates ------------------------------------------------------------------------
    async def record_certificate(self, record: CertificateRecord, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            await self._insert_certificate(db, record)
            await self._append(db, audit)

    async def _insert_certificate(
        self, db: aiosqlite.Connection, record: CertificateRecord
    ) -> None:
        try:
            await db.execute(
                "INSERT INTO certificates (generation, serial, der, subscriber_id, subject,"
                " email, profile, status, not_before, not_after, issued_at, spki_sha256)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.generation,
                    format(record.serial, "x"),
                    record.der,
                    record.subscriber_id,
                    record.subject,
                    record.email,
                    record.profile,
                    record.status,
                    _time(record.not_before),
                    _time(record.not_after),
                    _time(record.issued_at),
                    record.spki_sha256,
                ),
            )
        except sqlite3.IntegrityError as exc:
            text = str(exc)
            if "spki_sha256" in text:
                raise Conflict("this key was already certified for this subscriber") from exc
            if "serial" in text:
                raise Conflict(f"serial {record.serial:x} exists in this generation") from exc
            raise Conflict(text) from exc
        await db.execute(
            "UPDATE signing_intents SET state = 'issued', settled_at = ?"
            " WHERE generation = ? AND serial = ? AND state = 'reserved'",
            (_time(record.issued_at), record.generation, format(record.serial, "x")),
        )

    # -- signing intents ---------------------------------------------------------------------
    async def reserve_intent(self, intent: IntentRecord) -> None:
        async with self._transaction() as db:
            serial = format(intent.serial, "x")
            try:
                cursor = await db.execute(
                    "INSERT INTO signing_intents (generation, serial, profile, tbs_sha256,"
                    " requester, target, reserved_at) SELECT ?, ?, ?, ?, ?, ?, ?"
                    " WHERE NOT EXISTS (SELECT 1 FROM certificates"
                    " WHERE generation = ? AND serial = ?)",
                    (
                        intent.generation,
                        serial,
                        intent.profile,
                        intent.tbs_sha256,
                        intent.requester,
                        intent.target,
                        _time(intent.reserved_at),
                        intent.generation,
                        serial,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"serial {serial} is already reserved in this generation") from exc
            if cursor.rowcount != 1:
                raise Conflict(f"serial {serial} is already certified in this generation")

    async def discard_intent(
        self, generation: int, serial: int, at: dt.datetime, audit: AuditEvent
    ) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE signing_intents SET state = 'discarded', settled_at = ?"
                " WHERE generation = ? AND serial = ? AND state = 'reserved'",
                (_time(at), generation, format(serial, "x")),
            )
            if cursor.rowcount != 1:
                row = await _first(
                    db,
                    "SELECT state FROM signing_intents WHERE generation = ? AND serial = ?",
                    (generation, format(serial, "x")),
                )
                if row is None:
                    raise NotFound(f"no signing intent for serial {serial:x}")
                raise Conflict(f"the signing intent for serial {serial:x} is {row[0]}")
            await self._append(db, audit)

    async def intents(self, state: str, limit: int = 1000) -> list[IntentRecord]:
        rows = await self._db.execute_fetchall(
            "SELECT generation, serial, profile, tbs_sha256, requester, target, reserved_at,"
            " state, settled_at FROM signing_intents WHERE state = ?"
            " ORDER BY reserved_at, generation, serial LIMIT ?",
            (state, limit),
        )
        return [
            IntentRecord(
                r[0],
                int(r[1], 16),
                r[2],
                r[3],
                r[4],
                r[5],
                _parse_time(r[6]),
                r[7],
                _parse_time(r[8]) if r[8] else None,
            )
            for r in rows
        ]

    async def certificates_without_intent(self, limit: int = 1000) -> list[tuple[int, int]]:
        rows = await self._db.execute_fetchall(
            "SELECT c.generation, c.serial FROM certificates c LEFT JOIN signing_intents i"
            " ON i.generation = c.generation AND i.serial = c.serial AND i.state = 'issued'"
            " WHERE i.serial IS NULL ORDER BY c.id LIMIT ?",
            (limit,),
        )
        return [(r[0], int(r[1], 16)) for r in rows]

    _CERT_COLUMNS = (
        "generation, serial, der, subscriber_id, subject, email, profile, not_before,"
        " not_after, issued_at, spki_sha256, status, revoked_at, revocation_reason"
    )

    @staticmethod
    def _certificate(row: sqlite3.Row | tuple) -> CertificateRecord:  # type: ignore[type-arg]
        return CertificateRecord(
            generation=row[0],
            serial=int(row[1], 16),
            der=bytes(row[2]),
            subscriber_id=row[3],
            subject=row[4],
            email=row[5],
            profile=row[6],
            not_before=_parse_time(row[7]),
            not_after=_parse_time(row[8]),
            issued_at=_parse_time(row[9]),
            spki_sha256=row[10],
            status=row[11],
            revoked_at=_parse_time(row[12]) if row[12] else None,
            revocation_reason=row[13],
        )

    async def certificate(self, generation: int, serial: int) -> CertificateRecord:
        row = await _first(
            self._db,
            f"SELECT {self._CERT_COLUMNS} FROM certificates WHERE generation = ? AND serial = ?",  # noqa: S608
            (generation, format(serial, "x")),
        )
        if row is None:
            raise NotFound(f"no certificate with serial {serial:x} in generation {generation}")
        return self._certificate(row)

    async def certificates(self, limit: int = 100, offset: int = 0) -> list[CertificateRecord]:
        rows = await self._db.execute_fetchall(
            f"SELECT {self._CERT_COLUMNS} FROM certificates ORDER BY id LIMIT ? OFFSET ?",  # noqa: S608
            (limit, offset),
        )
        return [self._certificate(r) for r in rows]

    async def count_certificates(self) -> int:
        row = await _first(self._db, "SELECT count(*) FROM certificates")
        return int(row[0]) if row else 0

    async def used_keys(self, subscriber_id: str) -> set[str]:
        rows = await self._db.execute_fetchall(
            "SELECT spki_sha256 FROM certificates WHERE subscriber_id = ?", (subscriber_id,)
        )
        return {row[0] for row in rows}

    # -- audit log ---------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> AuditEntry:
        async with self._transaction() as db:
            return await self._append(db, event)

    async def _append(self, db: aiosqlite.Connection, event: AuditEvent) -> AuditEntry:
        last = await _first(db, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        digest = chain_hash(prev_hash, seq, event)
        await db.execute(
            "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                _time(event.at),
                event.actor,
                event.action,
                event.target,
                canonical_details(event.details),
                prev_hash,
                digest,
            ),
        )
        return AuditEntry(seq=seq, event=event, prev_hash=prev_hash, hash=digest)

    async def audit_log(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        rows = await self._db.execute_fetchall(
            "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            AuditEntry(
                seq=r[0],
                event=AuditEvent(
                    at=_parse_time(r[1]),
                    actor=r[2],
                    action=r[3],
                    target=r[4],
                    details=json.loads(r[5]),
                ),
                prev_hash=r[6],
                hash=r[7],
            )
            for r in rows
        ]

    async def verify_audit_chain(self) -> int:
        async def read_head() -> tuple[int, str] | None:
            head = await _first(self._db, "SELECT seq, hash FROM audit_head WHERE id = 1")
            return (head[0], head[1]) if head else None

        return await verify_audit_log(
            lambda after: self.audit_log(after_seq=after, limit=1000), read_head
        )

    # -- operators -------------------------------------------------------------------------------
    async def add_operator(self, operator: Operator, token_hash: str, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    "INSERT INTO operators (name, role, token_hash, created_at, token_set_by)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        operator.name,
                        operator.role,
                        token_hash,
                        _time(operator.created_at),
                        persons_column(operator.token_set_by),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"operator {operator.name!r} exists") from exc
            await self._append(db, audit)

    async def operator_by_token(self, token_hash: str) -> Operator | None:
        row = await _first(
            self._db,
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE token_hash = ?",  # noqa: S608
            (token_hash,),
        )
        return _operator(row) if row else None

    async def operators(self) -> list[Operator]:
        rows = await self._db.execute_fetchall(
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
                cursor = await db.execute(
                    "UPDATE operators SET cert_sha256 = ?, cert_generation = ?, cert_serial = ?,"
                    " cert_bound_by = ? WHERE name = ?",
                    (sha256, generation, format(serial, "x"), persons_column(bound_by), name),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("the certificate is bound to another operator") from exc
            if cursor.rowcount != 1:
                raise NotFound(f"there is no operator {name!r}")
            await self._append(db, audit)

    async def unbind_operator_certificate(self, name: str, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET cert_sha256 = NULL, cert_generation = NULL,"
            " cert_serial = NULL, cert_bound_by = NULL WHERE name = ? AND cert_sha256 IS NOT NULL",
            (name,),
            f"operator {name!r} has no certificate bound",
            audit,
        )

    async def operator_by_certificate(self, sha256: str) -> Operator | None:
        row = await _first(
            self._db,
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE cert_sha256 = ?",  # noqa: S608
            (sha256,),
        )
        return _operator(row) if row else None

    async def disable_operator(self, name: str, at: dt.datetime, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL",
            (_time(at), name),
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
        self, name: str, update: str, params: tuple[Any, ...], conflict: str, audit: AuditEvent
    ) -> None:
        """Run a conditional ``update`` of the operator ``name`` with its audit entry in one
        transaction: NotFound without such an operator, Conflict (``conflict``) when its
        condition does not hold."""
        async with self._transaction() as db:
            if (await db.execute(update, params)).rowcount != 1:
                rows = await db.execute_fetchall("SELECT 1 FROM operators WHERE name = ?", (name,))
                if not rows:
                    raise NotFound(f"there is no operator {name!r}")
                raise Conflict(conflict)
            await self._append(db, audit)

    async def rotate_operator_token(
        self, name: str, token_hash: str, audit: AuditEvent, *, set_by: tuple[str, ...]
    ) -> None:
        async with self._transaction() as db:
            try:
                cursor = await db.execute(
                    "UPDATE operators SET token_hash = ?, token_set_by = ? WHERE name = ?",
                    (token_hash, persons_column(set_by), name),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("the token hash belongs to another operator") from exc
            if cursor.rowcount != 1:
                raise NotFound(f"there is no operator {name!r}")
            await self._append(db, audit)

    # -- applications ----------------------------------------------------------------------------
    async def create_application(self, record: ApplicationRecord, audit: AuditEvent) -> None:
        values = _to_columns({f.name: getattr(record, f.name) for f in fields(record)})
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        async with self._transaction() as db:
            try:
                await db.execute(
                    f"INSERT INTO applications ({columns}) VALUES ({marks})",  # noqa: S608
                    tuple(values.values()),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"application {record.id} exists") from exc
            await self._append(db, audit)

    async def _application_where(
        self, db: aiosqlite.Connection, clause: str, args: tuple[Any, ...]
    ) -> ApplicationRecord | None:
        async with db.execute(f"SELECT * FROM applications WHERE {clause}", args) as cursor:  # noqa: S608
            row = await cursor.fetchone()
            names = [d[0] for d in cursor.description]
        return _application(dict(zip(names, row, strict=True))) if row else None

    async def application(self, application_id: str) -> ApplicationRecord:
        found = await self._application_where(self._db, "id = ?", (application_id,))
        if found is None:
            raise NotFound(f"no application {application_id}")
        return found

    async def application_by_enrollment_id(self, enrollment_id: str) -> ApplicationRecord:
        found = await self._application_where(self._db, "enrollment_id = ?", (enrollment_id,))
        if found is None:
            raise NotFound("unknown enrollment ID")
        return found

    async def applications_by_email(self, email: str) -> list[ApplicationRecord]:
        async with self._db.execute(
            "SELECT * FROM applications WHERE email = ? ORDER BY created_at, id", (email,)
        ) as cursor:
            rows = await cursor.fetchall()
            names = [d[0] for d in cursor.description]
        return [_application(dict(zip(names, r, strict=True))) for r in rows]

    async def audit_persons(self, target: str, actions: frozenset[str]) -> set[str]:
        marks = ", ".join("?" for _ in actions)
        rows = await self._db.execute_fetchall(
            f"SELECT actor, details FROM audit_log WHERE target = ? AND action IN ({marks})",  # noqa: S608
            (target, *sorted(actions)),
        )
        return {p for actor, details in rows for p in entry_persons(actor, json.loads(details))}

    async def applications(
        self, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApplicationRecord]:
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        async with self._db.execute(
            f"SELECT * FROM applications {where} ORDER BY created_at, id LIMIT ? OFFSET ?",  # noqa: S608
            (*args, limit, offset),
        ) as cursor:
            rows = await cursor.fetchall()
            names = [d[0] for d in cursor.description]
        return [_application(dict(zip(names, r, strict=True))) for r in rows]

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
        assignments = ", ".join(f"{name} = ?" for name in values)
        async with self._transaction() as db:
            cursor = await db.execute(
                f"UPDATE applications SET {assignments}, version = version + 1"  # noqa: S608
                " WHERE id = ? AND version = ?",
                (*values.values(), application_id, version),
            )
            if cursor.rowcount != 1:
                current = await self._application_where(db, "id = ?", (application_id,))
                if current is None:
                    raise NotFound(f"no application {application_id}")
                raise Conflict(
                    f"application {application_id} changed meanwhile (now {current.state})"
                )
            for counter in _ATTEMPT_COUNTERS & set(values):
                # A new credential (new letter, new PIN): the waits of its old tries go too.
                await db.execute(
                    "DELETE FROM attempt_throttle WHERE application_id = ? AND counter = ?",
                    (application_id, counter),
                )
            if certificate is not None:
                await self._insert_certificate(db, certificate)
            if mail is not None:
                await db.execute(
                    "UPDATE mail_outbox SET status = 'superseded', body_sealed = NULL"
                    " WHERE application_id = ? AND kind = ? AND status IN ('pending', 'failed')",
                    (mail.application_id, mail.kind),
                )
                await db.execute(
                    "INSERT INTO mail_outbox (application_id, kind, recipient, body_sealed,"
                    " status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                    (
                        mail.application_id,
                        mail.kind,
                        mail.recipient,
                        mail.body_sealed,
                        _time(mail.next_attempt_at),
                        _time(audit.at),
                    ),
                )
            await self._append(db, audit)
            updated = await self._application_where(db, "id = ?", (application_id,))
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

        async def body(db: Any) -> Attempt:
            # Count first: the increment is conditional, so a try beyond the limit is never
            # compared, however many arrive at once (one writer at a time: BEGIN IMMEDIATE).
            claimed = await _first(
                db,
                f"UPDATE applications SET {counter} = {counter} + 1"  # noqa: S608
                f" WHERE id = ? AND {counter} < ? RETURNING {counter}, {column}",
                (application_id, policy.limit),
            )
            if claimed is None:
                row = await _first(
                    db,
                    f"SELECT {counter} FROM applications WHERE id = ?",  # noqa: S608
                    (application_id,),
                )
                if row is None:
                    raise NotFound(f"no application {application_id}")
                return Attempt(Outcome.LOCKED, int(row[0]))
            tried, stored = int(claimed[0]), claimed[1]
            waiting = await _first(
                db,
                "SELECT wrong, retry_at FROM attempt_throttle"
                " WHERE application_id = ? AND counter = ? AND source = ?",
                (application_id, counter, source),
            )
            wrong_here = int(waiting[0]) if waiting else 0
            refund = f"UPDATE applications SET {counter} = {counter} - 1 WHERE id = ?"  # noqa: S608
            if waiting and _parse_time(waiting[1]) > now:
                await db.execute(refund, (application_id,))
                return Attempt(Outcome.THROTTLED, tried - 1, _parse_time(waiting[1]))
            if matches(stored):
                await db.execute(refund, (application_id,))
                await db.execute(
                    "DELETE FROM attempt_throttle"
                    " WHERE application_id = ? AND counter = ? AND source = ?",
                    (application_id, counter, source),
                )
                return Attempt(Outcome.RIGHT, tried - 1)
            await db.execute(
                "INSERT INTO attempt_throttle (application_id, counter, source, wrong, retry_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (application_id, counter, source)"
                " DO UPDATE SET wrong = excluded.wrong, retry_at = excluded.retry_at",
                (
                    application_id,
                    counter,
                    source,
                    wrong_here + 1,
                    _time(now + policy.wait(wrong_here + 1)),
                ),
            )
            await self._append(db, failure)
            return Attempt(Outcome.WRONG, tried)

        return await self._atomic(body)

    # -- mail outbox -----------------------------------------------------------------------------
    _MAIL_COLUMNS = (
        "id, application_id, kind, recipient, body_sealed, status, attempts, last_error,"
        " next_attempt_at, created_at, sent_at"
    )

    async def due_mail(self, now: dt.datetime, limit: int = 10) -> list[MailRecord]:
        rows = await self._db.execute_fetchall(
            f"SELECT {self._MAIL_COLUMNS} FROM mail_outbox"  # noqa: S608
            " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (_time(now), limit),
        )
        return [_mail(r) for r in rows]

    async def mail(self, status: str | None = None, limit: int = 100) -> list[MailRecord]:
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = await self._db.execute_fetchall(
            f"SELECT {self._MAIL_COLUMNS} FROM mail_outbox {where} ORDER BY id LIMIT ?",  # noqa: S608
            (*args, limit),
        )
        return [_mail(r) for r in rows]

    async def claim_mail(self, mail_id: int, now: dt.datetime, until: dt.datetime) -> bool:
        """Take a due mail for sending until ``until``, so that one process sends it."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE mail_outbox SET next_attempt_at = ?"
                " WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?",
                (_time(until), mail_id, _time(now)),
            )
            return cursor.rowcount == 1

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
            cursor = await db.execute(
                "UPDATE mail_outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = coalesce(?, next_attempt_at), sent_at = ?,"
                " body_sealed = CASE WHEN ? = 'sent' THEN NULL ELSE body_sealed END"
                " WHERE id = ? AND status = 'pending'",
                (
                    status,
                    error,
                    _time(next_attempt_at) if next_attempt_at else None,
                    _time(sent_at) if sent_at else None,
                    status,
                    mail_id,
                ),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"mail {mail_id} is no longer pending")
            await self._append(db, audit)

    async def retry_mail(self, mail_id: int, now: dt.datetime, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE mail_outbox SET status = 'pending', next_attempt_at = ?"
                " WHERE id = ? AND status = 'failed' AND body_sealed IS NOT NULL",
                (_time(now), mail_id),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"mail {mail_id} is not a failed mail that can be retried")
            await self._append(db, audit)

    # -- revocation ------------------------------------------------------------------------------
    async def revoke_certificate(
        self, generation: int, serial: int, reason: str, at: dt.datetime, audit: AuditEvent
    ) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?"
                " WHERE generation = ? AND serial = ? AND status = 'valid'",
                (_time(at), reason, generation, format(serial, "x")),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"certificate {serial:x} is unknown or already revoked")
            await self._append(db, audit)
            closed = await db.execute_fetchall(
                "UPDATE applications SET state = 'revoked', closed_reason = ?, updated_at = ?,"
                " version = version + 1 WHERE certificate_generation = ?"
                " AND certificate_serial = ? AND state = 'issued' RETURNING id",
                (reason, _time(at), generation, format(serial, "x")),
            )
            for (application_id,) in closed:
                await self._append(db, application_revoked(application_id, reason, audit))

    # -- EST re-enrollment -------------------------------------------------------------------------
    _REENROLL_COLUMNS = (
        "id, previous_generation, previous_serial, csr_sha256, csr_der, profile, subscriber_id,"
        " status, created_at, decided_by, decided_at, certificate_generation, certificate_serial"
    )

    async def _reenrollments(self, where: str, args: tuple[Any, ...]) -> list[ReenrollmentRecord]:
        rows = await self._db.execute_fetchall(
            f"SELECT {self._REENROLL_COLUMNS} FROM reenrollments {where} ORDER BY id",  # noqa: S608
            args,
        )
        return [_reenrollment(r) for r in rows]

    async def reenrollment(
        self, previous_generation: int, previous_serial: str, csr_sha256: str
    ) -> ReenrollmentRecord | None:
        found = await self._reenrollments(
            "WHERE previous_generation = ? AND previous_serial = ? AND csr_sha256 = ?",
            (previous_generation, previous_serial, csr_sha256),
        )
        return found[0] if found else None

    async def reenrollment_by_id(self, reenrollment_id: int) -> ReenrollmentRecord:
        found = await self._reenrollments("WHERE id = ?", (reenrollment_id,))
        if not found:
            raise NotFound(f"no re-enrollment request {reenrollment_id}")
        return found[0]

    async def reenrollments(self, status: str | None = None) -> list[ReenrollmentRecord]:
        if status is None:
            return await self._reenrollments("", ())
        return await self._reenrollments("WHERE status = ?", (status,))

    async def add_reenrollment(
        self, record: ReenrollmentRecord, audit: AuditEvent
    ) -> ReenrollmentRecord:
        async with self._transaction() as db:
            try:
                cursor = await db.execute(
                    "INSERT INTO reenrollments (previous_generation, previous_serial, csr_sha256,"
                    " csr_der, profile, subscriber_id, status, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.previous_generation,
                        record.previous_serial,
                        record.csr_sha256,
                        record.csr_der,
                        record.profile,
                        record.subscriber_id,
                        record.status,
                        _time(record.created_at),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("this re-enrollment request exists") from exc
            new_id = cursor.lastrowid
            await self._append(db, audit)
        assert new_id is not None
        return await self.reenrollment_by_id(new_id)

    async def decide_reenrollment(
        self, reenrollment_id: int, status: str, operator: str, at: dt.datetime, audit: AuditEvent
    ) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE reenrollments SET status = ?, decided_by = ?, decided_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (status, operator, _time(at), reenrollment_id),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"re-enrollment request {reenrollment_id} is not pending")
            await self._append(db, audit)

    async def complete_reenrollment(
        self, reenrollment_id: int, certificate: CertificateRecord, audit: AuditEvent
    ) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE reenrollments SET status = 'issued', certificate_generation = ?,"
                " certificate_serial = ? WHERE id = ? AND status IN ('pending', 'approved')",
                (certificate.generation, format(certificate.serial, "x"), reenrollment_id),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"re-enrollment request {reenrollment_id} was already decided")
            await self._insert_certificate(db, certificate)
            await self._append(db, audit)

    # == ACME (RFC 8555) ==========================================================================
    # Nonces, EAB keys, accounts, orders, authorizations and challenges (migration 0006).
    # A SQLite store serves one server process (``serve`` holds its serve-lock and refuses
    # --workers N on it: server/workers.py), so its ACME nonces live in that process's memory,
    # not in the file: redeeming one is then not a write transaction with an fsync on every
    # request, queued behind the other writes (RFC 8555 §6.5 asks that each nonce be
    # server-issued and used once, nothing more). A restart forgets them: a client's next
    # request gets badNonce with a fresh nonce and is retried (§6.5), and no nonce outlives a
    # crash to be replayed. PostgreSQL keeps them in a table every process sees.
    async def acme_add_nonce(self, value: str, expires_at: dt.datetime) -> None:
        self._remember_nonces([value], expires_at)

    async def acme_add_nonces(self, values: Sequence[str], expires_at: dt.datetime) -> None:
        self._remember_nonces(values, expires_at)

    def _remember_nonces(self, values: Sequence[str], expires_at: dt.datetime) -> None:
        for value in values:
            self._nonces[value] = expires_at
        # Bounded: past the cap the oldest go first (their clients get badNonce and retry).
        while len(self._nonces) > MAX_NONCES:
            del self._nonces[next(iter(self._nonces))]

    async def acme_use_nonce(self, value: str, now: dt.datetime) -> bool:
        # No await between the lookup and the delete: two requests cannot both redeem it.
        expires_at = self._nonces.get(value)
        if expires_at is None or expires_at <= now:
            return False
        del self._nonces[value]
        return True

    async def acme_prune_nonces(self, now: dt.datetime) -> int:
        expired = [value for value, expires_at in self._nonces.items() if expires_at <= now]
        for value in expired:
            del self._nonces[value]
        return len(expired)

    _EAB_COLUMNS = (
        "kid, key_sealed, allowed, lifetime_days, max_certificates, expires_at, note, created_by,"
        " created_at, used_at, account_id, disabled_at"
    )

    async def acme_add_eab_key(self, record: AcmeEABKeyRecord, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            try:
                await db.execute(
                    f"INSERT INTO acme_eab_keys ({self._EAB_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.kid,
                        record.key_sealed,
                        json.dumps(list(record.allowed)),
                        record.lifetime_days,
                        record.max_certificates,
                        _opt_time(record.expires_at),
                        record.note,
                        record.created_by,
                        _time(record.created_at),
                        _opt_time(record.used_at),
                        record.account_id,
                        _opt_time(record.disabled_at),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"EAB key {record.kid} exists") from exc
            await self._append(db, audit)

    async def acme_eab_key(self, kid: str) -> AcmeEABKeyRecord:
        row = await _first(
            self._db,
            f"SELECT {self._EAB_COLUMNS} FROM acme_eab_keys WHERE kid = ?",  # noqa: S608
            (kid,),
        )
        if row is None:
            raise NotFound(f"no EAB key {kid}")
        return _eab_key(row)

    async def acme_eab_keys(self) -> list[AcmeEABKeyRecord]:
        rows = await self._db.execute_fetchall(
            f"SELECT {self._EAB_COLUMNS} FROM acme_eab_keys ORDER BY created_at, kid"  # noqa: S608
        )
        return [_eab_key(r) for r in rows]

    async def acme_disable_eab_key(self, kid: str, at: dt.datetime, audit: AuditEvent) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE acme_eab_keys SET disabled_at = coalesce(disabled_at, ?) WHERE kid = ?",
                (_time(at), kid),
            )
            if cursor.rowcount != 1:
                raise NotFound(f"no EAB key {kid}")
            await self._append(db, audit)

    _ACCOUNT_COLUMNS = (
        "id, thumbprint, jwk, contact, status, kind, eab_kid, eab_alg, application_id,"
        " terms_agreed, created_at, updated_at"
    )

    async def acme_create_account(
        self, record: AcmeAccountRecord, audit: AuditEvent, operator_key: bool
    ) -> None:
        async def body(db: Any) -> None:
            if operator_key:
                cursor = await db.execute(
                    "UPDATE acme_eab_keys SET used_at = ?, account_id = ?"
                    " WHERE kid = ? AND used_at IS NULL AND disabled_at IS NULL",
                    (_time(record.created_at), record.id, record.eab_kid),
                )
                if cursor.rowcount != 1:
                    raise Conflict(f"EAB key {record.eab_kid} is used, disabled or unknown")
            try:
                await db.execute(
                    f"INSERT INTO acme_accounts ({self._ACCOUNT_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.thumbprint,
                        canonical_details(record.jwk),
                        json.dumps(list(record.contact)),
                        record.status,
                        record.kind,
                        record.eab_kid,
                        record.eab_alg,
                        record.application_id,
                        int(record.terms_agreed),
                        _time(record.created_at),
                        _time(record.updated_at),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                text = str(exc)
                if "thumbprint" in text:
                    raise Conflict("this key already has an account") from exc
                if "eab_kid" in text:
                    raise Conflict("this external account binding was used before") from exc
                raise Conflict(text) from exc
            await self._append(db, audit)

        await self._atomic(body)

    async def _acme_account_where(self, clause: str, args: tuple[Any, ...]) -> Any:
        row = await _first(
            self._db,
            f"SELECT {self._ACCOUNT_COLUMNS} FROM acme_accounts WHERE {clause}",  # noqa: S608
            args,
        )
        return _acme_account(row) if row else None

    async def acme_account(self, account_id: str) -> AcmeAccountRecord:
        found = await self._acme_account_where("id = ?", (account_id,))
        if found is None:
            raise NotFound(f"no ACME account {account_id}")
        return found

    async def acme_account_by_thumbprint(self, thumbprint: str) -> AcmeAccountRecord | None:
        return await self._acme_account_where("thumbprint = ?", (thumbprint,))

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
                value = int(value)
            elif isinstance(value, dt.datetime):
                value = _time(value)
            values[name] = value
        assignments = ", ".join(f"{name} = ?" for name in values)
        async with self._transaction() as db:
            try:
                cursor = await db.execute(
                    f"UPDATE acme_accounts SET {assignments} WHERE id = ?",  # noqa: S608
                    (*values.values(), account_id),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("this key already has an account") from exc
            if cursor.rowcount != 1:
                raise NotFound(f"no ACME account {account_id}")
            await self._append(db, audit)
        return await self.acme_account(account_id)

    async def _acme_insert_authz(self, db: aiosqlite.Connection, authz: AcmeAuthzRecord) -> None:
        await db.execute(
            "INSERT INTO acme_authorizations (id, account_id, identifier_type, identifier_value,"
            " wildcard, status, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                authz.id,
                authz.account_id,
                authz.identifier_type,
                authz.identifier_value,
                int(authz.wildcard),
                authz.status,
                _time(authz.expires_at),
                _time(authz.created_at),
            ),
        )
        for challenge in authz.challenges:
            await db.execute(
                "INSERT INTO acme_challenges (id, authz_id, type, token, status, validated_at,"
                " error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    challenge.id,
                    authz.id,
                    challenge.type,
                    challenge.token,
                    challenge.status,
                    _opt_time(challenge.validated_at),
                    canonical_details(challenge.error) if challenge.error else None,
                    _time(challenge.updated_at),
                ),
            )

    async def acme_add_order(
        self,
        order: AcmeOrderRecord,
        new_authorizations: list[AcmeAuthzRecord],
        audit: AuditEvent,
    ) -> None:
        async def body(db: Any) -> None:
            for authz in new_authorizations:
                await self._acme_insert_authz(db, authz)
            await db.execute(
                "INSERT INTO acme_orders (id, account_id, status, expires_at, identifiers,"
                " profile, replaces, error, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    order.id,
                    order.account_id,
                    order.status,
                    _time(order.expires_at),
                    json.dumps([list(i) for i in order.identifiers]),
                    order.profile,
                    order.replaces,
                    canonical_details(order.error) if order.error else None,
                    _time(order.created_at),
                    _time(order.updated_at),
                ),
            )
            for authz_id in order.authz_ids:
                await db.execute(
                    "INSERT INTO acme_order_authorizations (order_id, authz_id) VALUES (?, ?)",
                    (order.id, authz_id),
                )
            await self._append(db, audit)

        await self._atomic(body)

    async def acme_add_authorization(self, authz: AcmeAuthzRecord, audit: AuditEvent) -> None:
        async def body(db: Any) -> None:
            await self._acme_insert_authz(db, authz)
            await self._append(db, audit)

        await self._atomic(body)

    _ORDER_COLUMNS = (
        "seq, id, account_id, status, expires_at, identifiers, profile, replaces, error, csr_der,"
        " reenrollment_id, certificate_generation, certificate_serial, created_at, updated_at"
    )

    async def _acme_orders_where(
        self, db: aiosqlite.Connection, clause: str, args: tuple[Any, ...]
    ) -> list[AcmeOrderRecord]:
        if db is self._db:  # not in a transaction: its queries in one trip
            return await self._read(lambda inner: self._acme_orders_where_in(inner, clause, args))
        return await self._acme_orders_where_in(db, clause, args)

    async def _acme_orders_where_in(
        self, db: aiosqlite.Connection, clause: str, args: tuple[Any, ...]
    ) -> list[AcmeOrderRecord]:
        rows = await db.execute_fetchall(
            f"SELECT {self._ORDER_COLUMNS} FROM acme_orders WHERE {clause}",  # noqa: S608
            args,
        )
        out = []
        for row in rows:
            linked = await db.execute_fetchall(
                "SELECT l.authz_id FROM acme_order_authorizations l"
                " JOIN acme_authorizations a ON a.id = l.authz_id"
                " WHERE l.order_id = ? ORDER BY a.seq",
                (row[1],),
            )
            authz_ids = tuple(r[0] for r in linked)
            out.append(_acme_order(row, authz_ids))
        return out

    async def acme_order(self, order_id: str) -> AcmeOrderRecord:
        found = await self._acme_orders_where(self._db, "id = ?", (order_id,))
        if not found:
            raise NotFound(f"no ACME order {order_id}")
        return found[0]

    async def acme_orders(
        self, account_id: str, after_seq: int, limit: int
    ) -> list[AcmeOrderRecord]:
        return await self._acme_orders_where(
            self._db,
            "account_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (account_id, after_seq, limit),
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
                value = _time(value)
            values[name] = value
        assignments = ", ".join(f"{name} = ?" for name in values)

        async def body(db: Any) -> Any:
            cursor = await db.execute(
                f"UPDATE acme_orders SET {assignments} WHERE id = ? AND status = ?",  # noqa: S608
                (*values.values(), order_id, expected_status),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"order {order_id} is no longer {expected_status}")
            if certificate is not None:
                await self._insert_certificate(db, certificate)
            if audit is not None:
                await self._append(db, audit)
            found = await self._acme_orders_where(db, "id = ?", (order_id,))
            return found[0]

        return await self._atomic(body)

    async def acme_order_by_certificate(
        self, generation: int, serial: int
    ) -> AcmeOrderRecord | None:
        found = await self._acme_orders_where(
            self._db,
            "certificate_generation = ? AND certificate_serial = ?",
            (generation, format(serial, "x")),
        )
        return found[0] if found else None

    async def acme_orders_replacing(self, cert_id: str) -> list[AcmeOrderRecord]:
        return await self._acme_orders_where(self._db, "replaces = ? ORDER BY seq", (cert_id,))

    async def acme_count_orders(
        self, account_id: str, since: dt.datetime
    ) -> tuple[int, dt.datetime | None]:
        row = await _first(
            self._db,
            "SELECT count(*), min(created_at) FROM acme_orders"
            " WHERE account_id = ? AND created_at > ?",
            (account_id, _time(since)),
        )
        assert row is not None
        return int(row[0]), _parse_time(row[1]) if row[1] else None

    async def acme_count_certificates(self, eab_kid: str) -> int:
        row = await _first(
            self._db,
            "SELECT count(*) FROM acme_orders o JOIN acme_accounts a ON a.id = o.account_id"
            " WHERE a.eab_kid = ? AND o.certificate_serial IS NOT NULL",
            (eab_kid,),
        )
        return int(row[0]) if row else 0

    _AUTHZ_COLUMNS = (
        "id, account_id, identifier_type, identifier_value, wildcard, status, expires_at,"
        " created_at"
    )

    async def _acme_authz_where(
        self, db: aiosqlite.Connection, clause: str, args: tuple[Any, ...]
    ) -> AcmeAuthzRecord | None:
        if db is self._db:  # not in a transaction: its queries in one trip
            return await self._read(lambda inner: self._acme_authz_where_in(inner, clause, args))
        return await self._acme_authz_where_in(db, clause, args)

    async def _acme_authz_where_in(
        self, db: aiosqlite.Connection, clause: str, args: tuple[Any, ...]
    ) -> AcmeAuthzRecord | None:
        row = await _first(
            db,
            f"SELECT {self._AUTHZ_COLUMNS} FROM acme_authorizations WHERE {clause}",  # noqa: S608
            args,
        )
        if row is None:
            return None
        rows = await db.execute_fetchall(
            f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE authz_id = ?"  # noqa: S608
            " ORDER BY seq",
            (row[0],),
        )
        challenges = tuple(_acme_challenge(r) for r in rows)
        return AcmeAuthzRecord(
            id=row[0],
            account_id=row[1],
            identifier_type=row[2],
            identifier_value=row[3],
            wildcard=bool(row[4]),
            status=row[5],
            expires_at=_parse_time(row[6]),
            created_at=_parse_time(row[7]),
            challenges=challenges,
        )

    async def acme_authorization(self, authz_id: str) -> AcmeAuthzRecord:
        found = await self._acme_authz_where(self._db, "id = ?", (authz_id,))
        if found is None:
            raise NotFound(f"no ACME authorization {authz_id}")
        return found

    async def acme_reusable_authorization(
        self, account_id: str, identifier_type: str, identifier_value: str, wildcard: bool,
        now: dt.datetime,
    ) -> AcmeAuthzRecord | None:  # fmt: skip
        return await self._acme_authz_where(
            self._db,
            "account_id = ? AND identifier_type = ? AND identifier_value = ? AND wildcard = ?"
            " AND status = 'valid' AND expires_at > ? ORDER BY seq DESC LIMIT 1",
            (account_id, identifier_type, identifier_value, int(wildcard), _time(now)),
        )

    async def acme_update_authorization(
        self, authz_id: str, expected_status: str, status: str, audit: AuditEvent | None = None
    ) -> AcmeAuthzRecord:
        async def body(db: Any) -> Any:
            cursor = await db.execute(
                "UPDATE acme_authorizations SET status = ? WHERE id = ? AND status = ?",
                (status, authz_id, expected_status),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"authorization {authz_id} is no longer {expected_status}")
            if audit is not None:
                await self._append(db, audit)
            found = await self._acme_authz_where(db, "id = ?", (authz_id,))
            assert found is not None
            return found

        return await self._atomic(body)

    async def acme_challenge(self, challenge_id: str) -> AcmeChallengeRecord:
        row = await _first(
            self._db,
            f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = ?",  # noqa: S608
            (challenge_id,),
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
        async def body(db: Any) -> Any:
            cursor = await db.execute(
                "UPDATE acme_challenges SET status = ?, updated_at = ?, error = ?,"
                " validated_at = CASE WHEN ? = 'valid' THEN ? ELSE validated_at END"
                " WHERE id = ? AND status = ?",
                (
                    status,
                    _time(at),
                    canonical_details(error) if error else None,
                    status,
                    _time(at),
                    challenge_id,
                    expected_status,
                ),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"challenge {challenge_id} is no longer {expected_status}")
            if authz_status is not None:
                await db.execute(
                    "UPDATE acme_authorizations SET status = ? WHERE status = 'pending' AND id ="
                    " (SELECT authz_id FROM acme_challenges WHERE id = ?)",
                    (authz_status, challenge_id),
                )
            if audit is not None:
                await self._append(db, audit)
            row = await _first(
                db,
                f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = ?",  # noqa: S608
                (challenge_id,),
            )
            return _acme_challenge(row)

        return await self._atomic(body)

    async def acme_deactivate_account(
        self,
        account_id: str,
        changes: Mapping[str, Any],
        order_error: Mapping[str, Any],
        audit: AuditEvent,
    ) -> AcmeAccountRecord:
        values = _deactivation_values(changes)
        assignments = ", ".join(f"{name} = ?" for name in values)
        cancellable = ", ".join("?" for _ in ACME_CANCELLABLE_ORDERS)

        async def body(db: Any) -> None:
            cursor = await db.execute(
                f"UPDATE acme_accounts SET {assignments}"  # noqa: S608
                " WHERE id = ? AND status = 'valid'",
                (*values.values(), account_id),
            )
            if cursor.rowcount != 1:
                row = await _first(
                    db, "SELECT status FROM acme_accounts WHERE id = ?", (account_id,)
                )
                if row is None:
                    raise NotFound(f"no ACME account {account_id}")
                raise Conflict(f"ACME account {account_id} is {row[0]}, not valid")
            # BEGIN IMMEDIATE holds the write lock: what is read here is what is updated.
            orders = await db.execute_fetchall(
                "SELECT id, status FROM acme_orders"  # noqa: S608
                f" WHERE account_id = ? AND status IN ({cancellable}) ORDER BY seq",
                (account_id, *ACME_CANCELLABLE_ORDERS),
            )
            await db.execute(
                "UPDATE acme_orders SET status = 'invalid', error = ?, updated_at = ?"  # noqa: S608
                f" WHERE account_id = ? AND status IN ({cancellable})",
                (
                    canonical_details(order_error),
                    _time(audit.at),
                    account_id,
                    *ACME_CANCELLABLE_ORDERS,
                ),
            )
            authzs = await db.execute_fetchall(
                "SELECT id FROM acme_authorizations WHERE account_id = ? AND status = 'pending'"
                " ORDER BY seq",
                (account_id,),
            )
            await db.execute(
                "UPDATE acme_authorizations SET status = 'deactivated'"
                " WHERE account_id = ? AND status = 'pending'",
                (account_id,),
            )
            await self._append(db, audit)
            for order_id, previous in orders:
                await self._append(db, acme_cancelled("order", order_id, previous, audit))
            for (authz_id,) in authzs:
                await self._append(db, acme_cancelled("authz", authz_id, "pending", audit))

        await self._atomic(body)
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
        conditions, args = ["seq < ?"], [before_seq if before_seq is not None else 2**62]
        if target is not None:
            conditions.append("target = ?")
            args.append(target)
        if actor is not None:
            conditions.append("actor = ?")
            args.append(actor)
        rows = await self._db.execute_fetchall(
            f"{self._AUDIT_COLUMNS_SQL} WHERE {' AND '.join(conditions)} ORDER BY seq DESC LIMIT ?",
            (*args, limit),
        )
        return [
            AuditEntry(
                seq=r[0],
                event=AuditEvent(
                    at=_parse_time(r[1]),
                    actor=r[2],
                    action=r[3],
                    target=r[4],
                    details=json.loads(r[5]),
                ),
                prev_hash=r[6],
                hash=r[7],
            )
            for r in rows
        ]


def _reenrollment(row: Any) -> ReenrollmentRecord:
    return ReenrollmentRecord(
        id=row[0],
        previous_generation=row[1],
        previous_serial=row[2],
        csr_sha256=row[3],
        csr_der=bytes(row[4]),
        profile=row[5],
        subscriber_id=row[6],
        status=row[7],
        created_at=_parse_time(row[8]),
        decided_by=row[9],
        decided_at=_parse_time(row[10]) if row[10] else None,
        certificate_generation=row[11],
        certificate_serial=row[12],
    )


_APPLICATION_COLUMNS = frozenset(f.name for f in fields(ApplicationRecord))
_ATTEMPT_COUNTERS = frozenset(c.counter for c in Credential)
_TIME_COLUMNS = frozenset(name for name in _APPLICATION_COLUMNS if name.endswith("_at")) | {
    "created_at",
    "updated_at",
}


def _to_columns(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if isinstance(value, dt.datetime):
            value = _time(value)
        elif name == "review" and value is not None:
            value = canonical_details(value)
        out[name] = value
    return out


def _application(row: dict[str, Any]) -> ApplicationRecord:
    for name in _TIME_COLUMNS:
        if row.get(name):
            row[name] = _parse_time(row[name])
    if row.get("review"):
        row["review"] = json.loads(row["review"])
    if row.get("eab_key_sealed") is not None:
        row["eab_key_sealed"] = bytes(row["eab_key_sealed"])
    return ApplicationRecord(**row)


_OPERATOR_COLUMNS = (
    "name, role, created_at, disabled_at, cert_sha256, cert_generation, cert_serial,"
    " token_set_by, cert_bound_by"
)


def _operator(row: Any) -> Operator:
    return Operator(
        name=row[0],
        role=row[1],
        created_at=_parse_time(row[2]),
        disabled_at=_parse_time(row[3]) if row[3] else None,
        certificate_sha256=row[4],
        certificate_generation=row[5],
        certificate_serial=int(row[6], 16) if row[6] is not None else None,
        token_set_by=persons_from_column(row[7]),
        certificate_bound_by=persons_from_column(row[8]) if row[4] is not None else (),
    )


def _mail(row: Any) -> MailRecord:
    return MailRecord(
        id=row[0],
        application_id=row[1],
        kind=row[2],
        recipient=row[3],
        body_sealed=bytes(row[4]) if row[4] is not None else None,
        status=row[5],
        attempts=row[6],
        last_error=row[7],
        next_attempt_at=_parse_time(row[8]),
        created_at=_parse_time(row[9]),
        sent_at=_parse_time(row[10]) if row[10] else None,
    )


def _statements(sql: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    out: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise RuntimeError(f"incomplete SQL statement in migration: {buffer.strip()[:60]}")
    return out


# -- ACME row readers -----------------------------------------------------------------------------
_CHALLENGE_COLUMNS = "id, authz_id, type, token, status, updated_at, validated_at, error"


def _opt_time(value: dt.datetime | None) -> str | None:
    return _time(value) if value is not None else None


def _opt_parse(value: str | None) -> dt.datetime | None:
    return _parse_time(value) if value else None


def _eab_key(row: Any) -> AcmeEABKeyRecord:
    return AcmeEABKeyRecord(
        kid=row[0],
        key_sealed=bytes(row[1]),
        allowed=tuple(json.loads(row[2])),
        lifetime_days=row[3],
        max_certificates=row[4],
        expires_at=_opt_parse(row[5]),
        note=row[6],
        created_by=row[7],
        created_at=_parse_time(row[8]),
        used_at=_opt_parse(row[9]),
        account_id=row[10],
        disabled_at=_opt_parse(row[11]),
    )


def _acme_account(row: Any) -> AcmeAccountRecord:
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
        created_at=_parse_time(row[10]),
        updated_at=_parse_time(row[11]),
    )


def _acme_order(row: Any, authz_ids: tuple[str, ...]) -> AcmeOrderRecord:
    return AcmeOrderRecord(
        seq=row[0],
        id=row[1],
        account_id=row[2],
        status=row[3],
        expires_at=_parse_time(row[4]),
        identifiers=tuple((i[0], i[1]) for i in json.loads(row[5])),
        profile=row[6],
        replaces=row[7],
        error=json.loads(row[8]) if row[8] else None,
        csr_der=bytes(row[9]) if row[9] is not None else None,
        reenrollment_id=row[10],
        certificate_generation=row[11],
        certificate_serial=row[12],
        created_at=_parse_time(row[13]),
        updated_at=_parse_time(row[14]),
        authz_ids=authz_ids,
    )


def _acme_challenge(row: Any) -> AcmeChallengeRecord:
    return AcmeChallengeRecord(
        id=row[0],
        authz_id=row[1],
        type=row[2],
        token=row[3],
        status=row[4],
        updated_at=_parse_time(row[5]),
        validated_at=_opt_parse(row[6]),
        error=json.loads(row[7]) if row[7] else None,
    )


def _deactivation_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The acme_accounts columns ``acme_deactivate_account`` sets, as SQLite stores them."""
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
            value = int(value)
        elif isinstance(value, dt.datetime):
            value = _time(value)
        values[name] = value
    return values

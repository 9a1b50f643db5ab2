"""The embedded store: one SQLite file in WAL mode (aiosqlite).

Writes run in ``BEGIN IMMEDIATE`` transactions, so several processes sharing the file serialize
on SQLite's write lock, and one asyncio lock keeps coroutines of this process from interleaving
statements of different transactions on the single connection.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import aiosqlite

from jitsuin.server.storage import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    CertificateRecord,
    Conflict,
    GenerationRecord,
    NotFound,
    canonical_details,
    chain_hash,
    verify_chain,
)

_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, SQL) of the numbered migrations shipped as package data."""
    folder = resources.files("jitsuin.server.storage").joinpath("migrations", dialect)
    found = []
    for item in folder.iterdir():
        match = _MIGRATION_NAME.fullmatch(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


class SQLiteStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

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
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _migrate(self) -> None:
        async with self._transaction() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            async with db.execute("SELECT version FROM schema_migrations") as cursor:
                applied = {row[0] for row in await cursor.fetchall()}
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
        async with self._db.execute("SELECT max(version) FROM schema_migrations") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- CA generations ----------------------------------------------------------------------
    async def add_generation(self, record: GenerationRecord, audit: AuditEvent) -> None:
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
            await self._append(db, audit)

    async def generations(self) -> list[GenerationRecord]:
        async with self._db.execute(
            "SELECT number, certificate_der, key_ref, created_at FROM ca_generations"
            " ORDER BY number"
        ) as cursor:
            rows = await cursor.fetchall()
        return [GenerationRecord(r[0], bytes(r[1]), r[2], _parse_time(r[3])) for r in rows]

    # -- certificates ------------------------------------------------------------------------
    async def record_certificate(self, record: CertificateRecord, audit: AuditEvent) -> None:
        async with self._transaction() as db:
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
            await self._append(db, audit)

    _CERT_COLUMNS = (
        "generation, serial, der, subscriber_id, subject, email, profile, not_before,"
        " not_after, issued_at, spki_sha256, status"
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
        )

    async def certificate(self, generation: int, serial: int) -> CertificateRecord:
        async with self._db.execute(
            f"SELECT {self._CERT_COLUMNS} FROM certificates WHERE generation = ? AND serial = ?",  # noqa: S608
            (generation, format(serial, "x")),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"no certificate with serial {serial:x} in generation {generation}")
        return self._certificate(row)

    async def certificates(self, limit: int = 100, offset: int = 0) -> list[CertificateRecord]:
        async with self._db.execute(
            f"SELECT {self._CERT_COLUMNS} FROM certificates ORDER BY id LIMIT ? OFFSET ?",  # noqa: S608
            (limit, offset),
        ) as cursor:
            rows = await cursor.fetchall()
        return [self._certificate(r) for r in rows]

    async def count_certificates(self) -> int:
        async with self._db.execute("SELECT count(*) FROM certificates") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def used_keys(self, subscriber_id: str) -> set[str]:
        async with self._db.execute(
            "SELECT spki_sha256 FROM certificates WHERE subscriber_id = ?", (subscriber_id,)
        ) as cursor:
            return {row[0] for row in await cursor.fetchall()}

    # -- audit log ---------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> AuditEntry:
        async with self._transaction() as db:
            return await self._append(db, event)

    async def _append(self, db: aiosqlite.Connection, event: AuditEvent) -> AuditEntry:
        async with db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1") as cur:
            last = await cur.fetchone()
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
        async with self._db.execute(
            "SELECT seq, at, actor, action, target, details, prev_hash, hash FROM audit_log"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ) as cursor:
            rows = await cursor.fetchall()
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
        checked, prev_hash, after = 0, GENESIS_HASH, 0
        while batch := await self.audit_log(after_seq=after, limit=1000):
            checked += verify_chain(batch, prev_hash)
            prev_hash, after = batch[-1].hash, batch[-1].seq
        return checked


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

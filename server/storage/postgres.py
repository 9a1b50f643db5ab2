"""The shared store for several server processes: PostgreSQL through an asyncpg pool, as
``store.py``'s driver.

What must not race across processes is decided by the database, never by this process:

- Audit appends serialize on ``LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE`` (the mode
  conflicts with itself, not with readers), taken as the last step of every writing transaction
  and held until it commits; the chain head is read after the lock is granted, so under READ
  COMMITTED it is the committed head. The primary key on ``seq`` and the unique ``hash`` are the
  backstop.
- Optimistic updates (``version``), attempt counters, mail claims and status changes are single
  ``UPDATE`` statements: PostgreSQL re-checks their WHERE clause after waiting for a concurrent
  writer's row lock, so exactly one of two racing processes wins.
- Certificate uniqueness (serial per generation, SEED-R2 key per subscriber) is the table's
  named UNIQUE constraints; violations map to ``Violation`` (a ``Conflict``) by their columns.

``database_url`` is a libpq URL (``postgresql://USER@HOST:PORT/DATABASE``); ``?schema=NAME``
keeps jitsuin's tables in that schema (created on first start), so one database can hold several
installations or test runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import asyncpg

from jitsuin.server.storage.driver import Row, Session, Violation
from jitsuin.server.storage.migrations import migrations
from jitsuin.server.storage.store import SQLStore

T = TypeVar("T")

# pg_advisory_xact_lock key serializing migrations of processes that start together ("jitsuin").
_MIGRATION_LOCK = 0x6A697473_75696E
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_KEY = re.compile(r"Key \(([^)]*)\)=")


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


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (the store's SQL has no ``?`` in a
    literal)."""
    count = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


def _encode(args: Iterable[Any]) -> tuple[Any, ...]:
    """The time codec's writing half: times as UTC (timestamptz columns keep the instant)."""
    return tuple(
        value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else value for value in args
    )


def _violation(exc: asyncpg.IntegrityConstraintViolationError) -> Violation:
    key = _KEY.match(getattr(exc, "detail", None) or "")
    columns = [c.strip() for c in key.group(1).split(",")] if key else []
    return Violation(str(exc), columns)


def _rows(status: str) -> int:
    """The row count of a command tag such as 'UPDATE 1'."""
    return int(status.rsplit(" ", 1)[-1])


class _Connection:
    """Statements on one pooled connection (or, for single queries, the pool)."""

    for_update = " FOR UPDATE"  # rows are locked one by one: lock what is read to be changed

    def __init__(self, db: asyncpg.Connection | asyncpg.Pool) -> None:
        self._db = db

    async def execute(self, sql: str, *args: Any) -> int:
        try:
            return _rows(await self._db.execute(_numbered(sql), *_encode(args)))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _violation(exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            await self._db.executemany(_numbered(sql), [_encode(row) for row in rows])
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _violation(exc) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        try:
            return list(await self._db.fetch(_numbered(sql), *_encode(args)))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _violation(exc) from exc

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            row: Row | None = await self._db.fetchrow(_numbered(sql), *_encode(args))
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise _violation(exc) from exc
        return row

    async def lock_audit_log(self) -> None:
        await self._db.execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")


class PostgresDriver(_Connection):
    def __init__(self, pool: asyncpg.Pool, schema: str | None) -> None:
        super().__init__(pool)
        self._pool = pool
        self._schema = schema

    @property
    def lookups(self) -> PostgresDriver:
        """Every query is a round trip to the server: an indexed one is no different."""
        return self

    async def transaction(self, body: Callable[[Session], Awaitable[T]]) -> T:
        async with self._pool.acquire() as connection, connection.transaction():
            return await body(_Connection(connection))

    async def read(self, body: Callable[[Session], Awaitable[T]]) -> T:
        async with self._pool.acquire() as connection:
            return await body(_Connection(connection))

    async def migrate(self) -> None:
        async with self._pool.acquire() as db, db.transaction():
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

    async def close(self) -> None:
        await self._pool.close()


class TableNonces:
    """ACME nonces in a table every server process sees (serve --workers N)."""

    def __init__(self, driver: PostgresDriver) -> None:
        self._driver = driver

    async def add(self, values: Sequence[str], expires_at: dt.datetime) -> None:
        async def body(db: Session) -> None:
            await db.executemany(
                "INSERT INTO acme_nonces (value, expires_at) VALUES (?, ?)",
                [(value, expires_at) for value in values],
            )

        await self._driver.transaction(body)

    async def use(self, value: str, now: dt.datetime) -> bool:
        # Of two processes deleting one nonce, the second waits for the first's row lock, then
        # finds the row gone: a nonce is redeemed once (RFC 8555 §6.5).
        return (
            await self._driver.execute(
                "DELETE FROM acme_nonces WHERE value = ? AND expires_at > ?", value, now
            )
            == 1
        )

    async def prune(self, now: dt.datetime) -> int:
        return await self._driver.execute("DELETE FROM acme_nonces WHERE expires_at <= ?", now)


class PostgresStore(SQLStore):
    acme_process_local = False  # serve --workers N, and servers on several hosts, share it

    @classmethod
    async def open(cls, url: str, *, max_connections: int = 10) -> PostgresStore:
        dsn, schema = connect_arguments(url)
        settings = {"search_path": f'"{schema}"'} if schema else {}
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=max_connections, server_settings=settings
        )
        try:
            driver = PostgresDriver(pool, schema)
            await driver.migrate()
        except BaseException:
            await pool.close()
            raise
        return cls(driver, TableNonces(driver))

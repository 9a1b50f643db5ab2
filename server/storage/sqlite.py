"""The embedded store: one SQLite file in WAL mode (aiosqlite), as ``store.py``'s driver.

Every transaction is ``BEGIN IMMEDIATE``, so several processes sharing the file serialize on
SQLite's write lock, and runs whole in the connection's thread: one trip there, under one
asyncio lock, so that both locks are held for the statements and not for the event loop's turns
between them, and no coroutine of this process interleaves its statements with another's on the
writing connection. The transactions that queue while one runs are committed together
(``_group_commit``: one trip, one fsync, each body in a savepoint of its own), as a database
server commits concurrent transactions with one log flush.

Index-bounded reads (``Driver.lookups``) take a second, query-only connection on the event
loop's own thread (``_LoopReads``): such a read costs SQLite a few microseconds, and the trip to
aiosqlite's thread and back 25-65 µs of CPU (a queue hand-off, a wake-up of the loop through
its self-pipe). WAL lets it read beside the writer without waiting for it. Reads that may touch
many rows (lists, counts over a table, the CRL's revoked set) stay in aiosqlite's thread, so
that the loop is never held up by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from jitsuin.server.storage.driver import Row, Session, Violation
from jitsuin.server.storage.migrations import migrations
from jitsuin.server.storage.store import SQLStore

T = TypeVar("T")

# The most ACME nonces a store holds in memory (about 20 MB); see MemoryNonces.
MAX_NONCES = 100_000

_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


def _encode(args: Iterable[Any]) -> tuple[Any, ...]:
    """The time codec's writing half: times as ISO 8601 text in UTC (bools go in as 0 / 1)."""
    return tuple(
        value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else value
        for value in args
    )


def _violation(exc: sqlite3.IntegrityError) -> Violation:
    text = str(exc)
    unique = _UNIQUE.match(text)
    columns = [c.strip().rsplit(".", 1)[-1] for c in unique.group(1).split(",")] if unique else []
    return Violation(text, columns)


class _Direct:
    """A transaction's or read's statements, answered synchronously on the connection: in
    aiosqlite's thread for the writing connection, on the loop for ``_LoopReads``."""

    for_update = ""  # BEGIN IMMEDIATE holds the write lock: what is read is what is changed

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _run(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, _encode(args))
        except sqlite3.IntegrityError as exc:
            raise _violation(exc) from exc

    async def execute(self, sql: str, *args: Any) -> int:
        return self._run(sql, args).rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(sql, [_encode(row) for row in rows])
        except sqlite3.IntegrityError as exc:
            raise _violation(exc) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self._run(sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return cast(Row | None, self._run(sql, args).fetchone())

    async def lock_audit_log(self) -> None:
        """BEGIN IMMEDIATE already made this transaction the only writer."""


def _drive(conn: sqlite3.Connection, body: Callable[[Session], Awaitable[T]]) -> T:
    """Run ``body`` to its end without an event loop: every call it awaits returns at once."""
    steps = cast(Coroutine[Any, Any, T], body(_Direct(conn)))
    try:
        steps.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    steps.close()
    raise RuntimeError("a store body waited for something other than the database")


def _group_commit(
    conn: sqlite3.Connection, bodies: Sequence[Callable[[Session], Awaitable[Any]]]
) -> list[tuple[bool, Any]]:
    """In aiosqlite's thread: the transactions that queued while the previous one ran, as one
    BEGIN IMMEDIATE ... COMMIT, each body in a savepoint of its own. A body that raises is rolled
    back to its savepoint alone; the others commit. (ok, result or exception) per body, in order:
    run one after another, each sees the ones before it, as it would have done committed."""
    conn.execute("BEGIN IMMEDIATE")
    outcomes: list[tuple[bool, Any]] = []
    try:
        for body in bodies:
            conn.execute("SAVEPOINT body")
            try:
                outcome: tuple[bool, Any] = (True, _drive(conn, body))
            except Exception as exc:
                conn.execute("ROLLBACK TO body")
                outcome = (False, exc)
            conn.execute("RELEASE body")
            outcomes.append(outcome)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


@dataclass(eq=False)
class _Queued:
    body: Callable[[Session], Awaitable[Any]]
    outcome: asyncio.Future[Any]


def _atomic(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """In aiosqlite's thread: BEGIN IMMEDIATE, ``work``, COMMIT; ROLLBACK when it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for version, name, sql in migrations("sqlite"):
        if version in applied:
            continue
        # executescript would COMMIT the transaction; run statement by statement.
        for statement in _statements(sql):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (version, name, dt.datetime.now(dt.UTC).isoformat()),
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


class _LoopReads:
    """``Driver.lookups`` for SQLite: the query-only connection, used on the event loop's thread
    only (sqlite3 checks that), each call answered before it returns."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self._conn.execute(sql, _encode(args)).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return cast(Row | None, self._conn.execute(sql, _encode(args)).fetchone())

    async def read(self, body: Callable[[Session], Awaitable[T]]) -> T:
        # One read transaction: the body's queries see one snapshot while the writer commits.
        self._conn.execute("BEGIN")
        try:
            return _drive(self._conn, body)
        finally:
            self._conn.execute("COMMIT")


class SQLiteDriver:
    def __init__(self, db: aiosqlite.Connection, reader: sqlite3.Connection) -> None:
        self._db = db
        self._reader = reader
        self._lock = asyncio.Lock()
        self._queue: list[_Queued] = []
        self.lookups = _LoopReads(reader)

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteDriver:
        """The writing connection (aiosqlite) and the query-only one on this thread."""
        db = await aiosqlite.connect(str(path), isolation_level=None)
        reader: sqlite3.Connection | None = None
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=10000")
            reader = sqlite3.connect(str(path), isolation_level=None)
            reader.execute("PRAGMA query_only=ON")
            reader.execute("PRAGMA busy_timeout=10000")
        except BaseException:
            if reader is not None:
                reader.close()
            await db.close()
            raise
        return cls(db, reader)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` in aiosqlite's thread, on the thread's own connection."""
        return cast(T, await self._db._execute(fn, self._db._conn, *args))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._db.execute_fetchall(sql, _encode(args)))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        # One trip to the thread (a cursor's execute, fetch and close take a trip each).
        return next(iter(await self.fetch(sql, *args)), None)

    async def transaction(self, body: Callable[[Session], Awaitable[T]]) -> T:
        """Group commit: the transactions asked for while one is running are queued, and the
        next to get the lock runs every one queued by then in one ``_group_commit``: one trip to
        the thread and one fsync for all. Each caller's answer comes once that COMMIT returned,
        so what it was told is committed is on disk, as without grouping. A caller cancelled
        before its body was taken leaves the queue and its body never runs."""
        mine = _Queued(body, asyncio.get_running_loop().create_future())
        self._queue.append(mine)
        try:
            async with self._lock:
                if not mine.outcome.done():
                    await self._commit_queued()
            return cast(T, await mine.outcome)
        except asyncio.CancelledError:
            if mine in self._queue:
                self._queue.remove(mine)
            # Taken already, it commits or not with its batch; nobody is left to be told which.
            mine.outcome.cancel()
            raise

    async def _commit_queued(self) -> None:
        batch, self._queue = self._queue, []
        # Shielded: the callers' answers come from the batch, whoever waits for it.
        work = asyncio.ensure_future(self._in_thread(_group_commit, [q.body for q in batch]))

        def settle(done: asyncio.Future[list[tuple[bool, Any]]]) -> None:
            failure = None if done.cancelled() else done.exception()
            for n, queued in enumerate(batch):
                if queued.outcome.done():  # its caller stopped waiting
                    continue
                if done.cancelled():  # the loop is closing
                    queued.outcome.cancel()
                elif failure is not None:
                    queued.outcome.set_exception(failure)
                elif (result := done.result()[n])[0]:
                    queued.outcome.set_result(result[1])
                else:
                    queued.outcome.set_exception(result[1])

        work.add_done_callback(settle)
        with contextlib.suppress(Exception):  # each caller gets its own outcome from ``settle``
            await asyncio.shield(work)

    async def read(self, body: Callable[[Session], Awaitable[T]]) -> T:
        return await self._in_thread(_drive, body)

    async def migrate(self) -> None:
        async with self._lock:
            await self._in_thread(_atomic, _migrate)

    async def close(self) -> None:
        self._reader.close()
        await self._db.close()


class MemoryNonces:
    """ACME nonces in this process's memory. A SQLite store serves one server process (``serve``
    holds its serve-lock and refuses --workers N on it: server/workers.py), so redeeming a nonce
    need not be a write transaction with an fsync on every request, queued behind the other
    writes (RFC 8555 §6.5 asks that each nonce be server-issued and used once, nothing more). A
    restart forgets them: a client's next request gets badNonce with a fresh nonce and is
    retried (§6.5), and no nonce outlives a crash to be replayed."""

    def __init__(self) -> None:
        self._nonces: dict[str, dt.datetime] = {}  # value -> expiry, oldest first

    async def add(self, values: Sequence[str], expires_at: dt.datetime) -> None:
        for value in values:
            self._nonces[value] = expires_at
        # Bounded: past the cap the oldest go first (their clients get badNonce and retry).
        while len(self._nonces) > MAX_NONCES:
            del self._nonces[next(iter(self._nonces))]

    async def use(self, value: str, now: dt.datetime) -> bool:
        # No await between the lookup and the delete: two requests cannot both redeem it.
        expires_at = self._nonces.get(value)
        if expires_at is None or expires_at <= now:
            return False
        del self._nonces[value]
        return True

    async def prune(self, now: dt.datetime) -> int:
        expired = [value for value, expires_at in self._nonces.items() if expires_at <= now]
        for value in expired:
            del self._nonces[value]
        return len(expired)


class SQLiteStore(SQLStore):
    acme_process_local = True  # one server process per file (serve-lock; see MemoryNonces)

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteStore:
        driver = await SQLiteDriver.open(path)
        try:
            await driver.migrate()
        except BaseException:
            await driver.close()
            raise
        return cls(driver, MemoryNonces())

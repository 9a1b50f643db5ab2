"""The driver layer under the one store (server/storage/driver.py): each driver numbers the
placeholders, encodes and decodes times, maps the schema's refusals to ``Violation`` and runs a
transaction whole or not at all, on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3

import asyncpg
import pytest

from jitsuin.server.storage import Conflict
from jitsuin.server.storage.driver import Violation, moment
from jitsuin.server.storage.postgres import PostgresDriver, _numbered, connect_arguments
from jitsuin.server.storage.sqlite import SQLiteDriver

TOKYO = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture(params=["sqlite", "postgresql"])
async def driver(request, tmp_path):
    if request.param == "sqlite":
        opened = await SQLiteDriver.open(tmp_path / "driver.db")
    else:
        schema = request.getfixturevalue("postgres_schema")
        dsn, name = connect_arguments(schema.url)
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=2, server_settings={"search_path": name}
        )
        opened = PostgresDriver(pool, name)
    await opened.migrate()
    yield opened
    await opened.close()


def test_placeholders_are_numbered_for_postgresql():
    assert _numbered("SELECT ? WHERE a = ? AND b IN (?, ?)") == (
        "SELECT $1 WHERE a = $2 AND b IN ($3, $4)"
    )
    assert _numbered("SELECT 1") == "SELECT 1"


async def test_a_broken_unique_key_is_a_violation_naming_its_columns(driver):
    insert = "INSERT INTO counters (name, value) VALUES (?, ?)"
    await driver.transaction(lambda db: db.execute(insert, "crl", 1))

    with pytest.raises(Violation) as refused:
        await driver.transaction(lambda db: db.execute(insert, "crl", 2))

    assert isinstance(refused.value, Conflict)
    assert refused.value.columns == {"name"}
    assert await driver.fetch("SELECT name, value FROM counters") == [("crl", 1)]


async def test_times_go_in_as_the_instant_and_come_back_in_utc(driver):
    at = dt.datetime(2026, 11, 3, 18, 30, 15, 250, tzinfo=TOKYO)
    await driver.transaction(
        lambda db: db.execute(
            "INSERT INTO acme_eab_keys (kid, key_sealed, allowed, lifetime_days, created_by,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            "kid-1",
            b"sealed",
            "[]",
            90,
            "op",
            at,
        )
    )
    row = await driver.fetchrow("SELECT created_at FROM acme_eab_keys WHERE kid = ?", "kid-1")

    assert row is not None
    back = moment(row[0])
    assert back == at
    assert back is not None and back.utcoffset() == dt.timedelta(0)
    assert moment(None) is None


async def test_a_transaction_that_raises_writes_nothing(driver):
    async def body(db):
        await db.execute("INSERT INTO counters (name, value) VALUES (?, ?)", "a", 1)
        await db.execute("INSERT INTO counters (name, value) VALUES (?, ?)", "b", 1)
        raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await driver.transaction(body)

    assert await driver.fetch("SELECT name FROM counters") == []


async def test_reads_run_their_queries_on_one_connection(driver):
    async def body(db):
        first = await db.fetchrow("SELECT count(*) FROM counters")
        rest = await db.fetch("SELECT name FROM counters WHERE value > ?", 0)
        return first[0], rest

    assert await driver.read(body) == (0, [])


async def test_only_postgresql_locks_the_rows_a_transaction_reads_to_change(driver):
    async def suffix(db):
        return db.for_update

    expected = " FOR UPDATE" if isinstance(driver, PostgresDriver) else ""
    assert await driver.transaction(suffix) == expected


async def test_a_sqlite_transaction_may_wait_for_nothing_but_the_database(tmp_path):
    """It runs whole in the connection's thread: a body that waits for anything else would hold
    the write lock across the event loop's turns, so it is refused and rolled back."""
    driver = await SQLiteDriver.open(tmp_path / "driver.db")
    await driver.migrate()

    async def body(session):
        await session.execute("INSERT INTO counters (name, value) VALUES (?, ?)", "a", 1)
        await asyncio.sleep(0)

    try:
        with pytest.raises(RuntimeError, match="other than the database"):
            await driver.transaction(body)
        assert await driver.fetch("SELECT name FROM counters") == []
    finally:
        await driver.close()


async def test_lookups_see_what_was_committed_before_them(driver):
    """``Driver.lookups`` (SQLite: a second connection on the loop's thread) reads what the
    writing connection committed, at once."""
    insert = "INSERT INTO counters (name, value) VALUES (?, ?)"
    for n in range(20):
        await driver.transaction(lambda db, n=n: db.execute(insert, f"c{n}", n))
        assert await driver.lookups.fetchrow("SELECT value FROM counters WHERE name = ?", f"c{n}")
        assert (await driver.lookups.fetch("SELECT count(*) FROM counters"))[0][0] == n + 1


async def test_a_sqlite_lookup_reads_one_snapshot_while_another_connection_commits(tmp_path):
    """A ``lookups.read`` body's queries are one read transaction: a commit landing between
    them (here from another connection, as aiosqlite's thread or another process would) is
    not half seen."""
    path = tmp_path / "driver.db"
    driver = await SQLiteDriver.open(path)
    await driver.migrate()
    other = sqlite3.connect(str(path), isolation_level=None)
    try:

        async def body(db):
            before = await db.fetch("SELECT name FROM counters")
            other.execute("INSERT INTO counters (name, value) VALUES ('late', 1)")
            after = await db.fetch("SELECT name FROM counters")
            return before, after

        assert await driver.lookups.read(body) == ([], [])
        assert await driver.lookups.fetch("SELECT name FROM counters") == [("late",)]
    finally:
        other.close()
        await driver.close()


async def test_a_sqlite_lookup_cannot_write(tmp_path):
    driver = await SQLiteDriver.open(tmp_path / "driver.db")
    await driver.migrate()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await driver.lookups.read(
                lambda db: db.execute("INSERT INTO counters (name, value) VALUES ('x', 1)")
            )
        assert await driver.fetch("SELECT name FROM counters") == []
        # The connection is usable afterwards: the failed body's read transaction ended.
        assert await driver.lookups.fetch("SELECT count(*) FROM counters") == [(0,)]
    finally:
        await driver.close()


async def test_the_rate_limit_count_reads_only_the_window_through_its_index(tmp_path):
    """``acme_count_orders`` runs on the loop (``Driver.lookups``) on every newOrder: it must read
    only the orders of the window (migration 0013), never every order of the account."""
    driver = await SQLiteDriver.open(tmp_path / "driver.db")
    await driver.migrate()
    try:
        plan = await driver.lookups.fetch(
            "EXPLAIN QUERY PLAN SELECT count(*), min(created_at) FROM acme_orders"
            " WHERE account_id = ? AND created_at > ?",
            "a",
            "2026-01-01T00:00:00+00:00",
        )
        details = " ".join(str(row[-1]) for row in plan)
        assert "acme_orders_account_created (account_id=? AND created_at>?)" in details, details
    finally:
        await driver.close()


def _pair_writer(path: str, start: int, count: int) -> None:
    """Another process's writes (``jitsuin`` CLI commands share the file with the server): two
    rows per transaction, which a reader must see both or neither of."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        for n in range(start, start + count):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO counters (name, value) VALUES (?, ?)", (f"a{n}", n))
            db.execute("INSERT INTO counters (name, value) VALUES (?, ?)", (f"b{n}", n))
            db.execute("COMMIT")
    finally:
        db.close()


async def test_sqlite_lookups_never_see_half_a_transaction_under_concurrent_writers(tmp_path):
    """The hard way: while the writing connection (aiosqlite's thread) and another process
    commit pairs of rows as fast as they can, reads on the loop's connection take two separate
    queries in one ``lookups.read``; each must find as many a-rows as b-rows (one snapshot)."""
    path = tmp_path / "driver.db"
    driver = await SQLiteDriver.open(path)
    await driver.migrate()
    pairs = 400

    async def in_this_process() -> None:
        for n in range(pairs):

            async def body(db, n=n):
                await db.execute("INSERT INTO counters (name, value) VALUES (?, ?)", f"a{n}", n)
                await db.execute("INSERT INTO counters (name, value) VALUES (?, ?)", f"b{n}", n)

            await driver.transaction(body)

    async def halves(db):
        a = await db.fetch("SELECT count(*) FROM counters WHERE name LIKE 'a%'")
        b = await db.fetch("SELECT count(*) FROM counters WHERE name LIKE 'b%'")
        return a[0][0], b[0][0]

    loop = asyncio.get_running_loop()
    try:
        other = loop.run_in_executor(
            None, _run_process, _pair_writer, str(path), pairs, pairs
        )  # another process, through a thread that waits for it
        writer = asyncio.ensure_future(in_this_process())
        reads = 0
        deadline = loop.time() + 60
        while not (writer.done() and other.done()) and loop.time() < deadline:
            a, b = await driver.lookups.read(halves)
            assert a == b, f"a read saw {a} a-rows and {b} b-rows"
            reads += 1
            await asyncio.sleep(0)  # let the writer's commits land between reads
        await writer
        await other
        assert reads > 10
        assert await driver.lookups.read(halves) == (2 * pairs, 2 * pairs)
    finally:
        await driver.close()


def _run_process(target, *args) -> None:
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    process.join(120)
    assert process.exitcode == 0, f"the writer process exited with {process.exitcode}"


async def test_sqlite_group_commit_keeps_each_transaction_whole_and_apart(tmp_path):
    """The hard way: 120 transactions at once, grouped into a few COMMITs. Each one that raises
    (its own error, or the schema refusing a duplicate after a first insert) leaves nothing and
    gets its own error; every other one is committed and gets its own result."""
    driver = await SQLiteDriver.open(tmp_path / "driver.db")
    await driver.migrate()
    commits = []
    await driver._db.set_trace_callback(
        lambda sql: commits.append(sql) if sql.startswith("COMMIT") else None
    )
    insert = "INSERT INTO counters (name, value) VALUES (?, ?)"

    class Refused(Exception):
        pass

    def body_for(n: int):
        async def body(db):
            await db.execute(insert, f"c{n}", n)
            if n % 3 == 0:
                raise Refused(n)
            if n % 5 == 0:
                await db.execute(insert, "c1", n)  # c1 is taken: a Violation
            return n

        return body

    try:
        outcomes = await asyncio.gather(
            *(driver.transaction(body_for(n)) for n in range(1, 121)), return_exceptions=True
        )
        for n, outcome in enumerate(outcomes, 1):
            if n % 3 == 0:
                assert isinstance(outcome, Refused) and outcome.args == (n,)
            elif n % 5 == 0:
                assert isinstance(outcome, Violation), outcome
            else:
                assert outcome == n
        kept = {r[0] for r in await driver.fetch("SELECT value FROM counters")}
        assert kept == {n for n in range(1, 121) if n % 3 and n % 5}
        assert len(commits) < 60, f"{len(commits)} COMMITs for 120 transactions at once"
    finally:
        await driver.close()


async def test_a_sqlite_transaction_cancelled_while_queued_never_runs(tmp_path):
    driver = await SQLiteDriver.open(tmp_path / "driver.db")
    await driver.migrate()
    insert = "INSERT INTO counters (name, value) VALUES (?, ?)"
    try:
        async with driver._lock:  # a transaction in flight: the next ones queue
            queued = asyncio.ensure_future(
                driver.transaction(lambda db: db.execute(insert, "cancelled", 1))
            )
            await asyncio.sleep(0)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
        await driver.transaction(lambda db: db.execute(insert, "after", 2))
        assert await driver.fetch("SELECT name FROM counters") == [("after",)]
    finally:
        await driver.close()


async def test_a_sqlite_caller_cancelled_while_its_batch_commits_leaves_the_others_answered(
    tmp_path,
):
    """The caller that took a batch to the thread is cancelled before the COMMIT returns: the
    batch still commits whole (as a transaction cancelled mid-flight always did), and the other
    callers in it get their answers."""
    driver = await SQLiteDriver.open(tmp_path / "driver.db")
    await driver.migrate()
    insert = "INSERT INTO counters (name, value) VALUES (?, ?)"
    try:
        async with driver._lock:  # a transaction in flight: the next three queue as one batch
            callers = [
                asyncio.ensure_future(driver.transaction(lambda db, n=n: db.execute(insert, n, 1)))
                for n in ("a", "b", "c")
            ]
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first caller has the lock and took the batch to the thread
        callers[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await callers[0]
        assert await asyncio.gather(*callers[1:]) == [1, 1]
        names = [r[0] for r in await driver.fetch("SELECT name FROM counters ORDER BY name")]
        assert names == ["a", "b", "c"]
    finally:
        await driver.close()

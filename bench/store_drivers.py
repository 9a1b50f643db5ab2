"""Cost per statement on the store's hot path: jitsuin's driver layer vs SQLAlchemy Core (async).

    .venv/bin/python -m pip install 'sqlalchemy[asyncio]'   # for this script only
    nice .venv/bin/python bench/store_drivers.py [--reads 3000] [--appends 1000] [--rounds 3]

Two operations, each timed on SQLite (a temporary file) and on PostgreSQL (127.0.0.1:5432,
database test, a schema of its own dropped afterwards; JITSUIN_TEST_POSTGRES elsewhere):

- read: an ACME account by its id (every JWS request with a ``kid`` does it);
- append: one audit entry in its own transaction (lock on PostgreSQL, read the chain head,
  insert), as every writing method ends.

Three ways each: the driver alone (aiosqlite / asyncpg, the floor), the store (server/storage/
store.py over driver.py), and SQLAlchemy Core on the same schema (``Table`` objects, the
``sqlite+aiosqlite`` and ``postgresql+asyncpg`` dialects, its compiled-statement cache on), a
connection taken from its pool per operation as an application would, and for reads also on
one connection held throughout ("held": the statement's own cost).
Prints microseconds per operation, best of ``--rounds`` (the three taking turns); never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from jitsuin.server.storage import (
    GENESIS_HASH,
    AcmeAccountRecord,
    AuditEvent,
    canonical_details,
    chain_hash,
)
from jitsuin.server.storage.postgres import PostgresStore
from jitsuin.server.storage.sqlite import SQLiteStore

POSTGRES = os.environ.get("JITSUIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
T0 = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)

META = sa.MetaData()
ACCOUNTS = sa.Table(
    "acme_accounts",
    META,
    *map(
        sa.Column,
        ("id", "thumbprint", "jwk", "contact", "status", "kind", "eab_kid", "eab_alg"),
    ),
    *map(sa.Column, ("application_id", "terms_agreed", "created_at", "updated_at")),
)
AUDIT = sa.Table(
    "audit_log",
    META,
    *map(sa.Column, ("seq", "at", "actor", "action", "target", "details", "prev_hash", "hash")),
)
ACCOUNT_BY_ID = sa.select(ACCOUNTS).where(ACCOUNTS.c.id == sa.bindparam("id"))
AUDIT_HEAD = sa.select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1)
AUDIT_INSERT = sa.insert(AUDIT)


def account() -> AcmeAccountRecord:
    return AcmeAccountRecord(
        id="acct-1",
        thumbprint="thumb",
        jwk={"kty": "EC", "crv": "P-256", "x": "x", "y": "y"},
        contact=(),
        status="valid",
        kind="tls-server",
        eab_kid="kid-1",
        eab_alg="HS256",
        application_id=None,
        terms_agreed=True,
        created_at=T0,
        updated_at=T0,
    )


def event(n: int) -> AuditEvent:
    return AuditEvent(T0, "bench", "bench.append", f"n/{n}", {"n": n})


async def compare(
    count: int, rounds: int, *ops: Callable[[int], Awaitable[object]]
) -> tuple[float, ...]:
    """Microseconds per call of each ``op(i)``: the best of ``rounds`` runs of ``count`` calls,
    the ops taking turns round by round so that a busy moment of the machine hits them all."""
    best = [float("inf")] * len(ops)
    for r in range(rounds):
        for k, op in enumerate(ops):
            start = time.perf_counter()
            for i in range(count):
                await op((r * len(ops) + k) * count + i)
            best[k] = min(best[k], (time.perf_counter() - start) / count)
    return tuple(b * 1e6 for b in best)


def head_row(seq_hash: object) -> tuple[int, str]:
    return (seq_hash[0] + 1, seq_hash[1]) if seq_hash else (1, GENESIS_HASH)  # type: ignore[index]


def audit_values(seq: int, prev: str, e: AuditEvent, at: object) -> dict[str, object]:
    return {
        "seq": seq,
        "at": at,
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "details": canonical_details(e.details),
        "prev_hash": prev,
        "hash": chain_hash(prev, seq, e),
    }


async def sqlite_figures(args: argparse.Namespace) -> dict[str, tuple[float, ...]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = await SQLiteStore.open(path)
        await store.acme_create_account(account(), event(0), operator_key=False)
        raw = await aiosqlite.connect(str(path), isolation_level=None)
        await raw.execute("PRAGMA busy_timeout=10000")
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")

        async def raw_append(n: int) -> None:
            e = event(n)
            await raw.execute("BEGIN IMMEDIATE")
            rows = await raw.execute_fetchall(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            )
            seq, prev = head_row(next(iter(rows), None))
            v = audit_values(seq, prev, e, e.at.isoformat())
            await raw.execute(
                "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(v.values()),
            )
            await raw.execute("COMMIT")

        async def sa_read(_: int) -> object:
            async with engine.connect() as conn:
                return (await conn.execute(ACCOUNT_BY_ID, {"id": "acct-1"})).first()

        held = await engine.connect()

        async def sa_held_read(_: int) -> object:
            return (await held.execute(ACCOUNT_BY_ID, {"id": "acct-1"})).first()

        async def sa_append(n: int) -> None:
            e = event(n)
            async with engine.begin() as conn:
                seq, prev = head_row((await conn.execute(AUDIT_HEAD)).first())
                await conn.execute(AUDIT_INSERT, audit_values(seq, prev, e, e.at.isoformat()))

        async def raw_read(_: int) -> object:
            return await raw.execute_fetchall(
                "SELECT * FROM acme_accounts WHERE id = ?", ("acct-1",)
            )

        figures = {
            "read": await compare(
                args.reads,
                args.rounds,
                raw_read,
                lambda _: store.acme_account("acct-1"),
                sa_read,
                sa_held_read,
            ),
            "append": await compare(
                args.appends,
                args.rounds,
                raw_append,
                lambda n: store.append_audit(event(n)),
                sa_append,
            ),
            # (no held-connection form: a transaction is taken from the pool either way)
        }
        await held.close()
        await engine.dispose()
        await raw.close()
        await store.close()
        return figures


async def postgres_figures(args: argparse.Namespace) -> dict[str, tuple[float, ...]]:
    schema = f"jitsuin_bench_{secrets.token_hex(4)}"
    store = await PostgresStore.open(f"{POSTGRES}?schema={schema}", max_connections=2)
    settings = {"search_path": schema}
    raw = await asyncpg.create_pool(POSTGRES, min_size=1, max_size=2, server_settings=settings)
    url = POSTGRES.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, pool_size=2, connect_args={"server_settings": settings})
    try:
        await store.acme_create_account(account(), event(0), operator_key=False)

        async def raw_append(n: int) -> None:
            e = event(n)
            async with raw.acquire() as conn, conn.transaction():
                await conn.execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
                seq, prev = head_row(
                    await conn.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                )
                await conn.execute(
                    "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash,"
                    " hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    *audit_values(seq, prev, e, e.at).values(),
                )

        async def sa_read(_: int) -> object:
            async with engine.connect() as conn:
                return (await conn.execute(ACCOUNT_BY_ID, {"id": "acct-1"})).first()

        held = await engine.connect()

        async def sa_held_read(_: int) -> object:
            return (await held.execute(ACCOUNT_BY_ID, {"id": "acct-1"})).first()

        async def sa_append(n: int) -> None:
            e = event(n)
            async with engine.begin() as conn:
                await conn.execute(sa.text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
                seq, prev = head_row((await conn.execute(AUDIT_HEAD)).first())
                await conn.execute(AUDIT_INSERT, audit_values(seq, prev, e, e.at))

        async def raw_read(_: int) -> object:
            return await raw.fetchrow("SELECT * FROM acme_accounts WHERE id = $1", "acct-1")

        return {
            "read": await compare(
                args.reads,
                args.rounds,
                raw_read,
                lambda _: store.acme_account("acct-1"),
                sa_read,
                sa_held_read,
            ),
            "append": await compare(
                args.appends,
                args.rounds,
                raw_append,
                lambda n: store.append_audit(event(n)),
                sa_append,
            ),
            # (no held-connection form: a transaction is taken from the pool either way)
        }
    finally:
        await held.close()
        await engine.dispose()
        await raw.close()
        await store.close()
        conn = await asyncpg.connect(POSTGRES)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"SQLAlchemy {sa.__version__}; microseconds per operation, best of {args.rounds}")
    print(
        f"{'database':<11}{'operation':<10}{'driver':>9}{'store':>9}{'SQLAlchemy':>12}{'(held)':>9}"
    )
    for name, figures in (
        ("sqlite", await sqlite_figures(args)),
        ("postgresql", await postgres_figures(args)),
    ):
        for op, (raw, ours, theirs, *held) in figures.items():
            also = f"{held[0]:>9.1f}" if held else f"{'-':>9}"
            print(f"{name:<11}{op:<10}{raw:>9.1f}{ours:>9.1f}{theirs:>12.1f}{also}")


if __name__ == "__main__":
    asyncio.run(main())

"""The migration that records who else may know each operator credential fills the new columns
of existing operators from the audit log (the newest entry that set the token or bound the
certificate), in both dialects: a credential an admin set before the upgrade still counts for
the two-person rule after it."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg

from jitsuin.server.storage.migrations import migrations

OPERATORS = [("alice", None), ("bob", "ff" * 32), ("carol", None)]
AUDIT = [
    ("cli:root", "operator.add", "operator/alice"),
    ("cli:root", "operator.add", "operator/bob"),
    ("cli:root", "operator.add", "operator/carol"),
    ("carol", "operator.rotate_token", "operator/bob"),
    ("alice", "operator.rotate_token", "operator/alice"),  # an admin's own
    ("carol", "operator.bind_certificate", "operator/bob"),
]
EXPECTED = [
    ("alice", "[]", None),
    ("bob", '["carol"]', '["carol"]'),
    ("carol", '["cli:root"]', None),
]


def _split(dialect: str) -> tuple[list[str], str]:
    """The SQL of the migrations before this one, and this one's."""
    found = migrations(dialect)
    (index,) = [n for n, (_, name, _) in enumerate(found) if "_credential_setters." in name]
    return [sql for _, _, sql in found[:index]], found[index][2]


def test_sqlite_fills_the_setters_from_the_audit_log(tmp_path):
    before, this = _split("sqlite")
    with sqlite3.connect(tmp_path / "old.db") as db:
        for sql in before:
            db.executescript(sql)
        for name, cert in OPERATORS:
            db.execute(
                "INSERT INTO operators (name, role, token_hash, created_at, cert_sha256)"
                " VALUES (?, 'admin', ?, '2026-01-01T00:00:00+00:00', ?)",
                (name, f"hash-{name}", cert),
            )
        for seq, (actor, action, target) in enumerate(AUDIT, 1):
            db.execute(
                "INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)"
                " VALUES (?, '2026-01-01T00:00:00+00:00', ?, ?, ?, '{}', 'p', ?)",
                (seq, actor, action, target, f"h{seq}"),
            )
        db.executescript(this)
        rows = db.execute(
            "SELECT name, token_set_by, cert_bound_by FROM operators ORDER BY name"
        ).fetchall()
    assert rows == EXPECTED


def test_postgresql_fills_the_setters_from_the_audit_log(postgres_schema):
    before, this = _split("postgresql")

    async def run() -> list[tuple[str, str | None, str | None]]:
        db = await asyncpg.connect(postgres_schema.base_url)
        try:
            await db.execute(f'CREATE SCHEMA "{postgres_schema.name}"')
            await db.execute(f'SET search_path = "{postgres_schema.name}"')
            for sql in before:
                await db.execute(sql)
            for name, cert in OPERATORS:
                await db.execute(
                    "INSERT INTO operators (name, role, token_hash, created_at, cert_sha256)"
                    " VALUES ($1, 'admin', $2, now(), $3)",
                    name,
                    f"hash-{name}",
                    cert,
                )
            for seq, (actor, action, target) in enumerate(AUDIT, 1):
                await db.execute(
                    "INSERT INTO audit_log"
                    " (seq, at, actor, action, target, details, prev_hash, hash)"
                    " VALUES ($1, now(), $2, $3, $4, '{}', 'p', $5)",
                    seq,
                    actor,
                    action,
                    target,
                    f"h{seq}",
                )
            await db.execute(this)
            rows = await db.fetch(
                "SELECT name, token_set_by, cert_bound_by FROM operators ORDER BY name"
            )
            return [tuple(r) for r in rows]
        finally:
            await db.close()

    assert asyncio.run(run()) == EXPECTED

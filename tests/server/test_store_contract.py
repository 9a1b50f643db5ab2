"""The store contract (house habit 10: the consumer owns the interface).

Every test runs against each entry of ``BACKENDS``. Today that is the embedded SQLite store; a
PostgreSQL backend joins by adding a class with the same four members (``open``,
``migration_files``, ``execute_raw``, ``refused``) to the list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import sqlite3
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from jitsuin.server.storage import (
    GENESIS_HASH,
    AuditChainBroken,
    AuditEvent,
    CertificateRecord,
    Conflict,
    GenerationRecord,
    NotFound,
    StoreError,
)
from jitsuin.server.storage.sqlite import SQLiteStore

T0 = dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=dt.UTC)
# A 159-bit serial, as x509.random_serial_number() draws them, with a high bit pattern that a
# 64-bit integer column would corrupt.
BIG_SERIAL = (1 << 158) | 0x00DEADBEEF_0000_0000_0000_0000_0000_0000_0001


class SQLiteBackend:
    """The embedded store on a real file; ``execute_raw`` is another process's view of it."""

    name = "sqlite"
    refused = (sqlite3.DatabaseError,)  # what the raw driver raises when a trigger refuses

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "store.db"

    async def open(self) -> SQLiteStore:
        return await SQLiteStore.open(self.path)

    def migration_files(self) -> int:
        folder = resources.files("jitsuin.server.storage.migrations")
        return sum(1 for item in folder.iterdir() if item.name.endswith(".sqlite.sql"))

    def execute_raw(self, *statements: str) -> list[tuple]:
        """Run statements on a separate driver connection (autocommit); return the last rows."""
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            rows: list[tuple] = []
            for statement in statements:
                rows = connection.execute(statement).fetchall()
            return rows
        finally:
            connection.close()


BACKENDS = [pytest.param(SQLiteBackend, id="sqlite")]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    return request.param(tmp_path)


@pytest.fixture
async def store(backend):
    opened = await backend.open()
    yield opened
    await opened.close()


# -- records ---------------------------------------------------------------------------------------
def generation_record(number: int = 1, key_ref: str = "file:keys/ca-1.key.pem") -> GenerationRecord:
    return GenerationRecord(
        number=number,
        certificate_der=bytes([0x30, 0x82]) + hashlib.sha256(str(number).encode()).digest(),
        key_ref=key_ref,
        created_at=T0,
    )


def certificate_record(
    serial: int = BIG_SERIAL,
    *,
    generation: int = 1,
    subscriber_id: str | None = "app-0001",
    spki: str | None = None,
) -> CertificateRecord:
    return CertificateRecord(
        generation=generation,
        serial=serial,
        der=b"\x30\x82" + serial.to_bytes(20, "big"),
        subscriber_id=subscriber_id,
        subject="CN=Hanako Yamada",
        email="hanako.yamada@example.com",
        profile="general",
        not_before=T0,
        not_after=T0 + dt.timedelta(days=396) - dt.timedelta(seconds=1),
        issued_at=T0,
        spki_sha256=spki or hashlib.sha256(f"key-{serial}".encode()).hexdigest(),
    )


def event(action: str = "test.event", n: int = 0, **details) -> AuditEvent:
    return AuditEvent(
        at=T0 + dt.timedelta(seconds=n),
        actor="tester",
        action=action,
        target=f"thing/{n}",
        details={"n": n, **details},
    )


async def with_generation(store) -> None:
    await store.add_generation(generation_record(1), event("ca.generation.create"))


# -- migrations ------------------------------------------------------------------------------------
async def test_migrations_applied_once_and_reopening_is_idempotent(backend, store):
    files = backend.migration_files()
    assert files >= 1
    assert await store.schema_version() == files
    await with_generation(store)

    for _ in range(2):
        again = await backend.open()
        try:
            assert await again.schema_version() == files
            assert [g.number for g in await again.generations()] == [1]
        finally:
            await again.close()
    assert backend.execute_raw("SELECT count(*) FROM schema_migrations") == [(files,)]


# -- CA generations --------------------------------------------------------------------------------
async def test_generations_round_trip_oldest_first(store):
    second, first = generation_record(2, "file:keys/ca-2.key.pem"), generation_record(1)
    await store.add_generation(second, event("ca.generation.create", 2))
    await store.add_generation(first, event("ca.generation.create", 1))

    assert await store.generations() == [first, second]
    # Each generation was recorded with its audit entry.
    assert [e.event.target for e in await store.audit_log()] == ["thing/2", "thing/1"]


async def test_duplicate_generation_is_a_conflict_and_writes_nothing(store):
    await with_generation(store)
    with pytest.raises(Conflict):
        await store.add_generation(generation_record(1, "file:other.pem"), event("dup"))

    assert [g.key_ref for g in await store.generations()] == ["file:keys/ca-1.key.pem"]
    assert [e.event.action for e in await store.audit_log()] == ["ca.generation.create"]


# -- certificates ----------------------------------------------------------------------------------
async def test_certificate_round_trip_keeps_a_159_bit_serial(store):
    await with_generation(store)
    assert BIG_SERIAL.bit_length() == 159
    record = certificate_record(BIG_SERIAL)
    small = certificate_record(0x01, subscriber_id=None)  # a TLS certificate has no subscriber
    await store.record_certificate(record, event("certificate.issue", 1))
    await store.record_certificate(small, event("certificate.issue", 2))

    assert await store.certificate(1, BIG_SERIAL) == record
    assert await store.certificate(1, 0x01) == small
    assert await store.certificates() == [record, small]
    assert await store.certificates(limit=1, offset=1) == [small]
    assert await store.count_certificates() == 2
    assert [e.event.action for e in await store.audit_log()][1:] == ["certificate.issue"] * 2


async def test_unknown_certificate_is_not_found(store):
    await with_generation(store)
    await store.record_certificate(certificate_record(BIG_SERIAL), event())
    with pytest.raises(NotFound):
        await store.certificate(1, BIG_SERIAL + 1)
    with pytest.raises(NotFound):
        await store.certificate(2, BIG_SERIAL)


async def test_duplicate_serial_in_a_generation_is_a_conflict_and_writes_nothing(store):
    await store.add_generation(generation_record(1), event())
    await store.add_generation(generation_record(2), event())
    await store.record_certificate(certificate_record(BIG_SERIAL), event("first"))
    before = (await store.count_certificates(), len(await store.audit_log()))

    duplicate = certificate_record(BIG_SERIAL, subscriber_id="app-0002", spki="ab" * 32)
    with pytest.raises(Conflict):
        await store.record_certificate(duplicate, event("second"))

    assert (await store.count_certificates(), len(await store.audit_log())) == before
    assert (await store.certificate(1, BIG_SERIAL)).subscriber_id == "app-0001"
    assert await store.verify_audit_chain() == before[1]
    # RFC 5280 4.1.2.2: unique per CA, so another generation may use the same serial.
    await store.record_certificate(
        certificate_record(BIG_SERIAL, generation=2, spki="cd" * 32), event()
    )
    assert await store.count_certificates() == 2


async def test_same_subscriber_and_key_is_a_conflict_seed_r2(store):
    await with_generation(store)
    await store.record_certificate(certificate_record(10, spki="aa" * 32), event("first"))
    before = len(await store.audit_log())

    with pytest.raises(Conflict):
        await store.record_certificate(certificate_record(11, spki="aa" * 32), event("renewal"))

    assert await store.count_certificates() == 1
    assert len(await store.audit_log()) == before
    with pytest.raises(NotFound):
        await store.certificate(1, 11)


async def test_certificate_for_an_unknown_generation_is_refused(store):
    await with_generation(store)
    with pytest.raises(StoreError):
        await store.record_certificate(certificate_record(5, generation=7), event())
    assert await store.count_certificates() == 0
    assert len(await store.audit_log()) == 1


async def test_used_keys_are_per_subscriber(store):
    await with_generation(store)
    await store.record_certificate(certificate_record(1, spki="01" * 32), event())
    await store.record_certificate(certificate_record(2, spki="02" * 32), event())
    await store.record_certificate(
        certificate_record(3, subscriber_id="app-0002", spki="03" * 32), event()
    )

    assert await store.used_keys("app-0001") == {"01" * 32, "02" * 32}
    assert await store.used_keys("app-0002") == {"03" * 32}
    assert await store.used_keys("app-9999") == set()


# -- the audit log ---------------------------------------------------------------------------------
async def test_audit_chain_links_every_entry(store):
    details = {"nested": {"b": [1, 2], "a": "名前"}, "flag": True, "none": None}
    entries = [await store.append_audit(event(n=n, **details)) for n in range(1, 6)]

    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert await store.verify_audit_chain() == 5
    stored = await store.audit_log()
    assert stored == entries
    assert stored[2].event.details == {"n": 3, **details}
    assert [e.seq for e in await store.audit_log(after_seq=2, limit=2)] == [3, 4]


async def test_audit_times_with_another_offset_still_verify(store):
    jst = dt.timezone(dt.timedelta(hours=9))
    await store.append_audit(
        AuditEvent(
            at=dt.datetime(2026, 11, 2, 18, 30, tzinfo=jst), actor="a", action="b", target="c"
        )
    )
    assert await store.verify_audit_chain() == 1
    (entry,) = await store.audit_log()
    assert entry.event.at == dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)


async def test_audit_log_refuses_update_and_delete(backend, store):
    for n in range(3):
        await store.append_audit(event(n=n))

    with pytest.raises(backend.refused, match="append-only"):
        backend.execute_raw("UPDATE audit_log SET details = '{\"n\":99}' WHERE seq = 2")
    with pytest.raises(backend.refused, match="append-only"):
        backend.execute_raw("DELETE FROM audit_log WHERE seq = 3")
    with pytest.raises(backend.refused, match="append-only"):
        backend.execute_raw("DELETE FROM audit_log")

    assert await store.verify_audit_chain() == 3
    assert [e.event.details["n"] for e in await store.audit_log()] == [0, 1, 2]


async def test_tampering_that_bypasses_the_triggers_is_detected(backend, store):
    for n in range(1, 6):
        await store.append_audit(event(n=n))

    backend.execute_raw(
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET details = '{\"n\":33}' WHERE seq = 3",
    )
    with pytest.raises(AuditChainBroken, match=r"entry 3\b"):
        await store.verify_audit_chain()


async def test_a_removed_entry_is_detected(backend, store):
    for n in range(1, 6):
        await store.append_audit(event(n=n))

    backend.execute_raw("DROP TRIGGER audit_log_no_delete", "DELETE FROM audit_log WHERE seq = 2")
    with pytest.raises(AuditChainBroken, match=r"entry 3\b"):
        await store.verify_audit_chain()


async def test_concurrent_appends_keep_one_chain(store):
    entries = await asyncio.gather(*(store.append_audit(event(n=n)) for n in range(50)))

    assert sorted(e.seq for e in entries) == list(range(1, 51))
    assert await store.verify_audit_chain() == 50
    assert [e.seq for e in await store.audit_log()] == list(range(1, 51))


async def test_two_store_instances_on_one_database_interleave_safely(backend, store):
    other = await backend.open()
    try:
        # Strict alternation: each instance must chain onto the entry the other just wrote.
        for n in range(20):
            await (store, other)[n % 2].append_audit(event(("a", "b")[n % 2] + ".turn", n))
        # Then both at once.
        await asyncio.gather(
            *(
                s.append_audit(event(f"{name}.burst", n))
                for n in range(25)
                for s, name in ((store, "a"), (other, "b"))
            )
        )

        for view in (store, other):
            assert await view.verify_audit_chain() == 70
        log = await other.audit_log()
        assert [e.seq for e in log] == list(range(1, 71))
        actions = [e.event.action for e in log]
        assert actions[:20] == ["a.turn", "b.turn"] * 10
        assert sorted(actions[20:]) == ["a.burst"] * 25 + ["b.burst"] * 25
    finally:
        await other.close()


async def test_separate_processes_appending_keep_one_chain(backend, store):
    """Two real OS processes append to the same file at once (SQLite's file lock serializes)."""
    if not isinstance(backend, SQLiteBackend):
        raise TypeError("this test writes through the SQLite file; add the backend's variant")
    script = textwrap.dedent(
        """
        import asyncio, datetime as dt, sys
        from jitsuin.server.storage import AuditEvent
        from jitsuin.server.storage.sqlite import SQLiteStore

        async def main(path, name):
            store = await SQLiteStore.open(path)
            for n in range(30):
                at = dt.datetime.now(dt.UTC)
                await store.append_audit(AuditEvent(at, name, "proc.append", f"n/{n}", {"n": n}))
            await store.close()

        asyncio.run(main(sys.argv[1], sys.argv[2]))
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(backend.path), name])
        for name in ("p1", "p2", "p3")
    ]
    assert [p.wait(timeout=30) for p in processes] == [0, 0, 0]

    assert await store.verify_audit_chain() == 90
    log = await store.audit_log()
    assert [e.seq for e in log] == list(range(1, 91))
    assert sorted({e.event.actor for e in log}) == ["p1", "p2", "p3"]

"""The store contract (docs/architecture.md, house habit 10: the consumer owns the interface).

Every test runs against each entry of ``BACKENDS``: the embedded SQLite store and the PostgreSQL
store (a schema of its own per test in the server at 127.0.0.1:5432, or JITSUIN_TEST_POSTGRES).
A backend is a class with five members: ``open``, ``migration_files``, ``execute_raw``,
``refused`` and ``url`` (the ``database_url`` another process opens it by).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import hashlib
import inspect
import itertools
import re
import sqlite3
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path

import asyncpg
import pytest

from jitsuin.server.storage import (
    GENESIS_HASH,
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallengeRecord,
    AcmeEABKeyRecord,
    AcmeOrderRecord,
    ApplicationRecord,
    Attempt,
    AttemptPolicy,
    AuditChainBroken,
    AuditEvent,
    CertificateRecord,
    Conflict,
    Credential,
    CRLRecord,
    GenerationRecord,
    IntentRecord,
    LinkRecord,
    NotFound,
    Operator,
    OutboxMail,
    Outcome,
    ReenrollmentRecord,
    Store,
    StoreError,
)
from jitsuin.server.storage.postgres import PostgresStore
from jitsuin.server.storage.sqlite import SQLiteStore

T0 = dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=dt.UTC)
# A 159-bit serial, as x509.random_serial_number() draws them, with a high bit pattern that a
# 64-bit integer column would corrupt.
BIG_SERIAL = (1 << 158) | 0x00DEADBEEF_0000_0000_0000_0000_0000_0000_0001
ONE = dt.timedelta(seconds=1)


class SQLiteBackend:
    """The embedded store on a real file; ``execute_raw`` is another process's view of it."""

    name = "sqlite"
    refused = (sqlite3.DatabaseError,)  # what the raw driver raises when a trigger refuses

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "store.db"
        self.url = f"sqlite:///{self.path}"

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


class PostgresBackend:
    """The shared store in a schema of its own (the ``postgres_schema`` fixture drops it)."""

    name = "postgresql"
    refused = (asyncpg.PostgresError,)

    def __init__(self, schema) -> None:
        self.schema = schema
        self.url = schema.url

    async def open(self) -> PostgresStore:
        return await PostgresStore.open(self.url)

    def migration_files(self) -> int:
        folder = resources.files("jitsuin.server.storage.migrations")
        return sum(1 for item in folder.iterdir() if item.name.endswith(".postgresql.sql"))

    def execute_raw(self, *statements: str) -> list[tuple]:
        """As SQLiteBackend.execute_raw; the tests' ``DROP TRIGGER name`` (SQLite's form) gets
        the ``ON audit_log`` PostgreSQL requires."""
        return self.schema.execute(
            *(re.sub(r"^(DROP TRIGGER \w+)$", r"\1 ON audit_log", s) for s in statements)
        )


BACKENDS = [
    pytest.param(SQLiteBackend, id="sqlite"),
    pytest.param(PostgresBackend, id="postgresql"),
]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    if request.param is PostgresBackend:
        return PostgresBackend(request.getfixturevalue("postgres_schema"))
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


# -- signing intents -------------------------------------------------------------------------------
def intent_record(serial: int = BIG_SERIAL, *, generation: int = 1) -> IntentRecord:
    return IntentRecord(
        generation=generation,
        serial=serial,
        profile="general",
        tbs_sha256=hashlib.sha256(f"tbs-{serial}".encode()).hexdigest(),
        requester="applicant:E-1:est",
        target="application/APP-0001",
        reserved_at=T0,
    )


async def test_an_intent_is_reserved_once_and_settled_by_its_certificate(store):
    await store.add_generation(generation_record(1), event())
    await store.add_generation(generation_record(2), event())
    await store.reserve_intent(intent_record())
    with pytest.raises(Conflict, match="reserved"):  # SBR 7.1: a serial is reserved once
        await store.reserve_intent(dataclasses.replace(intent_record(), target="application/X"))
    await store.reserve_intent(intent_record(generation=2))  # unique per CA (RFC 5280 4.1.2.2)
    with pytest.raises(StoreError):  # no such generation
        await store.reserve_intent(intent_record(generation=7))
    assert await store.intents("reserved") == [intent_record(), intent_record(generation=2)]

    issued_at = T0 + ONE
    await store.record_certificate(
        dataclasses.replace(certificate_record(BIG_SERIAL), issued_at=issued_at), event()
    )
    settled = dataclasses.replace(intent_record(), state="issued", settled_at=issued_at)
    assert await store.intents("issued") == [settled]
    assert await store.intents("reserved") == [intent_record(generation=2)]
    assert await store.certificates_without_intent() == []
    # A certified serial cannot be reserved again, even when its intent is gone.
    with pytest.raises(Conflict):
        await store.reserve_intent(intent_record())


async def test_a_serial_certified_without_an_intent_is_reported_and_never_reserved(store):
    await with_generation(store)
    await store.record_certificate(certificate_record(5, spki="05" * 32), event())
    assert await store.certificates_without_intent() == [(1, 5)]
    with pytest.raises(Conflict, match="certified"):
        await store.reserve_intent(intent_record(5))
    assert await store.intents("reserved") == []


async def test_every_way_of_recording_a_certificate_settles_its_intent(store):
    await with_generation(store)
    await store.create_application(application_record(), event("application.create"))
    await store.reserve_intent(intent_record(6))
    await store.redeem_application(
        "APP-0001",
        1,
        "issued",
        T0,
        event("application.redeem"),
        certificate=certificate_record(6, spki="06" * 32),
    )
    request = await store.add_reenrollment(reenrollment_record(), event("reenroll.request"))
    await store.reserve_intent(intent_record(7))
    await store.complete_reenrollment(
        request.id, certificate_record(7, spki="07" * 32), event("reenroll")
    )
    assert [i.serial for i in await store.intents("issued")] == [6, 7]
    assert await store.intents("reserved") == []


async def test_a_discarded_intent_is_settled_once_with_its_audit_entry(store):
    await with_generation(store)
    await store.reserve_intent(intent_record(8))
    before = len(await store.audit_log())
    await store.discard_intent(1, 8, T0 + ONE, event("certificate.discarded"))
    assert await store.intents("discarded") == [
        dataclasses.replace(intent_record(8), state="discarded", settled_at=T0 + ONE)
    ]
    with pytest.raises(Conflict, match="discarded"):
        await store.discard_intent(1, 8, T0 + ONE, event("again"))
    with pytest.raises(NotFound):
        await store.discard_intent(1, 9, T0 + ONE, event("unknown"))
    assert len(await store.audit_log()) == before + 1
    assert await store.verify_audit_chain() == before + 1


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


@pytest.mark.parametrize(
    ("removed", "named"),
    [
        ("DELETE FROM audit_log WHERE seq = 5", r"entry 5 removed"),
        ("DELETE FROM audit_log WHERE seq >= 4", r"entries 4 to 5 removed"),
    ],
    ids=["newest", "two-newest"],
)
async def test_removed_newest_entries_are_detected(backend, store, removed, named):
    """What is left after cutting off the newest entries is a valid chain: only the head the
    store recorded at the last append (migration 0008) shows the cut."""
    for n in range(1, 6):
        await store.append_audit(event(n=n))

    backend.execute_raw("DROP TRIGGER audit_log_no_delete", removed)
    with pytest.raises(AuditChainBroken, match=named):
        await store.verify_audit_chain()


async def test_the_audit_head_only_moves_forward(backend, store):
    for n in range(1, 4):
        await store.append_audit(event(n=n))

    with pytest.raises(backend.refused, match="audit_head"):
        backend.execute_raw("UPDATE audit_head SET seq = 2")
    with pytest.raises(backend.refused, match="audit_head"):
        backend.execute_raw("DELETE FROM audit_head")
    assert await store.verify_audit_chain() == 3


async def test_an_append_while_the_chain_is_read_is_not_a_removal(store):
    """The append lands after the last batch is read and before the head is: the head is then
    past the entries read, which is no removal (GET /ra/audit/verify under load)."""
    for n in range(1, 4):
        await store.append_audit(event(n=n))
    read = store.audit_log
    appended: list[int] = []

    async def read_then_append(*args, **kwargs):
        batch = await read(*args, **kwargs)
        if not batch and not appended:
            appended.append((await store.append_audit(event(n=4))).seq)
        return batch

    store.audit_log = read_then_append  # the race, placed where it hurts
    try:
        assert await store.verify_audit_chain() == 4
    finally:
        del store.audit_log
    assert appended == [4]


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
    """Three real OS processes append at once (SQLite: the file lock serializes; PostgreSQL: the
    audit_log table lock taken before the chain head is read)."""
    script = textwrap.dedent(
        """
        import asyncio, datetime as dt, sys, types
        from jitsuin.server.storage import AuditEvent, open_store

        async def main(url, name):
            store = await open_store(types.SimpleNamespace(database_url=url))
            for n in range(30):
                at = dt.datetime.now(dt.UTC)
                await store.append_audit(AuditEvent(at, name, "proc.append", f"n/{n}", {"n": n}))
            await store.close()

        asyncio.run(main(sys.argv[1], sys.argv[2]))
        """
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, backend.url, name])
        for name in ("p1", "p2", "p3")
    ]
    assert [p.wait(timeout=30) for p in processes] == [0, 0, 0]

    assert await store.verify_audit_chain() == 90
    log = await store.audit_log()
    assert [e.seq for e in log] == list(range(1, 91))
    assert sorted({e.event.actor for e in log}) == ["p1", "p2", "p3"]


# -- the contract covers every Store method -------------------------------------------------------
def test_every_sqlite_migration_has_a_postgresql_twin():
    folder = resources.files("jitsuin.server.storage.migrations")
    names = [item.name for item in folder.iterdir() if item.name.endswith(".sql")]
    stems = {dialect: set() for dialect in ("sqlite", "postgresql")}
    for name in names:
        stem, dialect, _ = name.rsplit(".", 2)
        assert dialect in stems, f"{name}: unknown dialect"
        stems[dialect].add(stem)
    assert stems["sqlite"] == stems["postgresql"], "each NNNN_name.sqlite.sql needs its twin"


def store_methods() -> dict[str, object]:
    """Every method of ``Store`` and of the parts it is the union of, by name."""
    parts = [part for part in Store.__mro__ if part.__module__ == Store.__module__]
    return {
        name: member
        for part in reversed(parts)
        for name, member in vars(part).items()
        if not name.startswith("_") and callable(member)
    }


def test_every_store_method_is_implemented_by_every_backend():
    wanted = store_methods()
    assert len(wanted) == 93  # every part walked, not only Store's own body
    for cls in (SQLiteStore, PostgresStore):
        missing = sorted(name for name in wanted if not callable(getattr(cls, name, None)))
        assert not missing, f"{cls.__name__} lacks {missing}"
        for name in wanted:
            ours = inspect.signature(getattr(cls, name))
            theirs = inspect.signature(wanted[name])
            assert list(ours.parameters) == list(theirs.parameters), f"{cls.__name__}.{name}"


# -- the RA workflow -------------------------------------------------------------------------------
def application_record(app_id: str = "APP-0001", **overrides) -> ApplicationRecord:
    values = {
        "id": app_id,
        "version": 1,
        "state": "received",
        "profile": "general",
        "family_name": "Yamada",
        "given_name": "Hanako",
        "email": "hanako.yamada@example.com",
        "qualification_group": "member",
        "qualification_number": "AB-1234",
        "postal_address": "1-1 Chiyoda, Chiyoda-ku, Tokyo",
        "date_of_birth": "1980-01-02",
        "billing_addressee": "self",
        "billing_company": None,
        "created_by": "alice",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return ApplicationRecord(**values)


def pin_mail(app_id: str = "APP-0001", body: bytes = b"sealed-1", n: int = 0) -> OutboxMail:
    return OutboxMail(
        application_id=app_id,
        kind="pin",
        recipient="hanako.yamada@example.com",
        body_sealed=body,
        next_attempt_at=T0 + dt.timedelta(seconds=n),
    )


async def new_pin(
    store,
    version: int = 1,
    pin_hash: str = "hash-of-the-pin",
    mail: OutboxMail | None = None,
    action: str = "pin",
    app_id: str = "APP-0001",
) -> ApplicationRecord:
    """An application approved (again) with a new PIN and its mail."""
    return await store.reissue_pin(
        app_id,
        version,
        "approved",
        T0,
        event(action),
        pin_hash=pin_hash,
        pin_expires_at=T0 + dt.timedelta(days=7),
        eab_key_sealed=b"sealed-eab",
        mail=mail or pin_mail(app_id),
    )


async def test_operators_round_trip_and_a_duplicate_is_a_conflict(store):
    alice = Operator("alice", "reviewer", T0)
    await store.add_operator(alice, "hash-a", event("operator.add", 1))
    # Who else may know bob's token (the two-person rule counts them): kept sorted.
    bob = Operator("bob", "approver", T0, token_set_by=("carol", "cli:root"))
    await store.add_operator(bob, "hash-b", event("operator.add", 2))
    with pytest.raises(Conflict, match="'alice' exists"):
        await store.add_operator(Operator("alice", "admin", T0), "hash-c", event("dup"))

    assert await store.operator_by_token("hash-a") == alice
    assert await store.operator_by_token("hash-b") == bob
    assert await store.operator_by_token("hash-c") is None
    assert [o.name for o in await store.operators()] == ["alice", "bob"]
    assert [e.event.action for e in await store.audit_log()] == ["operator.add"] * 2


async def test_an_operator_is_bound_to_one_client_certificate(store):
    fingerprint, other = "ab" * 32, "cd" * 32
    with pytest.raises(NotFound, match="no operator 'alice'"):
        await store.bind_operator_certificate(
            "alice", fingerprint, 1, 7, event("bind"), bound_by=()
        )
    alice, bob = Operator("alice", "reviewer", T0), Operator("bob", "approver", T0)
    await store.add_operator(alice, "hash-a", event("operator.add", 1))
    await store.add_operator(bob, "hash-b", event("operator.add", 2))
    assert await store.operator_by_certificate(fingerprint) is None

    await store.bind_operator_certificate(
        "alice", fingerprint, 1, BIG_SERIAL, event("bind", 3), bound_by=()
    )
    bound = dataclasses.replace(
        alice,
        certificate_sha256=fingerprint,
        certificate_generation=1,
        certificate_serial=BIG_SERIAL,  # a 159-bit serial survives the round trip
    )
    assert await store.operator_by_certificate(fingerprint) == bound
    assert await store.operator_by_token("hash-a") == bound
    assert [o.certificate_sha256 for o in await store.operators()] == [fingerprint, None]

    # One certificate authenticates one operator; the refused binding writes nothing.
    entries = len(await store.audit_log())
    with pytest.raises(Conflict, match="bound to another operator"):
        await store.bind_operator_certificate(
            "bob", fingerprint, 1, BIG_SERIAL, event("bind"), bound_by=()
        )
    assert await store.operator_by_token("hash-b") == bob
    assert len(await store.audit_log()) == entries

    # A new binding replaces the old one.
    await store.bind_operator_certificate("alice", other, 2, 7, event("bind", 4), bound_by=())
    assert await store.operator_by_certificate(fingerprint) is None
    rebound = await store.operator_by_certificate(other)
    assert rebound is not None
    assert (rebound.name, rebound.certificate_generation, rebound.certificate_serial) == (
        "alice",
        2,
        7,
    )
    # The old certificate is free for another operator now.
    await store.bind_operator_certificate(
        "bob", fingerprint, 1, BIG_SERIAL, event("bind", 5), bound_by=("carol",)
    )
    assert (await store.operator_by_certificate(fingerprint)).name == "bob"
    assert (await store.operator_by_certificate(fingerprint)).certificate_bound_by == ("carol",)

    await store.unbind_operator_certificate("alice", event("unbind", 6))
    assert await store.operator_by_certificate(other) is None
    assert await store.operator_by_token("hash-a") == alice
    with pytest.raises(Conflict, match="no certificate bound"):
        await store.unbind_operator_certificate("alice", event("unbind"))
    with pytest.raises(NotFound, match="no operator 'carol'"):
        await store.unbind_operator_certificate("carol", event("unbind"))
    actions = [(e.event.action, e.event.target) for e in await store.audit_log()]
    assert actions[2:] == [
        ("bind", "thing/3"),
        ("bind", "thing/4"),
        ("bind", "thing/5"),
        ("unbind", "thing/6"),
    ]
    assert await store.verify_audit_chain() == len(actions)


async def test_an_operator_is_disabled_enabled_and_given_a_new_token(store):
    alice, bob = Operator("alice", "reviewer", T0), Operator("bob", "approver", T0)
    await store.add_operator(alice, "hash-a", event("operator.add", 1))
    await store.add_operator(bob, "hash-b", event("operator.add", 2))
    fingerprint = "ab" * 32
    await store.bind_operator_certificate(
        "alice", fingerprint, 1, BIG_SERIAL, event("bind", 3), bound_by=()
    )
    bound = dataclasses.replace(
        alice, certificate_sha256=fingerprint, certificate_generation=1,
        certificate_serial=BIG_SERIAL,
    )  # fmt: skip

    # Disabled: both lookups show when, to the microsecond, and in UTC.
    at = T0 + dt.timedelta(hours=1, microseconds=123456)
    await store.disable_operator("alice", at, event("operator.disable", 4))
    disabled = dataclasses.replace(bound, disabled_at=at)
    assert await store.operator_by_token("hash-a") == disabled
    assert await store.operator_by_certificate(fingerprint) == disabled
    assert (await store.operator_by_token("hash-a")).disabled_at.utcoffset() == dt.timedelta(0)
    assert [o.disabled_at for o in await store.operators()] == [at, None]
    assert await store.operator_by_token("hash-b") == bob  # no one else

    # Refusals write nothing: disabling twice, enabling an enabled one, unknown operators.
    entries = len(await store.audit_log())
    with pytest.raises(Conflict, match="'alice' is disabled already"):
        await store.disable_operator("alice", at + ONE, event("operator.disable"))
    assert (await store.operator_by_token("hash-a")).disabled_at == at  # not moved on
    with pytest.raises(Conflict, match="'bob' is not disabled"):
        await store.enable_operator("bob", event("operator.enable"))
    for refused in (
        lambda: store.disable_operator("carol", at, event("operator.disable")),
        lambda: store.enable_operator("carol", event("operator.enable")),
        lambda: store.rotate_operator_token(
            "carol", "hash-c", event("operator.rotate_token"), set_by=()
        ),
    ):
        with pytest.raises(NotFound, match="no operator 'carol'"):
            await refused()
    # A token hash is one operator's only: taking bob's is refused and changes nothing.
    with pytest.raises(Conflict, match="another operator"):
        await store.rotate_operator_token(
            "alice", "hash-b", event("operator.rotate_token"), set_by=()
        )
    assert (await store.operator_by_token("hash-b")).name == "bob"
    assert await store.operator_by_token("hash-a") == disabled
    assert len(await store.audit_log()) == entries

    # Enabled again, the same token and certificate find it; then a new token.
    await store.enable_operator("alice", event("operator.enable", 5))
    assert await store.operator_by_token("hash-a") == bound
    assert await store.operator_by_certificate(fingerprint) == bound
    await store.rotate_operator_token(
        "alice", "hash-a2", event("operator.rotate_token", 6), set_by=()
    )
    assert await store.operator_by_token("hash-a") is None
    assert await store.operator_by_token("hash-a2") == bound
    assert await store.operator_by_certificate(fingerprint) == bound  # the binding stays
    # A disabled operator's token can be replaced too (it stays disabled).
    await store.disable_operator("bob", at, event("operator.disable", 7))
    await store.rotate_operator_token(
        "bob", "hash-b2", event("operator.rotate_token", 8), set_by=("carol",)
    )
    assert await store.operator_by_token("hash-b2") == dataclasses.replace(
        bob, disabled_at=at, token_set_by=("carol",)
    )

    actions = [(e.event.action, e.event.target) for e in await store.audit_log()]
    assert actions[3:] == [
        ("operator.disable", "thing/4"),
        ("operator.enable", "thing/5"),
        ("operator.rotate_token", "thing/6"),
        ("operator.disable", "thing/7"),
        ("operator.rotate_token", "thing/8"),
    ]
    assert await store.verify_audit_chain() == len(actions)


async def test_applications_round_trip_every_column(store):
    full = application_record(
        state="pin_sent",
        billing_addressee="company",
        billing_company="Yamada Law Office",
        reviewed_by="carol",
        review={"deficiencies": [], "receivedOn": "2026-10-30", "名前": True},
        tracking_number="RD123456785JP",
        invoice_number="INV-1",
        invoice_amount=11000,
        letter_returned_at=T0 + dt.timedelta(days=1),
        paid_at=T0 + dt.timedelta(days=2),
        paid_amount=11000,
        enrollment_id="ABCDE-FGHJK",
        access_code_hash="ac" * 32,
        access_attempts=2,
        access_used_at=T0 + dt.timedelta(days=3),
        online_input_at=T0 + dt.timedelta(days=3),
        approved_by="bob",
        approved_at=T0 + dt.timedelta(days=4),
        pin_hash="pi" * 32,
        pin_expires_at=T0 + dt.timedelta(days=18, microseconds=250),
        pin_attempts=1,
        eab_key_sealed=b"\x00\xffsealed",
        certificate_generation=1,
        certificate_serial=format(BIG_SERIAL, "x"),
    )
    plain = application_record("APP-0002", email="taro@example.jp", created_at=T0 + ONE)
    await store.create_application(full, event("application.create", 1))
    await store.create_application(plain, event("application.create", 2))
    with pytest.raises(Conflict, match="APP-0001 exists"):
        await store.create_application(full, event("dup"))

    assert await store.application("APP-0001") == full
    assert await store.application_by_enrollment_id("ABCDE-FGHJK") == full
    assert await store.applications() == [full, plain]
    assert await store.applications(state="received") == [plain]
    assert await store.applications(limit=1, offset=1) == [plain]
    assert await store.applications_by_email("taro@example.jp") == [plain]
    with pytest.raises(NotFound):
        await store.application("APP-9999")
    with pytest.raises(NotFound):
        await store.application_by_enrollment_id("NOPE")
    assert len(await store.audit_log()) == 2


async def test_applications_by_name_match_a_part_of_either_order_in_any_case(store):
    names = [("Yamada", "Hanako"), ("山田", "花子"), ("O'Neil_%", "Ann\\"), ("Yamamoto", "Taro")]
    for n, (family, given) in enumerate(names, 1):
        record = application_record(
            f"APP-000{n}", family_name=family, given_name=given, created_at=T0 + n * ONE
        )
        await store.create_application(record, event("application.create", n))

    async def ids(text: str, limit: int = 100, offset: int = 0) -> list[str]:
        return [a.id for a in await store.applications_by_name(text, limit, offset)]

    assert await ids("yama") == ["APP-0001", "APP-0004"]
    assert await ids("YAMADA") == ["APP-0001"]
    assert await ids("hanako yamada") == ["APP-0001"]  # given name first, space ignored
    assert await ids("Yamada\u3000Hanako") == ["APP-0001"]  # an ideographic space too
    assert await ids("山田 花子") == ["APP-0002"]
    assert await ids("花子") == ["APP-0002"]
    assert await ids("yama", limit=1, offset=1) == ["APP-0004"]
    # Wildcards and the escape character are plain characters, not patterns.
    assert await ids("%") == ["APP-0003"]
    assert await ids("_") == ["APP-0003"]
    assert await ids("\\") == ["APP-0003"]
    assert await ids("a%") == []
    assert await ids("y_mada") == []
    assert await ids("") == []
    assert await ids("   ") == []
    assert await ids("yama\x00da") == []
    assert await ids("x" * 10_000) == []


async def test_an_application_time_given_in_another_zone_is_kept_as_the_instant_in_utc(store):
    await store.create_application(application_record(), event("application.create"))
    japan = dt.timezone(dt.timedelta(hours=9))
    updated = await store.record_payment(
        "APP-0001",
        1,
        "paid",
        dt.datetime(2026, 11, 3, 18, 30, 15, tzinfo=japan),
        event("application.pay", 1),
        amount=11000,
    )

    assert updated.paid_at == dt.datetime(2026, 11, 3, 9, 30, 15, tzinfo=dt.UTC)
    assert updated.paid_at.utcoffset() == dt.timedelta(0)
    assert (await store.application("APP-0001")).paid_at == updated.paid_at


async def test_a_workflow_write_is_optimistic_and_atomic(store):
    await store.create_application(application_record(), event("application.create"))
    later = T0 + dt.timedelta(hours=1)
    updated = await store.record_review(
        "APP-0001",
        1,
        "documents_accepted",
        later,
        event("application.accept_documents", 1),
        review={"ok": True},
        reviewed_by="alice",
    )
    assert (updated.version, updated.state, updated.review) == (2, "documents_accepted", {"ok": 1})
    assert (updated.updated_at, updated.reviewed_by) == (later, "alice")

    with pytest.raises(Conflict, match="changed meanwhile"):
        await store.move_application("APP-0001", 1, "x", T0, event("stale"))
    with pytest.raises(NotFound):
        await store.move_application("APP-9999", 1, "x", T0, event("missing"))

    # A certificate that cannot be recorded undoes the whole transition.
    await with_generation(store)
    await store.record_certificate(certificate_record(5, spki="ee" * 32), event("issue"))
    before = len(await store.audit_log())
    with pytest.raises(Conflict, match="serial 5 exists"):
        await store.redeem_application(
            "APP-0001",
            2,
            "issued",
            T0,
            event("application.redeem"),
            certificate=certificate_record(5, spki="ff" * 32),
        )
    assert (await store.application("APP-0001")).version == 2
    assert len(await store.audit_log()) == before

    done = await store.redeem_application(
        "APP-0001",
        2,
        "issued",
        T0,
        event("application.redeem"),
        certificate=certificate_record(6, spki="ff" * 32),
    )
    assert done.version == 3 and (await store.certificate(1, 6)).spki_sha256 == "ff" * 32
    assert (done.certificate_generation, done.certificate_serial) == (1, "6")
    assert await store.verify_audit_chain() == before + 1


async def test_each_workflow_write_sets_its_steps_columns_and_the_state_it_is_given(store):
    await with_generation(store)
    await store.create_application(application_record(), event("application.create"))
    at = [T0 + n * ONE for n in range(10)]
    app = await store.record_review(
        "APP-0001", 1, "documents_accepted", at[1], event("r"), review={}, reviewed_by="alice"
    )
    app = await store.record_inquiry(
        "APP-0001",
        app.version,
        "inquiry_sent",
        at[2],
        event("i"),
        tracking_number="TRK-1",
        enrollment_id="ENR-1",
        access_code_hash="hash-of-the-code",
        invoice_number="INV-1",
        invoice_amount=11000,
    )
    assert (app.state, app.tracking_number, app.enrollment_id, app.access_code_hash) == (
        "inquiry_sent",
        "TRK-1",
        "ENR-1",
        "hash-of-the-code",
    )
    assert (app.invoice_number, app.invoice_amount, app.access_attempts) == ("INV-1", 11000, 0)
    app = await store.record_letter("APP-0001", app.version, "identity_confirmed", at[3], event())
    assert (app.state, app.letter_returned_at) == ("identity_confirmed", at[3])
    app = await store.record_payment(
        "APP-0001", app.version, "awaiting_online_input", at[4], event(), amount=11000
    )
    assert (app.paid_at, app.paid_amount) == (at[4], 11000)
    app = await store.record_online_input(
        "APP-0001", app.version, "online_input_received", at[5], event()
    )
    assert (app.online_input_at, app.access_used_at, app.access_code_hash) == (at[5], at[5], None)
    app = await store.record_approval_and_pin(
        "APP-0001",
        app.version,
        "approved",
        at[6],
        event(),
        approved_by="bob",
        pin_hash="hash-of-the-pin",
        pin_expires_at=at[9],
        eab_key_sealed=b"sealed-eab",
        mail=pin_mail(),
    )
    assert (app.approved_by, app.approved_at, app.pin_hash, app.pin_expires_at) == (
        "bob",
        at[6],
        "hash-of-the-pin",
        at[9],
    )
    assert (app.eab_key_sealed, app.pin_attempts) == (b"sealed-eab", 0)
    app = await store.move_application("APP-0001", app.version, "pin_sent", at[7], event())
    assert (app.state, app.updated_at, app.pin_hash) == ("pin_sent", at[7], "hash-of-the-pin")
    app = await store.redeem_application(
        "APP-0001",
        app.version,
        "issued",
        at[8],
        event(),
        certificate=certificate_record(0xAB, spki="ab" * 32),
    )
    assert (app.state, app.pin_used_at, app.eab_key_sealed, app.pin_hash) == (
        "issued",
        at[8],
        None,
        "hash-of-the-pin",
    )
    assert (app.certificate_generation, app.certificate_serial, app.version) == (1, "ab", 9)

    await store.create_application(
        application_record("APP-0002", access_code_hash="hash-of-a-code"), event("create")
    )
    assert (await new_pin(store, app_id="APP-0002")).eab_key_sealed == b"sealed-eab"
    closed = await store.close_application(
        "APP-0002", 2, "rejected", at[9], event(), reason="forged seal"
    )
    assert (closed.state, closed.closed_reason, closed.updated_at) == (
        "rejected",
        "forged seal",
        at[9],
    )
    assert (closed.pin_hash, closed.access_code_hash, closed.eab_key_sealed) == (None, None, None)


async def test_a_new_mail_supersedes_the_pending_one_and_wipes_its_body(store):
    await store.create_application(application_record(), event("application.create"))
    await new_pin(store, 1, mail=pin_mail(body=b"first"), action="approve")
    await new_pin(store, 2, mail=pin_mail(body=b"second", n=5), action="reissue")
    old, new = await store.mail()
    assert (old.status, old.body_sealed) == ("superseded", None)
    assert (new.status, new.body_sealed, new.attempts) == ("pending", b"second", 0)
    assert (new.next_attempt_at, new.created_at, new.sent_at) == (T0 + 5 * ONE, T0, None)
    assert await store.mail(status="pending") == [new]


async def test_mail_is_claimed_once_then_marked(store):
    await store.create_application(application_record(), event("application.create"))
    await new_pin(store, 1, action="a")
    (mail,) = await store.due_mail(T0)
    assert await store.due_mail(T0 - ONE) == []

    until = T0 + dt.timedelta(minutes=5)
    assert await store.claim_mail(mail.id, T0, until) is True
    assert await store.claim_mail(mail.id, T0, until) is False  # another process has it
    assert await store.due_mail(T0) == []

    retry_at = T0 + dt.timedelta(minutes=1)
    await store.mark_mail(
        mail.id, "pending", event("mail.retry"), error="421 busy", next_attempt_at=retry_at
    )
    (again,) = await store.mail()
    assert (again.attempts, again.last_error, again.next_attempt_at) == (1, "421 busy", retry_at)
    assert again.body_sealed == b"sealed-1"

    await store.mark_mail(mail.id, "sent", event("mail.sent"), sent_at=T0 + 2 * ONE)
    (sent,) = await store.mail()
    assert (sent.status, sent.body_sealed, sent.sent_at) == ("sent", None, T0 + 2 * ONE)
    assert sent.next_attempt_at == retry_at  # kept when not given
    with pytest.raises(Conflict, match="no longer pending"):
        await store.mark_mail(mail.id, "failed", event("late"))
    with pytest.raises(Conflict, match="can be retried"):
        await store.retry_mail(mail.id, T0, event("retry"))


async def test_a_failed_mail_can_be_put_back(store):
    await store.create_application(application_record(), event("application.create"))
    await new_pin(store, 1, action="a")
    (mail,) = await store.mail()
    await store.mark_mail(mail.id, "failed", event("mail.failed"), error="550 no such user")
    later = T0 + dt.timedelta(hours=2)
    await store.retry_mail(mail.id, later, event("mail.retry"))
    (back,) = await store.due_mail(later)
    assert (back.status, back.next_attempt_at, back.body_sealed) == ("pending", later, b"sealed-1")
    with pytest.raises(Conflict):
        await store.retry_mail(mail.id, later, event("twice"))


class Tries:
    """``matches`` for ``try_credential``: right when the stored value is ``right``; counts the
    comparisons made, which the attempt limit bounds."""

    def __init__(self, right: str | None = "hash-of-the-pin") -> None:
        self.right = right
        self.compared = 0

    def __call__(self, stored: object) -> bool:
        self.compared += 1
        return stored is not None and stored == self.right


def refuse_to_compare(stored: object) -> bool:
    raise AssertionError("a locked or throttled try was compared")


async def test_a_credential_try_is_counted_first_and_only_wrong_ones_stay(store):
    await store.create_application(application_record(), event("application.create"))
    await new_pin(store)
    policy = AttemptPolicy(limit=3, backoff=dt.timedelta(0))
    right, wrong = Tries(), Tries(right=None)

    async def attempt(matches, source="192.0.2.1", credential=Credential.PIN):
        return await store.try_credential(
            "APP-0001", credential, policy, source, T0, matches, event("redeem.wrong_pin")
        )

    assert await attempt(wrong) == Attempt(Outcome.WRONG, 1)
    assert await attempt(right) == Attempt(Outcome.RIGHT, 1)  # a right try is not counted
    assert await attempt(wrong, "192.0.2.2") == Attempt(Outcome.WRONG, 2)
    assert await attempt(wrong) == Attempt(Outcome.WRONG, 3)
    # Locked: not compared, even with the right credential; nothing counted or audited.
    assert await attempt(refuse_to_compare) == Attempt(Outcome.LOCKED, 3)
    assert await attempt(Tries(right="access"), credential=Credential.ACCESS_CODE) == Attempt(
        Outcome.WRONG, 1
    )
    app = await store.application("APP-0001")
    assert (app.pin_attempts, app.access_attempts, app.version) == (3, 1, 2)
    audit = [e.event.action for e in await store.audit_log()]
    assert audit.count("redeem.wrong_pin") == 4  # three PIN tries and the access code one
    # The EAB key shares the PIN's counter, and is compared with the sealed column.
    assert await attempt(refuse_to_compare, credential=Credential.EAB_KEY) == Attempt(
        Outcome.LOCKED, 3
    )
    with pytest.raises(NotFound):
        await store.try_credential(
            "APP-9999", Credential.PIN, policy, "192.0.2.1", T0, wrong, event("missing")
        )
    assert await store.verify_audit_chain() == 6


async def test_a_source_waits_after_its_wrong_try_and_a_new_credential_ends_the_wait(store):
    await store.create_application(application_record(), event("application.create"))
    await new_pin(store)
    policy = AttemptPolicy(limit=5, backoff=dt.timedelta(seconds=10))
    wrong = Tries(right=None)

    async def attempt(matches, at, source="192.0.2.1"):
        return await store.try_credential(
            "APP-0001", Credential.PIN, policy, source, at, matches, event("redeem.wrong_pin")
        )

    assert await attempt(wrong, T0) == Attempt(Outcome.WRONG, 1)
    second = T0 + dt.timedelta(seconds=9)
    # Throttled: not compared and not counted.
    assert await attempt(refuse_to_compare, second) == Attempt(
        Outcome.THROTTLED, 1, T0 + dt.timedelta(seconds=10)
    )
    assert await attempt(wrong, second, "192.0.2.2") == Attempt(Outcome.WRONG, 2)  # another source
    assert await attempt(wrong, T0 + dt.timedelta(seconds=10)) == Attempt(Outcome.WRONG, 3)
    later = T0 + dt.timedelta(seconds=29)  # the second wait is twice as long
    assert (await attempt(refuse_to_compare, later)).outcome is Outcome.THROTTLED
    assert (await store.application("APP-0001")).pin_attempts == 3
    assert await attempt(Tries(), T0 + dt.timedelta(seconds=30)) == Attempt(Outcome.RIGHT, 3)
    assert await attempt(wrong, T0 + dt.timedelta(seconds=30)) == Attempt(Outcome.WRONG, 4)
    # A new PIN resets the count and ends every source's wait.
    app = await store.application("APP-0001")
    await new_pin(store, app.version, pin_hash="new", action="reissue")
    assert await attempt(wrong, T0 + dt.timedelta(seconds=31)) == Attempt(Outcome.WRONG, 1)


async def test_concurrent_tries_from_two_instances_compare_at_most_the_limit(backend, store):
    await store.create_application(application_record(), event("application.create"))
    await new_pin(store)
    other = await backend.open()
    policy = AttemptPolicy(limit=5, backoff=dt.timedelta(seconds=60))
    wrong = Tries(right=None)
    try:
        attempts = await asyncio.gather(
            *(
                s.try_credential(
                    "APP-0001",
                    Credential.PIN,
                    policy,
                    f"192.0.2.{n % 3}",
                    T0,
                    wrong,
                    event("redeem.wrong_pin", n),
                )
                for n in range(40)
                for s in (store, other)
            )
        )
        outcomes = collections.Counter(a.outcome for a in attempts)
        # Three sources: each compared once, then waits; the rest are throttled, not locked.
        assert outcomes == {Outcome.WRONG: 3, Outcome.THROTTLED: 77}
        assert wrong.compared == 3
        late = [  # 80 sources, none waiting
            s.try_credential(
                "APP-0001",
                Credential.PIN,
                policy,
                f"198.51.{100 + i}.{n}",
                T0,
                wrong,
                event("redeem.wrong_pin", n),
            )
            for n in range(40)
            for i, s in enumerate((store, other))
        ]
        outcomes = collections.Counter(a.outcome for a in await asyncio.gather(*late))
        assert outcomes == {Outcome.WRONG: 2, Outcome.LOCKED: 78}
        assert wrong.compared == 5
    finally:
        await other.close()
    assert (await store.application("APP-0001")).pin_attempts == 5
    assert await store.verify_audit_chain() == 7


async def test_one_of_two_racing_updates_wins(backend, store):
    await store.create_application(application_record(), event("application.create"))
    other = await backend.open()
    try:
        results = await asyncio.gather(
            *(
                s.move_application("APP-0001", 1, state, T0, event(state))
                for s, state in ((store, "documents_accepted"), (other, "documents_deficient"))
            ),
            return_exceptions=True,
        )
    finally:
        await other.close()
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(conflicts) == 1, results
    winner = next(r for r in results if not isinstance(r, Exception))
    assert (await store.application("APP-0001")) == winner
    assert await store.verify_audit_chain() == 2


async def test_audit_persons_reads_the_log(store):
    for n, (actor, action, set_by) in enumerate(
        [
            ("alice", "application.create", []),
            ("carol", "application.accept_documents", ["cli:root", "erin"]),
            ("bob", "application.approve", ["frank"]),
            ("alice", "application.read", ["grace"]),
        ]
    ):
        details = {"credential": "token", "credentialSetBy": set_by}
        await store.append_audit(
            AuditEvent(T0 + n * ONE, actor, action, "application/APP-1", details)
        )
    await store.append_audit(AuditEvent(T0, "dave", "application.create", "application/APP-2"))

    vetting = frozenset({"application.create", "application.accept_documents"})
    # The actors, and who else knew the credentials they acted with.
    persons = {"alice", "carol", "cli:root", "erin"}
    assert await store.audit_persons("application/APP-1", vetting) == persons
    assert await store.audit_persons("application/APP-2", vetting) == {"dave"}
    assert await store.audit_persons("application/APP-3", vetting) == set()
    assert await store.audit_persons("application/APP-1", frozenset()) == set()


# -- rollover and revocation -----------------------------------------------------------------------
async def test_links_are_recorded_with_the_next_generation(store):
    await with_generation(store)
    link = LinkRecord(1, 2, b"\x30\x01old-with-new", b"\x30\x02new-with-old")
    await store.add_generation(generation_record(2), event("ca.rollover"), link)
    assert await store.links() == [link]
    with pytest.raises(Conflict):
        await store.add_generation(generation_record(2), event("again"), link)
    assert await store.links() == [link]


async def test_revocation_status_and_expiry(store):
    await with_generation(store)
    first = certificate_record(BIG_SERIAL)
    second = dataclasses.replace(
        certificate_record(7, spki="07" * 32), not_after=T0 + dt.timedelta(days=800)
    )
    await store.record_certificate(first, event())
    await store.record_certificate(second, event())
    assert await store.latest_expiry(1) == second.not_after
    assert await store.latest_expiry(2) is None
    assert await store.revoked(1) == []

    at = T0 + dt.timedelta(days=3, microseconds=7)
    await store.revoke_certificate(1, BIG_SERIAL, "keyCompromise", at, event("revoke"))
    assert await store.revoked(1) == [(BIG_SERIAL, at, "keyCompromise", first.not_after)]
    revoked = await store.certificate(1, BIG_SERIAL)
    assert (revoked.status, revoked.revoked_at, revoked.revocation_reason) == (
        "revoked",
        at,
        "keyCompromise",
    )
    with pytest.raises(Conflict, match="already revoked"):
        await store.revoke_certificate(1, BIG_SERIAL, "superseded", at, event("again"))
    with pytest.raises(Conflict, match="unknown"):
        await store.revoke_certificate(1, 99, "superseded", at, event("unknown"))
    assert [e.event.action for e in await store.audit_log()][-1] == "revoke"


async def test_revoked_lists_by_revocation_time_then_by_recording_order(store):
    """Certificates revoked at one instant come out in the order they were recorded, on both
    databases (ORDER BY revoked_at, id): the CRL lists them in this order."""
    await with_generation(store)
    for serial in (0x50, 0x30, 0x40):
        await store.record_certificate(certificate_record(serial), event())
    await store.revoke_certificate(1, 0x40, "superseded", T0 + 9 * ONE, event("revoke"))
    for serial in (0x30, 0x50):
        await store.revoke_certificate(1, serial, "superseded", T0 + ONE, event("revoke"))

    assert [entry[0] for entry in await store.revoked(1)] == [0x50, 0x30, 0x40]


async def test_revoking_a_certificate_closes_its_application_in_the_same_transaction(store):
    await with_generation(store)
    holder = application_record(
        state="issued", certificate_generation=1, certificate_serial=format(BIG_SERIAL, "x")
    )
    other = application_record(
        "APP-0002", state="issued", certificate_generation=1, certificate_serial="7"
    )
    await store.create_application(holder, event("application.create"))
    await store.create_application(other, event("application.create"))
    await store.record_certificate(certificate_record(BIG_SERIAL), event("issue"))
    await store.record_certificate(certificate_record(7, spki="07" * 32), event("issue"))
    at = T0 + dt.timedelta(days=3)

    await store.revoke_certificate(1, BIG_SERIAL, "keyCompromise", at, event("revoke"))
    closed = await store.application("APP-0001")
    assert (closed.state, closed.closed_reason, closed.version) == (
        "revoked",
        "keyCompromise",
        holder.version + 1,
    )
    assert closed.updated_at == at
    assert (await store.application("APP-0002")).state == "issued"  # not its certificate
    last = (await store.audit_log())[-2:]
    assert [(e.event.action, e.event.target) for e in last] == [
        ("revoke", "thing/0"),
        ("application.revoke", "application/APP-0001"),
    ]
    assert last[1].event.details == {"from": "issued", "to": "revoked", "reason": "keyCompromise"}
    assert last[1].event.actor == last[0].event.actor
    assert await store.verify_audit_chain() == len(await store.audit_log())


async def test_crl_numbers_and_crls(backend, store):
    await store.add_generation(generation_record(1), event())
    await store.add_generation(generation_record(2), event())
    assert [await store.next_crl(1) for _ in range(2)] == [(1, []), (2, [])]
    assert await store.next_crl(2) == (3, [])  # one counter over every generation's key
    other = await backend.open()
    try:
        drawn = await asyncio.gather(
            *(s.next_crl(g) for _ in range(8) for g in (1, 2) for s in (store, other))
        )
    finally:
        await other.close()
    assert sorted(number for number, _ in drawn) == list(range(4, 36))

    assert await store.latest_crl(1) is None
    crls = [
        CRLRecord(number, generation, T0 + number * ONE, T0 + dt.timedelta(days=7), b"crl%d" % n)
        for n, (number, generation) in enumerate([(4, 1), (5, 2), (6, 1)])
    ]
    for crl in crls:
        await store.add_crl(crl)
    assert await store.latest_crl(1) == crls[2]
    assert await store.latest_crl(2) == crls[1]


async def test_a_crl_number_is_drawn_with_what_the_crl_lists(backend, store):
    """Revocations and CRLs at once through two stores (as two hosts): each CRL number comes
    with the revoked certificates read after it was drawn, so a higher number lists everything
    a lower one does (RFC 5280 §3.3) however the transactions interleave."""
    await with_generation(store)
    for serial in range(1, 25):
        await store.record_certificate(certificate_record(serial, spki=f"{serial:064x}"), event())
    other = await backend.open()

    async def revoke_then_list(serial: int) -> tuple[int, set[int]]:
        mine = (store, other)[serial % 2]
        await mine.revoke_certificate(1, serial, "superseded", T0 + ONE, event("revoke"))
        number, listed = await mine.next_crl(1)
        return number, {entry[0] for entry in listed}

    try:
        drawn = sorted(await asyncio.gather(*(revoke_then_list(s) for s in range(1, 25))))
    finally:
        await other.close()
    assert [number for number, _ in drawn] == list(range(1, 25))
    for (_, before), (number, after) in itertools.pairwise(drawn):
        assert before <= after, (number, before - after)
    assert drawn[-1][1] == set(range(1, 25))


# -- EST re-enrollment -----------------------------------------------------------------------------
def reenrollment_record(csr: bytes = b"csr-1", status: str = "pending") -> ReenrollmentRecord:
    return ReenrollmentRecord(
        id=0,
        previous_generation=1,
        previous_serial=format(BIG_SERIAL, "x"),
        csr_sha256=hashlib.sha256(csr).hexdigest(),
        csr_der=csr,
        profile="general",
        subscriber_id="hanako.yamada@example.com",
        status=status,
        created_at=T0,
    )


async def test_reenrollment_requests(store):
    await with_generation(store)
    first = await store.add_reenrollment(reenrollment_record(), event("reenroll.request"))
    second = await store.add_reenrollment(reenrollment_record(b"csr-2"), event("reenroll.request"))
    assert first.id != second.id
    assert first == dataclasses.replace(reenrollment_record(), id=first.id)
    with pytest.raises(Conflict, match="exists"):
        await store.add_reenrollment(reenrollment_record(), event("dup"))

    assert await store.reenrollment(1, format(BIG_SERIAL, "x"), first.csr_sha256) == first
    assert await store.reenrollment(1, "01", first.csr_sha256) is None
    assert await store.reenrollment_by_id(second.id) == second
    with pytest.raises(NotFound):
        await store.reenrollment_by_id(second.id + 100)

    decided = T0 + dt.timedelta(hours=3)
    await store.decide_reenrollment(second.id, "rejected", "bob", decided, event("reject"))
    with pytest.raises(Conflict, match="not pending"):
        await store.decide_reenrollment(second.id, "approved", "dave", decided, event("late"))
    rejected = await store.reenrollment_by_id(second.id)
    assert (rejected.status, rejected.decided_by, rejected.decided_at) == (
        "rejected",
        "bob",
        decided,
    )
    assert await store.reenrollments() == [first, rejected]
    assert await store.reenrollments("pending") == [first]

    certificate = certificate_record(77, subscriber_id="hanako.yamada@example.com")
    await store.complete_reenrollment(first.id, certificate, event("reenroll.issue"))
    issued = await store.reenrollment_by_id(first.id)
    assert (issued.status, issued.certificate_generation, issued.certificate_serial) == (
        "issued",
        1,
        "4d",
    )
    assert await store.certificate(1, 77) == certificate
    with pytest.raises(Conflict, match="already decided"):
        await store.complete_reenrollment(
            first.id, certificate_record(78, spki="78" * 32), event("twice")
        )
    with pytest.raises(NotFound):
        await store.certificate(1, 78)
    assert await store.verify_audit_chain() == 5


# -- ACME (RFC 8555) -------------------------------------------------------------------------------
def eab_key(kid: str = "kid-1", **overrides) -> AcmeEABKeyRecord:
    values = {
        "kid": kid,
        "key_sealed": b"\x01sealed-mac-key",
        "allowed": ("example.org", "192.0.2.0/24"),
        "lifetime_days": 90,
        "max_certificates": 3,
        "expires_at": T0 + dt.timedelta(days=30),
        "note": "web servers",
        "created_by": "root",
        "created_at": T0,
    }
    values.update(overrides)
    return AcmeEABKeyRecord(**values)


def acme_account(account_id: str = "acct-1", **overrides) -> AcmeAccountRecord:
    values = {
        "id": account_id,
        "thumbprint": f"thumb-{account_id}",
        "jwk": {"crv": "P-256", "kty": "EC", "x": "xx", "y": "yy"},
        "contact": ("mailto:ops@example.org",),
        "status": "valid",
        "kind": "tls-server",
        "eab_kid": "kid-1",
        "eab_alg": "HS256",
        "application_id": None,
        "terms_agreed": True,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return AcmeAccountRecord(**values)


def authorization(authz_id: str, value: str = "www.example.org", **overrides) -> AcmeAuthzRecord:
    values = {
        "id": authz_id,
        "account_id": "acct-1",
        "identifier_type": "dns",
        "identifier_value": value,
        "wildcard": False,
        "status": "pending",
        "expires_at": T0 + dt.timedelta(days=7),
        "created_at": T0,
        "challenges": (
            AcmeChallengeRecord(f"{authz_id}-h", authz_id, "http-01", "tok-h", "pending", T0),
            AcmeChallengeRecord(f"{authz_id}-d", authz_id, "dns-01", "tok-d", "pending", T0),
        ),
    }
    values.update(overrides)
    return AcmeAuthzRecord(**values)


def order(order_id: str, authz_ids: tuple[str, ...], **overrides) -> AcmeOrderRecord:
    values = {
        "id": order_id,
        "account_id": "acct-1",
        "status": "pending",
        "expires_at": T0 + dt.timedelta(days=7),
        "identifiers": tuple(("dns", f"{a}.example.org") for a in authz_ids),
        "profile": "tls-server",
        "created_at": T0,
        "updated_at": T0,
        "authz_ids": authz_ids,
    }
    values.update(overrides)
    return AcmeOrderRecord(**values)


async def test_acme_nonces_are_redeemed_once(backend, store):
    await store.acme_add_nonce("n1", T0 + ONE)
    await store.acme_add_nonce("n2", T0 - ONE)
    await store.acme_add_nonce("n3", T0 - ONE)
    used = await asyncio.gather(store.acme_use_nonce("n1", T0), store.acme_use_nonce("n1", T0))
    assert sorted(used) == [False, True]
    assert await store.acme_use_nonce("never-issued", T0) is False
    assert await store.acme_use_nonce("n2", T0) is False  # expired
    assert await store.acme_prune_nonces(T0) == 2
    assert await store.acme_prune_nonces(T0) == 0


async def test_acme_nonces_added_in_a_batch(store):
    await store.acme_add_nonces(["b1", "b2", "b3"], T0 + ONE)
    assert await store.acme_use_nonce("b2", T0)
    assert await store.acme_use_nonce("b1", T0)
    assert not await store.acme_use_nonce("b2", T0)
    assert await store.acme_prune_nonces(T0 + ONE) == 1  # b3, expired by then


async def test_acme_nonces_are_shared_on_postgresql_and_per_process_on_sqlite(backend, store):
    """PostgreSQL: every process redeems any nonce once (serve --workers N). SQLite: one process
    per file, whose nonces live in its memory: another store on the file (a restarted server)
    knows none of them, and no nonce is written to the file."""
    await store.acme_add_nonces(["s1", "s2"], T0 + ONE)
    other = await backend.open()
    try:
        if backend.name == "postgresql":
            used = await asyncio.gather(
                store.acme_use_nonce("s1", T0), other.acme_use_nonce("s1", T0)
            )
            assert sorted(used) == [False, True]
            assert await other.acme_use_nonce("s2", T0)
            assert not await store.acme_use_nonce("s2", T0)
        else:
            assert not await other.acme_use_nonce("s1", T0)
            assert await store.acme_use_nonce("s1", T0)
            assert backend.execute_raw(
                "SELECT count(*) FROM sqlite_master WHERE name = 'acme_nonces'"
            ) == [(0,)]
    finally:
        await other.close()


async def test_acme_eab_keys(store):
    await store.acme_add_eab_key(eab_key(), event("eab.add"))
    bare = eab_key("kid-2", max_certificates=None, expires_at=None, note=None, created_at=T0 + ONE)
    await store.acme_add_eab_key(bare, event("eab.add"))
    with pytest.raises(Conflict, match="kid-1 exists"):
        await store.acme_add_eab_key(eab_key(), event("dup"))
    assert await store.acme_eab_key("kid-1") == eab_key()
    assert await store.acme_eab_keys() == [eab_key(), bare]
    with pytest.raises(NotFound):
        await store.acme_eab_key("kid-9")

    await store.acme_disable_eab_key("kid-2", T0 + 5 * ONE, event("eab.disable"))
    await store.acme_disable_eab_key("kid-2", T0 + 9 * ONE, event("eab.disable"))
    assert (await store.acme_eab_key("kid-2")).disabled_at == T0 + 5 * ONE
    with pytest.raises(NotFound):
        await store.acme_disable_eab_key("kid-9", T0, event("eab.disable"))
    assert await store.verify_audit_chain() == 4


async def test_acme_accounts_bind_an_eab_key_once(backend, store):
    await store.acme_add_eab_key(eab_key(), event("eab.add"))
    await store.acme_add_eab_key(eab_key("kid-2"), event("eab.add"))
    await store.acme_disable_eab_key("kid-2", T0, event("eab.disable"))
    other = await backend.open()
    try:
        results = await asyncio.gather(
            store.acme_create_account(acme_account("acct-1"), event("acct"), operator_key=True),
            other.acme_create_account(
                acme_account("acct-2", thumbprint="t2"), event("acct"), operator_key=True
            ),
            return_exceptions=True,
        )
    finally:
        await other.close()
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "NoneType"], results
    winner = "acct-1" if results[0] is None else "acct-2"
    key = await store.acme_eab_key("kid-1")
    assert (key.used_at, key.account_id) == (T0, winner)

    with pytest.raises(Conflict, match="used, disabled or unknown"):
        await store.acme_create_account(
            acme_account("acct-3", thumbprint="t3", eab_kid="kid-2"), event("x"), True
        )
    personal = acme_account(
        "acct-p", thumbprint="tp", kind="personal", eab_kid="ENROL-1", contact=()
    )
    await store.acme_create_account(personal, event("acct"), operator_key=False)
    with pytest.raises(Conflict, match="binding was used before"):
        await store.acme_create_account(
            dataclasses.replace(personal, id="acct-q", thumbprint="tq"), event("x"), False
        )
    with pytest.raises(Conflict, match="already has an account"):
        await store.acme_create_account(
            dataclasses.replace(personal, id="acct-r", eab_kid="ENROL-2"), event("x"), False
        )
    assert await store.acme_account("acct-p") == personal
    assert await store.acme_account_by_thumbprint("tp") == personal
    assert await store.acme_account_by_thumbprint("nobody") is None
    with pytest.raises(NotFound):
        await store.acme_account("acct-9")

    changed = await store.acme_update_contact(
        "acct-p", ["mailto:new@example.org"], False, T0 + ONE, event("acct.update")
    )
    assert (changed.contact, changed.terms_agreed, changed.updated_at) == (
        ("mailto:new@example.org",),
        False,
        T0 + ONE,
    )
    unchanged = await store.acme_update_contact("acct-p", None, None, T0 + 2 * ONE, event("x"))
    assert (unchanged.contact, unchanged.terms_agreed) == (("mailto:new@example.org",), False)
    rekeyed = await store.acme_change_key(
        "acct-p", {"kty": "OKP", "x": "zz"}, "tp2", T0 + 2 * ONE, event("acct.key")
    )
    assert (rekeyed.jwk, rekeyed.thumbprint) == ({"kty": "OKP", "x": "zz"}, "tp2")
    with pytest.raises(Conflict, match="already has an account"):
        taken = (await store.acme_account(winner)).thumbprint
        await store.acme_change_key("acct-p", {"kty": "OKP"}, taken, T0, event("x"))
    with pytest.raises(NotFound):
        await store.acme_update_contact("acct-9", [], None, T0, event("x"))
    with pytest.raises(NotFound):
        await store.acme_change_key("acct-9", {"kty": "OKP"}, "tp9", T0, event("x"))


async def test_acme_orders_authorizations_and_challenges(store):
    await with_generation(store)
    await store.acme_add_eab_key(eab_key(), event("eab.add"))
    await store.acme_create_account(acme_account(), event("acct"), operator_key=True)
    # One authorization made ahead (newAuthz), one with the order.
    await store.acme_add_authorization(authorization("az-2", "b.example.org"), event("authz"))
    first = order("ord-1", ("az-1", "az-2"), created_at=T0 + ONE)
    await store.acme_add_order(first, [authorization("az-1", "a.example.org")], event("order"))
    second = order("ord-2", (), replaces="aki.serial", created_at=T0 + 2 * ONE)
    await store.acme_add_order(second, [], event("order"))

    stored = await store.acme_order("ord-1")
    assert stored.authz_ids == ("az-2", "az-1")  # in creation order
    assert dataclasses.replace(stored, seq=0, authz_ids=first.authz_ids) == first
    page = await store.acme_orders("acct-1", 0, 1)
    assert [o.id for o in page] == ["ord-1"]
    assert [o.id for o in await store.acme_orders("acct-1", page[0].seq, 10)] == ["ord-2"]
    assert [o.id for o in await store.acme_orders_replacing("aki.serial")] == ["ord-2"]
    assert await store.acme_count_orders("acct-1", T0) == (2, T0 + ONE)
    assert await store.acme_count_orders("acct-1", T0 + 5 * ONE) == (0, None)
    with pytest.raises(NotFound):
        await store.acme_order("ord-9")

    authz = await store.acme_authorization("az-1")
    assert [c.id for c in authz.challenges] == ["az-1-h", "az-1-d"]
    challenge = await store.acme_update_challenge(
        "az-1-h", "pending", "processing", T0 + ONE, audit=event("challenge")
    )
    assert (challenge.status, challenge.validated_at) == ("processing", None)
    with pytest.raises(Conflict, match="no longer pending"):
        await store.acme_update_challenge("az-1-h", "pending", "processing", T0)
    valid = await store.acme_update_challenge(
        "az-1-h", "processing", "valid", T0 + 2 * ONE, authz_status="valid"
    )
    assert (valid.status, valid.validated_at) == ("valid", T0 + 2 * ONE)
    assert (await store.acme_authorization("az-1")).status == "valid"
    failed = await store.acme_update_challenge(
        "az-2-d", "pending", "invalid", T0, error={"type": "urn:x", "detail": "no TXT"},
        authz_status="invalid",
    )  # fmt: skip
    assert failed.error == {"type": "urn:x", "detail": "no TXT"}
    assert (await store.acme_challenge("az-2-d")) == failed
    with pytest.raises(NotFound):
        await store.acme_challenge("nope")
    with pytest.raises(NotFound):
        await store.acme_authorization("nope")

    reuse = await store.acme_reusable_authorization("acct-1", "dns", "a.example.org", False, T0)
    assert reuse is not None and reuse.id == "az-1"
    late = T0 + dt.timedelta(days=8)
    assert (
        await store.acme_reusable_authorization("acct-1", "dns", "a.example.org", False, late)
        is None
    )
    assert (
        await store.acme_reusable_authorization("acct-1", "dns", "a.example.org", True, T0) is None
    )
    with pytest.raises(Conflict, match="no longer pending"):
        await store.acme_update_authorization("az-1", "pending", "deactivated")
    gone = await store.acme_update_authorization("az-1", "valid", "deactivated", event("authz"))
    assert gone.status == "deactivated" and len(gone.challenges) == 2

    ready = await store.acme_move_order("ord-1", "pending", "ready", T0 + ONE)
    assert (ready.status, ready.updated_at) == ("ready", T0 + ONE)
    with pytest.raises(Conflict, match="no longer pending"):
        await store.acme_move_order("ord-1", "pending", "ready", T0 + ONE)
    finalized = await store.acme_finalize_order(
        "ord-1", "ready", "processing", b"\x30csr", T0 + 2 * ONE, event("order.finalize")
    )
    assert (finalized.status, finalized.csr_der) == ("processing", b"\x30csr")
    assert await store.acme_await_reenrollment("ord-1", "processing", 7, T0 + 2 * ONE) == (
        dataclasses.replace(finalized, reenrollment_id=7)
    )
    certificate = certificate_record(0xACE, subscriber_id=None)
    issued = await store.acme_issue_order(
        "ord-1", "processing", "valid", 1, 0xACE, T0 + 3 * ONE, certificate=certificate
    )
    assert (issued.status, issued.csr_der, issued.updated_at) == ("valid", b"\x30csr", T0 + 3 * ONE)
    assert await store.certificate(1, 0xACE) == certificate
    assert (await store.acme_order_by_certificate(1, 0xACE)).id == "ord-1"
    assert await store.acme_order_by_certificate(1, 0xACF) is None
    assert await store.acme_count_certificates("kid-1") == 1
    assert await store.acme_count_certificates("kid-9") == 0
    invalid = await store.acme_move_order(
        "ord-2", "pending", "invalid", T0, error={"type": "urn:y"}
    )
    assert invalid.error == {"type": "urn:y"}
    assert await store.verify_audit_chain() == 9


async def test_acme_validation_readies_the_orders_it_completes(store):
    """A challenge's validation is one transaction: the challenge, its authorization and each
    unexpired pending order whose authorizations are then all valid (RFC 8555 §7.1.6)."""
    await store.acme_add_eab_key(eab_key(), event("eab.add"))
    await store.acme_create_account(acme_account(), event("acct"), operator_key=True)
    both = order("ord-1", ("az-1", "az-2"))
    await store.acme_add_order(
        both, [authorization("az-1", "a.example.org"), authorization("az-2", "b.example.org")],
        event("order"),
    )  # fmt: skip
    await store.acme_add_order(order("ord-2", ("az-1",)), [], event("order"))
    late = order("ord-3", ("az-2",), expires_at=T0 + ONE)
    await store.acme_add_order(late, [], event("order"))
    found = await store.acme_authorization_of_challenge("az-1-d")
    assert found == await store.acme_authorization("az-1")
    with pytest.raises(NotFound):
        await store.acme_authorization_of_challenge("nope")

    await store.acme_update_challenge("az-1-h", "pending", "processing", T0)
    await store.acme_update_challenge(
        "az-1-h", "processing", "valid", T0 + ONE, authz_status="valid", order_status="ready"
    )
    assert (await store.acme_order("ord-1")).status == "pending"  # az-2 is still pending
    ready = await store.acme_order("ord-2")
    assert (ready.status, ready.updated_at) == ("ready", T0 + ONE)
    await store.acme_update_challenge("az-2-h", "pending", "processing", T0)
    await store.acme_update_challenge(
        "az-2-h", "processing", "valid", T0 + 2 * ONE, authz_status="valid", order_status="ready"
    )
    assert (await store.acme_order("ord-1")).status == "ready"
    assert (await store.acme_order("ord-3")).status == "pending"  # expired: left to refresh


async def test_acme_account_deactivation_cancels_pending_operations(store):
    """RFC 8555 §7.3.6: one transaction deactivates the account, makes its pending, ready and
    processing orders invalid and its pending authorizations deactivated (§7.1.6), audited
    per object; settled orders and authorizations, and other accounts, are left alone."""
    await store.acme_add_eab_key(eab_key(), event("eab.add"))
    await store.acme_add_eab_key(eab_key("kid-2"), event("eab.add"))
    await store.acme_create_account(acme_account(), event("acct"), operator_key=True)
    other = acme_account("acct-2", thumbprint="t2", eab_kid="kid-2")
    await store.acme_create_account(other, event("acct"), operator_key=True)
    await store.acme_add_authorization(authorization("az-pre", "pre.example.org"), event("authz"))
    orders = {
        "ord-p": ("pending", authorization("az-p", "p.example.org")),
        "ord-r": ("ready", authorization("az-r", "r.example.org", status="valid")),
        "ord-w": ("processing", authorization("az-w", "w.example.org", status="valid")),
        "ord-v": ("valid", authorization("az-v", "v.example.org", status="valid")),
        "ord-i": ("invalid", authorization("az-i", "i.example.org", status="invalid")),
    }
    for n, (order_id, (status, authz)) in enumerate(orders.items()):
        error = {"type": "urn:old"} if status == "invalid" else None
        made = order(order_id, (authz.id,), status=status, error=error, created_at=T0 + n * ONE)
        await store.acme_add_order(made, [authz], event("order"))
    theirs = order("ord-x", ("az-x",), account_id="acct-2")
    await store.acme_add_order(theirs, [authorization("az-x", account_id="acct-2")], event("o"))
    logged = len(await store.audit_log())

    problem = {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "deactivated"}
    deactivation = AuditEvent(
        T0 + ONE, "acme:acct-1", "acme.account.deactivate", "acme/account/acct-1"
    )
    account = await store.acme_deactivate_account(
        "acct-1", "deactivated", problem, deactivation, contact=[]
    )

    assert (account.status, account.contact, account.updated_at) == ("deactivated", (), T0 + ONE)
    for order_id, (status, _) in orders.items():
        stored = await store.acme_order(order_id)
        if status in ("pending", "ready", "processing"):
            assert (stored.status, stored.error, stored.updated_at) == (
                "invalid",
                problem,
                T0 + ONE,
            )
        else:
            assert (stored.status, stored.updated_at) == (status, T0), order_id
    assert (await store.acme_order("ord-i")).error == {"type": "urn:old"}
    statuses = {a: (await store.acme_authorization(a)).status for a in
                ("az-pre", "az-p", "az-r", "az-w", "az-v", "az-i", "az-x")}  # fmt: skip
    assert statuses == {
        "az-pre": "deactivated",  # a pre-authorization is a pending operation too
        "az-p": "deactivated",
        "az-r": "valid",
        "az-w": "valid",
        "az-v": "valid",
        "az-i": "invalid",
        "az-x": "pending",
    }
    assert (await store.acme_order("ord-x")).status == "pending"
    assert (await store.acme_account("acct-2")).status == "valid"

    entries = (await store.audit_log())[logged:]
    assert [(e.event.action, e.event.target, e.event.details.get("from")) for e in entries] == [
        ("acme.account.deactivate", "acme/account/acct-1", None),
        ("acme.order.cancel", "acme/order/ord-p", "pending"),
        ("acme.order.cancel", "acme/order/ord-r", "ready"),
        ("acme.order.cancel", "acme/order/ord-w", "processing"),
        ("acme.authorization.deactivate", "acme/authz/az-pre", "pending"),
        ("acme.authorization.deactivate", "acme/authz/az-p", "pending"),
    ]
    assert {(e.event.actor, e.event.at) for e in entries} == {("acme:acct-1", T0 + ONE)}
    assert await store.verify_audit_chain() == logged + 6

    # Once only: the account is no longer valid; nothing is written.
    with pytest.raises(Conflict, match="deactivated, not valid"):
        await store.acme_deactivate_account("acct-1", "deactivated", problem, deactivation)
    with pytest.raises(NotFound):
        await store.acme_deactivate_account("acct-9", "deactivated", problem, deactivation)
    assert len(await store.audit_log()) == logged + 6
    assert (await store.acme_account("acct-2")).status == "valid"


async def test_audit_entries_filter_and_page_newest_first(store):
    for n in range(1, 7):
        await store.append_audit(
            dataclasses.replace(event(n=n), target=f"application/APP-{n % 2}", actor=f"op{n % 3}")
        )
    page = await store.audit_entries(target="application/APP-0", limit=2)
    assert [e.seq for e in page] == [6, 4]
    assert [e.seq for e in await store.audit_entries(target="application/APP-0", before_seq=4)] == [
        2
    ]
    assert [e.seq for e in await store.audit_entries(actor="op1")] == [4, 1]
    assert [e.seq for e in await store.audit_entries("application/APP-1", "op2")] == [5]
    newest = await store.audit_entries(limit=1)
    assert newest == (await store.audit_log(after_seq=5))

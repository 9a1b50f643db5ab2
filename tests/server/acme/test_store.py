"""The ACME part of the store (migration 0006, the acme_* methods of the Store protocol) on the
embedded SQLite store: the single-use and compare-and-set rules the ACME server relies on.
(The PostgreSQL store mirrors them; tests/server/test_store_contract.py is the shared suite.)"""

from __future__ import annotations

import datetime as dt

import pytest

from jitsuin.server.storage import (
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallengeRecord,
    AcmeEABKeyRecord,
    AcmeOrderRecord,
    AuditEvent,
    Conflict,
    NotFound,
)
from jitsuin.server.storage import sqlite as sqlite_store
from jitsuin.server.storage.sqlite import SQLiteStore

T0 = dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=dt.UTC)


def audit(action: str = "test") -> AuditEvent:
    return AuditEvent(T0, "test", action, "acme/test")


@pytest.fixture
async def store(tmp_path):
    opened = await SQLiteStore.open(tmp_path / "store.db")
    yield opened
    await opened.close()


def account(account_id: str, thumbprint: str, kid: str) -> AcmeAccountRecord:
    return AcmeAccountRecord(
        id=account_id,
        thumbprint=thumbprint,
        jwk={"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        contact=("mailto:a@example.com",),
        status="valid",
        kind="tls-server",
        eab_kid=kid,
        eab_alg="HS256",
        application_id=None,
        terms_agreed=True,
        created_at=T0,
        updated_at=T0,
    )


async def test_nonces_are_single_use_and_expire(store):
    await store.acme_add_nonce("n1", T0 + dt.timedelta(hours=1))
    await store.acme_add_nonce("n2", T0 + dt.timedelta(seconds=1))
    assert await store.acme_use_nonce("n1", T0)
    assert not await store.acme_use_nonce("n1", T0)
    assert not await store.acme_use_nonce("n2", T0 + dt.timedelta(seconds=2))
    assert not await store.acme_use_nonce("never", T0)
    await store.acme_add_nonce("n3", T0)
    assert await store.acme_prune_nonces(T0 + dt.timedelta(seconds=5)) == 2


async def test_the_nonces_held_in_memory_are_bounded_oldest_first(store, monkeypatch):
    monkeypatch.setattr(sqlite_store, "MAX_NONCES", 3)
    await store.acme_add_nonces(["a", "b"], T0 + dt.timedelta(hours=1))
    await store.acme_add_nonces(["c", "d", "e"], T0 + dt.timedelta(hours=1))
    assert [await store.acme_use_nonce(v, T0) for v in "abcde"] == [False] * 2 + [True] * 3


async def test_eab_key_binds_one_account(store):
    key = AcmeEABKeyRecord(
        kid="kid-1",
        key_sealed=b"sealed",
        allowed=("example.org", "192.0.2.0/24"),
        lifetime_days=90,
        max_certificates=2,
        expires_at=None,
        note=None,
        created_by="bob",
        created_at=T0,
    )
    await store.acme_add_eab_key(key, audit())
    with pytest.raises(Conflict):
        await store.acme_add_eab_key(key, audit())
    await store.acme_create_account(account("a1", "t1", "kid-1"), audit(), operator_key=True)
    with pytest.raises(Conflict):  # the key is used
        await store.acme_create_account(account("a2", "t2", "kid-1"), audit(), operator_key=True)
    with pytest.raises(Conflict):  # an unknown operator key
        await store.acme_create_account(account("a3", "t3", "kid-x"), audit(), operator_key=True)
    with pytest.raises(Conflict):  # the thumbprint has an account
        await store.acme_create_account(account("a4", "t1", "APP-1"), audit(), operator_key=False)
    used = await store.acme_eab_key("kid-1")
    assert used.used_at == T0 and used.account_id == "a1" and used.allowed == key.allowed
    assert (await store.acme_account_by_thumbprint("t1")).id == "a1"
    await store.acme_disable_eab_key("kid-1", T0, audit())
    assert (await store.acme_eab_key("kid-1")).disabled_at == T0
    with pytest.raises(NotFound):
        await store.acme_disable_eab_key("kid-x", T0, audit())


async def test_key_change_conflict_and_account_update(store):
    await store.acme_create_account(account("a1", "t1", "K1"), audit(), operator_key=False)
    await store.acme_create_account(account("a2", "t2", "K2"), audit(), operator_key=False)
    with pytest.raises(Conflict):
        await store.acme_change_key("a1", {"kty": "OKP"}, "t2", T0, audit())
    updated = await store.acme_deactivate_account(
        "a1", "deactivated", {"type": "urn:x"}, audit(), contact=()
    )
    assert updated.status == "deactivated" and updated.contact == ()


async def test_orders_authorizations_and_challenges(store):
    await store.acme_create_account(account("a1", "t1", "K1"), audit(), operator_key=False)
    challenge = AcmeChallengeRecord("c1", "z1", "http-01", "tok", "pending", T0)
    authz = AcmeAuthzRecord(
        "z1",
        "a1",
        "dns",
        "example.org",
        False,
        "pending",
        T0 + dt.timedelta(days=30),
        T0,
        (challenge,),
    )
    order = AcmeOrderRecord(
        id="o1",
        account_id="a1",
        status="pending",
        expires_at=T0 + dt.timedelta(days=7),
        identifiers=(("dns", "example.org"),),
        profile="tls-server",
        created_at=T0,
        updated_at=T0,
        authz_ids=("z1",),
    )
    await store.acme_add_order(order, [authz], audit())
    got = await store.acme_order("o1")
    assert got.authz_ids == ("z1",) and got.identifiers == (("dns", "example.org"),)
    assert got.seq > 0
    with pytest.raises(Conflict):
        await store.acme_move_order("o1", "ready", "processing", T0)
    moved = await store.acme_update_challenge("c1", "pending", "processing", T0)
    assert moved.status == "processing"
    with pytest.raises(Conflict):
        await store.acme_update_challenge("c1", "pending", "processing", T0)
    done = await store.acme_update_challenge("c1", "processing", "valid", T0, authz_status="valid")
    assert done.validated_at == T0
    assert (await store.acme_authorization("z1")).status == "valid"
    reuse = await store.acme_reusable_authorization("a1", "dns", "example.org", False, T0)
    assert reuse is not None and reuse.id == "z1"
    assert await store.acme_reusable_authorization("a1", "dns", "example.org", True, T0) is None
    assert await store.acme_count_orders("a1", T0 - dt.timedelta(hours=1)) == (1, T0)
    assert [o.id for o in await store.acme_orders("a1", 0, 10)] == ["o1"]
    assert await store.acme_orders("a1", got.seq, 10) == []
    assert await store.acme_count_certificates("K1") == 0

"""The account behind a kid, as request verification finds it (server/acme/requests.py): where
several server processes share the store (PostgreSQL), a deactivation or key change made by one
is refused by every other from the next request on (RFC 8555 §7.3.6, §7.3.5); where one process
has the store to itself (SQLite), the record is cached and follows that process's own changes.
The two verifiers over two store connections stand for two ``serve --workers`` processes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from jitsuin.ca.clock import SystemClock
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.jose import jwk_of, sign_flattened
from jitsuin.server.acme.nonces import Nonces
from jitsuin.server.acme.paths import Urls
from jitsuin.server.acme.requests import RequestVerifier
from jitsuin.server.config import AcmeConfig
from jitsuin.server.storage import AcmeAccountRecord, AuditEvent, Store
from jitsuin.server.storage.postgres import PostgresStore
from jitsuin.server.storage.sqlite import SQLiteStore

BASE = "https://ca.example/acme"
URL = f"{BASE}/new-order"
NOW = dt.datetime.now(dt.UTC)


def _verifier(store: Store) -> RequestVerifier:
    return RequestVerifier(store, Nonces(store, SystemClock(), AcmeConfig()), Urls(BASE))


async def _request(verifier: RequestVerifier, key: Any, account_id: str) -> AcmeAccountRecord:
    """A kid-signed newOrder body through ``verifier``; the account it was verified with."""
    header = {"nonce": await verifier.nonces.new(), "url": URL, "kid": f"{BASE}/acct/{account_id}"}
    body = sign_flattened(header, b"{}", key, "ES256")
    verified = await verifier.verify(json.dumps(body).encode(), URL)
    return verified.owner()


async def _account(store: Store, key: Any) -> AcmeAccountRecord:
    jwk = jwk_of(key.public_key())
    record = AcmeAccountRecord(
        id="acct-cache-1",
        thumbprint=jwk.thumbprint(),
        jwk=jwk.to_json(),
        contact=(),
        status="valid",
        kind="tls-server",
        eab_kid="kid-cache",
        eab_alg="HS256",
        application_id=None,
        terms_agreed=True,
        created_at=NOW,
        updated_at=NOW,
    )
    await store.acme_create_account(record, _audit("acme.account.create"), operator_key=False)
    return record


def _audit(action: str) -> AuditEvent:
    return AuditEvent(NOW, "acme:acct-cache-1", action, "acme/account/acct-cache-1")


async def _deactivate(store: Store) -> AcmeAccountRecord:
    return await store.acme_deactivate_account(
        "acct-cache-1",
        "deactivated",
        {"type": "urn:ietf:params:acme:error:unauthorized"},
        _audit("acme.account.deactivate"),
    )


async def test_a_deactivation_by_one_worker_is_refused_by_the_other(postgres_schema):
    first = await PostgresStore.open(postgres_schema.url)
    second = await PostgresStore.open(postgres_schema.url)
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        await _account(first, key)
        one, other = _verifier(first), _verifier(second)
        assert (await _request(one, key, "acct-cache-1")).status == "valid"
        assert (await _request(other, key, "acct-cache-1")).status == "valid"

        one.remember(await _deactivate(first))  # as Accounts does after its change
        for verifier in (one, other):
            with pytest.raises(AcmeError) as refused:
                await _request(verifier, key, "acct-cache-1")
            assert refused.value.type is ErrorType.UNAUTHORIZED
            assert "deactivated" in refused.value.detail
    finally:
        await first.close()
        await second.close()


async def test_a_key_change_by_one_worker_retires_the_old_key_on_the_other(postgres_schema):
    first = await PostgresStore.open(postgres_schema.url)
    second = await PostgresStore.open(postgres_schema.url)
    try:
        old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        await _account(first, old)
        other = _verifier(second)
        assert (await _request(other, old, "acct-cache-1")).id == "acct-cache-1"
        jwk = jwk_of(new.public_key())
        await first.acme_change_key(
            "acct-cache-1",
            jwk.to_json(),
            jwk.thumbprint(),
            NOW,
            _audit("acme.account.key_change"),
        )
        with pytest.raises(AcmeError):
            await _request(other, old, "acct-cache-1")
        assert (await _request(other, new, "acct-cache-1")).id == "acct-cache-1"
    finally:
        await first.close()
        await second.close()


async def test_a_process_local_store_caches_the_account_and_follows_its_changes(tmp_path):
    store = await SQLiteStore.open(tmp_path / "cache.db")
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        await _account(store, key)
        verifier = _verifier(store)
        seen = await _request(verifier, key, "acct-cache-1")
        # Cached: a write behind this process's back (none happens: the serve-lock) is not seen.
        await store.acme_update_contact(
            "acct-cache-1", ["mailto:a@example.org"], None, NOW, _audit("acme.account.update")
        )
        assert await _request(verifier, key, "acct-cache-1") == seen
        # Every change through Accounts is remembered: the next request sees it.
        verifier.remember(await _deactivate(store))
        with pytest.raises(AcmeError) as refused:
            await _request(verifier, key, "acct-cache-1")
        assert refused.value.type is ErrorType.UNAUTHORIZED
    finally:
        await store.close()

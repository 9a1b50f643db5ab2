"""Replay nonces (RFC 8555 §6.5, §7.2): made a batch at a time, redeemed once by any process."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import secrets
from collections.abc import Mapping
from typing import Any

from jitsuin.ca.clock import Clock
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.jose import JOSEError, b64u_decode, b64u_encode
from jitsuin.server.config import AcmeConfig
from jitsuin.server.storage import Store

_NONCE_PRUNE_EVERY = 500
_NONCE_BATCH = 64  # nonces stored per write


class Nonces:
    def __init__(self, store: Store, clock: Clock, config: AcmeConfig) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self._made = 0
        self._pool: list[str] = []  # stored, not yet handed out
        self._refill: asyncio.Future[None] | None = None
        self._pool_made = dt.datetime.min.replace(tzinfo=dt.UTC)
        # A nonce leaves the pool with at least 9/10 of its lifetime left.
        self._pool_age = config.nonce_lifetime / 10

    def close(self) -> None:
        if self._refill is not None:
            self._refill.cancel()

    async def new(self) -> str:
        """A fresh nonce. They are stored a batch at a time (one write, not one per response)
        and handed out while the batch is young; any process redeems any of them."""
        now = self.clock.now()
        while not self._pool or now - self._pool_made > self._pool_age:
            if self._refill is None:  # one batch at a time; the others wait for it
                self._refill = asyncio.ensure_future(self._fill(now))
            refill = self._refill
            try:
                await asyncio.shield(refill)
            finally:
                if self._refill is refill and refill.done():
                    self._refill = None
        value = self._pool.pop()
        self._made += 1
        if self._made % _NONCE_PRUNE_EVERY == 0:
            await self.store.acme_prune_nonces(now)
        return value

    async def _fill(self, now: dt.datetime) -> None:
        values = [b64u_encode(secrets.token_bytes(16)) for _ in range(_NONCE_BATCH)]
        await self.store.acme_add_nonces(values, now + self.config.nonce_lifetime)
        self._pool, self._pool_made = values, now

    async def use(self, header: Mapping[str, Any]) -> None:
        """Redeem the nonce of a JWS protected header, or refuse with badNonce (§6.5)."""
        value = header.get("nonce")
        if not isinstance(value, str) or not value:
            raise AcmeError(ErrorType.BAD_NONCE, "the JWS has no nonce (§6.5)")
        try:
            b64u_decode(value, "the nonce")
        except JOSEError:
            raise AcmeError(ErrorType.BAD_NONCE, "the nonce is not base64url (§6.5.1)") from None
        if not await self.store.acme_use_nonce(value, self.clock.now()):
            raise AcmeError(ErrorType.BAD_NONCE, "the nonce is unknown, used or expired")
        share = self.config.test.reject_nonce_share
        if share and random.random() < share:  # noqa: S311 (test mode, not security)
            raise AcmeError(ErrorType.BAD_NONCE, "test mode: a valid nonce rejected on purpose")

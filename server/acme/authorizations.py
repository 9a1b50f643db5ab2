"""Authorizations and challenges (RFC 8555 §7.5, §7.4.1): reading them (with lazy expiry),
deactivation, pre-authorization, and the validations run in the background by the VA."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from jitsuin.ca.clock import Clock
from jitsuin.protocol.acme import challenges as challenge_types
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.messages import AuthorizationObject, ChallengeObject, Identifier
from jitsuin.protocol.acme.problems import AcmeError
from jitsuin.protocol.acme.status import (
    CHALLENGE,
    DEACTIVATABLE_AUTHORIZATIONS,
    EXPIRABLE_AUTHORIZATIONS,
    AuthzStatus,
    ChallengeStatus,
    Event,
    next_status,
)
from jitsuin.server.acme import policy
from jitsuin.server.acme.common import PERSONAL, Reply, Verified, known_id, new_id, not_found
from jitsuin.server.acme.paths import Urls
from jitsuin.server.acme.requests import RequestVerifier
from jitsuin.server.acme.transitions import move_authorization, move_challenge
from jitsuin.server.acme.va import ValidationAuthority
from jitsuin.server.config import AcmeConfig
from jitsuin.server.storage import (
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallengeRecord,
    AuditEvent,
    Conflict,
    NotFound,
    Store,
)

log = logging.getLogger("jitsuin.acme")

_STALE_VALIDATION = dt.timedelta(seconds=60)


class Authorizations:
    def __init__(
        self, store: Store, clock: Clock, config: AcmeConfig, urls: Urls, requests: RequestVerifier
    ) -> None:
        self.store = store
        self.requests = requests  # the accounts, cached where the store is process-local
        self.clock = clock
        self.config = config
        self.urls = urls
        self.va = ValidationAuthority(config)
        self._tasks: dict[str, asyncio.Task[AcmeChallengeRecord | None]] = {}

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def new_record(
        self,
        account: AcmeAccountRecord,
        identifier: Identifier,
        wildcard: bool,
        status: AuthzStatus,
        now: dt.datetime,
    ) -> AcmeAuthzRecord:
        """A new authorization (not yet stored) with a challenge of each type the identifier
        offers; one valid from the start has none."""
        authz_id = new_id()
        types = [] if status == AuthzStatus.VALID else challenge_types.offered(identifier, wildcard)
        return AcmeAuthzRecord(
            id=authz_id,
            account_id=account.id,
            identifier_type=identifier.type,
            identifier_value=identifier.value,
            wildcard=wildcard,
            status=status.value,
            expires_at=now + self.config.authorization_lifetime,
            created_at=now,
            challenges=tuple(
                AcmeChallengeRecord(
                    id=new_id(),
                    authz_id=authz_id,
                    type=kind,
                    token=challenge_types.new_token(),
                    status=ChallengeStatus.PENDING.value,
                    updated_at=now,
                )
                for kind in types
            ),
        )

    async def load(self, authz_id: str) -> AcmeAuthzRecord:
        """The authorization, expired if its time is up (§7.1.6); a validation of it that a
        stopped process left is started again."""
        return await self._loaded(await self.store.acme_authorization(authz_id))

    async def _loaded(self, authz: AcmeAuthzRecord) -> AcmeAuthzRecord:
        """``load``'s work on an authorization just read."""
        now = self.clock.now()
        if authz.status in EXPIRABLE_AUTHORIZATIONS and now > authz.expires_at:
            with contextlib.suppress(Conflict):
                authz = await move_authorization(self.store, authz, Event.EXPIRE)
        for challenge in authz.challenges:
            self._resume_stale(challenge, now)
        return authz

    def _resume_stale(self, challenge: AcmeChallengeRecord, now: dt.datetime) -> None:
        """A validation left in processing by a process that stopped is started again."""
        stale = _STALE_VALIDATION + dt.timedelta(seconds=self.config.test.validation_delay_seconds)
        if (
            challenge.status == ChallengeStatus.PROCESSING
            and challenge.id not in self._tasks
            and now - challenge.updated_at > stale
        ):
            self._start_validation(challenge.id)

    def _challenge_object(self, challenge: AcmeChallengeRecord) -> ChallengeObject:
        return ChallengeObject(
            type=challenge.type,
            url=self.urls.challenge(challenge.id),
            status=challenge.status,
            token=challenge.token,
            validated=challenge.validated_at,
            error=challenge.error,
        )

    def _authz_json(self, authz: AcmeAuthzRecord) -> dict[str, Any]:
        challenges = list(authz.challenges)
        if authz.status == AuthzStatus.VALID:
            # §7.1.4: a valid authorization lists the challenge that was validated.
            challenges = [c for c in challenges if c.status == ChallengeStatus.VALID]
        return AuthorizationObject(
            identifier=Identifier(authz.identifier_type, authz.identifier_value),
            status=authz.status,
            expires=authz.expires_at,
            challenges=[self._challenge_object(c) for c in challenges],
            wildcard=authz.wildcard,
        ).to_json()

    def _authz_retry(self, authz: AcmeAuthzRecord) -> int | None:
        if any(c.status == ChallengeStatus.PROCESSING for c in authz.challenges):
            return self.config.retry_after_seconds  # §8.2
        return None

    async def authorization(self, verified: Verified, authz_id: str) -> Reply:
        try:
            authz = await self.load(known_id(authz_id))
        except NotFound:
            raise not_found("authorization") from None
        verified.own(authz.account_id, "authorization")
        if not verified.post_as_get:
            payload = verified.payload()
            if not isinstance(payload, dict) or payload.get("status") != "deactivated":
                raise messages.malformed(
                    'an authorization takes POST-as-GET or {"status": "deactivated"} (§7.5.2)'
                )
            if authz.status not in DEACTIVATABLE_AUTHORIZATIONS:
                raise messages.malformed(f"the authorization is {authz.status} (§7.5.2)")
            now = self.clock.now()
            authz = await move_authorization(
                self.store,
                authz,
                Event.DEACTIVATE,
                AuditEvent(
                    now,
                    f"acme:{authz.account_id}",
                    "acme.authorization.deactivate",
                    f"acme/authz/{authz.id}",
                ),
            )
        return Reply(self._authz_json(authz), retry_after=self._authz_retry(authz))

    async def new_authz(self, verified: Verified) -> Reply:
        """§7.4.1 pre-authorization."""
        account = verified.owner()
        identifier = messages.parse_new_authz(verified.payload())
        now = self.clock.now()
        if account.kind == PERSONAL:
            app = await policy.application(self.store, account)
            policy.personal_identifiers([identifier], Identifier("email", app.email))
            status = AuthzStatus.VALID
        else:
            key = await policy.eab_policy(self.store, account)
            policy.policy_identifiers(key, [identifier])
            status = AuthzStatus.PENDING
        authz = self.new_record(account, identifier, False, status, now)
        await self.store.acme_add_authorization(
            authz,
            AuditEvent(
                now,
                f"acme:{account.id}",
                "acme.authorization.create",
                f"acme/authz/{authz.id}",
                {"identifier": identifier.to_json()},
            ),
        )
        return Reply(self._authz_json(authz), status=201, location=self.urls.authz(authz.id))

    async def challenge(self, verified: Verified, challenge_id: str) -> Reply:
        try:
            authz = await self._loaded(
                await self.store.acme_authorization_of_challenge(known_id(challenge_id))
            )
        except NotFound:
            raise not_found("challenge") from None
        challenge = _challenge_in(authz, challenge_id)
        verified.own(authz.account_id, "challenge")
        if not verified.post_as_get:
            payload = verified.payload()
            if not isinstance(payload, dict):
                raise messages.malformed("a challenge response is a JSON object: {} (§7.5.1)")
            if challenge.status == ChallengeStatus.PENDING:
                if authz.status != AuthzStatus.PENDING:
                    raise messages.malformed(f"the authorization is {authz.status}")
                with contextlib.suppress(Conflict):
                    challenge = await move_challenge(
                        self.store, challenge, Event.RESPOND, self.clock.now()
                    )
                    self._start_validation(challenge.id)
                settled = await self._settled(challenge.id)
                challenge = settled or await self.store.acme_challenge(challenge.id)
        # §8.2: a challenge still being validated tells the client when to look again.
        processing = challenge.status == ChallengeStatus.PROCESSING
        retry = self.config.retry_after_seconds if processing else None
        return Reply(
            self._challenge_object(challenge).to_json(),
            links=[(self.urls.authz(authz.id), "up")],  # §7.5.1
            retry_after=retry,
        )

    async def _settled(self, challenge_id: str) -> AcmeChallengeRecord | None:
        """Wait up to ``challenge_wait_seconds`` for this process's validation of the challenge:
        a quick one is answered with its outcome (§7.5.1: the response is the challenge as it is
        then), so the client's first poll of the authorization finds it settled instead of
        waiting out Retry-After. The validation goes on when the wait ends, or when the client
        goes away meanwhile."""
        task = self._tasks.get(challenge_id)
        if task is None or self.config.challenge_wait_seconds <= 0:
            return None
        with contextlib.suppress(TimeoutError):
            # The challenge as the validation left it (None: settled elsewhere, or not yet).
            return await asyncio.wait_for(asyncio.shield(task), self.config.challenge_wait_seconds)
        return None

    def _start_validation(self, challenge_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._validate(challenge_id))
        self._tasks[challenge_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(challenge_id, None))

    async def _validate(self, challenge_id: str) -> AcmeChallengeRecord | None:
        """Validate in the background (§7.5.1: the server answers at once and validates
        asynchronously), then record the outcome on the challenge and its authorization; the
        challenge as recorded (None when another process settled it, or on an error)."""
        try:
            if self.config.test.validation_delay_seconds:
                await asyncio.sleep(self.config.test.validation_delay_seconds)
            authz = await self.store.acme_authorization_of_challenge(known_id(challenge_id))
            challenge = _challenge_in(authz, challenge_id)
            if challenge.status != ChallengeStatus.PROCESSING:
                return None  # settled by another process meanwhile
            account = await self.requests.account(authz.account_id)
            identifier = Identifier(authz.identifier_type, authz.identifier_value)
            key_auth = challenge_types.key_authorization(challenge.token, account.thumbprint)
            error: AcmeError | None = None
            if not self.config.test.validation_always_succeeds:
                try:
                    await self.va.validate(challenge.type, identifier, challenge.token, key_auth)
                    if identifier.type == "dns" and self.config.check_caa:
                        # RFC 8657 §3, §4: CAA parameters may restrict issuance to an account
                        # (its URL, as the client knows it: the kid) and to challenge types.
                        await self.va.check_caa(
                            identifier.value,
                            authz.wildcard,
                            account_uri=self.urls.account(account.id),
                            method=challenge.type,
                        )
                except AcmeError as exc:
                    error = exc
            now = self.clock.now()
            event = Event.SUCCEED if error is None else Event.FAIL
            status = next_status(CHALLENGE, ChallengeStatus.PROCESSING, event)
            return await move_challenge(
                self.store,
                challenge,
                event,
                now,
                error=error.to_json() if error else None,
                audit=AuditEvent(
                    now,
                    "acme-va",
                    f"acme.challenge.{status.value}",
                    f"acme/authz/{authz.id}",
                    {
                        "type": challenge.type,
                        "identifier": identifier.to_json(),
                        "error": error.detail if error else None,
                    },
                ),
            )
        except asyncio.CancelledError:
            raise
        except Conflict:
            return None
        except Exception:
            log.exception("validation of challenge %s failed unexpectedly", challenge_id)
            return None


def _challenge_in(authz: AcmeAuthzRecord, challenge_id: str) -> AcmeChallengeRecord:
    """The challenge of ``authz`` read with it (``acme_authorization_of_challenge``)."""
    return next(c for c in authz.challenges if c.id == challenge_id)

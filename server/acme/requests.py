"""Request verification (RFC 8555 §6.2-§6.5): the flattened JWS, its url and nonce, the key it is
signed with (an account's, parsed once and cached, or a jwk) and the account's status.

The account behind a kid is read on every request where processes share the store: another
process may have deactivated it or changed its key, and §7.3.6 refuses every request of a
deactivated account (the parsed key is still cached, by thumbprint: a changed key is a new
entry). Where this process has the store to itself (``Store.acme_process_local``: SQLite), the
account record is cached too: only this process changes it, and each change
(``Accounts``: update, deactivation, key change) puts the new record in the cache
(``remember``), so a deactivated account is refused from the next request on, as above."""

from __future__ import annotations

import enum
from typing import Any

from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.acme.status import AccountStatus
from jitsuin.protocol.jose import (
    ALGORITHMS,
    JWK,
    JOSEError,
    JOSEErrorKind,
    algorithm,
    parse_flattened,
    parse_jwk,
    verify_signature,
)
from jitsuin.server.acme.common import Verified, is_id, unauthorized
from jitsuin.server.acme.nonces import Nonces
from jitsuin.server.acme.paths import Urls
from jitsuin.server.storage import AcmeAccountRecord, NotFound, Store

_KEY_CACHE_SIZE = 4096  # parsed account keys kept
_ACCOUNT_CACHE_SIZE = 4096  # account records kept where the store is process-local


class JwkMode(enum.Enum):
    """Which key a request may be signed with (§6.2): the account's kid, or a jwk."""

    NEVER = "never"  # kid only
    ALLOWED = "allowed"  # kid or jwk (revokeCert, §7.6: the certificate's key)
    REQUIRED = "required"  # jwk only (newAccount, §7.3)


def bad_algorithm(detail: str) -> AcmeError:
    # §6.2: badSignatureAlgorithm with the list of algorithms the server accepts.
    return AcmeError(
        ErrorType.BAD_SIGNATURE_ALGORITHM, detail, extensions={"algorithms": list(ALGORITHMS)}
    )


def from_jose(exc: JOSEError) -> AcmeError:
    if exc.kind is JOSEErrorKind.BAD_ALGORITHM:
        return bad_algorithm(exc.message)
    if exc.kind is JOSEErrorKind.BAD_KEY:
        return AcmeError(ErrorType.BAD_PUBLIC_KEY, exc.message)
    return messages.malformed(exc.message)


class RequestVerifier:
    def __init__(self, store: Store, nonces: Nonces, urls: Urls) -> None:
        self.store = store
        self.nonces = nonces
        self.urls = urls
        self._keys: dict[str, JWK] = {}  # account thumbprint -> its parsed key
        # account id -> its record, only where the store is process-local (module docstring).
        self._accounts: dict[str, AcmeAccountRecord] | None = (
            {} if store.acme_process_local else None
        )
        # Bumped by every change this process makes to an account: a read that began before
        # the change must not put the record it found in the cache after it (``account``).
        self._changes = 0

    async def verify(self, body: bytes, url: str, *, jwk: JwkMode = JwkMode.NEVER) -> Verified:
        try:
            jws = parse_flattened(body)
        except JOSEError as exc:
            raise from_jose(exc) from None
        header = jws.protected
        try:
            alg = algorithm(header.get("alg")).name
        except JOSEError as exc:
            raise from_jose(exc) from None
        has_jwk, has_kid = "jwk" in header, "kid" in header
        if has_jwk == has_kid:
            raise messages.malformed("the protected header needs exactly one of jwk and kid (§6.2)")
        if has_jwk and jwk is JwkMode.NEVER:
            raise messages.malformed("this request must be signed with the account's kid (§6.2)")
        if has_kid and jwk is JwkMode.REQUIRED:
            raise messages.malformed("newAccount is signed with a jwk, not a kid (§6.2)")
        sent_url = header.get("url")
        if not isinstance(sent_url, str):
            raise messages.malformed("the protected header has no url (§6.4)")
        if sent_url != url:
            # §6.4: "the server MUST reject the request as unauthorized"
            raise unauthorized(f"the JWS url {sent_url!r} is not the URL requested ({url})")
        await self.nonces.use(header)
        account = None
        if has_jwk:
            try:
                key = parse_jwk(header["jwk"])
            except JOSEError as exc:
                raise from_jose(exc) from None
            jwk_alg = header["jwk"].get("alg") if isinstance(header["jwk"], dict) else None
            if jwk_alg is not None and jwk_alg != alg:
                raise bad_algorithm(f"the jwk is for {jwk_alg!r}, the JWS uses {alg!r}")
        else:
            account = await self._account_by_kid(header["kid"])
            key = self.account_key(account)
        try:
            verify_signature(jws, key)
        except JOSEError as exc:
            raise from_jose(exc) from None
        if account is not None and account.status != AccountStatus.VALID:
            # §7.3.6: no request authorized by a deactivated account's key is accepted.
            raise unauthorized(f"the account is {account.status}")
        return Verified(jws, account, key if has_jwk else None)

    def account_key(self, account: AcmeAccountRecord) -> JWK:
        """The account's public key, parsed once per key and not on every request (josepy's
        JWK parsing showed in profiles); a changed key (key-change) is parsed again."""
        key = self._keys.get(account.thumbprint)
        if key is None or key.members != account.jwk:
            key = parse_jwk(account.jwk)
            if len(self._keys) >= _KEY_CACHE_SIZE:
                del self._keys[next(iter(self._keys))]  # the oldest
            self._keys[account.thumbprint] = key
        return key

    async def _account_by_kid(self, kid: Any) -> AcmeAccountRecord:
        prefix = self.urls.account_prefix()
        if not isinstance(kid, str) or not kid.startswith(prefix):
            raise AcmeError(
                ErrorType.ACCOUNT_DOES_NOT_EXIST, "the kid is not an account URL of this server"
            )
        account_id = kid.removeprefix(prefix)
        if not is_id(account_id):
            raise AcmeError(ErrorType.ACCOUNT_DOES_NOT_EXIST, "the kid is not an account URL")
        try:
            account = await self.account(account_id)
        except NotFound:
            raise AcmeError(ErrorType.ACCOUNT_DOES_NOT_EXIST, "there is no such account") from None
        # step-ca's check: the kid is the account URL verbatim.
        if kid != self.urls.account(account.id):
            raise AcmeError(ErrorType.ACCOUNT_DOES_NOT_EXIST, "the kid is not the account URL")
        return account

    async def account(self, account_id: str) -> AcmeAccountRecord:
        """The account as it is now (from the cache where the store is process-local);
        NotFound if there is none."""
        if self._accounts is None:
            return await self.store.acme_account(account_id)
        found = self._accounts.get(account_id)
        if found is not None:
            return found
        changes = self._changes
        found = await self.store.acme_account(account_id)
        if changes == self._changes:  # no change by this process while it was read
            self._cache(found)
        return found

    def remember(self, account: AcmeAccountRecord) -> None:
        """``account`` as this process just wrote it (or found it after a refused write)."""
        self._changes += 1
        if self._accounts is not None:
            self._cache(account)

    def _cache(self, account: AcmeAccountRecord) -> None:
        assert self._accounts is not None
        self._accounts.pop(account.id, None)
        if len(self._accounts) >= _ACCOUNT_CACHE_SIZE:
            del self._accounts[next(iter(self._accounts))]  # the least recently stored
        self._accounts[account.id] = account

"""The ACME server's decisions (RFC 8555), over the store, the RA and the CA. The handlers are a
thin aiohttp layer over this module; the wire formats live in ``jitsuin.protocol``.

Two kinds of account, told apart by their External Account Binding (§7.3.4):
- ``personal``: kid = an application's enrollment ID, MAC key = the one e-mailed with the
  download PIN (FLOW.md). Its only identifier is ``{"type": "email", "value": <vetted address>}``
  (RFC 8823 identifier type), valid because the RA vetted it; finalize redeems the application
  through the RA's own transaction (consuming the PIN too). Later orders are renewals, which go
  through the RA's re-enrollment policy and may wait for an operator (``processing``).
- ``tls-server``: kid and MAC key made by an operator with a policy (allowed DNS suffixes and IP
  networks, certificate lifetime, how many certificates); dns and ip identifiers validated by
  http-01, dns-01 or tls-alpn-01, with CAA checked (RFC 8659).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import random
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.csr import VerifiedCSR, verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import generation_by_key_id, issuing_generation
from jitsuin.ca.issuance import check_public_key, profile_named
from jitsuin.ca.profiles import PROFILES
from jitsuin.ca.revocation import Reason
from jitsuin.protocol.acme import challenges as challenge_types
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.messages import (
    AccountObject,
    AuthorizationObject,
    ChallengeObject,
    Directory,
    Identifier,
    OrderObject,
)
from jitsuin.protocol.acme.problems import AcmeError, ErrorType, Subproblem
from jitsuin.protocol.acme.status import (
    ACCOUNT,
    CHALLENGE,
    AccountStatus,
    AuthzStatus,
    ChallengeStatus,
    Event,
    OrderStatus,
    next_status,
)
from jitsuin.protocol.jose import (
    ALGORITHMS,
    JWK,
    MAC_ALGORITHMS,
    FlattenedJWS,
    JOSEError,
    JOSEErrorKind,
    algorithm,
    b64u_decode,
    b64u_encode,
    parse_eab,
    parse_flattened,
    parse_jwk,
    verify_eab,
    verify_signature,
)
from jitsuin.protocol.untrusted import InputError, decimal
from jitsuin.server.acme.va import ValidationAuthority
from jitsuin.server.authority import Authority
from jitsuin.server.config import AcmeConfig
from jitsuin.server.error_map import refusal
from jitsuin.server.est.service import Reenrollment
from jitsuin.server.ra import credentials
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.service import Body, RAService, contradicts, credential_details
from jitsuin.server.ra.workflow import State
from jitsuin.server.storage import (
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallengeRecord,
    AcmeEABKeyRecord,
    AcmeOrderRecord,
    ApplicationRecord,
    AuditEvent,
    Conflict,
    Credential,
    NotFound,
    Operator,
    Outcome,
)

log = logging.getLogger("jitsuin.acme")

PERSONAL = "personal"
TLS_SERVER = "tls-server"
_EAB_PURPOSE = "acme-eab-key"
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_NONCE_PRUNE_EVERY = 500
_NONCE_BATCH = 64  # nonces stored per write
_KEY_CACHE_SIZE = 4096  # parsed account keys kept
_STALE_VALIDATION = dt.timedelta(seconds=60)
_ARI_RETRY_AFTER = 6 * 3600
_EAB_MAX_DAYS = 3650  # an operator's EAB key expires within ten years (expiresInDays)
HELP_URL_PATH = "/docs/acme"  # rateLimited carries Link rel="help" (§6.6)

# RFC 5280 §5.3.1 reason codes a subscriber may give in revokeCert (§7.6), by ca/revocation.py.
REVOCATION_REASONS: Mapping[int, str] = {r.code: r.value for r in Reason if r.subscriber_may_give}

PROFILE_DESCRIPTIONS: Mapping[str, str] = {
    "general": "Personal S/MIME and document-signing certificate (S/MIME BR IV multipurpose); "
    "needs an application vetted by the RA",
    "document-manager": "Personal certificate for registered document information managers; "
    "needs an application vetted by the RA",
    "tls-server": "TLS server certificate (serverAuth) for dns and ip identifiers, under an "
    "operator-issued EAB key",
}

# The ACME error type of each CA refusal: a CSR or profile the client may fix, or the CA's own
# trouble (serverInternal). Status, Retry-After and detail: server/error_map.py.
_CA_ERRORS: Mapping[Kind, ErrorType] = {
    Kind.BAD_CSR: ErrorType.BAD_CSR,
    Kind.BAD_SIGNATURE: ErrorType.BAD_CSR,
    Kind.WEAK_ALGORITHM: ErrorType.BAD_CSR,
    Kind.BAD_PUBLIC_KEY: ErrorType.BAD_CSR,
    Kind.KEY_REUSED: ErrorType.BAD_CSR,
    Kind.BAD_SUBJECT: ErrorType.BAD_CSR,
    Kind.UNKNOWN_PROFILE: ErrorType.INVALID_PROFILE,
    Kind.CUTOFF: ErrorType.SERVER_INTERNAL,
    Kind.LINT: ErrorType.SERVER_INTERNAL,
    Kind.LINT_UNAVAILABLE: ErrorType.SERVER_INTERNAL,
    Kind.BAD_KEY_FILE: ErrorType.SERVER_INTERNAL,
    Kind.BAD_CONFIG: ErrorType.SERVER_INTERNAL,
}

_RA_ERRORS: Mapping[RAKind, ErrorType] = {
    RAKind.INVALID: ErrorType.BAD_CSR,
    RAKind.MALFORMED: ErrorType.MALFORMED,
    RAKind.NOT_FOUND: ErrorType.UNAUTHORIZED,
    RAKind.ILLEGAL_TRANSITION: ErrorType.UNAUTHORIZED,
    RAKind.CONFLICT: ErrorType.UNAUTHORIZED,
    RAKind.FORBIDDEN: ErrorType.UNAUTHORIZED,
    RAKind.UNAUTHORIZED: ErrorType.UNAUTHORIZED,
    RAKind.LOCKED: ErrorType.UNAUTHORIZED,
    RAKind.EXPIRED: ErrorType.UNAUTHORIZED,
    RAKind.PENDING: ErrorType.UNAUTHORIZED,
    RAKind.THROTTLED: ErrorType.RATE_LIMITED,
}


def from_ca(exc: CAError) -> AcmeError:
    """The CA's refusal as server/error_map.py decides it, with the kind's ACME error type."""
    decided = refusal(exc)
    return AcmeError(
        _CA_ERRORS[exc.kind],
        decided.detail,
        status=decided.status,
        headers=tuple(decided.headers.items()),
    )


def from_ra(exc: RAError) -> AcmeError:
    return AcmeError(_RA_ERRORS[exc.kind], exc.message)


def _new_id() -> str:
    return secrets.token_urlsafe(16)


def _known_id(value: str) -> str:
    """A resource id from a URL path, or NotFound for a text no id of ours can be (U+0000,
    which PostgreSQL text cannot hold, included), before the store sees it."""
    if not _ID.fullmatch(value):
        raise NotFound(f"no resource {value[:40]!r}")
    return value


def _unauthorized(detail: str) -> AcmeError:
    return AcmeError(ErrorType.UNAUTHORIZED, detail)


def _not_found(what: str) -> AcmeError:
    return AcmeError(ErrorType.MALFORMED, f"there is no such {what}", status=404)


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose JWS passed every check of §6.2-§6.5."""

    jws: FlattenedJWS
    account: AcmeAccountRecord | None  # requests signed with kid
    jwk: JWK | None  # requests signed with jwk (newAccount, revokeCert by the certificate key)

    @property
    def post_as_get(self) -> bool:
        return self.jws.payload_b64 == ""

    def payload(self) -> Any:
        if self.post_as_get:
            raise messages.malformed("this resource takes a JSON payload, not POST-as-GET")
        try:
            return self.jws.payload_json()
        except JOSEError as exc:  # RFC 8555 §6.7: a payload that is not JSON is malformed
            raise messages.malformed(exc.message) from None

    def owner(self) -> AcmeAccountRecord:
        assert self.account is not None
        return self.account


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler sends: a JSON body (or raw bytes), a status and ACME headers."""

    body: Any
    status: int = 200
    location: str | None = None
    links: Sequence[tuple[str, str]] = ()  # (url, rel)
    retry_after: int | None = None
    content_type: str = "application/json"


class AcmeService:
    def __init__(
        self,
        authority: Authority,
        ra: RAService,
        reenrollment: Reenrollment,
        config: AcmeConfig,
        retry_after_approval: int,
    ) -> None:
        self.authority = authority
        self.store = authority.store
        self.clock = authority.clock
        self.ra = ra
        self.reenrollment = reenrollment
        self.config = config
        self.base = config.base_url.rstrip("/")
        self.va = ValidationAuthority(config)
        self.retry_after_approval = retry_after_approval
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._issuing: set[str] = set()
        self._nonces_made = 0
        self._nonce_pool: list[str] = []  # stored, not yet handed out
        self._nonce_refill: asyncio.Future[None] | None = None
        self._nonce_pool_made = dt.datetime.min.replace(tzinfo=dt.UTC)
        # A nonce leaves the pool with at least 9/10 of its lifetime left.
        self._nonce_pool_age = config.nonce_lifetime / 10
        self._keys: dict[str, JWK] = {}  # account thumbprint -> its parsed key

    async def close(self) -> None:
        if self._nonce_refill is not None:
            self._nonce_refill.cancel()
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- URLs ----------------------------------------------------------------------------------
    def url(self, *parts: str) -> str:
        return "/".join((self.base, *parts))

    def account_url(self, account_id: str) -> str:
        return self.url("acct", account_id)

    def order_url(self, order_id: str) -> str:
        return self.url("order", order_id)

    def authz_url(self, authz_id: str) -> str:
        return self.url("authz", authz_id)

    def challenge_url(self, challenge_id: str) -> str:
        return self.url("chall", challenge_id)

    def certificate_url(self, order_id: str, alternate: int = 0) -> str:
        return self.url("cert", order_id, *([str(alternate)] if alternate else []))

    def external_url(self, raw_path: str) -> str:
        """The URL a request was sent to as the client sees it: the configured external base,
        then the path after /acme exactly as received (§6.4: no re-encoding)."""
        return self.base + raw_path.removeprefix("/acme")

    def directory(self) -> dict[str, Any]:
        urls = {
            "newNonce": self.url("new-nonce"),
            "newAccount": self.url("new-account"),
            "newOrder": self.url("new-order"),
            "newAuthz": self.url("new-authz"),
            "revokeCert": self.url("revoke-cert"),
            "keyChange": self.url("key-change"),
            "renewalInfo": self.url("renewal-info"),  # RFC 9773 §4
        }
        return Directory(
            urls=urls,
            terms_of_service=self.config.terms_of_service,
            website=self.config.website,
            caa_identities=self.config.caa_identities,
            external_account_required=True,
            profiles=PROFILE_DESCRIPTIONS,
        ).to_json()

    def help_url(self) -> str:
        return self.config.website or self.base.rsplit("/acme", 1)[0] + HELP_URL_PATH

    # -- nonces (§6.5, §7.2) --------------------------------------------------------------------
    async def new_nonce(self) -> str:
        """A fresh nonce. They are stored a batch at a time (one write, not one per response)
        and handed out while the batch is young; any process redeems any of them."""
        now = self.clock.now()
        while not self._nonce_pool or now - self._nonce_pool_made > self._nonce_pool_age:
            if self._nonce_refill is None:  # one batch at a time; the others wait for it
                self._nonce_refill = asyncio.ensure_future(self._refill_nonces(now))
            refill = self._nonce_refill
            try:
                await asyncio.shield(refill)
            finally:
                if self._nonce_refill is refill and refill.done():
                    self._nonce_refill = None
        value = self._nonce_pool.pop()
        self._nonces_made += 1
        if self._nonces_made % _NONCE_PRUNE_EVERY == 0:
            await self.store.acme_prune_nonces(now)
        return value

    async def _refill_nonces(self, now: dt.datetime) -> None:
        values = [b64u_encode(secrets.token_bytes(16)) for _ in range(_NONCE_BATCH)]
        await self.store.acme_add_nonces(values, now + self.config.nonce_lifetime)
        self._nonce_pool, self._nonce_pool_made = values, now

    async def _use_nonce(self, header: Mapping[str, Any]) -> None:
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

    # -- request verification (§6.2-§6.5) ---------------------------------------------------------
    async def verify(self, body: bytes, url: str, *, jwk: str = "never") -> Verified:
        """``jwk``: "never" (kid only), "allowed" (revokeCert) or "required" (newAccount)."""
        try:
            jws = parse_flattened(body)
        except JOSEError as exc:
            raise self._jose(exc) from None
        header = jws.protected
        try:
            alg = algorithm(header.get("alg")).name
        except JOSEError as exc:
            raise self._jose(exc) from None
        has_jwk, has_kid = "jwk" in header, "kid" in header
        if has_jwk == has_kid:
            raise messages.malformed("the protected header needs exactly one of jwk and kid (§6.2)")
        if has_jwk and jwk == "never":
            raise messages.malformed("this request must be signed with the account's kid (§6.2)")
        if has_kid and jwk == "required":
            raise messages.malformed("newAccount is signed with a jwk, not a kid (§6.2)")
        sent_url = header.get("url")
        if not isinstance(sent_url, str):
            raise messages.malformed("the protected header has no url (§6.4)")
        if sent_url != url:
            # §6.4: "the server MUST reject the request as unauthorized"
            raise _unauthorized(f"the JWS url {sent_url!r} is not the URL requested ({url})")
        await self._use_nonce(header)
        account = None
        if has_jwk:
            try:
                key = parse_jwk(header["jwk"])
            except JOSEError as exc:
                raise self._jose(exc) from None
            jwk_alg = header["jwk"].get("alg") if isinstance(header["jwk"], dict) else None
            if jwk_alg is not None and jwk_alg != alg:
                raise self._bad_algorithm(f"the jwk is for {jwk_alg!r}, the JWS uses {alg!r}")
        else:
            account = await self._account_by_kid(header["kid"])
            key = self._account_key(account)
        try:
            verify_signature(jws, key)
        except JOSEError as exc:
            raise self._jose(exc) from None
        if account is not None and account.status != AccountStatus.VALID:
            # §7.3.6: no request authorized by a deactivated account's key is accepted.
            raise _unauthorized(f"the account is {account.status}")
        return Verified(jws, account, key if has_jwk else None)

    def _account_key(self, account: AcmeAccountRecord) -> JWK:
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
        prefix = self.url("acct", "")
        if not isinstance(kid, str) or not kid.startswith(prefix):
            raise AcmeError(
                ErrorType.ACCOUNT_DOES_NOT_EXIST, "the kid is not an account URL of this server"
            )
        account_id = kid.removeprefix(prefix)
        if not _ID.fullmatch(account_id):
            raise AcmeError(ErrorType.ACCOUNT_DOES_NOT_EXIST, "the kid is not an account URL")
        try:
            account = await self.store.acme_account(account_id)
        except NotFound:
            raise AcmeError(ErrorType.ACCOUNT_DOES_NOT_EXIST, "there is no such account") from None
        # step-ca's check: the kid is the account URL verbatim.
        if kid != self.account_url(account.id):
            raise AcmeError(ErrorType.ACCOUNT_DOES_NOT_EXIST, "the kid is not the account URL")
        return account

    def _bad_algorithm(self, detail: str) -> AcmeError:
        # §6.2: badSignatureAlgorithm with the list of algorithms the server accepts.
        return AcmeError(
            ErrorType.BAD_SIGNATURE_ALGORITHM, detail, extensions={"algorithms": list(ALGORITHMS)}
        )

    def _jose(self, exc: JOSEError) -> AcmeError:
        if exc.kind is JOSEErrorKind.BAD_ALGORITHM:
            return self._bad_algorithm(exc.message)
        if exc.kind is JOSEErrorKind.BAD_KEY:
            return AcmeError(ErrorType.BAD_PUBLIC_KEY, exc.message)
        return messages.malformed(exc.message)

    def _own(self, verified: Verified, account_id: str, what: str) -> None:
        if verified.owner().id != account_id:
            raise _unauthorized(f"this {what} belongs to another account")

    # -- accounts (§7.3) --------------------------------------------------------------------------
    def account_object(self, account: AcmeAccountRecord) -> dict[str, Any]:
        return AccountObject(
            status=account.status,
            contact=account.contact,
            orders_url=self.url("acct", account.id, "orders"),
            terms_of_service_agreed=account.terms_agreed,
        ).to_json()

    def _account_reply(self, account: AcmeAccountRecord, status: int = 200) -> Reply:
        return Reply(
            self.account_object(account), status=status, location=self.account_url(account.id)
        )

    async def new_account(self, verified: Verified, source: str) -> Reply:
        request = messages.parse_new_account(verified.payload())
        assert verified.jwk is not None
        thumbprint = verified.jwk.thumbprint()
        existing = await self.store.acme_account_by_thumbprint(thumbprint)
        if existing is not None:
            # §7.3.1: the key has an account: 200 with its Location, whatever else was asked.
            if existing.status != AccountStatus.VALID:
                raise _unauthorized(f"the account of this key is {existing.status}")
            return self._account_reply(existing)
        if request.only_return_existing:
            raise AcmeError(ErrorType.ACCOUNT_DOES_NOT_EXIST, "no account has this key (§7.3.1)")
        if self.config.terms_of_service and not request.terms_of_service_agreed:
            raise AcmeError(
                ErrorType.USER_ACTION_REQUIRED,
                "agree to the terms of service (termsOfServiceAgreed: true)",
                headers=[("Link", f'<{self.config.terms_of_service}>;rel="terms-of-service"')],
            )
        if request.external_account_binding is None:
            raise AcmeError(
                ErrorType.EXTERNAL_ACCOUNT_REQUIRED,
                "this server needs an external account binding (§7.3.4): the enrollment ID and "
                "HMAC key from the PIN e-mail, or a key from the CA's operators",
            )
        try:
            eab = parse_eab(
                request.external_account_binding,
                verified.jws.protected["jwk"],
                self.url("new-account"),
            )
        except JOSEError as exc:
            if exc.kind is JOSEErrorKind.BAD_ALGORITHM:
                raise AcmeError(
                    ErrorType.BAD_SIGNATURE_ALGORITHM,
                    exc.message,
                    extensions={"algorithms": list(MAC_ALGORITHMS)},
                ) from None
            raise messages.malformed(f"externalAccountBinding: {exc.message}") from None
        now = self.clock.now()
        kind, application_id, kid = await self._check_binding(eab.kid, eab, now, source)
        record = AcmeAccountRecord(
            id=_new_id(),
            thumbprint=thumbprint,
            jwk=verified.jwk.to_json(),
            contact=request.contact or (),
            status=AccountStatus.VALID.value,
            kind=kind,
            eab_kid=kid,
            eab_alg=eab.alg,
            application_id=application_id,
            terms_agreed=request.terms_of_service_agreed,
            created_at=now,
            updated_at=now,
        )
        audit = AuditEvent(
            now,
            f"acme:{record.id}",
            "acme.account.create",
            f"acme/account/{record.id}",
            {"kind": kind, "eabKid": kid, "thumbprint": thumbprint, "application": application_id},
        )
        try:
            await self.store.acme_create_account(record, audit, operator_key=kind == TLS_SERVER)
        except Conflict as exc:
            raced = await self.store.acme_account_by_thumbprint(thumbprint)
            if raced is not None:
                return self._account_reply(raced)
            raise _unauthorized(f"the external account binding cannot be used: {exc}") from None
        return self._account_reply(record, 201)

    def _mac_key(self, sealed: bytes) -> bytes:
        return b64u_decode(self.ra.open_eab_key(sealed).decode(), "EAB key")

    async def _check_binding(
        self, kid: str, eab: Any, now: dt.datetime, source: str
    ) -> tuple[str, str | None, str]:
        """(kind, application id, stored kid) of a binding whose MAC verifies (§7.3.4)."""
        try:
            key = await self.store.acme_eab_key(kid)
        except NotFound:
            key = None
        if key is not None:
            if key.disabled_at is not None or key.used_at is not None:
                raise _unauthorized("this external account binding key is used or disabled")
            if key.expires_at is not None and now > key.expires_at:
                raise _unauthorized("this external account binding key has expired")
            mac = self.ra.keyring.open(_EAB_PURPOSE, key.key_sealed)
            if not verify_eab(eab, mac):
                raise _unauthorized("the external account binding MAC does not verify")
            return TLS_SERVER, None, key.kid
        # A personal binding: kid = enrollment ID, MAC key from the PIN e-mail (FLOW.md).
        enrollment_id = credentials.grouped(credentials.normalise(kid))
        try:
            app = await self.store.application_by_enrollment_id(enrollment_id)
        except NotFound:
            self.ra.refused("unknown_eab_kid", "no EAB key or application has this kid")
            raise _unauthorized("unknown external account binding key id") from None
        if self.ra.eab_key(app) is None:
            raise _unauthorized(
                f"the application is {app.state}: its external account binding key is not "
                "usable (it is made at approval and spent with the certificate)"
            )
        if app.pin_expires_at is not None and now > app.pin_expires_at:
            raise _unauthorized("the PIN and its external account binding key have expired")
        # The MAC key shares the PIN's attempt count, counted before it is compared (see
        # RAService.try_credential): the PIN and the EAB key together get max_attempts wrong tries.
        attempt = await self.ra.try_credential(
            app,
            Credential.EAB_KEY,
            source,
            lambda sealed: sealed is not None and verify_eab(eab, self._mac_key(sealed)),
            f"applicant:{enrollment_id}:acme",
            "redeem.wrong_eab",
        )
        if attempt.outcome in (Outcome.LOCKED, Outcome.THROTTLED):
            # Not compared: counted and logged, not audited (server/refusals.py).
            what = f"a try of the EAB key of {app.id} was not compared"
            self.ra.refused(f"credential_{attempt.outcome.value}", what)
        if attempt.outcome is Outcome.LOCKED:
            raise _unauthorized("too many wrong tries: ask the CA to send a new PIN")
        if attempt.outcome is Outcome.THROTTLED:
            # RFC 8555 §6.6: rateLimited with Retry-After.
            raise AcmeError(
                ErrorType.RATE_LIMITED,
                "a wrong external account binding was tried from this address just now: wait "
                "before trying again",
                headers=[
                    ("Retry-After", str(self.ra.retry_after(attempt))),
                    ("Link", f'<{self.help_url()}>;rel="help"'),
                ],
            )
        if attempt.outcome is Outcome.WRONG:
            raise _unauthorized("the external account binding MAC does not verify")
        return PERSONAL, app.id, enrollment_id

    async def account(self, verified: Verified, account_id: str) -> Reply:
        """§7.3.2 update, §7.3.6 deactivation, or POST-as-GET."""
        self._own(verified, account_id, "account")
        account = verified.owner()
        if verified.post_as_get:
            return self._account_reply(account)
        update = messages.parse_account_update(verified.payload())
        changes: dict[str, Any] = {}
        if update.contact is not None:
            changes["contact"] = update.contact
        if update.terms_of_service_agreed and not account.terms_agreed:
            changes["terms_agreed"] = True
        if update.deactivate:
            changes["status"] = next_status(
                ACCOUNT, AccountStatus(account.status), Event.DEACTIVATE
            ).value
        if not changes:
            return self._account_reply(account)
        now = self.clock.now()
        changes["updated_at"] = now
        audit = AuditEvent(
            now,
            f"acme:{account.id}",
            "acme.account.deactivate" if update.deactivate else "acme.account.update",
            f"acme/account/{account.id}",
            {k: v for k, v in changes.items() if k in ("contact", "status")},
        )
        if not update.deactivate:
            updated = await self.store.acme_update_account(account.id, changes, audit)
            return self._account_reply(updated)
        # §7.3.6: "the server SHOULD cancel any pending operations authorized by the account's
        # key, such as certificate orders": in the same transaction, its orders not yet valid
        # or invalid become invalid (§7.1.6) and its pending authorizations deactivated.
        cancelled = AcmeError(
            ErrorType.UNAUTHORIZED,
            "the account was deactivated (RFC 8555 §7.3.6): its pending orders are cancelled",
        )
        try:
            updated = await self.store.acme_deactivate_account(
                account.id, changes, cancelled.to_json(), audit
            )
        except Conflict:
            # Deactivated (or revoked) by a request racing this one.
            updated = await self.store.acme_account(account.id)
            raise _unauthorized(f"the account is {updated.status}") from None
        return self._account_reply(updated)

    async def key_change(self, verified: Verified) -> Reply:
        """§7.3.5: the inner JWS is signed by the new key (jwk, same url), its payload names
        the account and its current key."""
        account = verified.owner()
        try:
            inner = parse_flattened(verified.payload())
        except JOSEError as exc:
            raise self._jose(exc) from None
        header = inner.protected
        try:
            algorithm(header.get("alg"))
        except JOSEError as exc:
            raise self._bad_algorithm(f"the inner JWS: {exc.message}") from None
        if "jwk" not in header or "kid" in header:
            raise messages.malformed("the inner JWS is signed with the new key's jwk (§7.3.5)")
        if header.get("url") != verified.jws.protected.get("url"):
            raise messages.malformed("the inner JWS url differs from the outer one (§7.3.5)")
        try:
            new_key = parse_jwk(header["jwk"])
            verify_signature(inner, new_key)
            payload = inner.payload_json()
        except JOSEError as exc:
            raise self._jose(exc) from None
        if not isinstance(payload, dict):
            raise messages.malformed("the inner payload is {account, oldKey}")
        if payload.get("account") != self.account_url(account.id):
            raise _unauthorized("the inner payload names another account")
        try:
            old_key = parse_jwk(payload.get("oldKey"))
        except JOSEError as exc:
            raise messages.malformed(f"oldKey: {exc.message}") from None
        if old_key.thumbprint() != account.thumbprint:
            raise _unauthorized("oldKey is not the account's current key")
        new_thumbprint = new_key.thumbprint()
        holder = await self.store.acme_account_by_thumbprint(new_thumbprint)
        if holder is not None:
            # §7.3.5: 409 with the Location of the account that holds the new key.
            raise AcmeError(
                ErrorType.MALFORMED,
                "the new key is already the key of an account",
                status=409,
                headers=[("Location", self.account_url(holder.id))],
            )
        now = self.clock.now()
        try:
            updated = await self.store.acme_update_account(
                account.id,
                {"jwk": new_key.to_json(), "thumbprint": new_thumbprint, "updated_at": now},
                AuditEvent(
                    now,
                    f"acme:{account.id}",
                    "acme.account.key_change",
                    f"acme/account/{account.id}",
                    {"from": account.thumbprint, "to": new_thumbprint},
                ),
            )
        except Conflict:
            holder = await self.store.acme_account_by_thumbprint(new_thumbprint)
            raise AcmeError(
                ErrorType.MALFORMED,
                "the new key is already the key of an account",
                status=409,
                headers=[("Location", self.account_url(holder.id))] if holder else [],
            ) from None
        return self._account_reply(updated)

    # -- EAB keys made by operators for tls-server ------------------------------------------------
    async def create_eab_key(self, operator: Operator, data: Any) -> tuple[AcmeEABKeyRecord, str]:
        """An operator's EAB key for the tls-server profile, with its policy; returns the
        record and the base64url MAC key, which is shown once and kept only sealed."""
        self.ra.allow(operator, "acme_eab")
        body = Body(data)
        body.seen.add("allowed")
        allowed = data.get("allowed") if isinstance(data, dict) else None
        if not isinstance(allowed, list) or not allowed:
            body.errors.append("allowed must be a non-empty list of DNS suffixes or IP networks")
            allowed = []
        for entry in allowed:
            if not isinstance(entry, str) or _policy_entry_problem(entry):
                body.errors.append(
                    f"allowed: {entry!r} is not a lower-case DNS suffix or an IP network"
                )
        lifetime = self.config.tls_server_lifetime_days
        if "certificateLifetimeDays" in body.data:
            lifetime = body.integer("certificateLifetimeDays")
            if not 1 <= lifetime <= PROFILES[TLS_SERVER].validity.days:
                body.errors.append(
                    "certificateLifetimeDays must be 1.."
                    f"{PROFILES[TLS_SERVER].validity.days} (the tls-server profile)"
                )
        limit = body.integer("maxCertificates") if "maxCertificates" in body.data else None
        expires_days = (
            body.integer("expiresInDays", _EAB_MAX_DAYS) if "expiresInDays" in body.data else None
        )
        note = body.text("note", required=False, limit=256) or None
        body.done()
        now = self.clock.now()
        mac = secrets.token_bytes(32)
        record = AcmeEABKeyRecord(
            kid="kid-" + _new_id(),
            key_sealed=self.ra.keyring.seal(_EAB_PURPOSE, mac),
            allowed=tuple(allowed),
            lifetime_days=lifetime,
            max_certificates=limit,
            expires_at=now + dt.timedelta(days=expires_days) if expires_days else None,
            note=note,
            created_by=operator.name,
            created_at=now,
        )
        await self.store.acme_add_eab_key(
            record,
            AuditEvent(
                now,
                operator.name,
                "acme.eab_key.create",
                f"acme/eab/{record.kid}",
                {
                    "allowed": list(record.allowed),
                    "lifetimeDays": lifetime,
                    "maxCertificates": limit,
                    **credential_details(operator),
                },
            ),
        )
        return record, b64u_encode(mac)

    async def disable_eab_key(self, operator: Operator, kid: str) -> AcmeEABKeyRecord:
        self.ra.allow(operator, "acme_eab")
        now = self.clock.now()
        try:
            await self.store.acme_disable_eab_key(
                kid,
                now,
                AuditEvent(
                    now,
                    operator.name,
                    "acme.eab_key.disable",
                    f"acme/eab/{kid}",
                    credential_details(operator),
                ),
            )
        except NotFound:
            raise RAError(RAKind.NOT_FOUND, f"there is no EAB key {kid}") from None
        return await self.store.acme_eab_key(kid)

    # -- orders (§7.4) ----------------------------------------------------------------------------
    async def new_order(self, verified: Verified) -> Reply:
        account = verified.owner()
        request = messages.parse_new_order(verified.payload())
        now = self.clock.now()
        await self._rate_limit(account, now)
        if request.not_before is not None or request.not_after is not None:
            raise messages.malformed(
                "notBefore and notAfter are not accepted: the profile sets the validity"
            )
        if account.kind == PERSONAL:
            profile, authz_status = await self._personal_order(account, request)
        else:
            profile, authz_status = await self._tls_order(account, request)
        replaces = await self._check_replaces(account, request.replaces)
        authz_ids: list[str] = []
        new_authzs: list[AcmeAuthzRecord] = []
        for identifier in request.identifiers:
            base, wildcard = identifier.base, identifier.wildcard
            reused = await self.store.acme_reusable_authorization(
                account.id, base.type, base.value, wildcard, now
            )
            if reused is not None:
                authz_ids.append(reused.id)
                continue
            authz = self._new_authz(account, base, wildcard, authz_status, now)
            new_authzs.append(authz)
            authz_ids.append(authz.id)
        ready = all(a.status == AuthzStatus.VALID for a in new_authzs)
        order = AcmeOrderRecord(
            id=_new_id(),
            account_id=account.id,
            status=(OrderStatus.READY if ready else OrderStatus.PENDING).value,
            expires_at=now + self.config.order_lifetime,
            identifiers=tuple((i.type, i.value) for i in request.identifiers),
            profile=profile,
            created_at=now,
            updated_at=now,
            authz_ids=tuple(authz_ids),
            replaces=replaces,
        )
        await self.store.acme_add_order(
            order,
            new_authzs,
            AuditEvent(
                now,
                f"acme:{account.id}",
                "acme.order.create",
                f"acme/order/{order.id}",
                {
                    "identifiers": [list(i) for i in order.identifiers],
                    "profile": profile,
                    "replaces": replaces,
                },
            ),
        )
        return Reply(await self._order_json(order), status=201, location=self.order_url(order.id))

    async def _rate_limit(self, account: AcmeAccountRecord, now: dt.datetime) -> None:
        hour = dt.timedelta(hours=1)
        count, oldest = await self.store.acme_count_orders(account.id, now - hour)
        if count >= self.config.orders_per_hour:
            wait = int(((oldest or now) + hour - now).total_seconds()) + 1
            # §6.6: rateLimited with Retry-After and a Link rel="help" to the limits.
            raise AcmeError(
                ErrorType.RATE_LIMITED,
                f"at most {self.config.orders_per_hour} new orders per account per hour",
                headers=[
                    ("Retry-After", str(max(wait, 1))),
                    ("Link", f'<{self.help_url()}>;rel="help"'),
                ],
            )

    def _new_authz(
        self,
        account: AcmeAccountRecord,
        identifier: Identifier,
        wildcard: bool,
        status: AuthzStatus,
        now: dt.datetime,
    ) -> AcmeAuthzRecord:
        authz_id = _new_id()
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
                    id=_new_id(),
                    authz_id=authz_id,
                    type=kind,
                    token=challenge_types.new_token(),
                    status=ChallengeStatus.PENDING.value,
                    updated_at=now,
                )
                for kind in types
            ),
        )

    async def _application(self, account: AcmeAccountRecord) -> ApplicationRecord:
        assert account.application_id is not None
        return await self.store.application(account.application_id)

    async def _personal_order(
        self, account: AcmeAccountRecord, request: messages.NewOrder
    ) -> tuple[str, AuthzStatus]:
        app = await self._application(account)
        vetted = Identifier("email", app.email)
        self._personal_identifiers(request.identifiers, vetted)
        profile = request.profile or app.profile
        if profile != app.profile:
            raise AcmeError(
                ErrorType.INVALID_PROFILE,
                f"profile {profile!r} is not offered to this account: its application is for "
                f"{app.profile}",
            )
        if app.state not in (State.APPROVED, State.PIN_SENT, State.ISSUED):
            raise _unauthorized(f"the application is {app.state}")
        # The e-mailed EAB secret proved control of the vetted address, and the RA vetted the
        # person: the authorization is valid from the start (FLOW.md).
        return profile, AuthzStatus.VALID

    def _personal_identifiers(self, identifiers: Sequence[Identifier], vetted: Identifier) -> None:
        refused = [
            Subproblem(
                ErrorType.REJECTED_IDENTIFIER,
                f"this account may only order {vetted.value} (its vetted e-mail address)",
                i.to_json(),
            )
            for i in identifiers
            if i != vetted
        ]
        if refused:
            raise AcmeError(
                ErrorType.REJECTED_IDENTIFIER,
                "a personal account orders exactly its vetted e-mail address "
                f'({{"type": "email", "value": "{vetted.value}"}})',
                subproblems=refused,
            )

    async def _eab_policy(self, account: AcmeAccountRecord) -> AcmeEABKeyRecord:
        key = await self.store.acme_eab_key(account.eab_kid)
        if key.disabled_at is not None:
            raise _unauthorized("the operator disabled this account's external account binding")
        return key

    async def _tls_order(
        self, account: AcmeAccountRecord, request: messages.NewOrder
    ) -> tuple[str, AuthzStatus]:
        profile = request.profile or TLS_SERVER
        if profile != TLS_SERVER:
            known = profile in PROFILE_DESCRIPTIONS
            raise AcmeError(
                ErrorType.INVALID_PROFILE,
                f"profile {profile!r} "
                + ("needs a personal account" if known else "is not offered by this server")
                + f"; this account orders {TLS_SERVER}",
            )
        policy = await self._eab_policy(account)
        self._policy_identifiers(policy, request.identifiers)
        if policy.max_certificates is not None:
            issued = await self.store.acme_count_certificates(account.eab_kid)
            if issued >= policy.max_certificates:
                raise _unauthorized(
                    f"this account's external account binding allows {policy.max_certificates} "
                    "certificates, all issued"
                )
        return profile, AuthzStatus.PENDING

    def _policy_identifiers(
        self, policy: AcmeEABKeyRecord, identifiers: Sequence[Identifier]
    ) -> None:
        refused = []
        for identifier in identifiers:
            if identifier.type == "email":
                detail = "e-mail identifiers need a personal account (the RA's vetting)"
            elif not allowed_by(policy.allowed, identifier):
                detail = (
                    f"{identifier.value} is outside this account's policy "
                    f"({', '.join(policy.allowed)})"
                )
            else:
                continue
            refused.append(Subproblem(ErrorType.REJECTED_IDENTIFIER, detail, identifier.to_json()))
        if refused:
            raise AcmeError(
                ErrorType.REJECTED_IDENTIFIER,
                f"{len(refused)} identifier(s) refused by policy; see subproblems",
                subproblems=refused,
            )

    async def _check_replaces(self, account: AcmeAccountRecord, cert_id: str | None) -> str | None:
        """RFC 9773 §5: ``replaces`` names a certificate of this account not yet replaced."""
        if cert_id is None:
            return None
        key_id, serial = messages.parse_ari_cert_id(cert_id)
        generation = self._generation_by_key_id(key_id)
        if generation is None:
            raise messages.malformed("replaces names a certificate this CA did not issue")
        order = await self.store.acme_order_by_certificate(generation, serial)
        if order is None or order.account_id != account.id:
            raise _unauthorized("replaces names a certificate not issued to this account")
        for other in await self.store.acme_orders_replacing(cert_id):
            if other.status != OrderStatus.INVALID:
                raise AcmeError(
                    ErrorType.ALREADY_REPLACED,
                    f"order {self.order_url(other.id)} already replaces this certificate",
                )
        return cert_id

    def _generation_by_key_id(self, key_id: bytes) -> int | None:
        generation = generation_by_key_id(self.authority.generations, key_id)
        return None if generation is None else generation.number

    async def _refresh_order(self, order: AcmeOrderRecord) -> AcmeOrderRecord:
        """Lazy transitions: expiry, authorizations that became valid or failed (§7.1.6), a
        personal order whose issuance waits for the RA."""
        now = self.clock.now()
        status = OrderStatus(order.status)
        if status in (OrderStatus.PENDING, OrderStatus.READY) and now > order.expires_at:
            return await self._fail_order(
                order, AcmeError(ErrorType.MALFORMED, "the order expired before it was finalized")
            )
        if status == OrderStatus.PENDING:
            authzs = [await self._authz(a) for a in order.authz_ids]
            failed = [
                a
                for a in authzs
                if a.status != AuthzStatus.PENDING and a.status != AuthzStatus.VALID
            ]
            if failed:
                return await self._fail_order(order, self._authz_failure(failed))
            if all(a.status == AuthzStatus.VALID for a in authzs):
                with contextlib.suppress(Conflict):
                    return await self.store.acme_update_order(
                        order.id, OrderStatus.PENDING, {"status": "ready", "updated_at": now}
                    )
                return await self.store.acme_order(order.id)
        if (
            status == OrderStatus.PROCESSING
            and order.csr_der is not None
            and order.id not in self._issuing
        ):
            # A personal renewal waiting for the RA, or an issuance a stopped process left.
            with contextlib.suppress(AcmeError):
                return await self._issue(order)
            return await self.store.acme_order(order.id)
        return order

    def _authz_failure(self, failed: list[AcmeAuthzRecord]) -> AcmeError:
        subproblems = []
        for authz in failed:
            error = next((c.error for c in authz.challenges if c.error), None)
            type_ = ErrorType.UNAUTHORIZED
            detail = f"the authorization is {authz.status}"
            if error:
                urn = str(error.get("type", ""))
                type_ = next((t for t in ErrorType if t.urn == urn), ErrorType.UNAUTHORIZED)
                detail = str(error.get("detail", detail))
            subproblems.append(
                Subproblem(
                    type_, detail, {"type": authz.identifier_type, "value": authz.identifier_value}
                )
            )
        return AcmeError(
            ErrorType.COMPOUND if len(subproblems) > 1 else subproblems[0].type,
            "an authorization of the order failed; see subproblems",
            subproblems=subproblems,
        )

    async def _fail_order(self, order: AcmeOrderRecord, error: AcmeError) -> AcmeOrderRecord:
        try:
            return await self.store.acme_update_order(
                order.id,
                order.status,
                {"status": "invalid", "error": error.to_json(), "updated_at": self.clock.now()},
            )
        except Conflict:
            return await self.store.acme_order(order.id)

    async def _order_json(self, order: AcmeOrderRecord) -> dict[str, Any]:
        certificate = None
        if order.status == OrderStatus.VALID:
            certificate = self.certificate_url(order.id)
        return OrderObject(
            status=order.status,
            expires=order.expires_at,
            identifiers=[Identifier(t, v) for t, v in order.identifiers],
            authorizations=[self.authz_url(a) for a in order.authz_ids],
            finalize=self.url("order", order.id, "finalize"),
            error=order.error,
            certificate=certificate,
            profile=order.profile,
            replaces=order.replaces,
        ).to_json()

    async def _owned_order(self, verified: Verified, order_id: str) -> AcmeOrderRecord:
        try:
            order = await self.store.acme_order(_known_id(order_id))
        except NotFound:
            raise _not_found("order") from None
        self._own(verified, order.account_id, "order")
        return order

    def _order_reply(self, order: AcmeOrderRecord, body: dict[str, Any]) -> Reply:
        retry = None
        if order.status == OrderStatus.PROCESSING:
            # §7.4: a processing order tells the client when to look again.
            retry = (
                self.retry_after_approval
                if order.reenrollment_id
                else (self.config.retry_after_seconds)
            )
        return Reply(body, location=self.order_url(order.id), retry_after=retry)

    async def order(self, verified: Verified, order_id: str) -> Reply:
        order = await self._owned_order(verified, order_id)
        if not verified.post_as_get:
            raise messages.malformed("an order is read with POST-as-GET (empty payload, §6.3)")
        order = await self._refresh_order(order)
        return self._order_reply(order, await self._order_json(order))

    async def orders(self, verified: Verified, account_id: str, cursor: str | None) -> Reply:
        """§7.1.2.1: the account's orders, a page at a time with Link rel="next"."""
        self._own(verified, account_id, "account")
        if not verified.post_as_get:
            raise messages.malformed("the orders list is read with POST-as-GET (§6.3)")
        after = 0
        if cursor is not None:
            try:
                after = decimal(cursor, "cursor", 10**18 - 1)
            except InputError:
                raise messages.malformed("cursor must be a number from a Link rel=next") from None
        size = self.config.orders_page_size
        page = await self.store.acme_orders(account_id, after, size + 1)
        more = len(page) > size
        page = page[:size]
        links = []
        if more:
            links.append(
                (self.url("acct", account_id, "orders") + f"?cursor={page[-1].seq}", "next")
            )
        # §7.1.2.1: pending and valid orders; invalid ones are left out.
        urls = [self.order_url(o.id) for o in page if o.status != OrderStatus.INVALID]
        return Reply({"orders": urls}, links=links)

    # -- finalize (§7.4) ------------------------------------------------------------------------
    async def finalize(self, verified: Verified, order_id: str) -> Reply:
        order = await self._refresh_order(await self._owned_order(verified, order_id))
        account = verified.owner()
        if order.status != OrderStatus.READY:
            raise AcmeError(
                ErrorType.ORDER_NOT_READY,
                f"the order is {order.status}, not ready (§7.4)",
            )
        csr_der = messages.parse_finalize(verified.payload())
        try:
            csr = x509.load_der_x509_csr(csr_der)
        except ValueError:
            raise AcmeError(ErrorType.BAD_CSR, "the csr is not a DER PKCS#10 request") from None
        self._check_csr_identifiers(order, csr, account.kind == PERSONAL)
        if self._account_key(account).same_key(csr.public_key()):  # type: ignore[arg-type]
            raise AcmeError(ErrorType.BAD_CSR, "the CSR must not use the account key")
        try:
            verified_csr = verify_csr(csr_der)
        except CAError as exc:
            raise from_ca(exc) from None
        _refuse_must_staple(csr)
        # Refused before the order moves on, so that the client can send a better CSR.
        try:
            check_public_key(profile_named(order.profile), verified_csr.public_key)
        except CAError as exc:
            raise from_ca(exc) from None
        if account.kind == PERSONAL:
            contradiction = contradicts(verified_csr, await self._application(account))
            if contradiction:
                raise AcmeError(ErrorType.BAD_CSR, contradiction)
        now = self.clock.now()
        try:
            order = await self.store.acme_update_order(
                order.id,
                OrderStatus.READY,
                {"status": "processing", "csr_der": csr_der, "updated_at": now},
                AuditEvent(
                    now, f"acme:{account.id}", "acme.order.finalize", f"acme/order/{order.id}"
                ),
            )
        except Conflict:
            raise AcmeError(
                ErrorType.ORDER_NOT_READY, "the order was finalized meanwhile"
            ) from None
        order = await self._issue(order, verified_csr)
        return self._order_reply(order, await self._order_json(order))

    def _check_csr_identifiers(
        self, order: AcmeOrderRecord, csr: x509.CertificateSigningRequest, personal: bool
    ) -> None:
        wanted = {Identifier(t, v) for t, v in order.identifiers}
        found, common_names = messages.csr_identifiers(csr)
        if found != wanted:
            missing = sorted(i.value for i in wanted - found)
            extra = sorted(i.value for i in found - wanted)
            raise AcmeError(
                ErrorType.BAD_CSR,
                "the CSR must name exactly the order's identifiers (§7.4)"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; not in the order {', '.join(extra)}" if extra else ""),
            )
        values = {i.value for i in wanted}
        for name in common_names:
            # A personal certificate's subject comes from the vetted record; the RA checks that
            # a CSR's common name does not contradict it.
            if name.lower() not in values and not personal:
                raise AcmeError(ErrorType.BAD_CSR, f"the CSR common name {name!r} is not ordered")

    async def _issue(
        self, order: AcmeOrderRecord, csr: VerifiedCSR | None = None
    ) -> AcmeOrderRecord:
        """processing -> valid (or -> invalid). Safe to call again for the same order: every
        path finds the certificate an earlier call made. Within this process one issuance per
        order runs at a time (a poll during finalize does not sign twice)."""
        if order.id in self._issuing:
            return order
        self._issuing.add(order.id)
        try:
            return await self._issue_once(order, csr)
        finally:
            self._issuing.discard(order.id)

    async def _issue_once(
        self, order: AcmeOrderRecord, csr: VerifiedCSR | None = None
    ) -> AcmeOrderRecord:
        """``csr``: ``order.csr_der`` as finalize just verified it (None: verified here)."""
        account = await self.store.acme_account(order.account_id)
        assert order.csr_der is not None
        try:
            if account.kind == PERSONAL:
                generation, serial, pending = await self._issue_personal(account, order)
                if pending is not None:
                    if order.reenrollment_id != pending:
                        order = await self.store.acme_update_order(
                            order.id,
                            OrderStatus.PROCESSING,
                            {"reenrollment_id": pending, "updated_at": self.clock.now()},
                        )
                    return order
                return await self.store.acme_update_order(
                    order.id,
                    OrderStatus.PROCESSING,
                    {
                        "status": "valid",
                        "certificate_generation": generation,
                        "certificate_serial": format(serial, "x"),
                        "updated_at": self.clock.now(),
                    },
                )
            return await self._issue_tls(account, order, csr)
        except Conflict:
            return await self.store.acme_order(order.id)
        except (AcmeError, CAError, RAError) as exc:
            error = (
                exc
                if isinstance(exc, AcmeError)
                else (from_ca(exc) if isinstance(exc, CAError) else from_ra(exc))
            )
            failed = await self._fail_order(order, error)
            if failed.status == OrderStatus.INVALID:
                raise error from None
            return failed

    async def _issue_personal(
        self, account: AcmeAccountRecord, order: AcmeOrderRecord
    ) -> tuple[int, int, int | None]:
        """(generation, serial, pending re-enrollment id)."""
        assert order.csr_der is not None
        app = await self._application(account)
        previous = await self._previous_certificate(account, order)
        if previous is None:
            # The first certificate: step 10 through the RA's own transaction.
            try:
                redeemed = await self.ra.redeem_by_eab(
                    app.enrollment_id or "", order.csr_der, "acme"
                )
            except RAError as exc:
                if exc.kind is RAKind.PENDING:
                    return 0, 0, -1
                raise
            cert = x509.load_der_x509_certificate(redeemed.certificate_der)
            generation = issuing_generation(cert, self.authority.generations)
            assert generation is not None
            return generation.number, cert.serial_number, None
        # A renewal (FLOW.md: "new order on the same account"): the RA's re-enrollment
        # policy, which may hold it for an operator (processing + Retry-After, §7.4).
        result = await self.reenrollment.reenroll(previous, order.csr_der, identity_checked=True)
        if result.status == "pending":
            return 0, 0, result.request_id
        assert result.certificate_der is not None
        cert = x509.load_der_x509_certificate(result.certificate_der)
        generation = issuing_generation(cert, self.authority.generations)
        assert generation is not None
        return generation.number, cert.serial_number, None

    async def _previous_certificate(
        self, account: AcmeAccountRecord, order: AcmeOrderRecord
    ) -> bytes | None:
        """The newest certificate this account obtained before ``order``, if any."""
        newest = None
        after = 0
        while page := await self.store.acme_orders(account.id, after, 200):
            for other in page:
                if other.id != order.id and other.certificate_serial is not None:
                    newest = other
            after = page[-1].seq
        if newest is None or newest.certificate_generation is None:
            return None
        record = await self.store.certificate(
            newest.certificate_generation, int(newest.certificate_serial or "0", 16)
        )
        return record.der

    async def _issue_tls(
        self, account: AcmeAccountRecord, order: AcmeOrderRecord, csr: VerifiedCSR | None = None
    ) -> AcmeOrderRecord:
        assert order.csr_der is not None
        policy = await self._eab_policy(account)
        if csr is None:
            csr = verify_csr(order.csr_der)
        dns = [v for t, v in order.identifiers if t == "dns"]
        ips = [ipaddress.ip_address(v) for t, v in order.identifiers if t == "ip"]
        actor, target = f"acme:{account.id}", f"acme-order/{order.id}"
        issued = await self.authority.sign_tls_server(
            csr.public_key,
            dns,
            ips,
            dt.timedelta(days=policy.lifetime_days),
            requester=actor,
            target=target,
        )
        now = self.clock.now()
        try:
            return await self.store.acme_update_order(
                order.id,
                OrderStatus.PROCESSING,
                {
                    "status": "valid",
                    "certificate_generation": issued.generation,
                    "certificate_serial": format(issued.serial, "x"),
                    "updated_at": now,
                },
                AuditEvent(
                    now,
                    actor,
                    "certificate.issue",
                    f"generation/{issued.generation}/serial/{issued.serial:x}",
                    {"profile": issued.profile, "order": order.id, "eabKid": account.eab_kid},
                ),
                certificate=self.authority.certificate_record(issued, None, None),
            )
        except Conflict as exc:  # another process finalized the order first
            await self.authority.discard(issued, actor, target, str(exc))
            raise

    # -- authorizations and challenges (§7.5) -----------------------------------------------------
    async def _authz(self, authz_id: str) -> AcmeAuthzRecord:
        authz = await self.store.acme_authorization(authz_id)
        now = self.clock.now()
        if authz.status in (AuthzStatus.PENDING, AuthzStatus.VALID) and now > authz.expires_at:
            with contextlib.suppress(Conflict):
                authz = await self.store.acme_update_authorization(
                    authz.id, authz.status, AuthzStatus.EXPIRED.value
                )
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

    def _challenge_json(self, challenge: AcmeChallengeRecord) -> dict[str, Any]:
        return ChallengeObject(
            type=challenge.type,
            url=self.challenge_url(challenge.id),
            status=challenge.status,
            token=challenge.token,
            validated=challenge.validated_at,
            error=challenge.error,
        ).to_json()

    def _authz_json(self, authz: AcmeAuthzRecord) -> dict[str, Any]:
        challenges = [c for c in authz.challenges]
        if authz.status == AuthzStatus.VALID:
            # §7.1.4: a valid authorization lists the challenge that was validated.
            challenges = [c for c in challenges if c.status == ChallengeStatus.VALID]
        return AuthorizationObject(
            identifier=Identifier(authz.identifier_type, authz.identifier_value),
            status=authz.status,
            expires=authz.expires_at,
            challenges=[
                ChallengeObject(
                    type=c.type,
                    url=self.challenge_url(c.id),
                    status=c.status,
                    token=c.token,
                    validated=c.validated_at,
                    error=c.error,
                )
                for c in challenges
            ],
            wildcard=authz.wildcard,
        ).to_json()

    def _authz_retry(self, authz: AcmeAuthzRecord) -> int | None:
        if any(c.status == ChallengeStatus.PROCESSING for c in authz.challenges):
            return self.config.retry_after_seconds  # §8.2
        return None

    async def authorization(self, verified: Verified, authz_id: str) -> Reply:
        try:
            authz = await self._authz(_known_id(authz_id))
        except NotFound:
            raise _not_found("authorization") from None
        self._own(verified, authz.account_id, "authorization")
        if not verified.post_as_get:
            payload = verified.payload()
            if not isinstance(payload, dict) or payload.get("status") != "deactivated":
                raise messages.malformed(
                    'an authorization takes POST-as-GET or {"status": "deactivated"} (§7.5.2)'
                )
            if authz.status not in (AuthzStatus.PENDING, AuthzStatus.VALID):
                raise messages.malformed(f"the authorization is {authz.status} (§7.5.2)")
            now = self.clock.now()
            authz = await self.store.acme_update_authorization(
                authz.id,
                authz.status,
                AuthzStatus.DEACTIVATED.value,
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
            app = await self._application(account)
            self._personal_identifiers([identifier], Identifier("email", app.email))
            status = AuthzStatus.VALID
        else:
            self._policy_identifiers(await self._eab_policy(account), [identifier])
            status = AuthzStatus.PENDING
        authz = self._new_authz(account, identifier, False, status, now)
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
        return Reply(self._authz_json(authz), status=201, location=self.authz_url(authz.id))

    async def challenge(self, verified: Verified, challenge_id: str) -> Reply:
        try:
            challenge = await self.store.acme_challenge(_known_id(challenge_id))
            authz = await self._authz(challenge.authz_id)
        except NotFound:
            raise _not_found("challenge") from None
        self._own(verified, authz.account_id, "challenge")
        if not verified.post_as_get:
            payload = verified.payload()
            if not isinstance(payload, dict):
                raise messages.malformed("a challenge response is a JSON object: {} (§7.5.1)")
            if challenge.status == ChallengeStatus.PENDING:
                if authz.status != AuthzStatus.PENDING:
                    raise messages.malformed(f"the authorization is {authz.status}")
                with contextlib.suppress(Conflict):
                    challenge = await self.store.acme_update_challenge(
                        challenge.id,
                        ChallengeStatus.PENDING,
                        next_status(CHALLENGE, ChallengeStatus.PENDING, Event.RESPOND).value,
                        self.clock.now(),
                    )
                    self._start_validation(challenge.id)
                await self._settled(challenge.id)
                challenge = await self.store.acme_challenge(challenge.id)
        # §8.2: a challenge still being validated tells the client when to look again.
        processing = challenge.status == ChallengeStatus.PROCESSING
        retry = self.config.retry_after_seconds if processing else None
        return Reply(
            self._challenge_json(challenge),
            links=[(self.authz_url(authz.id), "up")],  # §7.5.1
            retry_after=retry,
        )

    async def _settled(self, challenge_id: str) -> None:
        """Wait up to ``challenge_wait_seconds`` for this process's validation of the challenge:
        a quick one is answered with its outcome (§7.5.1: the response is the challenge as it is
        then), so the client's first poll of the authorization finds it settled instead of
        waiting out Retry-After. The validation goes on when the wait ends, or when the client
        goes away meanwhile."""
        task = self._tasks.get(challenge_id)
        if task is None or self.config.challenge_wait_seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self.config.challenge_wait_seconds)

    def _start_validation(self, challenge_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._validate(challenge_id))
        self._tasks[challenge_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(challenge_id, None))

    async def _validate(self, challenge_id: str) -> None:
        """Validate in the background (§7.5.1: the server answers at once and validates
        asynchronously), then record the outcome on the challenge and its authorization."""
        try:
            if self.config.test.validation_delay_seconds:
                await asyncio.sleep(self.config.test.validation_delay_seconds)
            challenge = await self.store.acme_challenge(_known_id(challenge_id))
            authz = await self.store.acme_authorization(challenge.authz_id)
            account = await self.store.acme_account(authz.account_id)
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
                            account_uri=self.account_url(account.id),
                            method=challenge.type,
                        )
                except AcmeError as exc:
                    error = exc
            now = self.clock.now()
            if error is None:
                status, authz_status = ChallengeStatus.VALID, AuthzStatus.VALID
            else:
                status, authz_status = ChallengeStatus.INVALID, AuthzStatus.INVALID
            await self.store.acme_update_challenge(
                challenge.id,
                ChallengeStatus.PROCESSING,
                status.value,
                now,
                error=error.to_json() if error else None,
                authz_status=authz_status.value,
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
            pass
        except Exception:
            log.exception("validation of challenge %s failed unexpectedly", challenge_id)

    # -- certificates (§7.4.2) ------------------------------------------------------------------
    def chains(self, certificate: x509.Certificate) -> list[list[x509.Certificate]]:
        """The default chain and the alternates (§7.4.2): leaf + the issuing generation's CA
        certificate; then, for each other generation, leaf + the link certificates leading to
        it (NewWithOld towards older roots, OldWithNew towards newer ones) + that root."""
        issuing = issuing_generation(certificate, self.authority.generations)
        if issuing is None:
            return [[certificate]]
        by_number = {g.number: g for g in self.authority.generations}
        links = {link.old: link for link in self.authority.links}
        chains = [[certificate, issuing.certificate]]
        for number in sorted(by_number, key=lambda n: (abs(n - issuing.number), n)):
            if number == issuing.number:
                continue
            path = [certificate]
            ok = True
            if number < issuing.number:
                for old in range(issuing.number - 1, number - 1, -1):
                    if old not in links:
                        ok = False
                        break
                    path.append(links[old].new_with_old)
            else:
                for old in range(issuing.number, number):
                    if old not in links:
                        ok = False
                        break
                    path.append(links[old].old_with_new)
            if ok:
                chains.append([*path, by_number[number].certificate])
        return chains

    async def certificate(
        self, verified: Verified, order_id: str, alternate: int, accept: str
    ) -> Reply:
        order = await self._owned_order(verified, order_id)
        if not verified.post_as_get:
            raise messages.malformed("a certificate is downloaded with POST-as-GET (§7.4.2)")
        if order.status != OrderStatus.VALID or order.certificate_generation is None:
            raise _not_found("certificate")
        record = await self.store.certificate(
            order.certificate_generation, int(order.certificate_serial or "0", 16)
        )
        leaf = x509.load_der_x509_certificate(record.der)
        chains = self.chains(leaf)
        if alternate >= len(chains):
            raise _not_found("certificate chain")
        chain = chains[alternate]
        links = [
            (self.certificate_url(order.id, n), "alternate")
            for n in range(len(chains))
            if n != alternate
        ]
        media = _negotiate(accept)
        if media == "application/pkix-cert":
            body: bytes = leaf.public_bytes(serialization.Encoding.DER)
        else:
            body = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        return Reply(body, links=links, content_type=media)

    # -- revocation (§7.6) ------------------------------------------------------------------------
    async def revoke(self, verified: Verified) -> Reply:
        request = messages.parse_revocation(verified.payload())
        try:
            cert = x509.load_der_x509_certificate(request.certificate_der)
        except ValueError:
            raise messages.malformed("the certificate is not DER X.509") from None
        reason = REVOCATION_REASONS.get(request.reason if request.reason is not None else 0)
        if reason is None:
            allowed = ", ".join(str(c) for c in REVOCATION_REASONS)
            raise AcmeError(
                ErrorType.BAD_REVOCATION_REASON,
                f"reason code {request.reason} is not accepted; use one of {allowed} "
                "(RFC 5280 §5.3.1)",
            )
        generation = issuing_generation(cert, self.authority.generations)
        if generation is None:
            raise _not_found("certificate issued by this CA")
        try:
            record = await self.store.certificate(generation.number, cert.serial_number)
        except NotFound:
            raise _not_found("certificate issued by this CA") from None
        if record.der != request.certificate_der:
            raise _not_found("certificate issued by this CA")
        actor = await self._revocation_actor(verified, cert, generation.number)
        if record.status == "revoked":
            raise AcmeError(ErrorType.ALREADY_REVOKED, "the certificate is already revoked")
        try:
            await self.authority.revoke(generation.number, cert.serial_number, reason, actor)
        except Conflict:
            raise AcmeError(
                ErrorType.ALREADY_REVOKED, "the certificate is already revoked"
            ) from None
        return Reply(b"", content_type="application/octet-stream")

    async def _revocation_actor(
        self, verified: Verified, cert: x509.Certificate, generation: int
    ) -> str:
        """§7.6: the issuing account, an account holding valid authorizations for every
        identifier in the certificate, or the certificate's own key."""
        if verified.jwk is not None:
            if not verified.jwk.same_key(cert.public_key()):  # type: ignore[arg-type]
                raise _unauthorized("the JWS key is not the certificate's key")
            return "acme:certificate-key"
        account = verified.owner()
        order = await self.store.acme_order_by_certificate(generation, cert.serial_number)
        if order is not None and order.account_id == account.id:
            return f"acme:{account.id}"
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise _unauthorized("this account may not revoke the certificate") from None
        identifiers = [Identifier("dns", n) for n in san.get_values_for_type(x509.DNSName)]
        identifiers += [Identifier("ip", str(a)) for a in san.get_values_for_type(x509.IPAddress)]
        identifiers += [
            Identifier("email", e.lower()) for e in san.get_values_for_type(x509.RFC822Name)
        ]
        now = self.clock.now()
        for identifier in identifiers:
            base = identifier.base
            if not await self.store.acme_reusable_authorization(
                account.id, base.type, base.value, identifier.wildcard, now
            ):
                raise _unauthorized(
                    f"this account neither ordered the certificate nor holds a valid "
                    f"authorization for {identifier.value}"
                )
        if not identifiers:
            raise _unauthorized("this account may not revoke the certificate")
        return f"acme:{account.id}"

    # -- ARI (RFC 9773) ---------------------------------------------------------------------------
    async def renewal_info(self, cert_id: str) -> Reply:
        key_id, serial = messages.parse_ari_cert_id(cert_id)
        number = self._generation_by_key_id(key_id)
        if number is None:
            raise _not_found("certificate")
        try:
            record = await self.store.certificate(number, serial)
        except NotFound:
            raise _not_found("certificate") from None
        now = self.clock.now()
        lifetime = record.not_after - record.not_before
        if record.status == "revoked" or number != self.authority.current.number:
            # Revoked, or issued by a generation that no longer issues: renew now. A window wholly
            # in the past makes a client renew at once (RFC 9773 §4.2: a chosen time in the past
            # means renew immediately); ending an hour ago, it is in the past for a client whose
            # clock is up to an hour slow (RFC 9773 §7). A window around now would let half the
            # clients wait up to an hour with a revoked certificate.
            start, end = now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)
        else:
            start = record.not_before + lifetime * 2 / 3
            end = record.not_before + lifetime * 5 / 6
        body = {"suggestedWindow": {"start": messages.rfc3339(start), "end": messages.rfc3339(end)}}
        return Reply(body, retry_after=_ARI_RETRY_AFTER)


def _refuse_must_staple(csr: x509.CertificateSigningRequest) -> None:
    """A CSR asking for the TLS Feature extension (RFC 7633, OCSP must-staple) is refused with
    badCSR instead of being issued without it: a client that asked for must-staple relies on it,
    and the certificate would silently lack it. jitsuin's profiles never carry the extension
    (as Let's Encrypt, which refuses such orders since 2025)."""
    try:
        csr.extensions.get_extension_for_class(x509.TLSFeature)
    except x509.ExtensionNotFound:
        return
    raise AcmeError(
        ErrorType.BAD_CSR,
        "the CSR asks for the TLS Feature extension (OCSP must-staple, RFC 7633), which this CA "
        "does not issue: send a CSR without it (certbot: leave out --must-staple)",
    )


def _negotiate(accept: str) -> str:
    """§7.4.2: PEM chain by default; DER of the leaf for application/pkix-cert."""
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    for media in offered:
        if media in ("application/pem-certificate-chain", "*/*", "application/*", ""):
            return "application/pem-certificate-chain"
        if media == "application/pkix-cert":
            return media
    if not offered:
        return "application/pem-certificate-chain"
    raise AcmeError(
        ErrorType.MALFORMED,
        "certificates are served as application/pem-certificate-chain or application/pkix-cert",
        status=406,
    )


def _policy_entry_problem(entry: str) -> str | None:
    try:
        ipaddress.ip_network(entry, strict=False)
        return None
    except ValueError:
        pass
    return messages.dns_problem(entry)


def allowed_by(allowed: Sequence[str], identifier: Identifier) -> bool:
    """An operator EAB key's policy: DNS suffixes (the name itself or any name below it) and IP
    networks."""
    for entry in allowed:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            network = None
        if network is not None:
            if identifier.type == "ip" and ipaddress.ip_address(identifier.value) in network:
                return True
            continue
        name = identifier.base.value
        if identifier.type == "dns" and (name == entry or name.endswith("." + entry)):
            return True
    return False


def eab_key_json(record: AcmeEABKeyRecord) -> dict[str, Any]:
    def when(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "kid": record.kid,
        "allowed": list(record.allowed),
        "certificateLifetimeDays": record.lifetime_days,
        "maxCertificates": record.max_certificates,
        "expiresAt": when(record.expires_at),
        "note": record.note,
        "createdBy": record.created_by,
        "createdAt": when(record.created_at),
        "usedAt": when(record.used_at),
        "account": record.account_id,
        "disabledAt": when(record.disabled_at),
    }

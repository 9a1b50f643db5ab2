"""Accounts (RFC 8555 §7.3): creation under an External Account Binding, update, deactivation
(which cancels the account's pending orders and authorizations) and key change."""

from __future__ import annotations

from typing import Any

from jitsuin.ca.clock import Clock
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.messages import AccountObject
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.acme.status import ACCOUNT, AccountStatus, Event, next_status
from jitsuin.protocol.jose import (
    MAC_ALGORITHMS,
    JOSEError,
    JOSEErrorKind,
    algorithm,
    parse_eab,
    parse_flattened,
    parse_jwk,
    verify_signature,
)
from jitsuin.server.acme.common import TLS_SERVER, Reply, Verified, new_id, unauthorized
from jitsuin.server.acme.eab import ExternalAccounts
from jitsuin.server.acme.paths import Path, Urls
from jitsuin.server.acme.requests import RequestVerifier, bad_algorithm, from_jose
from jitsuin.server.config import AcmeConfig
from jitsuin.server.storage import AcmeAccountRecord, AuditEvent, Conflict, Store


class Accounts:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        config: AcmeConfig,
        urls: Urls,
        bindings: ExternalAccounts,
        requests: RequestVerifier,
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.urls = urls
        self.bindings = bindings
        self.requests = requests  # told of every change to an account (its cache)

    def _reply(self, account: AcmeAccountRecord, status: int = 200) -> Reply:
        body = AccountObject(
            status=account.status,
            contact=account.contact,
            orders_url=self.urls.account_orders(account.id),
            terms_of_service_agreed=account.terms_agreed,
        ).to_json()
        return Reply(body, status=status, location=self.urls.account(account.id))

    async def new_account(self, verified: Verified, source: str) -> Reply:
        request = messages.parse_new_account(verified.payload())
        assert verified.jwk is not None
        thumbprint = verified.jwk.thumbprint()
        existing = await self.store.acme_account_by_thumbprint(thumbprint)
        if existing is not None:
            # §7.3.1: the key has an account: 200 with its Location, whatever else was asked.
            if existing.status != AccountStatus.VALID:
                raise unauthorized(f"the account of this key is {existing.status}")
            return self._reply(existing)
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
                self.urls.of(Path.NEW_ACCOUNT),
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
        kind, application_id, kid = await self.bindings.check_binding(eab.kid, eab, now, source)
        record = AcmeAccountRecord(
            id=new_id(),
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
                return self._reply(raced)
            raise unauthorized(f"the external account binding cannot be used: {exc}") from None
        return self._reply(record, 201)

    async def account(self, verified: Verified, account_id: str) -> Reply:
        """§7.3.2 update, §7.3.6 deactivation, or POST-as-GET."""
        verified.own(account_id, "account")
        account = verified.owner()
        if verified.post_as_get:
            return self._reply(account)
        update = messages.parse_account_update(verified.payload())
        terms = True if update.terms_of_service_agreed and not account.terms_agreed else None
        if update.contact is None and terms is None and not update.deactivate:
            return self._reply(account)
        now = self.clock.now()
        details: dict[str, Any] = {}
        if update.contact is not None:
            details["contact"] = update.contact
        if not update.deactivate:
            updated = await self.store.acme_update_contact(
                account.id,
                update.contact,
                terms,
                now,
                AuditEvent(
                    now,
                    f"acme:{account.id}",
                    "acme.account.update",
                    f"acme/account/{account.id}",
                    details,
                ),
            )
            self.requests.remember(updated)
            return self._reply(updated)
        status = next_status(ACCOUNT, AccountStatus(account.status), Event.DEACTIVATE).value
        details["status"] = status
        audit = AuditEvent(
            now,
            f"acme:{account.id}",
            "acme.account.deactivate",
            f"acme/account/{account.id}",
            details,
        )
        # §7.3.6: "the server SHOULD cancel any pending operations authorized by the account's
        # key, such as certificate orders": in the same transaction, its orders not yet valid
        # or invalid become invalid (§7.1.6; the store takes them from the transition table,
        # CANCELLABLE_ORDERS) and its pending authorizations deactivated.
        cancelled = AcmeError(
            ErrorType.UNAUTHORIZED,
            "the account was deactivated (RFC 8555 §7.3.6): its pending orders are cancelled",
        )
        try:
            updated = await self.store.acme_deactivate_account(
                account.id,
                status,
                cancelled.to_json(),
                audit,
                contact=update.contact,
                terms_agreed=terms,
            )
        except Conflict:
            # Deactivated (or revoked) by a request racing this one.
            updated = await self.store.acme_account(account.id)
            self.requests.remember(updated)
            raise unauthorized(f"the account is {updated.status}") from None
        self.requests.remember(updated)
        return self._reply(updated)

    async def key_change(self, verified: Verified) -> Reply:
        """§7.3.5: the inner JWS is signed by the new key (jwk, same url), its payload names
        the account and its current key."""
        account = verified.owner()
        try:
            inner = parse_flattened(verified.payload())
        except JOSEError as exc:
            raise from_jose(exc) from None
        header = inner.protected
        try:
            algorithm(header.get("alg"))
        except JOSEError as exc:
            raise bad_algorithm(f"the inner JWS: {exc.message}") from None
        if "jwk" not in header or "kid" in header:
            raise messages.malformed("the inner JWS is signed with the new key's jwk (§7.3.5)")
        if header.get("url") != verified.jws.protected.get("url"):
            raise messages.malformed("the inner JWS url differs from the outer one (§7.3.5)")
        try:
            new_key = parse_jwk(header["jwk"])
            verify_signature(inner, new_key)
            payload = inner.payload_json()
        except JOSEError as exc:
            raise from_jose(exc) from None
        if not isinstance(payload, dict):
            raise messages.malformed("the inner payload is {account, oldKey}")
        if payload.get("account") != self.urls.account(account.id):
            raise unauthorized("the inner payload names another account")
        try:
            old_key = parse_jwk(payload.get("oldKey"))
        except JOSEError as exc:
            raise messages.malformed(f"oldKey: {exc.message}") from None
        if old_key.thumbprint() != account.thumbprint:
            raise unauthorized("oldKey is not the account's current key")
        new_thumbprint = new_key.thumbprint()
        holder = await self.store.acme_account_by_thumbprint(new_thumbprint)
        if holder is not None:
            # §7.3.5: 409 with the Location of the account that holds the new key.
            raise AcmeError(
                ErrorType.MALFORMED,
                "the new key is already the key of an account",
                status=409,
                headers=[("Location", self.urls.account(holder.id))],
            )
        now = self.clock.now()
        try:
            updated = await self.store.acme_change_key(
                account.id,
                new_key.to_json(),
                new_thumbprint,
                now,
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
                headers=[("Location", self.urls.account(holder.id))] if holder else [],
            ) from None
        self.requests.remember(updated)
        return self._reply(updated)

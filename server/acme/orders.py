"""Orders (RFC 8555 §7.4): creation (with the account's limits and policy), reading them with the
lazy transitions of §7.1.6, and the account's list of orders (§7.1.2.1)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from jitsuin.ca.clock import Clock
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.messages import Identifier, OrderObject
from jitsuin.protocol.acme.problems import AcmeError, ErrorType, Subproblem
from jitsuin.protocol.acme.status import EXPIRABLE_ORDERS, AuthzStatus, Event, OrderStatus
from jitsuin.protocol.untrusted import InputError, decimal
from jitsuin.server.acme import policy
from jitsuin.server.acme.authorizations import Authorizations
from jitsuin.server.acme.common import (
    PERSONAL,
    TLS_SERVER,
    Reply,
    Verified,
    generation_by_key_id,
    known_id,
    new_id,
    not_found,
    unauthorized,
)
from jitsuin.server.acme.paths import Urls
from jitsuin.server.acme.transitions import move_order
from jitsuin.server.authority import Authority
from jitsuin.server.config import AcmeConfig
from jitsuin.server.ra.workflow import State
from jitsuin.server.storage import (
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeOrderRecord,
    AuditEvent,
    Conflict,
    NotFound,
)

PROFILE_DESCRIPTIONS = {
    "general": "Personal S/MIME and document-signing certificate (S/MIME BR IV multipurpose); "
    "needs an application vetted by the RA",
    "document-manager": "Personal certificate for registered document information managers; "
    "needs an application vetted by the RA",
    "tls-server": "TLS server certificate (serverAuth) for dns and ip identifiers, under an "
    "operator-issued EAB key",
}

# The application states in which a personal account may order (docs/flow.md).
_ORDERING_STATES = (State.APPROVED, State.PIN_SENT, State.ISSUED)

Resume = Callable[[AcmeOrderRecord], Awaitable[AcmeOrderRecord]]


class Orders:
    def __init__(
        self,
        authority: Authority,
        clock: Clock,
        config: AcmeConfig,
        urls: Urls,
        authorizations: Authorizations,
        resume: Resume,
        retry_after_approval: int,
    ) -> None:
        self.authority = authority
        self.store = authority.store
        self.clock = clock
        self.config = config
        self.urls = urls
        self.authorizations = authorizations
        self._resume = resume  # takes up an order left processing (issuance)
        self.retry_after_approval = retry_after_approval

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
            authz = self.authorizations.new_record(account, base, wildcard, authz_status, now)
            new_authzs.append(authz)
            authz_ids.append(authz.id)
        ready = all(a.status == AuthzStatus.VALID for a in new_authzs)
        order = AcmeOrderRecord(
            id=new_id(),
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
        return Reply(self.order_json(order), status=201, location=self.urls.order(order.id))

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
                    ("Link", f'<{self.urls.help()}>;rel="help"'),
                ],
            )

    async def _personal_order(
        self, account: AcmeAccountRecord, request: messages.NewOrder
    ) -> tuple[str, AuthzStatus]:
        app = await policy.application(self.store, account)
        vetted = Identifier("email", app.email)
        policy.personal_identifiers(request.identifiers, vetted)
        profile = request.profile or app.profile
        if profile != app.profile:
            raise AcmeError(
                ErrorType.INVALID_PROFILE,
                f"profile {profile!r} is not offered to this account: its application is for "
                f"{app.profile}",
            )
        if app.state not in _ORDERING_STATES:
            raise unauthorized(f"the application is {app.state}")
        # The e-mailed EAB secret proved control of the vetted address, and the RA vetted the
        # person: the authorization is valid from the start (docs/flow.md).
        return profile, AuthzStatus.VALID

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
        key = await policy.eab_policy(self.store, account)
        policy.policy_identifiers(key, request.identifiers)
        if key.max_certificates is not None:
            issued = await self.store.acme_count_certificates(account.eab_kid)
            if issued >= key.max_certificates:
                raise unauthorized(
                    f"this account's external account binding allows {key.max_certificates} "
                    "certificates, all issued"
                )
        return profile, AuthzStatus.PENDING

    async def _check_replaces(self, account: AcmeAccountRecord, cert_id: str | None) -> str | None:
        """RFC 9773 §5: ``replaces`` names a certificate of this account not yet replaced."""
        if cert_id is None:
            return None
        key_id, serial = messages.parse_ari_cert_id(cert_id)
        generation = generation_by_key_id(self.authority.generations, key_id)
        if generation is None:
            raise messages.malformed("replaces names a certificate this CA did not issue")
        order = await self.store.acme_order_by_certificate(generation, serial)
        if order is None or order.account_id != account.id:
            raise unauthorized("replaces names a certificate not issued to this account")
        for other in await self.store.acme_orders_replacing(cert_id):
            if other.status != OrderStatus.INVALID:
                raise AcmeError(
                    ErrorType.ALREADY_REPLACED,
                    f"order {self.urls.order(other.id)} already replaces this certificate",
                )
        return cert_id

    async def refresh(self, order: AcmeOrderRecord) -> AcmeOrderRecord:
        """Lazy transitions: expiry, authorizations that became valid or failed (§7.1.6), a
        personal order whose issuance waits for the RA."""
        now = self.clock.now()
        status = OrderStatus(order.status)
        if status in EXPIRABLE_ORDERS and now > order.expires_at:
            return await self.fail(
                order,
                AcmeError(ErrorType.MALFORMED, "the order expired before it was finalized"),
                Event.EXPIRE,
            )
        if status == OrderStatus.PENDING:
            authzs = [await self.authorizations.load(a) for a in order.authz_ids]
            failed = [
                a
                for a in authzs
                if a.status != AuthzStatus.PENDING and a.status != AuthzStatus.VALID
            ]
            if failed:
                return await self.fail(order, _authz_failure(failed))
            if all(a.status == AuthzStatus.VALID for a in authzs):
                with contextlib.suppress(Conflict):
                    return await move_order(self.store, order, Event.AUTHORIZED, now)
                return await self.store.acme_order(order.id)
        if status == OrderStatus.PROCESSING and order.csr_der is not None:
            # A personal renewal waiting for the RA, or an issuance a stopped process left.
            with contextlib.suppress(AcmeError):
                return await self._resume(order)
            return await self.store.acme_order(order.id)
        return order

    async def fail(
        self, order: AcmeOrderRecord, error: AcmeError, event: Event = Event.FAIL
    ) -> AcmeOrderRecord:
        """The order -> invalid with ``error`` (§7.1.6), or as another request left it."""
        try:
            return await move_order(
                self.store, order, event, self.clock.now(), error=error.to_json()
            )
        except Conflict:
            return await self.store.acme_order(order.id)

    def order_json(self, order: AcmeOrderRecord) -> dict[str, Any]:
        certificate = None
        if order.status == OrderStatus.VALID:
            certificate = self.urls.certificate(order.id)
        return OrderObject(
            status=order.status,
            expires=order.expires_at,
            identifiers=[Identifier(t, v) for t, v in order.identifiers],
            authorizations=[self.urls.authz(a) for a in order.authz_ids],
            finalize=self.urls.finalize(order.id),
            error=order.error,
            certificate=certificate,
            profile=order.profile,
            replaces=order.replaces,
        ).to_json()

    async def owned(self, verified: Verified, order_id: str) -> AcmeOrderRecord:
        try:
            order = await self.store.acme_order(known_id(order_id))
        except NotFound:
            raise not_found("order") from None
        verified.own(order.account_id, "order")
        return order

    def reply(self, order: AcmeOrderRecord) -> Reply:
        retry = None
        if order.status == OrderStatus.PROCESSING:
            # §7.4: a processing order tells the client when to look again.
            retry = (
                self.retry_after_approval
                if order.reenrollment_id
                else (self.config.retry_after_seconds)
            )
        return Reply(self.order_json(order), location=self.urls.order(order.id), retry_after=retry)

    async def order(self, verified: Verified, order_id: str) -> Reply:
        order = await self.owned(verified, order_id)
        if not verified.post_as_get:
            raise messages.malformed("an order is read with POST-as-GET (empty payload, §6.3)")
        return self.reply(await self.refresh(order))

    async def orders(self, verified: Verified, account_id: str, cursor: str | None) -> Reply:
        """§7.1.2.1: the account's orders, a page at a time with Link rel="next"."""
        verified.own(account_id, "account")
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
            links.append((self.urls.account_orders(account_id) + f"?cursor={page[-1].seq}", "next"))
        # §7.1.2.1: pending and valid orders; invalid ones are left out.
        urls = [self.urls.order(o.id) for o in page if o.status != OrderStatus.INVALID]
        return Reply({"orders": urls}, links=links)


def _authz_failure(failed: list[AcmeAuthzRecord]) -> AcmeError:
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

"""ACME's part of the store (``ACMEStore``, RFC 8555): nonces, EAB keys, accounts, orders,
authorizations and challenges.

Longer than the other parts because ACME has six resources, each with its reads and its
conditional writes; they stay together since orders, authorizations and challenges change in
one transaction (``acme_update_challenge``, ``acme_deactivate_account``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from jitsuin.protocol.acme.status import (
    AUTHORIZATION,
    ORDER,
    AccountStatus,
    AuthzStatus,
    ChallengeStatus,
    Event,
    OrderStatus,
    states_allowing,
)
from jitsuin.server.storage import (
    ACME_CANCELLABLE_ORDERS,
    AcmeAccountRecord,
    AcmeAuthzRecord,
    AcmeChallengeRecord,
    AcmeEABKeyRecord,
    AcmeOrderRecord,
    AuditEvent,
    CertificateRecord,
    Conflict,
    NotFound,
    acme_cancelled,
    canonical_details,
)
from jitsuin.server.storage.driver import (
    Reader,
    Row,
    Session,
    Violation,
    marks,
    moment,
    when,
)
from jitsuin.server.storage.store_base import Part, hex_serial, insert_new


class Nonces(Protocol):
    """Where a store keeps the ACME nonces it hands out (RFC 8555 §6.5): in the process's memory
    (``sqlite.MemoryNonces``) or in a table every process sees (``postgres.TableNonces``)."""

    async def add(self, values: Sequence[str], expires_at: dt.datetime) -> None: ...

    async def use(self, value: str, now: dt.datetime) -> bool: ...

    async def prune(self, now: dt.datetime) -> int: ...


class ACMEPart(Part):
    """``ACMEStore``."""

    _nonces: Nonces

    async def acme_add_nonce(self, value: str, expires_at: dt.datetime) -> None:
        await self._nonces.add([value], expires_at)

    async def acme_add_nonces(self, values: Sequence[str], expires_at: dt.datetime) -> None:
        await self._nonces.add(values, expires_at)

    async def acme_use_nonce(self, value: str, now: dt.datetime) -> bool:
        return await self._nonces.use(value, now)

    async def acme_prune_nonces(self, now: dt.datetime) -> int:
        return await self._nonces.prune(now)

    async def acme_add_eab_key(self, record: AcmeEABKeyRecord, audit: AuditEvent) -> None:
        async def body(db: Session) -> None:
            await insert_new(
                db,
                f"EAB key {record.kid} exists",
                f"INSERT INTO acme_eab_keys ({_EAB_COLUMNS}) VALUES ({marks(12)})",  # noqa: S608
                record.kid,
                record.key_sealed,
                json.dumps(list(record.allowed)),
                record.lifetime_days,
                record.max_certificates,
                record.expires_at,
                record.note,
                record.created_by,
                record.created_at,
                record.used_at,
                record.account_id,
                record.disabled_at,
            )
            await self._append(db, audit)

        await self._db.transaction(body)

    async def acme_eab_key(self, kid: str) -> AcmeEABKeyRecord:
        row = await self._db.lookups.fetchrow(
            f"SELECT {_EAB_COLUMNS} FROM acme_eab_keys WHERE kid = ?",  # noqa: S608
            kid,
        )
        if row is None:
            raise NotFound(f"no EAB key {kid}")
        return _eab_key(row)

    async def acme_eab_keys(self) -> list[AcmeEABKeyRecord]:
        rows = await self._db.fetch(
            f"SELECT {_EAB_COLUMNS} FROM acme_eab_keys ORDER BY created_at, kid"  # noqa: S608
        )
        return [_eab_key(r) for r in rows]

    async def acme_disable_eab_key(self, kid: str, at: dt.datetime, audit: AuditEvent) -> None:
        await self._change_one(
            "UPDATE acme_eab_keys SET disabled_at = coalesce(disabled_at, ?) WHERE kid = ?",
            (at, kid),
            NotFound(f"no EAB key {kid}"),
            audit,
        )

    async def acme_create_account(
        self, record: AcmeAccountRecord, audit: AuditEvent, operator_key: bool
    ) -> None:
        async def body(db: Session) -> None:
            if operator_key:
                # EAB single use across processes: the second of two racing bindings waits for
                # the first's lock, then finds used_at set and updates nothing.
                changed = await db.execute(
                    "UPDATE acme_eab_keys SET used_at = ?, account_id = ?"
                    " WHERE kid = ? AND used_at IS NULL AND disabled_at IS NULL",
                    record.created_at,
                    record.id,
                    record.eab_kid,
                )
                if changed != 1:
                    raise Conflict(f"EAB key {record.eab_kid} is used, disabled or unknown")
            try:
                await db.execute(
                    f"INSERT INTO acme_accounts ({_ACCOUNT_COLUMNS}) VALUES ({marks(12)})",  # noqa: S608
                    record.id,
                    record.thumbprint,
                    canonical_details(record.jwk),
                    json.dumps(list(record.contact)),
                    record.status,
                    record.kind,
                    record.eab_kid,
                    record.eab_alg,
                    record.application_id,
                    bool(record.terms_agreed),
                    record.created_at,
                    record.updated_at,
                )
            except Violation as exc:
                if "thumbprint" in exc.columns:
                    raise Conflict("this key already has an account") from exc
                if "eab_kid" in exc.columns:
                    raise Conflict("this external account binding was used before") from exc
                raise Conflict(str(exc)) from exc
            await self._append(db, audit)

        await self._db.transaction(body)

    async def _acme_account_where(self, clause: str, *args: Any) -> AcmeAccountRecord | None:
        row = await self._db.lookups.fetchrow(
            f"SELECT {_ACCOUNT_COLUMNS} FROM acme_accounts WHERE {clause}",  # noqa: S608
            *args,
        )
        return _acme_account(row) if row else None

    async def acme_account(self, account_id: str) -> AcmeAccountRecord:
        found = await self._acme_account_where("id = ?", account_id)
        if found is None:
            raise NotFound(f"no ACME account {account_id}")
        return found

    async def acme_account_by_thumbprint(self, thumbprint: str) -> AcmeAccountRecord | None:
        return await self._acme_account_where("thumbprint = ?", thumbprint)

    async def _acme_change_account(
        self, account_id: str, assignments: str, args: tuple[Any, ...], audit: AuditEvent
    ) -> AcmeAccountRecord:
        """``UPDATE acme_accounts SET assignments`` with its audit entry, and the account as
        written, in one transaction."""

        async def body(db: Session) -> AcmeAccountRecord:
            try:
                changed = await db.execute(
                    f"UPDATE acme_accounts SET {assignments} WHERE id = ?",  # noqa: S608
                    *args,
                    account_id,
                )
            except Violation as exc:
                raise Conflict("this key already has an account") from exc
            if changed != 1:
                raise NotFound(f"no ACME account {account_id}")
            await self._append(db, audit)
            return await _account_in(db, account_id)

        return await self._db.transaction(body)

    async def acme_update_contact(
        self,
        account_id: str,
        contact: Sequence[str] | None,
        terms_agreed: bool | None,
        at: dt.datetime,
        audit: AuditEvent,
    ) -> AcmeAccountRecord:
        return await self._acme_change_account(
            account_id,
            "contact = coalesce(?, contact), terms_agreed = coalesce(?, terms_agreed),"
            " updated_at = ?",
            (None if contact is None else json.dumps(list(contact)), terms_agreed, at),
            audit,
        )

    async def acme_change_key(
        self,
        account_id: str,
        jwk: Mapping[str, Any],
        thumbprint: str,
        at: dt.datetime,
        audit: AuditEvent,
    ) -> AcmeAccountRecord:
        return await self._acme_change_account(
            account_id,
            "jwk = ?, thumbprint = ?, updated_at = ?",
            (canonical_details(jwk), thumbprint, at),
            audit,
        )

    @staticmethod
    async def _acme_insert_authz(db: Session, authz: AcmeAuthzRecord) -> None:
        await db.execute(
            "INSERT INTO acme_authorizations (id, account_id, identifier_type, identifier_value,"
            " wildcard, status, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            authz.id,
            authz.account_id,
            authz.identifier_type,
            authz.identifier_value,
            bool(authz.wildcard),
            authz.status,
            authz.expires_at,
            authz.created_at,
        )
        if authz.challenges:
            await db.executemany(
                "INSERT INTO acme_challenges (id, authz_id, type, token, status, validated_at,"
                " error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        challenge.id,
                        authz.id,
                        challenge.type,
                        challenge.token,
                        challenge.status,
                        challenge.validated_at,
                        canonical_details(challenge.error) if challenge.error else None,
                        challenge.updated_at,
                    )
                    for challenge in authz.challenges
                ],
            )

    async def acme_add_order(
        self,
        order: AcmeOrderRecord,
        new_authorizations: list[AcmeAuthzRecord],
        audit: AuditEvent,
    ) -> None:
        async def body(db: Session) -> None:
            for authz in new_authorizations:
                await self._acme_insert_authz(db, authz)
            await db.execute(
                "INSERT INTO acme_orders (id, account_id, status, expires_at, identifiers,"
                " profile, replaces, error, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                order.id,
                order.account_id,
                order.status,
                order.expires_at,
                json.dumps([list(i) for i in order.identifiers]),
                order.profile,
                order.replaces,
                canonical_details(order.error) if order.error else None,
                order.created_at,
                order.updated_at,
            )
            if order.authz_ids:
                await db.executemany(
                    "INSERT INTO acme_order_authorizations (order_id, authz_id) VALUES (?, ?)",
                    [(order.id, authz_id) for authz_id in order.authz_ids],
                )
            await self._append(db, audit)

        await self._db.transaction(body)

    async def acme_add_authorization(self, authz: AcmeAuthzRecord, audit: AuditEvent) -> None:
        async def body(db: Session) -> None:
            await self._acme_insert_authz(db, authz)
            await self._append(db, audit)

        await self._db.transaction(body)

    @staticmethod
    async def _acme_orders_where(db: Reader, clause: str, *args: Any) -> list[AcmeOrderRecord]:
        """The orders ``clause`` selects, each with its authorizations' ids in creation order:
        two queries, run on one connection (``Driver.read``) or in the caller's transaction."""
        rows = await db.fetch(
            f"SELECT {_ORDER_COLUMNS} FROM acme_orders WHERE {clause}",  # noqa: S608
            *args,
        )
        if not rows:
            return []
        links = await db.fetch(
            "SELECT l.order_id, l.authz_id FROM acme_order_authorizations l"  # noqa: S608
            " JOIN acme_authorizations a ON a.id = l.authz_id"
            f" WHERE l.order_id IN ({marks(len(rows))}) ORDER BY a.seq",
            *(row[1] for row in rows),
        )
        authz_ids: dict[str, list[str]] = {}
        for order_id, authz_id in links:
            authz_ids.setdefault(order_id, []).append(authz_id)
        return [_acme_order(row, tuple(authz_ids.get(row[1], ()))) for row in rows]

    async def _acme_orders(self, clause: str, *args: Any) -> list[AcmeOrderRecord]:
        # Every clause here is by an index (id, account and seq, certificate, replaces).
        return await self._db.lookups.read(lambda db: self._acme_orders_where(db, clause, *args))

    async def acme_order(self, order_id: str) -> AcmeOrderRecord:
        found = await self._acme_orders("id = ?", order_id)
        if not found:
            raise NotFound(f"no ACME order {order_id}")
        return found[0]

    async def acme_orders(
        self, account_id: str, after_seq: int, limit: int
    ) -> list[AcmeOrderRecord]:
        return await self._acme_orders(
            "account_id = ? AND seq > ? ORDER BY seq LIMIT ?", account_id, after_seq, limit
        )

    async def _acme_set_order(
        self,
        order_id: str,
        expected_status: str,
        assignments: str,
        args: tuple[Any, ...],
        audit: AuditEvent | None = None,
        certificate: CertificateRecord | None = None,
    ) -> AcmeOrderRecord:
        """``UPDATE acme_orders SET assignments`` if the order is still ``expected_status``,
        ``certificate`` and ``audit`` recorded, and the order as written: one transaction."""

        async def body(db: Session) -> AcmeOrderRecord:
            # The status check and the change are one statement: of two processes finalizing
            # one order, exactly one moves it on (and records its certificate).
            changed = await db.execute(
                f"UPDATE acme_orders SET {assignments} WHERE id = ? AND status = ?",  # noqa: S608
                *args,
                order_id,
                expected_status,
            )
            if changed != 1:
                raise Conflict(f"order {order_id} is no longer {expected_status}")
            if certificate is not None:
                await self._insert_certificate(db, certificate)
            if audit is not None:
                await self._append(db, audit)
            (found,) = await self._acme_orders_where(db, "id = ?", order_id)
            return found

        return await self._db.transaction(body)

    async def acme_move_order(
        self,
        order_id: str,
        expected_status: str,
        status: str,
        at: dt.datetime,
        *,
        error: Mapping[str, Any] | None = None,
        audit: AuditEvent | None = None,
    ) -> AcmeOrderRecord:
        if error is None:
            return await self._acme_set_order(
                order_id, expected_status, "status = ?, updated_at = ?", (status, at), audit
            )
        return await self._acme_set_order(
            order_id,
            expected_status,
            "status = ?, error = ?, updated_at = ?",
            (status, canonical_details(error), at),
            audit,
        )

    async def acme_finalize_order(
        self,
        order_id: str,
        expected_status: str,
        status: str,
        csr_der: bytes,
        at: dt.datetime,
        audit: AuditEvent,
    ) -> AcmeOrderRecord:
        return await self._acme_set_order(
            order_id,
            expected_status,
            "status = ?, csr_der = ?, updated_at = ?",
            (status, csr_der, at),
            audit,
        )

    async def acme_issue_order(
        self,
        order_id: str,
        expected_status: str,
        status: str,
        generation: int,
        serial: int,
        at: dt.datetime,
        audit: AuditEvent | None = None,
        certificate: CertificateRecord | None = None,
    ) -> AcmeOrderRecord:
        return await self._acme_set_order(
            order_id,
            expected_status,
            "status = ?, certificate_generation = ?, certificate_serial = ?, updated_at = ?",
            (status, generation, hex_serial(serial), at),
            audit,
            certificate,
        )

    async def acme_await_reenrollment(
        self, order_id: str, expected_status: str, reenrollment_id: int, at: dt.datetime
    ) -> AcmeOrderRecord:
        return await self._acme_set_order(
            order_id,
            expected_status,
            "reenrollment_id = ?, updated_at = ?",
            (reenrollment_id, at),
        )

    async def acme_order_by_certificate(
        self, generation: int, serial: int
    ) -> AcmeOrderRecord | None:
        found = await self._acme_orders(
            "certificate_generation = ? AND certificate_serial = ?", generation, hex_serial(serial)
        )
        return found[0] if found else None

    async def acme_orders_replacing(self, cert_id: str) -> list[AcmeOrderRecord]:
        return await self._acme_orders("replaces = ? ORDER BY seq", cert_id)

    async def acme_count_orders(
        self, account_id: str, since: dt.datetime
    ) -> tuple[int, dt.datetime | None]:
        # acme_orders_account_created: the orders of the window, at most the rate limit's count.
        row = await self._db.lookups.fetchrow(
            "SELECT count(*), min(created_at) FROM acme_orders"
            " WHERE account_id = ? AND created_at > ?",
            account_id,
            since,
        )
        assert row is not None
        return int(row[0]), moment(row[1])

    async def acme_count_certificates(self, eab_kid: str) -> int:
        row = await self._db.fetchrow(
            "SELECT count(*) FROM acme_orders o JOIN acme_accounts a ON a.id = o.account_id"
            " WHERE a.eab_kid = ? AND o.certificate_serial IS NOT NULL",
            eab_kid,
        )
        return int(row[0]) if row else 0

    @staticmethod
    async def _acme_authz_where(db: Reader, clause: str, *args: Any) -> AcmeAuthzRecord | None:
        """The first authorization ``clause`` selects, with its challenges (as
        ``_acme_orders_where``, two queries)."""
        row = await db.fetchrow(
            f"SELECT {_AUTHZ_COLUMNS} FROM acme_authorizations WHERE {clause}",  # noqa: S608
            *args,
        )
        if row is None:
            return None
        challenges = await db.fetch(
            f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE authz_id = ?"  # noqa: S608
            " ORDER BY seq",
            row[0],
        )
        return _acme_authz(row, tuple(_acme_challenge(c) for c in challenges))

    async def _acme_authz(self, clause: str, *args: Any) -> AcmeAuthzRecord | None:
        # Every clause here is by an index (id, challenge id, acme_authorizations_reuse).
        return await self._db.lookups.read(lambda db: self._acme_authz_where(db, clause, *args))

    async def acme_authorization(self, authz_id: str) -> AcmeAuthzRecord:
        found = await self._acme_authz("id = ?", authz_id)
        if found is None:
            raise NotFound(f"no ACME authorization {authz_id}")
        return found

    async def acme_authorization_of_challenge(self, challenge_id: str) -> AcmeAuthzRecord:
        found = await self._acme_authz(
            "id = (SELECT authz_id FROM acme_challenges WHERE id = ?)", challenge_id
        )
        if found is None:
            raise NotFound(f"no ACME challenge {challenge_id}")
        return found

    async def acme_reusable_authorization(
        self,
        account_id: str,
        identifier_type: str,
        identifier_value: str,
        wildcard: bool,
        now: dt.datetime,
    ) -> AcmeAuthzRecord | None:
        return await self._acme_authz(
            "account_id = ? AND identifier_type = ? AND identifier_value = ? AND wildcard = ?"
            " AND status = 'valid' AND expires_at > ? ORDER BY seq DESC LIMIT 1",
            account_id,
            identifier_type,
            identifier_value,
            bool(wildcard),
            now,
        )

    async def acme_update_authorization(
        self, authz_id: str, expected_status: str, status: str, audit: AuditEvent | None = None
    ) -> AcmeAuthzRecord:
        async def body(db: Session) -> AcmeAuthzRecord:
            changed = await db.execute(
                "UPDATE acme_authorizations SET status = ? WHERE id = ? AND status = ?",
                status,
                authz_id,
                expected_status,
            )
            if changed != 1:
                raise Conflict(f"authorization {authz_id} is no longer {expected_status}")
            if audit is not None:
                await self._append(db, audit)
            found = await self._acme_authz_where(db, "id = ?", authz_id)
            assert found is not None
            return found

        return await self._db.transaction(body)

    async def acme_challenge(self, challenge_id: str) -> AcmeChallengeRecord:
        row = await self._db.lookups.fetchrow(
            f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = ?",  # noqa: S608
            challenge_id,
        )
        if row is None:
            raise NotFound(f"no ACME challenge {challenge_id}")
        return _acme_challenge(row)

    async def acme_update_challenge(
        self,
        challenge_id: str,
        expected_status: str,
        status: str,
        at: dt.datetime,
        error: Mapping[str, Any] | None = None,
        authz_status: str | None = None,
        audit: AuditEvent | None = None,
        order_status: str | None = None,
    ) -> AcmeChallengeRecord:
        async def body(db: Session) -> AcmeChallengeRecord:
            changed = await db.execute(
                "UPDATE acme_challenges SET status = ?, updated_at = ?, error = ?,"
                " validated_at = CASE WHEN ? THEN ? ELSE validated_at END"
                " WHERE id = ? AND status = ?",
                status,
                at,
                canonical_details(error) if error else None,
                status == "valid",
                at,
                challenge_id,
                expected_status,
            )
            if changed != 1:
                raise Conflict(f"challenge {challenge_id} is no longer {expected_status}")
            if authz_status is not None:
                await db.execute(
                    "UPDATE acme_authorizations SET status = ?"  # noqa: S608
                    f" WHERE status IN ({marks(len(_UNDECIDED_AUTHORIZATIONS))}) AND id ="
                    " (SELECT authz_id FROM acme_challenges WHERE id = ?)",
                    authz_status,
                    *_UNDECIDED_AUTHORIZATIONS,
                    challenge_id,
                )
            if authz_status is not None and order_status is not None:
                await db.execute(
                    "UPDATE acme_orders SET status = ?, updated_at = ?"  # noqa: S608
                    f" WHERE status IN ({marks(len(_AUTHORIZABLE_ORDERS))}) AND expires_at > ?"
                    " AND id IN (SELECT l.order_id FROM acme_order_authorizations l"
                    "  JOIN acme_challenges c ON c.authz_id = l.authz_id WHERE c.id = ?)"
                    " AND NOT EXISTS (SELECT 1 FROM acme_order_authorizations o"
                    "  JOIN acme_authorizations a ON a.id = o.authz_id"
                    "  WHERE o.order_id = acme_orders.id AND a.status <> ?)",
                    order_status,
                    at,
                    *_AUTHORIZABLE_ORDERS,
                    at,
                    challenge_id,
                    AuthzStatus.VALID,
                )
            if audit is not None:
                await self._append(db, audit)
            row = await db.fetchrow(
                f"SELECT {_CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = ?",  # noqa: S608
                challenge_id,
            )
            assert row is not None
            return _acme_challenge(row)

        return await self._db.transaction(body)

    async def acme_deactivate_account(
        self,
        account_id: str,
        status: str,
        order_error: Mapping[str, Any],
        audit: AuditEvent,
        *,
        contact: Sequence[str] | None = None,
        terms_agreed: bool | None = None,
    ) -> AcmeAccountRecord:
        cancellable = marks(len(ACME_CANCELLABLE_ORDERS))

        async def body(db: Session) -> AcmeAccountRecord:
            changed = await db.execute(
                "UPDATE acme_accounts SET status = ?, contact = coalesce(?, contact),"
                " terms_agreed = coalesce(?, terms_agreed), updated_at = ?"
                " WHERE id = ? AND status = 'valid'",
                status,
                None if contact is None else json.dumps(list(contact)),
                terms_agreed,
                audit.at,
                account_id,
            )
            if changed != 1:
                row = await db.fetchrow("SELECT status FROM acme_accounts WHERE id = ?", account_id)
                if row is None:
                    raise NotFound(f"no ACME account {account_id}")
                raise Conflict(f"ACME account {account_id} is {row[0]}, not valid")
            # Only what is read here is changed: the rows are locked as they are read
            # (``for_update``), so an order issued meanwhile is not cancelled.
            orders = await db.fetch(
                "SELECT id, status FROM acme_orders"  # noqa: S608
                f" WHERE account_id = ? AND status IN ({cancellable}) ORDER BY seq"
                f"{db.for_update}",
                account_id,
                *ACME_CANCELLABLE_ORDERS,
            )
            if orders:
                await db.execute(
                    "UPDATE acme_orders SET status = ?, error = ?, updated_at = ?"  # noqa: S608
                    f" WHERE id IN ({marks(len(orders))})",
                    OrderStatus.INVALID,
                    canonical_details(order_error),
                    audit.at,
                    *(row[0] for row in orders),
                )
            authzs = await db.fetch(
                "SELECT id, status FROM acme_authorizations"  # noqa: S608
                f" WHERE account_id = ? AND status IN ({marks(len(_UNDECIDED_AUTHORIZATIONS))})"
                f" ORDER BY seq{db.for_update}",
                account_id,
                *_UNDECIDED_AUTHORIZATIONS,
            )
            if authzs:
                await db.execute(
                    "UPDATE acme_authorizations SET status = ?"  # noqa: S608
                    f" WHERE id IN ({marks(len(authzs))})",
                    AuthzStatus.DEACTIVATED,
                    *(row[0] for row in authzs),
                )
            await self._append(db, audit)
            for order_id, previous in orders:
                await self._append(db, acme_cancelled("order", order_id, previous, audit))
            for authz_id, previous in authzs:
                await self._append(db, acme_cancelled("authz", authz_id, previous, audit))
            return await _account_in(db, account_id)

        return await self._db.transaction(body)


# Read off the tables (protocol/acme/status.py): the authorizations a challenge's outcome still
# decides (pending), which an account's deactivation also ends (RFC 8555 §7.3.6), and the orders
# that become ready once all their authorizations are valid (§7.1.6).
_UNDECIDED_AUTHORIZATIONS = states_allowing(AUTHORIZATION, Event.SUCCEED)
_AUTHORIZABLE_ORDERS = states_allowing(ORDER, Event.AUTHORIZED)

_EAB_COLUMNS = (
    "kid, key_sealed, allowed, lifetime_days, max_certificates, expires_at, note, created_by,"
    " created_at, used_at, account_id, disabled_at"
)
_ACCOUNT_COLUMNS = (
    "id, thumbprint, jwk, contact, status, kind, eab_kid, eab_alg, application_id,"
    " terms_agreed, created_at, updated_at"
)
_ORDER_COLUMNS = (
    "seq, id, account_id, status, expires_at, identifiers, profile, replaces, error, csr_der,"
    " reenrollment_id, certificate_generation, certificate_serial, created_at, updated_at"
)
_AUTHZ_COLUMNS = (
    "id, account_id, identifier_type, identifier_value, wildcard, status, expires_at, created_at"
)
_CHALLENGE_COLUMNS = "id, authz_id, type, token, status, updated_at, validated_at, error"


def _eab_key(row: Row) -> AcmeEABKeyRecord:
    return AcmeEABKeyRecord(
        kid=row[0],
        key_sealed=bytes(row[1]),
        allowed=tuple(json.loads(row[2])),
        lifetime_days=row[3],
        max_certificates=row[4],
        expires_at=moment(row[5]),
        note=row[6],
        created_by=row[7],
        created_at=when(row[8]),
        used_at=moment(row[9]),
        account_id=row[10],
        disabled_at=moment(row[11]),
    )


async def _account_in(db: Reader, account_id: str) -> AcmeAccountRecord:
    """The account as the transaction ``db`` sees it (it exists)."""
    row = await db.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM acme_accounts WHERE id = ?",  # noqa: S608
        account_id,
    )
    assert row is not None
    return _acme_account(row)


def _acme_account(row: Row) -> AcmeAccountRecord:
    return AcmeAccountRecord(
        id=row[0],
        thumbprint=row[1],
        jwk=json.loads(row[2]),
        contact=tuple(json.loads(row[3])),
        status=AccountStatus(row[4]),
        kind=row[5],
        eab_kid=row[6],
        eab_alg=row[7],
        application_id=row[8],
        terms_agreed=bool(row[9]),
        created_at=when(row[10]),
        updated_at=when(row[11]),
    )


def _acme_order(row: Row, authz_ids: tuple[str, ...]) -> AcmeOrderRecord:
    return AcmeOrderRecord(
        seq=row[0],
        id=row[1],
        account_id=row[2],
        status=OrderStatus(row[3]),
        expires_at=when(row[4]),
        identifiers=tuple((i[0], i[1]) for i in json.loads(row[5])),
        profile=row[6],
        replaces=row[7],
        error=json.loads(row[8]) if row[8] else None,
        csr_der=bytes(row[9]) if row[9] is not None else None,
        reenrollment_id=row[10],
        certificate_generation=row[11],
        certificate_serial=row[12],
        created_at=when(row[13]),
        updated_at=when(row[14]),
        authz_ids=authz_ids,
    )


def _acme_authz(row: Row, challenges: tuple[AcmeChallengeRecord, ...]) -> AcmeAuthzRecord:
    return AcmeAuthzRecord(
        id=row[0],
        account_id=row[1],
        identifier_type=row[2],
        identifier_value=row[3],
        wildcard=bool(row[4]),
        status=AuthzStatus(row[5]),
        expires_at=when(row[6]),
        created_at=when(row[7]),
        challenges=challenges,
    )


def _acme_challenge(row: Row) -> AcmeChallengeRecord:
    return AcmeChallengeRecord(
        id=row[0],
        authz_id=row[1],
        type=row[2],
        token=row[3],
        status=ChallengeStatus(row[4]),
        updated_at=when(row[5]),
        validated_at=moment(row[6]),
        error=json.loads(row[7]) if row[7] else None,
    )

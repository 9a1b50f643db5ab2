"""The only way an order or an authorization changes status: one move function per resource,
which looks the event up in the transition table of ``jitsuin.protocol.acme.status`` (RFC 8555
§7.1.6) and hands the target status to the store, conditional on the status the record was read
in (Conflict if another request moved it meanwhile). An event the table does not allow raises
``IllegalTransition``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from jitsuin.protocol.acme.status import (
    AUTHORIZATION,
    CHALLENGE,
    ORDER,
    AuthzStatus,
    ChallengeStatus,
    Event,
    OrderStatus,
    next_status,
)
from jitsuin.server.storage import (
    AcmeAuthzRecord,
    AcmeChallengeRecord,
    AcmeOrderRecord,
    AuditEvent,
    CertificateRecord,
    Store,
)


def _order_target(order: AcmeOrderRecord, event: Event) -> str:
    return next_status(ORDER, OrderStatus(order.status), event).value


async def move_order(
    store: Store,
    order: AcmeOrderRecord,
    event: Event,
    at: dt.datetime,
    *,
    error: Mapping[str, Any] | None = None,
) -> AcmeOrderRecord:
    """``order`` after ``event`` (with ``error`` when it fails)."""
    return await store.acme_move_order(
        order.id, order.status, _order_target(order, event), at, error=error
    )


async def finalize_order(
    store: Store, order: AcmeOrderRecord, csr_der: bytes, at: dt.datetime, audit: AuditEvent
) -> AcmeOrderRecord:
    """``order`` after FINALIZE with the CSR (§7.4)."""
    target = _order_target(order, Event.FINALIZE)
    return await store.acme_finalize_order(order.id, order.status, target, csr_der, at, audit)


async def issue_order(
    store: Store,
    order: AcmeOrderRecord,
    generation: int,
    serial: int,
    at: dt.datetime,
    audit: AuditEvent | None = None,
    certificate: CertificateRecord | None = None,
) -> AcmeOrderRecord:
    """``order`` after ISSUE with its certificate, recorded in the same transaction when
    ``certificate`` is given."""
    target = _order_target(order, Event.ISSUE)
    return await store.acme_issue_order(
        order.id, order.status, target, generation, serial, at, audit, certificate
    )


async def move_authorization(
    store: Store, authz: AcmeAuthzRecord, event: Event, audit: AuditEvent | None = None
) -> AcmeAuthzRecord:
    target = next_status(AUTHORIZATION, AuthzStatus(authz.status), event)
    return await store.acme_update_authorization(authz.id, authz.status, target.value, audit)


async def move_challenge(
    store: Store,
    challenge: AcmeChallengeRecord,
    event: Event,
    at: dt.datetime,
    *,
    error: Mapping[str, Any] | None = None,
    audit: AuditEvent | None = None,
) -> AcmeChallengeRecord:
    """A challenge after ``event``. A validation's outcome (SUCCEED or FAIL out of processing)
    moves its pending authorization by the same event in the same transaction, and an
    authorization that became valid the pending orders whose authorizations are now all valid
    (AUTHORIZED): the validation is one protocol step, one transaction."""
    status = ChallengeStatus(challenge.status)
    target = next_status(CHALLENGE, status, event)
    authz_target = order_target = None
    if status is ChallengeStatus.PROCESSING:
        authz = next_status(AUTHORIZATION, AuthzStatus.PENDING, event)
        authz_target = authz.value
        if authz is AuthzStatus.VALID:
            order_target = next_status(ORDER, OrderStatus.PENDING, Event.AUTHORIZED).value
    return await store.acme_update_challenge(
        challenge.id,
        challenge.status,
        target.value,
        at,
        error=error,
        authz_status=authz_target,
        audit=audit,
        order_status=order_target,
    )

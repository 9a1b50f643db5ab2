"""In memory: the ARI window (RFC 9773) and the sets of states derived from the RFC 8555 §7.1.6
transition tables."""

from __future__ import annotations

import datetime as dt

from jitsuin.protocol.acme.ari import suggested_window
from jitsuin.protocol.acme.status import (
    CANCELLABLE_ORDERS,
    DEACTIVATABLE_AUTHORIZATIONS,
    EXPIRABLE_AUTHORIZATIONS,
    EXPIRABLE_ORDERS,
    ORDER,
    AuthzStatus,
    Event,
    OrderStatus,
    states_allowing,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_the_window_is_the_fifth_sixth_of_the_lifetime() -> None:
    not_before = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    not_after = not_before + dt.timedelta(days=90)
    start, end = suggested_window(not_before, not_after, NOW, renew_now=False)
    assert start == not_before + dt.timedelta(days=60)
    assert end == not_before + dt.timedelta(days=75)


def test_renew_now_is_a_window_wholly_in_the_past() -> None:
    """RFC 9773 §4.2: a time in the past means renew at once; ending an hour ago, it is past for
    a client whose clock is up to an hour slow (§7)."""
    start, end = suggested_window(NOW, NOW + dt.timedelta(days=90), NOW, renew_now=True)
    assert start < end == NOW - dt.timedelta(hours=1)


def test_state_sets_come_from_the_tables() -> None:
    assert CANCELLABLE_ORDERS == (OrderStatus.PENDING, OrderStatus.READY, OrderStatus.PROCESSING)
    assert EXPIRABLE_ORDERS == (OrderStatus.PENDING, OrderStatus.READY)
    assert EXPIRABLE_AUTHORIZATIONS == (AuthzStatus.PENDING, AuthzStatus.VALID)
    assert DEACTIVATABLE_AUTHORIZATIONS == (AuthzStatus.PENDING, AuthzStatus.VALID)
    assert states_allowing(ORDER, Event.ISSUE) == (OrderStatus.PROCESSING,)
    assert states_allowing(ORDER, Event.RESPOND) == ()

"""The ACME status machines of RFC 8555 §7.1.6 (protocol/acme/status.py), read as tables in memory:
the paths the RFC draws are there, the moves it does not draw raise, and nothing leaves a final
state (docs/protocols.md, ACME 10; docs/architecture.md, house habit 3)."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import pytest

from jitsuin.protocol.acme.status import (
    ACCOUNT,
    AUTHORIZATION,
    CHALLENGE,
    ORDER,
    AccountStatus,
    AuthzStatus,
    ChallengeStatus,
    Event,
    IllegalTransition,
    OrderStatus,
    next_status,
)

TABLES: dict[str, tuple[Mapping[enum.StrEnum, Mapping[Event, enum.StrEnum]], type[enum.StrEnum]]]
TABLES = {
    "account": (ACCOUNT, AccountStatus),
    "order": (ORDER, OrderStatus),
    "authorization": (AUTHORIZATION, AuthzStatus),
    "challenge": (CHALLENGE, ChallengeStatus),
}


@pytest.mark.parametrize("name", TABLES)
def test_every_status_has_a_row_and_every_target_is_a_status(name: str) -> None:
    table, statuses = TABLES[name]
    assert set(table) == set(statuses)
    for row in table.values():
        assert all(isinstance(target, statuses) for target in row.values())


@pytest.mark.parametrize("name", TABLES)
def test_every_status_is_reachable_from_the_first(name: str) -> None:
    table, statuses = TABLES[name]
    seen, todo = set(), [next(iter(statuses))]
    while todo:
        state = todo.pop()
        if state not in seen:
            seen.add(state)
            todo.extend(table[state].values())
    assert seen == set(statuses)


def _walk(table, state, *events):  # type: ignore[no-untyped-def]
    for event in events:
        state = next_status(table, state, event)
    return state


def test_an_order_goes_pending_ready_processing_valid() -> None:
    path = (Event.AUTHORIZED, Event.FINALIZE, Event.ISSUE)
    assert _walk(ORDER, OrderStatus.PENDING, *path) is OrderStatus.VALID
    assert _walk(ORDER, OrderStatus.PENDING, *path[:1]) is OrderStatus.READY
    assert _walk(ORDER, OrderStatus.PENDING, *path[:2]) is OrderStatus.PROCESSING


@pytest.mark.parametrize("state", [OrderStatus.PENDING, OrderStatus.READY, OrderStatus.PROCESSING])
def test_an_open_order_becomes_invalid_on_failure(state: OrderStatus) -> None:
    assert next_status(ORDER, state, Event.FAIL) is OrderStatus.INVALID


def test_an_order_expires_only_before_it_is_finalized() -> None:
    assert next_status(ORDER, OrderStatus.READY, Event.EXPIRE) is OrderStatus.INVALID
    with pytest.raises(IllegalTransition):
        next_status(ORDER, OrderStatus.PROCESSING, Event.EXPIRE)


@pytest.mark.parametrize("state", [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.VALID])
def test_only_a_ready_order_can_be_finalized(state: OrderStatus) -> None:
    # §7.4: finalizing an order that is not ready is orderNotReady
    with pytest.raises(IllegalTransition, match=f"cannot finalize in state {state.value}"):
        next_status(ORDER, state, Event.FINALIZE)


def test_authorizations() -> None:
    assert next_status(AUTHORIZATION, AuthzStatus.PENDING, Event.SUCCEED) is AuthzStatus.VALID
    assert next_status(AUTHORIZATION, AuthzStatus.PENDING, Event.FAIL) is AuthzStatus.INVALID
    # §7.1.6: a valid authorization can expire, be deactivated by the client or revoked
    valid = AUTHORIZATION[AuthzStatus.VALID]
    assert valid == {
        Event.EXPIRE: AuthzStatus.EXPIRED,
        Event.DEACTIVATE: AuthzStatus.DEACTIVATED,
        Event.REVOKE: AuthzStatus.REVOKED,
    }
    with pytest.raises(IllegalTransition):
        next_status(AUTHORIZATION, AuthzStatus.PENDING, Event.REVOKE)


def test_challenges() -> None:
    path = (Event.RESPOND, Event.SUCCEED)
    assert _walk(CHALLENGE, ChallengeStatus.PENDING, *path) is ChallengeStatus.VALID
    assert _walk(CHALLENGE, ChallengeStatus.PENDING, Event.RESPOND, Event.FAIL) is (
        ChallengeStatus.INVALID
    )
    with pytest.raises(IllegalTransition):  # validation starts only when the client responds
        next_status(CHALLENGE, ChallengeStatus.PENDING, Event.SUCCEED)


def test_accounts() -> None:
    assert next_status(ACCOUNT, AccountStatus.VALID, Event.DEACTIVATE) is AccountStatus.DEACTIVATED
    assert next_status(ACCOUNT, AccountStatus.VALID, Event.REVOKE) is AccountStatus.REVOKED


FINAL = [
    (ACCOUNT, AccountStatus.DEACTIVATED),
    (ACCOUNT, AccountStatus.REVOKED),
    (ORDER, OrderStatus.VALID),
    (ORDER, OrderStatus.INVALID),
    *((AUTHORIZATION, s) for s in AuthzStatus if s not in (AuthzStatus.PENDING, AuthzStatus.VALID)),
    (CHALLENGE, ChallengeStatus.VALID),
    (CHALLENGE, ChallengeStatus.INVALID),
]


@pytest.mark.parametrize(("table", "state"), FINAL, ids=[s.value for _, s in FINAL])
def test_nothing_leaves_a_final_state(table, state) -> None:  # type: ignore[no-untyped-def]
    assert table[state] == {}
    for event in Event:
        with pytest.raises(IllegalTransition, match=f"cannot {event.value} in state"):
            next_status(table, state, event)

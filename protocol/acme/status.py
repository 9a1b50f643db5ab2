"""The status machines of RFC 8555 §7.1.6 as tables (docs/architecture.md, house habit 3): ``{state:
{event: next}}``. An event a state does not list is an illegal transition. scripts/diagrams.py
draws ORDER, AUTHORIZATION, CHALLENGE and ACCOUNT in docs/flow.md §5; run it after changing a
table."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar


class IllegalTransition(Exception):
    pass


class AccountStatus(enum.StrEnum):
    VALID = "valid"
    DEACTIVATED = "deactivated"  # by the client (§7.3.6)
    REVOKED = "revoked"  # by the server


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


class AuthzStatus(enum.StrEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ChallengeStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


class Event(enum.StrEnum):
    DEACTIVATE = "deactivate"
    REVOKE = "revoke"
    AUTHORIZED = "authorized"  # every authorization of the order is valid
    FAIL = "fail"  # a validation or the issuance failed
    EXPIRE = "expire"
    FINALIZE = "finalize"
    ISSUE = "issue"
    RESPOND = "respond"  # the client asks for validation (§7.5.1)
    SUCCEED = "succeed"


ACCOUNT: Mapping[AccountStatus, Mapping[Event, AccountStatus]] = {
    AccountStatus.VALID: {
        Event.DEACTIVATE: AccountStatus.DEACTIVATED,
        Event.REVOKE: AccountStatus.REVOKED,
    },
    AccountStatus.DEACTIVATED: {},
    AccountStatus.REVOKED: {},
}

# §7.1.6: "pending -> ready -> processing -> valid", any of them -> invalid on an error or expiry.
ORDER: Mapping[OrderStatus, Mapping[Event, OrderStatus]] = {
    OrderStatus.PENDING: {
        Event.AUTHORIZED: OrderStatus.READY,
        Event.FAIL: OrderStatus.INVALID,
        Event.EXPIRE: OrderStatus.INVALID,
    },
    OrderStatus.READY: {
        Event.FINALIZE: OrderStatus.PROCESSING,
        Event.FAIL: OrderStatus.INVALID,
        Event.EXPIRE: OrderStatus.INVALID,
    },
    OrderStatus.PROCESSING: {
        Event.ISSUE: OrderStatus.VALID,
        Event.FAIL: OrderStatus.INVALID,
    },
    OrderStatus.VALID: {},
    OrderStatus.INVALID: {},
}

AUTHORIZATION: Mapping[AuthzStatus, Mapping[Event, AuthzStatus]] = {
    AuthzStatus.PENDING: {
        Event.SUCCEED: AuthzStatus.VALID,
        Event.FAIL: AuthzStatus.INVALID,
        Event.EXPIRE: AuthzStatus.EXPIRED,
        Event.DEACTIVATE: AuthzStatus.DEACTIVATED,
    },
    AuthzStatus.VALID: {
        Event.EXPIRE: AuthzStatus.EXPIRED,
        Event.DEACTIVATE: AuthzStatus.DEACTIVATED,
        Event.REVOKE: AuthzStatus.REVOKED,
    },
    AuthzStatus.INVALID: {},
    AuthzStatus.DEACTIVATED: {},
    AuthzStatus.EXPIRED: {},
    AuthzStatus.REVOKED: {},
}

CHALLENGE: Mapping[ChallengeStatus, Mapping[Event, ChallengeStatus]] = {
    ChallengeStatus.PENDING: {
        Event.RESPOND: ChallengeStatus.PROCESSING,
        Event.FAIL: ChallengeStatus.INVALID,
    },
    ChallengeStatus.PROCESSING: {
        Event.SUCCEED: ChallengeStatus.VALID,
        Event.FAIL: ChallengeStatus.INVALID,
    },
    ChallengeStatus.VALID: {},
    ChallengeStatus.INVALID: {},
}


S = TypeVar("S", bound=enum.StrEnum)


def next_status(table: Mapping[S, Mapping[Event, S]], state: S, event: Event) -> S:
    try:
        return table[state][event]
    except KeyError:
        raise IllegalTransition(f"cannot {event.value} in state {state.value}") from None

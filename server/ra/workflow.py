"""The application state machine as one table (docs/architecture.md, house habit 3; docs/flow.md).

received -> documents accepted / deficient -> inquiry sent -> letter returned signed and sealed,
and payment recorded (either order) -> online input received -> approved -> PIN sent -> issued;
rejected / abandoned from any open state; revoked / expired after issue.

Every set of states the RA asks about ("not yet approved", "can be redeemed", ...) is derived
from the table below, never restated. The one place an application's state changes is
``RABase.move`` (server/ra/base.py), which asks ``next_state`` for the target.

Adding a workflow step touches five files, each pointing to the next:
1. here: the state and event, and the event's row in ``_FLOW``; after changing the table, run
   scripts/diagrams.py to redraw docs/flow.md §5;
2. the service module of the step's stage (server/ra/intake.py, vetting.py, inquiry.py,
   applicant.py, approval.py, redemption.py or closing.py): a method that checks its
   permission and calls ``self.move(app, Event.X, actor, write)``, ``write`` being the store's
   write for the step (RAStore in server/storage/__init__.py; ``move_application`` when the
   step writes only its state);
3. server/ra/permissions.py: the step's permission and the roles that hold it;
4. server/ra/handlers.py: the route that calls the method;
5. server/ra/openapi.py: the route's path in the API description.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class State(enum.StrEnum):
    RECEIVED = "received"
    DOCUMENTS_DEFICIENT = "documents_deficient"
    DOCUMENTS_ACCEPTED = "documents_accepted"
    INQUIRY_SENT = "inquiry_sent"
    IDENTITY_CONFIRMED = "identity_confirmed"  # letter back, payment not yet (SEED-R10)
    PAID = "paid"  # payment recorded, letter not yet back
    AWAITING_ONLINE_INPUT = "awaiting_online_input"
    ONLINE_INPUT_RECEIVED = "online_input_received"
    APPROVED = "approved"  # PIN made and queued for e-mail
    PIN_SENT = "pin_sent"
    ISSUED = "issued"
    REVOKED = "revoked"
    EXPIRED = "expired"
    REJECTED = "rejected"
    ABANDONED = "abandoned"


class Event(enum.StrEnum):
    ACCEPT_DOCUMENTS = "accept_documents"
    FIND_DEFICIENT = "find_deficient"
    RESUBMIT = "resubmit"
    DISPATCH_INQUIRY = "dispatch_inquiry"
    LETTER_RETURNED = "letter_returned"
    PAYMENT = "payment"
    ONLINE_INPUT = "online_input"
    APPROVE = "approve"
    PIN_MAILED = "pin_mailed"
    REISSUE_PIN = "reissue_pin"
    REDEEM = "redeem"
    REVOKE = "revoke"
    EXPIRE = "expire"
    REJECT = "reject"
    ABANDON = "abandon"


_FLOW: dict[State, dict[Event, State]] = {
    State.RECEIVED: {
        Event.ACCEPT_DOCUMENTS: State.DOCUMENTS_ACCEPTED,
        Event.FIND_DEFICIENT: State.DOCUMENTS_DEFICIENT,
    },
    State.DOCUMENTS_DEFICIENT: {Event.RESUBMIT: State.RECEIVED},
    State.DOCUMENTS_ACCEPTED: {Event.DISPATCH_INQUIRY: State.INQUIRY_SENT},
    State.INQUIRY_SENT: {
        # A lost packet is sent again with a new access code; the old one dies.
        Event.DISPATCH_INQUIRY: State.INQUIRY_SENT,
        Event.LETTER_RETURNED: State.IDENTITY_CONFIRMED,
        Event.PAYMENT: State.PAID,
    },
    # A new packet is also the way out of a locked access code, until the code has been used.
    State.IDENTITY_CONFIRMED: {
        Event.DISPATCH_INQUIRY: State.IDENTITY_CONFIRMED,
        Event.PAYMENT: State.AWAITING_ONLINE_INPUT,
    },
    State.PAID: {
        Event.DISPATCH_INQUIRY: State.PAID,
        Event.LETTER_RETURNED: State.AWAITING_ONLINE_INPUT,
    },
    State.AWAITING_ONLINE_INPUT: {
        Event.DISPATCH_INQUIRY: State.AWAITING_ONLINE_INPUT,
        Event.ONLINE_INPUT: State.ONLINE_INPUT_RECEIVED,
    },
    # SEED-R11: approval only after the letter, the payment and the online input.
    State.ONLINE_INPUT_RECEIVED: {Event.APPROVE: State.APPROVED},
    State.APPROVED: {
        Event.PIN_MAILED: State.PIN_SENT,
        Event.REISSUE_PIN: State.APPROVED,
        Event.REDEEM: State.ISSUED,
    },
    State.PIN_SENT: {Event.REISSUE_PIN: State.APPROVED, Event.REDEEM: State.ISSUED},
    # REVOKE: made by Store.revoke_certificate with the revocation itself, whatever the door.
    State.ISSUED: {Event.REVOKE: State.REVOKED, Event.EXPIRE: State.EXPIRED},
    State.REVOKED: {},
    State.EXPIRED: {},
    State.REJECTED: {},
    State.ABANDONED: {},
}


def _reachable(table: Mapping[State, Mapping[Event, State]], state: State) -> frozenset[State]:
    """``state`` and every state the table leads to from it."""
    seen, frontier = {state}, [state]
    while frontier:
        for target in table[frontier.pop()].values():
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return frozenset(seen)


def _ahead(table: Mapping[State, Mapping[Event, State]], event: Event) -> frozenset[State]:
    """The states from which ``event`` can still happen, now or after other events."""
    return frozenset(s for s in table if any(event in table[t] for t in _reachable(table, s)))


# Open: the application can still lead to a certificate (not issued, closed or final).
OPEN_STATES = _ahead(_FLOW, Event.REDEEM)

TRANSITIONS: Mapping[State, Mapping[Event, State]] = {
    state: {
        **events,
        **(
            {Event.REJECT: State.REJECTED, Event.ABANDON: State.ABANDONED}
            if state in OPEN_STATES
            else {}
        ),
    }
    for state, events in _FLOW.items()
}


def allowing(event: Event) -> frozenset[State]:
    """The states in which ``event`` is allowed now."""
    return frozenset(s for s in State if event in TRANSITIONS[s])


def still_ahead(event: Event) -> frozenset[State]:
    """The states from which ``event`` can still happen, now or later."""
    return _ahead(TRANSITIONS, event)


def not_yet(event: Event) -> frozenset[State]:
    """The states in which ``event`` is still ahead but not allowed yet: the client waits."""
    return still_ahead(event) - allowing(event)


def after(state: State) -> frozenset[State]:
    """``state`` and every state the table leads to from it."""
    return _reachable(TRANSITIONS, state)


# Waiting for the PIN to be redeemed (approved or pin_sent): SEED-R13.
REDEEMABLE = allowing(Event.REDEEM)
# A certificate was issued: issued and what follows it (revoked, expired).
ISSUED_OR_LATER = after(State.ISSUED)


class IllegalTransition(Exception):
    def __init__(self, state: State, event: Event) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[state])) or "none (final state)"
        super().__init__(
            f"cannot {event.value.replace('_', ' ')}: the application is {state.value} "
            f"(allowed here: {allowed})"
        )
        self.state = state
        self.event = event


def next_state(state: State | str, event: Event) -> State:
    state = State(state)
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(state, event) from None

"""The state table (workflow.py) and how the API refuses what it does not allow: 409 problem
documents that name the current state."""

from __future__ import annotations

import pytest

from jitsuin.server.ra.workflow import (
    ISSUED_OR_LATER,
    OPEN_STATES,
    REDEEMABLE,
    TRANSITIONS,
    Event,
    IllegalTransition,
    State,
    allowing,
    next_state,
    not_yet,
    still_ahead,
)

FINAL = {State.REVOKED, State.EXPIRED, State.REJECTED, State.ABANDONED}
ILLEGAL = [(s, e) for s in State for e in Event if e not in TRANSITIONS[s]]
LEGAL = [(s, e, t) for s in State for e, t in TRANSITIONS[s].items()]


def test_the_table_covers_every_state():
    assert set(TRANSITIONS) == set(State)
    # Every state is reachable from received, and only final states have no way out.
    reached, frontier = {State.RECEIVED}, [State.RECEIVED]
    while frontier:
        for target in TRANSITIONS[frontier.pop()].values():
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(State)
    assert {s for s in State if not TRANSITIONS[s]} == FINAL


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=[f"{s}-{e}" for s, e in ILLEGAL])
def test_illegal_transition_names_the_state(state, event):
    with pytest.raises(IllegalTransition) as refused:
        next_state(state, event)
    assert refused.value.state is state
    assert refused.value.event is event
    assert f"the application is {state.value}" in str(refused.value)
    # Also when the state comes as the stored text.
    with pytest.raises(IllegalTransition):
        next_state(state.value, event)


@pytest.mark.parametrize(("state", "event", "target"), LEGAL, ids=[f"{s}-{e}" for s, e, _ in LEGAL])
def test_legal_transition(state, event, target):
    assert next_state(state.value, event) is target


def test_the_seed_rules_in_the_table():
    # SEED-R11: approval only once the letter, the payment and the online input are in.
    assert [s for s in State if Event.APPROVE in TRANSITIONS[s]] == [State.ONLINE_INPUT_RECEIVED]
    assert {s for s in State if TRANSITIONS[s].get(Event.ONLINE_INPUT)} == {
        State.AWAITING_ONLINE_INPUT
    }
    # Letter and payment in either order.
    assert next_state(next_state(State.INQUIRY_SENT, Event.LETTER_RETURNED), Event.PAYMENT) == (
        State.AWAITING_ONLINE_INPUT
    )
    assert next_state(next_state(State.INQUIRY_SENT, Event.PAYMENT), Event.LETTER_RETURNED) == (
        State.AWAITING_ONLINE_INPUT
    )
    # SEED-R13: a certificate only against the PIN, after approval.
    assert {s for s in State if Event.REDEEM in TRANSITIONS[s]} == {State.APPROVED, State.PIN_SENT}
    # Revocation only of an issued certificate; rejection only of open applications.
    assert {s for s in State if Event.REVOKE in TRANSITIONS[s]} == {State.ISSUED}
    assert {s for s in State if Event.REJECT in TRANSITIONS[s]} == (
        set(State) - FINAL - {State.ISSUED}
    )


async def test_approve_in_received_is_409_naming_the_state(server):
    flow = await server.create()
    reply = await server.call("POST", f"/ra/applications/{flow.id}/approve", "bob")
    problem = reply.problem(409)
    assert problem["state"] == "received"
    assert "received" in problem["detail"]
    assert problem["type"] == "urn:jitsuin:problem:illegal_transition"
    assert reply.headers["Cache-Control"] == "no-store"
    assert (await server.record(flow.id)).state == "received"


async def test_payment_twice_is_409(server):
    flow = await server.prepare("inquiry_sent")
    await server.pay(flow)
    body = {"invoiceNumber": flow.invoice_number, "amount": 11000}
    reply = await server.call("POST", f"/ra/applications/{flow.id}/payment", "alice", body=body)
    problem = reply.problem(409)
    assert problem["state"] == "paid"
    assert "paid" in problem["detail"]
    record = await server.record(flow.id)
    assert record.state == "paid"
    assert (
        record.version == 4
    )  # created 1, then review, inquiry, payment: the refusal changed nothing


ACTIONS = {
    "review": ("review", None),
    "resubmit": ("resubmit", None),
    "inquiry": ("inquiry", {"trackingNumber": "RD123456785JP"}),
    "letter": ("letter", {"signed": True, "sealed": True, "selfInking": False}),
    "payment": ("payment", {"invoiceNumber": "INV-X", "amount": 11000}),
    "approve": ("approve", None),
    "reissue-pin": ("reissue-pin", None),
    "reject": ("reject", {"reason": "duplicate"}),
    "revoke": ("revoke", {"reason": "keyCompromise"}),
}
# (state the application is brought to, actions that state does not allow)
REFUSED = [
    ("received", ["resubmit", "inquiry", "letter", "payment", "approve", "reissue-pin", "revoke"]),
    ("inquiry_sent", ["review", "resubmit", "approve", "reissue-pin", "revoke"]),
    ("awaiting_online_input", ["review", "letter", "payment", "approve", "revoke"]),
    ("pin_sent", ["review", "inquiry", "letter", "payment", "approve"]),
    ("rejected", list(ACTIONS)),
]


@pytest.mark.parametrize(("state", "actions"), REFUSED, ids=[s for s, _ in REFUSED])
async def test_refused_actions_over_http(server, state, actions):
    if state == "rejected":
        flow = await server.prepare("inquiry_sent")
        reply = await server.call(
            "POST", f"/ra/applications/{flow.id}/reject", "carol", body={"reason": "withdrawn"}
        )
        assert reply.expect(200).json["state"] == "rejected"
    else:
        flow = await server.prepare(state)
    version = (await server.record(flow.id)).version
    for action in actions:
        name, body = ACTIONS[action]
        if name == "review":
            body = server.review_body()
        elif name == "payment" and flow.invoice_number:
            body = {"invoiceNumber": flow.invoice_number, "amount": 11000}
        reply = await server.call("POST", f"/ra/applications/{flow.id}/{name}", "eve", body=body)
        problem = reply.problem(409)
        assert problem["state"] == state, (action, problem)
        assert state in problem["detail"], (action, problem)
    record = await server.record(flow.id)
    assert (record.state, record.version) == (state, version)


def test_the_sets_of_states_come_from_the_table():
    # What the RA asks about the workflow is derived from TRANSITIONS, never restated: these are
    # the sets it wrote out by hand before.
    waiting_for_input = {
        State.RECEIVED,
        State.DOCUMENTS_DEFICIENT,
        State.DOCUMENTS_ACCEPTED,
        State.INQUIRY_SENT,
        State.IDENTITY_CONFIRMED,
        State.PAID,
    }
    assert not_yet(Event.ONLINE_INPUT) == waiting_for_input
    assert still_ahead(Event.APPROVE) == waiting_for_input | {
        State.AWAITING_ONLINE_INPUT,
        State.ONLINE_INPUT_RECEIVED,
    }
    assert {State.APPROVED, State.PIN_SENT} == REDEEMABLE
    assert {State.ISSUED, State.REVOKED, State.EXPIRED} == ISSUED_OR_LATER
    assert set(State) - FINAL - {State.ISSUED} == OPEN_STATES
    assert allowing(Event.REVOKE) == {State.ISSUED}
    assert allowing(Event.PIN_MAILED) == {State.APPROVED}

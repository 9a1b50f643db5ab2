"""SEED-R18 and the audit chain: every operator action and every read of personal data is in the
hash-chained log, and an edited or deleted row is found by /ra/audit/verify."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

import pytest


async def audit_entries(server) -> list[dict]:
    reply = await server.call("GET", "/ra/audit?limit=1000", "root")
    entries = reply.expect(200).json["entries"]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    return entries


def assert_in_order(entries: list[dict], expected: list[tuple[str, str, str]]) -> None:
    """``expected`` (actor, action, target) appear in the log in this order."""
    triples = [(e["actor"], e["action"], e["target"]) for e in entries]
    position = 0
    for item in expected:
        try:
            position = triples.index(item, position) + 1
        except ValueError:
            raise AssertionError(f"{item} not in the audit log after entry {position}") from None


async def test_operator_actions_and_reads_are_audited(server):
    flow = await server.prepare("awaiting_online_input", creator="alice", reviewer="carol")
    target = f"application/{flow.id}"
    applicant = f"applicant:{flow.enrollment_id}"
    (await server.online_input(flow.enrollment_id, "0" * 26, confirm=True)).problem(401)
    server.clock.advance(dt.timedelta(seconds=15))  # this address waits after a wrong try
    (await server.online_input(flow.enrollment_id, flow.access_code, confirm=False)).expect(200)
    (await server.online_input(flow.enrollment_id, flow.access_code, confirm=True)).expect(200)
    await server.approve(flow, "bob")
    before = len(server.mailbox.messages_to(flow.email))
    (await server.call("POST", f"/ra/applications/{flow.id}/reissue-pin", "dave")).expect(200)
    await server.next_pin_mail(flow, before)
    _, csr = server.csr()
    await server.ra.redeem(flow.enrollment_id, flow.pin, csr, "test", "192.0.2.1")
    reply = await server.call(
        "POST", f"/ra/applications/{flow.id}/revoke", "bob", body={"reason": "superseded"}
    )
    reply.expect(200)
    other = await server.create("carol")
    reply = await server.call(
        "POST", f"/ra/applications/{other.id}/reject", "alice", body={"reason": "withdrawn"}
    )
    reply.expect(200)
    # Personal-data reads.
    (await server.call("GET", f"/ra/applications/{flow.id}", "dave")).expect(200)
    (await server.call("GET", "/ra/applications?state=revoked", "carol")).expect(200)
    (await server.call("GET", f"/ra/applications/{flow.id}/disclosure", "eve")).expect(200)

    entries = await audit_entries(server)
    assert all(e["actor"] and e["target"] for e in entries)
    other_target = f"application/{other.id}"
    assert_in_order(
        entries,
        [
            *[("cli:host", "operator.add", f"operator/{name}") for name in server.tokens],
            ("alice", "application.create", target),
            ("carol", "application.accept_documents", target),
            ("carol", "application.dispatch_inquiry", target),
            ("carol", "application.letter_returned", target),
            ("carol", "application.payment", target),
            (applicant, "online_input.wrong_code", target),
            (applicant, "online_input.view", target),
            (applicant, "application.online_input", target),
            ("bob", "application.approve", target),
            ("system", "mail.sent", target),
            ("system", "application.pin_mailed", target),
            ("dave", "application.reissue_pin", target),
            ("system", "mail.sent", target),
            ("system", "application.pin_mailed", target),
            (f"{applicant}:test", "application.redeem", target),
            ("bob", "certificate.revoke", target),
            ("bob", "application.revoke", target),
            ("carol", "application.create", other_target),
            ("alice", "application.reject", other_target),
            ("dave", "application.read", target),
            ("carol", "application.list", "applications"),
            ("eve", "application.disclose", target),
        ],
    )
    by_action = {e["action"]: e for e in entries}
    assert by_action["application.list"]["details"]["ids"] == [flow.id]
    assert by_action["application.list"]["details"]["state"] == "revoked"
    assert by_action["application.disclose"]["details"]["applications"] == [flow.id]
    assert by_action["certificate.revoke"]["details"]["reason"] == "superseded"
    assert by_action["application.reject"]["details"]["reason"] == "withdrawn"
    assert by_action["application.payment"]["details"]["amount"] == 11000
    assert by_action["application.approve"]["details"] == {
        "from": "online_input_received",
        "to": "approved",
        "pinExpiresAt": by_action["application.approve"]["details"]["pinExpiresAt"],
        # The credential the approval was made with, and who else may know it: nobody, bob
        # replaced the token the CLI made (two-person rule).
        "credential": "token",
        "credentialSetBy": [],
    }

    # Paging with ``after``.
    reply = await server.call("GET", f"/ra/audit?after={entries[2]['seq']}&limit=2", "root")
    assert [e["seq"] for e in reply.expect(200).json["entries"]] == [
        entries[3]["seq"],
        entries[4]["seq"],
    ]


async def test_tampering_is_detected(server):
    flow = await server.prepare("pin_sent")
    reply = await server.call("GET", "/ra/audit/verify", "root")
    intact = reply.expect(200).json
    entries = await audit_entries(server)
    assert intact == {"ok": True, "entries": len(entries)}
    approve = next(e for e in entries if e["action"] == "application.approve")
    seq = approve["seq"]
    assert seq < entries[-1]["seq"]

    db = sqlite3.connect(server.database, timeout=10, isolation_level=None)
    try:
        # The log is append-only: the triggers refuse an edit or a deletion.
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = ?", (seq,))
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))

        # Someone with the file drops the trigger and edits one row.
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = ?", (seq,))
        reply = await server.call("GET", "/ra/audit/verify", "root")
        broken = reply.expect(409).json
        assert broken["ok"] is False
        assert re.search(rf"\bentry {seq}\b", broken["error"]), broken

        # Put it back: the chain verifies again.
        db.execute("UPDATE audit_log SET actor = 'bob' WHERE seq = ?", (seq,))
        assert (await server.call("GET", "/ra/audit/verify", "root")).expect(200).json["ok"]

        # Deleting a row: the entry after it no longer chains.
        db.execute("DROP TRIGGER audit_log_no_delete")
        db.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
        reply = await server.call("GET", "/ra/audit/verify", "root")
        broken = reply.expect(409).json
        assert broken["ok"] is False
        following = min(e["seq"] for e in entries if e["seq"] > seq)
        assert re.search(rf"\bentry {following}\b", broken["error"]), broken
    finally:
        db.close()
    assert (await server.record(flow.id)).state == "pin_sent"

"""The online-input credential from the inquiry letter (SEED-R12): single use, normalised as a
person types it, attempt-limited."""

from __future__ import annotations

import datetime as dt
import re

LETTER_CODE = re.compile(r"アクセスコード / Access code: <span class=\"code\">([^<]+)</span>")
LETTER_ID = re.compile(r"受付番号 / Enrollment ID: <span class=\"code\">([^<]+)</span>")


async def printed_letter(server, flow):
    """Dispatch the packet as the printable letter; returns (enrollment ID, printed code)."""
    reply = await server.call(
        "POST",
        f"/ra/applications/{flow.id}/inquiry",
        "alice",
        body={"trackingNumber": "RD123456785JP"},
        headers={"Accept": "text/html"},
    )
    html = reply.expect(200).text
    (enrollment_id,) = LETTER_ID.findall(html)
    (code,) = LETTER_CODE.findall(html)
    flow.enrollment_id = enrollment_id
    flow.invoice_number = (await server.record(flow.id)).invoice_number
    return enrollment_id, code


async def test_code_from_the_letter_typed_with_dashes_in_lower_case(server):
    flow = await server.prepare("documents_accepted")
    enrollment_id, code = await printed_letter(server, flow)
    assert "-" in code
    await server.letter(flow)
    await server.pay(flow)
    typed_id = enrollment_id.lower()
    typed_code = " " + code.lower() + " "
    reply = await server.online_input(typed_id, typed_code, confirm=False)
    assert reply.expect(200).json["state"] == "awaiting_online_input"
    # Without separators, and with O and I for 0 and 1 as people type them.
    sloppy = code.replace("-", "").replace("0", "o").replace("1", "I")
    reply = await server.online_input(enrollment_id, sloppy, confirm=True)
    assert reply.expect(200).json["state"] == "online_input_received"
    assert (await server.record(flow.id)).access_attempts == 0


async def test_code_is_single_use(server):
    flow = await server.prepare("online_input_received")
    record = await server.record(flow.id)
    assert record.access_used_at is not None and record.access_code_hash is None
    for confirm in (True, False):
        reply = await server.online_input(flow.enrollment_id, flow.access_code, confirm=confirm)
        problem = reply.problem(403)
        assert "used" in problem["detail"]
    record = await server.record(flow.id)
    assert (record.state, record.version) == ("online_input_received", 6)


async def test_wrong_codes_are_counted_and_lock(server):
    flow = await server.prepare("awaiting_online_input")
    wrong = "0" * 26
    for attempt in range(1, 6):
        server.clock.advance(dt.timedelta(hours=1))  # each after this address's wait
        reply = await server.online_input(flow.enrollment_id, wrong, confirm=True)
        problem = reply.problem(401)
        assert problem["attemptsLeft"] == 5 - attempt
        assert "WWW-Authenticate" in reply.headers
        assert (await server.record(flow.id)).access_attempts == attempt
    # Locked: the right code is refused now.
    reply = await server.online_input(flow.enrollment_id, flow.access_code, confirm=True)
    assert "too many" in reply.problem(403)["detail"]
    record = await server.record(flow.id)
    assert (record.state, record.access_attempts) == ("awaiting_online_input", 5)
    reply = await server.call("GET", f"/ra/applications/{flow.id}", "alice")
    assert reply.expect(200).json["accessCode"]["attempts"] == 5

    # The way out the refusal names: a new packet with a new code; the old code stays dead.
    old_code = flow.access_code
    sent = await server.dispatch(flow)
    assert sent["application"]["state"] == "awaiting_online_input"
    assert sent["application"]["accessCode"]["attempts"] == 0
    reply = await server.online_input(flow.enrollment_id, old_code, confirm=True)
    assert reply.problem(401)["attemptsLeft"] == 4
    server.clock.advance(dt.timedelta(seconds=15))  # this address waits after a wrong try
    reply = await server.online_input(flow.enrollment_id, flow.access_code, confirm=True)
    assert reply.expect(200).json["state"] == "online_input_received"


async def test_locked_code_before_the_payment_gets_a_new_packet(server):
    flow = await server.prepare("inquiry_sent")
    await server.letter(flow)  # identity_confirmed: the letter is back, the payment is not
    for _ in range(5):
        server.clock.advance(dt.timedelta(hours=1))  # each after this address's wait
        (await server.online_input(flow.enrollment_id, "0" * 26, confirm=False)).problem(401)
    sent = await server.dispatch(flow)
    assert sent["application"]["state"] == "identity_confirmed"
    await server.pay(flow)
    reply = await server.online_input(flow.enrollment_id, flow.access_code, confirm=True)
    assert reply.expect(200).json["state"] == "online_input_received"


async def test_resent_packet_kills_the_old_code(server):
    flow = await server.prepare("inquiry_sent")
    old_code = flow.access_code
    await server.pay(flow)
    sent = await server.dispatch(flow)  # resent while paid: still paid
    assert sent["application"]["state"] == "paid"
    assert sent["enrollmentId"] == flow.enrollment_id
    await server.letter(flow)
    reply = await server.online_input(flow.enrollment_id, old_code, confirm=True)
    assert reply.problem(401)["attemptsLeft"] == 4
    server.clock.advance(dt.timedelta(seconds=15))  # this address waits after a wrong try
    reply = await server.online_input(flow.enrollment_id, flow.access_code, confirm=True)
    assert reply.expect(200).json["state"] == "online_input_received"


async def test_unknown_enrollment_id_and_bad_bodies(server):
    flow = await server.prepare("awaiting_online_input")
    reply = await server.online_input("ZZZZZ-ZZZZZ", flow.access_code, confirm=True)
    reply.problem(401)
    problem = (await server.online_input(flow.enrollment_id, flow.access_code, "yes")).problem(422)
    assert problem["errors"] == ["confirm must be true or false"]
    reply = await server.call("POST", "/applicant/online-input", body=[1, 2])
    reply.problem(400)
    assert (await server.record(flow.id)).access_attempts == 0

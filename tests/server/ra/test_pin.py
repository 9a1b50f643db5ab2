"""The download PIN (SEED-R13): attempt-limited, expiring, replaced by a new one on request."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from jitsuin.server.ra.errors import RAError, RAKind


def wrong_pin(pin: str) -> str:
    return "".join(str((int(d) + 1) % 10) for d in pin)


async def test_five_wrong_pins_lock_then_reissue(server):
    flow = await server.prepare("pin_sent")
    _, csr = server.csr()
    bad = wrong_pin(flow.pin)
    for attempt in range(1, 6):
        with pytest.raises(RAError) as refused:  # from five addresses: none waits
            await server.ra.redeem(flow.enrollment_id, bad, csr, "test", f"192.0.2.{attempt}")
        assert refused.value.kind is RAKind.UNAUTHORIZED
        assert refused.value.extensions["attemptsLeft"] == 5 - attempt
        assert (await server.record(flow.id)).pin_attempts == attempt  # counted in the store
    # The sixth attempt is refused even with the right PIN.
    with pytest.raises(RAError) as locked:
        await server.ra.redeem(flow.enrollment_id, flow.pin, csr, "test", "192.0.2.1")
    assert locked.value.kind is RAKind.LOCKED
    record = await server.record(flow.id)
    assert (record.state, record.pin_attempts) == ("pin_sent", 5)
    assert await server.authority.store.count_certificates() == 0
    reply = await server.call("GET", f"/ra/applications/{flow.id}", "bob")
    assert reply.expect(200).json["pin"]["attempts"] == 5

    # Only an approver (or admin) sends a new PIN.
    (await server.call("POST", f"/ra/applications/{flow.id}/reissue-pin", "alice")).problem(403)
    old = flow.pin_mail
    before = len(server.mailbox.messages_to(flow.email))
    reply = await server.call("POST", f"/ra/applications/{flow.id}/reissue-pin", "bob")
    assert reply.expect(200).json["state"] == "approved"
    new = await server.next_pin_mail(flow, before)
    assert new.enrollment_id == old.enrollment_id
    assert new.pin != old.pin and new.eab_key != old.eab_key
    record = await server.record(flow.id)
    assert (record.state, record.pin_attempts) == ("pin_sent", 0)
    assert server.ra.eab_key(record) == new.eab_key.encode()

    # The old PIN is dead, the new one works.
    with pytest.raises(RAError) as dead:
        await server.ra.redeem(flow.enrollment_id, old.pin, csr, "test", "192.0.2.1")
    assert dead.value.kind is RAKind.UNAUTHORIZED
    server.clock.advance(dt.timedelta(seconds=15))  # this address waits after a wrong try
    redeemed = await server.ra.redeem(flow.enrollment_id, new.pin, csr, "test", "192.0.2.1")
    assert redeemed.application.state == "issued" and not redeemed.repeated


async def test_pin_expires(ra_server):
    server = await ra_server(pin_ttl_hours=2)
    flow = await server.prepare("pin_sent")
    record = await server.record(flow.id)
    assert record.pin_expires_at == server.clock.now() + dt.timedelta(hours=2)
    _, csr = server.csr()

    server.clock.advance(dt.timedelta(hours=2, seconds=1))
    with pytest.raises(RAError) as expired:
        await server.ra.redeem(flow.enrollment_id, flow.pin, csr, "test", "192.0.2.1")
    assert expired.value.kind is RAKind.EXPIRED
    assert (await server.record(flow.id)).state == "pin_sent"
    assert await server.authority.store.count_certificates() == 0

    # A new PIN, valid for another pin_ttl; it still works at the last second.
    before = len(server.mailbox.messages_to(flow.email))
    (await server.call("POST", f"/ra/applications/{flow.id}/reissue-pin", "dave")).expect(200)
    new = await server.next_pin_mail(flow, before)
    server.clock.advance(dt.timedelta(hours=2))
    redeemed = await server.ra.redeem(flow.enrollment_id, new.pin, csr, "test", "192.0.2.1")
    assert redeemed.application.state == "issued"


async def test_pin_needs_the_right_enrollment_id(server):
    first = await server.prepare("pin_sent")
    second = await server.prepare("pin_sent")
    _, csr = server.csr()
    # Another application's PIN counts against this one and issues nothing.
    with pytest.raises(RAError) as refused:
        await server.ra.redeem(first.enrollment_id, second.pin, csr, "test", "192.0.2.1")
    assert refused.value.kind is RAKind.UNAUTHORIZED
    with pytest.raises(RAError) as unknown:
        await server.ra.redeem("ZZZZZ-ZZZZZ", first.pin, csr, "test", "192.0.2.1")
    assert unknown.value.kind is RAKind.UNAUTHORIZED
    assert (await server.record(first.id)).pin_attempts == 1
    assert (await server.record(second.id)).pin_attempts == 0
    # The enrollment ID is read back as typed: lower case, without the dash.
    typed = first.enrollment_id.replace("-", "").lower()
    redeemed = await server.ra.redeem(typed, first.pin, csr, "test", "192.0.2.2")
    assert redeemed.application.id == first.id


async def test_rejected_application_cannot_be_redeemed(server):
    flow = await server.prepare("pin_sent")
    reply = await server.call(
        "POST", f"/ra/applications/{flow.id}/reject", "bob", body={"reason": "fraud suspected"}
    )
    assert reply.expect(200).json["state"] == "rejected"
    record = await server.record(flow.id)
    assert record.pin_hash is None and record.eab_key_sealed is None
    _, csr = server.csr()
    with pytest.raises(RAError):
        await server.ra.redeem(flow.enrollment_id, flow.pin, csr, "test", "192.0.2.1")
    assert await server.authority.store.count_certificates() == 0


async def test_concurrent_pickups_issue_one_certificate(server, monkeypatch):
    """Two pickups with one PIN at the same moment: one certificate, and the CA key signs
    only that one. The same key gets it twice (the second as a repeat); another key is
    refused."""
    signed = []
    sign_personal = server.authority.sign_personal

    async def counted(*args, **kwargs):
        issued = await sign_personal(*args, **kwargs)
        signed.append(issued.serial)
        return issued

    monkeypatch.setattr(server.authority, "sign_personal", counted)
    flow = await server.prepare("pin_sent")
    _, csr = server.csr()
    results = await asyncio.gather(
        *(
            server.ra.redeem(flow.enrollment_id, flow.pin, csr, f"c{i}", "192.0.2.1")
            for i in range(3)
        ),
    )
    assert len({r.certificate_der for r in results}) == 1
    assert sorted(r.repeated for r in results) == [False, True, True]
    assert len(signed) == 1

    other = await server.prepare("pin_sent")
    csrs = [server.csr()[1] for _ in range(3)]
    results = await asyncio.gather(
        *(server.ra.redeem(other.enrollment_id, other.pin, c, "test", "192.0.2.1") for c in csrs),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and not won[0].repeated
    assert [type(e) for e in lost] == [RAError, RAError]
    assert {e.kind for e in lost} == {RAKind.LOCKED}
    assert await server.authority.store.count_certificates() == 2
    assert len(signed) == 2

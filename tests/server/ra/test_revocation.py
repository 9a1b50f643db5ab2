"""Revocation of an issued certificate, and disclosure of a person's data on an in-person
request (SEED-R18): admin only, audited."""

from __future__ import annotations

from cryptography import x509


async def issued(server, **overrides):
    flow = await server.prepare("pin_sent", **overrides)
    _, csr = server.csr()
    redeemed = await server.ra.redeem(flow.enrollment_id, flow.pin, csr, "test", "192.0.2.1")
    return flow, x509.load_der_x509_certificate(redeemed.certificate_der)


async def revoke(server, flow, reason, as_="bob"):
    body = None if reason is None else {"reason": reason}
    return await server.call("POST", f"/ra/applications/{flow.id}/revoke", as_, body=body)


async def test_revoke_key_compromise(server):
    flow, cert = await issued(server)
    generation = (await server.record(flow.id)).certificate_generation
    (await revoke(server, flow, "keyCompromise", "alice")).problem(403)  # reviewers cannot
    reply = await revoke(server, flow, "keyCompromise")
    body = reply.expect(200).json
    assert body["state"] == "revoked"
    assert body["closedReason"] == "keyCompromise"
    stored = await server.authority.store.certificate(generation, cert.serial_number)
    assert stored.status == "revoked"
    assert stored.revocation_reason == "keyCompromise"
    assert stored.revoked_at == server.clock.now()
    # Once is enough.
    assert (await revoke(server, flow, "keyCompromise")).problem(409)["state"] == "revoked"


async def test_revocation_reason_must_be_allowed(server):
    flow, cert = await issued(server)
    # RFC 5280 reasons an operator may not give (S/MIME BR 7.2.2), a misspelling, no reason.
    for reason in ("unspecified", "certificateHold", "removeFromCRL", "KeyCompromise", "", 1, None):
        problem = (await revoke(server, flow, reason)).problem(422)
        if isinstance(reason, str) and reason:
            assert "keyCompromise" in problem["detail"], problem  # names the allowed reasons
    record = await server.record(flow.id)
    assert record.state == "issued"
    stored = await server.authority.store.certificate(
        record.certificate_generation, cert.serial_number
    )
    assert stored.status == "valid"
    # Every allowed reason is accepted (on certificates of their own).
    for reason in (
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "privilegeWithdrawn",
    ):
        other, _ = await issued(server)
        assert (await revoke(server, other, reason)).expect(200).json["closedReason"] == reason


async def test_revoke_before_issue_is_409(server):
    flow = await server.prepare("pin_sent")
    assert (await revoke(server, flow, "keyCompromise")).problem(409)["state"] == "pin_sent"


async def test_disclosure(server):
    person = "kenji.tanaka@example.jp"
    first, cert = await issued(server, email=person, givenName="Kenji", familyName="Tanaka")
    second = await server.create(email=person, givenName="Kenji", familyName="Tanaka")
    stranger = await server.create(email="someone.else@example.jp")

    for who in ("alice", "bob"):
        reply = await server.call("GET", f"/ra/applications/{first.id}/disclosure", who)
        assert "may not disclose" in reply.problem(403)["detail"]
    before = await server.authority.store.audit_log(limit=10_000)
    assert not any(e.event.action == "application.disclose" for e in before)

    reply = await server.call("GET", f"/ra/applications/{second.id}/disclosure", "root")
    data = reply.expect(200).json
    assert reply.headers["Cache-Control"] == "no-store"
    assert data["subject"] == person
    assert data["exportedBy"] == "root"
    assert sorted(a["id"] for a in data["applications"]) == sorted([first.id, second.id])
    assert stranger.id not in reply.text and "someone.else" not in reply.text
    assert all(a["email"] == person for a in data["applications"])
    (certificate,) = data["certificates"]
    assert certificate["serial"] == format(cert.serial_number, "x")
    assert certificate["status"] == "valid"
    assert "Kenji Tanaka" in certificate["subject"]
    assert "Individual Number" in data["note"]

    audit = await server.authority.store.audit_log(limit=10_000)
    (entry,) = [e for e in audit if e.event.action == "application.disclose"]
    assert entry.event.actor == "root"
    assert entry.event.target == f"application/{second.id}"
    assert sorted(entry.event.details["applications"]) == sorted([first.id, second.id])

    # After revocation the disclosure says so.
    (await revoke(server, first, "affiliationChanged")).expect(200)
    data = (
        (await server.call("GET", f"/ra/applications/{first.id}/disclosure", "eve"))
        .expect(200)
        .json
    )
    assert [c["status"] for c in data["certificates"]] == ["revoked"]
    (await server.call("GET", "/ra/applications/APP-NOSUCH0/disclosure", "root")).problem(404)

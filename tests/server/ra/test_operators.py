"""Who may do what: bearer tokens, roles, and the two-person rule at approval."""

from __future__ import annotations

import pytest

from jitsuin.server.ra.errors import RAError, RAKind


async def approve(server, flow, as_):
    return await server.call("POST", f"/ra/applications/{flow.id}/approve", as_)


async def test_creator_cannot_approve_even_as_admin(server):
    flow = await server.prepare("online_input_received", creator="root", reviewer="carol")
    problem = (await approve(server, flow, "root")).problem(403)
    assert "two-person rule" in problem["detail"]
    assert (await server.record(flow.id)).state == "online_input_received"
    await server.approve(flow, "bob")  # a different approver can
    assert (await server.record(flow.id)).approved_by == "bob"


async def test_reviewer_cannot_approve_even_as_admin(server):
    flow = await server.prepare("online_input_received", creator="alice", reviewer="eve")
    problem = (await approve(server, flow, "eve")).problem(403)
    assert "two-person rule" in problem["detail"]
    assert (await server.record(flow.id)).state == "online_input_received"
    await server.approve(flow, "root")  # another admin who took no part can
    assert (await server.record(flow.id)).approved_by == "root"


async def test_without_the_two_person_rule_one_admin_does_everything(ra_server):
    server = await ra_server(two_person_rule=False)
    flow = await server.prepare(
        "online_input_received", creator="root", reviewer="root", approver="root"
    )
    await server.approve(flow, "root")
    record = await server.record(flow.id)
    assert (record.created_by, record.reviewed_by, record.approved_by) == ("root",) * 3
    # Roles still hold without the rule.
    other = await server.prepare("online_input_received")
    assert "may not approve" in (await approve(server, other, "alice")).problem(403)["detail"]


async def test_roles(server):
    flow = await server.prepare("online_input_received")
    # A reviewer cannot approve, even an application someone else entered.
    problem = (await approve(server, flow, "carol")).problem(403)
    assert "carol (reviewer) may not approve" in problem["detail"]
    # An approver cannot enter, review or record.
    body = server.application_body()
    problem = (await server.call("POST", "/ra/applications", "bob", body=body)).problem(403)
    assert "bob (approver) may not create" in problem["detail"]
    other = await server.create()
    reply = await server.call(
        "POST", f"/ra/applications/{other.id}/review", "bob", body=server.review_body()
    )
    reply.problem(403)
    # Only admins read the audit log or disclose.
    for path in ("/ra/audit", "/ra/audit/verify", f"/ra/applications/{flow.id}/disclosure"):
        for who in ("alice", "bob"):
            (await server.call("GET", path, who)).problem(403)
    # Mail is the approvers' business.
    (await server.call("GET", "/ra/mail", "alice")).problem(403)
    (await server.call("GET", "/ra/mail", "bob")).expect(200)
    assert (await server.record(flow.id)).state == "online_input_received"
    assert len(await server.authority.store.applications()) == 2


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer jto_not-a-token", "Basic cm9vdDpyb290", "jto_x"],
)
async def test_missing_or_bad_token_is_401(server, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, body in (
        ("GET", "/ra/applications", None),
        ("POST", "/ra/applications", server.application_body()),
        ("GET", "/ra/audit", None),
    ):
        reply = await server.call(method, path, headers=headers, body=body)
        problem = reply.problem(401)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert problem["type"] == "urn:jitsuin:problem:unauthorized"
    assert await server.authority.store.applications() == []


async def test_token_of_another_server_is_401(ra_server):
    first = await ra_server()
    second = await ra_server()
    reply = await second.call(
        "GET",
        "/ra/applications",
        headers={"Authorization": f"Bearer {first.tokens['root']}"},
    )
    reply.problem(401)


async def test_operator_names_and_roles_are_checked(server):
    for name, role in (("Mallory", "admin"), ("mallory", "superuser"), ("", "admin")):
        with pytest.raises(RAError) as refused:
            await server.ra.add_operator("cli", name, role)
        assert refused.value.kind is RAKind.INVALID
    with pytest.raises(RAError) as duplicate:
        await server.ra.add_operator("cli", "alice", "admin")
    assert duplicate.value.kind is RAKind.CONFLICT
    # The duplicate did not change alice's role or token.
    operator = await server.ra.authenticate(server.tokens["alice"])
    assert (operator.name, operator.role) == ("alice", "reviewer")


async def test_an_admin_adds_an_operator_and_is_counted_as_knowing_its_token(server):
    alice = await server.ra.authenticate(server.tokens["alice"])  # a reviewer
    with pytest.raises(RAError) as refused:
        await server.ra.add_operator(alice, "frank", "approver")
    assert refused.value.kind is RAKind.FORBIDDEN
    root = await server.ra.authenticate(server.tokens["root"])
    token = await server.ra.add_operator(root, "frank", "approver")
    frank = await server.ra.authenticate(token)
    knows = tuple(sorted({"root", *root.credential_set_by}))
    assert (frank.role, frank.token_set_by) == ("approver", knows)
    # So root's application is not frank's to approve while frank uses the token root set.
    server.tokens["frank"] = token
    flow = await server.prepare("online_input_received", creator="root", reviewer="carol")
    assert "two-person rule" in (await approve(server, flow, "frank")).problem(403)["detail"]


async def test_each_refusal_names_its_own_permission(server):
    # A rollover is not operator management: its refusal names permission ca.rollover.
    generations = len(server.authority.generations)
    problem = (await server.call("POST", "/ra/ca/rollover", "bob")).problem(403)
    assert "bob (approver) may not roll the CA over" in problem["detail"]
    assert "(permission ca.rollover)" in problem["detail"]
    assert "manage operators" not in problem["detail"]
    assert len(server.authority.generations) == generations
    for method, path, who, permission in (
        ("GET", "/ra/audit", "alice", "audit.read"),
        ("GET", "/ra/audit/verify", "bob", "audit.verify"),
        ("GET", "/ra/mail", "alice", "mail.read"),
        ("POST", "/ra/mail/1/retry", "alice", "mail.retry"),
        ("GET", "/ra/reenrollments", "carol", "reenrollments.read"),
        ("POST", "/ra/reenrollments/1/approve", "carol", "reenrollments.decide"),
        ("POST", "/ra/operators/carol/disable", "bob", "operators.manage"),
        ("POST", "/ra/applications", "bob", "applications.create"),
    ):
        problem = (await server.call(method, path, who)).problem(403)
        assert f"(permission {permission})" in problem["detail"], (path, problem)

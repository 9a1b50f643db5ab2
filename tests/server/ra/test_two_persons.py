"""The two-person rule holds between persons, not operator names (docs/threat-model.md): an
admin who enters or reviews an application and then sets another operator's credential (a new
API token, a bound TLS client certificate) cannot approve it as that operator, nor the other way
round.

The persons behind an action are the operator and whoever else may know the credential it was
made with (Operator.token_set_by / certificate_bound_by). In-process server over loopback HTTP
(tests/server/ra/conftest.py) for the token paths; a real ``jitsuin serve`` process with the CLI
and real TLS handshakes for the certificate path.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

FORBIDDEN = "urn:jitsuin:problem:forbidden"


async def approve(server: Any, flow: Any, as_: str) -> Any:
    return await server.call("POST", f"/ra/applications/{flow.id}/approve", as_)


async def refused(server: Any, flow: Any, as_: str, shared: list[str]) -> dict[str, Any]:
    """The approval is refused with 403, changes nothing, and is audited naming both sides."""
    before = len(await server.authority.store.audit_log())
    problem = (await approve(server, flow, as_)).problem(403)
    assert problem["type"] == FORBIDDEN
    assert "two-person rule" in problem["detail"]
    assert problem["shared"] == shared
    assert (await server.record(flow.id)).state == "online_input_received"
    after = await server.authority.store.audit_log()
    assert len(after) == before + 1
    entry = after[-1].event
    assert (entry.action, entry.target) == ("application.approve.refused", f"application/{flow.id}")
    assert entry.details["shared"] == shared
    assert entry.details["persons"] == problem["persons"]
    assert entry.details["credentialSetBy"] == [p for p in problem["persons"] if p != entry.actor]
    assert await server.authority.store.verify_audit_chain() == len(after)
    return problem


async def new_token(server: Any, name: str, as_: str) -> dict[str, Any]:
    """``as_`` gives operator ``name`` a new token, which the test then uses as ``name``'s."""
    reply = (await server.call("POST", f"/ra/operators/{name}/token", as_)).expect(200).json
    server.tokens[name] = reply["token"]
    return reply


async def test_an_admin_cannot_approve_with_a_token_they_set(server):
    flow = await server.prepare("online_input_received", creator="root", reviewer="root")
    set_by = (await new_token(server, "bob", "root")).get("setBy")
    problem = await refused(server, flow, "bob", ["root"])
    assert problem["persons"] == ["bob", "root"] and set_by == ["root"]
    assert "bob, with a token that root set" in problem["detail"]

    # Replacing it with itself does not shed root: the new token is known to root as well.
    assert (await new_token(server, "bob", "bob"))["setBy"] == ["root"]
    await refused(server, flow, "bob", ["root"])

    # Nor does a chain of admins: root sets eve's token, "eve" sets dave's.
    assert (await new_token(server, "eve", "root"))["setBy"] == ["root"]
    assert (await new_token(server, "dave", "eve"))["setBy"] == ["eve", "root"]
    problem = await refused(server, flow, "dave", ["root"])
    assert problem["persons"] == ["dave", "eve", "root"]

    # A second person who holds a credential of their own approves: bob gets a new token from
    # the host CLI and replaces it with his own.
    server.tokens["bob"] = await server.ra.rotate_operator_token("cli:host", "bob")
    assert (await new_token(server, "bob", "bob"))["setBy"] == []
    await server.approve(flow, "bob")


async def test_an_admin_cannot_vet_with_a_token_they_set_and_approve_as_themself(server):
    await new_token(server, "alice", "root")
    flow = await server.prepare("online_input_received", creator="alice", reviewer="alice")
    entries = [e.event for e in await server.authority.store.audit_log()]
    create = next(e for e in entries if e.action == "application.create")
    assert (create.actor, create.details["credentialSetBy"]) == ("alice", ["root"])
    await refused(server, flow, "root", ["root"])
    await server.approve(flow, "eve")  # another admin, who took no part and set nothing


async def test_the_host_clis_user_is_caught_until_the_operator_takes_the_token_over(server):
    # The host account "root" sets bob's token with `jitsuin ra operator-token bob`; operator
    # root vetted the application: one person (cli:<user> is taken to be operator <user>).
    flow = await server.prepare("online_input_received", creator="root", reviewer="root")
    server.tokens["bob"] = await server.ra.rotate_operator_token("cli:root", "bob")
    problem = await refused(server, flow, "bob", ["root"])
    assert problem["persons"] == ["bob", "cli:root"]
    assert "jitsuin ra operator-token bob" in problem["detail"]
    # bob replaces it with his own: what the host handed over becomes his, and he approves.
    assert (await new_token(server, "bob", "bob"))["setBy"] == []
    await server.approve(flow, "bob")
    assert (await server.record(flow.id)).approved_by == "bob"


async def test_fresh_operators_of_one_host_user_are_one_person_until_they_take_over(server):
    tokens = {
        name: await server.ra.add_operator("cli:host", name, role)
        for name, role in (("frank", "reviewer"), ("gina", "approver"))
    }
    server.tokens.update(tokens)
    flow = await server.prepare("online_input_received", creator="frank", reviewer="frank")
    problem = await refused(server, flow, "gina", ["host"])
    assert problem["persons"] == ["cli:host", "gina"]
    assert problem["vetters"] == ["cli:host", "frank"]
    await new_token(server, "gina", "gina")
    await server.approve(flow, "gina")


async def test_only_an_admin_sets_another_operators_credential(server):
    # Everyone may replace their own token; nobody but an admin another's.
    assert (await new_token(server, "alice", "alice"))["setBy"] == []
    problem = (await server.call("POST", "/ra/operators/carol/token", "alice")).problem(403)
    assert "may not manage operators" in problem["detail"]
    problem = (await server.call("POST", "/ra/operators/alice/token", "bob")).problem(403)
    assert "may not manage operators" in problem["detail"]


async def test_without_the_rule_the_credential_setter_is_not_checked(ra_server):
    server = await ra_server(two_person_rule=False)
    flow = await server.prepare("online_input_received", creator="root", reviewer="root")
    await new_token(server, "bob", "root")
    await server.approve(flow, "bob")


# -- a bound certificate, against a real jitsuin serve ----------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any) -> Iterator[Any]:
    """carol is an admin who vets (the fixture's ``application`` enters and reviews as alice,
    so alice is carol here); bob and erin approve."""
    operators = (("alice", "admin"), ("bob", "approver"), ("root", "admin"), ("erin", "approver"))
    with live_jitsuin.server(tmp_path_factory.mktemp("two-persons"), operators=operators) as run:
        run.script = live_jitsuin.cli()
        yield run


def request(live: Any, path: str, *, token: str | None = None, cert: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(
        live.https + path,
        headers=headers,
        cert=cert,
        verify=str(live.ca_pem),
        timeout=30,
    )


def test_an_admin_cannot_approve_with_a_certificate_they_bound_to_an_approver(live, tmp_path):
    # alice (admin) holds a personal certificate of this CA (vetted by her, approved by bob).
    _, _, cert_pem, key_pem = live.enrolled(tmp_path)
    body = {"certificate": cert_pem.read_text()}
    binding = live.ok("PUT", "/ra/operators/bob/certificate", "alice", body)
    app = live.application(approve=False)  # entered and reviewed by alice

    # Her certificate authenticates her as bob; the approval is hers as well, and refused.
    path = f"/ra/applications/{app['id']}/approve"
    reply = request(live, path, cert=(str(cert_pem), str(key_pem)))
    assert reply.status_code == 403, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["type"] == FORBIDDEN and problem["shared"] == ["alice"]
    assert "bob, with a certificate that alice set" in problem["detail"]
    assert binding["operator"] == "bob" and binding["boundBy"] == ["alice"]
    # Rotating erin's token is the same.
    erin = live.ok("POST", "/ra/operators/erin/token", "alice")
    reply = request(live, path, token=erin["token"])
    assert reply.status_code == 403 and reply.json()["shared"] == ["alice"]
    assert erin["setBy"] == ["alice"]

    entries = live.ok("GET", "/ra/audit?limit=1000", "root")["entries"]
    refusals = [e for e in entries if e["action"] == "application.approve.refused"]
    assert [(e["actor"], e["details"]["credential"]) for e in refusals] == [
        ("bob", "certificate"),
        ("erin", "token"),
    ]
    assert all(e["details"]["credentialSetBy"] == ["alice"] for e in refusals)
    assert live.wait_state(app["id"], "online_input_received")

    # The host CLI gives erin a new token, she takes it over (`jitsuin ra own-token`), and
    # approves: a second person.
    handed_over = live.cli("ra", "operator-token", "erin").strip().splitlines()[-1]
    out = subprocess.run(
        [live.script, "--home", str(live.home), "ra", "own-token"],
        env={**os.environ, "JITSUIN_OPERATOR_TOKEN": handed_over},
        capture_output=True,
        text=True,
        check=True,
    )
    own = live.tokens["erin"] = out.stdout.strip().splitlines()[-1]
    assert request(live, "/ra/applications", token=handed_over).status_code == 401
    reply = request(live, path, token=own)
    assert reply.status_code == 200, reply.text
    taken_over = live.ok("GET", "/ra/audit?limit=1000", "root")["entries"][-3:]
    assert any(
        e["action"] == "operator.rotate_token"
        and e["actor"] == "erin"
        and e["details"]["credentialSetBy"][0].startswith("cli:")
        and e["details"]["setBy"] == []
        for e in taken_over
    )
    assert "audit log OK" in live.cli("audit", "verify")


def test_an_operator_binds_a_certificate_they_hold_and_approves_with_it(live, tmp_path):
    _, _, cert_pem, key_pem = live.enrolled(tmp_path)
    body = {"certificate": cert_pem.read_text()}
    path = "/ra/operators/erin/certificate"
    # Without presenting it, erin could be talked into binding a certificate someone else holds.
    status, problem = live.api("PUT", path, "erin", body)
    assert status == 422 and "proof that you hold its key" in problem["detail"]
    reply = requests.put(
        live.https + path,
        json=body,
        headers={"Authorization": f"Bearer {live.tokens['erin']}"},
        cert=(str(cert_pem), str(key_pem)),
        verify=str(live.ca_pem),
        timeout=30,
    )
    assert reply.status_code == 200 and reply.json()["boundBy"] == [], reply.text
    app = live.application(approve=False)  # entered and reviewed by alice
    reply = request(
        live, f"/ra/applications/{app['id']}/approve", cert=(str(cert_pem), str(key_pem))
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["approvedBy"] == "erin"

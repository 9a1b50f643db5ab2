"""An admin cuts an operator off at once (disable), lets them in again (enable), and replaces a
leaked API token (rotation): over the API, on an in-process server, and with the CLI and a bound
TLS client certificate against a real ``jitsuin serve`` process (tests/conftest.py
``live_jitsuin``; the certificate is a personal certificate picked up through EST after the real
RA flow, presented in real TLS handshakes by ``requests``).
"""

from __future__ import annotations

import getpass
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

UNAUTHORIZED = "urn:jitsuin:problem:unauthorized"
ACTIONS = ("disable", "enable", "token")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused_401(reply: Any) -> dict[str, Any]:
    problem = reply.problem(401)
    assert problem["type"] == UNAUTHORIZED
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    return problem


async def operator_entries(server: Any) -> list[tuple[str, str, str]]:
    """(actor, action, target) of the audit log's operator entries after the fixture's adds and
    each operator's taking over of the token the CLI made (the first rotation by themself)."""
    entries, taken_over = [], set()
    for e in await server.authority.store.audit_log():
        actor, action, target = e.event.actor, e.event.action, e.event.target
        takes_over = action == "operator.rotate_token" and target == f"operator/{actor}"
        if takes_over and actor not in taken_over:
            taken_over.add(actor)
            continue
        if action.startswith("operator.") and action != "operator.add":
            entries.append((actor, action, target))
    return entries


# -- the API, in process ---------------------------------------------------------------------------
async def test_a_disabled_operators_token_gets_401_at_once_and_enabling_restores_it(server):
    assert (await server.call("GET", "/ra/applications", "alice")).status == 200

    reply = (await server.call("POST", "/ra/operators/alice/disable", "root")).expect(200)
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.json == {
        "name": "alice",
        "disabled": True,
        "disabledAt": server.clock.now().isoformat(),
    }
    # The very next request with alice's token, on any route, is refused.
    for method, path, body in (
        ("GET", "/ra/applications", None),
        ("POST", "/ra/applications", server.application_body()),
        ("GET", "/ra/acme/eab-keys", None),
    ):
        problem = refused_401(await server.call(method, path, "alice", body=body))
        assert "disabled" in problem["detail"]
    assert await server.authority.store.applications() == []
    # The others still work.
    assert (await server.call("GET", "/ra/applications", "carol")).status == 200

    # Once only, in each direction; an unknown operator is 404.
    problem = (await server.call("POST", "/ra/operators/alice/disable", "root")).problem(409)
    assert "disabled already" in problem["detail"]
    problem = (await server.call("POST", "/ra/operators/carol/enable", "root")).problem(409)
    assert "not disabled" in problem["detail"]
    for action in ACTIONS:
        problem = (await server.call("POST", f"/ra/operators/nobody/{action}", "root")).problem(404)
        assert "no operator 'nobody'" in problem["detail"]

    # Another admin enables alice: the same token works again, with her role.
    reply = (await server.call("POST", "/ra/operators/alice/enable", "eve")).expect(200)
    assert reply.json == {"name": "alice", "disabled": False, "disabledAt": None}
    created = await server.create("alice")
    assert (await server.record(created.id)).created_by == "alice"

    assert await operator_entries(server) == [
        ("root", "operator.disable", "operator/alice"),
        ("eve", "operator.enable", "operator/alice"),
    ]
    assert await server.authority.store.verify_audit_chain() > 0


async def test_a_rotated_token_works_and_the_old_one_gets_401(server):
    old = server.tokens["bob"]
    reply = (await server.call("POST", "/ra/operators/bob/token", "root")).expect(200)
    assert reply.headers["Cache-Control"] == "no-store"
    assert set(reply.json) == {"name", "token", "setBy"} and reply.json["name"] == "bob"
    assert reply.json["setBy"] == ["root"]  # root may know it: bob's actions count as root's too
    new = reply.json["token"]
    assert new != old and new.startswith("jto_")

    refused_401(await server.call("GET", "/ra/mail", headers=bearer(old)))
    # The new token is bob's, with bob's role.
    assert (await server.call("GET", "/ra/mail", headers=bearer(new))).status == 200
    body = server.application_body()
    problem = (
        await server.call("POST", "/ra/applications", headers=bearer(new), body=body)
    ).problem(403)
    assert "bob (approver) may not create" in problem["detail"]

    # Stored only as its keyed hash, like a token of operator-add.
    with sqlite3.connect(server.database) as db:
        (stored,) = db.execute("SELECT token_hash FROM operators WHERE name = 'bob'").fetchone()
    assert stored == server.ra.keyring.digest("operator", new)
    assert new not in stored and new.encode() not in server.database.read_bytes()

    # An admin may rotate their own token; the one that asked stops working.
    reply = (await server.call("POST", "/ra/operators/root/token", "root")).expect(200)
    refused_401(await server.call("GET", "/ra/audit", "root"))
    assert (
        await server.call("GET", "/ra/audit", headers=bearer(reply.json["token"]))
    ).status == 200

    assert await operator_entries(server) == [
        ("root", "operator.rotate_token", "operator/bob"),
        ("root", "operator.rotate_token", "operator/root"),
    ]
    # The token never reaches the audit log.
    for entry in await server.authority.store.audit_log():
        assert new not in str(entry.event.details)


async def test_rotating_a_disabled_operators_token_does_not_enable_it(server):
    (await server.call("POST", "/ra/operators/dave/disable", "root")).expect(200)
    new = (await server.call("POST", "/ra/operators/dave/token", "root")).expect(200).json["token"]
    refused_401(await server.call("GET", "/ra/mail", headers=bearer(new)))
    refused_401(await server.call("GET", "/ra/mail", "dave"))
    (await server.call("POST", "/ra/operators/dave/enable", "root")).expect(200)
    assert (await server.call("GET", "/ra/mail", headers=bearer(new))).status == 200
    refused_401(await server.call("GET", "/ra/mail", "dave"))  # the old token stays dead


async def test_only_an_admin_disables_enables_or_rotates(server):
    (await server.call("POST", "/ra/operators/dave/disable", "root")).expect(200)
    entries = len(await server.authority.store.audit_log())
    for who in ("alice", "bob"):
        for action in ACTIONS:
            for target in ("carol", "dave", who):
                if (action, target) == ("token", who):
                    continue  # everyone may replace their own token (two-person rule)
                reply = await server.call("POST", f"/ra/operators/{target}/{action}", who)
                problem = reply.problem(403)
                assert (
                    f"{who} (" in problem["detail"]
                    and "may not manage operators" in problem["detail"]
                )
    # Without a credential it is 401.
    for action in ACTIONS:
        refused_401(await server.call("POST", f"/ra/operators/carol/{action}"))
    # Nothing changed and nothing was audited.
    assert len(await server.authority.store.audit_log()) == entries
    for who in ("alice", "bob", "carol"):
        assert (await server.call("GET", "/ra/applications", who)).status == 200
    refused_401(await server.call("GET", "/ra/applications", "dave"))

    # A body, if any, must be empty.
    reply = await server.call("POST", "/ra/operators/carol/disable", "root", body={"why": "x"})
    assert "unknown field 'why'" in reply.problem(422)["detail"]
    assert (await server.call("GET", "/ra/applications", "carol")).status == 200


async def test_an_admin_cannot_disable_themself(server):
    reply = await server.call("POST", "/ra/operators/root/disable", "root")
    problem = reply.problem(403)
    assert problem["type"] == "urn:jitsuin:problem:forbidden"
    assert "may not disable themself" in problem["detail"]
    assert (await server.call("GET", "/ra/audit", "root")).status == 200
    assert await operator_entries(server) == []

    # Another admin can; the disabled admin can neither act nor enable themself.
    (await server.call("POST", "/ra/operators/root/disable", "eve")).expect(200)
    refused_401(await server.call("POST", "/ra/operators/root/enable", "root"))
    refused_401(await server.call("POST", "/ra/operators/eve/disable", "root"))
    # eve, now the only enabled admin, cannot lock the CA out either.
    assert (
        "themself"
        in (await server.call("POST", "/ra/operators/eve/disable", "eve")).problem(403)["detail"]
    )
    (await server.call("POST", "/ra/operators/root/enable", "eve")).expect(200)
    assert (await server.call("GET", "/ra/audit", "root")).status == 200
    assert await operator_entries(server) == [
        ("eve", "operator.disable", "operator/root"),
        ("eve", "operator.enable", "operator/root"),
    ]


# -- a real server process: TLS client certificates and the CLI ----------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any) -> Iterator[Any]:
    """A running jitsuin with the operators alice (reviewer), bob (approver), root (admin)."""
    with live_jitsuin.server(tmp_path_factory.mktemp("operator-disable")) as running:
        running.script = live_jitsuin.cli()
        yield running


def call(
    live: Any,
    method: str,
    path: str,
    *,
    credential: tuple[Path, Path] | None = None,
    token: str | None = None,
) -> requests.Response:
    return requests.request(
        method,
        live.https + path,
        headers=bearer(token) if token is not None else {},
        cert=(str(credential[0]), str(credential[1])) if credential else None,
        verify=str(live.ca_pem),
        timeout=30,
    )


def unauthorized(reply: requests.Response) -> dict[str, Any]:
    assert reply.status_code == 401, (reply.status_code, reply.text)
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    document = reply.json()
    assert document["type"] == UNAUTHORIZED and document["status"] == 401
    return document


def jitsuin(live: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script on the running server's home, with no operator token."""
    env = {k: v for k, v in os.environ.items() if k != "JITSUIN_OPERATOR_TOKEN"}
    return subprocess.run(
        [live.script, "--home", str(live.home), *args], capture_output=True, text=True, env=env
    )


def audit_entries(live: Any) -> list[dict[str, Any]]:
    reply = call(live, "GET", "/ra/audit?limit=1000", token=live.tokens["root"])
    assert reply.status_code == 200, reply.text
    return [e for e in reply.json()["entries"] if e["action"] in OPERATOR_ACTIONS]


OPERATOR_ACTIONS = ("operator.disable", "operator.enable", "operator.rotate_token")


def test_a_disabled_operators_certificate_gets_401_and_enabling_restores_it(live, tmp_path):
    _, _, cert_file, key_file = live.enrolled(tmp_path / "bob")
    credential = (cert_file, key_file)
    cert_pem = credential[0].read_text()
    reply = requests.put(
        live.https + "/ra/operators/bob/certificate",
        json={"certificate": cert_pem},
        headers=bearer(live.tokens["root"]),
        verify=str(live.ca_pem),
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert call(live, "GET", "/ra/mail", credential=credential).status_code == 200
    before = len(audit_entries(live))

    reply = call(live, "POST", "/ra/operators/bob/disable", token=live.tokens["root"])
    assert reply.status_code == 200, reply.text
    assert reply.json()["disabled"] is True
    # At once, on a new connection: neither the certificate nor the token.
    document = unauthorized(call(live, "GET", "/ra/mail", credential=credential))
    assert "enabled operator" in document["detail"]
    unauthorized(call(live, "GET", "/ra/mail", token=live.tokens["bob"]))
    # The ACME operator routes know it too.
    unauthorized(call(live, "GET", "/ra/acme/eab-keys", credential=credential))

    reply = call(live, "POST", "/ra/operators/bob/enable", token=live.tokens["root"])
    assert reply.status_code == 200, reply.text
    assert call(live, "GET", "/ra/mail", credential=credential).status_code == 200
    assert call(live, "GET", "/ra/mail", token=live.tokens["bob"]).status_code == 200

    entries = audit_entries(live)[before:]
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("root", "operator.disable", "operator/bob"),
        ("root", "operator.enable", "operator/bob"),
    ]


def test_the_cli_disables_enables_and_rotates(live):
    user = f"cli:{getpass.getuser()}"
    before = len(audit_entries(live))
    assert call(live, "GET", "/ra/applications", token=live.tokens["alice"]).status_code == 200

    out = jitsuin(live, "ra", "operator-disable", "alice")
    assert out.returncode == 0, out.stderr
    assert "alice disabled" in out.stdout
    unauthorized(call(live, "GET", "/ra/applications", token=live.tokens["alice"]))
    listed = {
        line.split("\t")[0]: line for line in jitsuin(live, "ra", "operators").stdout.splitlines()
    }
    assert "\tdisabled " in listed["alice"]
    assert listed["alice"].startswith("alice\treviewer\t")
    assert "disabled" not in listed["bob"] and "disabled" not in listed["root"]
    out = jitsuin(live, "ra", "operator-disable", "alice")
    assert out.returncode == 1 and "conflict" in out.stderr and "disabled already" in out.stderr

    out = jitsuin(live, "ra", "operator-enable", "alice")
    assert out.returncode == 0, out.stderr
    assert call(live, "GET", "/ra/applications", token=live.tokens["alice"]).status_code == 200
    assert "disabled" not in jitsuin(live, "ra", "operators").stdout
    out = jitsuin(live, "ra", "operator-enable", "alice")
    assert out.returncode == 1 and "not disabled" in out.stderr

    out = jitsuin(live, "ra", "operator-token", "alice")
    assert out.returncode == 0, out.stderr
    assert "shown once" in out.stdout
    new = out.stdout.strip().splitlines()[-1]
    unauthorized(call(live, "GET", "/ra/applications", token=live.tokens["alice"]))
    live.tokens["alice"] = new
    assert call(live, "GET", "/ra/applications", token=new).status_code == 200

    for command in ("operator-disable", "operator-enable", "operator-token"):
        out = jitsuin(live, "ra", command, "nobody")
        assert out.returncode == 1 and "not_found" in out.stderr, (command, out.stderr)

    entries = audit_entries(live)[before:]
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        (user, "operator.disable", "operator/alice"),
        (user, "operator.enable", "operator/alice"),
        (user, "operator.rotate_token", "operator/alice"),
    ]
    with sqlite3.connect(live.database) as db:
        hashes_stored = [row[0] for row in db.execute("SELECT token_hash FROM operators")]
    assert new not in hashes_stored

"""Account deactivation cancels what the account's key authorized (RFC 8555 §7.3.6: "the server
SHOULD cancel any pending operations authorized by the account's key, such as certificate
orders"): its pending and ready orders become invalid and its pending authorizations
deactivated (§7.1.6), while another account's order is left alone.

A deactivated account can no longer read its orders (§7.3.6), so the outcome is read from the
server's database, as an operator would see it."""

from __future__ import annotations

import json
import sqlite3

ERR = "urn:ietf:params:acme:error:"


def stored(server, table: str, object_id: str, *columns: str) -> tuple:
    with sqlite3.connect(server.database, timeout=30) as db:
        row = db.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE id = ?",  # noqa: S608
            (object_id,),
        ).fetchone()
    assert row is not None, (table, object_id)
    return row


def tail(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def order_url(order: dict) -> str:
    return order["finalize"].removesuffix("/finalize")


def account(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key([helpers.ZONE])
    assert client.register(kid, mac).status_code == 201
    return client


def test_deactivation_invalidates_pending_and_ready_orders(server, helpers):
    client = account(server, helpers)
    pending = client.new_order(helpers.dns_ids("pending.deactivate.jitsuin.test")).json()
    ready = client.new_order(helpers.dns_ids("ready.deactivate.jitsuin.test")).json()
    authz = client.get(ready["authorizations"][0]).json()
    chall = next(c for c in authz["challenges"] if c["type"] == "http-01")
    with helpers.Http01(server.http01_port) as responder:
        responder.tokens[chall["token"]] = client.key_authorization(chall["token"])
        client.post(chall["url"], {})
        assert client.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"
    ready_url = order_url(ready)
    assert client.wait(ready_url, ("ready", "invalid"))["status"] == "ready"
    other = account(server, helpers)
    theirs = other.new_order(helpers.dns_ids("other.deactivate.jitsuin.test")).json()

    reply = client.post(client.kid, {"status": "deactivated"})
    assert reply.status_code == 200 and reply.json()["status"] == "deactivated"

    pending_url, pending_authz = order_url(pending), tail(pending["authorizations"][0])
    for url in (pending_url, ready_url):
        status, error = stored(server, "acme_orders", tail(url), "status", "error")
        assert status == "invalid"
        problem = json.loads(error)
        assert problem["type"] == ERR + "unauthorized" and "deactivated" in problem["detail"]
    assert stored(server, "acme_authorizations", pending_authz, "status") == ("deactivated",)
    # The ready order's authorization was valid: it stays what it was.
    ready_authz = tail(ready["authorizations"][0])
    assert stored(server, "acme_authorizations", ready_authz, "status") == ("valid",)
    # Another account's order and authorization are untouched, and it can go on.
    mine = other.get(order_url(theirs))
    assert mine.status_code == 200 and mine.json()["status"] == "pending"
    assert other.get(theirs["authorizations"][0]).json()["status"] == "pending"
    # The account's key authorizes nothing more (§7.3.6).
    refused = client.get(ready_url)
    assert refused.status_code == 403 and refused.json()["type"] == ERR + "unauthorized"
    # Audited: the deactivation, then each cancelled order and authorization.
    with sqlite3.connect(server.database, timeout=30) as db:
        actions = db.execute(
            "SELECT action, target FROM audit_log WHERE actor = ? ORDER BY seq",
            (f"acme:{tail(client.kid)}",),
        ).fetchall()
    assert actions[-4:] == [
        ("acme.account.deactivate", f"acme/account/{tail(client.kid)}"),
        ("acme.order.cancel", f"acme/order/{tail(pending_url)}"),
        ("acme.order.cancel", f"acme/order/{tail(ready_url)}"),
        ("acme.authorization.deactivate", f"acme/authz/{pending_authz}"),
    ]

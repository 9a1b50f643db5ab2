"""Pebble-like test knobs ([acme.test]): a share of valid nonces rejected, validation that always
succeeds, a validation delay (with Retry-After while processing). The same server then rolls its
CA over, and certificate downloads offer the other generation's chain through the link
certificates (§7.4.2 Link rel="alternate")."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess

import pytest
from cryptography import x509

ERR = "urn:ietf:params:acme:error:"


@pytest.fixture(scope="module")
def client(test_mode_server, helpers):
    client = helpers.Client(test_mode_server)
    client.retry_bad_nonce = True
    kid, mac = test_mode_server.eab_key()
    assert client.register(kid, mac).status_code == 201
    return client


def test_a_share_of_valid_nonces_is_rejected(client):
    rejected = 0
    for _ in range(40):
        reply = client.post(client.kid, None, raw=client.jws(client.kid, None))
        if reply.status_code == 400:
            assert reply.json()["type"] == ERR + "badNonce"
            assert reply.headers["Replay-Nonce"]
            rejected += 1
        else:
            assert reply.status_code == 200
    assert 3 <= rejected <= 37  # reject_nonce_share = 0.5


def certificate(client, helpers, name: str) -> tuple[dict, list[x509.Certificate]]:
    order = client.new_order(helpers.dns_ids(name)).json()
    authz = client.get(order["authorizations"][0]).json()
    chall = next(c for c in authz["challenges"] if c["type"] == "http-01")
    client.post(chall["url"], {})  # nobody answers: the knob makes it valid anyway
    assert client.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"
    done = client.finalize(order, helpers.make_csr(helpers.new_key(), dns=[name]))
    assert done.status_code == 200, done.text
    return done.json(), x509.load_pem_x509_certificates(
        client.get(done.json()["certificate"]).content
    )


def test_validation_delay_and_always_valid(client, helpers):
    order = client.new_order(helpers.dns_ids("delay.jitsuin.test")).json()
    authz_url = order["authorizations"][0]
    chall = next(c for c in client.get(authz_url).json()["challenges"] if c["type"] == "http-01")
    started = client.post(chall["url"], {})
    assert started.json()["status"] == "processing" and started.headers["Retry-After"] == "1"
    while_processing = client.get(authz_url)  # §8.2: Retry-After on the authorization too
    assert while_processing.json()["status"] == "pending"
    assert while_processing.headers["Retry-After"] == "1"
    assert client.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"


def test_rollover_offers_alternate_chains(client, helpers, test_mode_server):
    server = test_mode_server
    old_order, (old_leaf, root1) = certificate(client, helpers, "before.jitsuin.test")
    server.ok("POST", "/ra/ca/rollover", "root")
    new_order, (new_leaf, root2) = certificate(client, helpers, "after.jitsuin.test")
    assert root1 != root2 and new_leaf.issuer == root2.subject
    new_leaf.verify_directly_issued_by(root2)

    reply = client.get(new_order["certificate"])
    alternates = [u for u, rel in helpers.links(reply) if rel == "alternate"]
    assert alternates == [new_order["certificate"] + "/1"]
    leaf, new_with_old, old_root = x509.load_pem_x509_certificates(
        client.get(alternates[0]).content
    )
    assert leaf == new_leaf and old_root == root1
    # NewWithOld: the new generation's key, signed by the old one (docs/flow.md).
    assert new_with_old.public_key() == root2.public_key()
    new_with_old.verify_directly_issued_by(root1)
    leaf.verify_directly_issued_by(new_with_old)
    back = [u for u, rel in helpers.links(client.get(alternates[0])) if rel == "alternate"]
    assert back == [new_order["certificate"]]

    # A certificate of the old generation: its chain, and one to the new root (OldWithNew).
    reply = client.get(old_order["certificate"])
    assert x509.load_pem_x509_certificates(reply.content) == [old_leaf, root1]
    (alternate,) = [u for u, rel in helpers.links(reply) if rel == "alternate"]
    leaf, old_with_new, new_root = x509.load_pem_x509_certificates(client.get(alternate).content)
    assert old_with_new.public_key() == root1.public_key() and new_root == root2
    old_with_new.verify_directly_issued_by(root2)
    leaf.verify_directly_issued_by(old_with_new)
    reply = client.get(old_order["certificate"] + "/2")
    assert reply.status_code == 404

    # ARI: a certificate of a generation that no longer issues is due for renewal now.
    from jitsuin.protocol.acme.messages import ari_cert_id

    info = client.session.get(f"{client.url('renewalInfo')}/{ari_cert_id(old_leaf)}").json()
    start = dt.datetime.fromisoformat(info["suggestedWindow"]["start"].replace("Z", "+00:00"))
    assert start < dt.datetime.now(dt.UTC)


# -- test mode is explicit and loud (docs/threat-model.md) ---------------------------------------
def _jitsuin(cli: str, home, *args: str, allow: bool) -> subprocess.CompletedProcess[str]:
    """The console script on ``home``, with or without JITSUIN_ALLOW_TEST_MODE=1."""
    env = {k: v for k, v in os.environ.items() if k != "JITSUIN_ALLOW_TEST_MODE"}
    if allow:
        env["JITSUIN_ALLOW_TEST_MODE"] = "1"
    return subprocess.run(
        [cli, "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_health_and_serve_say_the_ca_is_in_test_mode(test_mode_server, server):
    health = json.loads(test_mode_server.fetch("/health")[2])
    assert health["status"] == "warning"
    assert health["testMode"] == {
        "active": True,
        "knobs": [
            "reject_nonce_share = 0.5",
            "validation_always_succeeds = true",
            "validation_delay_seconds = 1.5",
        ],
    }
    assert any(w.startswith("TEST MODE (JITSUIN_ALLOW_TEST_MODE=1)") for w in health["warnings"])
    log = (test_mode_server.home / "server.log").read_text()
    assert "WARNING: TEST MODE (JITSUIN_ALLOW_TEST_MODE=1): [acme.test]" in log
    # The server without knobs says nothing of the kind.
    plain = json.loads(server.fetch("/health")[2])
    assert plain["testMode"] == {"active": False, "knobs": []}
    assert "TEST MODE" not in (server.home / "server.log").read_text()


def test_knobs_are_refused_without_the_environment_variable(test_mode_server, live_jitsuin):
    cli, home = live_jitsuin.cli(), test_mode_server.home
    for command in (["check-config"], ["serve"], ["ra", "operators"]):
        out = _jitsuin(cli, home, *command, allow=False)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "acme.test: test-mode knobs (reject_nonce_share = 0.5, " in out.stderr
        assert "unless JITSUIN_ALLOW_TEST_MODE=1 is set" in out.stderr
    out = _jitsuin(cli, home, "check-config", allow=True)
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout and "WARNING: TEST MODE" in out.stderr

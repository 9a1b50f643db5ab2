"""The gate for personal certificates (docs/flow.md §4): the whole RA flow, then
an ACME client of our own (JWS through josepy) binds its account with the enrollment ID and the
MAC key from the PIN e-mail, orders the vetted e-mail address and finalizes, which redeems the
application through the RA's transaction. Renewal orders follow the RA's re-enrollment policy:
``processing`` + Retry-After until an operator approves, across a server restart."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ERR = "urn:ietf:params:acme:error:"


def problem(reply, status: int, error: str) -> dict:
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["Replay-Nonce"]
    body = reply.json()
    assert body["type"] == ERR + error, body
    return body


def email_id(address: str) -> list[dict[str, str]]:
    return [{"type": "email", "value": address}]


def est_pickup(server, app, key, helpers) -> requests.Response:
    """The other door: EST simpleenroll with the enrollment ID and the PIN (RFC 7030)."""
    csr = helpers.make_csr(key, emails=[app["email"]])
    return requests.post(
        server.https + "/.well-known/est/simpleenroll",
        data=base64.b64encode(csr),
        auth=(app["enrollment_id"], app["pin"]),
        headers={"Content-Type": "application/pkcs10"},
        verify=str(server.ca_pem),
        timeout=60,
    )


def application_state(server, app_id: str) -> dict:
    return server.ok("GET", f"/ra/applications/{app_id}", "bob")


def test_personal_certificate_through_acme(server, helpers):
    app = server.application("general")
    client = helpers.Client(server)
    assert app["kid"] == app["enrollment_id"]  # docs/flow.md: kid = enrollment ID
    created = client.register(app["kid"], app["hmac"], contact=[f"mailto:{app['email']}"])
    assert created.status_code == 201, created.text

    # Any other identifier is refused, with a subproblem per identifier.
    body = problem(
        client.new_order(
            email_id("someone.else@example.com") + helpers.dns_ids("www.jitsuin.test")
        ),
        400,
        "rejectedIdentifier",
    )
    assert {s["identifier"]["value"] for s in body["subproblems"]} == {
        "someone.else@example.com",
        "www.jitsuin.test",
    }
    problem(
        client.new_order(email_id(app["email"]), profile="document-manager"), 400, "invalidProfile"
    )
    problem(client.new_order(email_id(app["email"]), profile="no-such"), 400, "invalidProfile")
    problem(
        client.post(
            client.url("newAuthz"), {"identifier": {"type": "dns", "value": "www.jitsuin.test"}}
        ),
        400,
        "rejectedIdentifier",
    )

    # The vetted address: the authorization is valid at once (the RA vetted it).
    reply = client.new_order(email_id(app["email"]))
    assert reply.status_code == 201, reply.text
    order = reply.json()
    assert order["status"] == "ready" and order["profile"] == "general"
    authz = client.get(order["authorizations"][0]).json()
    assert authz["status"] == "valid" and authz["identifier"] == email_id(app["email"])[0]

    key = helpers.new_key()
    problem(
        client.finalize(order, helpers.make_csr(key, emails=["other@example.com"])), 400, "badCSR"
    )
    problem(
        client.finalize(order, helpers.make_csr(client.key, emails=[app["email"]])), 400, "badCSR"
    )
    # A CSR may leave the subject out; what it says must not contradict the vetted record.
    problem(
        client.finalize(order, helpers.make_csr(key, emails=[app["email"]], cn="Decoy")),
        400,
        "badCSR",
    )
    assert client.get(order["finalize"].removesuffix("/finalize")).json()["status"] == "ready"
    done = client.finalize(order, helpers.make_csr(key, emails=[app["email"]], cn="Hanako Yamada"))
    assert done.status_code == 200, done.text
    order = done.json()
    assert order["status"] == "valid"
    problem(
        client.finalize(order, helpers.make_csr(key, emails=[app["email"]])), 403, "orderNotReady"
    )
    download = client.get(order["certificate"])
    assert download.headers["Content-Type"] == "application/pem-certificate-chain"
    leaf, ca = x509.load_pem_x509_certificates(download.content)
    assert ca == x509.load_pem_x509_certificate(server.ca_pem.read_bytes())
    # Every subject field comes from the vetted record.
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Hanako Yamada"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [app["email"]]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku

    # One application, one certificate: the PIN is spent too, and the EAB key binds once.
    record = application_state(server, app["id"])
    assert record["state"] == "issued" and record["pin"]["usedAt"]
    assert record["certificate"]["serial"] == format(leaf.serial_number, "x")
    refused = est_pickup(server, app, helpers.new_key(), helpers)
    assert refused.status_code == 401, refused.text
    problem(helpers.Client(server).register(app["kid"], app["hmac"]), 403, "unauthorized")

    # Revoked through ACME (RFC 8555 §7.6): the RA application closes with it.
    der = base64.urlsafe_b64encode(leaf.public_bytes(serialization.Encoding.DER)).rstrip(b"=")
    revoked = client.post(client.url("revokeCert"), {"certificate": der.decode(), "reason": 1})
    assert revoked.status_code == 200, revoked.text
    record = application_state(server, app["id"])
    assert record["state"] == "revoked", record


def test_pin_first_spends_the_eab_key(server, helpers):
    app = server.application("general")
    assert est_pickup(server, app, helpers.new_key(), helpers).status_code == 200
    problem(helpers.Client(server).register(app["kid"], app["hmac"]), 403, "unauthorized")


def test_account_bound_then_pin_used_elsewhere(server, helpers):
    """An account bound before the PIN was used by EST cannot get a second certificate."""
    app = server.application("general")
    client = helpers.Client(server)
    assert client.register(app["kid"], app["hmac"]).status_code == 201
    order = client.new_order(email_id(app["email"])).json()
    assert est_pickup(server, app, helpers.new_key(), helpers).status_code == 200
    key = helpers.new_key()
    problem(
        client.finalize(order, helpers.make_csr(key, emails=[app["email"]])), 403, "unauthorized"
    )
    assert client.get(order["finalize"].removesuffix("/finalize")).json()["status"] == "invalid"


def test_eab_before_approval_and_wrong_mac(server, helpers):
    pending = server.application("general", approve=False)
    client = helpers.Client(server)
    body = problem(client.register(pending["enrollment_id"], "A" * 43), 403, "unauthorized")
    assert "online_input_received" in body["detail"]
    app = server.application("general")
    wrong = problem(
        helpers.Client(server).register(app["kid"], "AQ" * 21 + "A"), 403, "unauthorized"
    )
    assert "MAC" in wrong["detail"]
    # The wrong MAC counted as a wrong try on the application's one-time credentials.
    assert application_state(server, app["id"])["pin"]["attempts"] == 1
    # This address waits before its next try is compared (RFC 8555 §6.6 rateLimited), even with
    # the right MAC; the wait is not a try.
    waited = helpers.Client(server).register(app["kid"], app["hmac"])
    assert problem(waited, 429, "rateLimited")
    assert 1 <= int(waited.headers["Retry-After"]) <= 15
    assert application_state(server, app["id"])["pin"]["attempts"] == 1


def test_renewal_waits_for_an_operator_across_a_restart(server, helpers):
    """document-manager re-enrollment needs an operator ([est] reenroll_approval): the renewal
    order stays processing with Retry-After, survives a restart, and is issued once approved."""
    app = server.application("document-manager")
    client = helpers.Client(server)
    client.register(app["kid"], app["hmac"])
    first = client.new_order(email_id(app["email"])).json()
    first = client.finalize(first, helpers.make_csr(helpers.new_key(), emails=[app["email"]]))
    assert first.json()["status"] == "valid", first.text

    renewal = client.new_order(email_id(app["email"])).json()
    assert renewal["status"] == "ready"  # the e-mail authorization is reused
    problem(
        client.finalize(renewal, helpers.make_csr(helpers.new_key(), emails=["x@example.com"])),
        400,
        "badCSR",
    )
    reply = client.finalize(renewal, helpers.make_csr(helpers.new_key(), emails=[app["email"]]))
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "processing"
    assert reply.headers["Retry-After"] == "2"  # [ra] retry_after_seconds in the test config
    order_url = reply.headers["Location"]

    server.restart()
    again = client.get(order_url)
    assert again.json()["status"] == "processing" and again.headers["Retry-After"] == "2"
    problem(
        client.finalize(renewal, helpers.make_csr(helpers.new_key(), emails=[app["email"]])),
        403,
        "orderNotReady",
    )

    pending = server.ok("GET", "/ra/reenrollments?status=pending", "bob")["reenrollments"]
    mine = [r for r in pending if r["subscriber"] == app["email"]]
    assert len(mine) == 1
    server.ok("POST", f"/ra/reenrollments/{mine[0]['id']}/approve", "bob")
    deadline = time.monotonic() + 20
    while (body := client.get(order_url).json())["status"] == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert body["status"] == "valid"
    leaf = x509.load_pem_x509_certificates(client.get(body["certificate"]).content)[0]
    first_leaf = x509.load_pem_x509_certificates(client.get(first.json()["certificate"]).content)[0]
    assert leaf.subject == first_leaf.subject and leaf.serial_number != first_leaf.serial_number


@pytest.mark.parametrize("field", ["contact"])
def test_account_update(server, helpers, field):
    app = server.application("general")
    client = helpers.Client(server)
    client.register(app["kid"], app["hmac"])
    updated = client.post(client.kid, {"contact": [f"mailto:{app['email']}"]})
    assert updated.status_code == 200 and updated.json()["contact"] == [f"mailto:{app['email']}"]
    problem(client.post(client.kid, {"contact": ["tel:+81312345678"]}), 400, "unsupportedContact")
    for bad in (
        ["mailto:a@example.com,b@example.com"],
        ["mailto:a@example.com?subject=x"],
        ["mailto:not-an-address"],
    ):
        problem(client.post(client.kid, {"contact": bad}), 400, "invalidContact")
    problem(client.post(client.kid, {"contact": "mailto:a@example.com"}), 400, "malformed")

"""Hostile JWS to a running server: JSON nested 1,000 deep or with a 5,000-digit
integer in the body, the protected header or the payload, an ``alg`` that is a list or an object,
a ``jwk`` whose ``kty`` is a list, and correctly signed requests whose payload is not JSON. Each is
an RFC 8555 problem (``malformed``, or ``badSignatureAlgorithm`` for ``alg``, §6.2), never a 500."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from jitsuin.protocol.jose import b64u_encode, canonical_json

ERR = "urn:ietf:params:acme:error:"
DEEP = "[" * 1000 + "]" * 1000
LONG_INTEGER = "9" * 5000


def problem(reply, status: int, error: str) -> dict:
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["Content-Type"] == "application/problem+json"
    body = reply.json()
    assert body["type"] == ERR + error, body
    assert "Traceback" not in body["detail"]
    return body


@pytest.fixture(scope="module")
def account(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key([helpers.ZONE])
    assert client.register(kid, mac).status_code == 201
    return client


def unsigned(header: dict | str, payload: bytes = b"{}") -> dict[str, str]:
    """A flattened JWS whose signature nobody checks: the header is refused first."""
    text = header if isinstance(header, str) else json.dumps(header)
    return {
        "protected": b64u_encode(text.encode()),
        "payload": b64u_encode(payload),
        "signature": b64u_encode(b"\x01" * 64),
    }


@pytest.mark.parametrize("alg", [["ES256"], {"ES256": 1}, [], 256, None, True])
def test_alg_of_another_type_is_a_bad_signature_algorithm(server, helpers, alg):
    """No account and no nonce needed: the alg is read first."""
    client = helpers.Client(server)
    url = client.url("newOrder")
    reply = client.post(url, raw=unsigned({"alg": alg, "kid": "x", "url": url}))
    assert problem(reply, 400, "badSignatureAlgorithm")["algorithms"]


@pytest.mark.parametrize("alg", [["HS256"], {"a": "b"}])
def test_eab_alg_of_another_type_is_a_bad_signature_algorithm(server, helpers, alg):
    client = helpers.Client(server)
    url = client.url("newAccount")
    eab = unsigned({"alg": alg, "kid": "kid-x", "url": url}, json.dumps(client.jwk).encode())
    payload = {"termsOfServiceAgreed": True, "externalAccountBinding": eab}
    reply = client.post(url, payload, use_jwk=True)
    problem(reply, 400, "badSignatureAlgorithm")


@pytest.mark.parametrize("kty", [["EC"], {"EC": 1}, 7])
def test_jwk_kty_of_another_type_is_malformed(server, helpers, kty):
    client = helpers.Client(server)
    jwk = {**client.jwk, "kty": kty}
    reply = client.post(client.url("newAccount"), {}, use_jwk=True, header={"jwk": jwk})
    assert "kty" in problem(reply, 400, "malformed")["detail"]


@pytest.mark.parametrize("raw", [DEEP, '{"protected": ' + LONG_INTEGER + "}", "NaN"])
def test_a_hostile_body_is_malformed(server, helpers, raw):
    client = helpers.Client(server)
    problem(client.post(client.url("newOrder"), raw=raw), 400, "malformed")


@pytest.mark.parametrize(
    "header",
    [
        DEEP,
        '{"alg": "ES256", "nonce": ' + LONG_INTEGER + "}",
        '{"alg": "ES256", "alg": "ES256"}',
        '{"alg": "ES256", "url": "\\ud800"}',
    ],
)
def test_a_hostile_protected_header_is_malformed(server, helpers, header):
    client = helpers.Client(server)
    problem(client.post(client.url("newOrder"), raw=unsigned(header)), 400, "malformed")


PAYLOADS = [
    b"not json",
    b"\xff\xfe",
    DEEP.encode(),
    b'{"reason": ' + LONG_INTEGER.encode() + b"}",
    b'{"a": NaN}',
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_signed_new_account_whose_payload_is_not_json(server, helpers, payload):
    client = helpers.Client(server)
    reply = client.post(client.url("newAccount"), payload, use_jwk=True)
    assert "payload" in problem(reply, 400, "malformed")["detail"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_signed_revocation_whose_payload_is_not_json(account, helpers, payload):
    by_account = account.post(account.url("revokeCert"), payload)
    problem(by_account, 400, "malformed")
    by_key = helpers.Client(account.server)
    problem(by_key.post(by_key.url("revokeCert"), payload, use_jwk=True), 400, "malformed")


@pytest.mark.parametrize("payload", PAYLOADS[:3])
def test_signed_requests_with_a_payload_that_is_not_json(account, payload):
    for name in ("newOrder", "newAuthz", "keyChange"):
        problem(account.post(account.url(name), payload), 400, "malformed")
    problem(account.post(account.kid, payload), 400, "malformed")


def test_a_key_change_whose_inner_payload_is_not_json(account, helpers):
    url = account.url("keyChange")
    new_key = helpers.new_key()
    inner = account.jws(url, b"[" * 1000, use_jwk=True, key=new_key, drop=("nonce",))
    reply = account.post(url, inner)
    problem(reply, 400, "malformed")


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z"]
)
def test_order_times_at_the_ends_of_the_calendar_are_malformed(account, helpers, when):
    for name in ("notBefore", "notAfter"):
        reply = account.new_order(helpers.dns_ids("a." + helpers.ZONE), **{name: when})
        problem(reply, 400, "malformed")


def test_an_orders_cursor_in_other_digits_is_malformed(account):
    orders = account.kid + "/orders"
    for cursor in ("²", "١", "9" * 5000):
        reply = account.post(f"{orders}?cursor={urllib.parse.quote(cursor)}", None)
        assert "cursor" in problem(reply, 400, "malformed")["detail"]


def test_an_alternate_chain_number_in_other_digits_is_not_a_route(account):
    reply = account.post(account.url("newOrder").replace("new-order", "cert/x/١"), None)
    assert reply.status_code == 404


def test_a_renewal_info_serial_longer_than_20_octets_is_malformed(server, helpers):
    client = helpers.Client(server)
    cert_id = b64u_encode(b"\x01" * 20) + "." + b64u_encode(b"\x01" * 21)
    reply = client.session.get(f"{server.acme}/renewal-info/{cert_id}", timeout=30)
    assert "20 octets" in problem(reply, 400, "malformed")["detail"]


def test_the_canonical_form_still_verifies(account):
    """The reader refuses duplicates, so canonical_json (sorted, unique) stays what is signed."""
    assert canonical_json({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
    assert account.get(account.kid).status_code == 200


def test_a_body_too_large_is_an_acme_problem_with_a_nonce(server, helpers):
    client = helpers.Client(server)
    reply = client.post(client.url("newOrder"), raw="x" * (64 * 1024 + 1))
    problem(reply, 413, "malformed")
    assert reply.headers.get("Replay-Nonce")

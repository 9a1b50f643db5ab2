"""docs/protocols.md, "ACME: points that servers commonly get wrong": for each point, the wrong
thing is sent to a running server and the exact status, error type and headers are checked."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jitsuin.protocol.jose import b64u_encode, canonical_json, jwk_of, sign_flattened

ERR = "urn:ietf:params:acme:error:"
ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256"]


def problem(reply, status: int, error: str) -> dict:
    """The reply is an ACME problem document of ``error`` with ``status`` and the headers every
    error carries: a fresh Replay-Nonce (§6.5) and Link rel="index" (§7.1)."""
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["Content-Type"] == "application/problem+json"
    body = reply.json()
    assert body["type"] == ERR + error, body
    assert body["status"] == status
    assert reply.headers.get("Replay-Nonce"), "an error response carries a fresh nonce"
    assert '>;rel="index"' in reply.headers.get("Link", "")
    return body


@pytest.fixture(scope="module")
def account(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key([helpers.ZONE, "127.0.0.0/8"])
    assert client.register(kid, mac).status_code == 201
    return client


# -- 1. alg allow-list (§6.2) ---------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["none", "HS256", "ES512", "PS256", "RS384"])
def test_alg_outside_the_allow_list(account, alg):
    url = account.url("newOrder")
    header = {"alg": alg, "kid": account.kid, "nonce": account.nonce(), "url": url}
    raw = {
        "protected": b64u_encode(canonical_json(header)),
        "payload": b64u_encode(b"{}"),
        "signature": b64u_encode(b"\x00" * 64),
    }
    body = problem(account.post(url, raw=raw), 400, "badSignatureAlgorithm")
    assert body["algorithms"] == ALGORITHMS


def test_unsigned_jws_is_a_bad_signature_algorithm(account):
    """An unsecured JWS (RFC 7518 §3.6: alg "none", empty signature) names an algorithm the
    server does not support: badSignatureAlgorithm (§6.2), not malformed."""
    url = account.url("newOrder")
    header = {"alg": "none", "kid": account.kid, "nonce": account.nonce(), "url": url}
    raw = {
        "protected": b64u_encode(canonical_json(header)),
        "payload": b64u_encode(b"{}"),
        "signature": "",
    }
    body = problem(account.post(url, raw=raw), 400, "badSignatureAlgorithm")
    assert body["algorithms"] == ALGORITHMS


def test_alg_that_does_not_fit_the_key(account):
    # ES384 named in the header, the account key is P-256.
    reply = account.post(
        account.url("newOrder"),
        {"identifiers": []},
        alg="ES384",
        key=ec.generate_private_key(ec.SECP384R1()),
    )
    assert problem(reply, 400, "badSignatureAlgorithm")["algorithms"] == ALGORITHMS


def test_jwk_alg_member_must_match(server, helpers):
    client = helpers.Client(server)
    jwk = {**client.jwk, "alg": "ES384"}
    reply = client.post(
        client.url("newAccount"), {"termsOfServiceAgreed": True}, use_jwk=True, header={"jwk": jwk}
    )
    problem(reply, 400, "badSignatureAlgorithm")


def test_rsa_below_2048_is_refused(server, helpers):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    client = helpers.Client(server, key=small, alg="RS256")
    reply = client.post(client.url("newAccount"), {"termsOfServiceAgreed": True}, use_jwk=True)
    assert "2048" in problem(reply, 400, "badPublicKey")["detail"]


@pytest.mark.parametrize("alg", ["EdDSA", "RS256", "ES384"])
def test_eddsa_rsa_and_p384_accounts_work(server, helpers, alg):
    client = helpers.Client(server, alg=alg)
    kid, mac = server.eab_key()
    reply = client.register(kid, mac)
    assert reply.status_code == 201, reply.text
    assert client.get(client.kid).json()["status"] == "valid"


# -- 2. JWS shape (§6.2) --------------------------------------------------------------------------
def test_general_serialization_is_refused(account):
    url = account.url("newOrder")
    flat = account.jws(url, {"identifiers": []})
    general = {
        "payload": flat["payload"],
        "signatures": [{"protected": flat["protected"], "signature": flat["signature"]}],
    }
    problem(account.post(url, raw=general), 400, "malformed")


def test_compact_serialization_is_refused(account):
    url = account.url("newOrder")
    flat = account.jws(url, {"identifiers": []})
    compact = ".".join((flat["protected"], flat["payload"], flat["signature"]))
    problem(account.post(url, raw=compact), 400, "malformed")


def test_unprotected_header_is_refused(account):
    url = account.url("newOrder")
    flat = {**account.jws(url, {"identifiers": []}), "header": {"kid": account.kid}}
    problem(account.post(url, raw=flat), 400, "malformed")


def test_unencoded_payload_is_refused(account):
    url = account.url("newOrder")
    raw = account.jws(url, {"identifiers": []}, header={"b64": False, "crit": ["b64"]})
    problem(account.post(url, raw=raw), 400, "malformed")


def test_bad_signature_is_refused(account):
    url = account.url("newOrder")
    raw = account.jws(url, {"identifiers": []})
    raw["signature"] = b64u_encode(b"\x01" * 64)
    problem(account.post(url, raw=raw), 400, "malformed")


# -- 3. url (§6.4) --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mangle",
    [
        lambda u: u.replace("https://", "http://"),
        lambda u: u.replace("new-order", "new%2Dorder"),  # a re-encoding is not the same URL
        lambda u: u.replace("localhost", "127.0.0.1"),
        lambda u: u + "/",
    ],
    ids=["scheme", "percent-encoded", "host", "trailing-slash"],
)
def test_url_mismatch_is_unauthorized(account, helpers, mangle):
    url = account.url("newOrder")
    raw = account.jws(
        url, {"identifiers": helpers.dns_ids("a.jitsuin.test")}, header={"url": mangle(url)}
    )
    problem(account.post(url, raw=raw), 403, "unauthorized")


def test_missing_url_is_malformed(account, helpers):
    url = account.url("newOrder")
    raw = account.jws(url, {"identifiers": helpers.dns_ids("a.jitsuin.test")}, drop=("url",))
    problem(account.post(url, raw=raw), 400, "malformed")


# -- 4. nonces (§6.5, §7.2) -----------------------------------------------------------------------
def test_new_nonce_head_and_get(account):
    head = account.session.head(account.url("newNonce"))
    get = account.session.get(account.url("newNonce"))
    assert (head.status_code, get.status_code) == (200, 204)
    for reply in (head, get):
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["Replay-Nonce"]
        assert '>;rel="index"' in reply.headers["Link"]
    assert head.headers["Replay-Nonce"] != get.headers["Replay-Nonce"]
    assert head.headers["Content-Length"] == "0"


def test_a_client_keeps_its_connection_across_new_nonce_heads(server, account):
    """RFC 9110 §9.3.2: HEAD gets the header fields of a GET, Content-Length included; without
    it aiohttp's client cannot tell where the answer ends and opens a new TLS connection for
    every nonce it fetches by HEAD."""
    context = ssl.create_default_context(cafile=str(server.ca_pem))

    opened = []
    tracing = aiohttp.TraceConfig()

    async def on_connection(*_: object) -> None:
        opened.append(1)

    tracing.on_connection_create_end.append(on_connection)

    async def heads() -> None:
        connector = aiohttp.TCPConnector(ssl=context)
        async with aiohttp.ClientSession(connector=connector, trace_configs=[tracing]) as session:
            for _ in range(3):
                async with session.head(account.url("newNonce")) as reply:
                    assert reply.status == 200 and reply.headers["Replay-Nonce"]

    asyncio.run(heads())
    assert len(opened) == 1, f"{len(opened)} connections for 3 HEADs"


@pytest.mark.parametrize(
    "nonce", ["AAAAAAAAAAAAAAAAAAAAAA", "not base64url!", ""], ids=["unknown", "syntax", "empty"]
)
def test_bad_nonce(account, helpers, nonce):
    url = account.url("newOrder")
    raw = account.jws(
        url, {"identifiers": helpers.dns_ids("n.jitsuin.test")}, header={"nonce": nonce}
    )
    body = problem(account.post(url, raw=raw), 400, "badNonce")
    assert body["detail"]


def test_missing_nonce(account, helpers):
    url = account.url("newOrder")
    raw = account.jws(url, {"identifiers": helpers.dns_ids("n.jitsuin.test")}, drop=("nonce",))
    problem(account.post(url, raw=raw), 400, "badNonce")


def test_nonce_is_single_use(account, helpers):
    url = account.url("newOrder")
    raw = account.jws(url, {"identifiers": helpers.dns_ids("once.jitsuin.test")})
    first = account.post(url, raw=raw)
    assert first.status_code == 201 and first.headers["Replay-Nonce"]
    problem(account.post(url, raw=raw), 400, "badNonce")


def test_fresh_nonce_from_bad_nonce_works(account, helpers):
    url = account.url("newOrder")
    raw = account.jws(
        url,
        {"identifiers": helpers.dns_ids("n.jitsuin.test")},
        header={"nonce": "AAAAAAAAAAAAAAAAAAAAAA"},
    )
    fresh = account.post(url, raw=raw).headers["Replay-Nonce"]
    retry = account.post(
        url,
        raw=account.jws(
            url, {"identifiers": helpers.dns_ids("n.jitsuin.test")}, header={"nonce": fresh}
        ),
    )
    assert retry.status_code == 201, retry.text


def test_client_sent_replay_nonce_header_is_refused(account, helpers):
    url = account.url("newOrder")
    reply = account.post(
        url,
        {"identifiers": helpers.dns_ids("n.jitsuin.test")},
        headers={"Replay-Nonce": account.nonce()},
    )
    problem(reply, 400, "malformed")


def test_a_second_server_on_the_sqlite_store_is_refused(server, account, helpers, tmp_path):
    """One `jitsuin serve` per SQLite store: its ACME nonces live in that process (several
    processes share a PostgreSQL store instead, tests/server/test_scale_out.py). A second server
    on the same file, with listeners of its own, stops at start with a clear message naming the
    running one, and the first keeps redeeming its nonces."""
    http_port, https_port = helpers.free_port(), helpers.free_port()
    config = (server.home / "jitsuin.toml").read_text()
    original_http = server.http.rsplit(":", 1)[1]
    original_https = server.https.rsplit(":", 1)[1]
    config = config.replace(f"127.0.0.1:{original_http}", f"127.0.0.1:{http_port}")
    config = config.replace(f"127.0.0.1:{original_https}", f"127.0.0.1:{https_port}")
    # The same home (CA key, store); only the listeners differ.
    config = f'home = "{server.home}"\ndatabase_url = "sqlite:///{server.home}/jitsuin.db"\n' + (
        config.replace('database_url = "sqlite:///jitsuin.db"\n', "")
    )
    for secret in ("secrets/ca-passphrase", "secrets/ra.key"):
        config = config.replace(f'"{secret}"', f'"{server.home / secret}"')
    other = tmp_path / "second"
    other.mkdir()
    (other / "jitsuin.toml").write_text(config)
    second = subprocess.run(
        [helpers_cli(), "--home", str(other), "serve"], capture_output=True, text=True, timeout=60
    )
    assert second.returncode != 0
    assert server.process is not None
    assert f"jitsuin serve (pid {server.process.pid}) is already running on" in second.stderr
    assert "one server process per SQLite store" in second.stderr and "PostgreSQL" in second.stderr
    url = account.url("newOrder")
    reply = account.post(url, {"identifiers": helpers.dns_ids("still.jitsuin.test")})
    assert reply.status_code == 201, reply.text


def helpers_cli() -> str:
    import shutil
    import sys
    from pathlib import Path

    path = Path(sys.executable).parent / "jitsuin"
    return str(path) if path.exists() else str(shutil.which("jitsuin"))


# -- 5. kid vs jwk (§6.2, §7.3.6) -----------------------------------------------------------------
def test_both_jwk_and_kid(account, helpers):
    url = account.url("newOrder")
    raw = account.jws(
        url, {"identifiers": helpers.dns_ids("k.jitsuin.test")}, header={"jwk": account.jwk}
    )
    problem(account.post(url, raw=raw), 400, "malformed")


def test_neither_jwk_nor_kid(account, helpers):
    url = account.url("newOrder")
    raw = account.jws(url, {"identifiers": helpers.dns_ids("k.jitsuin.test")}, drop=("kid",))
    problem(account.post(url, raw=raw), 400, "malformed")


def test_jwk_outside_new_account(account, helpers):
    reply = account.post(
        account.url("newOrder"), {"identifiers": helpers.dns_ids("k.jitsuin.test")}, use_jwk=True
    )
    problem(reply, 400, "malformed")


def test_kid_on_new_account(account):
    problem(
        account.post(account.url("newAccount"), {"termsOfServiceAgreed": True}), 400, "malformed"
    )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k.rsplit("/", 1)[0] + "/AAAAAAAAAAAAAAAAAAAAAA",
        lambda k: k + "/",
        lambda k: k.replace("/acct/", "/account/"),
        lambda k: k.rsplit("/", 1)[1],
    ],
    ids=["unknown", "trailing-slash", "other-path", "bare-id"],
)
def test_unknown_or_not_verbatim_kid(account, helpers, mangle):
    reply = account.post(
        account.url("newOrder"),
        {"identifiers": helpers.dns_ids("k.jitsuin.test")},
        header={"kid": mangle(account.kid)},
    )
    problem(reply, 400, "accountDoesNotExist")


def test_deactivated_account_is_unauthorized(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key()
    client.register(kid, mac)
    reply = client.post(client.kid, {"status": "deactivated"})
    assert reply.status_code == 200 and reply.json()["status"] == "deactivated"
    problem(client.new_order(helpers.dns_ids("d.jitsuin.test")), 403, "unauthorized")
    problem(client.get(client.kid), 403, "unauthorized")
    # newAccount with the key of a deactivated account does not bring it back.
    again = client.post(client.url("newAccount"), {"onlyReturnExisting": True}, use_jwk=True)
    problem(again, 403, "unauthorized")


def test_client_may_not_set_another_status(account):
    problem(account.post(account.kid, {"status": "revoked"}), 400, "malformed")


# -- 6. POST-as-GET (§6.3) ------------------------------------------------------------------------
def test_post_as_get_needs_the_empty_payload(account, helpers):
    order = account.new_order(helpers.dns_ids("pag.jitsuin.test")).json()
    order_url = order["finalize"].removesuffix("/finalize")
    # "{}" is a challenge response, not POST-as-GET.
    problem(account.post(order_url, {}), 400, "malformed")
    assert account.get(order_url).status_code == 200


def test_get_is_refused_except_directory_and_new_nonce(account, helpers):
    order = account.new_order(helpers.dns_ids("get.jitsuin.test")).json()
    for url in (
        order["finalize"].removesuffix("/finalize"),
        order["authorizations"][0],
        account.kid,
        account.url("newOrder"),
    ):
        reply = account.session.get(url)
        assert reply.status_code == 405, url
        assert reply.headers["Allow"] == "POST"
        assert reply.json()["type"] == ERR + "malformed"
        assert reply.headers["Replay-Nonce"]
    assert account.session.get(account.url("newNonce")).status_code == 204
    assert account.session.get(account.server.directory_url).status_code == 200


def test_directory_and_new_nonce_accept_post_as_get(account):
    directory = account.get(account.server.directory_url)
    assert directory.status_code == 200 and "newOrder" in directory.json()
    nonce = account.get(account.url("newNonce"))
    assert nonce.status_code == 200 and nonce.headers["Replay-Nonce"]


def test_directory_meta(account, helpers):
    """§7.1.1 meta, with externalAccountRequired (§7.3.4) and the profiles of
    draft-ietf-acme-profiles: what clients read before they create an account."""
    meta = account.session.get(account.server.directory_url).json()["meta"]
    assert meta["externalAccountRequired"] is True
    assert meta["termsOfService"] == helpers.TERMS
    assert meta["website"] == "https://localhost/"
    assert meta["caaIdentities"] == [helpers.ZONE]
    assert {"general", "document-manager", "tls-server"} <= set(meta["profiles"])
    assert all(isinstance(text, str) and text for text in meta["profiles"].values())


# -- 7. content types -----------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/jose"])
def test_wrong_content_type_is_415(account, helpers, content_type):
    reply = account.post(
        account.url("newOrder"),
        {"identifiers": helpers.dns_ids("ct.jitsuin.test")},
        content_type=content_type,
    )
    problem(reply, 415, "malformed")


# -- 8. problem documents -------------------------------------------------------------------------
def test_subproblems_name_each_identifier(account, helpers):
    reply = account.new_order(helpers.dns_ids("ok.jitsuin.test", "www.example.org", "evil.test"))
    body = problem(reply, 400, "rejectedIdentifier")
    assert sorted(s["identifier"]["value"] for s in body["subproblems"]) == [
        "evil.test",
        "www.example.org",
    ]
    assert all(s["type"] == ERR + "rejectedIdentifier" for s in body["subproblems"])


def test_malformed_identifiers_have_subproblems(account):
    reply = account.new_order(
        [{"type": "dns", "value": "UPPER.jitsuin.test"}, {"type": "carrier-pigeon", "value": "x"}]
    )
    body = problem(reply, 400, "malformed")
    types = {s["identifier"]["value"]: s["type"] for s in body["subproblems"]}
    assert types == {"UPPER.jitsuin.test": ERR + "malformed", "x": ERR + "unsupportedIdentifier"}


def test_terms_of_service_need_agreement(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key()
    reply = client.post(
        client.url("newAccount"), {"externalAccountBinding": client.eab(kid, mac)}, use_jwk=True
    )
    problem(reply, 403, "userActionRequired")
    assert f'<{helpers.TERMS}>;rel="terms-of-service"' in reply.headers["Link"]


def test_rate_limited_has_retry_after_and_help(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key()
    client.register(kid, mac)
    for n in range(40):  # [acme] orders_per_hour = 40 in the test configuration
        assert client.new_order(helpers.dns_ids(f"r{n}.jitsuin.test")).status_code == 201
    reply = client.new_order(helpers.dns_ids("one-too-many.jitsuin.test"))
    problem(reply, 429, "rateLimited")
    assert 0 < int(reply.headers["Retry-After"]) <= 3601
    assert 'rel="help"' in reply.headers["Link"]


# -- 9. Location / Link headers -------------------------------------------------------------------
def test_new_account_existing_key_and_only_return_existing(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key()
    missing = client.post(client.url("newAccount"), {"onlyReturnExisting": True}, use_jwk=True)
    problem(missing, 400, "accountDoesNotExist")
    created = client.register(kid, mac, contact=["mailto:ops@jitsuin.test"])
    assert created.status_code == 201 and created.headers["Location"] == client.kid
    body = created.json()
    assert body["status"] == "valid" and body["orders"] == client.kid + "/orders"
    again = client.post(client.url("newAccount"), {"termsOfServiceAgreed": True}, use_jwk=True)
    assert again.status_code == 200 and again.headers["Location"] == client.kid
    existing = client.post(client.url("newAccount"), {"onlyReturnExisting": True}, use_jwk=True)
    assert existing.status_code == 200 and existing.headers["Location"] == client.kid
    assert existing.headers["Replay-Nonce"]


def test_new_order_is_201_with_location(account, helpers):
    reply = account.new_order(helpers.dns_ids("loc.jitsuin.test"))
    assert reply.status_code == 201
    assert reply.headers["Location"].startswith(account.server.acme + "/order/")
    assert reply.json()["status"] == "pending"


def test_every_response_but_the_directory_links_the_index(account, helpers):
    assert "Link" not in account.session.get(account.server.directory_url).headers
    order = account.new_order(helpers.dns_ids("idx.jitsuin.test"))
    authz = account.get(order.json()["authorizations"][0])
    for reply in (order, authz, account.get(account.kid)):
        assert (account.server.directory_url, "index") in helpers.links(reply)


def test_orders_list_pages_with_link_next(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key()
    client.register(kid, mac)
    made = [
        client.new_order(helpers.dns_ids(f"p{n}.jitsuin.test")).headers["Location"]
        for n in range(7)
    ]
    seen, url, pages = [], client.kid + "/orders", 0
    while url:
        reply = client.get(url)
        assert reply.status_code == 200
        seen += reply.json()["orders"]
        pages += 1
        url = dict((rel, u) for u, rel in helpers.links(reply)).get("next")
    assert seen == made and pages == 3  # [acme] orders_page_size = 3
    problem(client.get(client.kid + "/orders?cursor=x"), 400, "malformed")
    other = helpers.Client(server)
    other_kid, other_mac = server.eab_key()
    other.register(other_kid, other_mac)
    problem(other.get(client.kid + "/orders"), 403, "unauthorized")


# -- 10. status machine (§7.1.6, §7.4) ------------------------------------------------------------
def test_finalize_before_ready_is_order_not_ready(account, helpers):
    order = account.new_order(helpers.dns_ids("nr.jitsuin.test")).json()
    csr = helpers.make_csr(helpers.new_key(), dns=["nr.jitsuin.test"])
    problem(account.finalize(order, csr), 403, "orderNotReady")


def test_unknown_resources_are_404(account):
    base = account.server.acme
    for path in (
        "/order/AAAAAAAAAAAAAAAAAAAAAA",
        "/authz/AAAAAAAAAAAAAAAAAAAAAA",
        "/chall/AAAAAAAAAAAAAAAAAAAAAA",
        "/cert/AAAAAAAAAAAAAAAAAAAAAA",
    ):
        problem(account.get(base + path), 404, "malformed")


# -- 12. EAB (§7.3.4) -----------------------------------------------------------------------------
def test_eab_is_required(server, helpers):
    client = helpers.Client(server)
    reply = client.post(client.url("newAccount"), {"termsOfServiceAgreed": True}, use_jwk=True)
    problem(reply, 400, "externalAccountRequired")


def _eab_payload(client, eab):
    return {"termsOfServiceAgreed": True, "externalAccountBinding": eab}


def test_eab_inner_jws_rules(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key()
    from jitsuin.protocol.jose import b64u_decode

    key = b64u_decode(mac)
    url = client.url("newAccount")
    jwk = json.dumps(client.jwk).encode()
    cases = {
        "nonce": sign_flattened(
            {"kid": kid, "url": url, "nonce": client.nonce()}, jwk, key, "HS256"
        ),
        "url": sign_flattened({"kid": kid, "url": url + "x"}, jwk, key, "HS256"),
        "payload": sign_flattened(
            {"kid": kid, "url": url},
            json.dumps(jwk_of(helpers.new_key().public_key()).to_json()).encode(),
            key,
            "HS256",
        ),
        "no-kid": sign_flattened({"url": url}, jwk, key, "HS256"),
    }
    for name, eab in cases.items():
        reply = client.post(url, _eab_payload(client, eab), use_jwk=True)
        assert problem(reply, 400, "malformed")["detail"], name
    not_mac = sign_flattened({"kid": kid, "url": url}, jwk, client.key, "ES256")
    body = problem(
        client.post(url, _eab_payload(client, not_mac), use_jwk=True), 400, "badSignatureAlgorithm"
    )
    assert body["algorithms"] == ["HS256", "HS384", "HS512"]
    wrong_mac = sign_flattened({"kid": kid, "url": url}, jwk, b"\x00" * 32, "HS256")
    problem(client.post(url, _eab_payload(client, wrong_mac), use_jwk=True), 403, "unauthorized")
    unknown = client.eab("kid-unknown", mac)
    problem(client.post(url, _eab_payload(client, unknown), use_jwk=True), 403, "unauthorized")
    # After all that, the key still binds once.
    assert client.register(kid, mac).status_code == 201


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_eab_mac_algorithms(server, helpers, alg):
    client = helpers.Client(server)
    kid, mac = server.eab_key()
    assert client.register(kid, mac, alg=alg).status_code == 201


def test_eab_is_single_use(server, helpers):
    kid, mac = server.eab_key()
    first = helpers.Client(server)
    assert first.register(kid, mac).status_code == 201
    second = helpers.Client(server)
    problem(second.register(kid, mac), 403, "unauthorized")


# -- 13. keyChange (§7.3.5) -----------------------------------------------------------------------
def _key_change(client, new_key, *, old=None, account=None, url=None, signer=None):
    url_kc = client.url("keyChange")
    inner = sign_flattened(
        {"jwk": jwk_of(new_key.public_key()).to_json(), "url": url or url_kc},
        json.dumps({"account": account or client.kid, "oldKey": old or client.jwk}).encode(),
        signer or new_key,
        "ES256",
    )
    return client.post(url_kc, inner)


def test_key_change(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key()
    client.register(kid, mac)
    new = helpers.new_key()
    problem(_key_change(client, new, signer=helpers.new_key()), 400, "malformed")
    problem(_key_change(client, new, url=client.url("newOrder")), 400, "malformed")
    problem(_key_change(client, new, old=jwk_of(new.public_key()).to_json()), 403, "unauthorized")
    taken = helpers.Client(server)
    taken_kid, taken_mac = server.eab_key()
    taken.register(taken_kid, taken_mac)
    conflict = _key_change(client, taken.key)
    assert conflict.status_code == 409 and conflict.headers["Location"] == taken.kid
    assert conflict.json()["type"] == ERR + "malformed"
    changed = _key_change(client, new)
    assert changed.status_code == 200, changed.text
    old_key = client.key
    client.key = new
    assert client.get(client.kid).status_code == 200
    client.key = old_key  # the old key no longer signs for the account
    problem(client.get(client.kid), 400, "malformed")


# -- 15. identifiers (§7.1.4, RFC 8738) -----------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "WWW.jitsuin.test",
        "bücher.jitsuin.test",
        "xn--a.jitsuin.test",
        "a..jitsuin.test",
        "jitsuin.test.",
        "*.*.jitsuin.test",
        "ab--c.jitsuin.test",
        "-a.jitsuin.test",
    ],
)
def test_dns_identifiers_are_lower_case_a_labels(account, value):
    body = problem(account.new_order([{"type": "dns", "value": value}]), 400, "malformed")
    assert body["subproblems"][0]["identifier"] == {"type": "dns", "value": value}


def test_idna_a_label_is_accepted(account):
    reply = account.new_order([{"type": "dns", "value": "xn--bcher-kva.jitsuin.test"}])
    assert reply.status_code == 201, reply.text


def test_wildcard_authz_offers_dns01_only(account, helpers):
    order = account.new_order(helpers.dns_ids("*.wild.jitsuin.test")).json()
    authz = account.get(order["authorizations"][0]).json()
    assert authz["wildcard"] is True
    assert authz["identifier"] == {"type": "dns", "value": "wild.jitsuin.test"}
    assert [c["type"] for c in authz["challenges"]] == ["dns-01"]


def test_ip_identifier_gets_no_dns01(account):
    order = account.new_order([{"type": "ip", "value": "127.0.0.2"}]).json()
    authz = account.get(order["authorizations"][0]).json()
    assert sorted(c["type"] for c in authz["challenges"]) == ["http-01", "tls-alpn-01"]
    problem(account.new_order([{"type": "ip", "value": "2001:db8::1"}]), 400, "rejectedIdentifier")
    problem(account.new_order([{"type": "ip", "value": "127.000.0.1"}]), 400, "malformed")

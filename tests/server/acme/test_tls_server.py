"""tls-server accounts (operator-made EAB keys with a policy): the three challenge types against
real responders on loopback, CAA (RFC 8659), pre-authorization, revocation by each of the three
authorizations of §7.6, ARI (RFC 9773) with ``replaces``, profiles and certificate formats."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import sqlite3
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jitsuin.protocol.acme.messages import ari_cert_id
from jitsuin.protocol.jose import b64u_encode

ERR = "urn:ietf:params:acme:error:"


def problem(reply, status: int, error: str) -> dict:
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["Content-Type"] == "application/problem+json"
    body = reply.json()
    assert body["type"] == ERR + error, body
    return body


@pytest.fixture(scope="module")
def acct(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key([helpers.ZONE, "127.0.0.0/8"])
    assert client.register(kid, mac).status_code == 201
    return client


def challenge(client, order, kind: str, index: int = 0) -> tuple[dict, dict]:
    authz = client.get(order["authorizations"][index]).json()
    return authz, next(c for c in authz["challenges"] if c["type"] == kind)


def http01_certificate(
    client, helpers, names: list[str], **order_extra
) -> tuple[dict, x509.Certificate, object]:
    """Order, validate by http-01, finalize, download: (order, leaf, key)."""
    order = client.new_order(helpers.dns_ids(*names), **order_extra)
    assert order.status_code == 201, order.text
    order = order.json()
    with helpers.Http01(client.server.http01_port) as responder:
        for index in range(len(order["authorizations"])):
            authz, chall = challenge(client, order, "http-01", index)
            if authz["status"] == "valid":
                continue
            responder.tokens[chall["token"]] = client.key_authorization(chall["token"])
            client.post(chall["url"], {})
            assert client.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"
    order_url = order["finalize"].removesuffix("/finalize")
    assert client.wait(order_url, ("ready", "invalid"))["status"] == "ready"
    key = helpers.new_key()
    done = client.finalize(order, helpers.make_csr(key, dns=names, cn=names[0]))
    assert done.status_code == 200 and done.json()["status"] == "valid", done.text
    pem = client.get(done.json()["certificate"]).content
    return done.json(), x509.load_pem_x509_certificates(pem)[0], key


# -- challenges -----------------------------------------------------------------------------------
def test_http01_sends_host_and_path(acct, helpers):
    name = "host.jitsuin.test"
    order = acct.new_order(helpers.dns_ids(name)).json()
    authz, chall = challenge(acct, order, "http-01")
    with helpers.Http01(acct.server.http01_port) as responder:
        responder.tokens[chall["token"]] = acct.key_authorization(chall["token"]) + "\r\n"
        reply = acct.post(chall["url"], {})
        assert reply.status_code == 200
        assert (order["authorizations"][0], "up") in helpers.links(reply)  # §7.5.1
        # The validation ended within [acme] challenge_wait_seconds: the answer is its outcome,
        # with nothing to poll for (the slow case, "processing" + Retry-After, is in
        # test_test_mode.py).
        assert reply.json()["status"] == "valid" and "Retry-After" not in reply.headers
        assert acct.get(order["authorizations"][0]).json()["status"] == "valid"
        done = acct.wait(chall["url"], ("valid", "invalid"))
    assert done["status"] == "valid" and done["validated"]
    assert responder.requests == [(f"/.well-known/acme-challenge/{chall['token']}", name)]
    authz = acct.get(order["authorizations"][0]).json()
    assert authz["status"] == "valid" and [c["type"] for c in authz["challenges"]] == ["http-01"]
    # Responding again to a settled challenge changes nothing.
    assert acct.post(chall["url"], {}).json()["status"] == "valid"


def test_http01_wrong_answer_invalidates_authz_and_order(acct, helpers):
    order = acct.new_order(helpers.dns_ids("wrong.jitsuin.test")).json()
    _, chall = challenge(acct, order, "http-01")
    with helpers.Http01(acct.server.http01_port) as responder:
        responder.tokens[chall["token"]] = "not-the-key-authorization"
        acct.post(chall["url"], {})
        done = acct.wait(chall["url"], ("valid", "invalid"))
    assert done["status"] == "invalid"
    assert done["error"]["type"] == ERR + "incorrectResponse"
    assert acct.get(order["authorizations"][0]).json()["status"] == "invalid"
    failed = acct.get(order["finalize"].removesuffix("/finalize")).json()
    assert failed["status"] == "invalid"
    assert failed["error"]["subproblems"][0]["identifier"]["value"] == "wrong.jitsuin.test"


def test_http01_nobody_listening_is_connection(acct, helpers):
    order = acct.new_order(helpers.dns_ids("down.jitsuin.test")).json()
    _, chall = challenge(acct, order, "http-01")
    acct.post(chall["url"], {})
    done = acct.wait(chall["url"], ("valid", "invalid"))
    assert done["status"] == "invalid" and done["error"]["type"] == ERR + "connection"


def test_dns01_for_a_wildcard(acct, server, helpers):
    order = acct.new_order(helpers.dns_ids("*.dns01.jitsuin.test")).json()
    _, chall = challenge(acct, order, "dns-01")
    digest = hashlib.sha256(acct.key_authorization(chall["token"]).encode()).digest()
    server.dns.records[("_acme-challenge.dns01.jitsuin.test", "TXT")] = [
        '"unrelated"',
        f'"{b64u_encode(digest)}"',
    ]
    acct.post(chall["url"], {})
    assert acct.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"
    order_url = order["finalize"].removesuffix("/finalize")
    assert acct.wait(order_url, ("ready",))["status"] == "ready"
    done = acct.finalize(order, helpers.make_csr(helpers.new_key(), dns=["*.dns01.jitsuin.test"]))
    leaf = x509.load_pem_x509_certificates(acct.get(done.json()["certificate"]).content)[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["*.dns01.jitsuin.test"]


def test_dns01_missing_record(acct, helpers):
    order = acct.new_order(helpers.dns_ids("notxt.jitsuin.test")).json()
    _, chall = challenge(acct, order, "dns-01")
    acct.post(chall["url"], {})
    done = acct.wait(chall["url"], ("valid", "invalid"))
    assert done["status"] == "invalid" and done["error"]["type"] == ERR + "unauthorized"


class AlpnResponder:
    """RFC 8737 §3: answers TLS with ALPN acme-tls/1 and a self-signed certificate holding the
    identifier and a critical acmeIdentifier extension."""

    def __init__(self, port: int, name: str, key_authorization: str, tmp: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        digest = hashlib.sha256(key_authorization.encode()).digest()
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acme-tls-alpn")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31"), b"\x04\x20" + digest
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        (tmp / "alpn.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp / "alpn.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(tmp / "alpn.pem", tmp / "alpn.key")
        self.context.set_alpn_protocols(["acme-tls/1"])
        self.sock = socket.create_server(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.sni: list[str | None] = []
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        def remember(sock, server_name, context):  # type: ignore[no-untyped-def]
            self.sni.append(server_name)

        self.context.sni_callback = remember
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


def test_tls_alpn01(acct, server, helpers, tmp_path):
    name = "alpn.jitsuin.test"
    order = acct.new_order(helpers.dns_ids(name)).json()
    _, chall = challenge(acct, order, "tls-alpn-01")
    responder = AlpnResponder(
        server.alpn_port, name, acct.key_authorization(chall["token"]), tmp_path
    )
    try:
        acct.post(chall["url"], {})
        done = acct.wait(chall["url"], ("valid", "invalid"))
    finally:
        responder.close()
    assert done["status"] == "valid", done
    assert name in responder.sni


def test_tls_alpn01_wrong_digest(acct, server, helpers, tmp_path):
    name = "alpn-bad.jitsuin.test"
    order = acct.new_order(helpers.dns_ids(name)).json()
    _, chall = challenge(acct, order, "tls-alpn-01")
    responder = AlpnResponder(server.alpn_port, name, "something else", tmp_path)
    try:
        acct.post(chall["url"], {})
        done = acct.wait(chall["url"], ("valid", "invalid"))
    finally:
        responder.close()
    assert done["status"] == "invalid" and done["error"]["type"] == ERR + "incorrectResponse"


# -- CAA (RFC 8659) -------------------------------------------------------------------------------
def test_caa_forbids_another_ca(acct, server, helpers):
    server.dns.records[("caa.jitsuin.test", "CAA")] = ['0 issue "other-ca.example"']
    order = acct.new_order(helpers.dns_ids("www.caa.jitsuin.test")).json()
    _, chall = challenge(acct, order, "http-01")
    with helpers.Http01(server.http01_port) as responder:
        responder.tokens[chall["token"]] = acct.key_authorization(chall["token"])
        acct.post(chall["url"], {})
        done = acct.wait(chall["url"], ("valid", "invalid"))
    assert done["status"] == "invalid" and done["error"]["type"] == ERR + "caa"


def test_caa_naming_this_ca_permits(acct, server, helpers):
    server.dns.records[("caa-ok.jitsuin.test", "CAA")] = [
        '0 issue "other-ca.example"',
        f'0 issue "{helpers.ZONE}; account=x"',
        '0 iodef "mailto:security@jitsuin.test"',
    ]
    http01_certificate(acct, helpers, ["caa-ok.jitsuin.test"])


def test_caa_critical_unknown_tag_forbids(acct, server, helpers):
    server.dns.records[("caa-crit.jitsuin.test", "CAA")] = ['128 tbs "whatever"']
    order = acct.new_order(helpers.dns_ids("caa-crit.jitsuin.test")).json()
    _, chall = challenge(acct, order, "http-01")
    with helpers.Http01(server.http01_port) as responder:
        responder.tokens[chall["token"]] = acct.key_authorization(chall["token"])
        acct.post(chall["url"], {})
        done = acct.wait(chall["url"], ("valid", "invalid"))
    assert done["error"]["type"] == ERR + "caa"


# -- CAA parameters (RFC 8657) -------------------------------------------------------------------
@pytest.fixture(scope="module")
def other(server, helpers):
    """A second tls-server account, whose URL a CAA accounturi can name instead of acct's."""
    client = helpers.Client(server)
    kid, mac = server.eab_key([helpers.ZONE])
    assert client.register(kid, mac).status_code == 201
    return client


def caa_refused(client, helpers, name: str) -> str:
    """Validate ``name`` by http-01 (the response itself right): the caa problem's detail."""
    order = client.new_order(helpers.dns_ids(name)).json()
    _, chall = challenge(client, order, "http-01")
    with helpers.Http01(client.server.http01_port) as responder:
        responder.tokens[chall["token"]] = client.key_authorization(chall["token"])
        client.post(chall["url"], {})
        done = client.wait(chall["url"], ("valid", "invalid"))
    assert done["status"] == "invalid", done
    assert done["error"]["type"] == ERR + "caa", done["error"]
    order_url = order["finalize"].removesuffix("/finalize")
    assert client.get(order_url).json()["status"] == "invalid"
    return done["error"]["detail"]


def test_caa_accounturi_of_this_account_permits(acct, other, server, helpers):
    name = "caa-acct.jitsuin.test"
    server.dns.records[(name, "CAA")] = [f'0 issue "{helpers.ZONE}; accounturi={acct.kid}"']
    http01_certificate(acct, helpers, [name])
    # ...and only this account (RFC 8657 §3): the record is a restriction, not a formality.
    assert f"accounturi={acct.kid} is not the requesting account" in caa_refused(
        other, helpers, name
    )


def test_caa_accounturi_of_another_account_forbids(acct, other, server, helpers):
    name = "caa-other.jitsuin.test"
    server.dns.records[(name, "CAA")] = [f'0 issue "{helpers.ZONE}; accounturi={other.kid}"']
    detail = caa_refused(acct, helpers, name)
    # The detail names the record and the parameter that failed (RFC 8657 §3).
    assert detail.startswith(f"CAA at {name}: ")
    assert f'issue "{helpers.ZONE}; accounturi={other.kid}"' in detail
    assert f"accounturi={other.kid} is not the requesting account ({acct.kid})" in detail
    # The same record authorizes the account it names.
    http01_certificate(other, helpers, [name])


def test_caa_validationmethods_without_the_method_used_forbids(acct, server, helpers):
    name = "caa-dns01-only.jitsuin.test"
    server.dns.records[(name, "CAA")] = [f'0 issue "{helpers.ZONE}; validationmethods=dns-01"']
    detail = caa_refused(acct, helpers, name)
    assert "validationmethods=dns-01 does not include http-01" in detail
    # RFC 8657 §4: the listed method still validates.
    order = acct.new_order(helpers.dns_ids(name)).json()
    _, chall = challenge(acct, order, "dns-01")
    digest = hashlib.sha256(acct.key_authorization(chall["token"]).encode()).digest()
    server.dns.records[(f"_acme-challenge.{name}", "TXT")] = [f'"{b64u_encode(digest)}"']
    acct.post(chall["url"], {})
    assert acct.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"


def test_caa_validationmethods_with_the_method_used_permits(acct, other, server, helpers):
    name = "caa-http01.jitsuin.test"
    server.dns.records[(name, "CAA")] = [
        f'0 issue "{helpers.ZONE}; validationmethods=tls-alpn-01,http-01"'
    ]
    http01_certificate(acct, helpers, [name])
    # ...and a method it does not list does not (RFC 8657 §4), though dns-01 itself succeeds.
    order = other.new_order(helpers.dns_ids(name)).json()
    _, chall = challenge(other, order, "dns-01")
    digest = hashlib.sha256(other.key_authorization(chall["token"]).encode()).digest()
    server.dns.records[(f"_acme-challenge.{name}", "TXT")] = [f'"{b64u_encode(digest)}"']
    other.post(chall["url"], {})
    done = other.wait(chall["url"], ("valid", "invalid"))
    assert done["status"] == "invalid" and done["error"]["type"] == ERR + "caa"
    assert (
        "validationmethods=tls-alpn-01,http-01 does not include dns-01" in done["error"]["detail"]
    )


def test_caa_unknown_parameter_is_ignored(acct, other, server, helpers):
    # RFC 8659 §4.2: a parameter this CA does not define neither authorizes nor forbids; the
    # ones it does define in the same record still count.
    allowed, refused = "caa-unknown.jitsuin.test", "caa-unknown-other.jitsuin.test"
    server.dns.records[(allowed, "CAA")] = [
        f'0 issue "{helpers.ZONE} ; x-policy = strict ;accounturi={acct.kid}"'
    ]
    server.dns.records[(refused, "CAA")] = [
        f'0 issue "{helpers.ZONE}; x-policy=strict; accounturi={other.kid}"'
    ]
    http01_certificate(acct, helpers, [allowed])
    detail = caa_refused(acct, helpers, refused)
    assert f"accounturi={other.kid} is not the requesting account" in detail


# -- policy, profiles, pre-authorization ----------------------------------------------------------
def test_policy_lifetime_count_and_disable(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key(["policy.jitsuin.test"], certificateLifetimeDays=7, maxCertificates=1)
    client.register(kid, mac)
    problem(client.new_order(helpers.dns_ids("www.jitsuin.test")), 400, "rejectedIdentifier")
    problem(
        client.new_order(helpers.dns_ids("a.policy.jitsuin.test"), profile="general"),
        400,
        "invalidProfile",
    )
    problem(
        client.new_order(helpers.dns_ids("a.policy.jitsuin.test"), profile="nope"),
        400,
        "invalidProfile",
    )
    problem(
        client.new_order([{"type": "email", "value": "ops@policy.jitsuin.test"}]),
        400,
        "rejectedIdentifier",
    )
    problem(
        client.new_order(helpers.dns_ids("a.policy.jitsuin.test"), notAfter="2030-01-01T00:00:00Z"),
        400,
        "malformed",
    )
    _, leaf, _ = http01_certificate(
        client, helpers, ["a.policy.jitsuin.test"], profile="tls-server"
    )
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=7, seconds=-1)
    problem(client.new_order(helpers.dns_ids("b.policy.jitsuin.test")), 403, "unauthorized")
    server.ok("POST", f"/ra/acme/eab-keys/{kid}/disable", "bob")
    status, _ = server.api("POST", "/ra/acme/eab-keys", "alice", {"allowed": ["x.test"]})
    assert status == 403  # a reviewer may not make EAB keys
    status, body = server.api("POST", "/ra/acme/eab-keys", "bob", {"allowed": ["Not A Name"]})
    assert status == 422, body


def test_new_authz_pre_authorization(acct, helpers):
    reply = acct.post(
        acct.url("newAuthz"), {"identifier": {"type": "dns", "value": "pre.jitsuin.test"}}
    )
    assert reply.status_code == 201 and reply.headers["Location"].startswith(acct.server.acme)
    authz = reply.json()
    problem(
        acct.post(
            acct.url("newAuthz"), {"identifier": {"type": "dns", "value": "*.pre.jitsuin.test"}}
        ),
        400,
        "malformed",
    )
    chall = next(c for c in authz["challenges"] if c["type"] == "http-01")
    with helpers.Http01(acct.server.http01_port) as responder:
        responder.tokens[chall["token"]] = acct.key_authorization(chall["token"])
        acct.post(chall["url"], {})
        assert acct.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"
    order = acct.new_order(helpers.dns_ids("pre.jitsuin.test")).json()
    assert order["status"] == "ready"
    assert order["authorizations"] == [reply.headers["Location"]]


def test_authz_deactivation(acct, helpers):
    order = acct.new_order(helpers.dns_ids("deact.jitsuin.test")).json()
    url = order["authorizations"][0]
    problem(acct.post(url, {"status": "valid"}), 400, "malformed")
    reply = acct.post(url, {"status": "deactivated"})
    assert reply.status_code == 200 and reply.json()["status"] == "deactivated"
    assert acct.get(order["finalize"].removesuffix("/finalize")).json()["status"] == "invalid"
    problem(acct.post(url, {"status": "deactivated"}), 400, "malformed")


# -- certificates, revocation, ARI ----------------------------------------------------------------
def test_certificate_formats(acct, helpers):
    order, leaf, _ = http01_certificate(acct, helpers, ["fmt.jitsuin.test"])
    default = acct.get(order["certificate"])
    assert default.headers["Content-Type"] == "application/pem-certificate-chain"
    assert len(x509.load_pem_x509_certificates(default.content)) == 2
    der = acct.post(order["certificate"], None, headers={"Accept": "application/pkix-cert"})
    assert der.headers["Content-Type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(der.content) == leaf
    problem(
        acct.post(order["certificate"], None, headers={"Accept": "text/html"}), 406, "malformed"
    )
    problem(acct.post(order["certificate"], {}), 400, "malformed")  # POST-as-GET only


def test_revocation_by_each_authorization(server, acct, helpers):
    # 1. by the issuing account, with a reason code
    _, leaf, _ = http01_certificate(acct, helpers, ["rev1.jitsuin.test"])
    der = b64u_encode(leaf.public_bytes(serialization.Encoding.DER))
    problem(
        acct.post(acct.url("revokeCert"), {"certificate": der, "reason": 7}),
        400,
        "badRevocationReason",
    )
    problem(
        acct.post(acct.url("revokeCert"), {"certificate": der, "reason": 6}),
        400,
        "badRevocationReason",
    )
    stranger = helpers.Client(server)
    stranger_kid, stranger_mac = server.eab_key(["elsewhere.jitsuin.test"])
    stranger.register(stranger_kid, stranger_mac)
    problem(stranger.post(stranger.url("revokeCert"), {"certificate": der}), 403, "unauthorized")
    ok = acct.post(acct.url("revokeCert"), {"certificate": der, "reason": 1})
    assert ok.status_code == 200 and ok.headers["Replay-Nonce"], ok.text
    problem(acct.post(acct.url("revokeCert"), {"certificate": der}), 400, "alreadyRevoked")

    # 2. by the certificate's own key (jwk), e.g. after a key compromise
    _, leaf2, key2 = http01_certificate(acct, helpers, ["rev2.jitsuin.test"])
    der2 = b64u_encode(leaf2.public_bytes(serialization.Encoding.DER))
    wrong = acct.post(
        acct.url("revokeCert"), {"certificate": der2}, use_jwk=True, key=helpers.new_key()
    )
    problem(wrong, 403, "unauthorized")
    by_key = acct.post(
        acct.url("revokeCert"), {"certificate": der2, "reason": 1}, use_jwk=True, key=key2
    )
    assert by_key.status_code == 200, by_key.text

    # 3. by another account that holds valid authorizations for every identifier
    _, leaf3, _ = http01_certificate(acct, helpers, ["rev3.jitsuin.test"])
    der3 = b64u_encode(leaf3.public_bytes(serialization.Encoding.DER))
    other = helpers.Client(server)
    other_kid, other_mac = server.eab_key(["rev3.jitsuin.test"])
    other.register(other_kid, other_mac)
    problem(other.post(other.url("revokeCert"), {"certificate": der3}), 403, "unauthorized")
    authz = other.post(
        other.url("newAuthz"), {"identifier": {"type": "dns", "value": "rev3.jitsuin.test"}}
    )
    chall = next(c for c in authz.json()["challenges"] if c["type"] == "http-01")
    with helpers.Http01(server.http01_port) as responder:
        responder.tokens[chall["token"]] = other.key_authorization(chall["token"])
        other.post(chall["url"], {})
        assert other.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"
    by_authz = other.post(other.url("revokeCert"), {"certificate": der3, "reason": 4})
    assert by_authz.status_code == 200, by_authz.text

    # OCSP and the CRL say so at once (Authority.revoke publishes).
    import urllib.request

    with urllib.request.urlopen(f"{server.http}/crl/1.crl", timeout=10) as reply:
        crl = x509.load_der_x509_crl(reply.read())
    reasons = {
        cert.serial_number: crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        for cert in (leaf, leaf2, leaf3)
    }
    assert all(reasons.values())
    got = reasons[leaf3.serial_number].extensions.get_extension_for_class(x509.CRLReason)
    assert got.value.reason == x509.ReasonFlags.superseded


def test_renewal_info_and_replaces(server, acct, helpers):
    _, leaf, _ = http01_certificate(acct, helpers, ["ari.jitsuin.test"])
    cert_id = ari_cert_id(leaf)
    info = acct.session.get(f"{acct.url('renewalInfo')}/{cert_id}")
    assert info.status_code == 200, info.text
    assert int(info.headers["Retry-After"]) > 0
    window = info.json()["suggestedWindow"]
    start = dt.datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(window["end"].replace("Z", "+00:00"))
    assert leaf.not_valid_before_utc < start < end < leaf.not_valid_after_utc
    problem(acct.session.get(f"{acct.url('renewalInfo')}/not-a-cert-id"), 400, "malformed")
    unknown = cert_id.split(".")[0] + "." + b64u_encode(b"\x01\x02\x03")
    problem(acct.session.get(f"{acct.url('renewalInfo')}/{unknown}"), 404, "malformed")

    replacing = acct.new_order(helpers.dns_ids("ari.jitsuin.test"), replaces=cert_id)
    assert replacing.status_code == 201 and replacing.json()["replaces"] == cert_id
    problem(
        acct.new_order(helpers.dns_ids("ari.jitsuin.test"), replaces=cert_id),
        409,
        "alreadyReplaced",
    )
    other = helpers.Client(server)
    other_kid, other_mac = server.eab_key()
    other.register(other_kid, other_mac)
    problem(
        other.new_order(helpers.dns_ids("ari.jitsuin.test"), replaces=cert_id), 403, "unauthorized"
    )

    # A revoked certificate is due for renewal now: the window is wholly in the past, so a
    # client's randomly chosen time in it is in the past and it renews at once (RFC 9773 §4.2),
    # as docs/divergences.md says.
    acct.post(
        acct.url("revokeCert"),
        {"certificate": b64u_encode(leaf.public_bytes(serialization.Encoding.DER))},
    )
    window = acct.session.get(f"{acct.url('renewalInfo')}/{cert_id}").json()["suggestedWindow"]
    start = dt.datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(window["end"].replace("Z", "+00:00"))
    assert end - start == dt.timedelta(hours=1)
    assert end < dt.datetime.now(dt.UTC)


def test_ari_cert_id_matches_rfc_9773_example():
    """RFC 9773 §4.1: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4 and serial
    00:87:65:43:21 give aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE."""
    from jitsuin.protocol.acme.messages import parse_ari_cert_id, serial_octets

    key_id = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert f"{b64u_encode(key_id)}.{b64u_encode(serial_octets(0x87654321))}" == (
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    )
    assert parse_ari_cert_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE") == (key_id, 0x87654321)


def test_weak_csr_key_leaves_the_order_ready(acct, helpers):
    from cryptography.hazmat.primitives.asymmetric import rsa

    name = "weak.jitsuin.test"
    order = acct.new_order(helpers.dns_ids(name)).json()
    _, chall = challenge(acct, order, "http-01")
    with helpers.Http01(acct.server.http01_port) as responder:
        responder.tokens[chall["token"]] = acct.key_authorization(chall["token"])
        acct.post(chall["url"], {})
        assert acct.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    problem(acct.finalize(order, helpers.make_csr(weak, dns=[name])), 400, "badCSR")
    problem(
        acct.finalize(order, helpers.make_csr(helpers.new_key(), dns=[name, "x.jitsuin.test"])),
        400,
        "badCSR",
    )
    problem(
        acct.finalize(order, helpers.make_csr(helpers.new_key(), dns=[name], cn="y.test")),
        400,
        "badCSR",
    )
    assert acct.get(order["finalize"].removesuffix("/finalize")).json()["status"] == "ready"
    done = acct.finalize(order, helpers.make_csr(helpers.new_key(), dns=[name], cn=name))
    assert done.json()["status"] == "valid"


def test_a_finalized_order_settles_the_signing_intent_recorded_before_the_signature(acct, helpers):
    """The intent to sign (serial, profile, TBS hash, account and order) was in the store before
    the CA key signed, and the order's commit settled it as issued."""
    name = "intent.jitsuin.test"
    done, cert, _ = http01_certificate(acct, helpers, [name])
    db = sqlite3.connect(f"file:{acct.server.home / 'jitsuin.db'}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT profile, tbs_sha256, requester, target, state FROM signing_intents"
            " WHERE serial = ?",
            (format(cert.serial_number, "x"),),
        ).fetchone()
    finally:
        db.close()
    order_id = done["finalize"].removesuffix("/finalize").rsplit("/", 1)[-1]
    assert row == (
        "tls-server",
        hashlib.sha256(cert.tbs_certificate_bytes).hexdigest(),
        row[2],
        f"acme-order/{order_id}",
        "issued",
    )
    assert row[2].startswith("acme:")


def test_must_staple_csr_is_refused_with_bad_csr(acct, helpers):
    """a CSR asking for OCSP must-staple (the RFC 7633 TLS Feature extension)
    was issued without it and without a word; it is now refused with badCSR naming the reason,
    and the order stays ready for a CSR without it."""
    name = "staple.jitsuin.test"
    order = acct.new_order(helpers.dns_ids(name)).json()
    _, chall = challenge(acct, order, "http-01")
    with helpers.Http01(acct.server.http01_port) as responder:
        responder.tokens[chall["token"]] = acct.key_authorization(chall["token"])
        acct.post(chall["url"], {})
        assert acct.wait(chall["url"], ("valid", "invalid"))["status"] == "valid"
    key = helpers.new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False)
        .sign(key, hashes.SHA256())
    )
    body = problem(
        acct.finalize(order, csr.public_bytes(serialization.Encoding.DER)), 400, "badCSR"
    )
    assert "must-staple" in body["detail"] and "RFC 7633" in body["detail"]
    assert acct.get(order["finalize"].removesuffix("/finalize")).json()["status"] == "ready"
    done = acct.finalize(order, helpers.make_csr(key, dns=[name]))
    assert done.json()["status"] == "valid", done.text

"""http-01 follows redirects (RFC 8555 §8.3: "The server SHOULD follow redirects when
dereferencing the URL"), as Let's Encrypt does: only to http and https URLs on the validation
ports, at most 10 of them, never around a loop. Refusals are ``connection`` problems that name
the reason."""

from __future__ import annotations

import datetime as dt
import http.server
import itertools
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ERR = "urn:ietf:params:acme:error:"
PREFIX = "/.well-known/acme-challenge/"


@pytest.fixture(scope="module")
def acct(server, helpers):
    client = helpers.Client(server)
    kid, mac = server.eab_key([helpers.ZONE])
    assert client.register(kid, mac).status_code == 201
    return client


def respond(acct, helpers, name: str, setup) -> tuple[dict, list[tuple[str, str]]]:
    """Order ``name``, let ``setup(responder, token, key_authorization)`` arrange the
    responder, answer the http-01 challenge: (the settled challenge, the requests seen)."""
    order = acct.new_order(helpers.dns_ids(name)).json()
    authz = acct.get(order["authorizations"][0]).json()
    chall = next(c for c in authz["challenges"] if c["type"] == "http-01")
    with helpers.Http01(acct.server.http01_port) as responder:
        setup(responder, chall["token"], acct.key_authorization(chall["token"]))
        acct.post(chall["url"], {})
        done = acct.wait(chall["url"], ("valid", "invalid"))
    return done, responder.requests


def test_one_redirect_on_the_same_host(acct, helpers):
    name = "moved.redirect.jitsuin.test"

    def setup(responder, token, key_authorization):
        responder.redirects[PREFIX + token] = f"/elsewhere/{token}"
        responder.bodies[f"/elsewhere/{token}"] = key_authorization

    done, seen = respond(acct, helpers, name, setup)
    assert done["status"] == "valid", done
    token = done["token"]
    assert seen == [(PREFIX + token, name), (f"/elsewhere/{token}", name)]


def test_redirect_to_another_scheme_is_refused(acct, helpers):
    def setup(responder, token, key_authorization):
        responder.redirects[PREFIX + token] = f"ftp://scheme.redirect.jitsuin.test/{token}"

    done, seen = respond(acct, helpers, "scheme.redirect.jitsuin.test", setup)
    assert done["status"] == "invalid"
    assert done["error"]["type"] == ERR + "connection"
    assert "only http and https" in done["error"]["detail"], done["error"]
    assert len(seen) == 1


def test_redirect_to_another_port_is_refused(acct, helpers, server):
    def setup(responder, token, key_authorization):
        port = server.http01_port + 1
        responder.redirects[PREFIX + token] = f"http://port.redirect.jitsuin.test:{port}/x"

    done, _ = respond(acct, helpers, "port.redirect.jitsuin.test", setup)
    assert done["status"] == "invalid" and done["error"]["type"] == ERR + "connection"
    assert f"only to port {server.http01_port}" in done["error"]["detail"], done["error"]


def test_redirect_loop_is_refused(acct, helpers):
    def setup(responder, token, key_authorization):
        responder.redirects[PREFIX + token] = "/loop-b"
        responder.redirects["/loop-b"] = PREFIX + token

    done, seen = respond(acct, helpers, "loop.redirect.jitsuin.test", setup)
    assert done["status"] == "invalid"
    assert done["error"]["type"] == ERR + "connection"
    assert "redirect loop" in done["error"]["detail"], done["error"]
    assert len(seen) == 2


def test_more_than_ten_redirects_are_refused(acct, helpers):
    def setup(responder, token, key_authorization):
        hops = [PREFIX + token] + [f"/hop/{n}" for n in range(1, 12)]
        for here, there in itertools.pairwise(hops):
            responder.redirects[here] = there
        responder.bodies[hops[-1]] = key_authorization  # the 11th redirect's target

    done, seen = respond(acct, helpers, "many.redirect.jitsuin.test", setup)
    assert done["status"] == "invalid"
    assert done["error"]["type"] == ERR + "connection"
    assert "too many redirects" in done["error"]["detail"], done["error"]
    assert len(seen) == 11  # the first request and 10 redirects followed


class HttpsResponder:
    """HTTPS on 127.0.0.1:port with a self-signed certificate no validator could verify,
    serving ``bodies[path]``; ``sni`` records the server names clients asked for."""

    def __init__(self, port: int, name: str, tmp: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        (tmp / "https.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp / "https.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "https.pem", tmp / "https.key")
        self.sni: list[str | None] = []
        context.sni_callback = lambda sock, server_name, ctx: self.sni.append(server_name)
        self.bodies: dict[str, str] = {}
        bodies = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = bodies.get(self.path)
                self.send_response(404 if body is None else 200)
                self.end_headers()
                if body is not None:
                    self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=2)


def test_redirect_to_https_on_the_https_port(acct, helpers, server, tmp_path):
    """The https port is the one tls-alpn-01 uses ([acme] tlsalpn01_port, 443 by default); the
    target's certificate is not verified (§8.3)."""
    name = "tls.redirect.jitsuin.test"
    https = HttpsResponder(server.alpn_port, name, tmp_path)
    try:

        def setup(responder, token, key_authorization):
            target = f"https://{name}:{server.alpn_port}/secure/{token}"
            responder.redirects[PREFIX + token] = target
            https.bodies[f"/secure/{token}"] = key_authorization

        done, _ = respond(acct, helpers, name, setup)
    finally:
        https.close()
    assert done["status"] == "valid", done
    assert https.sni == [name]

"""Operators authenticate with a TLS client certificate of this CA that an admin bound to them,
as an alternative to the API token.

The TLS tests run a real ``jitsuin serve`` process (tests/conftest.py ``live_jitsuin``): the
certificates are personal certificates an applicant picked up through EST after the real RA flow,
bound with the real CLI or API, and presented in real TLS handshakes by ``requests``. The
validity-period tests drive the RA service of an in-process server whose clock can move.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from jitsuin.server.ra.errors import RAError, RAKind

UNAUTHORIZED = "urn:jitsuin:problem:unauthorized"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any) -> Iterator[Any]:
    """A running jitsuin with the operators alice (reviewer), bob (approver), root (admin)."""
    with live_jitsuin.server(tmp_path_factory.mktemp("operator-certificates")) as running:
        running.script = live_jitsuin.cli()
        yield running


class Credential:
    """A personal certificate an applicant picked up through EST, with its key, as files."""

    def __init__(self, app: dict[str, str], cert: x509.Certificate, folder: Path) -> None:
        self.app = app
        self.cert = cert
        self.cert_pem = folder / "cert.pem"
        self.key_pem = folder / "key.pem"

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def sha256(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    @property
    def pem(self) -> str:
        return self.cert_pem.read_text()


def enrolled(live: Any, folder: Path) -> Credential:
    """The RA flow to approval, then EST simpleenroll with the mailed PIN."""
    app, cert, _, _ = live.enrolled(folder)
    return Credential(app, cert, folder)


def call(
    live: Any,
    method: str,
    path: str,
    *,
    credential: Credential | None = None,
    token: str | None = None,
    body: Any = None,
) -> requests.Response:
    """One request over TLS, presenting ``credential`` as the client certificate and/or
    ``token`` as the bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.request(
        method,
        live.https + path,
        json=body,
        headers=headers,
        cert=(str(credential.cert_pem), str(credential.key_pem)) if credential else None,
        verify=str(live.ca_pem),
        timeout=30,
    )


def problem(reply: requests.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    document = reply.json()
    assert document["status"] == status
    return document


def unauthorized(reply: requests.Response) -> dict[str, Any]:
    document = problem(reply, 401)
    assert document["type"] == UNAUTHORIZED
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    return document


def jitsuin(live: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script on the running server's home (the exit status kept)."""
    return subprocess.run(
        [live.script, "--home", str(live.home), *args], capture_output=True, text=True
    )


def audit_entries(live: Any) -> list[dict[str, Any]]:
    reply = call(live, "GET", "/ra/audit?limit=1000", token=live.tokens["root"])
    assert reply.status_code == 200, reply.text
    return reply.json()["entries"]


# -- over TLS, against the running server ---------------------------------------------------------
def test_a_bound_certificate_authenticates_with_its_operators_role(live, tmp_path):
    credential = enrolled(live, tmp_path / "alice")
    # Not bound yet: the certificate alone is no credential (the handshake still succeeds).
    document = unauthorized(call(live, "GET", "/ra/applications", credential=credential))
    assert "not bound" in document["detail"]

    out = jitsuin(live, "ra", "operator-bind-cert", "alice", "--cert", str(credential.cert_pem))
    assert out.returncode == 0, out.stderr
    assert credential.sha256 in out.stdout
    listed = jitsuin(live, "ra", "operators")
    assert "alice\treviewer\t" in listed.stdout
    assert f"certificate sha256:{credential.sha256}" in listed.stdout

    # The certificate and no token: alice, with a reviewer's permissions.
    reply = call(live, "GET", "/ra/applications", credential=credential)
    assert reply.status_code == 200, reply.text
    body = {
        "profile": "general",
        "familyName": "Sato",
        "givenName": "Ichiro",
        "email": "ichiro.sato@example.com",
        "qualificationGroup": "member",
        "qualificationNumber": "AB-CERT1",
        "postalAddress": "1-2-3 Kasumigaseki, Tokyo",
        "dateOfBirth": "1975-06-07",
        "billing": {"addressee": "self"},
    }
    created = call(live, "POST", "/ra/applications", credential=credential, body=body)
    assert created.status_code == 201, created.text
    assert created.json()["createdBy"] == "alice"
    # A reviewer cannot approve.
    waiting = live.application("general", approve=False)
    reply = call(live, "POST", f"/ra/applications/{waiting['id']}/approve", credential=credential)
    assert "alice (reviewer) may not approve" in problem(reply, 403)["detail"]
    assert live.state(waiting["id"])["state"] == "online_input_received"
    # Nor read the audit log (admin only).
    problem(call(live, "GET", "/ra/audit", credential=credential), 403)
    # The ACME operator routes (server/acme/operator.py) know alice the same way: she may read
    # the EAB keys, and may not make one (approver or admin).
    assert call(live, "GET", "/ra/acme/eab-keys", credential=credential).status_code == 200
    made = call(live, "POST", "/ra/acme/eab-keys", credential=credential, body={"dnsSuffixes": []})
    assert "alice (reviewer) may not" in problem(made, 403)["detail"]

    # Both present: the token decides, a bad token is refused even with a good certificate,
    # and another operator's token acts as that operator.
    unauthorized(call(live, "GET", "/ra/applications", credential=credential, token="jto_bad"))
    as_bob = call(
        live,
        "POST",
        f"/ra/applications/{waiting['id']}/approve",
        credential=credential,
        token=live.tokens["bob"],
    )
    assert as_bob.status_code == 200, as_bob.text
    assert as_bob.json()["approvedBy"] == "bob"

    # The binding is audited as the CLI's administrator.
    (entry,) = [e for e in audit_entries(live) if e["action"] == "operator.bind_certificate"]
    assert entry["actor"] == f"cli:{getpass.getuser()}"
    assert entry["target"] == "operator/alice"
    assert entry["details"]["sha256"] == credential.sha256
    assert entry["details"]["serial"] == format(credential.cert.serial_number, "x")

    # Unbound again (CLI): the certificate no longer authenticates; alice's token still does.
    out = jitsuin(live, "ra", "operator-unbind-cert", "alice")
    assert out.returncode == 0, out.stderr
    unauthorized(call(live, "GET", "/ra/applications", credential=credential))
    assert call(live, "GET", "/ra/applications", token=live.tokens["alice"]).status_code == 200
    out = jitsuin(live, "ra", "operator-unbind-cert", "alice")
    assert out.returncode == 1 and "no certificate bound" in out.stderr
    actions = [e["action"] for e in audit_entries(live)]
    assert actions.count("operator.unbind_certificate") == 1


def test_an_unbound_certificate_gets_401(live, tmp_path):
    bound = enrolled(live, tmp_path / "bound")
    stranger = enrolled(live, tmp_path / "stranger")
    reply = call(
        live,
        "PUT",
        "/ra/operators/bob/certificate",
        token=live.tokens["root"],
        body={"certificate": bound.pem},
    )
    assert reply.status_code == 200, reply.text
    assert call(live, "GET", "/ra/mail", credential=bound).status_code == 200  # bob: approver
    # A valid certificate of this CA, its holder vetted, but bound to no operator.
    for method, path in (("GET", "/ra/applications"), ("GET", "/ra/mail"), ("GET", "/ra/audit")):
        document = unauthorized(call(live, method, path, credential=stranger))
        assert "not bound" in document["detail"]
    # Neither certificate nor token.
    unauthorized(call(live, "GET", "/ra/applications"))


def test_a_revoked_certificate_stops_working_at_once(live, tmp_path):
    credential = enrolled(live, tmp_path / "bob")
    reply = call(
        live,
        "PUT",
        "/ra/operators/bob/certificate",
        token=live.tokens["root"],
        body={"certificate": credential.pem},
    )
    assert reply.status_code == 200, reply.text
    binding = reply.json()
    assert binding["sha256"] == credential.sha256
    assert binding["serial"] == format(credential.cert.serial_number, "x")
    assert call(live, "GET", "/ra/reenrollments", credential=credential).status_code == 200

    # Revoked through the RA (bob revokes his own operator certificate with it).
    app_id = credential.app["id"]
    reply = call(
        live,
        "POST",
        f"/ra/applications/{app_id}/revoke",
        credential=credential,
        body={"reason": "keyCompromise"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["state"] == "revoked"
    # The next request with it, on a new connection, is refused; the token still works.
    document = unauthorized(call(live, "GET", "/ra/reenrollments", credential=credential))
    assert "revoked" in document["detail"]
    assert call(live, "GET", "/ra/reenrollments", token=live.tokens["bob"]).status_code == 200
    # A revoked certificate cannot be bound again either.
    reply = call(
        live,
        "PUT",
        "/ra/operators/bob/certificate",
        token=live.tokens["root"],
        body={"certificate": credential.pem},
    )
    assert "revoked" in problem(reply, 422)["detail"]


def foreign_client_certificate(folder: Path, ca_name: x509.Name) -> Path:
    """A clientAuth certificate from another CA that even copies this CA's name."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=Mallory Operator"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    path = folder / "foreign.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_binding_a_certificate_of_another_ca_is_refused(live, tmp_path):
    ca = x509.load_pem_x509_certificate(live.ca_pem.read_bytes())
    foreign = foreign_client_certificate(tmp_path, ca.subject)

    out = jitsuin(live, "ra", "operator-bind-cert", "alice", "--cert", str(foreign))
    assert out.returncode == 1
    assert "not issued by this CA" in out.stderr
    reply = call(
        live,
        "PUT",
        "/ra/operators/alice/certificate",
        token=live.tokens["root"],
        body={"certificate": foreign.read_text()},
    )
    assert "not issued by this CA" in problem(reply, 422)["detail"]

    # Other refusals: not a certificate, an unknown operator, a non-admin, no file.
    reply = call(
        live,
        "PUT",
        "/ra/operators/alice/certificate",
        token=live.tokens["root"],
        body={"certificate": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"},
    )
    assert "not an X.509 certificate" in problem(reply, 422)["detail"]
    credential = enrolled(live, tmp_path / "ours")
    reply = call(
        live,
        "PUT",
        "/ra/operators/nobody/certificate",
        token=live.tokens["root"],
        body={"certificate": credential.pem},
    )
    problem(reply, 404)
    # Only an admin binds a certificate to another operator (everyone may bind their own), and
    # only an admin removes a binding.
    reply = call(
        live,
        "PUT",
        "/ra/operators/alice/certificate",
        token=live.tokens["bob"],
        body={"certificate": credential.pem},
    )
    assert "may not manage operators" in problem(reply, 403)["detail"]
    for who in ("alice", "bob"):
        problem(
            call(live, "DELETE", "/ra/operators/alice/certificate", token=live.tokens[who]), 403
        )
    out = jitsuin(live, "ra", "operator-bind-cert", "alice", "--cert", str(tmp_path / "none.pem"))
    assert out.returncode == 2 and "cannot read" in out.stderr
    # Nothing was bound or audited.
    unauthorized(call(live, "GET", "/ra/applications", credential=credential))
    bindings = [
        e
        for e in audit_entries(live)
        if e["action"] == "operator.bind_certificate"
        and e["details"]["sha256"] == credential.sha256
    ]
    assert bindings == []


def test_one_certificate_authenticates_one_operator(live, tmp_path):
    credential = enrolled(live, tmp_path / "shared")
    root = live.tokens["root"]
    body = {"certificate": credential.pem}
    # Binding one's own certificate needs it presented in the handshake (proof of possession).
    reply = call(live, "PUT", "/ra/operators/root/certificate", token=root, body=body)
    assert "present it as the TLS client certificate" in problem(reply, 422)["detail"]
    reply = call(
        live, "PUT", "/ra/operators/root/certificate", token=root, body=body, credential=credential
    )
    assert reply.ok and reply.json()["boundBy"] == []
    reply = call(live, "PUT", "/ra/operators/alice/certificate", token=root, body=body)
    assert "another operator" in problem(reply, 409)["detail"]
    # root, an admin, by certificate alone: reads the audit log and unbinds itself over the API.
    assert call(live, "GET", "/ra/audit/verify", credential=credential).json()["ok"] is True
    reply = call(live, "DELETE", "/ra/operators/root/certificate", credential=credential)
    assert reply.status_code == 204, reply.text
    unauthorized(call(live, "GET", "/ra/audit/verify", credential=credential))
    (entry,) = [
        e
        for e in audit_entries(live)
        if e["action"] == "operator.unbind_certificate" and e["target"] == "operator/root"
    ]
    assert entry["actor"] == "root"


# -- the validity period and a disabled operator, on an in-process server whose clock moves -------
async def test_expiry_and_a_disabled_operator(server):
    flow = await server.prepare("pin_sent")
    _, csr = server.csr()
    der = (
        await server.ra.redeem(flow.enrollment_id, flow.pin, csr, "test", "192.0.2.1")
    ).certificate_der
    binding = await server.ra.bind_certificate("cli:test", "carol", der)
    assert binding["sha256"] == hashlib.sha256(der).hexdigest()
    assert (await server.ra.authenticate_certificate(der)).name == "carol"

    not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
    server.clock.advance(not_after - server.clock.now() + dt.timedelta(seconds=1))
    with pytest.raises(RAError) as expired:
        await server.ra.authenticate_certificate(der)
    assert expired.value.kind is RAKind.UNAUTHORIZED
    assert "not valid now" in expired.value.message
    with pytest.raises(RAError) as refused:
        await server.ra.bind_certificate("cli:test", "dave", der)
    assert refused.value.kind is RAKind.INVALID
    assert "expired" in refused.value.message
    server.clock.advance(-(not_after - server.clock.now() + dt.timedelta(days=1)))
    assert (await server.ra.authenticate_certificate(der)).name == "carol"

    # A disabled operator's certificate no longer authenticates.
    with sqlite3.connect(server.database) as db:
        db.execute(
            "UPDATE operators SET disabled_at = ? WHERE name = 'carol'",
            (server.clock.now().isoformat(),),
        )
    with pytest.raises(RAError) as disabled:
        await server.ra.authenticate_certificate(der)
    assert disabled.value.kind is RAKind.UNAUTHORIZED
    # Over (plain) HTTP there is no client certificate: the bearer token is the only way.
    reply = await server.call("GET", "/ra/applications")
    assert "TLS client certificate" in reply.problem(401)["detail"]
    assert json.dumps(binding)  # the binding is plain JSON

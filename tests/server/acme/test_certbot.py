"""Done-when of issue 6: certbot from PyPI obtains, renews and revokes a tls-server certificate
from a running jitsuin, with an operator-made EAB key and http-01 on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID


def certbot(server, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).parent / "certbot"),
        "--non-interactive",
        "--server",
        server.directory_url,
        "--config-dir",
        str(work / "config"),
        "--work-dir",
        str(work / "work"),
        "--logs-dir",
        str(work / "logs"),
        *args,
    ]
    # certbot's HTTP client (requests) trusts the CA through REQUESTS_CA_BUNDLE: no
    # --no-verify-ssl needed.
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(server.ca_pem)}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)


def test_certbot_obtains_renews_and_revokes(server, tmp_path):
    kid, mac = server.eab_key(["certbot.jitsuin.test"], certificateLifetimeDays=30)
    name = "www.certbot.jitsuin.test"
    standalone = [
        "--standalone",
        "--preferred-challenges",
        "http-01",
        "--http-01-port",
        str(server.http01_port),
        "--http-01-address",
        "127.0.0.1",
    ]
    obtained = certbot(
        server,
        tmp_path,
        "certonly",
        *standalone,
        "--agree-tos",
        "-m",
        "ops@certbot.jitsuin.test",
        "--eab-kid",
        kid,
        "--eab-hmac-key",
        mac,
        "-d",
        name,
        "--cert-name",
        "web",
    )
    assert obtained.returncode == 0, obtained.stdout + obtained.stderr
    live = tmp_path / "config" / "live" / "web"
    first = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    san = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]
    eku = first.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert (first.not_valid_after_utc - first.not_valid_before_utc).days == 29  # the policy's 30 d
    chain = x509.load_pem_x509_certificates((live / "chain.pem").read_bytes())
    ca = x509.load_pem_x509_certificate(server.ca_pem.read_bytes())
    assert chain == [ca]
    first.verify_directly_issued_by(ca)

    renewed = certbot(
        server, tmp_path, "renew", "--force-renewal", "--no-random-sleep-on-renew", *standalone
    )
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    second = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert second.serial_number != first.serial_number

    revoked = certbot(
        server,
        tmp_path,
        "revoke",
        "--cert-path",
        str(live / "cert.pem"),
        "--reason",
        "superseded",
        "--no-delete-after-revoke",
    )
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    status, listed = server.api("GET", "/ra/acme/eab-keys", "bob")
    assert status == 200 and any(k["kid"] == kid and k["usedAt"] for k in listed["keys"])
    # The CRL of the generation now lists the renewed certificate as superseded.
    import urllib.request

    with urllib.request.urlopen(f"{server.http}/crl/1.crl", timeout=10) as reply:
        crl = x509.load_der_x509_crl(reply.read())
    entry = crl.get_revoked_certificate_by_serial_number(second.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.superseded
    )

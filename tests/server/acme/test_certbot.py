"""certbot from PyPI obtains, renews and revokes a tls-server certificate
from a running jitsuin, with an operator-made EAB key and http-01 on loopback."""

from __future__ import annotations

import ipaddress
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


def _standalone(server) -> list[str]:
    """certbot answers http-01 itself, on the port the server's VA asks."""
    return [
        "--standalone",
        "--preferred-challenges",
        "http-01",
        "--http-01-port",
        str(server.http01_port),
        "--http-01-address",
        "127.0.0.1",
    ]


def test_certbot_obtains_renews_and_revokes(server, tmp_path):
    kid, mac = server.eab_key(["certbot.jitsuin.test"], certificateLifetimeDays=30)
    name = "www.certbot.jitsuin.test"
    standalone = _standalone(server)
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
    # No CN for a DNS name either: the TLS BR (7.1.2.7.2) make it optional, and the name is in
    # the subjectAltName, critical because the subject is empty (RFC 5280 §4.2.1.6).
    assert first.subject == x509.Name([])
    assert first.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
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


def test_certbot_obtains_and_renews_an_ip_address_certificate(server, tmp_path):
    """certbot reads a subject CN as a DNS name, so a CN holding an IP address
    made it refuse the certificate after issuance and fail to parse its renewal configuration.
    The certificate now has an empty subject and a critical subjectAltName (RFC 5280 §4.2.1.6)."""
    kid, mac = server.eab_key(["127.0.0.0/8"], certificateLifetimeDays=30)
    standalone = _standalone(server)
    obtained = certbot(
        server,
        tmp_path,
        "certonly",
        *standalone,
        "--agree-tos",
        "--register-unsafely-without-email",
        "--eab-kid",
        kid,
        "--eab-hmac-key",
        mac,
        "--ip-address",
        "127.0.0.1",
        "--cert-name",
        "ip",
    )
    assert obtained.returncode == 0, obtained.stdout + obtained.stderr
    cert = x509.load_pem_x509_certificate((tmp_path / "config/live/ip/cert.pem").read_bytes())
    assert cert.subject == x509.Name([])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.value.get_values_for_type(x509.DNSName) == []

    renewed = certbot(
        server, tmp_path, "renew", "--force-renewal", "--no-random-sleep-on-renew", *standalone
    )
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert "parsefail" not in renewed.stdout + renewed.stderr
    second = x509.load_pem_x509_certificate((tmp_path / "config/live/ip/cert.pem").read_bytes())
    assert second.serial_number != cert.serial_number and second.subject == x509.Name([])

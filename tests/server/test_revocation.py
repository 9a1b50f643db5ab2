"""Revocation status across a CA rollover against a running server: `openssl ocsp` reports good,
revoked and unknown for certificates of both generations, `openssl crl` parses and verifies each
generation's CRL, revoking shows at once in OCSP and CRL, and pkilint's CRL and OCSP linters find
nothing at WARNING or above; EST cacerts carries the whole rollover set, CRLs come as
application/pkix-crl and the responder answers GET."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509 import ocsp

JITSUIN = str(Path(sys.executable).parent / "jitsuin")


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    assert found.exists() or shutil.which(name), f"{name} missing: ./scripts/test installs it"
    return str(found) if found.exists() else str(shutil.which(name))


def run(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


class Deployment:
    def __init__(self, home: Path, http: str, https: str) -> None:
        self.home = home
        self.http = http
        self.https = https
        self.certs: dict[str, Path] = {}

    def issue(self, name: str, subscriber: str, make_csr, subject_record) -> Path:
        csr = self.home / f"{name}.csr"
        csr.write_bytes(make_csr(ec.generate_private_key(ec.SECP256R1())))
        record = self.home / f"{name}.json"
        record.write_text(json.dumps(subject_record(subscriber_id=subscriber)))
        out = self.home / f"{name}.pem"
        run(
            JITSUIN,
            "--home",
            self.home,
            "issue",
            "--csr",
            csr,
            "--subject",
            record,
            "--profile",
            "general",
            "--out",
            out,
        )
        self.certs[name] = out
        return out

    def fetch(self, path: str, target: Path) -> Path:
        with urllib.request.urlopen(f"{self.http}{path}", timeout=10) as reply:
            target.write_bytes(reply.read())
        return target

    def get(self, url: str, context: ssl.SSLContext | None = None) -> tuple[str, bytes]:
        """The Content-Type and body of a GET."""
        with urllib.request.urlopen(url, timeout=10, context=context) as reply:
            return reply.headers["Content-Type"], reply.read()

    def ocsp(self, cert: Path, issuer: Path, serial: int | None = None) -> str:
        """openssl ocsp against the responder; returns the status line."""
        target = ["-serial", hex(serial)] if serial is not None else ["-cert", str(cert)]
        result = run(
            "openssl",
            "ocsp",
            "-issuer",
            issuer,
            *target,
            "-url",
            f"{self.http}/ocsp",
            "-VAfile",
            issuer,
            "-resp_text",
            "-respout",
            self.home / "last.ocsp",
        )
        assert "Response verify OK" in result.stderr, result.stderr
        line = [ln for ln in result.stdout.splitlines() if ln.startswith(f"{target[1]}: ")]
        assert line, result.stdout
        return line[0].split(": ", 1)[1].strip()


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory, write_home, free_port, make_csr, subject_record
) -> Iterator[Deployment]:
    """Generation 1 issues A and B; the CA rolls over; generation 2 issues C and D; A is revoked
    before the server starts, C while it runs (in the tests)."""
    home = tmp_path_factory.mktemp("revocation")
    http_port, https_port = free_port(), free_port()
    config = write_home(home, http_port=http_port, https_port=https_port)
    # the CLI revokes from another process: the responder must not trust its status cache
    config.write_text(
        config.read_text().replace("[server]\n", "[server]\nocsp_status_ttl_seconds = 0\n", 1)
    )
    run(JITSUIN, "--home", home, "init")
    deployment = Deployment(
        home, f"http://127.0.0.1:{http_port}", f"https://localhost:{https_port}"
    )
    deployment.issue("a", "alice", make_csr, subject_record)
    deployment.issue("b", "bob", make_csr, subject_record)
    rolled = run(JITSUIN, "--home", home, "ca", "rollover")
    assert "generation 2 created" in rolled.stdout
    deployment.issue("c", "carol", make_csr, subject_record)
    deployment.issue("d", "dave", make_csr, subject_record)
    serial_a = x509.load_pem_x509_certificate(deployment.certs["a"].read_bytes()).serial_number
    run(
        JITSUIN,
        "--home",
        home,
        "ca",
        "revoke",
        format(serial_a, "x"),
        "--generation",
        "1",
        "--reason",
        "keyCompromise",
    )
    log = (home / "server.log").open("wb")
    process = subprocess.Popen([JITSUIN, "--home", str(home), "serve"], stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                deployment.fetch("/ca/1.pem", home / "g1.pem")
                deployment.fetch("/ca/2.pem", home / "g2.pem")
                break
            except OSError:
                assert process.poll() is None, (home / "server.log").read_text()
                time.sleep(0.1)
        yield deployment
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_ocsp_reports_both_generations(deployment: Deployment) -> None:
    home = deployment.home
    assert deployment.ocsp(deployment.certs["a"], home / "g1.pem") == "revoked"
    assert deployment.ocsp(deployment.certs["b"], home / "g1.pem") == "good"
    assert deployment.ocsp(deployment.certs["d"], home / "g2.pem") == "good"
    # a serial never issued is never good, by either generation's key (docs/conformance.md R-08)
    assert deployment.ocsp(deployment.certs["b"], home / "g1.pem", serial=0x1234567) == "unknown"
    assert deployment.ocsp(deployment.certs["d"], home / "g2.pem", serial=0x7654321) == "unknown"


def test_revoking_shows_at_once_in_ocsp_and_crl(deployment: Deployment) -> None:
    home = deployment.home
    cert = x509.load_pem_x509_certificate(deployment.certs["c"].read_bytes())
    assert deployment.ocsp(deployment.certs["c"], home / "g2.pem") == "good"  # now cached
    run(
        JITSUIN,
        "--home",
        home,
        "ca",
        "revoke",
        format(cert.serial_number, "x"),
        "--generation",
        "2",
        "--reason",
        "superseded",
    )
    assert deployment.ocsp(deployment.certs["c"], home / "g2.pem") == "revoked"
    crl = x509.load_der_x509_crl(deployment.fetch("/crl/2.crl", home / "g2.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason)
    assert reason.value.reason == x509.ReasonFlags.superseded and not reason.critical


def test_each_generation_signs_its_own_crl(deployment: Deployment) -> None:
    home = deployment.home
    numbers = {}
    for generation in (1, 2):
        crl_file = deployment.fetch(f"/crl/{generation}.crl", home / f"g{generation}.crl")
        text = run(
            "openssl",
            "crl",
            "-inform",
            "DER",
            "-in",
            crl_file,
            "-noout",
            "-text",
            "-CAfile",
            home / f"g{generation}.pem",
        )
        assert "verify OK" in text.stderr, text.stderr
        crl = x509.load_der_x509_crl(crl_file.read_bytes())
        numbers[generation] = crl.extensions.get_extension_for_class(x509.CRLNumber).value
        assert crl.next_update_utc - crl.last_update_utc <= dt.timedelta(days=10)  # SBR 4.9.7
    serial_a = x509.load_pem_x509_certificate(deployment.certs["a"].read_bytes()).serial_number
    g1 = x509.load_der_x509_crl((home / "g1.crl").read_bytes())
    assert g1.get_revoked_certificate_by_serial_number(serial_a) is not None
    # CRL numbers increase across keys (docs/conformance.md R-01)
    assert numbers[1].crl_number != numbers[2].crl_number


def test_pkilint_finds_nothing_in_crls_and_ocsp(deployment: Deployment) -> None:
    home = deployment.home
    for generation in (1, 2):
        crl_file = deployment.fetch(f"/crl/{generation}.crl", home / f"lint{generation}.crl")
        result = run(
            _tool("lint_crl"),
            "lint",
            "-t",
            "CRL",
            "-p",
            "BR",
            "-s",
            "WARNING",
            "--document-format",
            "DER",
            crl_file,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    for name, issuer in (("a", "g1.pem"), ("b", "g1.pem"), ("d", "g2.pem")):
        deployment.ocsp(deployment.certs[name], home / issuer)
        result = run(
            _tool("lint_ocsp_response"),
            "lint",
            "-s",
            "WARNING",
            "--document-format",
            "DER",
            home / "last.ocsp",
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_publication_index_and_links(deployment: Deployment) -> None:
    home = deployment.home
    index = json.loads(deployment.fetch("/ca/index.json", home / "index.json").read_text())
    assert index["current"] == 2 and [g["number"] for g in index["generations"]] == [1, 2]
    (link,) = index["links"]
    own = deployment.fetch("/ca/links/1-2/old-with-new.crt", home / "own.crt")
    nwo = deployment.fetch("/ca/links/1-2/new-with-old.pem", home / "nwo.pem")
    own_cert = x509.load_der_x509_certificate(own.read_bytes())
    g1 = x509.load_pem_x509_certificate((home / "g1.pem").read_bytes())
    g2 = x509.load_pem_x509_certificate((home / "g2.pem").read_bytes())
    assert own_cert.public_key() == g1.public_key()
    own_cert.verify_directly_issued_by(g2)
    x509.load_pem_x509_certificate(nwo.read_bytes()).verify_directly_issued_by(g1)
    assert link["oldWithNew"]["sha256"] == own_cert.fingerprint(hashes.SHA256()).hex()
    # a relying party that trusts only generation 1 validates a generation-2 leaf via NwO
    result = run(
        "openssl", "verify", "-CAfile", home / "g1.pem", "-untrusted", nwo, deployment.certs["d"]
    )
    assert result.stdout.strip().endswith("OK")
    # jitsuin verify uses the published links and the CRLs: D is fine, A is revoked
    ok = run(JITSUIN, "--home", home, "verify", deployment.certs["d"])
    assert ok.stdout.startswith("OK")
    revoked = run(JITSUIN, "--home", home, "verify", deployment.certs["a"], check=False)
    assert revoked.returncode == 1 and "revoked" in revoked.stderr


def test_est_cacerts_serves_the_whole_rollover_set(deployment: Deployment) -> None:
    """RFC 7030 §4.1.3 / RFC 9810 §4.4: after a rollover, cacerts carries OldWithOld, OldWithNew,
    NewWithOld and NewWithNew."""
    home = deployment.home
    context = ssl.create_default_context(cafile=str(home / "g1.pem"))
    context.load_verify_locations(cafile=str(home / "g2.pem"))
    kind, body = deployment.get(f"{deployment.https}/.well-known/est/cacerts", context)
    assert kind.startswith("application/pkcs7-mime")
    certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    g1 = x509.load_pem_x509_certificate((home / "g1.pem").read_bytes())
    g2 = x509.load_pem_x509_certificate((home / "g2.pem").read_bytes())
    assert len(certs) == 4 and len(set(certs)) == 4
    assert g1 in certs and g2 in certs
    # OldWithNew: the old key signed by the new one; NewWithOld: the new key signed by the old.
    (old_with_new,) = [c for c in certs if c not in (g1, g2) and c.public_key() == g1.public_key()]
    (new_with_old,) = [c for c in certs if c not in (g1, g2) and c.public_key() == g2.public_key()]
    old_with_new.verify_directly_issued_by(g2)
    new_with_old.verify_directly_issued_by(g1)


def test_crl_media_type_and_ocsp_over_get(deployment: Deployment) -> None:
    """RFC 5280 §4.2.1.13 / RFC 2585: CRLs as application/pkix-crl; RFC 6960 Appendix A.1: a GET
    carries the base64 DER request in the path."""
    home = deployment.home
    kind, _ = deployment.get(f"{deployment.http}/crl/2.crl")
    assert kind == "application/pkix-crl"
    g2 = x509.load_pem_x509_certificate((home / "g2.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate(deployment.certs["d"].read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, g2, hashes.SHA1()).build()  # noqa: S303
    path = urllib.request.quote(base64.b64encode(request.public_bytes(serialization.Encoding.DER)))
    kind, body = deployment.get(f"{deployment.http}/ocsp/{path}")
    assert kind == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(body)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == leaf.serial_number

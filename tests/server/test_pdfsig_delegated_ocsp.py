"""NSS accepts the answers of jitsuin's delegated OCSP responder (``[ocsp] responder =
"delegated"``, RFC 6960 §4.2.2.2). Poppler's ``pdfsig`` verifies a PDF that pyHanko signed with
a certificate a running jitsuin issued. pdfsig leaves certificate validation to NSS
(``CERT_PKIXVerifyCert`` for S/MIME signing, with NSS's classic OCSP policy unless ``-no-ocsp``
is given), which trusts the jitsuin CA from an NSS database made with ``certutil`` (``-nssdir``)
and asks the certificate's AIA OCSP URL, the running server on loopback, for its status: a GET
with a SHA-1 CertID, then a POST if that fails.

pdfsig reports a certificate trusted when NSS finds no problem, which proves by itself no more than
that the answer was not refused. The checks that fail without OCSP: the server's metrics count
pdfsig's OCSP requests, and a revoked certificate is reported revoked, which NSS does only from
an answer whose signature and signer it has verified, while ``-no-ocsp`` reports it trusted.

Before each pdfsig run the server is asked about the same certificate with a SHA-256 CertID, as
another relying party would: the answer kept for that request must not be sent to NSS, whose
CertID is hashed with SHA-1 (RFC 6960 §4.2.1)."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.keys import load_private_key_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

JITSUIN = str(Path(sys.executable).parent / "jitsuin")
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


class Server:
    def __init__(self, home: Path, http: str, metrics: str, nssdb: Path) -> None:
        self.home = home
        self.http = http
        self.metrics = metrics
        self.nssdb = nssdb

    def ocsp_requests(self) -> float:
        """OCSP requests the server has answered so far, from its Prometheus metrics."""
        with urllib.request.urlopen(self.metrics, timeout=10) as reply:
            text = reply.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("jitsuin_http_requests_total{") and 'family="ocsp"' in line
        )


def _jitsuin(home: Path, *args: str) -> None:
    subprocess.run([JITSUIN, "--home", str(home), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory, write_home, free_port, make_csr, subject_record) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("pdfsig")
    http_port, https_port, metrics_port = free_port(), free_port(), free_port()
    path = write_home(home, http_port=http_port, https_port=https_port)
    text = path.read_text(encoding="utf-8")
    assert 'responder = "ca"' in text, "the default configuration no longer names the responder"
    text = text.replace('responder = "ca"', 'responder = "delegated"')
    path.write_text(text + f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n', encoding="utf-8")
    _jitsuin(home, "init")
    for name, subscriber in (("good", "alice"), ("revoked", "bob")):
        key = ec.generate_private_key(ec.SECP256R1())
        (home / f"{name}.key").write_bytes(
            key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        (home / f"{name}.csr").write_bytes(make_csr(key))
        (home / f"{name}.json").write_text(json.dumps(subject_record(subscriber_id=subscriber)))
        _jitsuin(
            home,
            *("issue", "--csr", str(home / f"{name}.csr"), "--subject", str(home / f"{name}.json")),
            *("--profile", "general", "--out", str(home / f"{name}.pem")),
        )
    revoked = x509.load_pem_x509_certificate((home / "revoked.pem").read_bytes())
    serial = format(revoked.serial_number, "x")
    _jitsuin(home, "ca", "revoke", serial, "--generation", "1", "--reason", "keyCompromise")

    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([JITSUIN, "--home", str(home), "serve"], stdout=out, stderr=out)
    running = Server(
        home,
        f"http://127.0.0.1:{http_port}",
        f"http://127.0.0.1:{metrics_port}/metrics",
        home / "nssdb",
    )
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{running.http}/ca/1.pem", timeout=10) as reply:
                    (home / "ca.pem").write_bytes(reply.read())
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
        # pdfsig's NSS database: empty password, the jitsuin CA trusted for S/MIME signing
        running.nssdb.mkdir()
        nss, ca = f"sql:{running.nssdb}", str(home / "ca.pem")
        subprocess.run(
            ["certutil", "-N", "-d", nss, "--empty-password"], check=True, capture_output=True
        )
        subprocess.run(
            [*("certutil", "-A", "-d", nss, "-n", "jitsuin CA", "-t", "C,C,C"), "-i", ca],
            check=True,
            capture_output=True,
        )
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _asn1(pem: bytes) -> asn1_x509.Certificate:
    cert = x509.load_pem_x509_certificate(pem)
    return asn1_x509.Certificate.load(cert.public_bytes(DER))


def _signed_pdf(server: Server, name: str) -> Path:
    """A one-page PDF that pyHanko signs with the jitsuin certificate ``name``."""
    home = server.home
    blank = io.BytesIO()
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(blank)
    blank.seek(0)
    signer = signers.SimpleSigner(
        signing_cert=_asn1((home / f"{name}.pem").read_bytes()),
        signing_key=load_private_key_from_pemder_data(
            (home / f"{name}.key").read_bytes(), passphrase=None
        ),
        cert_registry=SimpleCertificateStore.from_certs([_asn1((home / "ca.pem").read_bytes())]),
    )
    out = home / f"{name}.pdf"
    with out.open("wb") as output:
        signers.sign_pdf(
            IncrementalPdfFileWriter(blank),
            signers.PdfSignatureMetadata(field_name="Signature1"),
            signer=signer,
            output=output,
        )
    return out


def _pdfsig(server: Server, pdf: Path, *options: str) -> str:
    result = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{server.nssdb}", *options, str(pdf)],
        capture_output=True,
        text=True,
    )
    # pdfsig's exit status is 0 when it could read and verify the signatures at all
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _answer(server: Server, name: str) -> ocsp.OCSPResponse:
    """The running server's OCSP answer about certificate ``name``, for a SHA-256 CertID."""
    ca = x509.load_pem_x509_certificate((server.home / "ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((server.home / f"{name}.pem").read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA256()).build()
    post = urllib.request.Request(
        f"{server.http}/ocsp",
        data=request.public_bytes(DER),
        headers={"Content-Type": "application/ocsp-request"},
    )
    with urllib.request.urlopen(post, timeout=10) as reply:
        return ocsp.load_der_ocsp_response(reply.read())


def test_the_server_answers_by_its_delegated_responder(server: Server) -> None:
    """What pdfsig is given: answers signed by a responder key, not the CA key, that carry the
    responder certificate (RFC 6960 §4.2.2.2)."""
    ca = x509.load_pem_x509_certificate((server.home / "ca.pem").read_bytes())
    for name, status in (
        ("good", ocsp.OCSPCertStatus.GOOD),
        ("revoked", ocsp.OCSPCertStatus.REVOKED),
    ):
        answer = _answer(server, name)
        assert answer.certificate_status is status
        [responder] = answer.certificates
        responder.verify_directly_issued_by(ca)
        assert responder.public_key() != ca.public_key()
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]


def test_pdfsig_trusts_a_good_certificate_by_the_delegated_answer(server: Server) -> None:
    pdf = _signed_pdf(server, "good")
    assert _answer(server, "good").certificate_status is ocsp.OCSPCertStatus.GOOD
    before = server.ocsp_requests()
    report = _pdfsig(server, pdf)
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Certificate Validation: Certificate is Trusted." in report, report
    # NSS asked the running delegated responder (the certificate's AIA OCSP URL)
    assert server.ocsp_requests() > before, server.metrics


def test_pdfsig_reports_a_revoked_certificate_by_the_delegated_answer(server: Server) -> None:
    """The check that fails if NSS does not consult OCSP or does not accept the delegated
    answer."""
    pdf = _signed_pdf(server, "revoked")
    assert _answer(server, "revoked").certificate_status is ocsp.OCSPCertStatus.REVOKED
    before = server.ocsp_requests()
    report = _pdfsig(server, pdf)
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Certificate Validation: Certificate has been Revoked." in report, report
    assert server.ocsp_requests() > before, server.metrics
    # without the online check the same certificate is trusted: the revocation came by OCSP
    report = _pdfsig(server, pdf, "-no-ocsp")
    assert "Certificate Validation: Certificate is Trusted." in report, report

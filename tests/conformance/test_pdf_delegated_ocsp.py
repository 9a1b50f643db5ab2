"""pyHanko validates a PDF signed with a jitsuin certificate, its revocation status proved by the
answer of jitsuin's delegated OCSP responder (``[ocsp] responder = "delegated"``, RFC 6960
§4.2.2.2): the response is signed by the responder key, carries the responder certificate
(id-kp-OCSPSigning, id-pkix-ocsp-nocheck), and pyHanko's validator requires OCSP for the
signer's certificate. Everything runs in-process: a home as ``jitsuin init`` writes it, the
Authority on a fixed clock, and pyHanko with fetching off, so the only revocation information it
can use is the delegated answer it is given. The same jitsuin response is linted clean by
``jitsuin lint`` (R-06 accepts the delegated arrangement)."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from pathlib import Path

import pypdf
import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from pyhanko.keys import load_private_key_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import SimpleCertificateStore

from jitsuin.ca.clock import FixedClock
from jitsuin.ca.keys import KeyType
from jitsuin.ca.subject import VettedSubject
from jitsuin.conformance.documents import LintContext
from jitsuin.conformance.runner import lint_paths
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
# pyHanko stamps the signature with the wall clock and validates at it: the CA's clock is set
# to the same day, so the certificates and the OCSP answer are current when pyHanko looks.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(DER))


async def _jitsuin(
    home: Path,
) -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey, bytes]:
    path = configuration.write_default(home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    text = path.read_text(encoding="utf-8")
    assert 'responder = "ca"' in text, "the default configuration no longer names the responder"
    path.write_text(text.replace('responder = "ca"', 'responder = "delegated"'), encoding="utf-8")
    authority = await Authority.open(configuration.load(path, home), FixedClock(NOW))
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(key, hashes.SHA256())
            .public_bytes(PEM)
        )
        subject = VettedSubject("s1", "Yamada", "Taro", "taro@example.jp", "member", "AB-1")
        leaf = (await authority.issue_personal(csr, subject, "general", "test")).certificate
        ca = authority.current.certificate
        request = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA256()).build()
        answer = await authority.ocsp(request.public_bytes(DER))
    finally:
        await authority.close()
    return ca, leaf, key, answer


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory):
    return asyncio.run(_jitsuin(tmp_path_factory.mktemp("home")))


def _signed_pdf(
    leaf: x509.Certificate, key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> bytes:
    blank = io.BytesIO()
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.write(blank)
    blank.seek(0)
    pem = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = signers.SimpleSigner(
        signing_cert=_asn1(leaf),
        signing_key=load_private_key_from_pemder_data(pem, passphrase=None),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(ca)]),
    )
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(blank),
        signers.PdfSignatureMetadata(field_name="Signature1"),
        signer=signer,
        output=out,
    )
    return out.getvalue()


def _context(ca: x509.Certificate, answers: list[bytes]) -> ValidationContext:
    return ValidationContext(
        trust_roots=[_asn1(ca)],
        ocsps=[asn1_ocsp.OCSPResponse.load(a) for a in answers],
        allow_fetching=False,
        revinfo_policy=CertRevTrustPolicy(
            RevocationCheckingPolicy(
                ee_certificate_rule=RevocationCheckingRule.OCSP_REQUIRED,
                intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
            )
        ),
    )


async def _validate(pdf: bytes, context: ValidationContext):  # type: ignore[no-untyped-def]
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return await async_validate_pdf_signature(signature, signer_validation_context=context)


def test_pyhanko_validates_the_pdf_with_the_delegated_answer(issued) -> None:
    ca, leaf, key, answer = issued
    response = ocsp.load_der_ocsp_response(answer)
    [responder] = response.certificates
    assert responder.public_key() != ca.public_key()  # a delegated responder, not the CA key
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD

    pdf = _signed_pdf(leaf, key, ca)
    status = asyncio.run(_validate(pdf, _context(ca, [answer])))
    assert status.intact and status.valid, status.pretty_print_details()
    assert status.trusted and status.bottom_line, status.pretty_print_details()


def test_without_the_answer_pyhanko_refuses(issued) -> None:
    """The check that can fail: OCSP is required, fetching is off, no answer is given."""
    ca, leaf, key, _answer = issued
    status = asyncio.run(_validate(_signed_pdf(leaf, key, ca), _context(ca, [])))
    assert status.intact and status.valid
    assert not status.trusted and not status.bottom_line


def test_jitsuin_lint_accepts_the_delegated_answer(issued, tmp_path: Path) -> None:
    ca, leaf, _key, answer = issued
    (tmp_path / "ca.der").write_bytes(ca.public_bytes(DER))
    (tmp_path / "leaf.der").write_bytes(leaf.public_bytes(DER))
    (tmp_path / "leaf.ocsp").write_bytes(answer)
    report = lint_paths([tmp_path], LintContext(at=NOW))
    (result,) = [d for d in report.documents if d.label.endswith("leaf.ocsp")]
    assert [f.message for f in result.findings if f.counts] == []
    ran = {o.rule for o in result.outcomes if o.status.value == "pass"}
    assert "R-06" in ran

"""pkilint, in-process, on every issued certificate and every CA certificate.

docs/conformance.md X-13 (RFC 5280 linter, ``lint_pkix_cert``) and S-18 (S/MIME BR linter,
``lint_cabf_smime_cert -t INDIVIDUAL-MULTIPURPOSE``): no finding at WARNING or above.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from pkilint import loader
from pkilint.cabf import smime
from pkilint.cabf.smime.smime_constants import Generation, ValidationLevel
from pkilint.pkix import certificate, extension, name
from pkilint.validation import ValidationFindingSeverity

from jitsuin.ca.keys import KeyType


@pytest.fixture(scope="session")
def smime_iv_mp_linter():
    """As ``lint_cabf_smime_cert lint -t INDIVIDUAL-MULTIPURPOSE`` assembles it."""
    return certificate.create_pkix_certificate_validator_container(
        smime.create_decoding_validators(),
        smime.create_subscriber_validators(ValidationLevel.INDIVIDUAL, Generation.MULTIPURPOSE),
    )


@pytest.fixture(scope="session")
def pkix_linter():
    """As ``pkilint/bin/lint_pkix_cert.py`` assembles it."""
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


def findings(linter, der: bytes, label: str) -> tuple[list[str], int]:
    """(findings at WARNING or above, number of validator results) for one certificate."""
    doc = loader.load_der_certificate(der, label)
    results = linter.validate(doc.root)
    blocking = [
        f"{result.node.path}: {fd.finding.code} ({fd.finding.severity}) {fd.message or ''}"
        for result in results
        for fd in result.finding_descriptions
        if fd.finding.severity <= ValidationFindingSeverity.WARNING
    ]
    return blocking, len(results)


def test_smime_individual_multipurpose(
    ca_type, profile_name, subscriber_type, issued_cert, smime_iv_mp_linter
):
    """docs/conformance.md S-18; SBR 4.3.1.2."""
    issued, _ = issued_cert(ca_type, profile_name, subscriber_type)
    label = f"{profile_name}/{subscriber_type.value} by {ca_type.value}"
    blocking, ran = findings(smime_iv_mp_linter, issued.der, label)
    assert ran > 50, f"the S/MIME linter ran only {ran} validators on {label}"
    assert not blocking, f"{label}:\n" + "\n".join(blocking)


def test_pkix_subscriber(ca_type, profile_name, subscriber_type, issued_cert, pkix_linter):
    """docs/conformance.md X-13; RFC 5280."""
    issued, _ = issued_cert(ca_type, profile_name, subscriber_type)
    label = f"{profile_name}/{subscriber_type.value} by {ca_type.value}"
    blocking, ran = findings(pkix_linter, issued.der, label)
    assert ran > 20, f"the RFC 5280 linter ran only {ran} validators on {label}"
    assert not blocking, f"{label}:\n" + "\n".join(blocking)


def test_pkix_ca_certificate(ca_type, ca_generation, pkix_linter):
    """docs/conformance.md X-13, C-01; RFC 5280 on the self-signed CA certificate."""
    ca = ca_generation(ca_type)
    label = f"CA {ca_type.value}"
    blocking, ran = findings(pkix_linter, ca.certificate.public_bytes(Encoding.DER), label)
    assert ran > 20, f"the RFC 5280 linter ran only {ran} validators on {label}"
    assert not blocking, f"{label}:\n" + "\n".join(blocking)


def test_linters_do_flag_a_bad_certificate(ca_generation, smime_iv_mp_linter):
    """The harness itself can fail: a CA certificate is no S/MIME subscriber certificate."""
    ca = ca_generation(KeyType.ECDSA_P256)
    blocking, _ = findings(smime_iv_mp_linter, ca.certificate.public_bytes(Encoding.DER), "CA")
    assert any("cabf.smime" in line or "pkix" in line for line in blocking), blocking

"""NIST PKITS §4.5 (self-issued certificates: key rollover) with the path validator behind
`jitsuin verify`. The vectors ship in the cryptography-vectors package."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography import x509

from jitsuin.ca.verify import validate_path

PKITS = Path(cryptography_vectors.__file__).parent / "x509" / "PKITS_data"
NEW_KEY = (["BasicSelfIssuedNewKeyCACert", "BasicSelfIssuedNewKeyOldWithNewCACert"],
           ["TrustAnchorRootCRL", "BasicSelfIssuedNewKeyCACRL"])  # fmt: skip
OLD_KEY = (["BasicSelfIssuedOldKeyCACert", "BasicSelfIssuedOldKeyNewWithOldCACert"],
           ["TrustAnchorRootCRL", "BasicSelfIssuedOldKeyCACRL",
            "BasicSelfIssuedOldKeySelfIssuedCertCRL"])  # fmt: skip
CRL_KEY = (["BasicSelfIssuedCRLSigningKeyCACert", "BasicSelfIssuedCRLSigningKeyCRLCert"],
           ["TrustAnchorRootCRL", "BasicSelfIssuedCRLSigningKeyCACRL",
            "BasicSelfIssuedCRLSigningKeyCRLCertCRL"])  # fmt: skip

# PKITS 1.0.1 §4.5: (test, end entity, certificates + CRLs, expected outcome)
CASES = [
    ("4.5.1", "ValidBasicSelfIssuedOldWithNewTest1EE", NEW_KEY, True),
    ("4.5.2", "InvalidBasicSelfIssuedOldWithNewTest2EE", NEW_KEY, False),
    ("4.5.3", "ValidBasicSelfIssuedNewWithOldTest3EE", OLD_KEY, True),
    ("4.5.4", "ValidBasicSelfIssuedNewWithOldTest4EE", OLD_KEY, True),
    ("4.5.5", "InvalidBasicSelfIssuedNewWithOldTest5EE", OLD_KEY, False),
    ("4.5.6", "ValidBasicSelfIssuedCRLSigningKeyTest6EE", CRL_KEY, True),
    ("4.5.7", "InvalidBasicSelfIssuedCRLSigningKeyTest7EE", CRL_KEY, False),
    ("4.5.8", "InvalidBasicSelfIssuedCRLSigningKeyTest8EE", CRL_KEY, False),
]


def _cert(name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate((PKITS / "certs" / f"{name}.crt").read_bytes())


@pytest.mark.parametrize(("test", "ee", "material", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pkits_4_5(test: str, ee: str, material: tuple[list[str], list[str]], expected: bool):
    certificates, crls = material
    verdict = asyncio.run(
        validate_path(
            _cert(ee),
            [_cert("TrustAnchorRootCertificate")],
            [_cert(name) for name in certificates],
            [(PKITS / "crls" / f"{name}.crl").read_bytes() for name in crls],
            at=dt.datetime(2022, 1, 1, tzinfo=dt.UTC),  # inside every PKITS validity period
            require_revocation=True,
        )
    )
    assert verdict.ok is expected, (test, verdict.reasons)

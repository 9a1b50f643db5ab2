"""NIST PKITS §4.5 (self-issued certificates: key rollover) through `jitsuin verify`, with the
CRLs given by --crl beside --ca. The vectors ship in the cryptography-vectors
package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.server.__main__ import main

PKITS = Path(cryptography_vectors.__file__).parent / "x509" / "PKITS_data"
ANCHOR = PKITS / "certs" / "TrustAnchorRootCertificate.crt"
AT = "2022-01-01T00:00:00Z"  # inside every PKITS validity period
NEW_KEY = (["BasicSelfIssuedNewKeyCACert", "BasicSelfIssuedNewKeyOldWithNewCACert"],
           ["TrustAnchorRootCRL", "BasicSelfIssuedNewKeyCACRL"])  # fmt: skip
OLD_KEY = (["BasicSelfIssuedOldKeyCACert", "BasicSelfIssuedOldKeyNewWithOldCACert"],
           ["TrustAnchorRootCRL", "BasicSelfIssuedOldKeyCACRL",
            "BasicSelfIssuedOldKeySelfIssuedCertCRL"])  # fmt: skip
CRL_KEY = (["BasicSelfIssuedCRLSigningKeyCACert", "BasicSelfIssuedCRLSigningKeyCRLCert"],
           ["TrustAnchorRootCRL", "BasicSelfIssuedCRLSigningKeyCACRL",
            "BasicSelfIssuedCRLSigningKeyCRLCertCRL"])  # fmt: skip
REVOKED = "revoked: the certificate was revoked at 2010-01-01T08:30:00+00:00, reason keyCompromise"

# PKITS 1.0.1 §4.5: (test, end entity, certificates + CRLs, what `jitsuin verify` says)
CASES = [
    ("4.5.1", "ValidBasicSelfIssuedOldWithNewTest1EE", NEW_KEY, None),
    ("4.5.2", "InvalidBasicSelfIssuedOldWithNewTest2EE", NEW_KEY, REVOKED),
    ("4.5.3", "ValidBasicSelfIssuedNewWithOldTest3EE", OLD_KEY, None),
    ("4.5.4", "ValidBasicSelfIssuedNewWithOldTest4EE", OLD_KEY, None),
    ("4.5.5", "InvalidBasicSelfIssuedNewWithOldTest5EE", OLD_KEY, REVOKED),
    ("4.5.6", "ValidBasicSelfIssuedCRLSigningKeyTest6EE", CRL_KEY, None),
    ("4.5.7", "InvalidBasicSelfIssuedCRLSigningKeyTest7EE", CRL_KEY, REVOKED),
    # The end entity's issuer is the CRL-signing certificate, which is not a CA certificate.
    (
        "4.5.8",
        "InvalidBasicSelfIssuedCRLSigningKeyTest8EE",
        CRL_KEY,
        "intermediate certificate 2 is not a CA",
    ),
]


def bundle(tmp_path: Path, ee: str, certificates: list[str]) -> Path:
    """The end entity and the intermediates as one PEM file, as a relying party gets them."""
    path = tmp_path / f"{ee}.pem"
    path.write_bytes(
        b"".join(
            x509.load_der_x509_certificate(
                (PKITS / "certs" / f"{name}.crt").read_bytes()
            ).public_bytes(serialization.Encoding.PEM)
            for name in [ee, *certificates]
        )
    )
    return path


def crl_files(crls: list[str]) -> list[str]:
    return [str(PKITS / "crls" / f"{name}.crl") for name in crls]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("test", "ee", "material", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pkits_4_5_through_the_command(test, ee, material, expected, tmp_path, capsys):
    certificates, crls = material
    argv = ["verify", str(bundle(tmp_path, ee, certificates)), "--ca", str(ANCHOR), "--at", AT]
    # The PKITS end entities have no extKeyUsage: --purpose any.
    code, out, err = run([*argv, "--purpose", "any", "--crl", *crl_files(crls)], capsys)
    if expected is None:
        assert code == 0, (test, err)
        assert out.startswith("OK: CN=Valid ") and "chains to CN=Trust Anchor" in out
    else:
        assert code == 1, (test, out)
        assert err.startswith("NOT OK: CN=Invalid "), err
        assert expected in err, (test, err)
    assert "Traceback" not in err


def test_a_revoked_certificate_is_reported_as_revoked_before_its_purpose(tmp_path, capsys):
    """PKITS 4.5.2 with the default purpose (e-mail protection, which the PKITS end entity lacks):
    the user needs to hear that it is revoked, not that it has the wrong extKeyUsage."""
    certificates, crls = NEW_KEY
    leaf = bundle(tmp_path, "InvalidBasicSelfIssuedOldWithNewTest2EE", certificates)
    code, _, err = run(
        ["verify", str(leaf), "--ca", str(ANCHOR), "--at", AT, "--crl", *crl_files(crls)], capsys
    )
    assert code == 1
    assert err.splitlines()[1:] == [f"  - {REVOKED}"]

    # A valid certificate without the purpose's extKeyUsage is refused for that purpose.
    valid = bundle(tmp_path, "ValidBasicSelfIssuedOldWithNewTest1EE", certificates)
    argv = ["verify", str(valid), "--ca", str(ANCHOR), "--at", AT, "--crl", *crl_files(crls)]
    for purpose, kind in [
        (None, "an e-mail protection certificate"),
        ("document", "a document signing certificate"),
        ("client", "a TLS client certificate"),
    ]:
        code, _, err = run([*argv, *(["--purpose", purpose] if purpose else [])], capsys)
        assert code == 1
        assert f"the certificate chains, but it is not {kind}" in err


def test_crls_in_one_pem_file_and_a_missing_crl(tmp_path, capsys):
    """A PEM file may carry several CRLs; with --crl every certificate on the path must be
    covered, so leaving out the intermediate CA's CRL fails instead of passing unchecked."""
    certificates, crls = NEW_KEY
    pem = tmp_path / "crls.pem"
    pem.write_bytes(
        b"".join(
            x509.load_der_x509_crl(Path(path).read_bytes()).public_bytes(serialization.Encoding.PEM)
            for path in crl_files(crls)
        )
    )
    leaf = bundle(tmp_path, "ValidBasicSelfIssuedOldWithNewTest1EE", certificates)
    argv = ["verify", str(leaf), "--ca", str(ANCHOR), "--at", AT, "--purpose", "any"]
    assert run([*argv, "--crl", str(pem)], capsys)[0] == 0

    code, _, err = run([*argv, "--crl", crl_files(crls)[0]], capsys)
    assert code == 1 and "NOT OK" in err and "Traceback" not in err

    junk = tmp_path / "junk.crl"
    junk.write_bytes(b"not a CRL")
    code, _, err = run([*argv, "--crl", str(junk)], capsys)
    assert code == 2 and f"{junk}: not a CRL (PEM or DER)" in err
    code, _, err = run([*argv, "--crl", str(tmp_path / "absent.crl")], capsys)
    assert code == 2 and "cannot read the CRL" in err


def test_pkits_revoked_as_a_process(tmp_path):
    """The console script itself, as the README shows it."""
    certificates, crls = NEW_KEY
    leaf = bundle(tmp_path, "InvalidBasicSelfIssuedOldWithNewTest2EE", certificates)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "jitsuin"),
            "verify",
            str(leaf),
            "--ca",
            str(ANCHOR),
            "--at",
            AT,
            "--crl",
            *crl_files(crls),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout
    assert REVOKED in result.stderr

"""``jitsuin lint`` on everything a real ``jitsuin init`` home issues: both profiles x every key
type through ``jitsuin issue``, the CA certificate, a rollover (``jitsuin ca rollover``) with its
link certificates and a new-key certificate, a revocation (``jitsuin ca revoke``), the CRLs of both
generations and OCSP responses from the CA's own responder. No ERROR or WARNING; then the output
formats and the exit status.

The CLI runs in-process (``jitsuin.server.__main__.main``): the same code path as the console
script, without a process start per command.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from jitsuin.ca.clock import SystemClock
from jitsuin.ca.keys import KeyType, generate_private_key
from jitsuin.server import config as configuration
from jitsuin.server.__main__ import main
from jitsuin.server.authority import Authority

PROFILES = ("general", "document-manager")
KEYS = (
    KeyType.RSA_2048,
    KeyType.RSA_3072,
    KeyType.RSA_4096,
    KeyType.ECDSA_P256,
    KeyType.ECDSA_P384,
)
DER = serialization.Encoding.DER


def _subject(profile: str, n: int) -> dict[str, str]:
    if profile == "general":
        group, number = "member", f"AB-{n:04d}"
    else:
        group, number = "document-information-manager", f"{100000 + n}"
    return {
        "subscriber_id": f"app-{n:04d}",
        "family_name": "Yamada",
        "given_name": "Hanako",
        "email": f"hanako.{n}@example.com",
        "qualification_group": group,
        "qualification_number": number,
        "country": "JP",
    }


def _issue(home: Path, work: Path, profile: str, key_type: KeyType, n: int) -> x509.Certificate:
    key = generate_private_key(key_type)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, key_type.signature_hash)
    )
    (work / f"{n}.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    (work / f"{n}.json").write_text(json.dumps(_subject(profile, n)))
    out = work / "issued" / f"{profile}-{key_type.value}-{n}.pem"
    argv = [
        "--home",
        str(home),
        "issue",
        "--csr",
        str(work / f"{n}.csr"),
        "--subject",
        str(work / f"{n}.json"),
        "--profile",
        profile,
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    return x509.load_pem_x509_certificate(out.read_bytes())


async def _publications(
    config, revoked: x509.Certificate, good: list[x509.Certificate]
) -> dict[str, bytes]:
    """CA and link certificates, each generation's CRL, OCSP answers from the CA itself."""
    authority = await Authority.open(config, SystemClock(), create=False)
    try:
        out = {f"ca-{g.number}.der": g.der for g in authority.generations}
        for link in authority.links:
            out[f"own-{link.old}-{link.new}.der"] = link.old_with_new.public_bytes(DER)
            out[f"nwo-{link.old}-{link.new}.der"] = link.new_with_old.public_bytes(DER)
        for g in authority.generations:
            out[f"gen-{g.number}.crl"] = await authority.crl(g.number)
        for cert in [revoked, *good]:
            issuer = next(
                g.certificate
                for g in authority.generations
                if g.key_identifier
                == cert.extensions.get_extension_for_class(
                    x509.AuthorityKeyIdentifier
                ).value.key_identifier
            )
            request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303
            out[f"{cert.serial_number:x}.ocsp"] = await authority.ocsp(request.public_bytes(DER))
        return out
    finally:
        await authority.close()


@pytest.fixture(scope="module")
def issued_home(tmp_path_factory):
    """A home with everything jitsuin issues, exported to ``publications/``."""
    home = tmp_path_factory.mktemp("home")
    work = tmp_path_factory.mktemp("work")
    (work / "issued").mkdir()
    assert main(["--home", str(home), "init"]) == 0
    certificates = []
    n = 0
    for profile in PROFILES:
        for key_type in KEYS:
            n += 1
            certificates.append(_issue(home, work, profile, key_type, n))
    assert main(["--home", str(home), "ca", "rollover"]) == 0
    new_key = _issue(home, work, "general", KeyType.ECDSA_P256, 99)
    revoked = certificates[0]
    assert (
        main(
            [
                "--home",
                str(home),
                "ca",
                "revoke",
                f"{revoked.serial_number:x}",
                "--generation",
                "1",
                "--reason",
                "keyCompromise",
            ]
        )
        == 0
    )
    config = configuration.load(home / configuration.CONFIG_NAME, home)
    files = asyncio.run(_publications(config, revoked, [certificates[1], new_key]))
    published = work / "publications"
    published.mkdir()
    for name, data in files.items():
        (published / name).write_bytes(data)
    return home, work


def test_everything_jitsuin_issues_lints_clean(issued_home, capsys):
    home, work = issued_home
    capsys.readouterr()
    code = main(
        [
            "lint",
            "--config",
            str(home / configuration.CONFIG_NAME),
            "--format",
            "json",
            str(work / "issued"),
            str(work / "publications"),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    bad = [
        (f["path"], x["rule"], x["severity"], x["message"])
        for f in out["files"]
        for x in f["findings"]
        if x["severity"] in ("WARNING", "ERROR", "FATAL") and "suppressed" not in x
    ]
    assert not bad, "\n".join(map(str, bad))
    assert code == 0
    kinds = {f["kind"] for f in out["files"]}
    assert kinds == {"certificate", "crl", "ocsp-response"}
    assert (
        len(out["files"]) == 10 + 1 + 2 + 2 + 2 + 3
    )  # leaves, new-key leaf, CAs, links, CRLs, OCSP
    statuses = {
        r["rule"]: r["status"] for f in out["files"] for r in f["results"] if r["status"] == "pass"
    }
    # The rollover set was recognised: the link and cross-validation rules ran and passed.
    for rule in (
        "C-04",
        "C-05",
        "C-06",
        "C-07",
        "C-08",
        "C-09",
        "C-10",
        "R-05",
        "R-06",
        "S-18",
        "X-13",
    ):
        assert statuses.get(rule) == "pass", rule
    # The development configuration's two suppressions show, with their reasons.
    suppressed = {x["code"] for f in out["files"] for x in f["findings"] if "suppressed" in x}
    assert suppressed <= {
        "pkilint:cabf.internal_domain_name",
        "pkilint:pkix.invalid_domain_name_syntax",
    }


def test_without_the_configuration_loopback_urls_are_errors(issued_home, capsys):
    """The development CA publishes on 127.0.0.1: pkilint (S-18) says so unless suppressed."""
    _, work = issued_home
    capsys.readouterr()
    code = main(["lint", "--rule", "S-18", str(work / "issued")])
    out = capsys.readouterr().out
    assert code == 1
    assert "cabf.internal_domain_name" in out


def test_output_formats(issued_home, capsys, tmp_path):
    home, work = issued_home
    config = str(home / configuration.CONFIG_NAME)
    target = str(work / "publications")
    assert (
        main(
            ["lint", "--config", config, "--format", "junit", "-o", str(tmp_path / "r.xml"), target]
        )
        == 0
    )
    root = ET.parse(tmp_path / "r.xml").getroot()  # noqa: S314 (our own report)
    assert root.tag == "testsuites" and int(root.get("tests")) > 50 and root.get("failures") == "0"
    assert (
        main(
            [
                "lint",
                "--config",
                config,
                "--format",
                "sarif",
                "-o",
                str(tmp_path / "r.sarif"),
                target,
            ]
        )
        == 0
    )
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]} >= {
        "X-01",
        "C-10",
        "R-09",
    }
    capsys.readouterr()
    assert main(["lint", "--config", config, target]) == 0
    assert "0 error" in capsys.readouterr().out


def test_exit_status_and_json_on_a_bad_certificate(issued_home, capsys, tmp_path):
    _, work = issued_home
    ca = x509.load_der_x509_certificate((work / "publications" / "ca-1.der").read_bytes())
    # A certificate the CA never made: self-signed, 30 years, with serverAuth.
    key = generate_private_key(KeyType.RSA_2048)
    import datetime as dt

    bad = (
        x509.CertificateBuilder()
        .subject_name(ca.subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(dt.datetime(2020, 1, 1))
        .not_valid_after(dt.datetime(2050, 1, 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "bad.pem").write_bytes(bad.public_bytes(serialization.Encoding.PEM))
    capsys.readouterr()
    assert main(["lint", "--format", "json", str(tmp_path / "bad.pem")]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["errors_present"] is True
    (only,) = out["files"]
    assert only["path"].endswith("bad.pem")
    rules = {f["rule"] for f in only["findings"]}
    assert {"X-02", "X-08", "X-09", "X-10", "X-13", "C-02"} <= rules
    for finding in only["findings"]:
        assert {"rule", "severity", "message", "code"} <= set(finding)


def test_usage_errors(capsys, tmp_path):
    assert main(["lint"]) == 2
    assert main(["lint", str(tmp_path / "missing.pem")]) == 2
    assert main(["lint", "--profile", "nope", str(tmp_path)]) == 2
    (tmp_path / "junk.pem").write_text("hello")
    assert main(["lint", str(tmp_path / "junk.pem")]) == 1  # unreadable: a FATAL finding
    assert main(["lint", "--list-rules"]) == 0
    catalogue = capsys.readouterr().out
    assert "X-01" in catalogue and "A-17" in catalogue and "E-11" in catalogue


def test_declared_intermediate(capsys, tmp_path):
    """C-13 through the command: without a configuration a subordinate CA gets an INFO finding
    naming what is missing; --intermediate declares it; a leaf is refused as an intermediate."""
    import datetime as dt

    def cert(subject, issuer, key, signer, ca, serial):
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(dt.datetime(2026, 1, 1))
            .not_valid_after(dt.datetime(2027, 1, 1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    root_key, sub_key = (generate_private_key(KeyType.ECDSA_P256) for _ in range(2))
    root = cert("Root", "Root", root_key, root_key, True, 2**70 + 1)
    sub = cert("Sub", "Root", sub_key, root_key, True, 2**70 + 2)
    leaf = cert("Leaf", "Sub", generate_private_key(KeyType.ECDSA_P256), sub_key, False, 2**70 + 3)
    for name, c in (("root", root), ("sub", sub), ("leaf", leaf)):
        (tmp_path / f"{name}.pem").write_bytes(c.public_bytes(serialization.Encoding.PEM))

    def c13(*extra):
        capsys.readouterr()
        main(["lint", "--no-pkilint", "--format", "json", *extra, str(tmp_path / "sub.pem")])
        (only,) = json.loads(capsys.readouterr().out)["files"]
        (result,) = [r for r in only["results"] if r["rule"] == "C-13"]
        return result

    unknown = c13()
    assert unknown["status"] == "fail"
    (finding,) = unknown["findings"]
    assert finding["severity"] == "INFO" and "--intermediate" in finding["message"]
    assert c13("--intermediate", str(tmp_path / "sub.pem"))["status"] == "pass"
    assert main(["lint", "--intermediate", str(tmp_path / "leaf.pem"), str(tmp_path)]) == 2
    assert "is not a CA certificate" in capsys.readouterr().err

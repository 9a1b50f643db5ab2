"""The ``jitsuin`` command line end to end: in-process through ``main(argv)``, and as the installed
console script. Real keys, real CSRs, a real SQLite store, and openssl as an independent verifier.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jitsuin.ca.clock import FixedClock
from jitsuin.ca.csr import verify_csr
from jitsuin.ca.generations import create_generation
from jitsuin.ca.issuance import CAPolicy, Issuer
from jitsuin.ca.keys import KeyType, SoftwareSigner, generate_private_key
from jitsuin.ca.subject import VettedSubject
from jitsuin.server.__main__ import main
from jitsuin.server.config import DEFAULT_SUBJECT, load

ENCRYPTED_KEY_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def console_script() -> str:
    found = shutil.which("jitsuin") or str(Path(sys.executable).parent / "jitsuin")
    assert Path(found).is_file(), "the jitsuin console script is not installed"
    return found


def colon_fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what came before
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory, write_home) -> Path:
    """An initialised home with the default configuration, CA key type P-384."""
    home = tmp_path_factory.mktemp("cli") / "home"
    write_home(home, key_type=KeyType.ECDSA_P384)
    assert main(["--home", str(home), "init"]) == 0
    return home


@pytest.fixture
def files(tmp_path, make_csr, subject_record):
    """Writes CSRs and subject records into tmp_path and returns their paths."""

    class Files:
        def csr(self, key=None, name: str = "request.csr", **kwargs) -> Path:
            key = key or ec.generate_private_key(ec.SECP256R1())
            path = tmp_path / name
            path.write_bytes(make_csr(key, **kwargs))
            return path

        def subject(self, name: str = "subject.json", **overrides) -> Path:
            overrides.setdefault("subscriber_id", f"app-{uuid.uuid4().hex[:12]}")
            path = tmp_path / name
            path.write_text(json.dumps(subject_record(**overrides)), encoding="utf-8")
            return path

        def ca_pem(self, certificate: x509.Certificate) -> Path:
            path = tmp_path / "ca.pem"
            path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
            return path

    return Files()


def issue_argv(home: Path, csr: Path, subject: Path, profile: str, out: Path) -> list[str]:
    return [
        "--home",
        str(home),
        "issue",
        "--csr",
        str(csr),
        "--subject",
        str(subject),
        "--profile",
        profile,
        "--out",
        str(out),
    ]


# -- init and ca show ------------------------------------------------------------------------------
def test_init_creates_the_data_directory_config_key_and_database(tmp_path, capsys, snapshot):
    home = tmp_path / "fresh"
    code, out, err = run(["--home", str(home), "init"], capsys)
    assert code == 0, err

    config = home / "jitsuin.toml"
    assert f"wrote the default configuration {config}" in out
    assert f"data directory: {home}" in out
    assert "CA generation 1: " + DEFAULT_SUBJECT in out
    key_file = home / "keys" / "ca-1.key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(ENCRYPTED_KEY_HEADER)
    passphrase = (home / "secrets" / "ca-passphrase").read_bytes().strip()
    assert stat.S_IMODE((home / "secrets" / "ca-passphrase").stat().st_mode) == 0o600
    assert (home / "jitsuin.db").is_file()

    state = snapshot(home / "jitsuin.db")
    (ca,) = state.generations
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=passphrase)
    assert key.public_key() == ca.public_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    assert ca.subject.rfc4514_string() == DEFAULT_SUBJECT
    assert f"SHA-256 {colon_fingerprint(ca)}" in out
    assert state.actions == ["ca.generation.create"]
    assert state.certificates == 0

    # A second init opens the same CA: no new generation, no new key.
    code, out, _ = run(["--home", str(home), "init"], capsys)
    assert code == 0
    assert "wrote the default configuration" not in out
    assert f"SHA-256 {colon_fingerprint(ca)}" in out
    assert snapshot(home / "jitsuin.db").actions == ["ca.generation.create"]


def test_init_honours_key_type_and_subject(tmp_path, capsys, snapshot):
    home = tmp_path / "options"
    argv = [
        "--home",
        str(home),
        "init",
        "--key-type",
        "ecdsa-p256",
        "--subject",
        "CN=Option CA,C=JP",
    ]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    (ca,) = snapshot(home / "jitsuin.db").generations
    assert ca.subject.rfc4514_string() == "CN=Option CA,C=JP"
    assert ca.public_key().curve.name == "secp256r1"


def test_init_refuses_to_overwrite_a_ca_key_the_store_does_not_know(tmp_path, capsys):
    home = tmp_path / "orphan"
    assert run(["--home", str(home), "init"], capsys)[0] == 0
    key_before = (home / "keys" / "ca-1.key.pem").read_bytes()
    (home / "jitsuin.db").unlink()

    code, _, err = run(["--home", str(home), "init"], capsys)
    assert code == 1
    assert "refused (bad_key_file)" in err and "refusing to overwrite a CA key" in err
    assert "Traceback" not in err
    assert (home / "keys" / "ca-1.key.pem").read_bytes() == key_before


def test_ca_show_prints_the_generation_and_fingerprint(ca_home, capsys, snapshot):
    (ca,) = snapshot(ca_home / "jitsuin.db").generations
    code, out, err = run(["--home", str(ca_home), "ca", "show"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "generation 1"
    assert f"  subject      {ca.subject.rfc4514_string()}" in lines
    assert f"  SHA-256      {colon_fingerprint(ca)}" in lines
    assert any(line.startswith("  issues until ") for line in lines)


def test_ca_show_without_a_ca_says_run_init(tmp_path, capsys, write_home):
    home = tmp_path / "empty"
    write_home(home)
    code, _, err = run(["--home", str(home), "ca", "show"], capsys)
    assert code == 2
    assert "run `jitsuin init` first" in err
    code, _, err = run(["--home", str(tmp_path / "nothing"), "ca", "show"], capsys)
    assert code == 2
    assert "no configuration" in err and "jitsuin init" in err
    # From another directory the CA is usually elsewhere: say how to point at it first.
    assert "--home DIR (or $JITSUIN_HOME)" in err


def test_global_options_work_after_the_subcommand(ca_home, tmp_path, capsys):
    code, out, err = run(["ca", "show", "--home", str(ca_home)], capsys)
    assert code == 0, err
    assert out.startswith("generation 1")
    # After the subcommand it wins over the one before it.
    code, out, err = run(["--home", str(tmp_path), "ca", "show", "--home", str(ca_home)], capsys)
    assert code == 0, err
    # Before it alone, it still counts.
    code, out, err = run(["--home", str(ca_home), "ca", "show"], capsys)
    assert code == 0, err


def test_init_writes_the_listen_and_smtp_flags_and_serve_refuses_a_different_one(tmp_path, capsys):
    home = tmp_path / "home"
    flags = ["--http", "127.0.0.1:18080", "--https", "[::1]:18443", "--smtp", "127.0.0.1:8026"]
    code, _, err = run(["init", "--home", str(home), *flags], capsys)
    assert code == 0, err
    config = load(home / "jitsuin.toml", home)
    assert str(config.server.http) == "127.0.0.1:18080"
    assert config.server.public_http_url == "http://127.0.0.1:18080"
    assert str(config.server.https) == "[::1]:18443"
    assert config.server.public_https_url == "https://localhost:18443"
    assert (config.mail.smtp_host, config.mail.smtp_port) == ("127.0.0.1", 8026)
    # The same flags again agree with the file; a different one is refused, not applied.
    code, _, err = run(["init", "--home", str(home), *flags], capsys)
    assert code == 0, err
    code, _, err = run(["serve", "--home", str(home), "--http", "127.0.0.1:18081"], capsys)
    assert code == 2
    assert "already sets [server] http_listen to 127.0.0.1:18080; edit it there" in err
    with pytest.raises(SystemExit) as exit_:
        main(["init", "--home", str(home), "--https", "localhost"])
    assert exit_.value.code == 2
    assert "expected 'host:port'" in capsys.readouterr().err


def _help_example(words: list[str], capsys) -> dict:
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "/ra/openapi.json" in text
    start = text.index("\n  {")
    end = text.index("}\n\n", start) + 1
    return json.loads(text[start:end])


def test_ra_create_and_review_help_show_a_file_the_ra_accepts(
    ca_home, tmp_path, capsys, monkeypatch
):
    application = _help_example(["ra", "create"], capsys)
    review = _help_example(["ra", "review"], capsys)
    code, out, err = run(
        ["--home", str(ca_home), "ra", "operator-add", "helper", "--role", "reviewer"], capsys
    )
    assert code == 0, err
    monkeypatch.setenv("JITSUIN_OPERATOR_TOKEN", out.splitlines()[-1])
    (tmp_path / "app.json").write_text(json.dumps(application), encoding="utf-8")
    code, out, err = run(
        ["--home", str(ca_home), "ra", "create", str(tmp_path / "app.json")], capsys
    )
    assert code == 0, err
    entered = json.loads(out)
    (tmp_path / "review.json").write_text(json.dumps(review), encoding="utf-8")
    argv = ["--home", str(ca_home), "ra", "review", entered["id"], str(tmp_path / "review.json")]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert json.loads(out)["state"] == "documents_accepted"


# -- issue -----------------------------------------------------------------------------------------
# Each personal profile with each subscriber key type it accepts (SBR 6.1.5, docs/conformance.md
# S-03).
SUBSCRIBER_KEYS = {
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ec-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "rsa-3072": lambda: rsa.generate_private_key(65537, 3072),
    "rsa-4096": lambda: rsa.generate_private_key(65537, 4096),
}
PROFILE_SUBJECTS = {
    "general": {},
    "document-manager": {
        "qualification_group": "document-information-manager",
        "qualification_number": "123456",
    },
}
ISSUE_CASES = {
    f"{key}-{profile}": (make_key, profile, overrides)
    for key, make_key in SUBSCRIBER_KEYS.items()
    for profile, overrides in PROFILE_SUBJECTS.items()
}


@pytest.mark.parametrize("case", list(ISSUE_CASES))
def test_issue_writes_a_certificate_that_verifies(case, ca_home, files, tmp_path, capsys, snapshot):
    make_key, profile, overrides = ISSUE_CASES[case]
    key = make_key()
    csr, subject = files.csr(key), files.subject(**overrides)
    out_file = tmp_path / "cert.pem"
    before = snapshot(ca_home / "jitsuin.db")

    code, out, err = run(issue_argv(ca_home, csr, subject, profile, out_file), capsys)
    assert code == 0, err

    cert = x509.load_pem_x509_certificate(out_file.read_bytes())
    assert out.strip() == f"issued serial {cert.serial_number:x} ({profile}) to {out_file}"
    (ca,) = before.generations
    assert cert.issuer == ca.subject
    assert cert.public_key() == key.public_key()
    # Every subject field comes from the vetted record, none from the CSR.
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Hanako Yamada"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["hanako.yamada@example.com"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku

    # jitsuin's own verifier, against the published CA certificates in the store.
    code, out, err = run(["--home", str(ca_home), "verify", str(out_file)], capsys)
    assert code == 0, err
    assert out.startswith("OK: ")
    assert f"CA SHA-256 {colon_fingerprint(ca)}" in out

    # And an independent one: openssl, trusting only the CA certificate from the store.
    ca_pem = files.ca_pem(ca)
    result = subprocess.run(
        ["openssl", "verify", "-purpose", "smimesign", "-CAfile", str(ca_pem), str(out_file)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{out_file}: OK"

    after = snapshot(ca_home / "jitsuin.db")
    assert after.certificates == before.certificates + 1
    assert len(after.audit) == len(before.audit) + 1
    last = after.audit[-1]
    assert last.event.action == "certificate.issue"
    assert last.event.actor == "cli"
    assert last.event.target == f"generation/1/serial/{cert.serial_number:x}"
    assert last.event.details["profile"] == profile
    assert after.chain_length == len(after.audit)


def test_issue_to_stdout(ca_home, files, capsys):
    argv = ["--home", str(ca_home), "issue", "--csr", str(files.csr()), "--subject"]
    code, out, err = run([*argv, str(files.subject()), "--profile", "general"], capsys)
    assert code == 0, err
    assert out.startswith("-----BEGIN CERTIFICATE-----")
    x509.load_pem_x509_certificate(out.encode())


def test_the_same_key_twice_for_one_subscriber_is_refused_seed_r2(
    ca_home, files, tmp_path, capsys, snapshot
):
    csr, subject = files.csr(), files.subject()
    assert run(issue_argv(ca_home, csr, subject, "general", tmp_path / "one.pem"), capsys)[0] == 0
    before = snapshot(ca_home / "jitsuin.db")

    # The refusal through the installed console script, as an operator would see it.
    second = tmp_path / "two.pem"
    result = subprocess.run(
        [console_script(), *issue_argv(ca_home, csr, subject, "general", second)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "jitsuin: refused (key_reused)" in result.stderr
    assert "SEED-R2" in result.stderr
    assert "Traceback" not in result.stderr
    assert not second.exists()

    after = snapshot(ca_home / "jitsuin.db")
    assert (after.certificates, len(after.audit)) == (before.certificates, len(before.audit))


def sha1_csr(tmp_path: Path) -> Path:
    """cryptography no longer signs with SHA-1; openssl still does."""
    key = tmp_path / "sha1.key"
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path = tmp_path / "sha1.csr"
    subprocess.run(
        ["openssl", "req", "-new", "-sha1", "-key", str(key), "-subj", "/CN=x", "-out", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def tampered_csr(tmp_path: Path, files) -> Path:
    der = x509.load_pem_x509_csr(files.csr().read_bytes()).public_bytes(serialization.Encoding.DER)
    path = tmp_path / "tampered.csr"
    path.write_bytes(der[:-1] + bytes([der[-1] ^ 0x01]))  # the last byte of the signature
    return path


# name -> (csr maker, subject overrides, profile, exit code, fragments of stderr)
REFUSALS = {
    "not-a-csr": (
        lambda tmp, files: (tmp / "junk.csr", (tmp / "junk.csr").write_bytes(b"\x30\x03junk"))[0],
        {},
        "general",
        1,
        ["refused (bad_csr)", "not a PKCS#10 certificate request"],
    ),
    "missing-csr-file": (
        lambda tmp, files: tmp / "absent.csr",
        {},
        "general",
        2,
        ["cannot read the CSR", "absent.csr"],
    ),
    "sha1-csr": (
        lambda tmp, files: sha1_csr(tmp),
        {},
        "general",
        1,
        ["refused (weak_algorithm)", "SHA1", "SEED-R3"],
    ),
    "tampered-signature": (
        tampered_csr,
        {},
        "general",
        1,
        ["refused (bad_signature)", "does not verify"],
    ),
    "rsa-1024": (
        lambda tmp, files: files.csr(rsa.generate_private_key(65537, 1024)),  # noqa: S505
        {},
        "general",
        1,
        ["refused (bad_public_key)", "1024 bits is too small"],
    ),
    "rsa-not-a-multiple-of-8": (
        lambda tmp, files: files.csr(rsa.generate_private_key(65537, 2052)),
        {},
        "general",
        1,
        ["refused (bad_public_key)", "2052 bits", "multiple of 8"],
    ),
    "unsupported-curve": (
        lambda tmp, files: files.csr(ec.generate_private_key(ec.SECP521R1())),
        {},
        "general",
        1,
        ["refused (bad_public_key)", "secp521r1 is not supported"],
    ),
    "uppercase-email": (
        lambda tmp, files: files.csr(),
        {"email": "Hanako.Yamada@example.com"},
        "general",
        1,
        ["refused (bad_subject)", "not lower-case", "SEED-R6"],
    ),
    "unknown-profile": (
        lambda tmp, files: files.csr(),
        {},
        "platinum",
        1,
        ["refused (unknown_profile)", "'platinum'", "general, document-manager"],
    ),
    "tls-profile-is-not-personal": (
        lambda tmp, files: files.csr(),
        {},
        "tls-server",
        1,
        ["refused (unknown_profile)", "not a personal profile"],
    ),
    "group-not-accepted-by-profile": (
        lambda tmp, files: files.csr(),
        {},
        "document-manager",
        1,
        ["refused (bad_subject)", "'member' is not accepted by profile document-manager"],
    ),
    "missing-subject-fields": (
        lambda tmp, files: files.csr(),
        {"family_name": None, "email": None, "qualification_number": None, "nickname": "Hana"},
        "general",
        2,
        [
            "missing field 'family_name'",
            "missing field 'email'",
            "missing field 'qualification_number'",
            "unknown field 'nickname'",
        ],
    ),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refusal_writes_nothing(name, ca_home, files, tmp_path, capsys, snapshot):
    make_csr_file, overrides, profile, exit_code, fragments = REFUSALS[name]
    csr = make_csr_file(tmp_path, files)
    subject = files.subject(**overrides)
    out_file = tmp_path / "cert.pem"
    before = snapshot(ca_home / "jitsuin.db")

    code, out, err = run(issue_argv(ca_home, csr, subject, profile, out_file), capsys)

    assert code == exit_code, err
    for fragment in fragments:
        assert fragment in err
    assert err.startswith("jitsuin: ")
    assert "Traceback" not in err
    assert out == ""
    assert not out_file.exists()
    after = snapshot(ca_home / "jitsuin.db")
    assert (after.certificates, len(after.audit)) == (before.certificates, len(before.audit))


def test_a_subject_record_that_is_not_json(ca_home, files, tmp_path, capsys):
    subject = tmp_path / "subject.json"
    subject.write_text("{'subscriber_id': 'single quotes'}")
    code, _, err = run(issue_argv(ca_home, files.csr(), subject, "general", tmp_path / "c"), capsys)
    assert code == 2
    assert f"{subject}: not JSON" in err


def test_a_wrong_passphrase_is_refused_without_a_traceback(tmp_path, files, capsys, write_home):
    home = tmp_path / "home"
    write_home(home)
    assert run(["--home", str(home), "init"], capsys)[0] == 0
    (home / "secrets" / "ca-passphrase").write_text("not the passphrase\n")

    code, _, err = run(
        issue_argv(home, files.csr(), files.subject(), "general", tmp_path / "c.pem"), capsys
    )
    assert code == 1
    assert "refused (bad_key_file)" in err and "wrong passphrase" in err
    assert "Traceback" not in err


def test_issue_before_init_creates_no_ca(tmp_path, files, capsys, write_home):
    home = tmp_path / "home"
    write_home(home)
    code, _, err = run(
        issue_argv(home, files.csr(), files.subject(), "general", tmp_path / "c.pem"), capsys
    )
    assert code == 1
    assert "refused (bad_config)" in err and "jitsuin init" in err
    assert not (home / "keys").exists()


def test_default_configuration_issues(tmp_path, files, capsys):
    """`jitsuin init` with no options, then `jitsuin issue`: the first thing an operator does."""
    home = tmp_path / "default"
    assert run(["--home", str(home), "init"], capsys)[0] == 0
    out_file = tmp_path / "cert.pem"
    code, _, err = run(issue_argv(home, files.csr(), files.subject(), "general", out_file), capsys)
    assert code == 0, err
    assert out_file.exists()


# -- verify ----------------------------------------------------------------------------------------
def foreign_certificate(tmp_path: Path, ca_subject: x509.Name, name: str) -> Path:
    """A personal certificate from a CA that is not the home's CA."""
    signer = SoftwareSigner(generate_private_key(KeyType.ECDSA_P256))
    clock = FixedClock()
    generation = create_generation(1, signer, ca_subject, clock)
    issuer = Issuer(generation, CAPolicy("2.25.123456789", "http://other.example"), clock)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    issued = issuer.issue(
        verify_csr(csr.public_bytes(serialization.Encoding.DER)),
        VettedSubject("other-1", "Sato", "Jiro", "jiro@example.com", "member", "X-1"),
        "general",
    )
    path = tmp_path / name
    path.write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / f"{name}.ca.pem").write_bytes(
        generation.certificate.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_verify_a_certificate_from_another_ca(ca_home, tmp_path, capsys):
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")])
    cert = foreign_certificate(tmp_path, other, "other.pem")

    code, out, err = run(["--home", str(ca_home), "verify", str(cert)], capsys)
    assert code == 1
    assert out == ""
    assert err.startswith("NOT OK: CN=Jiro Sato")
    assert "no published CA certificate is named 'CN=Some Other CA'" in err
    assert "issued by another CA" in err
    assert "Traceback" not in err

    # The same certificate is fine against its own CA, given with --ca.
    code, out, err = run(["verify", str(cert), "--ca", f"{cert}.ca.pem"], capsys)
    assert code == 0, err
    assert out.startswith("OK: CN=Jiro Sato")


def test_verify_a_certificate_from_an_impostor_with_the_same_ca_name(ca_home, tmp_path, capsys):
    same_name = x509.Name.from_rfc4514_string(DEFAULT_SUBJECT)
    cert = foreign_certificate(tmp_path, same_name, "impostor.pem")

    code, _, err = run(["--home", str(ca_home), "verify", str(cert)], capsys)
    assert code == 1
    assert err.startswith("NOT OK: ")
    assert "none with the key identifier" in err


def test_verify_at_a_time_after_expiry(ca_home, files, tmp_path, capsys):
    out_file = tmp_path / "cert.pem"
    argv = issue_argv(ca_home, files.csr(), files.subject(), "general", out_file)
    assert run(argv, capsys)[0] == 0
    cert = x509.load_pem_x509_certificate(out_file.read_bytes())
    home = ["--home", str(ca_home), "verify", str(out_file)]

    after_expiry = (cert.not_valid_after_utc + dt.timedelta(seconds=1)).isoformat()
    code, out, err = run([*home, "--at", after_expiry], capsys)
    assert code == 1
    assert out == ""
    assert "NOT OK" in err and "expired" in err

    last_second = cert.not_valid_after_utc.isoformat()
    code, out, err = run([*home, "--at", last_second], capsys)
    assert code == 0, err

    before = (cert.not_valid_before_utc - dt.timedelta(seconds=1)).replace(tzinfo=None)
    code, _, err = run([*home, "--at", before.isoformat()], capsys)  # naive means UTC
    assert code == 1
    assert "not valid before" in err

    code, _, err = run([*home, "--at", "next tuesday"], capsys)
    assert code == 2
    assert "--at: not an ISO 8601 time" in err


def test_verify_purposes_and_a_revoked_certificate(ca_home, files, tmp_path, capsys):
    """--purpose checks the extKeyUsage after the path; a revoked certificate
    is reported as revoked, with the date and the reason, whatever the purpose."""
    out_file = tmp_path / "cert.pem"
    assert (
        run(issue_argv(ca_home, files.csr(), files.subject(), "general", out_file), capsys)[0] == 0
    )
    cert = x509.load_pem_x509_certificate(out_file.read_bytes())
    home = ["--home", str(ca_home), "verify", str(out_file)]
    for purpose in ("smime", "document", "client", "any"):
        code, out, err = run([*home, "--purpose", purpose], capsys)
        assert code == 0, (purpose, err)
    with pytest.raises(SystemExit) as usage:
        main([*home, "--purpose", "server"])
    assert usage.value.code == 2 and "invalid choice: 'server'" in capsys.readouterr().err

    revoke = ["--home", str(ca_home), "ca", "revoke", f"{cert.serial_number:x}"]
    assert run([*revoke, "--reason", "keyCompromise"], capsys)[0] == 0
    for purpose in ("smime", "any"):
        code, out, err = run([*home, "--purpose", purpose], capsys)
        assert code == 1 and out == ""
        assert "  - revoked: the certificate was revoked at " in err
        assert err.rstrip().endswith(", reason keyCompromise")


def test_verify_a_file_that_is_not_a_certificate(ca_home, tmp_path, capsys):
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    code, _, err = run(["--home", str(ca_home), "verify", str(junk)], capsys)
    assert code == 2
    assert "not a certificate" in err and "Traceback" not in err


def test_verify_as_a_process(ca_home, files, tmp_path, capsys):
    out_file = tmp_path / "cert.der"
    assert (
        run(issue_argv(ca_home, files.csr(), files.subject(), "general", out_file), capsys)[0] == 0
    )
    # DER input works as well as PEM.
    der = x509.load_pem_x509_certificate(out_file.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    out_file.write_bytes(der)
    result = subprocess.run(
        [console_script(), "--home", str(ca_home), "verify", str(out_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: CN=Hanako Yamada")


# -- the audit log ---------------------------------------------------------------------------------
def test_the_audit_log_records_creation_and_issuance(ca_home, files, tmp_path, capsys, snapshot):
    assert (
        run(
            issue_argv(ca_home, files.csr(), files.subject(), "general", tmp_path / "c.pem"), capsys
        )[0]
        == 0
    )
    state = snapshot(ca_home / "jitsuin.db")

    assert state.actions[0] == "ca.generation.create"
    assert state.audit[0].event.target == "generation/1"
    assert (
        state.audit[0].event.details["sha256"]
        == state.generations[0].fingerprint(hashes.SHA256()).hex()
    )
    assert "certificate.issue" in state.actions
    assert state.actions.count("certificate.issue") == state.certificates
    assert state.chain_length == len(state.audit)

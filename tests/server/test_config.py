"""Configuration: one TOML file, every error listed at once (``jitsuin check-config``)."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from jitsuin.ca.keys import KeyType
from jitsuin.ca.profiles import NameOrder
from jitsuin.server.__main__ import main
from jitsuin.server.config import ConfigError, Listen, TokenSettings, load, write_default


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


# -- the default ----------------------------------------------------------------------------------
def test_the_written_default_loads(tmp_path):
    home = tmp_path / "home"
    # An escaped comma and quote: write_default must escape them again for TOML.
    dn = r"CN=Test CA,O=Example\, \"Quoted\" Inc.,C=JP"
    path = write_default(home, KeyType.ECDSA_P384, dn)
    config = load(path, home)

    assert config.source == path
    assert config.home == home
    assert config.database_path == home / "jitsuin.db"
    passphrase = home / "secrets" / "ca-passphrase"
    assert config.ca.passphrase_file == passphrase
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert len(config.passphrase()) >= 32
    x509.ObjectIdentifier(config.ca.policy_arc)  # a dotted OID
    # Every arc fits in 28 bits, so pkilint (and other decoders) can read the policy OIDs.
    assert all(int(arc) < 2**28 for arc in config.ca.policy_arc.split("."))
    assert config.ca.key_type is KeyType.ECDSA_P384
    assert config.ca.subject == x509.Name.from_rfc4514_string(dn)
    assert 'Example, "Quoted" Inc.' in [a.value for a in config.ca.subject]
    assert config.ca.name_order is NameOrder.GIVEN_FAMILY
    assert config.ca.cutoff_margin == dt.timedelta(days=30)
    assert config.server.http == Listen("127.0.0.1", 8080)
    assert config.server.https == Listen("127.0.0.1", 8443)
    assert config.server.public_http_url == "http://127.0.0.1:8080"
    assert config.server.public_https_url == "https://localhost:8443"
    assert config.policy().problems() == []


def test_each_default_gets_its_own_policy_arc_and_keeps_its_passphrase(tmp_path):
    first = load(write_default(tmp_path / "a", KeyType.ECDSA_P256, "CN=A"), tmp_path / "a")
    second = load(write_default(tmp_path / "b", KeyType.ECDSA_P256, "CN=B"), tmp_path / "b")
    assert first.ca.policy_arc != second.ca.policy_arc

    passphrase = first.passphrase()
    again = load(write_default(tmp_path / "a", KeyType.ECDSA_P256, "CN=A"), tmp_path / "a")
    assert again.passphrase() == passphrase  # rewriting the config never replaces the secret


# -- every error at once --------------------------------------------------------------------------
def many_mistakes(tmp_path: Path) -> Path:
    write(tmp_path / "tls.pem", "not read by load")
    write(tmp_path / "passphrase", "secret\n", 0o644)
    return write(
        tmp_path / "bad.toml",
        """
colour = "blue"

[server]
http_listen = "nope"
https_listen = "127.0.0.1:70000"
public_http_url = "https://pki.example.com"
tls_cert_file = "tls.pem"

[ca]
subject = "this is not a DN"
key_type = "rsa-2048"
passphrase_file = "passphrase"
policy_arc = "2.25.banana"
name_order = "surname-first"
cutoff_margin_days = -3
lint_processes = -1
shoe_size = 42
""",
    )


MANY_MISTAKES = [
    "config: unknown setting 'colour'",
    "ca: unknown setting 'shoe_size'",
    "server.http_listen: expected 'host:port', got 'nope'",
    "server.https_listen: port '70000' is not a number from 1 to 65535",
    "server.public_http_url: expected a http:// URL, got 'https://pki.example.com'",
    "server: set both tls_cert_file and tls_key_file, or neither",
    "ca.subject: 'this is not a DN' is not an RFC 4514 distinguished name",
    "ca.key_type: rsa-2048 is not allowed for a CA key",
    "ca.passphrase_file:",
    "'2.25.banana' is not a dotted OID",
    "ca.name_order: use 'given-family' or 'family-given', not 'surname-first'",
    "ca.cutoff_margin_days: must not be negative",
    "ca.lint_processes: must not be negative",
]


def test_every_mistake_is_listed_at_once(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(many_mistakes(tmp_path), tmp_path)

    errors = caught.value.errors
    for fragment in MANY_MISTAKES:
        assert sum(fragment in e for e in errors) == 1, f"{fragment!r} not once in {errors}"
    assert len(errors) == len(MANY_MISTAKES), errors
    passphrase_error = next(e for e in errors if e.startswith("ca.passphrase_file:"))
    assert "readable by others; chmod 600" in passphrase_error
    # The exception's text carries them all too.
    assert str(caught.value).count("\n") == len(errors) - 1


def test_more_mistakes_of_other_kinds(tmp_path):
    path = write(
        tmp_path / "bad.toml",
        """
database_url = "mysql://db/jitsuin"

[server]
http_listen = 8080
tls_names = ["localhost", ""]
tls_cert_file = "missing.pem"
tls_key_file = "missing.key"

[ca]
key_type = "ecdsa-p521"
passphrase_file = "nowhere"

[ca.groups.nurse]
title = "Nurse"

[acme]
challenge_wait_seconds = 30
""",
    )
    with pytest.raises(ConfigError) as caught:
        load(path, tmp_path)

    errors = caught.value.errors
    expected = [
        "database_url: use sqlite:///PATH or postgresql://USER@HOST[:PORT]/DATABASE"
        "[?schema=NAME], got 'mysql://db/jitsuin'",
        "server.http_listen: expected str, got 8080",
        "server.tls_names: expected a list of host names and IP addresses",
        f"server.tls_cert_file: {tmp_path / 'missing.pem'} does not exist",
        f"server.tls_key_file: {tmp_path / 'missing.key'} does not exist",
        "ca.key_type: unknown key type 'ecdsa-p521'",
        f"ca.passphrase_file: {tmp_path / 'nowhere'} does not exist",
        "ca.policy_arc: required",
        "ca.groups.nurse: title and number_pattern are required",
        "acme.challenge_wait_seconds: from 0 (answer at once) to 10",
    ]
    for fragment in expected:
        assert sum(fragment in e for e in errors) == 1, f"{fragment!r} not once in {errors}"
    assert len(errors) == len(expected), errors


def test_the_http_limits_default_as_written_and_are_checked(tmp_path):
    home = tmp_path / "home"
    http = load(write_default(home, KeyType.ECDSA_P256, "CN=x"), home).http
    assert (http.request_head_timeout, http.request_body_timeout, http.tls_handshake_timeout) == (
        10,
        30,
        10,
    )
    assert (http.max_connections, http.max_connections_per_address) == (1000, 100)
    assert http.hsts_max_age == 63072000

    path = write(
        tmp_path / "bad.toml",
        """
[http]
request_head_timeout_seconds = 0
tls_handshake_timeout_seconds = "10"
max_connections = -1
max_connections_per_address = 0
hsts_max_age_seconds = -5
keepalive = 3
""",
    )
    with pytest.raises(ConfigError) as caught:
        load(path, tmp_path)
    errors = [e for e in caught.value.errors if e.startswith("http")]
    assert errors == [
        "http.request_head_timeout_seconds: from more than 0 to 3600 seconds",
        "http.tls_handshake_timeout_seconds: expected int/float, got '10'",
        "http.hsts_max_age_seconds: must not be negative (0 clears the policy)",
        "http.max_connections: must be a number 1..1000000",
        "http.max_connections_per_address: must be a number 1..1000000",
        "http: unknown setting 'keepalive'",
    ]


def test_a_postgresql_url_is_accepted_without_an_inline_password(tmp_path):
    path = write_default(tmp_path, KeyType.ECDSA_P256, "CN=Test CA")
    text = path.read_text()
    assert 'database_url = "sqlite:///jitsuin.db"' in text
    url = "postgresql://jitsuin@db.example:5433/pki?schema=ca_one"
    path.write_text(text.replace("sqlite:///jitsuin.db", url))
    config = load(path, tmp_path)
    assert (config.database_url, config.database_dialect) == (url, "postgresql")

    path.write_text(text.replace("sqlite:///jitsuin.db", "postgresql://u:hunter2@db/pki?schema=A"))
    with pytest.raises(ConfigError) as caught:
        load(path, tmp_path)
    assert len(caught.value.errors) == 2, caught.value.errors
    assert "do not write the password inline" in caught.value.errors[0]
    assert "hunter2" not in str(caught.value)
    assert "schema 'A'" in caught.value.errors[1]


def test_a_uuid_policy_arc_is_refused(tmp_path):
    """2.25.<UUID> is a valid OID, but its 128-bit arc makes pkilint refuse every certificate."""
    path = write_default(tmp_path, KeyType.ECDSA_P256, "CN=Test CA")
    text = path.read_text()
    start = text.index('policy_arc = "') + len('policy_arc = "')
    end = text.index('"', start)
    uuid_arc = "2.25.313887755280453357901708092040238446012"
    path.write_text(text[:start] + uuid_arc + text[end:])

    with pytest.raises(ConfigError) as caught:
        load(path, tmp_path)
    (error,) = caught.value.errors
    assert uuid_arc in error and "2^28" in error


def test_invalid_toml_is_one_clear_error(tmp_path):
    path = write(tmp_path / "broken.toml", '[server]\nhttp_listen = "127.0.0.1:8080\n')
    with pytest.raises(ConfigError) as caught:
        load(path, tmp_path)
    assert len(caught.value.errors) == 1
    (error,) = caught.value.errors
    assert error.startswith(f"{path}: not valid TOML:")
    assert "line 2" in error


def test_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "absent.toml", tmp_path)
    assert caught.value.errors == [f"{tmp_path / 'absent.toml'}: no such file"]


# -- jitsuin check-config --------------------------------------------------------------------------
def test_check_config_lists_every_error_and_exits_2(tmp_path, capsys):
    path = many_mistakes(tmp_path)
    assert main(["check-config", str(path)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: {len(MANY_MISTAKES)} error(s)" in err
    for fragment in MANY_MISTAKES:
        assert fragment in err
    assert "Traceback" not in err


def test_check_config_says_ok_for_a_good_file(tmp_path, capsys):
    path = write_default(tmp_path / "home", KeyType.ECDSA_P384, "CN=Test CA")
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{path}: OK"
    assert err == ""


def test_check_config_finds_the_config_in_home(tmp_path, capsys):
    home = tmp_path / "home"
    path = write_default(home, KeyType.ECDSA_P384, "CN=Test CA")
    assert main(["--home", str(home), "check-config"]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: OK"


def test_check_config_reports_a_missing_passphrase(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JITSUIN_CA_PASSPHRASE", raising=False)
    path = write_default(tmp_path / "home", KeyType.ECDSA_P384, "CN=Test CA")
    text = path.read_text().replace('passphrase_file = "secrets/ca-passphrase"\n', "")
    path.write_text(text)

    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "1 error(s)" in err
    assert "no CA key passphrase" in err and "JITSUIN_CA_PASSPHRASE" in err

    monkeypatch.setenv("JITSUIN_CA_PASSPHRASE", "from the environment")
    assert main(["check-config", str(path)]) == 0


def test_a_token_ca_needs_no_passphrase_until_a_key_file_is_there(tmp_path, capsys, monkeypatch):
    """key_store = "pkcs11": the PIN file opens the token, no passphrase is written or asked for;
    a CA moved to the token with generations whose keys are still files needs it again."""
    monkeypatch.delenv("JITSUIN_CA_PASSPHRASE", raising=False)
    pin = tmp_path / "pin"
    pin.write_text("246810\n")
    pin.chmod(0o600)
    library = Path("/usr/lib/softhsm/libsofthsm2.so")
    assert library.is_file(), "SoftHSM2 is not installed: ./scripts/test installs softhsm2"
    home = tmp_path / "home"
    path = write_default(
        home, KeyType.ECDSA_P384, "CN=Test CA", token=TokenSettings(library, "ca", pin)
    )
    assert not (home / "secrets" / "ca-passphrase").exists()
    config = load(path, home)
    assert (config.ca.key_store, config.ca.pkcs11_token) == ("pkcs11", "ca")
    assert (config.ca.pkcs11_library, config.ca.pkcs11_pin_file) == (library, pin)

    status, said = main(["--home", str(home), "check-config", str(path)]), capsys.readouterr()
    assert status == 0, said.err
    assert said.out.strip().endswith(": OK")

    (home / "keys").mkdir()
    (home / "keys" / "ca-1.key.pem").write_bytes(b"an encrypted PKCS#8 key of generation 1")
    assert main(["--home", str(home), "check-config", str(path)]) == 2
    assert "no CA key passphrase" in capsys.readouterr().err


def test_the_default_documents_the_token_settings(tmp_path):
    text = write_default(tmp_path / "home", KeyType.ECDSA_P384, "CN=Test CA").read_text()
    ca = text.split("\n[ca]\n")[1].split("\n[ra]\n")[0]
    for key in ("key_store", "pkcs11_library", "pkcs11_token", "pkcs11_pin_file", "SOFTHSM2_CONF"):
        assert key in ca, key


def test_check_config_as_a_process(tmp_path):
    bad = many_mistakes(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "jitsuin.server", "check-config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    for fragment in MANY_MISTAKES:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr

    broken = write(tmp_path / "broken.toml", "= nonsense")
    result = subprocess.run(
        [sys.executable, "-m", "jitsuin.server", "check-config", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "1 error(s)" in result.stderr and "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_warns_of_settings_that_weaken_the_ca(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JITSUIN_ALLOW_TEST_MODE", raising=False)
    path = write_default(tmp_path / "home", KeyType.ECDSA_P384, "CN=Test CA")
    text = path.read_text().replace("two_person_rule = true", "two_person_rule = false")
    path.write_text(text)
    assert main(["check-config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{path}: OK"
    assert "WARNING: [ra] two_person_rule = false: one person may enter, review and approve" in err

    # A test-mode knob is an error unless the environment allows it, then a warning.
    path.write_text(text + "\n[acme.test]\nvalidation_always_succeeds = true\n")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "acme.test: test-mode knobs (validation_always_succeeds = true) are refused" in err
    monkeypatch.setenv("JITSUIN_ALLOW_TEST_MODE", "1")
    assert main(["check-config", str(path)]) == 0
    err = capsys.readouterr().err
    assert "WARNING: TEST MODE (JITSUIN_ALLOW_TEST_MODE=1): [acme.test] validation_always" in err


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ("pin_ttl_hours = 336", "ra.pin_ttl_hours"),
        ("max_attempts = 5", "ra.max_attempts"),
        ("smtp_port = 25", "mail.smtp_port"),
    ],
)
def test_a_number_past_any_setting_is_a_config_error(tmp_path, edit, key):
    """A number too large for a duration or a column is a listed mistake, not an
    OverflowError when the server starts or first uses it."""
    home = tmp_path / "home"
    path = write_default(home, KeyType.ECDSA_P256, "CN=Test CA,C=JP")
    text = path.read_text(encoding="utf-8")
    assert text.count(edit) == 1, edit
    name = edit.split(" = ")[0]
    path.write_text(text.replace(edit, f"{name} = 99999999999999999999"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path, home)
    assert caught.value.errors == [f"{key}: must be a number 1..1000000"]

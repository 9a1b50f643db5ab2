"""``jitsuin backup`` and ``jitsuin restore`` (server/backup.py): a round trip of a serving CA, a
backup taken under load that keeps every application acknowledged before it began, backups
tampered with three ways that restore refuses before writing anything, and the PostgreSQL
procedure (``backup --files-only``, pg_dump, pg_restore, ``restore``)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

JITSUIN = str(Path(sys.executable).parent / "jitsuin")


def jitsuin(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JITSUIN, *map(str, args)], capture_output=True, text=True)


def test_round_trip_while_serving(live_jitsuin, tmp_path, snapshot):
    home = tmp_path / "ca"
    with live_jitsuin.server(home) as server:
        server.enrolled(tmp_path / "one")
        server.enrolled(tmp_path / "two")
        before = snapshot(server.database)
        out = server.cli("backup", str(tmp_path / "backup"))
        assert "audit head entry" in out
    restored = tmp_path / "restored"
    result = jitsuin("--home", restored, "restore", tmp_path / "backup")
    assert result.returncode == 0, result.stderr
    assert "verified: CA generation 1: the key matches its certificate" in result.stdout
    after = snapshot(restored / "jitsuin.db")
    assert after.certificates == before.certificates >= 2  # and the HTTPS certificate
    assert [e.hash for e in after.audit] == [e.hash for e in before.audit]
    assert after.generations == before.generations
    for name in ("keys/ca-1.key.pem", "secrets/ra.key", "secrets/ca-passphrase", "jitsuin.toml"):
        assert (restored / name).read_bytes() == (home / name).read_bytes(), name
        assert (restored / name).stat().st_mode & 0o077 == 0, name
    verified = jitsuin("--home", restored, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    shown = jitsuin("--home", restored, "ca", "show")
    assert shown.returncode == 0 and "generation 1" in shown.stdout


def test_a_backup_under_load_keeps_everything_acknowledged_before_it(live_jitsuin, tmp_path):
    """Applications are entered through the operator API without pause while the backup runs;
    every one acknowledged (201) before the backup started is in the restored store."""
    home = tmp_path / "ca"
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    with live_jitsuin.server(home) as server:

        def enter() -> None:
            n = 0
            try:
                while not stop.is_set():
                    n += 1
                    created = server.ok(
                        "POST",
                        "/ra/applications",
                        "alice",
                        {
                            "profile": "general",
                            "familyName": "Sato",
                            "givenName": "Ken",
                            "email": f"ken.{n}@example.com",
                            "qualificationGroup": "member",
                            "qualificationNumber": f"AB-{n:06d}",
                            "postalAddress": "1-1 Chiyoda, Tokyo",
                            "dateOfBirth": "1990-01-01",
                            "billing": {"addressee": "self"},
                        },
                    )
                    with lock:
                        acknowledged.append(created["id"])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=enter) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            while True:  # wait until the load has acknowledged something (no time bound)
                with lock:
                    if len(acknowledged) >= 30 or errors:
                        break
                stop.wait(0.05)
            with lock:
                before = list(acknowledged)
            out = server.cli("backup", str(tmp_path / "backup"))
            with lock:
                during = len(acknowledged) - len(before)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert not errors, errors
    assert "audit head entry" in out
    result = jitsuin("--home", tmp_path / "restored", "restore", tmp_path / "backup")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "restored" / "jitsuin.db") as db:
        restored = {row[0] for row in db.execute("SELECT id FROM applications")}
    missing = [i for i in before if i not in restored]
    assert not missing, f"{len(missing)} acknowledged applications lost: {missing[:5]}"
    assert len(before) >= 30
    # What the load acknowledged while the backup ran is reported, not asserted (no timing).
    print(f"{len(before)} acknowledged before the backup, {during} while it ran")


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory, make_csr, subject_record) -> Path:
    """An idle CA with one issued certificate, and its backup in ``backup/`` beside it."""
    root = tmp_path_factory.mktemp("backed-up")
    home = root / "ca"
    assert jitsuin("--home", home, "init").returncode == 0
    csr, record = root / "x.csr", root / "x.json"
    csr.write_bytes(make_csr(ec.generate_private_key(ec.SECP256R1())))
    record.write_text(json.dumps(subject_record()))
    issued = jitsuin(
        "--home", home, "issue", "--csr", csr, "--subject", record, "--profile", "general"
    )
    assert issued.returncode == 0, issued.stderr
    made = jitsuin("--home", home, "backup", root / "backup")
    assert made.returncode == 0, made.stderr
    return root / "backup"


def _copy(backup: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "backup"
    subprocess.run(["cp", "-a", str(backup), str(copy)], check=True)
    return copy


def _reseal(backup: Path, name: str) -> None:
    """Write the manifest's sum of ``name`` again, as a forger who has it would."""
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256((backup / name).read_bytes()).hexdigest()
    (backup / "manifest.json").write_text(json.dumps(manifest))


def _refused(backup: Path, tmp_path: Path, expected: str) -> None:
    target = tmp_path / "restored"
    result = jitsuin("--home", target, "restore", backup)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert not target.exists(), "restore wrote before it had verified"


def test_a_changed_file_is_refused(backed_up, tmp_path):
    backup = _copy(backed_up, tmp_path)
    key = backup / "keys" / "ca-1.key.pem"
    key.write_bytes(key.read_bytes().replace(b"A", b"B", 1))
    _refused(backup, tmp_path, "keys/ca-1.key.pem: SHA-256 differs from the manifest")


def test_an_added_or_missing_file_is_refused(backed_up, tmp_path):
    backup = _copy(backed_up, tmp_path)
    (backup / "keys" / "extra.pem").write_text("x")
    (backup / "secrets" / "ra.key").unlink()
    _refused(backup, tmp_path, "keys/extra.pem: not in the manifest")
    _refused(backup, tmp_path, "secrets/ra.key: missing")


def test_a_rewritten_audit_log_is_refused_even_with_a_resealed_manifest(backed_up, tmp_path):
    backup = _copy(backed_up, tmp_path)
    with sqlite3.connect(backup / "jitsuin.db") as db:
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    _reseal(backup, "jitsuin.db")
    _refused(backup, tmp_path, "the audit log is broken")


def test_a_swapped_ca_key_is_refused_even_with_a_resealed_manifest(backed_up, tmp_path):
    backup = _copy(backed_up, tmp_path)
    passphrase = (backup / "secrets" / "ca-passphrase").read_bytes().strip()
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    (backup / "keys" / "ca-1.key.pem").write_bytes(other)
    _reseal(backup, "keys/ca-1.key.pem")
    _refused(backup, tmp_path, "CA generation 1:")


def test_postgresql_round_trip_with_pg_dump(tmp_path, postgres_schema, make_csr, subject_record):
    home = tmp_path / "ca"
    assert jitsuin("--home", home, "init").returncode == 0
    # The same CA moved onto PostgreSQL: a fresh home whose configuration names the schema.
    config = home / "jitsuin.toml"
    for leftover in [*home.glob("jitsuin.db*"), *home.glob("keys/*")]:
        leftover.unlink()
    config.write_text(config.read_text().replace("sqlite:///jitsuin.db", postgres_schema.url))
    assert jitsuin("--home", home, "init").returncode == 0
    csr, record = tmp_path / "x.csr", tmp_path / "x.json"
    csr.write_bytes(make_csr(ec.generate_private_key(ec.SECP256R1())))
    record.write_text(json.dumps(subject_record()))
    issued = jitsuin(
        "--home", home, "issue", "--csr", csr, "--subject", record, "--profile", "general"
    )
    assert issued.returncode == 0, issued.stderr

    refused = jitsuin("--home", home, "backup", tmp_path / "nope")
    assert refused.returncode != 0 and "pg_dump" in refused.stderr
    made = jitsuin("--home", home, "backup", "--files-only", tmp_path / "backup")
    assert made.returncode == 0, made.stderr
    # The database, after the files (docs/operations.md), then lost.
    base = postgres_schema.base_url
    dump = tmp_path / "jitsuin.dump"
    subprocess.run(
        ["pg_dump", "--format=custom", f"--schema={postgres_schema.name}", f"--file={dump}", base],
        check=True,
    )
    before = postgres_schema.execute("SELECT count(*) FROM certificates")[0][0]
    postgres_schema.drop()
    subprocess.run(["pg_restore", "--exit-on-error", f"--dbname={base}", str(dump)], check=True)

    restored = tmp_path / "restored"
    result = jitsuin("--home", restored, "restore", tmp_path / "backup")
    assert result.returncode == 0, result.stderr
    assert "pg_restore" in result.stdout
    assert postgres_schema.execute("SELECT count(*) FROM certificates")[0][0] == before == 1
    verified = jitsuin("--home", restored, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert (
        urllib.parse.urlsplit(postgres_schema.url).query in (restored / "jitsuin.toml").read_text()
    )

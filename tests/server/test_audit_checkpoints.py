"""Signed audit checkpoints (server/checkpoints.py): someone who can write the database removes
the newest audit entries and rolls the recorded head back with them. The hash chain alone still
verifies; the newest checkpoint, signed with a key outside the database, does not let it pass,
in ``jitsuin audit verify`` nor in ``jitsuin restore``. A checkpoint file edited by hand is
refused too."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

JITSUIN = str(Path(sys.executable).parent / "jitsuin")


def jitsuin(*argv: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JITSUIN, *map(str, argv)], capture_output=True, text=True)


def _issue(home: Path, make_csr, subject_record, n: int) -> None:
    csr, record = home / f"{n}.csr", home / f"{n}.json"
    csr.write_bytes(make_csr(ec.generate_private_key(ec.SECP256R1())))
    record.write_text(json.dumps(subject_record(subscriber_id=f"s{n}")))
    issued = jitsuin(
        "--home", home, "issue", "--csr", csr, "--subject", record, "--profile", "general"
    )
    assert issued.returncode == 0, issued.stderr


def _roll_back(home: Path, keep: int) -> None:
    """Delete the entries after ``keep`` and set the head to entry ``keep``, as an attacker
    with write access to the database file can."""
    db = sqlite3.connect(home / "jitsuin.db", isolation_level=None)
    try:
        for trigger in ("audit_log_no_delete", "audit_head_forward_only"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute("DELETE FROM signing_intents")
        db.execute("DELETE FROM certificates")
        db.execute("DELETE FROM audit_log WHERE seq > ?", (keep,))
        (hash_,) = db.execute("SELECT hash FROM audit_log WHERE seq = ?", (keep,)).fetchone()
        db.execute("UPDATE audit_head SET seq = ?, hash = ?", (keep, hash_))
    finally:
        db.close()


def test_a_rolled_back_log_fails_against_the_checkpoint(tmp_path, make_csr, subject_record):
    home = tmp_path / "ca"
    assert jitsuin("--home", home, "init").returncode == 0
    _issue(home, make_csr, subject_record, 1)
    _issue(home, make_csr, subject_record, 2)
    made = jitsuin("--home", home, "backup", tmp_path / "backup")  # writes a checkpoint first
    assert made.returncode == 0, made.stderr
    verified = jitsuin("--home", home, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "checkpoint: entry 3 of" in verified.stdout
    assert (home / "keys" / "audit-checkpoint.key.pem").stat().st_mode & 0o077 == 0

    _roll_back(home, keep=1)
    broken = jitsuin("--home", home, "audit", "verify")
    assert broken.returncode == 1
    assert "ends before entry 3" in broken.stderr and "entries were removed" in broken.stderr

    # The same rollback inside a backup, with its manifest resealed: restore refuses it too.
    backup = tmp_path / "backup"
    _roll_back(backup, keep=1)
    manifest = json.loads((backup / "manifest.json").read_text())
    manifest["audit_head"] = {"seq": 1, "hash": ""}
    manifest["files"]["jitsuin.db"] = hashlib.sha256(
        (backup / "jitsuin.db").read_bytes()
    ).hexdigest()
    (backup / "manifest.json").write_text(json.dumps(manifest))
    refused = jitsuin("--home", tmp_path / "restored", "restore", backup)
    assert refused.returncode != 0
    assert "entries were removed" in refused.stderr, refused.stderr
    assert not (tmp_path / "restored").exists()


def test_an_edited_checkpoint_is_refused(tmp_path):
    home = tmp_path / "ca"
    assert jitsuin("--home", home, "init").returncode == 0
    assert jitsuin("--home", home, "backup", tmp_path / "backup").returncode == 0
    path = home / "audit-checkpoints.jsonl"
    entry = json.loads(path.read_text().splitlines()[-1])
    entry["seq"] = 0
    path.write_text(path.read_text() + json.dumps(entry) + "\n")
    broken = jitsuin("--home", home, "audit", "verify")
    assert broken.returncode == 1
    assert "does not verify" in broken.stderr

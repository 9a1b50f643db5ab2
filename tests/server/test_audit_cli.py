"""`jitsuin audit verify` detects a changed, removed or reordered audit entry and names it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

JITSUIN = str(Path(sys.executable).parent / "jitsuin")


def jitsuin(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JITSUIN, *map(str, argv)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, make_csr, subject_record) -> Path:
    """A home with a CA and three issued certificates: five audit entries."""
    home = tmp_path_factory.mktemp("audit")
    assert jitsuin("--home", home, "init").returncode == 0
    for n in range(3):
        csr, record = home / f"{n}.csr", home / f"{n}.json"
        csr.write_bytes(make_csr(ec.generate_private_key(ec.SECP256R1())))
        record.write_text(json.dumps(subject_record(subscriber_id=f"s{n}")))
        issued = jitsuin(
            "--home",
            home,
            "issue",
            "--csr",
            csr,
            "--subject",
            record,
            "--profile",
            "general",
            "--out",
            home / f"{n}.pem",
        )
        assert issued.returncode == 0, issued.stderr
    return home


@pytest.fixture
def home(pristine, tmp_path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(pristine, copy)
    return copy


def tamper(home: Path, *statements: str) -> None:
    db = sqlite3.connect(home / "jitsuin.db", isolation_level=None)
    try:
        db.execute("DROP TRIGGER audit_log_no_update")  # an attacker with file access
        db.execute("DROP TRIGGER audit_log_no_delete")
        for statement in statements:
            db.execute(statement)
    finally:
        db.close()


def test_an_intact_log_verifies(home):
    result = jitsuin("--home", home, "audit", "verify")
    assert result.returncode == 0, result.stderr
    assert "audit log OK: 4 entries" in result.stdout


def test_the_database_refuses_to_edit_the_log(home):
    db = sqlite3.connect(home / "jitsuin.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_log WHERE seq = 2")
    db.close()


@pytest.mark.parametrize(
    ("statements", "named"),
    [
        (["UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"], "entry 3"),
        (["UPDATE audit_log SET details = '{}' WHERE seq = 2"], "entry 2"),
        (["DELETE FROM audit_log WHERE seq = 2"], "entry 3"),  # the gap shows at the next one
        (["DELETE FROM audit_log WHERE seq = 4"], "entry 4 removed"),  # the newest: the head
        (
            [  # swap the contents of entries 2 and 3 (a reordering)
                "UPDATE audit_log SET seq = -2 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = -2",
            ],
            "entry 2",
        ),
    ],
    ids=["changed-actor", "changed-details", "removed", "removed-newest", "reordered"],
)
def test_tampering_is_detected_and_named(home, statements, named):
    tamper(home, *statements)
    result = jitsuin("--home", home, "audit", "verify")
    assert result.returncode == 1
    assert "audit log BROKEN" in result.stderr and named in result.stderr, result.stderr

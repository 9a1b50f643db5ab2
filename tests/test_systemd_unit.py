"""contrib/systemd/jitsuin.service: ``systemd-analyze verify`` finds nothing to say about it, and
``systemd-analyze security`` (offline: no systemd needs to run) rates its exposure at most 2.0
("OK"); the unit keeps the least-privilege settings docs/operations.md promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[1] / "contrib" / "systemd" / "jitsuin.service"
INSTALLED = "/opt/jitsuin/bin/jitsuin"


def _unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's jitsuin (verify checks that the command
    exists; /opt/jitsuin is where docs/operations.md installs it)."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED} " in text
    unit = tmp_path / "jitsuin.service"
    unit.write_text(text.replace(INSTALLED, str(Path(sys.executable).parent / "jitsuin")))
    return unit


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    result = subprocess.run(
        ["systemd-analyze", "verify", str(_unit_here(tmp_path))], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_unit_is_least_privilege(tmp_path):
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--threshold=20",
            str(_unit_here(tmp_path)),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    score = re.search(r"Overall exposure level for jitsuin.service: (\d+\.\d+)", result.stdout)
    assert score and float(score.group(1)) <= 2.0, result.stdout
    settings = dict(
        line.split("=", 1) for line in UNIT.read_text().splitlines() if re.match(r"^\w+=", line)
    )
    assert settings["ProtectSystem"] == "strict"
    assert settings["ReadWritePaths"] == "/var/lib/jitsuin"
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["PrivateTmp"] == "yes"
    assert settings["CapabilityBoundingSet"] == "" and settings["AmbientCapabilities"] == ""
    assert settings["Restart"] == "on-failure"
    assert settings["User"] == "jitsuin"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"

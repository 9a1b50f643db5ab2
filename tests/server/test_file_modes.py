"""The data directory is its owner's alone (server/permissions.py): `jitsuin init` and `jitsuin
serve`, started with the usual umask 022, make it 0700 and the database files 0600, and report
and narrow a wider mode found at start on what jitsuin made, and only report it on what the
operator made. Real processes, real files, real modes."""

from __future__ import annotations

import contextlib
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration
from jitsuin.server import permissions


def jitsuin(home: Path, *args: str) -> list[str]:
    """The command line of ``jitsuin --home HOME ARGS`` under umask 022 (what most shells have)."""
    script = shutil.which("jitsuin") or str(Path(sys.executable).parent / "jitsuin")
    return ["sh", "-c", 'umask 022 && exec "$0" "$@"', script, "--home", str(home), *args]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listen_on(home: Path, http_port: int, https_port: int) -> None:
    """Edit the configuration `jitsuin init` wrote, as an operator would (its mode is kept); the
    metrics listener off, since the default port may be another test server's."""
    path = home / configuration.CONFIG_NAME
    text = path.read_text()
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{http_port}")
    text = text.replace("127.0.0.1:8443", f"127.0.0.1:{https_port}")
    path.write_text(text + '\n[metrics]\nlisten = ""\n')


@contextlib.contextmanager
def serving(home: Path, http_port: int) -> Iterator[Path]:
    """`jitsuin serve` until it answers /health; yields its log file."""
    log = home.parent / f"{home.name}.serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(jitsuin(home, "serve"), stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            assert process.poll() is None, log.read_text()
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=2),
            ):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not start:\n" + log.read_text())
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_init_and_serve_make_the_data_directory_0700_and_its_files_0600(tmp_path, free_port):
    home = tmp_path / "home"
    subprocess.run(jitsuin(home, "init"), check=True, capture_output=True)
    assert mode(home) == 0o700
    assert mode(home / "jitsuin.db") == 0o600
    assert mode(home / "jitsuin.toml") == 0o600
    for directory in ("keys", "secrets"):
        assert mode(home / directory) == 0o700
        assert {mode(path) for path in (home / directory).iterdir()} == {0o600}

    http_port = free_port()
    listen_on(home, http_port, free_port())
    with serving(home, http_port) as log:
        # While it serves, SQLite's write-ahead log and shared-memory index hold personal data
        # too; the server's lock file names its pid.
        for name in ("jitsuin.db-wal", "jitsuin.db-shm", "jitsuin.db.serve-lock"):
            assert mode(home / name) == 0o600, name
        assert mode(home / "tls") == 0o700
        assert {mode(path) for path in (home / "tls").iterdir()} == {0o600}
        assert mode(home) == 0o700
    assert "WARNING" not in log.read_text()


def test_wider_modes_found_at_start_are_reported_and_narrowed_where_jitsuin_made_them(
    tmp_path, free_port
):
    home = tmp_path / "home"
    subprocess.run(jitsuin(home, "init"), check=True, capture_output=True)
    http_port = free_port()
    listen_on(home, http_port, free_port())
    with serving(home, http_port):
        pass
    # As an older jitsuin left them, or a careless restore from a backup:
    widened = {".": 0o755, "jitsuin.db": 0o644, "keys": 0o755, "tls/server.key": 0o644}
    for name, wide in widened.items():
        (home / name).chmod(wide)
    (home / "jitsuin.toml").chmod(0o644)  # the operator's file

    with serving(home, http_port) as log:
        output = log.read_text()
        assert mode(home / "jitsuin.db-wal") == 0o600  # made after the database was narrowed
    for name, wide in widened.items():
        narrow = 0o700 if wide == 0o755 else 0o600
        assert mode(home / name) == narrow, name
        where = home if name == "." else name
        assert f"WARNING jitsuin.files {where} had mode {wide:04o}: changed to {narrow:04o}" in (
            output
        ), output
    assert mode(home / "jitsuin.toml") == 0o644
    assert "jitsuin.toml has mode 0644: other users can use it; not changed" in output


def test_a_database_outside_the_data_directory_is_reported_not_changed(tmp_path):
    home = tmp_path / "home"
    path = configuration.write_default(home, KeyType.ECDSA_P256, "CN=x")
    elsewhere = tmp_path / "db" / "jitsuin.db"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"")
    elsewhere.chmod(0o644)
    path.write_text(
        path.read_text().replace("sqlite:///jitsuin.db", f"sqlite:///{elsewhere}"),
    )
    (home / "keys").mkdir(mode=0o700)
    key = home / "keys" / "ca-1.key.pem"
    key.write_bytes(b"")
    key.chmod(0o640)
    home.chmod(0o711)
    config = configuration.load(path, home)

    warnings = permissions.secure_data_directory(config)

    assert warnings == [
        f"{home} had mode 0711: changed to 0700",
        f"{elsewhere} has mode 0644: other users can use it; not changed (not made by "
        "jitsuin): chmod 600 it",
        "keys/ca-1.key.pem had mode 0640: changed to 0600",
    ]
    assert (mode(home), mode(elsewhere), mode(key)) == (0o700, 0o644, 0o600)
    assert permissions.secure_data_directory(config) == [
        f"{elsewhere} has mode 0644: other users can use it; not changed (not made by "
        "jitsuin): chmod 600 it",
    ]

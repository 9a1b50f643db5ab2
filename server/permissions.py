"""The data directory is its owner's alone: the database holds personal data (names, addresses,
e-mail addresses), keys/ the CA key, secrets/ the passphrase and the RA key.

``jitsuin init`` and ``jitsuin serve`` create everything with umask 077 (directories 0700, files
0600, SQLite's -wal and -shm files included, which SQLite creates with the database's mode), and
at start look for wider modes: what jitsuin made is reported and narrowed; what the operator made
(the configuration file, a database or TLS key outside the data directory) is reported only.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from jitsuin.server.config import Config

OTHERS = stat.S_IRWXG | stat.S_IRWXO
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal", ".serve-lock")
OWN_DIRECTORIES = ("keys", "secrets", "tls")


def restrict_new_files() -> None:
    """Whatever this process creates from now on is readable by its owner only."""
    os.umask(0o077)


def secure_data_directory(config: Config) -> list[str]:
    """A warning line for each file or directory of ``config`` that other users may read, write
    or enter (the path and its mode); those jitsuin made are changed to 0700 or 0600."""
    home = config.home.absolute()
    warnings = []
    for path, own in _paths(config):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if not mode & OTHERS:
            continue
        wanted = mode & ~OTHERS
        where = path.relative_to(home) if path.is_relative_to(home) and path != home else path
        if not own:
            warnings.append(
                f"{where} has mode {mode:04o}: other users can use it; not changed (not made "
                f"by jitsuin): chmod {wanted:o} it"
            )
            continue
        try:
            path.chmod(wanted)
        except OSError as exc:
            warnings.append(f"{where} has mode {mode:04o} and could not be changed: {exc.strerror}")
        else:
            warnings.append(f"{where} had mode {mode:04o}: changed to {wanted:04o}")
    return warnings


def _paths(config: Config) -> Iterator[tuple[Path, bool]]:
    """Every path to check, and whether jitsuin made it (so may change its mode)."""
    home = config.home.absolute()
    yield home, True
    if config.source is not None:
        yield config.source, False
    if config.database_dialect == "sqlite":
        database = config.database_path.absolute()
        inside = database.is_relative_to(home)
        yield database, inside
        for suffix in SQLITE_COMPANIONS:
            yield database.with_name(database.name + suffix), inside
    for name in OWN_DIRECTORIES:
        directory = home / name
        yield directory, True
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                yield path, True
    if config.server.tls_key_file is not None:
        yield config.server.tls_key_file, False

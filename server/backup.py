"""``jitsuin backup DEST`` and ``jitsuin restore SRC --home NEW`` (docs/operations.md, "Backup
and restore").

A backup is a directory: the configuration, the data directory's ``keys/`` (the CA keys,
encrypted with the passphrase, and the audit checkpoint key), ``secrets/`` and ``tls/``, the
audit checkpoints (server/checkpoints.py; one is written first), the SQLite database as one
self-contained file, and ``manifest.json`` with the SHA-256 of every file and the audit log's
head at the snapshot. The database is copied with SQLite's online backup API in one step: a
consistent snapshot, taken while ``jitsuin serve`` runs, of everything committed when it
starts, hence of every request acknowledged before the backup began. With PostgreSQL the
database is not copied (``--files-only``); ``pg_dump`` takes it, after the files, and restore
checks that the dump holds the audit head the files backup saw.

Restore checks everything before it writes anything: the manifest's sums (no file changed,
missing or added), the audit log's hash chain and its head against the manifest, and that each
CA generation's key opens and is the key of that generation's certificate; and the chain must hold
the newest signed audit checkpoint. Then it writes the
files into a new data directory.

A backup holds the CA key passphrase and the RA secret in clear beside the encrypted keys: keep
it as you keep the CA key (encrypted, offline, two people).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jitsuin.ca.errors import CAError
from jitsuin.server import checkpoints
from jitsuin.server import config as configuration
from jitsuin.server.ca_keys import load_generation
from jitsuin.server.cli_errors import CLIError
from jitsuin.server.config import Config, ConfigError
from jitsuin.server.storage import AuditChainBroken, AuditEntry, Store, open_store

MANIFEST = "manifest.json"
FORMAT = 1
DATABASE = "jitsuin.db"
# The data directory's folders a backup takes whole (lock files aside: tls/lock).
FOLDERS = ("keys", "secrets", "tls")

Loader = Callable[[argparse.Namespace], Config]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _new_directory(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise CLIError(f"{path} exists and is not an empty directory")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as handle:
        shutil.copyfileobj(handle, out)


async def _last_entry(store: Store) -> AuditEntry | None:
    last, after = None, 0
    while batch := await store.audit_log(after, limit=1000):
        last, after = batch[-1], batch[-1].seq
    return last


def _snapshot_sqlite(database: Path, target: Path) -> tuple[int, str]:
    """Copy ``database`` to ``target`` with the online backup API, in one step (a consistent
    snapshot under a read transaction: writers go on meanwhile in WAL mode), as a single file
    with no WAL; returns the copy's audit head (seq, hash)."""
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy, pages=-1)
        copy.execute("PRAGMA journal_mode=DELETE")
        head = copy.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    finally:
        copy.close()
        source.close()
    return (int(head[0]), str(head[1])) if head else (0, "")


async def run_backup(args: argparse.Namespace, load: Loader) -> int:
    config = load(args)
    dest = Path(args.dest).absolute()
    sqlite = config.database_dialect == "sqlite"
    if not sqlite and not args.files_only:
        raise CLIError(
            "the store is PostgreSQL: back up its database with pg_dump and the files with "
            "`jitsuin backup --files-only DEST` (docs/operations.md)"
        )
    if config.source is None:
        raise CLIError("no configuration file to back up")
    if config.source.parent.resolve() != config.home.resolve():
        raise CLIError(
            f"{config.source} is outside the data directory {config.home}: a backup keeps the "
            "configuration beside the files its relative paths name; back it up by hand"
        )
    _new_directory(dest)
    store = await open_store(config)
    try:  # the head as of now, signed, goes with the backup (server/checkpoints.py)
        await checkpoints.write(config.home, store, dt.datetime.now(dt.UTC))
    finally:
        await store.close()
    files: dict[str, Path] = {"jitsuin.toml": config.source}
    for folder in FOLDERS:
        for path in sorted((config.home / folder).rglob("*")):
            if path.is_file() and path.name != "lock" and not path.name.endswith(".lock"):
                files[path.relative_to(config.home).as_posix()] = path
    for extra in (checkpoints.FILE,):
        if (config.home / extra).is_file():
            files[extra] = config.home / extra
    for path in _outside(config):
        print(f"WARNING: {path} is outside {config.home} and not in the backup", file=sys.stderr)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": config.database_dialect if sqlite and not args.files_only else None,
    }
    if manifest["database"]:
        seq, head = _snapshot_sqlite(config.database_path, dest / DATABASE)
        manifest["database_file"] = DATABASE
    else:
        store = await open_store(config)
        try:
            last = await _last_entry(store)
        finally:
            await store.close()
        seq, head = (last.seq, last.hash) if last else (0, "")
    manifest["audit_head"] = {"seq": seq, "hash": head}
    for name, path in files.items():
        _copy(path, dest / name)
    manifest["files"] = {
        p.relative_to(dest).as_posix(): _sha256(p) for p in sorted(dest.rglob("*")) if p.is_file()
    }
    fd = os.open(dest / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
        handle.write("\n")
    what = "files only (take the database with pg_dump now)" if args.files_only else "database"
    print(f"backup {dest}: {len(manifest['files'])} files, {what}, audit head entry {seq}")
    return 0


def _outside(config: Config) -> list[Path]:
    """Files the configuration names that a backup of the data directory does not take."""
    named = [
        config.ca.passphrase_file,
        config.ca.pkcs11_pin_file,
        config.ra.secret_file,
        config.server.tls_cert_file,
        config.server.tls_key_file,
    ]
    home = config.home.resolve()
    return [p for p in named if p is not None and not p.resolve().is_relative_to(home)]


# -- restore --------------------------------------------------------------------------------------
def _check_manifest(src: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise CLIError(f"{src / MANIFEST}: not a readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CLIError(f"{src / MANIFEST}: not a jitsuin backup manifest of format {FORMAT}")
    listed: dict[str, str] = manifest.get("files") or {}
    present = {
        p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file() and p.name != MANIFEST
    }
    problems = [f"{name}: missing" for name in sorted(set(listed) - present)]
    problems += [f"{name}: not in the manifest" for name in sorted(present - set(listed))]
    problems += [
        f"{name}: SHA-256 differs from the manifest"
        for name in sorted(set(listed) & present)
        if _sha256(src / name) != listed[name]
    ]
    if problems:
        raise CLIError("the backup does not match its manifest:\n" + _bullets(problems))
    return manifest


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"  - {line}" for line in lines)


async def _check_store(config: Config, manifest: dict[str, Any]) -> list[str]:
    """The audit chain and head, and every generation's key against its certificate."""
    head = manifest.get("audit_head") or {}
    try:
        store = await open_store(config)
    except Exception as exc:
        raise CLIError(f"cannot open the backed-up database: {exc}") from None
    try:
        try:
            count = await store.verify_audit_chain()
            checkpoint = await checkpoints.check(config.home, store)
        except AuditChainBroken as exc:
            raise CLIError(f"the audit log is broken: {exc}") from None
        seq = int(head.get("seq", 0))
        if seq:
            found = await store.audit_log(seq - 1, limit=1)
            if not found or found[0].seq != seq or found[0].hash != head.get("hash"):
                raise CLIError(
                    f"the audit log does not hold the head the backup recorded (entry {seq}): "
                    "a database older than the backup, or another CA's"
                )
        if manifest.get("database") and await store.audit_log(seq, limit=1):
            raise CLIError(f"the audit log goes on past the head the backup recorded ({seq})")
        notes = [f"audit log: {count} entries, hash chain intact, head entry {seq}"]
        if checkpoint is not None:
            notes.append(f"audit log: holds the signed checkpoint of entry {checkpoint.seq}")
        records = await store.generations()
    finally:
        await store.close()
    for record in records:
        try:
            generation = load_generation(config, record)
        except (CAError, ConfigError, ValueError) as exc:
            message = getattr(exc, "message", None) or "; ".join(getattr(exc, "errors", [])) or exc
            raise CLIError(f"CA generation {record.number}: {message}") from None
        notes.append(f"CA generation {generation.number}: the key matches its certificate")
    return notes


async def run_restore(args: argparse.Namespace, home: Path) -> int:
    src = Path(args.src).absolute()
    manifest = _check_manifest(src)
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise CLIError(f"--home {home} exists and is not empty: restore into a new directory")
    try:
        config = configuration.load(src / "jitsuin.toml", src)
    except ConfigError as exc:
        raise CLIError("the backed-up configuration:\n" + _bullets(exc.errors)) from None
    target_database = None
    with tempfile.TemporaryDirectory(prefix="jitsuin-restore-") as staging:
        if manifest.get("database"):
            if not config.database_path.resolve().is_relative_to(src.resolve()):
                raise CLIError(
                    f"database_url names {config.database_path}, outside the backup: make it "
                    "relative (sqlite:///jitsuin.db) in the configuration before restoring"
                )
            target_database = config.database_path.resolve().relative_to(src.resolve())
            staged = Path(staging) / DATABASE
            shutil.copyfile(src / manifest["database_file"], staged)
            config = dataclasses.replace(config, database_url=f"sqlite:///{staged}")
        notes = await _check_store(config, manifest)
    for note in notes:
        print(f"verified: {note}")
    # Verified: now write.
    _new_directory(home)
    for name in manifest["files"]:
        if name == manifest.get("database_file"):
            assert target_database is not None
            _copy(src / name, home / target_database)
        else:
            _copy(src / name, home / name)
    print(f"restored {len(manifest['files'])} files into {home}")
    if not manifest.get("database"):
        print("the database was not in the backup: restore it with pg_restore (or psql) first")
    return 0


def add_parsers(sub: Any, load: Loader, home: Callable[[argparse.Namespace], Path]) -> None:
    p = sub.add_parser(
        "backup", help="copy the database (SQLite, online), configuration, keys and secrets"
    )
    p.add_argument("dest", help="a new (or empty) directory")
    p.add_argument(
        "--files-only",
        action="store_true",
        help="everything but the database (PostgreSQL: take it with pg_dump after this)",
    )
    p.set_defaults(handler=lambda args: run_backup(args, load))
    p = sub.add_parser(
        "restore", help="verify a backup (sums, audit chain, keys), then write it to --home"
    )
    p.add_argument("src", help="a directory written by `jitsuin backup`")
    p.set_defaults(handler=lambda args: run_restore(args, home(args)))

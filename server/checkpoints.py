"""Signed checkpoints of the audit log's head, kept outside the database.

The hash chain and its head row live in the database: whoever can write it can delete the
newest entries, roll the head back, and the chain still verifies. A checkpoint is the head (entry
number and hash) at a moment, signed with an Ed25519 key that is a file of the data directory
(``keys/audit-checkpoint.key.pem``, mode 0600), never in the database, appended to
``audit-checkpoints.jsonl`` beside it, written to the log and counted in the metrics. ``jitsuin
audit verify`` then requires the database's chain to hold the newest checkpoint with a good
signature; so does ``jitsuin restore``. Someone who can write the database but not the data
directory can no longer roll the log back past the newest checkpoint.

``jitsuin serve`` writes one every ``INTERVAL_SECONDS`` when the head has moved, and ``jitsuin
backup`` one before it copies anything. Several processes (``serve --workers N``) append under a
lock on the file.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from jitsuin.server.storage import AuditChainBroken, Store

log = logging.getLogger("jitsuin.audit")

KEY = "keys/audit-checkpoint.key.pem"
FILE = "audit-checkpoints.jsonl"
INTERVAL_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: dt.datetime

    def payload(self) -> bytes:
        return json.dumps(
            {"seq": self.seq, "hash": self.hash, "at": self.at.isoformat()},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()


def _key(home: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The checkpoint key, made on first use (with ``create``)."""
    path = home / KEY
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    except FileNotFoundError:
        if not create:
            raise AuditChainBroken(f"there are audit checkpoints but no key {path}") from None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made by another process meanwhile
            return _key(home)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return key
    if not isinstance(loaded, Ed25519PrivateKey):
        raise AuditChainBroken(f"{path} is not an Ed25519 key")
    return loaded


def newest(home: Path) -> Checkpoint | None:
    """The newest checkpoint in the file whose signature verifies; raise if the newest line
    does not verify (a checkpoint file edited by hand is not silently passed over)."""
    path = home / FILE
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    if not lines:
        return None
    public = _key(home, create=False).public_key()
    try:
        entry = json.loads(lines[-1])
        checkpoint = Checkpoint(
            int(entry["seq"]), str(entry["hash"]), dt.datetime.fromisoformat(entry["at"])
        )
        public.verify(base64.b64decode(entry["signature"]), checkpoint.payload())
    except (ValueError, KeyError, TypeError, InvalidSignature):
        raise AuditChainBroken(
            f"the newest audit checkpoint in {path} does not verify with {home / KEY}"
        ) from None
    return checkpoint


async def _head(store: Store, after: int) -> tuple[int, str] | None:
    last = None
    while batch := await store.audit_log(after, limit=1000):
        last, after = (batch[-1].seq, batch[-1].hash), batch[-1].seq
    return last


async def write(home: Path, store: Store, now: dt.datetime) -> Checkpoint | None:
    """Append a checkpoint of the current head, unless it is the newest one already."""
    previous = newest(home)
    head = await _head(store, previous.seq if previous else 0)
    if head is None:
        return None
    checkpoint = Checkpoint(head[0], head[1], now)
    signature = base64.b64encode(_key(home).sign(checkpoint.payload())).decode()
    line = json.dumps({**json.loads(checkpoint.payload()), "signature": signature}, sort_keys=True)
    fd = os.open(home / FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("audit checkpoint: entry %d, hash %s", checkpoint.seq, checkpoint.hash)
    return checkpoint


async def check(home: Path, store: Store) -> Checkpoint | None:
    """The newest checkpoint, after checking that the store's chain holds it (raise
    ``AuditChainBroken`` otherwise); None when there is none yet."""
    checkpoint = newest(home)
    if checkpoint is None:
        return None
    found = await store.audit_log(checkpoint.seq - 1, limit=1)
    if not found or found[0].seq != checkpoint.seq:
        raise AuditChainBroken(
            f"the audit log ends before entry {checkpoint.seq}, which the checkpoint of "
            f"{checkpoint.at.isoformat()} signed: entries were removed"
        )
    if found[0].hash != checkpoint.hash:
        raise AuditChainBroken(
            f"audit log entry {checkpoint.seq} is not the one the checkpoint of "
            f"{checkpoint.at.isoformat()} signed: the log was rewritten"
        )
    return checkpoint


async def follow(authority: Any) -> None:
    """Run forever in ``jitsuin serve``: a checkpoint every ``INTERVAL_SECONDS`` when the head
    has moved."""
    while True:
        try:
            await write(authority.config.home, authority.store, authority.clock.now())
        except Exception:  # the next round tries again; audit verify still checks the chain
            log.exception("writing the audit checkpoint failed")
        await asyncio.sleep(INTERVAL_SECONDS)

"""Files that hold secrets (CA and responder keys, the HTTPS key): readable by their owner only,
and replaced whole, never half-written."""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write a file readable by its owner only (mode 0600), replacing it atomically. With
    ``exclusive``, FileExistsError instead of replacing: two processes rolling over at once never
    overwrite each other's CA key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if not exclusive:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)

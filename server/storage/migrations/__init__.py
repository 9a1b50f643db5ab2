"""Numbered SQL migrations, ``NNNN_name.<dialect>.sql``, applied in order at start.

Each dialect (``sqlite``, ``postgresql``) has its own files with the same numbers and names, so
the two stores always hold the same schema version (tests/server/test_store_contract.py checks
that every migration has its twin)."""

from __future__ import annotations

import re
from importlib import resources

_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.(?P<dialect>[a-z]+)\.sql")


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, SQL) of the numbered migrations shipped as package data."""
    folder = resources.files("jitsuin.server.storage.migrations")
    found = []
    for item in folder.iterdir():
        match = _MIGRATION_NAME.fullmatch(item.name)
        if match and match.group("dialect") == dialect:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found

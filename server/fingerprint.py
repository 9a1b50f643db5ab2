"""A certificate fingerprint as people compare it: the PIN letter (server/ra/letters.py) and the
step 11 page (server/web/pages.py) print the same rows, so that they are compared row by row."""

from __future__ import annotations


def fingerprint_rows(hex_digest: str) -> list[str]:
    """``AB:CD:…`` in upper case, eight bytes a row (four rows for SHA-256)."""
    pairs = [hex_digest[i : i + 2].upper() for i in range(0, len(hex_digest), 2)]
    return [":".join(pairs[i : i + 8]) for i in range(0, len(pairs), 8)]

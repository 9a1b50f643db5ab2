"""A certificate fingerprint as people compare it: the PIN letter (server/ra/letters.py) and the
step 11 page (server/web/pages.py) print the same rows, so that they are compared row by row;
the command line prints it on one line."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes


def fingerprint_rows(hex_digest: str) -> list[str]:
    """``AB:CD:…`` in upper case, eight bytes a row (four rows for SHA-256)."""
    pairs = [hex_digest[i : i + 2].upper() for i in range(0, len(hex_digest), 2)]
    return [":".join(pairs[i : i + 8]) for i in range(0, len(pairs), 8)]


def colon_fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as ``serve``, ``init`` and ``ca show`` print it: ``AB:CD:…``."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()

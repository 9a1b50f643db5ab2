"""Typed domain errors (docs/architecture.md, house habit 1): the server maps ``CAError.kind`` to
each wire format."""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    BAD_CSR = "bad_csr"  # not a PKCS#10 request, or one that cannot be parsed
    BAD_SIGNATURE = "bad_signature"  # proof of possession fails
    WEAK_ALGORITHM = "weak_algorithm"  # SHA-1 or weaker (SEED-R3)
    BAD_PUBLIC_KEY = "bad_public_key"  # key type, size, exponent or curve not accepted
    KEY_REUSED = "key_reused"  # SEED-R2
    BAD_SUBJECT = "bad_subject"  # the vetted record does not fit the profile
    UNKNOWN_PROFILE = "unknown_profile"
    CUTOFF = "cutoff"  # the certificate would outlive its issuer (SEED-R15)
    LINT = "lint"  # the pre-issuance lint found an error in the draft
    LINT_UNAVAILABLE = "lint_unavailable"  # the lint could not run, so nothing was signed
    BAD_KEY_FILE = "bad_key_file"  # CA key file missing, unreadable, wrong passphrase
    BAD_CONFIG = "bad_config"


class CAError(Exception):
    """A refusal with a precise, client-safe message."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message

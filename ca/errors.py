"""Typed domain errors (docs/architecture.md, house habit 1). Each kind says whose fault it is
(``Blame``); the server turns the blame into a status, a Retry-After and whether the client reads
the detail, in one place (server/error_map.py), and each front end renders that decision in its
wire format."""

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


class Blame(enum.Enum):
    """Whose fault a refusal is, which decides what the client is told."""

    CLIENT = "client"  # the request cannot succeed as sent: the client may fix it
    TRANSIENT = "transient"  # the CA cannot serve it now; the same request may succeed later
    SERVER = "server"  # the CA's own fault: the client can do nothing about it


BLAME: dict[Kind, Blame] = {
    Kind.BAD_CSR: Blame.CLIENT,
    Kind.BAD_SIGNATURE: Blame.CLIENT,
    Kind.WEAK_ALGORITHM: Blame.CLIENT,
    Kind.BAD_PUBLIC_KEY: Blame.CLIENT,
    Kind.KEY_REUSED: Blame.CLIENT,
    Kind.BAD_SUBJECT: Blame.CLIENT,
    Kind.UNKNOWN_PROFILE: Blame.CLIENT,
    # The CA must roll over (SEED-R15); the request succeeds once it has.
    Kind.CUTOFF: Blame.TRANSIENT,
    # The lint refused the CA's own draft: the CA built a certificate it must not sign.
    Kind.LINT: Blame.SERVER,
    Kind.LINT_UNAVAILABLE: Blame.TRANSIENT,
    Kind.BAD_KEY_FILE: Blame.SERVER,
    Kind.BAD_CONFIG: Blame.SERVER,
}
assert set(BLAME) == set(Kind), set(Kind) - set(BLAME)


class CAError(Exception):
    """A refusal with a precise, client-safe message."""

    def __init__(self, kind: Kind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def blame(self) -> Blame:
        return BLAME[self.kind]

    def __str__(self) -> str:
        return self.message

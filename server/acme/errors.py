"""The CA's and the RA's refusals as ACME errors (RFC 8555 §6.7), one table each."""

from __future__ import annotations

from collections.abc import Mapping

from jitsuin.ca.errors import CAError, Kind
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.server.ra.errors import RAError, RAKind

# CA refusals of a CSR are the client's to fix (badCSR); the rest are the server's problem: a
# passing one (503) is explained to the client, a fault of the CA (500) is not.
_CA_ERRORS: Mapping[Kind, tuple[ErrorType, int | None]] = {
    Kind.BAD_CSR: (ErrorType.BAD_CSR, None),
    Kind.BAD_SIGNATURE: (ErrorType.BAD_CSR, None),
    Kind.WEAK_ALGORITHM: (ErrorType.BAD_CSR, None),
    Kind.BAD_PUBLIC_KEY: (ErrorType.BAD_CSR, None),
    Kind.KEY_REUSED: (ErrorType.BAD_CSR, None),
    Kind.BAD_SUBJECT: (ErrorType.BAD_CSR, None),
    Kind.UNKNOWN_PROFILE: (ErrorType.INVALID_PROFILE, None),
    Kind.CUTOFF: (ErrorType.SERVER_INTERNAL, 503),
    Kind.LINT: (ErrorType.SERVER_INTERNAL, 500),
    Kind.LINT_UNAVAILABLE: (ErrorType.SERVER_INTERNAL, 503),
    Kind.BAD_KEY_FILE: (ErrorType.SERVER_INTERNAL, 500),
    Kind.BAD_CONFIG: (ErrorType.SERVER_INTERNAL, 500),
}

_RA_ERRORS: Mapping[RAKind, ErrorType] = {
    RAKind.INVALID: ErrorType.BAD_CSR,
    RAKind.MALFORMED: ErrorType.MALFORMED,
    RAKind.NOT_FOUND: ErrorType.UNAUTHORIZED,
    RAKind.ILLEGAL_TRANSITION: ErrorType.UNAUTHORIZED,
    RAKind.CONFLICT: ErrorType.UNAUTHORIZED,
    RAKind.FORBIDDEN: ErrorType.UNAUTHORIZED,
    RAKind.UNAUTHORIZED: ErrorType.UNAUTHORIZED,
    RAKind.LOCKED: ErrorType.UNAUTHORIZED,
    RAKind.EXPIRED: ErrorType.UNAUTHORIZED,
    RAKind.PENDING: ErrorType.UNAUTHORIZED,
    RAKind.THROTTLED: ErrorType.RATE_LIMITED,
}


def from_ca(exc: CAError) -> AcmeError:
    """One table maps the CA's refusals to ACME error types (docs/architecture.md,
    house habit 1)."""
    type_, status = _CA_ERRORS[exc.kind]
    if status == 500:
        return AcmeError(type_, "the CA could not issue the certificate", status=status)
    return AcmeError(type_, exc.message, status=status)


def from_ra(exc: RAError) -> AcmeError:
    return AcmeError(_RA_ERRORS[exc.kind], exc.message)

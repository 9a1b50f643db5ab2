"""The CA's and the RA's refusals as ACME errors (RFC 8555 §6.7), one table each."""

from __future__ import annotations

from collections.abc import Mapping

from jitsuin.ca.errors import CAError, Kind
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.server.error_map import refusal
from jitsuin.server.ra.errors import RAError, RAKind

# The ACME error type of each CA refusal: a CSR or profile the client may fix, or the CA's own
# trouble (serverInternal). Status, Retry-After and detail: server/error_map.py.
_CA_ERRORS: Mapping[Kind, ErrorType] = {
    Kind.BAD_CSR: ErrorType.BAD_CSR,
    Kind.BAD_SIGNATURE: ErrorType.BAD_CSR,
    Kind.WEAK_ALGORITHM: ErrorType.BAD_CSR,
    Kind.BAD_PUBLIC_KEY: ErrorType.BAD_CSR,
    Kind.KEY_REUSED: ErrorType.BAD_CSR,
    Kind.BAD_SUBJECT: ErrorType.BAD_CSR,
    Kind.UNKNOWN_PROFILE: ErrorType.INVALID_PROFILE,
    Kind.CUTOFF: ErrorType.SERVER_INTERNAL,
    Kind.LINT: ErrorType.SERVER_INTERNAL,
    Kind.LINT_UNAVAILABLE: ErrorType.SERVER_INTERNAL,
    Kind.BAD_KEY_FILE: ErrorType.SERVER_INTERNAL,
    Kind.BAD_CONFIG: ErrorType.SERVER_INTERNAL,
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
    """The CA's refusal as server/error_map.py decides it, with the kind's ACME error type."""
    decided = refusal(exc)
    return AcmeError(
        _CA_ERRORS[exc.kind],
        decided.detail,
        status=decided.status,
        headers=tuple(decided.headers.items()),
    )


def from_ra(exc: RAError) -> AcmeError:
    return AcmeError(_RA_ERRORS[exc.kind], exc.message)

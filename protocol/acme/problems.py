"""ACME error types (RFC 8555 §6.7, RFC 9773 §7.4, draft-ietf-acme-profiles) as problem documents
(RFC 9457). One registry keyed by the wire name, with the HTTP status jitsuin answers each with."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jitsuin.protocol.problems import Problem

ERROR_BASE = "urn:ietf:params:acme:error:"


class ErrorType(enum.StrEnum):
    ACCOUNT_DOES_NOT_EXIST = "accountDoesNotExist"
    ALREADY_REPLACED = "alreadyReplaced"  # RFC 9773 §7.4
    ALREADY_REVOKED = "alreadyRevoked"
    BAD_CSR = "badCSR"
    BAD_NONCE = "badNonce"
    BAD_PUBLIC_KEY = "badPublicKey"
    BAD_REVOCATION_REASON = "badRevocationReason"
    BAD_SIGNATURE_ALGORITHM = "badSignatureAlgorithm"
    CAA = "caa"
    COMPOUND = "compound"
    CONNECTION = "connection"
    DNS = "dns"
    EXTERNAL_ACCOUNT_REQUIRED = "externalAccountRequired"
    INCORRECT_RESPONSE = "incorrectResponse"
    INVALID_CONTACT = "invalidContact"
    INVALID_PROFILE = "invalidProfile"  # draft-ietf-acme-profiles
    MALFORMED = "malformed"
    ORDER_NOT_READY = "orderNotReady"
    RATE_LIMITED = "rateLimited"
    REJECTED_IDENTIFIER = "rejectedIdentifier"
    SERVER_INTERNAL = "serverInternal"
    TLS = "tls"
    UNAUTHORIZED = "unauthorized"
    UNSUPPORTED_CONTACT = "unsupportedContact"
    UNSUPPORTED_IDENTIFIER = "unsupportedIdentifier"
    USER_ACTION_REQUIRED = "userActionRequired"

    @property
    def urn(self) -> str:
        return ERROR_BASE + self.value


# RFC 8555 names no status per type; these follow Boulder's and Pebble's choices, except that
# orderNotReady is 403 as §7.4 shows, and a wrong JWS "url" is unauthorized (§6.4).
STATUS: Mapping[ErrorType, int] = {
    ErrorType.ACCOUNT_DOES_NOT_EXIST: 400,
    ErrorType.ALREADY_REPLACED: 409,
    ErrorType.ALREADY_REVOKED: 400,
    ErrorType.BAD_CSR: 400,
    ErrorType.BAD_NONCE: 400,
    ErrorType.BAD_PUBLIC_KEY: 400,
    ErrorType.BAD_REVOCATION_REASON: 400,
    ErrorType.BAD_SIGNATURE_ALGORITHM: 400,
    ErrorType.CAA: 403,
    ErrorType.COMPOUND: 403,
    ErrorType.CONNECTION: 400,
    ErrorType.DNS: 400,
    ErrorType.EXTERNAL_ACCOUNT_REQUIRED: 400,
    ErrorType.INCORRECT_RESPONSE: 403,
    ErrorType.INVALID_CONTACT: 400,
    ErrorType.INVALID_PROFILE: 400,
    ErrorType.MALFORMED: 400,
    ErrorType.ORDER_NOT_READY: 403,
    ErrorType.RATE_LIMITED: 429,
    ErrorType.REJECTED_IDENTIFIER: 400,
    ErrorType.SERVER_INTERNAL: 500,
    ErrorType.TLS: 400,
    ErrorType.UNAUTHORIZED: 403,
    ErrorType.UNSUPPORTED_CONTACT: 400,
    ErrorType.UNSUPPORTED_IDENTIFIER: 400,
    ErrorType.USER_ACTION_REQUIRED: 403,
}
assert set(STATUS) == set(ErrorType)


@dataclass(frozen=True, slots=True)
class Subproblem:
    """RFC 8555 §6.7.1: one identifier's own error inside a multi-identifier failure."""

    type: ErrorType
    detail: str
    identifier: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type.urn, "detail": self.detail, "identifier": dict(self.identifier)}


class AcmeError(Exception):
    """A refusal with an ACME error type; the server's edge turns it into a problem document
    and adds ``headers`` (Retry-After, Link) to the response."""

    def __init__(
        self,
        type_: ErrorType,
        detail: str,
        *,
        status: int | None = None,
        subproblems: Sequence[Subproblem] = (),
        extensions: Mapping[str, Any] | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(detail)
        self.type = type_
        self.detail = detail
        self.status = status or STATUS[type_]
        self.subproblems = tuple(subproblems)
        self.extensions = dict(extensions or {})
        self.headers = tuple(headers)

    def problem(self) -> Problem:
        extensions: dict[str, Any] = dict(self.extensions)
        if self.subproblems:
            extensions["subproblems"] = [s.to_json() for s in self.subproblems]
        return Problem(
            status=self.status,
            title=_TITLES.get(self.type, self.type.value),
            detail=self.detail,
            type=self.type.urn,
            extensions=extensions,
        )

    def to_json(self) -> dict[str, Any]:
        """The error as stored in an order, authorization or challenge (§7.1.3, §7.1.5)."""
        return self.problem().to_json()


_TITLES = {
    ErrorType.BAD_NONCE: "Bad replay nonce",
    ErrorType.MALFORMED: "Malformed request",
    ErrorType.UNAUTHORIZED: "Unauthorized",
    ErrorType.BAD_SIGNATURE_ALGORITHM: "Signature algorithm not accepted",
    ErrorType.ACCOUNT_DOES_NOT_EXIST: "Account does not exist",
    ErrorType.EXTERNAL_ACCOUNT_REQUIRED: "External account binding required",
    ErrorType.REJECTED_IDENTIFIER: "Identifier rejected",
    ErrorType.ORDER_NOT_READY: "Order not ready",
    ErrorType.BAD_CSR: "Bad CSR",
    ErrorType.RATE_LIMITED: "Rate limited",
    ErrorType.USER_ACTION_REQUIRED: "User action required",
    ErrorType.SERVER_INTERNAL: "Internal server error",
}

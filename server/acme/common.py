"""What every part of the ACME service shares: the verified request, the reply, resource ids and
the two kinds of account."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jitsuin.ca.generations import CAGeneration
from jitsuin.ca.generations import generation_by_key_id as find_by_key_id
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.jose import JWK, FlattenedJWS, JOSEError
from jitsuin.server.storage import AcmeAccountRecord, NotFound

# The two kinds of account, told apart by their External Account Binding (§7.3.4; service.py).
PERSONAL = "personal"
TLS_SERVER = "tls-server"
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def new_id() -> str:
    return secrets.token_urlsafe(16)


def is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def known_id(value: str) -> str:
    """A resource id from a URL path, or NotFound for a text no id of ours can be (U+0000,
    which PostgreSQL text cannot hold, included), before the store sees it."""
    if not is_id(value):
        raise NotFound(f"no resource {value[:40]!r}")
    return value


def unauthorized(detail: str) -> AcmeError:
    return AcmeError(ErrorType.UNAUTHORIZED, detail)


def not_found(what: str) -> AcmeError:
    return AcmeError(ErrorType.MALFORMED, f"there is no such {what}", status=404)


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose JWS passed every check of §6.2-§6.5."""

    jws: FlattenedJWS
    account: AcmeAccountRecord | None  # requests signed with kid
    jwk: JWK | None  # requests signed with jwk (newAccount, revokeCert by the certificate key)

    @property
    def post_as_get(self) -> bool:
        return self.jws.payload_b64 == ""

    def payload(self) -> Any:
        if self.post_as_get:
            raise messages.malformed("this resource takes a JSON payload, not POST-as-GET")
        try:
            return self.jws.payload_json()
        except JOSEError as exc:  # RFC 8555 §6.7: a payload that is not JSON is malformed
            raise messages.malformed(exc.message) from None

    def owner(self) -> AcmeAccountRecord:
        assert self.account is not None
        return self.account

    def own(self, account_id: str, what: str) -> None:
        """Refused unless the resource belongs to the account that signed the request."""
        if self.owner().id != account_id:
            raise unauthorized(f"this {what} belongs to another account")


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler sends: a JSON body (or raw bytes), a status and ACME headers."""

    body: Any
    status: int = 200
    location: str | None = None
    links: Sequence[tuple[str, str]] = ()  # (url, rel)
    retry_after: int | None = None
    content_type: str = "application/json"


def generation_by_key_id(generations: Sequence[CAGeneration], key_id: bytes) -> int | None:
    """The number of the generation whose key has this identifier (RFC 9773 §4.1)."""
    generation = find_by_key_id(generations, key_id)
    return None if generation is None else generation.number

"""RA refusals. One table at the edge (handlers) maps each kind to an HTTP status."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class RAKind(enum.Enum):
    INVALID = "invalid"  # the request body breaks a rule: 422
    MALFORMED = "malformed"  # not the JSON shape asked for: 400
    NOT_FOUND = "not_found"  # 404
    ILLEGAL_TRANSITION = "illegal_transition"  # 409, names the current state
    CONFLICT = "conflict"  # 409: changed meanwhile
    FORBIDDEN = "forbidden"  # role or two-person rule: 403
    UNAUTHORIZED = "unauthorized"  # no or bad credential: 401
    LOCKED = "locked"  # too many wrong attempts: 403
    EXPIRED = "expired"  # the PIN expired: 403
    PENDING = "pending"  # not approved yet: the client waits (EST 202)
    THROTTLED = "throttled"  # this source tried a wrong credential just now: 429, Retry-After


class RAError(Exception):
    def __init__(
        self,
        kind: RAKind,
        message: str,
        extensions: Mapping[str, Any] | None = None,
        *,
        recorded: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.extensions = dict(extensions or {})
        # The RA has recorded this refusal already: in the audit log (a wrong credential, in the
        # transaction that counted it) or in the refusal counts (server/refusals.py). The edge
        # records nothing more.
        self.recorded = recorded

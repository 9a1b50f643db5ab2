"""Problem details for HTTP APIs (RFC 9457, which obsoletes RFC 7807)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MEDIA_TYPE = "application/problem+json"
JITSUIN_TYPE_BASE = "urn:jitsuin:problem:"


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    title: str
    detail: str | None = None
    type: str = "about:blank"  # RFC 9457 §4.2.1
    instance: str | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        if self.instance is not None:
            body["instance"] = self.instance
        for key, value in self.extensions.items():
            if key in body:
                raise ValueError(f"extension member {key!r} collides with a standard member")
            body[key] = value
        return body

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False).encode()

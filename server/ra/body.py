"""Reading an operator's or applicant's JSON body field by field (the RA's request bodies)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.mynumber import fields_with_individual_number

# The earliest date the RA takes in any field: before it, a date is a typing error, and a date
# near 0001-01-01 would leave the calendar when months are counted back from it (SEED-R7).
EARLIEST_DATE = dt.date(1900, 1, 1)
# The largest integer the RA takes: what a PostgreSQL integer column holds.
MAX_INTEGER = 2**31 - 1


class Body:
    """Reads a JSON object field by field, collecting every error before refusing."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise RAError(RAKind.MALFORMED, "the request body must be a JSON object")
        # SEED-R8: the Individual Number is refused wherever it appears, and never echoed.
        leaked = fields_with_individual_number(data)
        if leaked:
            raise RAError(
                RAKind.INVALID,
                "a field holds an Individual Number (My Number); it must never be sent to or "
                "stored by the CA (SEED-R8): " + ", ".join(leaked),
                {"fields": leaked},
            )
        self.data = data
        self.errors: list[str] = []
        self.seen: set[str] = set()

    def text(self, key: str, *, required: bool = True, limit: int = 256) -> str:
        self.seen.add(key)
        value = self.data.get(key)
        if value is None:
            if required:
                self.errors.append(f"{key} is required")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.errors.append(f"{key} must be a non-empty string")
            return ""
        if len(value) > limit:
            self.errors.append(f"{key} is longer than {limit} characters")
        return value.strip()

    def flag(self, key: str, data: Mapping[str, Any] | None = None, prefix: str = "") -> bool:
        source = self.data if data is None else data
        if data is None:
            self.seen.add(key)
        value = source.get(key)
        if not isinstance(value, bool):
            self.errors.append(f"{prefix}{key} must be true or false")
            return False
        return value

    def date(self, key: str, data: Mapping[str, Any] | None = None, prefix: str = "") -> dt.date:
        source = self.data if data is None else data
        if data is None:
            self.seen.add(key)
        value = source.get(key)
        try:
            day = dt.date.fromisoformat(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.errors.append(f"{prefix}{key} must be a date (YYYY-MM-DD)")
            return dt.date.min
        if day < EARLIEST_DATE:
            self.errors.append(f"{prefix}{key} must not be before {EARLIEST_DATE.isoformat()}")
            return dt.date.min
        return day

    def obj(self, key: str) -> dict[str, Any]:
        self.seen.add(key)
        value = self.data.get(key)
        if not isinstance(value, dict):
            self.errors.append(f"{key} must be an object")
            return {}
        return value

    def integer(self, key: str, maximum: int = MAX_INTEGER) -> int:
        self.seen.add(key)
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
            self.errors.append(f"{key} must be an integer 0..{maximum}")
            return 0
        return value

    def done(self) -> None:
        self.errors += [f"unknown field {k!r}" for k in self.data if k not in self.seen]
        if self.errors:
            raise RAError(RAKind.INVALID, "; ".join(self.errors), {"errors": self.errors})

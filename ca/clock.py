"""Injected time (docs/architecture.md, house habit 9): validity, cut-offs and windows never read
the wall clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware UTC datetime, truncated to whole seconds (certificates carry seconds)."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC).replace(microsecond=0)


@dataclass
class FixedClock:
    """A clock for tests and tools: stands still until moved."""

    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(UTC).replace(microsecond=0))

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self.at = self.at.astimezone(UTC).replace(microsecond=0)

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, delta: dt.timedelta) -> None:
        self.at = self.at + delta

"""Refusals that decide nothing about anyone the CA knows: an unknown enrollment ID, EAB key id
or operator token, an EST request without a credential, a try of a credential that is locked or
whose source must wait. They are counted and logged, at most one line per kind per interval with
the number left out since, and never appended to the audit log: the append-only audit log keeps
what was decided about an application, a certificate or an operator, not what any stranger on
the network can provoke at will (docs/threat-model.md, "Noise versus the audit log")."""

from __future__ import annotations

import collections
import datetime as dt
import logging
from dataclasses import dataclass, field

from jitsuin.server import metrics

log = logging.getLogger("jitsuin.refusals")

LOG_INTERVAL = dt.timedelta(seconds=60)
_DETAIL_LIMIT = 200  # characters of a logged detail (it may quote what the client sent)


@dataclass
class Refusals:
    """This process's count of refusals by kind (``kind`` is a constant of the code, never
    something a client sent, so the tables stay as small as the code's list of kinds)."""

    interval: dt.timedelta = LOG_INTERVAL
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    _logged_at: dict[str, dt.datetime] = field(default_factory=dict)
    _left_out: collections.Counter[str] = field(default_factory=collections.Counter)

    def note(self, kind: str, now: dt.datetime, detail: str) -> None:
        self.counts[kind] += 1
        metrics.REFUSALS.labels(kind).inc()
        last = self._logged_at.get(kind)
        if last is not None and now - last < self.interval:
            self._left_out[kind] += 1
            return
        left_out = self._left_out.pop(kind, 0)
        since = f" (and {left_out} more since {last.isoformat()})" if left_out and last else ""
        log.warning("refused (%s): %r%s", kind, detail[:_DETAIL_LIMIT], since)
        self._logged_at[kind] = now

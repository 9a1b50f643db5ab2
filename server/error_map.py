"""One decision for every refusal of the CA core (``CAError``): the HTTP status, the Retry-After,
and whether the client reads the detail, all from the kind's blame (ca/errors.py). The front ends
only render it, each in its own format: ACME problem documents (``from_ca`` in
server/acme/service.py), RFC 9457 problems of the RA API (``ca_problem`` in
server/ra/handlers.py) and EST's text/plain (``_from_ca`` in server/est/handlers.py).

- client: 400 with the detail, which says what to change;
- transient: 503 with Retry-After (RFC 9110 §15.6.4, §10.2.3; RFC 7030 §4.2.3), with the detail;
- server: 500; the detail may name the CA's files, keys or lint findings, so it goes to the log
  and the client gets a fixed sentence.

Every decision carries the kind's name as a stable problem type, so that a client can tell a
lint refusal from a missing key without reading prose."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from jitsuin.ca.errors import Blame, CAError

log = logging.getLogger("jitsuin.ca")

# How long a client waits before trying a transient refusal again.
RETRY_AFTER_SECONDS = 5
SERVER_DETAIL = "the CA could not complete this request; its operators find the reason in its log"

STATUS: Mapping[Blame, int] = {Blame.CLIENT: 400, Blame.TRANSIENT: 503, Blame.SERVER: 500}
assert set(STATUS) == set(Blame)


@dataclass(frozen=True, slots=True)
class Refusal:
    """What every front end tells the client about one ``CAError``."""

    status: int
    detail: str  # what the client may read
    problem: str  # the kind's name: stable, for the client's code
    retry_after: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def refusal(exc: CAError) -> Refusal:
    """The one decision for ``exc``; a fault of the CA's own is logged here, with its detail."""
    blame = exc.blame
    if blame is Blame.SERVER:
        log.error("refused by the CA (%s): %s", exc.kind.value, exc.message)
        return Refusal(STATUS[blame], SERVER_DETAIL, exc.kind.value)
    retry_after = RETRY_AFTER_SECONDS if blame is Blame.TRANSIENT else None
    return Refusal(STATUS[blame], exc.message, exc.kind.value, retry_after)

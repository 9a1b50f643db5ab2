"""ACME Renewal Information (RFC 9773): the suggested renewal window of a certificate."""

from __future__ import annotations

import datetime as dt

RETRY_AFTER_SECONDS = 6 * 3600  # how long a client keeps a window before asking again (§4.2)


def suggested_window(
    not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime, *, renew_now: bool
) -> tuple[dt.datetime, dt.datetime]:
    """(start, end) of the window in which to renew. A certificate that should be replaced at once
    (``renew_now``: revoked, or issued by a generation that no longer issues) gets a window wholly
    in the past, which makes a client renew at once (RFC 9773 §4.2: a chosen time in the past
    means renew immediately); ending an hour ago, it is in the past for a client whose clock is
    up to an hour slow (RFC 9773 §7). A window around now would let half the clients wait up to
    an hour with a revoked certificate. Otherwise the window is the second-to-last sixth of the
    certificate's lifetime."""
    if renew_now:
        return now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)
    lifetime = not_after - not_before
    return not_before + lifetime * 2 / 3, not_before + lifetime * 5 / 6

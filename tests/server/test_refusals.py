"""Refusals that decide nothing about anyone known (server/refusals.py): counted by kind, and
logged at most once per kind per interval with the number left out since."""

from __future__ import annotations

import datetime as dt
import logging

from jitsuin.server.refusals import Refusals

T0 = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)


def test_one_line_per_kind_per_interval_with_the_count_left_out(caplog):
    refusals = Refusals()
    caplog.set_level(logging.WARNING, logger="jitsuin.refusals")
    for n in range(500):
        refusals.note("unknown_enrollment_id", T0 + dt.timedelta(milliseconds=n), "no such ID")
    refusals.note("unknown_operator_token", T0, "no operator has this token")
    refusals.note("unknown_enrollment_id", T0 + dt.timedelta(seconds=61), "no such ID")
    assert refusals.counts == {"unknown_enrollment_id": 501, "unknown_operator_token": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "refused (unknown_enrollment_id): 'no such ID'",
        "refused (unknown_operator_token): 'no operator has this token'",
        f"refused (unknown_enrollment_id): 'no such ID' (and 499 more since {T0.isoformat()})",
    ]


def test_a_logged_detail_is_cut_and_quoted(caplog):
    """The detail may quote what a client sent: one line, bounded."""
    caplog.set_level(logging.WARNING, logger="jitsuin.refusals")
    Refusals().note("est.simpleenroll", T0, "415 not 'x\nforged line'" + "y" * 500)
    (record,) = caplog.records
    assert "\n" not in record.getMessage() and len(record.getMessage()) < 260

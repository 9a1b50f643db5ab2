"""The CA's refusals (``CAError.kind``) in each wire format: every kind has an ACME error type,
and a lint that could not run is the server's passing trouble (503) everywhere, not the client's
request (400) or a bare 500."""

from __future__ import annotations

import json

import pytest

from jitsuin.ca.errors import CAError, Kind
from jitsuin.protocol.acme.problems import ErrorType
from jitsuin.server.acme.errors import from_ca
from jitsuin.server.est.handlers import _from_ca as est_from_ca
from jitsuin.server.http_problems import ca_problem


@pytest.mark.parametrize("kind", list(Kind), ids=[k.value for k in Kind])
def test_every_kind_has_an_acme_error(kind: Kind) -> None:
    error = from_ca(CAError(kind, "because"))
    assert isinstance(error.type, ErrorType)
    assert 400 <= error.status < 600


def test_a_lint_that_could_not_run_is_503_in_every_protocol() -> None:
    refusal = CAError(Kind.LINT_UNAVAILABLE, "the pre-issuance lint could not run")
    acme = from_ca(refusal)
    assert (acme.type, acme.status) == (ErrorType.SERVER_INTERNAL, 503)
    assert "could not run" in acme.detail
    est = est_from_ca(refusal)
    assert est.status == 503 and est.headers["Retry-After"] == "5"
    ra = ca_problem(refusal)
    assert ra.status == 503
    assert ra.body is not None and json.loads(ra.body)["type"].endswith("lint_unavailable")
    # The lint's own refusal stays a refusal of that draft.
    assert from_ca(CAError(Kind.LINT, "X-01")).status == 500
    assert est_from_ca(CAError(Kind.LINT, "X-01")).status == 400

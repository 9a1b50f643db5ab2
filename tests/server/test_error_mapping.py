"""The CA's refusals (``CAError.kind``) in each wire format, decided once (server/error_map.py) from
each kind's blame (ca/errors.py): the client's fault is 400 with the detail; a passing trouble of
the CA is 503 with Retry-After and the detail; the CA's own fault, a lint refusal included, is 500
with the detail in the log only. ACME, the RA API and EST agree on every kind, and each names the
kind in a way a client's code can rely on."""

from __future__ import annotations

import json
import logging

import pytest

from jitsuin.ca.errors import CAError, Kind
from jitsuin.protocol.acme.problems import ErrorType
from jitsuin.protocol.problems import JITSUIN_TYPE_BASE
from jitsuin.server.acme.errors import from_ca
from jitsuin.server.est.handlers import ERROR_HEADER
from jitsuin.server.est.handlers import _from_ca as est_from_ca
from jitsuin.server.http_problems import ca_problem

# kind: (status, Retry-After, whether the client reads the detail)
MAP = {
    Kind.BAD_CSR: (400, None, True),
    Kind.BAD_SIGNATURE: (400, None, True),
    Kind.WEAK_ALGORITHM: (400, None, True),
    Kind.BAD_PUBLIC_KEY: (400, None, True),
    Kind.KEY_REUSED: (400, None, True),
    Kind.BAD_SUBJECT: (400, None, True),
    Kind.UNKNOWN_PROFILE: (400, None, True),
    Kind.CUTOFF: (503, "5", True),
    Kind.LINT: (500, None, False),
    Kind.LINT_UNAVAILABLE: (503, "5", True),
    Kind.BAD_KEY_FILE: (500, None, False),
    Kind.BAD_CONFIG: (500, None, False),
}


def test_the_map_names_every_kind() -> None:
    assert set(MAP) == set(Kind)


@pytest.mark.parametrize("kind", list(Kind), ids=[k.value for k in Kind])
def test_every_kind_has_an_acme_error(kind: Kind) -> None:
    error = from_ca(CAError(kind, "because"))
    assert isinstance(error.type, ErrorType)
    assert 400 <= error.status < 600


@pytest.mark.parametrize("kind", list(Kind), ids=[k.value for k in Kind])
def test_acme_ra_and_est_render_one_decision(kind: Kind, caplog: pytest.LogCaptureFixture) -> None:
    status, retry_after, shown = MAP[kind]
    refusal = CAError(kind, "the secret reason X-01")
    with caplog.at_level(logging.ERROR, logger="jitsuin.ca"):
        acme = from_ca(refusal)
        ra = ca_problem(refusal)
        est = est_from_ca(refusal)
    assert (acme.status, ra.status, est.status) == (status, status, status)
    assert dict(acme.headers).get("Retry-After") == retry_after
    assert ra.headers.get("Retry-After") == retry_after
    assert est.headers.get("Retry-After") == retry_after
    assert ra.body is not None
    problem = json.loads(ra.body)
    # The stable names: the ACME type, the RA problem type, the EST error header.
    if status >= 500:
        assert acme.type is ErrorType.SERVER_INTERNAL
    else:
        assert acme.type is not ErrorType.SERVER_INTERNAL
    assert problem["type"] == JITSUIN_TYPE_BASE + kind.value
    assert est.headers[ERROR_HEADER] == kind.value
    for detail in (acme.detail, problem["detail"], est.reason):
        assert ("X-01" in detail) is shown, detail
    # What the client may not read is in the log, once per front end that refused.
    logged = [r for r in caplog.records if "X-01" in r.getMessage()]
    assert len(logged) == (0 if shown else 3)


def test_a_lint_refusal_is_the_cas_fault_in_every_protocol(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusal = CAError(Kind.LINT, "X-01: the draft's subject is empty")
    with caplog.at_level(logging.ERROR, logger="jitsuin.ca"):
        acme = from_ca(refusal)
        ra = ca_problem(refusal)
        est = est_from_ca(refusal)
    assert (acme.type, acme.status) == (ErrorType.SERVER_INTERNAL, 500)
    assert ra.status == 500 and est.status == 500
    assert ra.body is not None and json.loads(ra.body)["type"].endswith(":lint")
    assert est.headers[ERROR_HEADER] == "lint"
    assert "X-01" not in acme.detail and "X-01" not in est.reason
    assert "X-01: the draft's subject is empty" in caplog.text


def test_a_lint_that_could_not_run_is_503_in_every_protocol() -> None:
    refusal = CAError(Kind.LINT_UNAVAILABLE, "the pre-issuance lint could not run")
    acme = from_ca(refusal)
    assert (acme.type, acme.status) == (ErrorType.SERVER_INTERNAL, 503)
    assert "could not run" in acme.detail
    assert ("Retry-After", "5") in acme.headers
    est = est_from_ca(refusal)
    assert est.status == 503 and est.headers["Retry-After"] == "5"
    ra = ca_problem(refusal)
    assert ra.status == 503 and ra.headers["Retry-After"] == "5"
    assert ra.body is not None and json.loads(ra.body)["type"].endswith("lint_unavailable")

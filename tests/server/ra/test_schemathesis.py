"""The RA API against its own description: schemathesis reads the description a running
server serves at /ra/openapi.json, generates requests for every operation from it (valid ones
and ones that break the schema), sends them with a real operator token over HTTPS, and checks
every answer: never a 5xx, a status the description lists, the content type it lists, and a
body that matches the schema it gives for that status.

Bounded: a few examples per operation (``max_examples``), on one server for the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jitsuin.server.ra.openapi import OPENAPI

# The operators the server is started with (tests/conftest.py) and who acts where: the role
# that may do the most on each path, so that requests get past authorisation to the body.
ACTING = (
    ("/ra/operators/", "root"),
    ("/ra/audit", "root"),
    ("/approve", "bob"),
    ("/ra/acme/", "bob"),
    ("/reenrollments/", "bob"),
    ("/ra/", "alice"),
)
DECOY = "zed-nobody"  # every {name}: no admin action may lock out the operators acting here


@pytest.fixture(scope="module")
def ra_server(live_jitsuin: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with live_jitsuin.server(tmp_path_factory.mktemp("schemathesis")) as live:
        yield live


# The description the server serves at /ra/openapi.json (checked below to be this one), loaded
# at collection so that each operation is a test of its own. A rollover makes a new CA generation
# (a key and two link certificates): an admin action with no body to get wrong, and far too
# heavy to repeat per example.
schema = schemathesis.openapi.from_dict(OPENAPI).exclude(path="/ra/ca/rollover")


def test_the_served_description_is_the_one_tested(ra_server: Any) -> None:
    status, served = ra_server.api("GET", "/ra/openapi.json", None)
    assert status == 200
    assert served == json.loads(json.dumps(OPENAPI))


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a failure is never chance
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_the_ra_api_answers_as_it_describes(case: Any, ra_server: Any) -> None:
    if case.path_parameters and "name" in case.path_parameters:
        case.path_parameters["name"] = DECOY
    operator = (
        next(who for prefix, who in ACTING if prefix in case.path)
        if case.path.startswith("/ra/")
        else None
    )
    headers = {"Authorization": f"Bearer {ra_server.tokens[operator]}"} if operator else {}
    case.call_and_validate(
        base_url=ra_server.https,
        headers=headers,
        verify=str(ra_server.ca_pem),
        timeout=60,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )

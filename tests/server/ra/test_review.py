"""Document review (seed step 2): every deficiency of SEED-R6...R9 sends the application back for
resubmission with its reason code; a resubmission is reviewed again."""

from __future__ import annotations

import datetime as dt

import pytest

DEFICIENCIES = {
    # code: review checks that produce it
    "resident_record_photocopy": {"original": False},
    "individual_number_shown": {"showsIndividualNumber": True},
    "name_mismatch": {"nameMatches": False},
    "address_mismatch": {"addressMatches": False},
    "date_of_birth_mismatch": {"dateOfBirthMatches": False},
    "self_inking_stamp": {"selfInking": True},
}


async def review(server, app_id, body, as_="carol"):
    return await server.call("POST", f"/ra/applications/{app_id}/review", as_, body=body)


async def test_resident_record_older_than_three_months(server, months_back):
    flow = await server.create()
    received = server.clock.now().date() - dt.timedelta(days=3)
    too_old = months_back(received, 3) - dt.timedelta(days=1)
    reply = await review(server, flow.id, server.review_body(received, too_old))
    body = reply.expect(200).json
    assert body["state"] == "documents_deficient"
    assert body["review"]["deficiencies"] == ["resident_record_too_old"]


@pytest.mark.parametrize(
    ("received", "issued", "deficient"),
    [
        ("2026-06-15", "2026-03-15", False),  # exactly 3 months: accepted
        ("2026-06-15", "2026-03-14", True),
        ("2026-06-15", "2026-06-15", False),  # issued the day it was received
        ("2026-05-31", "2026-02-28", False),  # no 31 February: the month's last day
        ("2026-05-31", "2026-02-27", True),
        ("2026-02-10", "2025-11-10", False),  # across the year
        ("2026-02-10", "2025-11-09", True),
    ],
)
async def test_three_month_boundary(server, received, issued, deficient):
    flow = await server.create()
    body = server.review_body(dt.date.fromisoformat(received), dt.date.fromisoformat(issued))
    reviewed = (await review(server, flow.id, body)).expect(200).json
    if deficient:
        assert reviewed["state"] == "documents_deficient"
        assert reviewed["review"]["deficiencies"] == ["resident_record_too_old"]
    else:
        assert reviewed["state"] == "documents_accepted", reviewed["review"]
        assert reviewed["review"]["deficiencies"] == []


@pytest.mark.parametrize(("code", "checks"), DEFICIENCIES.items(), ids=list(DEFICIENCIES))
async def test_deficiency_then_resubmit(server, code, checks):
    flow = await server.create()
    path = f"/ra/applications/{flow.id}"
    reply = await review(server, flow.id, server.review_body(**checks))
    body = reply.expect(200).json
    assert body["state"] == "documents_deficient"
    assert body["review"]["deficiencies"] == [code]
    assert body["reviewedBy"] == "carol"
    stored = await server.record(flow.id)
    assert stored.state == "documents_deficient"
    assert stored.review["deficiencies"] == [code]

    # A deficient application goes nowhere else: no inquiry letter.
    reply = await server.call(
        "POST", path + "/inquiry", "alice", body={"trackingNumber": "RD123456785JP"}
    )
    assert reply.problem(409)["state"] == "documents_deficient"

    # New documents arrive: received again, reviewed again, accepted.
    reply = await server.call("POST", path + "/resubmit", "carol")
    assert reply.expect(200).json["state"] == "received"
    reply = await review(server, flow.id, server.review_body())
    body = reply.expect(200).json
    assert body["state"] == "documents_accepted"
    assert body["review"]["deficiencies"] == []


async def test_every_deficiency_is_listed(server, months_back):
    flow = await server.create()
    received = server.clock.now().date() - dt.timedelta(days=1)
    body = server.review_body(
        received,
        months_back(received, 4),
        original=False,
        showsIndividualNumber=True,
        nameMatches=False,
        addressMatches=False,
        dateOfBirthMatches=False,
        selfInking=True,
    )
    reviewed = (await review(server, flow.id, body)).expect(200).json
    assert sorted(reviewed["review"]["deficiencies"]) == sorted(
        ["resident_record_too_old", *DEFICIENCIES]
    )
    # SEED-R8: only the fact that the number was shown is kept.
    assert reviewed["review"]["showsIndividualNumber"] is True


async def test_review_refuses_missing_and_mistyped_fields_all_at_once(server):
    flow = await server.create()
    body = {
        "receivedOn": "last week",
        "residentRecord": {"original": "yes", "nameMatches": True, "colour": "blue"},
        "seal": {},
        "remarks": "none",
    }
    problem = (await review(server, flow.id, body)).problem(422)
    errors = problem["errors"]
    expected = [
        "receivedOn must be a date (YYYY-MM-DD)",
        "residentRecord.issuedOn must be a date (YYYY-MM-DD)",
        "residentRecord.original must be true or false",
        "residentRecord.showsIndividualNumber must be true or false",
        "residentRecord.addressMatches must be true or false",
        "residentRecord.dateOfBirthMatches must be true or false",
        "seal.selfInking must be true or false",
        "unknown field 'residentRecord.colour'",
        "unknown field 'remarks'",
    ]
    for error in expected:
        assert error in errors, f"{error!r} not in {errors}"
    assert len(errors) == len(expected), errors
    for error in expected:
        assert error in problem["detail"]
    assert (await server.record(flow.id)).state == "received"


async def test_review_refuses_impossible_dates(server):
    flow = await server.create()
    today = server.clock.now().date()
    body = server.review_body(today + dt.timedelta(days=1), today)
    assert (
        "receivedOn is in the future"
        in (await review(server, flow.id, body)).problem(422)["errors"]
    )
    body = server.review_body(today - dt.timedelta(days=5), today - dt.timedelta(days=4))
    errors = (await review(server, flow.id, body)).problem(422)["errors"]
    assert errors == ["residentRecord.issuedOn is after receivedOn"]


async def test_application_refuses_missing_and_mistyped_fields_all_at_once(server):
    body = {
        "profile": "platinum",
        "familyName": "",
        "givenName": 7,
        "qualificationGroup": "member",
        "qualificationNumber": "AB-1",
        "postalAddress": "1-1 Chiyoda",
        "dateOfBirth": "1980-02-30",
        "billing": {"addressee": "company"},
        "nickname": "taro",
    }
    problem = (await server.call("POST", "/ra/applications", "alice", body=body)).problem(422)
    errors = problem["errors"]
    for expected in (
        "profile must be one of",
        "familyName must be a non-empty string",
        "givenName must be a non-empty string",
        "email is required",
        "dateOfBirth must be a date (YYYY-MM-DD)",
        "billing.company names the company",
        "unknown field 'nickname'",
    ):
        assert any(e.startswith(expected) for e in errors), f"{expected!r} not in {errors}"
    assert await server.authority.store.applications() == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "Taro@Example.jp", "not lower-case (SEED-R6)"),
        ("givenName", "太郎", "not a romanized name"),
        ("qualificationGroup", "astronaut", "unknown qualification group"),
        ("qualificationNumber", "ab 12", "does not match the syntax"),
    ],
)
async def test_application_refuses_what_issuance_would_refuse(server, field, value, message):
    body = server.application_body(**{field: value})
    problem = (await server.call("POST", "/ra/applications", "alice", body=body)).problem(422)
    assert message in problem["detail"]
    assert await server.authority.store.applications() == []

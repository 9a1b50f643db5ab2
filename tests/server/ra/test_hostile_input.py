"""Hostile input to the RA API, the applicant API and /ra/acme/eab-keys over loopback: each of the
faults found by fuzzing is a 400 or 422 problem document, never a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

DEEP = b"[" * 1000 + b"]" * 1000
DEEP_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000
LONG_INTEGER = b'{"amount": ' + b"7" * 5000 + b"}"
NOT_TEXT = b'{"enrollmentId": "\\ud800", "accessCode": "x", "confirm": true}'

# (path, operator) of every route that reads a JSON body.
BODIES = [
    ("/ra/applications", "alice"),
    ("/ra/applications/{id}/review", "carol"),
    ("/ra/applications/{id}/inquiry", "alice"),
    ("/ra/applications/{id}/letter", "alice"),
    ("/ra/applications/{id}/payment", "alice"),
    ("/ra/applications/{id}/reject", "alice"),
    ("/ra/applications/{id}/abandon", "alice"),
    ("/ra/applications/{id}/revoke", "bob"),
    ("/ra/operators/bob/disable", "root"),
    ("/ra/operators/bob/token", "root"),
    ("/ra/acme/eab-keys", "bob"),
    ("/applicant/status", None),
    ("/applicant/online-input", None),
]


async def post_raw(server, path: str, operator: str | None, raw: bytes) -> Any:
    headers = {"Content-Type": "application/json"}
    if operator is not None:
        headers["Authorization"] = f"Bearer {server.tokens[operator]}"
    async with server.session.post(server.base + path, data=raw, headers=headers) as response:
        body = await response.json(content_type=None)
        return response.status, response.content_type, body


@pytest.mark.parametrize("raw", [DEEP, DEEP_OBJECT, LONG_INTEGER, NOT_TEXT])
async def test_every_json_body_refuses_hostile_json_with_a_problem(server, raw):
    flow = await server.create()
    for template, operator in BODIES:
        path = template.format(id=flow.id)
        status, media, body = await post_raw(server, path, operator, raw)
        assert (status, media) == (400, "application/problem+json"), (path, status, body)
        assert body["type"].endswith(":malformed"), (path, body)
        assert "Traceback" not in body["detail"]


async def test_the_reasons_are_named(server):
    flow = await server.create()
    path = f"/ra/applications/{flow.id}/review"
    for raw, words in (
        (DEEP, "deeper than 10 levels"),
        (LONG_INTEGER, "more than 18 digits"),
        (NOT_TEXT, "unpaired surrogate"),
        (b'{"receivedOn": "2026-01-01", "receivedOn": "2026-01-02"}', "appears twice"),
        (b'{"amount": NaN}', "NaN"),
    ):
        status, _, body = await post_raw(server, path, "carol", raw)
        assert status == 400 and words in body["detail"], body


@pytest.mark.parametrize(
    "query",
    [
        "/ra/applications?limit=²",
        "/ra/applications?limit=١٢",
        "/ra/applications?offset=𝟏",
        "/ra/applications?limit=" + "9" * 5000,
        "/ra/applications?limit=-1",
        "/ra/applications?limit=1001",
        "/ra/mail?limit=²",
        "/ra/audit?after=²",
        "/ra/audit?limit=³",
    ],
)
async def test_query_numbers_take_ascii_digits_only(server, query):
    reply = await server.call("GET", query, "root")
    assert "ASCII digits" in reply.problem(400)["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/ra/mail/²/retry",
        "/ra/mail/" + "9" * 5000 + "/retry",
        "/ra/reenrollments/²/approve",
        "/ra/reenrollments/" + "9" * 30 + "/reject",
    ],
)
async def test_numeric_path_ids_take_ascii_digits_only(server, path):
    (await server.call("POST", path, "root")).problem(404)


@pytest.mark.parametrize(
    ("received", "issued"),
    [
        ("0001-01-01", "0001-01-01"),
        ("0001-03-31", "0001-01-01"),
        ("1899-12-31", "1899-12-31"),
        ("9999-12-31", "9999-12-31"),
        (None, "0001-01-01"),
        (None, "9999-12-31"),
    ],
)
async def test_review_dates_at_the_ends_of_the_calendar(server, received, issued):
    flow = await server.create()
    body = server.review_body()
    body["residentRecord"]["issuedOn"] = issued
    if received is not None:
        body["receivedOn"] = received
    reply = await server.call("POST", f"/ra/applications/{flow.id}/review", "carol", body=body)
    problem = reply.problem(422)
    assert any(
        words in problem["detail"] for words in ("before 1900-01-01", "in the future", "after")
    ), problem
    assert (await server.record(flow.id)).state == "received"


@pytest.mark.parametrize("born", ["0001-01-01", "1899-12-31", "9999-12-31", "2999-01-01"])
async def test_date_of_birth_at_the_ends_of_the_calendar(server, born):
    body = server.application_body(dateOfBirth=born)
    reply = await server.call("POST", "/ra/applications", "alice", body=body)
    assert "dateOfBirth" in reply.problem(422)["detail"]


@pytest.mark.parametrize(
    "policy",
    [
        {"expiresInDays": 10**15},
        {"expiresInDays": 3651},
        {"maxCertificates": 2**31},
        {"certificateLifetimeDays": 10**17},
    ],
)
async def test_eab_key_numbers_out_of_range_are_refused(server, policy):
    body = {"allowed": ["example.org"], **policy}
    reply = await server.call("POST", "/ra/acme/eab-keys", "bob", body=body)
    assert next(iter(policy)) in reply.problem(422)["detail"]


async def test_a_payment_beyond_any_column_is_refused(server):
    flow = await server.prepare("inquiry_sent")
    body = {"invoiceNumber": flow.invoice_number, "amount": 10**17}
    reply = await server.call("POST", f"/ra/applications/{flow.id}/payment", "alice", body=body)
    assert "amount" in reply.problem(422)["detail"]


@pytest.mark.parametrize("token", [b"\xff\xfe", b"\xc3", b"jto_\xed\xa0\x80", "トークン".encode()])
async def test_a_token_that_is_not_ascii_is_401(server, token):
    """aiohttp hands header bytes that are not UTF-8 on as lone surrogates."""
    reader, writer = await asyncio.open_connection("127.0.0.1", int(server.base.rsplit(":", 1)[1]))
    writer.write(
        b"GET /ra/applications HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + token + b"\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), answer
    assert json.loads(body)["type"].endswith(":unauthorized")


async def test_every_refusal_of_audit_verify_is_described(server):
    """/ra/openapi.json names the problem a non-admin gets (schemathesis checks answers
    against it)."""
    responses = (await server.call("GET", "/ra/openapi.json")).json["paths"]["/ra/audit/verify"]
    assert "4XX" in responses["get"]["responses"]
    (await server.call("GET", "/ra/audit/verify", "alice")).problem(403)

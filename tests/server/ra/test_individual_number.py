"""SEED-R8: the Individual Number (My Number) is refused wherever it appears in a request and is
never echoed back or stored."""

from __future__ import annotations

import json
import random

import pytest

from jitsuin.server.mynumber import (
    check_digit,
    contains_individual_number,
    fields_with_individual_number,
    is_individual_number,
)

# Worked by hand from the ordinance's formula (Art. 5): weights Q(n) = n + 1 for n <= 6 and
# n - 5 for n >= 7, n counted from the right of the first eleven digits.
#   12345678901: 1*2 + 0*3 + 9*4 + 8*5 + 7*6 + 6*7 + 5*2 + 4*3 + 3*4 + 2*5 + 1*6 = 212,
#   212 mod 11 = 3 -> 11 - 3 = 8
#   11111111111: 2+3+4+5+6+7+2+3+4+5+6 = 47, 47 mod 11 = 3 -> 8
#   00000000006: 6*2 = 12, 12 mod 11 = 1 -> 0 (remainder <= 1)
#   00000000005: 5*2 = 10, 10 mod 11 = 10 -> 1
#   00000000000: 0 -> 0
#   10000000000: 1*Q(11) = 6, 6 mod 11 = 6 -> 5
#   00000100000: 1*Q(6) = 7 -> 4
KNOWN = {
    "12345678901": 8,
    "11111111111": 8,
    "00000000006": 0,
    "00000000005": 1,
    "00000000000": 0,
    "10000000000": 5,
    "00000100000": 4,
}


def valid_number(seed: int = 7) -> str:
    first = "".join(random.Random(seed).choice("0123456789") for _ in range(11))
    return first + str(check_digit(first))


def wrong_check_digit(number: str) -> str:
    return number[:11] + str((int(number[11]) + 1) % 10)


@pytest.mark.parametrize(("first", "digit"), KNOWN.items())
def test_check_digit(first, digit):
    assert check_digit(first) == digit
    assert is_individual_number(first + str(digit))
    for other in set(range(10)) - {digit}:
        assert not is_individual_number(first + str(other))


def test_detection_in_text():
    number = "123456789018"
    assert contains_individual_number(f"Chiyoda {number}")
    assert contains_individual_number("1234-5678-9018")
    assert contains_individual_number("1234 5678 9018")
    assert contains_individual_number("１２３４５６７８９０１８")  # full-width digits
    assert not contains_individual_number("123456789019")  # wrong check digit
    assert not contains_individual_number("0123456789018")  # 13 digits: not a 12-digit number
    assert not contains_individual_number("23456789018")  # 11 digits
    assert fields_with_individual_number(
        {"a": "x", "b": {"c": [1, f"no {number}"]}, "d": int(number)}
    ) == ["b.c[1]", "d"]


NUMBER = valid_number()
HYPHENATED = f"{NUMBER[:4]}-{NUMBER[4:8]}-{NUMBER[8:]}"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"postalAddress": f"1-1 Chiyoda, Tokyo {NUMBER}"}, "postalAddress"),
        ({"postalAddress": f"1-1 Chiyoda (My Number {HYPHENATED})"}, "postalAddress"),
        ({"billing": {"addressee": "company", "company": f"ACME {NUMBER}"}}, "billing.company"),
        ({"qualificationNumber": NUMBER}, "qualificationNumber"),
        ({"remarks": {"notes": ["ok", NUMBER]}}, "remarks.notes[1]"),
    ],
    ids=["address", "hyphens", "nested", "qualification", "unknown-nested"],
)
async def test_application_with_individual_number_is_refused(server, overrides, field):
    body = server.application_body(**overrides)
    reply = await server.call("POST", "/ra/applications", "alice", body=body)
    problem = reply.problem(422)
    assert problem["fields"] == [field]
    assert field in problem["detail"]
    assert "Individual Number" in problem["detail"]
    for form in (NUMBER, HYPHENATED, NUMBER[:8]):
        assert form.encode() not in reply.raw, "the response echoes the Individual Number"
    assert await server.authority.store.applications() == []
    # Nothing about the refused request reached the audit log either.
    audit = await server.authority.store.audit_log(limit=10_000)
    assert not any(e.event.action.startswith("application.") for e in audit)
    assert NUMBER not in json.dumps([e.event.details for e in audit])


async def test_wrong_check_digit_is_not_an_individual_number(server):
    almost = wrong_check_digit(NUMBER)
    body = server.application_body(postalAddress=f"Room {almost}, 1-1 Chiyoda, Tokyo")
    reply = await server.call("POST", "/ra/applications", "alice", body=body)
    assert reply.expect(201).json["postalAddress"] == f"Room {almost}, 1-1 Chiyoda, Tokyo"


async def test_individual_number_refused_in_every_request_body(server):
    flow = await server.prepare("received")
    review = server.review_body()
    review["residentRecord"]["note"] = NUMBER
    reply = await server.call("POST", f"/ra/applications/{flow.id}/review", "alice", body=review)
    assert reply.problem(422)["fields"] == ["residentRecord.note"]
    assert NUMBER.encode() not in reply.raw
    reply = await server.online_input("ZZZZZ-ZZZZZ", HYPHENATED, confirm=True)
    assert reply.problem(422)["fields"] == ["accessCode"]
    assert HYPHENATED.encode() not in reply.raw and NUMBER.encode() not in reply.raw
    assert (await server.record(flow.id)).state == "received"

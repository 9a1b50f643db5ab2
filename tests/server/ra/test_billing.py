"""SEED-R19: the invoice may be addressed to the applicant's company."""

from __future__ import annotations

import re

import pytest


def invoice_section(letter: str) -> str:
    match = re.search(r"<h2>請求書 / Invoice[^<]*</h2>(.*?)</section>", letter, re.S)
    assert match, "the letter has no invoice section"
    return match.group(1)


async def printed_letter(server, flow) -> str:
    reply = await server.call(
        "POST",
        f"/ra/applications/{flow.id}/inquiry",
        "alice",
        body={"trackingNumber": "RD123456785JP"},
        headers={"Accept": "text/html"},
    )
    return reply.expect(200).text


@pytest.mark.parametrize(
    ("billing", "error"),
    [
        ({"addressee": "company"}, "billing.company names the company"),
        ({"addressee": "company", "company": "   "}, "billing.company names the company"),
        ({"addressee": "self", "company": "Example K.K."}, "billing.company is only for"),
        ({"addressee": "employer"}, "billing.addressee must be 'self' or 'company'"),
        ({"addressee": "self", "vat": "1"}, "unknown field 'billing.vat'"),
        (None, "billing must be an object"),
    ],
)
async def test_billing_is_checked(server, billing, error):
    body = server.application_body(billing=billing)
    if billing is None:
        body.pop("billing", None)
    problem = (await server.call("POST", "/ra/applications", "alice", body=body)).problem(422)
    assert any(e.startswith(error) for e in problem["errors"]), problem["errors"]
    assert await server.authority.store.applications() == []


async def test_invoice_addressed_to_the_company(server):
    company = "Example <Trading> K.K."
    flow = await server.create(
        billing={"addressee": "company", "company": company},
        familyName="Suzuki",
        givenName="Ichiro",
    )
    reply = await server.call("GET", f"/ra/applications/{flow.id}", "alice")
    assert reply.expect(200).json["billing"] == {"addressee": "company", "company": company}
    await server.call(
        "POST", f"/ra/applications/{flow.id}/review", "alice", body=server.review_body()
    )
    letter = await printed_letter(server, flow)
    invoice = invoice_section(letter)
    assert "Example &lt;Trading&gt; K.K. 御中" in invoice  # escaped HTML
    assert "Suzuki" not in invoice and "Ichiro" not in invoice
    assert "11,000" in invoice
    # The inquiry letter itself still goes to the person.
    assert "Ichiro Suzuki 様" in letter.split("<h2>")[0]  # [ca] name_order: given-family


async def test_invoice_addressed_to_the_applicant(server):
    flow = await server.create(familyName="Suzuki", givenName="Hanako")
    await server.call(
        "POST", f"/ra/applications/{flow.id}/review", "alice", body=server.review_body()
    )
    invoice = invoice_section(await printed_letter(server, flow))
    assert "Hanako Suzuki 様" in invoice
    assert "御中" not in invoice

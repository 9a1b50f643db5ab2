"""The inquiry letter as the CA posts it: printed by Chromium to A4 (``page.pdf``), and the PDF's
text read back with pypdf. The whole CA fingerprint, the sender, the return deadline and the
invoice's payment details must be on paper, on at most two sheets (docs/flow.md, step 3)."""

from __future__ import annotations

import io
import re
from typing import Any

from cryptography.hazmat.primitives import hashes
from pypdf import PdfReader

from jitsuin.server.ra.letters import fingerprint_rows


def pdf_text(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def print_letter(browser: Any, html: str) -> bytes:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content(html)
        return page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    finally:
        context.close()


def test_the_printed_letter_has_everything_on_two_sheets(browser, start_server, letter_toml):
    server = start_server(toml=letter_toml)
    app = server.application(returned=False)
    # The API gives the letter as it prints (the same one the console prints).
    status, sent = server.api(
        "POST", f"/ra/applications/{app['id']}/inquiry", "alice", {"trackingNumber": "RD1JP"}
    )
    assert status == 200, sent
    pages, text = pdf_text(print_letter(browser, sent["letterHtml"]))
    assert 1 <= pages <= 2, f"the letter prints on {pages} A4 pages"
    flat = re.sub(r"\s+", "", text)

    # The whole fingerprint of every generation, in its rows, nothing cut off at the margin.
    for certificate in server.ca_certificates():
        whole = ":".join(fingerprint_rows(certificate.fingerprint(hashes.SHA256()).hex()))
        assert whole in flat, f"{whole} is not whole in the printed letter:\n{text}"
    # The sender, the return address and deadline, the contact.
    for expected in (
        "ExampleTrust認証局",
        "〒100-0013",
        "東京都千代田区霞が関1-2-3",
        "03-1234-5678",
        "ra@example.jp",
    ):
        assert expected in flat, f"{expected!r} missing from:\n{text}"
    # The applicant's postcode (typed at the head of the address) and name in the configured order.
    assert "HanakoYamada様" in flat
    # The invoice: payment method and account, due date, tax breakdown, registration number.
    assert "7654321" in flat and "Banktransfer" in flat
    assert "T1234567890123" in flat
    assert "10,000円" in flat and "1,000円" in flat and "11,000円" in flat
    assert re.search(r"Due:\d{4}-\d{2}-\d{2}", flat), text
    assert re.search(r"by\d{4}-\d{2}-\d{2}", flat), text
    # The online input works only after the letter is back and the fee paid.
    assert "Onlineinputworksonlyafterthissignedandsealedletterisback" in flat

"""The inquiry letter and the PIN e-mail as text: the configured name order (the same as the
certificate's common name), the postcode taken from the address, the tax breakdown, and the
PIN's expiry in Japan time for the Japanese text."""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest

from jitsuin.ca.profiles import NameOrder
from jitsuin.server import config as configuration
from jitsuin.server.config import ConfigError, LetterConfig
from jitsuin.server.ra.letters import inquiry_letter, pin_mail, split_postcode, tax_included
from jitsuin.server.storage import ApplicationRecord

T0 = dt.datetime(2026, 12, 6, 15, 30, tzinfo=dt.UTC)


def application(**changes: object) -> ApplicationRecord:
    values: dict[str, object] = {
        "id": "APP-0000TEST",
        "version": 3,
        "state": "inquiry_sent",
        "profile": "general",
        "family_name": "Yamada",
        "given_name": "Hanako",
        "email": "hanako@example.com",
        "qualification_group": "member",
        "qualification_number": "AB-1",
        "postal_address": "〒100-0013 東京都千代田区霞が関1-2-3",
        "date_of_birth": "1985-04-01",
        "billing_addressee": "self",
        "billing_company": None,
        "created_by": "alice",
        "created_at": T0,
        "updated_at": T0,
        "invoice_number": "INV-0000TEST",
        "invoice_amount": 11000,
        "enrollment_id": "ABCDE-FGHJK",
    }
    values.update(changes)
    return ApplicationRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order", "shown"),
    [(NameOrder.GIVEN_FAMILY, "Hanako Yamada"), (NameOrder.FAMILY_GIVEN, "Yamada Hanako")],
)
def test_letter_and_mail_write_the_name_in_the_configured_order(order, shown):
    assert order.common_name("Hanako", "Yamada") == shown  # as the certificate's CN
    letter = inquiry_letter(
        application(), "ABCDE-FGHJK", "A" * 26, "https://ca.example", T0.date(), name_order=order
    )
    assert f"{shown} 様" in letter
    mail = pin_mail(
        application(), "ca@example.jp", "12345678", "k", T0, "https://ca.example", name_order=order
    ).get_content()
    assert f"{shown} 様" in mail and f"Dear {shown}," in mail


def test_pin_expiry_is_in_japan_time_for_the_japanese_text():
    mail = pin_mail(application(), "ca@example.jp", "12345678", "k", T0, "https://ca.example")
    text = mail.get_content()
    assert "有効期限: 2026年12月07日 00:30（日本時間）" in text  # 15:30 UTC is 00:30 JST next day
    assert "Valid until: 2026-12-06 15:30 UTC (2026-12-07 00:30 JST)" in text


def test_the_letter_carries_the_sender_deadline_and_invoice_details():
    sender = LetterConfig(
        ca_name="Example Trust",
        postcode="100-0013",
        address="Tokyo",
        payment_account="Bank 7654321",
        registration_number="T1234567890123",
        return_days=21,
        payment_days=30,
    )
    letter = inquiry_letter(
        application(), "ABCDE-FGHJK", "A" * 26, "https://ca.example", T0.date(), sender=sender
    )
    assert "〒100-0013<br>東京都千代田区霞が関1-2-3" in letter  # the applicant's postcode
    assert "2026-12-27" in letter and "2027-01-05" in letter  # return by, payment due
    assert "T1234567890123" in letter and "Bank 7654321" in letter
    assert "10,000 円" in letter and "1,000 円" in letter
    assert 'class="seal"' in letter


def test_postcode_and_tax_helpers():
    assert split_postcode("〒1000013 Tokyo") == ("100-0013", "Tokyo")
    assert split_postcode("100-0013 Tokyo") == ("100-0013", "Tokyo")
    assert split_postcode("1-2-3 Kasumigaseki") == ("", "1-2-3 Kasumigaseki")
    assert tax_included(11000, 10) == (10000, 1000)
    assert tax_included(10800, 8) == (10000, 800)
    assert tax_included(999, 10) == (909, 90)  # rounded down once


def test_the_letter_table_is_checked(tmp_path: pathlib.Path):
    path = configuration.write_default(
        tmp_path, configuration.KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT
    )
    path.write_text(
        path.read_text()
        + '\n[letter]\npostcode = "1000013"\nregistration_number = "1234"\nreturn_days = 0\n'
        + 'ca_name = ""\nfax = "x"\n'
    )
    with pytest.raises(ConfigError) as refused:
        configuration.load(path, tmp_path)
    errors = "\n".join(refused.value.errors)
    for expected in (
        "letter.postcode",
        "letter.registration_number",
        "letter.return_days",
        "letter.ca_name",
        "letter: unknown setting 'fax'",
    ):
        assert expected in errors, errors

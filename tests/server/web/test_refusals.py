"""What the subscriber reads when the server refuses: a wrong, used, locked or expired download
PIN, a wrong or used access code, an unknown enrollment ID (a pickup before the approval:
test_applicant_guidance.py). Each message is the page's own sentence in the page's language, in
the alert region that screen readers announce; the forms are driven with the keyboard."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from jitsuin.server.web.strings import CLIENT

LANGS = ["ja", "en"]


def say(key: str, lang: str, **values: object) -> str:
    return CLIENT[key][0 if lang == "ja" else 1].format(**values)


def other_pin(pin: str, n: int) -> str:
    return str((int(pin) + n) % 10**8).zfill(8)


def pick_up(tab, enrollment_id: str, pin: str) -> None:
    """Type the credentials and press Enter, as a keyboard user does; wait for the answer."""
    page = tab.page
    page.fill("#enrollment-id", "")
    page.focus("#enrollment-id")
    page.keyboard.type(enrollment_id)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "pin"
    page.keyboard.type(pin)
    page.keyboard.press("Enter")
    expect(page.locator("#message")).not_to_be_empty(timeout=20_000)
    expect(page.locator("#pickup-form button[type=submit]")).to_be_enabled()


def alert(tab) -> str:
    message = tab.page.locator("#message")
    assert message.get_attribute("role") == "alert"
    return message.inner_text()


@pytest.mark.parametrize("lang", LANGS)
def test_wrong_pin_counts_down_then_locks(server, visit, lang):
    applicant = server.application()
    enrollment_id, pin = applicant["enrollment_id"], applicant["pin"]
    tab = visit(lang)
    tab.goto("/pickup")
    for attempt in range(1, 6):
        pick_up(tab, enrollment_id, other_pin(pin, attempt))
        left = 5 - attempt
        expected = {
            0: say("wrong_pin_now_locked", lang, max=5),
            1: say("wrong_pin_one", lang),
        }.get(left, say("wrong_pin", lang, left=left))
        assert alert(tab) == expected
        assert tab.page.evaluate("document.activeElement.id") == "pin"
        if attempt == 1:
            tab.screenshot("10-pickup-wrong-pin")
    # The right PIN is refused now: the PIN is locked.
    pick_up(tab, enrollment_id, pin)
    assert alert(tab) == say("pin_locked", lang, max=5)
    tab.screenshot("10-pickup-locked-pin")
    assert server.state(applicant["id"])["state"] == "pin_sent"  # nothing was issued
    # The status page says so too.
    tab.goto("/status")
    tab.page.fill("#enrollment-id", enrollment_id)
    tab.page.press("#enrollment-id", "Enter")
    expect(tab.page.locator("#state-extra")).to_have_text(say("pin_is_locked", lang))


def test_after_a_wrong_pin_the_address_waits(start_server, visit):
    """With the default wait after a wrong try ([ra] attempt_backoff_seconds = 15): the right PIN
    typed at once is not compared; the page says how long to wait (429 + Retry-After)."""
    own = start_server()
    applicant = own.application()
    tab = visit("en", on=own)
    tab.goto("/pickup")
    pick_up(tab, applicant["enrollment_id"], other_pin(applicant["pin"], 1))
    assert alert(tab) == say("wrong_pin", "en", left=4)
    pick_up(tab, applicant["enrollment_id"], applicant["pin"])
    message = alert(tab)
    seconds = int(message.split("Wait ")[1].split(" ")[0])
    assert message == say("attempt_wait", "en", seconds=seconds) and 1 <= seconds <= 15
    tab.screenshot("10-pickup-wait")
    assert own.state(applicant["id"])["pin"]["attempts"] == 1  # the wait cost no try


@pytest.mark.parametrize("lang", LANGS)
def test_used_pin(server, visit, lang):
    applicant = server.application()
    # The PIN is spent by another client first (an EST client with its own key).
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    status, _ = server.simpleenroll(
        applicant["enrollment_id"], applicant["pin"], csr.public_bytes(serialization.Encoding.DER)
    )
    assert status == 200
    tab = visit(lang)
    tab.goto("/pickup")
    pick_up(tab, applicant["enrollment_id"], applicant["pin"])
    assert alert(tab) == say("pin_used", lang)
    tab.screenshot("10-pickup-used-pin")
    # Nothing new was issued: the application still holds the first certificate.
    record = server.state(applicant["id"])
    assert record["state"] == "issued" and record["pin"]["attempts"] == 0


@pytest.mark.parametrize("lang", LANGS)
def test_expired_pin(server, visit, lang):
    applicant = server.application()
    server.expire_pin(applicant["enrollment_id"])
    tab = visit(lang)
    tab.goto("/pickup")
    pick_up(tab, applicant["enrollment_id"], applicant["pin"])
    assert alert(tab) == say("pin_expired", lang)
    tab.screenshot("10-pickup-expired-pin")
    assert server.state(applicant["id"])["state"] == "pin_sent"
    tab.goto("/status")
    tab.page.fill("#enrollment-id", applicant["enrollment_id"])
    tab.page.press("#enrollment-id", "Enter")
    expect(tab.page.locator("#state-extra")).to_have_text(say("pin_is_expired", lang))


def test_malformed_input_is_caught_in_the_page(server, visit):
    tab = visit("en")
    tab.goto("/pickup")
    page = tab.page
    page.fill("#enrollment-id", "12")
    page.fill("#pin", "123")
    page.press("#pin", "Enter")
    expect(page.locator("#enrollment-id-error")).to_have_text(say("enrollment_id_format", "en"))
    expect(page.locator("#pin-error")).to_have_text(say("pin_format", "en"))
    assert page.get_attribute("#pin", "aria-invalid") == "true"
    assert "pin-error" in (page.get_attribute("#pin", "aria-describedby") or "")
    assert page.evaluate("document.activeElement.id") == "enrollment-id"
    assert alert(tab) == say("errors_in_form", "en")
    assert not [r for r in tab.requests if r.method == "POST"], "nothing is sent"
    tab.screenshot("10-pickup-form-errors")


@pytest.mark.parametrize("lang", LANGS)
def test_access_code_refusals(server, visit, lang):
    applicant = server.application(online_input=False, approve=False)
    tab = visit(lang)
    tab.goto("/online-input")
    page = tab.page
    page.fill("#enrollment-id", applicant["enrollment_id"])
    page.fill("#access-code", "0" * 26)
    page.press("#access-code", "Enter")
    expect(page.locator("#message")).to_have_text(say("wrong_access_code", lang, left=4))
    assert page.evaluate("document.activeElement.id") == "access-code"
    tab.screenshot("06-online-input-wrong-code")
    # Confirmed once through the API, the code is spent.
    server.ok(
        "POST",
        "/applicant/online-input",
        None,
        {
            "enrollmentId": applicant["enrollment_id"],
            "accessCode": applicant["access_code"],
            "confirm": True,
        },
    )
    page.fill("#access-code", applicant["access_code"])
    page.press("#access-code", "Enter")
    expect(page.locator("#message")).to_have_text(say("access_code_used", lang))


def test_online_input_before_the_letter_and_payment(server, visit):
    """The credential is right, but the CA has not both the signed letter and the payment."""
    applicant = server.application(returned=False, online_input=False, approve=False)
    tab = visit("en")
    tab.goto("/online-input")
    tab.page.fill("#enrollment-id", applicant["enrollment_id"])
    tab.page.fill("#access-code", applicant["access_code"])
    tab.page.press("#access-code", "Enter")
    expect(tab.page.locator("#message")).to_have_text(say("online_input_too_early", "en"))
    tab.goto("/status")
    tab.page.fill("#enrollment-id", applicant["enrollment_id"])
    tab.page.press("#enrollment-id", "Enter")
    expect(tab.page.locator("#state-text")).to_have_text(say("state_inquiry_sent", "en"))
    expect(tab.page.locator("#stages li[aria-current=step]")).to_contain_text(
        say("stage_inquiry", "en")
    )


@pytest.mark.parametrize("lang", LANGS)
def test_unknown_enrollment_id_on_the_status_page(server, visit, lang):
    tab = visit(lang)
    tab.goto("/status")
    tab.page.fill("#enrollment-id", "00000-00000")
    tab.page.press("#enrollment-id", "Enter")
    expect(tab.page.locator("#message")).to_have_text(say("unknown_enrollment", lang))
    expect(tab.page.locator("#result")).to_be_hidden()

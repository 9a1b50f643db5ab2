"""What an applicant met in the first hour, in the browser: the .p12 that could be lost by
leaving the page before saving it, a PIN typed before the approval, the lock-out wording of the
online input, the step numbers, and the CA page on a phone."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from playwright.sync_api import expect

from jitsuin.server.web.strings import CLIENT, PAGE, SUCCESS_EN, SUCCESS_JA

LANGS = ["ja", "en"]
PASSPHRASE = "eight or more"


def say(key: str, lang: str, **values: object) -> str:
    return CLIENT[key][0 if lang == "ja" else 1].format(**values)


def page_says(key: str, lang: str, **values: object) -> str:
    return PAGE[key][0 if lang == "ja" else 1].format(**values)


def enrollments(tab) -> list:
    return [r for r in tab.requests if r.url.endswith("/.well-known/est/simpleenroll")]


@pytest.mark.parametrize("lang", LANGS)
def test_the_page_asks_before_it_is_left_until_the_p12_is_saved(server, visit, lang):
    applicant = server.application()
    tab = visit(lang)
    page = tab.page
    tab.goto("/pickup")
    page.fill("#enrollment-id", applicant["enrollment_id"])
    page.fill("#pin", applicant["pin"])
    page.click("#pickup-form button[type=submit]")
    expect(page.locator("#passphrase-step")).to_be_visible(timeout=30_000)
    page.fill("#passphrase", PASSPHRASE)
    page.fill("#passphrase-again", PASSPHRASE)
    page.click("#passphrase-form button[type=submit]")
    heading = page.locator("#success-heading")
    # The heading says what happened: a file was made; nothing was installed.
    expect(heading).to_have_text(SUCCESS_JA if lang == "ja" else SUCCESS_EN, timeout=60_000)
    assert "インストール" not in heading.inner_text() and "install" not in heading.inner_text()
    expect(page.locator("#save-state")).to_have_text(page_says("not_saved_yet", lang))
    tab.screenshot("10-pickup-not-saved")

    dialogs: list[str] = []

    def answer(dialog) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()  # "stay on this page"

    page.on("dialog", answer)
    # Built but not saved: leaving asks first, and staying keeps the file on offer.
    page.click("nav a[href^='/ca-certificates']")
    expect(page.locator("#success")).to_be_visible()
    assert dialogs == ["beforeunload"], "the page let the unsaved key go without asking"
    assert "/pickup" in page.url

    saved = []
    for _ in range(2):  # saved, then saved again: the page still holds the file
        with page.expect_download() as download:
            page.click("#download-p12")
        saved.append(download.value.path().read_bytes())
        expect(page.locator("#save-state")).to_have_text(say("saved", lang))
        expect(page.locator("#download-p12")).to_have_text(say("save_again", lang))
    assert saved[0] == saved[1]
    key, certificate, _ = pkcs12.load_key_and_certificates(saved[0], PASSPHRASE.encode())
    assert key is not None and certificate is not None
    assert key.public_key() == certificate.public_key()
    tab.screenshot("10-pickup-saved")

    # Saved: the page may be left without a question.
    page.click("nav a[href^='/ca-certificates']")
    page.wait_for_url("**/ca-certificates*")
    assert dialogs == ["beforeunload"]


@pytest.mark.parametrize("lang", LANGS)
def test_a_pickup_before_the_approval_says_to_wait_for_the_pin_email(server, visit, lang):
    """No PIN exists before the approval: the page says to wait for the PIN e-mail and does not
    send the made-up PIN again (after the approval it would count as a wrong try)."""
    applicant = server.application(approve=False)  # online input done, not approved yet
    tab = visit(lang)
    page = tab.page
    tab.goto("/pickup")
    page.fill("#enrollment-id", applicant["enrollment_id"])
    page.fill("#pin", "12345678")
    page.click("#pickup-form button[type=submit]")
    expect(page.locator("#message")).to_have_text(say("not_approved_yet", lang), timeout=20_000)
    expect(page.locator("#pickup-form button[type=submit]")).to_be_enabled()
    tab.screenshot("10-pickup-not-approved")
    first = enrollments(tab)[0].response()
    assert first is not None and first.status == 202  # EST keeps its 202 + Retry-After (1 s)
    # Well past the server's Retry-After, nothing was sent again.
    page.wait_for_timeout(2500)
    assert len(enrollments(tab)) == 1, "the page sent the made-up PIN again"
    # The approval comes; the try made before it cost nothing, and the mailed PIN works.
    server.approve(applicant["id"], applicant["enrollment_id"])
    assert server.state(applicant["id"])["pin"]["attempts"] == 0


def test_a_try_for_an_application_without_a_pin_is_not_counted(server):
    """A closed application has no PIN (closing withdraws it): a try is refused uncompared and
    uncounted, like one before the approval (EST 202), and is not audited."""
    applicant = server.application()
    server.ok("POST", f"/ra/applications/{applicant['id']}/reject", "root", {"reason": "test"})
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    status, body = server.simpleenroll(applicant["enrollment_id"], applicant["pin"], csr)
    assert status == 403 and b"no download PIN" in body
    record = server.state(applicant["id"])
    assert record["state"] == "rejected" and record["pin"]["attempts"] == 0
    actions, after = [], 0
    while entries := server.ok("GET", f"/ra/audit?after={after}&limit=1000", "root")["entries"]:
        actions += [e["action"] for e in entries if e["target"] == f"application/{applicant['id']}"]
        after = entries[-1]["seq"]
    assert actions, "the filter found the application's entries"
    assert "redeem.wrong_pin" not in actions


@pytest.mark.parametrize("lang", LANGS)
def test_online_input_lock_out_wording_follows_max_attempts(start_server, visit, lang):
    """[ra] max_attempts = 3: "2 more", then the singular "1 more wrong try", then "now locked"
    on the third, with the number from the configuration."""
    own = start_server(max_attempts=3, attempt_backoff_seconds=0)
    applicant = own.application(online_input=False, approve=False)
    tab = visit(lang, on=own)
    page = tab.page
    tab.goto("/online-input")
    page.fill("#enrollment-id", applicant["enrollment_id"])
    message = page.locator("#message")
    expected = [
        say("wrong_access_code", lang, left=2),
        say("wrong_access_code_one", lang),
        say("wrong_access_code_now_locked", lang, max=3),
        say("access_code_locked", lang, max=3),
    ]
    for n, text in enumerate(expected):
        page.fill("#access-code", str(n) * 26)
        page.press("#access-code", "Enter")
        expect(message).to_have_text(text)
        expect(page.locator("#credential-form button[type=submit]")).to_be_enabled()
        if n == 2:
            tab.screenshot("06-online-input-now-locked")
    if lang == "en":
        assert "1 more wrong try will" in expected[1]
    # The pickup page's PIN hint takes the number from the configuration too.
    tab.goto("/pickup")
    expect(page.locator("#pin-hint")).to_have_text(page_says("pin_hint", lang, max=3))


@pytest.mark.parametrize("lang", LANGS)
def test_the_status_page_numbers_the_steps_as_the_page_titles_do(server, visit, lang):
    applicant = server.application(approve=False, online_input=False)
    tab = visit(lang)
    page = tab.page
    tab.goto("/status")
    page.fill("#enrollment-id", applicant["enrollment_id"])
    page.press("#enrollment-id", "Enter")
    current = page.locator("#stages li[aria-current=step]")
    expect(current).to_contain_text(say("stage_online_input", lang))
    # The online input is step 6 here, as in the online input page's title; pickup is step 10.
    expect(current.locator(".step")).to_have_text(say("stage_step", lang, n=6))
    assert say("stage_step", lang, n=6).split()[-1].replace("ステップ", "") in (
        page_says("online_input_title", lang)
    )
    issued = page.locator("#stages li").last
    expect(issued.locator(".step")).to_have_text(say("stage_step", lang, n=10))
    assert "10" in page_says("pickup_title", lang)
    # The list shows these numbers only: no counter of its own (1-7) beside them.
    styles = page.eval_on_selector_all(
        "#stages li", "items => items.map(i => getComputedStyle(i).listStyleType)"
    )
    assert set(styles) == {"none"}
    tab.screenshot("status-steps")


@pytest.mark.parametrize("lang", LANGS)
def test_ca_certificates_on_a_narrow_screen(server, visit, lang):
    """375 px wide: each fact's name above its value, and the fingerprint in the letter's four
    rows of eight bytes, none broken inside."""
    tab = visit(lang)
    page = tab.page
    page.set_viewport_size({"width": 375, "height": 800})
    tab.goto("/ca-certificates")
    card = page.locator("section.certificate").first
    dt_box = card.locator("dt").first.bounding_box()
    dd_box = card.locator("dd").first.bounding_box()
    assert dt_box and dd_box
    assert dd_box["y"] >= dt_box["y"] + dt_box["height"] - 1, "the value sits beside its name"
    assert dd_box["width"] > 300, "the value column is too narrow"
    rows = card.locator(".fingerprint span")
    expect(rows).to_have_count(4)
    ca = server.ca_certificates()[-1]
    pairs = ca.fingerprint(hashes.SHA256()).hex(":").upper().split(":")
    for i in range(4):
        row = rows.nth(i)
        assert row.inner_text().rstrip(":") == ":".join(pairs[8 * i : 8 * i + 8])
        assert row.evaluate("r => r.getClientRects().length") == 1
        box = row.bounding_box()
        assert box and box["height"] < 40, "a row of the fingerprint wraps"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "the page scrolls sideways"
    tab.screenshot("11-ca-certificates-375px")


@pytest.mark.parametrize("lang", LANGS)
def test_check_asks_the_ocsp_responder_and_shows_a_revocation(server, visit, tmp_path, lang):
    """A certificate that chains to the CA but was revoked is not given the green verdict: the
    page asks this origin's OCSP responder and shows the revocation, its date and its reason."""
    applicant, certificate, cert_pem, _ = server.enrolled(tmp_path / "subscriber")
    tab = visit(lang)
    page = tab.page
    verdict = page.locator("#verdict")

    def check() -> str:
        tab.goto("/check")
        page.check("#kind-certificate")
        page.set_input_files("#file", str(cert_pem))
        page.click("#check-form button[type=submit]")
        expect(page.locator("#result")).to_be_visible(timeout=30_000)
        return page.locator("#details").inner_text()

    details = check()
    expect(verdict).to_have_attribute("data-verdict", "ok")
    assert say("result_status", lang) in details
    server.ok(
        "POST",
        f"/ra/applications/{applicant['id']}/revoke",
        "bob",
        {"reason": "keyCompromise"},
    )
    assert server.state(applicant["id"])["state"] == "revoked"
    details = check()
    expect(verdict).to_have_attribute("data-verdict", "revoked")
    expect(verdict).to_have_text(say("verdict_revoked", lang))
    assert say("revocation_reason_keyCompromise", lang) in details
    assert say("result_revocation_reason", lang) in details
    assert str(dt.datetime.now(dt.UTC).year) in details.split(say("result_status", lang))[1]
    tab.screenshot("12-check-revoked")
    asked = [r for r in tab.requests if r.url == f"{server.https}/ocsp"]
    assert len(asked) == 2 and all(r.method == "POST" for r in asked)
    request = ocsp.load_der_ocsp_request(asked[-1].post_data_buffer or b"")
    assert request.serial_number == certificate.serial_number
    assert request.extensions.get_extension_for_class(x509.OCSPNonce)


def test_the_cli_offers_the_lost_key_path(server, tmp_path):
    """A subscriber lost the key: `ra show` of the issued application names the way out, `ra
    revoke --help` describes it, and the revocation it names is what /check and OCSP then show."""
    applicant, certificate, _, _ = server.enrolled(tmp_path / "lost")
    jitsuin = str(Path(sys.executable).with_name("jitsuin"))
    env = {**os.environ, **server.env, "JITSUIN_OPERATOR_TOKEN": server.tokens["bob"]}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [jitsuin, "--home", str(server.home), "ra", *args],
            capture_output=True, text=True, env=env, check=False, timeout=60,
        )  # fmt: skip

    shown = run("show", applicant["id"])
    assert shown.returncode == 0 and json.loads(shown.stdout)["state"] == "issued"
    assert f"jitsuin ra revoke {applicant['id']} --reason" in shown.stderr
    assert "jitsuin ra create" in shown.stderr
    described = run("revoke", "--help")
    assert "lost the key" in described.stdout and "superseded" in described.stdout
    revoked = run("revoke", applicant["id"], "--reason", "superseded")
    assert revoked.returncode == 0, revoked.stderr
    assert server.state(applicant["id"])["state"] == "revoked"
    # Once revoked, `show` no longer offers it.
    assert "ra revoke" not in run("show", applicant["id"]).stderr
    reply = server.fetch(
        "/ocsp",
        data=ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, server.ca_certificates()[-1], hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
    )
    answer = ocsp.load_der_ocsp_response(reply[2])
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.superseded

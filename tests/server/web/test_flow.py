"""A subscriber in the browser through the seed's steps 6 → 10 → 11 → 12, against a running
server, with the application taken through the RA flow by operators in the test. The downloaded
.p12 must open with cryptography and with openssl, hold a key that matches its certificate, and
the private key must never have reached the server: not in any request the page sent, not in the
database, not in the server's log."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from playwright.sync_api import expect

from jitsuin.ca.verify import Verdict, verify_subscriber
from jitsuin.server.web.strings import CLIENT, SUCCESS_EN, SUCCESS_JA

PASSPHRASE = "correct horse 馬 battery"
ITERATIONS = 600000


def say(key: str, lang: str, **values: object) -> str:
    return CLIENT[key][0 if lang == "ja" else 1].format(**values)


def verify(certificate: x509.Certificate, cas: list[x509.Certificate]) -> Verdict:
    """jitsuin.ca.verify in a thread of its own (Playwright's loop runs in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, verify_subscriber(certificate, cas)).result()


def private_key_forms(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> list[bytes]:
    """The private key as bytes in every form a leak could take: PKCS#8 and the algorithm's own
    DER, the secret numbers, and those in hex, base64 and base64url (JWK)."""
    raw: list[bytes] = [
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    ]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8
        raw.append(key.private_numbers().private_value.to_bytes(size, "big"))
    else:
        numbers = key.private_numbers()
        for value in (numbers.d, numbers.p, numbers.q):
            raw.append(value.to_bytes((value.bit_length() + 7) // 8, "big"))
    forms = list(raw)
    for secret in raw:
        forms += [
            secret.hex().encode(),
            secret.hex().upper().encode(),
            base64.b64encode(secret),
            base64.urlsafe_b64encode(secret).rstrip(b"="),
        ]
    return forms


def assert_absent(forms: list[bytes], haystack: bytes, where: str) -> None:
    for form in forms:
        assert form not in haystack, f"private key material found in {where}"


@pytest.mark.parametrize(("lang", "key_type"), [("ja", "ecdsa-p256"), ("en", "rsa-2048")])
def test_steps_6_10_11_12_in_the_browser(server, visit, tmp_path: Path, lang, key_type):
    applicant = server.application(online_input=False, approve=False)
    enrollment_id = applicant["enrollment_id"]
    tab = visit(lang)
    page = tab.page

    # -- step 6: the letter's QR code opens the page with the credential in the fragment --------
    tab.goto(f"/online-input#id={enrollment_id}&code={applicant['access_code']}")
    assert page.input_value("#enrollment-id") == enrollment_id
    assert page.input_value("#access-code") == applicant["access_code"]
    assert "#" not in page.url, "the credential must leave the address bar"
    tab.screenshot("06-online-input")
    page.click("#credential-form button[type=submit]")
    expect(page.locator("#review")).to_be_visible()
    vetted = page.locator("#vetted").inner_text()
    for shown in (applicant["email"], "Hanako Yamada", applicant["qualification_number"]):
        assert shown in vetted
    assert server.state(applicant["id"])["state"] == "awaiting_online_input"  # only shown
    tab.screenshot("06-online-input-review")
    page.click("#confirm")
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#done-heading")).to_be_focused()
    tab.screenshot("06-online-input-received")
    assert server.state(applicant["id"])["state"] == "online_input_received"

    # -- status: where it stands, and nothing personal --------------------------------------------
    tab.goto("/status")
    page.fill("#enrollment-id", enrollment_id.lower().replace("-", ""))  # as typed by a person
    page.press("#enrollment-id", "Enter")
    expect(page.locator("#state-text")).to_have_text(say("state_online_input_received", lang))
    result = page.locator("#result").inner_text()
    for personal in (applicant["email"], "Yamada", "Hanako", applicant["qualification_number"]):
        assert personal not in result
    tab.screenshot("status")

    # -- steps 7-9: a second operator approves; the PIN arrives by e-mail -------------------------
    pin = server.approve(applicant["id"], enrollment_id)

    # -- step 10: key pair, CSR, EST enrollment, PKCS#12, all in the page -------------------------
    tab.requests.clear()
    tab.goto("/pickup")
    tab.screenshot("10-pickup")
    page.fill("#enrollment-id", enrollment_id)
    page.fill("#pin", pin)
    page.check(f"#key-{key_type}")
    page.click("#pickup-form button[type=submit]")
    expect(page.locator("#passphrase-step")).to_be_visible(timeout=30_000)
    expect(page.locator("#issued-to")).to_contain_text(applicant["email"])
    tab.screenshot("10-pickup-passphrase")
    page.fill("#passphrase", PASSPHRASE)
    page.fill("#passphrase-again", PASSPHRASE)
    page.click("#passphrase-form button[type=submit]")
    heading = page.locator("#success-heading")
    expect(heading).to_have_text(SUCCESS_JA if lang == "ja" else SUCCESS_EN, timeout=60_000)
    expect(heading).to_be_focused()
    assert page.input_value("#passphrase") == ""
    tab.screenshot("10-pickup-success")
    with page.expect_download() as download:
        page.click("#download-p12")
    assert download.value.suggested_filename == f"jitsuin-{enrollment_id}.p12"
    p12_file = tmp_path / download.value.suggested_filename
    download.value.save_as(p12_file)
    with page.expect_download() as download:
        page.click("#download-cert")
    pem_file = tmp_path / download.value.suggested_filename
    download.value.save_as(pem_file)
    pickup_requests = list(tab.requests)

    # The .p12 opens with cryptography; the key is the certificate's; it chains to the CA.
    data = p12_file.read_bytes()
    key, certificate, extra = pkcs12.load_key_and_certificates(data, PASSPHRASE.encode())
    assert key is not None and certificate is not None
    assert key.public_key() == certificate.public_key()
    if key_type == "ecdsa-p256":
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    else:
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [applicant["email"]]
    cas = server.ca_certificates()
    assert extra == cas[-1:], "the .p12 carries the issuing CA certificate"
    assert verify(certificate, cas).ok
    assert x509.load_pem_x509_certificate(pem_file.read_bytes()) == certificate
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, b"not the passphrase")

    # ... and with openssl, which reports the protection: PBES2/PBKDF2-SHA256/AES-256-CBC, and
    # an HMAC-SHA256 MAC that it verifies.
    opened = subprocess.run(
        ["openssl", "pkcs12", "-in", str(p12_file), "-info", "-nodes", "-passin", "env:PASS"],
        capture_output=True, text=True, env={"PASS": PASSPHRASE}, check=False,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    pbes2 = f"PBES2, PBKDF2, AES-256-CBC, Iteration {ITERATIONS}, PRF hmacWithSHA256"
    assert f"MAC: sha256, Iteration {ITERATIONS}" in opened.stderr
    assert f"Shrouded Keybag: {pbes2}" in opened.stderr
    assert f"PKCS7 Encrypted data: {pbes2}" in opened.stderr
    keys = re.findall(
        r"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----", opened.stdout, re.S
    )
    assert len(keys) == 1
    from_openssl = serialization.load_pem_private_key(keys[0].encode(), None)
    assert from_openssl.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    refused = subprocess.run(
        ["openssl", "pkcs12", "-in", str(p12_file), "-info", "-noout", "-passin", "pass:wrong"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "mac verify error" in refused.stderr.lower()

    # -- the private key never reached the server -------------------------------------------------
    forms = private_key_forms(key)
    origin = server.https
    enrollments = []
    for request in pickup_requests:
        assert request.url.startswith((origin + "/", "blob:")), request.url
        assert_absent(forms, request.url.encode(), f"the URL {request.url}")
        headers = "\n".join(f"{k}: {v}" for k, v in request.all_headers().items()).encode()
        assert_absent(forms, headers, f"the headers of {request.url}")
        body = request.post_data_buffer or b""
        assert_absent(forms, body, f"the body of {request.method} {request.url}")
        if request.method != "GET":
            enrollments.append(request)
    # The only request with a body was the EST enrollment, carrying a CSR for the certified key.
    assert [(r.method, r.url) for r in enrollments] == [
        ("POST", f"{origin}/.well-known/est/simpleenroll")
    ]
    csr = x509.load_der_x509_csr(base64.b64decode(enrollments[0].post_data_buffer or b""))
    assert csr.is_signature_valid and csr.public_key() == certificate.public_key()
    for stored in [*sorted(server.home.glob("jitsuin.db*")), server.home / "server.log"]:
        assert_absent(forms, stored.read_bytes(), stored.name)
    assert page.context.cookies() == []

    # -- step 11: the CA certificates, with fingerprints to compare with the letter ---------------
    tab.goto("/ca-certificates")
    text = page.locator("main").inner_text()
    for ca in cas:
        assert ca.fingerprint(hashes.SHA256()).hex(":").upper() in text
    with page.expect_download() as download:
        page.click(f"a[href='/ca/{len(cas)}.crt']")
    assert Path(download.value.path()).read_bytes() == cas[-1].public_bytes(
        serialization.Encoding.DER
    )
    tab.screenshot("11-ca-certificates")

    # -- step 12: the .p12 with its passphrase, then the certificate alone ------------------------
    tab.goto("/check")
    page.check("#kind-p12")
    page.set_input_files("#file", str(p12_file))
    page.fill("#p12-passphrase", PASSPHRASE)
    page.click("#check-form button[type=submit]")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "ok", timeout=30_000)
    expect(verdict).to_have_text(say("verdict_ok", lang))
    details = page.locator("#details").inner_text()
    assert say("profile_general", lang) in details
    assert say("key_matches", lang) in details
    assert applicant["email"] in details
    assert str(certificate.not_valid_after_utc.year) in details
    tab.screenshot("12-check-p12")
    page.check("#kind-certificate")
    page.set_input_files("#file", str(pem_file))
    page.click("#check-form button[type=submit]")
    expect(verdict).to_have_attribute("data-verdict", "ok", timeout=30_000)
    tab.screenshot("12-check-certificate")
    # The check page sent no file, no key, no passphrase: only OCSP requests (RFC 6960) for the
    # certificate's serial number, one per check.
    check_requests = tab.requests[len(pickup_requests) :]
    posts = [r for r in check_requests if r.method != "GET"]
    assert all(not r.post_data_buffer for r in check_requests if r.method == "GET")
    assert [(r.method, r.url) for r in posts] == [("POST", f"{origin}/ocsp")] * 2
    for request in posts:
        asked = ocsp.load_der_ocsp_request(request.post_data_buffer or b"")
        assert asked.serial_number == certificate.serial_number
        assert_absent(forms, request.post_data_buffer or b"", "an OCSP request")
    assert say("result_status", lang) in page.locator("#details").inner_text()

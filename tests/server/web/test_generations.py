"""After a CA rollover, step 11 lists every generation and both link certificates with their
fingerprints (rendered from the authority, nothing hard-coded), and the step 12 check still
accepts a certificate of the old generation and one of the new."""

from __future__ import annotations

import base64
import json
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from playwright.sync_api import expect


def enroll(server) -> x509.Certificate:
    """A subscriber certificate through EST (the browser path is tested elsewhere)."""
    applicant = server.application()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    status, body = server.simpleenroll(
        applicant["enrollment_id"], applicant["pin"], csr.public_bytes(serialization.Encoding.DER)
    )
    assert status == 200, body
    (certificate,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
    return certificate


def test_ca_page_and_check_after_a_rollover(start_server, visit, tmp_path):
    server = start_server()
    old_leaf = enroll(server)
    server.ok("POST", "/ra/ca/rollover", "root")
    new_leaf = enroll(server)
    assert old_leaf.issuer == new_leaf.issuer  # same DN, different keys (docs/conformance.md C-04)

    tab = visit("en", on=server)
    tab.goto("/ca-certificates")
    page = tab.page
    text = page.locator("main").inner_text()
    published = json.loads(server.fetch("/ca/index.json")[2])
    assert [g["number"] for g in published["generations"]] == [1, 2]
    for generation in published["generations"]:
        assert generation["sha256"].upper() in text.replace(":", "")
    (link,) = published["links"]
    for kind in ("oldWithNew", "newWithOld"):
        assert link[kind]["sha256"].upper() in text.replace(":", "")
        path = re.sub(r"^https?://[^/]+", "", link[kind]["url"])
        assert page.locator(f"a[href='{path}']").count() == 1
        status, _, der = server.fetch(path)
        assert status == 200
        fingerprint = x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex()
        assert fingerprint == link[kind]["sha256"]
    assert "Generation 2" in text and "issuing now" in text
    tab.screenshot("11-ca-certificates-after-rollover")

    tab.goto("/check")
    for leaf, generation in ((old_leaf, "1"), (new_leaf, "2")):
        file = tmp_path / f"gen{generation}.pem"
        file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        page.set_input_files("#file", str(file))
        page.click("#check-form button[type=submit]")
        verdict = page.locator("#verdict")
        expect(verdict).to_have_attribute("data-verdict", "ok", timeout=20_000)
        details = page.locator("#details").inner_text()
        assert re.search(rf"CA generation\s+{generation}\b", details), details

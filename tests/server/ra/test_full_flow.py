"""The seed's procedure end to end (SEED-R6...R13) against the running app: operators over HTTP,
the applicant's online input over HTTP, the PIN e-mail through a real SMTP server, and the pickup
through RAService.redeem with a real CSR."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from jitsuin.ca.errors import CAError, Kind
from jitsuin.server.ra.errors import RAError, RAKind

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LETTER_CODE = re.compile(r"アクセスコード / Access code: <span class=\"code\">([^<]+)</span>")
LETTER_ID = re.compile(r"受付番号 / Enrollment ID: <span class=\"code\">([^<]+)</span>")


def subject_values(cert: x509.Certificate) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for attribute in cert.subject:
        values.setdefault(attribute.oid.dotted_string, []).append(str(attribute.value))
    return values


@pytest.mark.parametrize(
    "letter_first", [True, False], ids=["letter-then-payment", "payment-then-letter"]
)
async def test_seed_flow_over_http(server, letter_first):
    vetted = {
        "familyName": "Yamada",
        "givenName": "Hanako",
        "email": "hanako.yamada@example.jp",
        "qualificationGroup": "member",
        "qualificationNumber": "JP-2024-0042",
    }

    # Step 1: an operator enters the mailed application form.
    reply = await server.call(
        "POST", "/ra/applications", "alice", body=server.application_body(**vetted)
    )
    created = reply.expect(201).json
    app_id = created["id"]
    path = f"/ra/applications/{app_id}"
    assert reply.headers["Location"] == path
    assert created["state"] == "received"
    assert created["createdBy"] == "alice"
    assert {k: created[k] for k in vetted} == vetted

    # Step 2: document review by another reviewer: accepted.
    reply = await server.call("POST", path + "/review", "carol", body=server.review_body())
    reviewed = reply.expect(200).json
    assert reviewed["state"] == "documents_accepted"
    assert reviewed["reviewedBy"] == "carol"
    assert reviewed["review"]["deficiencies"] == []

    # Step 3: the inquiry packet. JSON first: the credential is in this response only.
    reply = await server.call(
        "POST", path + "/inquiry", "alice", body={"trackingNumber": "RD123456785JP"}
    )
    sent = reply.expect(200).json
    assert reply.headers["Cache-Control"] == "no-store"
    enrollment_id = sent["enrollmentId"]
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", enrollment_id)
    assert len(sent["accessCode"]) == 26 and set(sent["accessCode"]) <= set(CROCKFORD)
    assert sent["application"]["state"] == "inquiry_sent"
    assert sent["application"]["enrollmentId"] == enrollment_id
    assert sent["application"]["trackingNumber"] == "RD123456785JP"
    invoice = sent["application"]["invoice"]
    assert invoice == {"number": invoice["number"], "amount": 11000}

    # The printable packet (a resend: a lost packet gets a new code, the enrollment ID stays).
    reply = await server.call(
        "POST",
        path + "/inquiry",
        "alice",
        body={"trackingNumber": "RD987654325JP"},
        headers={"Accept": "text/html"},
    )
    reply.expect(200)
    assert reply.content_type == "text/html"
    assert reply.headers["Cache-Control"] == "no-store"
    letter = reply.text
    assert LETTER_ID.findall(letter) == [enrollment_id]
    assert "<svg" in letter, "the online-input notice carries no QR code"
    # step 11: the CA certificate's fingerprint is printed, to compare with the download
    ca_fingerprint = server.authority.current.certificate.fingerprint(hashes.SHA256()).hex()
    pairs = [ca_fingerprint[i : i + 2].upper() for i in range(0, 64, 2)]
    # four rows of eight bytes, as on the CA certificates page
    for row in range(4):
        assert ":".join(pairs[row * 8 : row * 8 + 8]) in letter
    assert "Hanako Yamada 様" in letter  # [ca] name_order = "given-family", as the certificate
    assert invoice["number"] in letter and "11,000" in letter
    (printed_code,) = LETTER_CODE.findall(letter)
    assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{1,5}){5}", printed_code)
    assert printed_code.replace("-", "") != sent["accessCode"], "a resend kept the old code"
    assert (await server.record(app_id)).state == "inquiry_sent"

    # Steps 4 and 5 in either order (SEED-R10, R11).
    letter_body = {"signed": True, "sealed": True, "selfInking": False}
    payment_body = {"invoiceNumber": invoice["number"], "amount": 11000}
    steps = [("letter", letter_body, "identity_confirmed"), ("payment", payment_body, "paid")]
    if not letter_first:
        steps.reverse()
    (first, first_body, between), (second, second_body, _) = steps
    reply = await server.call("POST", f"{path}/{first}", "alice", body=first_body)
    assert reply.expect(200).json["state"] == between
    # Before both have arrived the applicant cannot input yet, even with the right code.
    early = await server.online_input(enrollment_id, printed_code, confirm=True)
    assert early.problem(409)["state"] == between
    reply = await server.call("POST", f"{path}/{second}", "alice", body=second_body)
    assert reply.expect(200).json["state"] == "awaiting_online_input"

    # Nothing can be picked up before approval.
    _, csr_pem = server.csr()
    with pytest.raises(RAError) as pending:
        await server.ra.redeem(enrollment_id, "00000000", csr_pem, "test", "192.0.2.66")
    assert pending.value.kind is RAKind.PENDING

    # Step 6: the applicant looks at the data first (nothing changes), then confirms.
    reply = await server.online_input(enrollment_id, printed_code, confirm=False)
    shown = reply.expect(200).json
    assert shown["state"] == "awaiting_online_input"
    assert shown["confirmed"] is False
    assert {k: shown[k] for k in vetted} == vetted
    stored = await server.record(app_id)
    assert stored.state == "awaiting_online_input"
    assert stored.access_used_at is None and stored.online_input_at is None

    reply = await server.online_input(enrollment_id, printed_code, confirm=True)
    confirmed = reply.expect(200).json
    assert confirmed["state"] == "online_input_received"
    assert confirmed["confirmed"] is True

    # Steps 7-9: a different operator (an approver) approves; the PIN goes out by e-mail.
    reply = await server.call("POST", path + "/approve", "bob")
    approved = reply.expect(200).json
    assert approved["state"] == "approved"
    assert approved["approvedBy"] == "bob"

    (message,) = await server.mailbox.wait_for(vetted["email"], 1)
    mail = server.mailbox.parse_pin_mail(message)
    assert mail.to == vetted["email"]
    assert "PIN" in mail.subject and "ダウンロード" in mail.subject
    assert mail.enrollment_id == enrollment_id
    assert re.fullmatch(r"[0-9]{8}", mail.pin)
    assert len(base64.urlsafe_b64decode(mail.eab_key + "=")) == 32
    assert "電子証明書の発行が承認されました" in mail.text  # Japanese
    assert "Your certificate has been approved" in mail.text  # English
    assert "Hanako Yamada 様" in mail.text and "Dear Hanako Yamada" in mail.text

    record = await server.wait_state(app_id, "pin_sent")
    # The EAB key in the mail is the one ACME will check (kid = enrollment ID).
    assert server.ra.eab_key(record) == mail.eab_key.encode()

    # Step 10: a CSR whose subject contradicts the vetted record is refused, PIN not spent.
    _, contradicting = server.csr(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Somebody Else")])
    )
    with pytest.raises(CAError) as refused:
        await server.ra.redeem(enrollment_id, mail.pin, contradicting, "test", "192.0.2.1")
    assert refused.value.kind is Kind.BAD_SUBJECT
    assert (await server.record(app_id)).state == "pin_sent"

    # An empty subject: the certificate is made from the vetted record only.
    key, csr_pem = server.csr()
    redeemed = await server.ra.redeem(enrollment_id, mail.pin, csr_pem, "test", "192.0.2.1")
    assert redeemed.repeated is False
    assert redeemed.application.state == "issued"
    cert = x509.load_der_x509_certificate(redeemed.certificate_der)
    assert subject_values(cert) == {
        NameOID.COMMON_NAME.dotted_string: ["Hanako Yamada"],
        NameOID.GIVEN_NAME.dotted_string: ["Hanako"],
        NameOID.SURNAME.dotted_string: ["Yamada"],
        NameOID.TITLE.dotted_string: ["Registered Member"],  # the group's title (SEED-R4)
        NameOID.SERIAL_NUMBER.dotted_string: ["JP-2024-0042"],
    }
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [vetted["email"]]
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cert.verify_directly_issued_by(server.authority.current.certificate)

    # The application and the certificate store agree.
    record = await server.record(app_id)
    assert record.state == "issued"
    assert record.pin_used_at is not None
    assert record.eab_key_sealed is None
    assert record.certificate_serial == format(cert.serial_number, "x")
    stored_cert = await server.authority.store.certificate(
        record.certificate_generation, cert.serial_number
    )
    assert stored_cert.der == redeemed.certificate_der
    assert stored_cert.status == "valid"
    assert stored_cert.email == vetted["email"]
    reply = await server.call("GET", path, "bob")
    assert reply.expect(200).json["certificate"] == {
        "generation": record.certificate_generation,
        "serial": record.certificate_serial,
    }

    # A retry after a lost response: same PIN, same key -> the same certificate.
    again = await server.ra.redeem(enrollment_id, mail.pin, csr_pem, "test", "192.0.2.1")
    assert again.repeated is True
    assert again.certificate_der == redeemed.certificate_der
    assert await server.authority.store.count_certificates() == 1
    # Same PIN, another key: refused.
    _, other_csr = server.csr()
    with pytest.raises(RAError) as other:
        await server.ra.redeem(enrollment_id, mail.pin, other_csr, "test", "192.0.2.1")
    assert other.value.kind is RAKind.LOCKED
    assert await server.authority.store.count_certificates() == 1


async def test_csr_subject_that_agrees_is_not_copied(server):
    """A CSR may name the person; what it adds beyond the vetted record never reaches the
    certificate (docs/flow.md step 10)."""
    flow = await server.prepare("pin_sent", givenName="Jiro", familyName="Sato")
    _, csr_pem = server.csr(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "Jiro Sato"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Decoy Org"),
                x509.NameAttribute(NameOID.TITLE, "Chief Decoy"),
            ]
        )
    )
    redeemed = await server.ra.redeem(flow.enrollment_id, flow.pin, csr_pem, "test", "192.0.2.1")
    cert = x509.load_der_x509_certificate(redeemed.certificate_der)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == []
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.TITLE)] == [
        "Registered Member"
    ]
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [
        "Jiro Sato"
    ]

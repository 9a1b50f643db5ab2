"""ACME request payloads and resource objects (protocol/acme/messages.py), in memory: what each
parser accepts, which ACME error type each refusal carries, and the JSON each object writes
(RFC 8555 §7; docs/protocols.md, ACME 8, 9, 14 and 15)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.messages import Identifier
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.jose import b64u_encode

T = dt.datetime(2026, 12, 6, 5, 0, 0, tzinfo=dt.UTC)


def _refused(call: Any, *args: Any) -> AcmeError:
    with pytest.raises(AcmeError) as caught:
        call(*args)
    return caught.value


# -- times (RFC 3339) -----------------------------------------------------------------------------
def test_times_are_written_in_utc_with_z() -> None:
    assert messages.rfc3339(T) == "2026-12-06T05:00:00Z"
    tokyo = T.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert messages.rfc3339(tokyo) == "2026-12-06T05:00:00Z"


@pytest.mark.parametrize(
    "text", ["2026-12-06T05:00:00Z", "2026-12-06T14:00:00+09:00", "2026-12-06t05:00:00z"]
)
def test_times_are_read_as_utc(text: str) -> None:
    assert messages.parse_rfc3339(text, "notBefore") == T


@pytest.mark.parametrize("value", ["2026-12-06T05:00:00", "yesterday", 1765000000, None])
def test_a_time_without_an_offset_or_not_a_time_is_malformed(value: Any) -> None:
    assert _refused(messages.parse_rfc3339, value, "notBefore").type is ErrorType.MALFORMED


# -- identifiers (§7.1.4, RFC 8738, RFC 8823) -----------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"type": "dns", "value": "www.example.com"}, Identifier("dns", "www.example.com")),
        ({"type": "dns", "value": "*.example.com"}, Identifier("dns", "*.example.com")),
        ({"type": "dns", "value": "xn--bcher-kva.jp"}, Identifier("dns", "xn--bcher-kva.jp")),
        ({"type": "ip", "value": "192.0.2.1"}, Identifier("ip", "192.0.2.1")),
        ({"type": "ip", "value": "2001:db8::1"}, Identifier("ip", "2001:db8::1")),
        ({"type": "email", "value": "taro@example.jp"}, Identifier("email", "taro@example.jp")),
    ],
)  # fmt: skip
def test_identifiers_that_are_accepted(value: dict[str, str], expected: Identifier) -> None:
    assert messages.parse_identifier(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("WWW.example.com", "lower case"),
        ("bücher.example", "A-label"),
        ("example.com.", "dot"),
        ("localhost", "two labels"),
        ("a..example", "LDH"),
        ("-a.example", "LDH"),
        ("ab--c.example", "third and fourth"),
        ("xn--zz.example", "IDNA"),
        ("www.*.example.com", "LDH"),
        ("example.123", "all digits"),
        ("a" * 64 + ".example", "LDH"),
    ],
)
def test_dns_names_must_be_lower_case_a_labels(value: str, why: str) -> None:
    error = _refused(messages.parse_identifier, {"type": "dns", "value": value})
    assert error.type is ErrorType.MALFORMED
    assert why in error.detail


@pytest.mark.parametrize("value", ["2001:DB8::1", "2001:db8:0:0:0:0:0:1", "192.0.2.01", "1.2.3"])
def test_ip_identifiers_are_in_their_canonical_text(value: str) -> None:
    # RFC 8738 §3: RFC 5952 text for IPv6, the dotted quad for IPv4
    assert _refused(messages.parse_identifier, {"type": "ip", "value": value}).type is (
        ErrorType.MALFORMED
    )


@pytest.mark.parametrize("value", ["Taro@example.jp", "taro", "taro@localhost", "a b@example.jp"])
def test_email_identifiers_are_plain_lower_case_addresses(value: str) -> None:
    # lower case because the RA vets addresses in lower case (SEED-R6)
    assert _refused(messages.parse_identifier, {"type": "email", "value": value}).type is (
        ErrorType.MALFORMED
    )


def test_an_unknown_identifier_type_is_unsupported() -> None:
    error = _refused(messages.parse_identifier, {"type": "uri", "value": "https://example.com"})
    assert error.type is ErrorType.UNSUPPORTED_IDENTIFIER


@pytest.mark.parametrize("value", [None, "dns:a.example", {"type": "dns"}, {"type": 1, "value": 2}])
def test_an_identifier_must_be_an_object_of_strings(value: Any) -> None:
    assert _refused(messages.parse_identifier, value).type is ErrorType.MALFORMED


def test_a_wildcard_authorizes_its_base_name() -> None:
    wildcard = Identifier("dns", "*.example.com")
    assert wildcard.wildcard
    assert wildcard.base == Identifier("dns", "example.com")
    assert not Identifier("dns", "example.com").wildcard
    assert Identifier("ip", "192.0.2.1").base == Identifier("ip", "192.0.2.1")


def test_identifiers_are_deduplicated_and_sorted() -> None:
    value = [
        {"type": "dns", "value": "b.example"},
        {"type": "dns", "value": "a.example"},
        {"type": "dns", "value": "b.example"},
    ]
    assert messages.parse_identifiers(value) == (
        Identifier("dns", "a.example"),
        Identifier("dns", "b.example"),
    )


@pytest.mark.parametrize("value", [None, [], "a.example", [{}] * (messages.MAX_IDENTIFIERS + 1)])
def test_identifiers_are_a_bounded_non_empty_array(value: Any) -> None:
    assert _refused(messages.parse_identifiers, value).type is ErrorType.MALFORMED


def test_each_failing_identifier_is_a_subproblem() -> None:
    # §6.7.1: one subproblem per identifier, naming it
    error = _refused(
        messages.parse_identifiers,
        [
            {"type": "dns", "value": "ok.example"},
            {"type": "dns", "value": "BAD.example"},
            {"type": "uri", "value": "x"},
        ],
    )
    assert error.type is ErrorType.MALFORMED
    assert [(s.type, s.identifier) for s in error.subproblems] == [
        (ErrorType.MALFORMED, {"type": "dns", "value": "BAD.example"}),
        (ErrorType.UNSUPPORTED_IDENTIFIER, {"type": "uri", "value": "x"}),
    ]
    only_unsupported = _refused(
        messages.parse_identifiers,
        [{"type": "uri", "value": "x"}, {"type": "uri", "value": "y"}],
    )
    assert only_unsupported.type is ErrorType.UNSUPPORTED_IDENTIFIER


def test_a_single_failing_identifier_keeps_its_own_type() -> None:
    error = _refused(messages.parse_identifiers, [{"type": "uri", "value": "x"}])
    assert error.type is ErrorType.UNSUPPORTED_IDENTIFIER
    assert len(error.subproblems) == 1


# -- request payloads -----------------------------------------------------------------------------
def test_new_account() -> None:
    parsed = messages.parse_new_account(
        {
            "contact": ["mailto:taro@example.jp", "mailto:taro@example.jp"],
            "termsOfServiceAgreed": True,
            "externalAccountBinding": {"protected": "x"},
            "somethingNew": 1,  # §7.3: fields the server does not know are ignored
        }
    )
    assert parsed.contact == ("mailto:taro@example.jp",)
    assert parsed.terms_of_service_agreed and not parsed.only_return_existing
    assert parsed.external_account_binding == {"protected": "x"}
    assert messages.parse_new_account({}).contact is None


@pytest.mark.parametrize(
    ("contact", "kind"),
    [
        (["tel:+81312345678"], ErrorType.UNSUPPORTED_CONTACT),
        (["mailto:a@example.jp?subject=x"], ErrorType.INVALID_CONTACT),
        (["mailto:a@example.jp,b@example.jp"], ErrorType.INVALID_CONTACT),
        (["mailto:nobody"], ErrorType.INVALID_CONTACT),
        ([f"mailto:a{n}@example.jp" for n in range(11)], ErrorType.INVALID_CONTACT),
        ("mailto:a@example.jp", ErrorType.MALFORMED),
        ([1], ErrorType.MALFORMED),
    ],
)
def test_contacts(contact: Any, kind: ErrorType) -> None:
    assert _refused(messages.parse_new_account, {"contact": contact}).type is kind


@pytest.mark.parametrize("payload", [[], "x", None])
def test_a_payload_must_be_an_object(payload: Any) -> None:
    for parse in (messages.parse_new_account, messages.parse_new_order, messages.parse_finalize):
        assert _refused(parse, payload).type is ErrorType.MALFORMED


def test_flags_are_booleans() -> None:
    error = _refused(messages.parse_new_account, {"termsOfServiceAgreed": "yes"})
    assert error.type is ErrorType.MALFORMED


def test_an_account_update_may_only_deactivate() -> None:
    assert messages.parse_account_update({"status": "deactivated"}).deactivate
    assert not messages.parse_account_update({}).deactivate
    for status in ("valid", "revoked", 1):
        error = _refused(messages.parse_account_update, {"status": status})
        assert error.type is ErrorType.MALFORMED


def test_new_order() -> None:
    order = messages.parse_new_order(
        {
            "identifiers": [{"type": "email", "value": "taro@example.jp"}],
            "notBefore": "2026-12-06T05:00:00Z",
            "profile": "general",
            "replaces": "a.b",
        }
    )
    assert order.identifiers == (Identifier("email", "taro@example.jp"),)
    assert order.not_before == T and order.not_after is None
    assert (order.profile, order.replaces) == ("general", "a.b")


@pytest.mark.parametrize(
    "extra", [{"profile": ""}, {"profile": 1}, {"replaces": 1}, {"notAfter": "tomorrow"}]
)
def test_new_order_fields_are_typed(extra: dict[str, Any]) -> None:
    payload = {"identifiers": [{"type": "dns", "value": "a.example"}], **extra}
    assert _refused(messages.parse_new_order, payload).type is ErrorType.MALFORMED


def test_a_wildcard_cannot_be_pre_authorized() -> None:
    # §7.4.1
    assert messages.parse_new_authz({"identifier": {"type": "dns", "value": "a.example"}}) == (
        Identifier("dns", "a.example")
    )
    wildcard = {"identifier": {"type": "dns", "value": "*.a.example"}}
    error = _refused(messages.parse_new_authz, wildcard)
    assert error.type is ErrorType.MALFORMED


def test_finalize_carries_the_csr_in_base64url() -> None:
    assert messages.parse_finalize({"csr": b64u_encode(b"\x30\x00")}) == b"\x30\x00"
    for csr in ("MAA=", "MA+A", None):  # padded, standard alphabet, missing
        assert _refused(messages.parse_finalize, {"csr": csr}).type is ErrorType.MALFORMED


def test_revocation() -> None:
    parsed = messages.parse_revocation({"certificate": b64u_encode(b"\x30\x00"), "reason": 1})
    assert (parsed.certificate_der, parsed.reason) == (b"\x30\x00", 1)
    assert messages.parse_revocation({"certificate": "MAA"}).reason is None
    for reason in ("1", True, 1.0):
        error = _refused(messages.parse_revocation, {"certificate": "MAA", "reason": reason})
        assert error.type is ErrorType.BAD_REVOCATION_REASON
    assert _refused(messages.parse_revocation, {}).type is ErrorType.MALFORMED


# -- resource objects (docs/architecture.md, house habit 2: JSON spelling only in messages.py) ---
def test_an_order_object() -> None:
    order = messages.OrderObject(
        status="valid",
        expires=T,
        identifiers=[Identifier("email", "taro@example.jp")],
        authorizations=["https://ca.example/acme/authz/1"],
        finalize="https://ca.example/acme/order/1/finalize",
        not_after=T + dt.timedelta(days=396),
        certificate="https://ca.example/acme/cert/1",
    )
    assert order.to_json() == {
        "status": "valid",
        "expires": "2026-12-06T05:00:00Z",
        "identifiers": [{"type": "email", "value": "taro@example.jp"}],
        "authorizations": ["https://ca.example/acme/authz/1"],
        "finalize": "https://ca.example/acme/order/1/finalize",
        "notAfter": "2028-01-06T05:00:00Z",
        "certificate": "https://ca.example/acme/cert/1",
    }


def test_an_authorization_object_marks_a_wildcard() -> None:
    challenge = messages.ChallengeObject("dns-01", "https://ca.example/c/1", "valid", "tok", T)
    authz = messages.AuthorizationObject(
        Identifier("dns", "example.com"), "valid", T, [challenge], wildcard=True
    )
    assert authz.to_json() == {
        "identifier": {"type": "dns", "value": "example.com"},
        "status": "valid",
        "expires": "2026-12-06T05:00:00Z",
        "challenges": [
            {
                "type": "dns-01",
                "url": "https://ca.example/c/1",
                "status": "valid",
                "token": "tok",
                "validated": "2026-12-06T05:00:00Z",
            }
        ],
        "wildcard": True,
    }
    assert (
        "wildcard"
        not in messages.AuthorizationObject(
            Identifier("dns", "example.com"), "pending", T, []
        ).to_json()
    )


def test_an_account_object() -> None:
    account = messages.AccountObject("valid", ["mailto:a@example.jp"], "https://ca.example/o")
    assert account.to_json() == {
        "status": "valid",
        "contact": ["mailto:a@example.jp"],
        "orders": "https://ca.example/o",
    }


def test_the_directory() -> None:
    directory = messages.Directory(
        {"newNonce": "https://ca.example/acme/new-nonce"},
        terms_of_service="https://ca.example/tos",
        profiles={"general": "personal certificates"},
    )
    assert directory.to_json() == {
        "newNonce": "https://ca.example/acme/new-nonce",
        "meta": {
            "externalAccountRequired": True,
            "termsOfService": "https://ca.example/tos",
            "profiles": {"general": "personal certificates"},
        },
    }


# -- CSR identifiers (§7.4) and ARI ids (RFC 9773 §4.1) -------------------------------------------
KEY = ec.generate_private_key(ec.SECP256R1())


def _csr(*names: x509.GeneralName, cn: str | None = None) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(KEY, hashes.SHA256())


def test_the_identifiers_a_csr_asks_for() -> None:
    csr = _csr(
        x509.DNSName("WWW.Example.com"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.1")),
        x509.RFC822Name("Taro@example.jp"),
        cn="www.example.com",
    )
    found, names = messages.csr_identifiers(csr)
    assert found == {
        Identifier("dns", "www.example.com"),
        Identifier("ip", "192.0.2.1"),
        Identifier("email", "taro@example.jp"),
    }
    assert names == ["www.example.com"]
    assert messages.csr_identifiers(_csr()) == (set(), [])


def test_a_csr_asking_for_another_kind_of_name_is_bad_csr() -> None:
    csr = _csr(x509.UniformResourceIdentifier("https://example.com"))
    assert _refused(messages.csr_identifiers, csr).type is ErrorType.BAD_CSR


@pytest.mark.parametrize("serial", [1, 127, 128, 255, 256, 2**159 - 1])
def test_ari_ids_round_trip(serial: int) -> None:
    octets = messages.serial_octets(serial)
    assert not octets[0] & 0x80  # a positive INTEGER
    key_id = b"\x01" * 20
    assert messages.parse_ari_cert_id(f"{b64u_encode(key_id)}.{b64u_encode(octets)}") == (
        key_id,
        serial,
    )


@pytest.mark.parametrize(
    "value",
    [
        "AQ",  # no dot
        "AQ.",  # no serial
        ".AQ",  # no key id
        "AQ.gA",  # negative serial
        "AQ.AAE",  # not minimally encoded
        "AQ." + b64u_encode(b"\x01" * 21),  # longer than 20 octets
        "AQ=.AQ",  # padded
    ],
)
def test_bad_ari_ids_are_malformed(value: str) -> None:
    assert _refused(messages.parse_ari_cert_id, value).type is ErrorType.MALFORMED

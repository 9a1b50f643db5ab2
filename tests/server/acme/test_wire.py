"""The sans-IO layer (jitsuin.protocol.jose, jitsuin.protocol.acme) against RFC test vectors and
the refusals it must make without a server."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from jitsuin.protocol.acme import challenges
from jitsuin.protocol.acme.messages import Identifier, dns_problem, parse_identifier
from jitsuin.protocol.acme.problems import STATUS, AcmeError, ErrorType
from jitsuin.protocol.acme.status import (
    AUTHORIZATION,
    ORDER,
    AuthzStatus,
    Event,
    IllegalTransition,
    OrderStatus,
    next_status,
)
from jitsuin.protocol.jose import (
    JOSEError,
    JOSEErrorKind,
    b64u_decode,
    jwk_of,
    parse_eab,
    parse_flattened,
    parse_jwk,
    sign_flattened,
    verify_eab,
    verify_signature,
)

# RFC 7638 §3.1 (the RSA key of RFC 7517 Appendix A.1).
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJ"
    "ECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qv"
    "zqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZ"
    "u0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_rfc7638_thumbprint():
    assert parse_jwk(RFC7638_JWK).thumbprint() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rfc8037_ed25519_thumbprint():
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert parse_jwk(jwk).thumbprint() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize("text", ["ab=", "a+b/", "YQ==", "YR", "!", 7])
def test_base64url_is_strict(text):
    with pytest.raises(JOSEError):
        b64u_decode(text)


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "oct", "k": "AAAA"},
        {**RFC7638_JWK, "d": "AQAB"},
    ],
    ids=["p521", "x25519", "oct", "private"],
)
def test_keys_outside_the_allow_list(jwk):
    with pytest.raises(JOSEError) as caught:
        parse_jwk(jwk)
    assert caught.value.kind is JOSEErrorKind.BAD_KEY


def test_eddsa_signature_round_trip():
    key = ed25519.Ed25519PrivateKey.generate()
    jws = parse_flattened(sign_flattened({"url": "u", "nonce": "n"}, b"{}", key, "EdDSA"))
    verify_signature(jws, jwk_of(key.public_key()))
    with pytest.raises(JOSEError):
        verify_signature(jws, jwk_of(ed25519.Ed25519PrivateKey.generate().public_key()))


def test_eab_round_trip_and_refusals():
    account = jwk_of(ed25519.Ed25519PrivateKey.generate().public_key()).to_json()
    mac = b"k" * 32
    good = sign_flattened(
        {"kid": "K", "url": "https://x/new-account"}, json.dumps(account).encode(), mac, "HS512"
    )
    request = parse_eab(good, account, "https://x/new-account")
    assert verify_eab(request, mac) and not verify_eab(request, b"x" * 32)
    with pytest.raises(JOSEError):
        parse_eab(good, account, "https://x/other")


@pytest.mark.parametrize(
    "value",
    [
        "UPPER.example",
        "a_b.example",
        "example",
        "x" * 64 + ".example",
        "1.2.3.4",
        "xn--zz.example",
        "*.example.",
        "ü.example",
    ],
)
def test_dns_names_refused(value):
    assert dns_problem(value)


def test_identifier_types():
    assert parse_identifier({"type": "ip", "value": "2001:db8::1"}) == Identifier(
        "ip", "2001:db8::1"
    )
    with pytest.raises(AcmeError) as caught:
        parse_identifier({"type": "ip", "value": "2001:DB8::1"})
    assert caught.value.type is ErrorType.MALFORMED
    with pytest.raises(AcmeError) as caught:
        parse_identifier({"type": "uri", "value": "https://x"})
    assert caught.value.type is ErrorType.UNSUPPORTED_IDENTIFIER
    assert Identifier("dns", "*.a.example").base == Identifier("dns", "a.example")


def test_status_tables():
    assert next_status(ORDER, OrderStatus.READY, Event.FINALIZE) is OrderStatus.PROCESSING
    with pytest.raises(IllegalTransition):
        next_status(ORDER, OrderStatus.VALID, Event.FINALIZE)
    with pytest.raises(IllegalTransition):
        next_status(AUTHORIZATION, AuthzStatus.INVALID, Event.SUCCEED)
    assert ErrorType.ORDER_NOT_READY.urn == "urn:ietf:params:acme:error:orderNotReady"
    assert STATUS[ErrorType.ORDER_NOT_READY] == 403


def test_challenge_registry():
    assert challenges.offered(Identifier("dns", "a.example"), True) == ["dns-01"]
    assert challenges.offered(Identifier("ip", "192.0.2.1"), False) == ["http-01", "tls-alpn-01"]
    assert challenges.offered(Identifier("email", "a@example.com"), False) == []
    assert challenges.reverse_dns_name("192.0.2.1") == "1.2.0.192.in-addr.arpa"

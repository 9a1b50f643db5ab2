"""The JWS rules of RFC 8555 §6.2 and §7.3.4 (docs/protocols.md, ACME 1, 2 and 12), in memory:
requests are built with real keys and handed to jitsuin.protocol.jose, with no server between.

The rules that need server state (the nonce, the request URL, kid versus jwk and the account
lookup) are in the ACME service and are tested over HTTP in tests/server/acme/test_strict.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from jitsuin.protocol.jose import (
    ALGORITHMS,
    MAC_ALGORITHMS,
    JOSEError,
    JOSEErrorKind,
    algorithm,
    b64u_decode,
    b64u_encode,
    canonical_json,
    jwk_of,
    parse_eab,
    parse_flattened,
    parse_jwk,
    sign_flattened,
    verify_eab,
    verify_signature,
)

URL = "https://ca.example/acme/new-order"
NEW_ACCOUNT = "https://ca.example/acme/new-account"
P256 = ec.generate_private_key(ec.SECP256R1())
P384 = ec.generate_private_key(ec.SECP384R1())
ED25519 = ed25519.Ed25519PrivateKey.generate()
RSA2048 = rsa.generate_private_key(65537, 2048)
KEYS = {"ES256": P256, "ES384": P384, "EdDSA": ED25519, "RS256": RSA2048}


def _signed(key: Any = P256, alg: str = "ES256", payload: bytes | None = b"{}", **header: Any):
    return sign_flattened({"nonce": "abc", "url": URL, **header}, payload, key, alg)


def _with(jws: dict[str, str], **members: Any) -> dict[str, Any]:
    return {**jws, **members}


def _header(jws: dict[str, str]) -> dict[str, Any]:
    return json.loads(b64u_decode(jws["protected"]))


def _reheader(jws: dict[str, str], **changes: Any) -> dict[str, str]:
    """The same JWS with its protected header changed (the signature no longer covers it)."""
    header = {**_header(jws), **changes}
    return {**jws, "protected": b64u_encode(canonical_json(header))}


def _kind(call: Any, *args: Any) -> JOSEErrorKind:
    with pytest.raises(JOSEError) as caught:
        call(*args)
    return caught.value.kind


# -- base64url (RFC 7515 §2) ----------------------------------------------------------------------
def test_base64url_round_trips_without_padding() -> None:
    for data in (b"", b"f", b"fo", b"foo", bytes(range(256))):
        text = b64u_encode(data)
        assert "=" not in text
        assert b64u_decode(text) == data


@pytest.mark.parametrize("text", ["Zm9v=", "Zm+v", "Zm/v", "Zg=", "Zh", "A", 7, None])
def test_base64url_is_strict(text: Any) -> None:
    # padding, the standard alphabet, a stray trailing bit ("Zh" is "Zg" with a bit set), a
    # length no encoding has, and non-strings are all refused as malformed
    assert _kind(b64u_decode, text) is JOSEErrorKind.MALFORMED


# -- algorithms (§6.2) ----------------------------------------------------------------------------
def test_the_allow_list() -> None:
    assert set(ALGORITHMS) == {"ES256", "ES384", "EdDSA", "RS256"}
    assert set(MAC_ALGORITHMS) == {"HS256", "HS384", "HS512"}


@pytest.mark.parametrize("name", ["none", "HS256", "PS256", "ES512", "RS1", "es256", "", 256, None])
def test_an_algorithm_off_the_list_is_bad_signature_algorithm(name: Any) -> None:
    with pytest.raises(JOSEError) as caught:
        algorithm(name)
    assert caught.value.kind is JOSEErrorKind.BAD_ALGORITHM
    assert "ES256" in caught.value.message  # the answer lists what is accepted


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_each_accepted_algorithm_verifies(alg: str) -> None:
    key = KEYS[alg]
    jws = parse_flattened(_signed(key, alg))
    verify_signature(jws, jwk_of(key.public_key()))
    assert jws.protected["alg"] == alg
    assert jws.payload_json() == {}


def test_an_unsigned_jws_is_bad_signature_algorithm() -> None:
    # RFC 7518 §3.6 "none": an empty signature with an algorithm nobody should accept
    jws = _reheader(_signed(), alg="none")
    assert _kind(parse_flattened, _with(jws, signature="")) is JOSEErrorKind.BAD_ALGORITHM


def test_an_empty_signature_with_a_known_algorithm_is_malformed() -> None:
    assert _kind(parse_flattened, _with(_signed(), signature="")) is JOSEErrorKind.MALFORMED


def test_a_mac_algorithm_cannot_sign_a_request() -> None:
    jws = parse_flattened(sign_flattened({"url": URL}, b"{}", b"k" * 32, "HS256"))
    assert _kind(verify_signature, jws, jwk_of(P256.public_key())) is JOSEErrorKind.BAD_ALGORITHM


@pytest.mark.parametrize(
    ("alg", "key"), [("ES384", P256), ("ES256", P384), ("RS256", P256), ("EdDSA", RSA2048)]
)
def test_the_algorithm_must_fit_the_key(alg: str, key: Any) -> None:
    jws = parse_flattened(_signed(KEYS[alg], alg))
    assert _kind(verify_signature, jws, jwk_of(key.public_key())) is JOSEErrorKind.BAD_ALGORITHM


# -- signatures (RFC 7515 §5.2) -------------------------------------------------------------------
def test_a_signature_by_another_key_does_not_verify() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    jws = parse_flattened(_signed(other))
    assert _kind(verify_signature, jws, jwk_of(P256.public_key())) is JOSEErrorKind.BAD_SIGNATURE


def test_a_changed_payload_does_not_verify() -> None:
    signed = _signed(payload=b'{"a":1}')
    jws = parse_flattened(_with(signed, payload=b64u_encode(b'{"a":2}')))
    assert _kind(verify_signature, jws, jwk_of(P256.public_key())) is JOSEErrorKind.BAD_SIGNATURE


def test_a_changed_header_does_not_verify() -> None:
    jws = parse_flattened(_reheader(_signed(), url="https://elsewhere.example/"))
    assert _kind(verify_signature, jws, jwk_of(P256.public_key())) is JOSEErrorKind.BAD_SIGNATURE


def test_an_ecdsa_signature_must_be_r_and_s_of_the_curve_size() -> None:
    # RFC 7518 §3.4: 64 octets for P-256. With a zero octet before S, a lenient reader would
    # still find the right integers; the length alone refuses it.
    signed = _signed()
    raw = b64u_decode(signed["signature"])
    for bad in (raw[:32] + b"\0" + raw[32:], raw[:-1], raw + b"\0"):
        jws = parse_flattened(_with(signed, signature=b64u_encode(bad)))
        kind = _kind(verify_signature, jws, jwk_of(P256.public_key()))
        assert kind is JOSEErrorKind.BAD_SIGNATURE


def test_post_as_get_signs_the_empty_payload() -> None:
    jws = parse_flattened(_signed(payload=None))
    assert jws.payload == b""
    assert jws.payload_b64 == ""
    verify_signature(jws, jwk_of(P256.public_key()))


# -- the flattened serialization only (§6.2) ------------------------------------------------------
def test_the_compact_serialization_is_refused() -> None:
    jws = _signed()
    compact = ".".join((jws["protected"], jws["payload"], jws["signature"]))
    assert _kind(parse_flattened, compact) is JOSEErrorKind.MALFORMED


def test_the_general_serialization_is_refused() -> None:
    jws = _signed()
    general = {
        "payload": jws["payload"],
        "signatures": [{"protected": jws["protected"], "signature": jws["signature"]}],
    }
    with pytest.raises(JOSEError, match="general JWS serialization"):
        parse_flattened(general)


def test_an_unprotected_header_is_refused() -> None:
    with pytest.raises(JOSEError, match="unprotected"):
        parse_flattened(_with(_signed(), header={"kid": "x"}))


@pytest.mark.parametrize("missing", ["protected", "payload", "signature"])
def test_every_member_is_required(missing: str) -> None:
    jws = _signed()
    del jws[missing]
    with pytest.raises(JOSEError, match=f"lacks {missing}"):
        parse_flattened(jws)


def test_unknown_members_are_refused() -> None:
    with pytest.raises(JOSEError, match="unexpected JWS members: extra"):
        parse_flattened(_with(_signed(), extra="1"))


@pytest.mark.parametrize(
    "body", [b"", b"[]", b"not json", b'{"protected": 1, "payload": "", "signature": "AA"}']
)
def test_a_body_that_is_no_jws_object_is_malformed(body: bytes) -> None:
    assert _kind(parse_flattened, body) is JOSEErrorKind.MALFORMED


@pytest.mark.parametrize(
    "extension", [{"b64": False, "crit": ["b64"]}, {"b64": True}, {"crit": ["exp"], "exp": 1}]
)
def test_unencoded_payloads_and_critical_extensions_are_refused(extension: Any) -> None:
    # RFC 7797 "b64": false would sign the raw payload; RFC 7515 §4.1.11 "crit" names
    # extensions the server would have to understand
    jws = _signed(**extension)
    with pytest.raises(JOSEError, match="critical header extensions"):
        parse_flattened(jws)


def test_a_protected_header_that_is_not_an_object_is_refused() -> None:
    jws = _with(_signed(), protected=b64u_encode(b"[1]"))
    with pytest.raises(JOSEError, match="not a JSON object"):
        parse_flattened(jws)


def test_duplicate_header_members_are_refused() -> None:
    # two "alg" members would let two parsers read two different algorithms
    text = b'{"alg":"ES256","alg":"none","url":"' + URL.encode() + b'"}'
    jws = _with(_signed(), protected=b64u_encode(text))
    assert _kind(parse_flattened, jws) is JOSEErrorKind.MALFORMED


def test_a_payload_that_is_not_json_is_malformed_when_read() -> None:
    jws = parse_flattened(_signed(payload=b"\xff not json"))
    assert _kind(jws.payload_json) is JOSEErrorKind.MALFORMED


# -- keys (RFC 7517, RFC 7638) --------------------------------------------------------------------
@pytest.mark.parametrize("key", [P256, P384, ED25519, RSA2048], ids=["P-256", "P-384", "Ed25519",
                                                                      "RSA-2048"])  # fmt: skip
def test_a_public_jwk_reads_back_as_the_same_key(key: Any) -> None:
    jwk = jwk_of(key.public_key())
    parsed = parse_jwk(jwk.to_json())
    assert parsed.same_key(key.public_key())
    assert parsed.thumbprint() == jwk.thumbprint()


def test_the_thumbprint_of_rfc_7638_section_3_1() -> None:
    # The example key of RFC 7638 §3.1 and the thumbprint the RFC gives for it.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    jwk = parse_jwk({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"})
    assert jwk.thumbprint() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert set(jwk.to_json()) == {"kty", "n", "e"}  # only the required members are kept


def test_the_thumbprint_hashes_the_required_members_in_order() -> None:
    jwk = jwk_of(P256.public_key())
    members = jwk.to_json()
    expected = hashlib.sha256(
        json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    ).digest()
    assert b64u_decode(jwk.thumbprint()) == expected


def test_private_key_members_are_refused() -> None:
    public = jwk_of(P256.public_key()).to_json()
    d = b64u_encode(P256.private_numbers().private_value.to_bytes(32, "big"))
    assert _kind(parse_jwk, {**public, "d": d}) is JOSEErrorKind.BAD_KEY


def test_a_small_rsa_key_is_refused() -> None:
    small = rsa.generate_private_key(65537, 1024)  # noqa: S505 (refused, as it should be)
    with pytest.raises(JOSEError, match="at least 2048") as caught:
        parse_jwk(jwk_of(small.public_key()).to_json())
    assert caught.value.kind is JOSEErrorKind.BAD_KEY


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"kty": "oct", "k": "AAAA"}, JOSEErrorKind.BAD_KEY),
        ({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}, JOSEErrorKind.BAD_KEY),
        ({"kty": "OKP", "crv": "X25519", "x": "AA"}, JOSEErrorKind.BAD_KEY),
        ({"kty": "EC", "crv": "P-256", "x": "AA"}, JOSEErrorKind.MALFORMED),
        ({"kty": 1}, JOSEErrorKind.MALFORMED),
        ([], JOSEErrorKind.MALFORMED),
    ],
)
def test_unsupported_or_broken_keys_are_refused(value: Any, kind: JOSEErrorKind) -> None:
    assert _kind(parse_jwk, value) is kind


def test_a_point_off_the_curve_is_refused() -> None:
    members = jwk_of(P256.public_key()).to_json()
    y = bytearray(b64u_decode(members["y"]))
    y[-1] ^= 1
    assert _kind(parse_jwk, {**members, "y": b64u_encode(bytes(y))}) is JOSEErrorKind.BAD_KEY


# -- External Account Binding (§7.3.4) -------------------------------------------------------------
MAC_KEY = b"m" * 32
ACCOUNT_JWK = jwk_of(P256.public_key()).to_json()


def _eab(
    header: dict[str, Any] | None = None, payload: Any = ACCOUNT_JWK, alg: str = "HS256"
) -> dict[str, str]:
    protected = {"kid": "enrollment-1", "url": NEW_ACCOUNT} if header is None else header
    return sign_flattened(protected, canonical_json(payload), MAC_KEY, alg)


@pytest.mark.parametrize("alg", sorted(MAC_ALGORITHMS))
def test_a_binding_verifies_with_its_mac_key_only(alg: str) -> None:
    request = parse_eab(_eab(alg=alg), ACCOUNT_JWK, NEW_ACCOUNT)
    assert (request.kid, request.alg) == ("enrollment-1", alg)
    assert verify_eab(request, MAC_KEY)
    assert not verify_eab(request, b"n" * 32)


def test_a_binding_must_use_a_mac_algorithm() -> None:
    binding = sign_flattened({"kid": "k", "url": NEW_ACCOUNT}, b"{}", P256, "ES256")
    assert _kind(parse_eab, binding, ACCOUNT_JWK, NEW_ACCOUNT) is JOSEErrorKind.BAD_ALGORITHM


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"kid": "k", "url": NEW_ACCOUNT, "nonce": "abc"}, "must not carry a nonce"),
        ({"kid": "k", "url": NEW_ACCOUNT, "jwk": ACCOUNT_JWK}, "must not carry a jwk"),
        ({"url": NEW_ACCOUNT}, "lacks its kid"),
        ({"kid": "", "url": NEW_ACCOUNT}, "lacks its kid"),
        ({"kid": "k", "url": NEW_ACCOUNT + "/"}, "not the newAccount URL"),
        ({"kid": "k"}, "not the newAccount URL"),
    ],
)
def test_the_binding_header(header: dict[str, Any], message: str) -> None:
    with pytest.raises(JOSEError, match=message):
        parse_eab(_eab(header), ACCOUNT_JWK, NEW_ACCOUNT)


def test_the_binding_must_sign_the_outer_key_exactly() -> None:
    other = jwk_of(P384.public_key()).to_json()
    with pytest.raises(JOSEError, match="payload is not the account key"):
        parse_eab(_eab(payload=other), ACCOUNT_JWK, NEW_ACCOUNT)

"""Property-based tests of the protocol layer's parsers: whatever bytes or JSON a client sends,
JOSE (RFC 7515 / RFC 8555 §6.2), the ACME request payloads (RFC 8555 §7) and the EST body
(RFC 7030 §4, RFC 8951) either parse or refuse with the layer's own error type (JOSEError,
AcmeError, BadBody), which the server's edge maps to the protocol's error format. Any other
exception is a 500 waiting to happen.

The inputs are hostile on purpose: JSON nested thousands deep, integers of more than 4,300
digits (Python's int-to-str limit), members of the wrong JSON type, bytes that are not UTF-8,
Unicode digits and dates at the ends of the calendar.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jitsuin.protocol import est, untrusted
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.problems import AcmeError
from jitsuin.protocol.jose import (
    JOSEError,
    algorithm,
    b64u_decode,
    b64u_encode,
    jwk_of,
    parse_eab,
    parse_flattened,
    parse_jwk,
    sign_flattened,
    verify_signature,
)

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a failure is never chance
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- hostile JSON ---------------------------------------------------------------------------------
UNICODE_DIGITS = st.sampled_from(["²", "٣", "५", "１２", "𝟗", "Ⅻ", "〇", "¹⁰"])
EXTREME_DATES = st.sampled_from(
    [
        "0001-01-01",
        "9999-12-31",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "2024-02-30T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "+10000-01-01T00:00:00Z",
        "1970-01-01T00:00:00+99:00",
        "２０２４-０１-０１T00:00:00Z",
    ]
)
TEXT = st.one_of(
    st.text(max_size=40), UNICODE_DIGITS, EXTREME_DATES, st.text(max_size=3).map(lambda s: s * 400)
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
# Every JSON value a parser can be handed once the body is decoded (the reader bounds depth and
# integer length before any parser sees the value).
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


RAW_JSON = st.one_of(
    JSON.map(lambda value: json.dumps(value).encode()),
    st.builds(_nested, st.integers(900, 60_000), st.sampled_from(["array", "object"])),
    st.integers(4_301, 30_000).map(lambda n: b"7" * n),
    st.integers(4_301, 30_000).map(lambda n: b'{"protected":' + b"9" * n + b"}"),
    st.binary(max_size=80),
    st.text(max_size=20).map(lambda s: json.dumps({"a": s}).encode("utf-16")),
    st.sampled_from(
        [
            b"NaN",
            b"-Infinity",
            b'{"a": NaN}',
            b"1e999999",
            b'"\\ud800"',
            b"\xef\xbb\xbf{}",
            b"{}trailing",
            b'{"a":1,"a":2}',
            b"\x00",
            b'{"\xff": 1}',
            b"",
        ]
    ),
)


# -- the one JSON reader (protocol/untrusted.py) ---------------------------------------------------
@BOUNDED
@given(st.one_of(RAW_JSON, RAW_JSON.map(lambda b: b.decode("utf-8", "surrogateescape"))))
def test_any_body_is_json_within_the_limits_or_an_input_error(body: bytes | str) -> None:
    try:
        value = untrusted.read_json(body)
    except untrusted.InputError:
        return
    # What is accepted is plain JSON within the limits: it writes back out, and reads the same.
    text = json.dumps(value, allow_nan=False)
    assert untrusted.read_json(text) == value


@BOUNDED
@given(JSON)
def test_plain_json_within_the_limits_reads_back_unchanged(value: Any) -> None:
    text = json.dumps(value)
    try:
        assert untrusted.read_json(text.encode()) == value
    except untrusted.InputError as exc:
        # Only the documented limits refuse valid JSON: integer digits, string length, U+0000 /
        # surrogates (st.text makes both).
        assert any(word in exc.message for word in ("digits", "U+0000", "longer", "number")), (
            exc.message
        )


@BOUNDED
@given(st.integers(1, 40), st.sampled_from(["array", "object"]))
def test_nesting_deeper_than_the_limit_is_refused(depth: int, kind: str) -> None:
    body = _nested(depth, kind)
    limit = untrusted.DEFAULT_LIMITS.max_depth
    try:
        untrusted.read_json(body)
    except untrusted.InputError:
        assert depth > limit
        return
    assert depth <= limit


@BOUNDED
@given(
    st.one_of(
        TEXT,
        st.integers(-5, 10**25).map(str),
        st.builds(lambda zeros, n: "0" * zeros + str(n), st.integers(1, 40), st.integers(0, 2000)),
    ),
    st.sampled_from([0, 1000, 10**9]),
)
def test_a_query_number_is_ascii_digits_within_range_or_refused(text: str, maximum: int) -> None:
    try:
        value = untrusted.decimal(text, "limit", maximum)
    except untrusted.InputError:
        assert not (text.isascii() and text.isdigit() and int(text) <= maximum)
        return
    assert text.isascii() and text.isdigit() and 0 <= value <= maximum


# -- JOSE -----------------------------------------------------------------------------------------
def _b64json(value: Any) -> str:
    return b64u_encode(json.dumps(value).encode())


HEADER_NAMES = ["alg", "jwk", "kid", "nonce", "url", "b64", "crit", "typ"]
HEADERS = st.dictionaries(st.sampled_from(HEADER_NAMES), JSON, max_size=5) | JSON
JWKS = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"kty": st.one_of(st.sampled_from(["EC", "RSA", "OKP", "oct"]), JSON)},
        optional={
            name: st.one_of(JSON, st.binary(max_size=70).map(b64u_encode))
            for name in ("crv", "x", "y", "n", "e", "d")
        },
    ),
)
B64_OR_JSON = st.one_of(st.binary(max_size=40).map(b64u_encode), JSON, st.text(max_size=20))


@BOUNDED
@given(RAW_JSON)
def test_a_jws_body_parses_or_is_refused_as_malformed(body: bytes) -> None:
    with contextlib.suppress(JOSEError):
        parse_flattened(body)


@BOUNDED
@given(
    protected=st.one_of(HEADERS.map(_b64json), B64_OR_JSON),
    payload=st.one_of(RAW_JSON.map(b64u_encode), B64_OR_JSON),
    signature=B64_OR_JSON,
    extra=st.dictionaries(st.sampled_from(["header", "signatures", "x"]), JSON, max_size=1),
)
def test_any_flattened_jws_parses_or_is_refused(
    protected: Any, payload: Any, signature: Any, extra: dict[str, Any]
) -> None:
    """Every member of the flattened JWS and of its protected header may have any type; each
    step the server takes with a parsed one (alg, jwk, payload JSON, signature check) refuses
    with a JOSEError only."""
    value = {"protected": protected, "payload": payload, "signature": signature, **extra}
    try:
        jws = parse_flattened(value)
    except JOSEError:
        return
    for step in (
        lambda: algorithm(jws.protected.get("alg")),
        lambda: parse_jwk(jws.protected.get("jwk")),
        jws.payload_json,
        lambda: verify_signature(jws, jwk_of(KEY.public_key())),
    ):
        with contextlib.suppress(JOSEError):
            step()


KEY = ec.generate_private_key(ec.SECP256R1())


@BOUNDED
@given(JWKS)
def test_any_jwk_is_a_key_or_refused(value: Any) -> None:
    with contextlib.suppress(JOSEError):
        parse_jwk(value)


@BOUNDED
@given(header=HEADERS, payload=RAW_JSON, url=st.sampled_from(["u", ""]))
def test_any_external_account_binding_is_refused_cleanly(
    header: Any, payload: bytes, url: str
) -> None:
    """The inner JWS of §7.3.4, signed with a MAC key over any header and payload."""
    protected = header if isinstance(header, dict) else {"alg": header}
    try:
        inner = sign_flattened({"url": url, **protected}, payload, b"k" * 32, "HS256")
    except (TypeError, ValueError):
        return  # a header json.dumps cannot write is not a request anyone can send
    # sign_flattened sets alg; put the hostile one back into the protected header.
    inner["protected"] = _b64json({"url": url, **protected})
    with contextlib.suppress(JOSEError):
        parse_eab(inner, jwk_of(KEY.public_key()).to_json(), url)


@BOUNDED
@given(st.one_of(JSON, st.text(alphabet="AZaz09-_=+/.", max_size=12)))
def test_base64url_decodes_or_is_refused(value: Any) -> None:
    try:
        data = b64u_decode(value)
    except JOSEError:
        return
    assert b64u_encode(data) == value  # only the canonical spelling is accepted


# -- ACME payloads (RFC 8555 §7.3-§7.6) -----------------------------------------------------------
IDENTIFIER = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {
            "type": st.one_of(st.sampled_from(["dns", "ip", "email", "x"]), JSON),
            "value": st.one_of(
                st.sampled_from(["a.example", "*.a.example", "::1", "1.2.3.4", "a@b.example"]),
                st.from_regex(r"[a-z0-9.*-]{0,70}", fullmatch=True),
                TEXT,
                JSON,
            ),
        }
    ),
)


def _payload(**members: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return JSON | st.fixed_dictionaries({}, optional=members)


PAYLOADS = {
    messages.parse_new_account: _payload(
        contact=st.one_of(JSON, st.lists(st.one_of(TEXT, st.just("mailto:a@b.example")))),
        termsOfServiceAgreed=JSON,
        onlyReturnExisting=JSON,
        externalAccountBinding=JSON,
    ),
    messages.parse_account_update: _payload(
        contact=JSON, status=st.one_of(JSON, st.just("deactivated")), termsOfServiceAgreed=JSON
    ),
    messages.parse_new_order: _payload(
        identifiers=st.one_of(JSON, st.lists(IDENTIFIER, max_size=4)),
        notBefore=st.one_of(EXTREME_DATES, JSON),
        notAfter=st.one_of(EXTREME_DATES, JSON),
        profile=JSON,
        replaces=JSON,
    ),
    messages.parse_new_authz: _payload(identifier=IDENTIFIER),
    messages.parse_finalize: _payload(csr=B64_OR_JSON),
    messages.parse_revocation: _payload(certificate=B64_OR_JSON, reason=JSON),
}


@BOUNDED
@given(st.sampled_from(sorted(PAYLOADS, key=lambda f: f.__name__)).flatmap(
    lambda parse: st.tuples(st.just(parse), PAYLOADS[parse])
))  # fmt: skip
def test_any_acme_payload_parses_or_is_an_acme_problem(case: tuple[Any, Any]) -> None:
    parse, payload = case
    with contextlib.suppress(AcmeError):
        parse(payload)


@BOUNDED
@given(st.one_of(EXTREME_DATES, JSON, st.datetimes(timezones=st.timezones()).map(str)))
def test_any_rfc3339_value_is_a_utc_time_or_malformed(value: Any) -> None:
    try:
        parsed = messages.parse_rfc3339(value, "notAfter")
    except AcmeError:
        return
    assert parsed.tzinfo is dt.UTC


@BOUNDED
@given(st.one_of(st.text(max_size=60), st.text(alphabet="AZaz09-_.=", max_size=40)))
def test_any_renewal_info_id_parses_or_is_malformed(value: str) -> None:
    """RFC 9773 §4.1: the path segment of /acme/renewal-info/{cert_id}."""
    with contextlib.suppress(AcmeError):
        messages.parse_ari_cert_id(value)


# -- EST (RFC 7030 §4.2.1, RFC 8951 §3.2) ---------------------------------------------------------
@BOUNDED
@given(
    st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=120).map(base64.b64encode),
        st.binary(max_size=120).map(
            lambda der: (
                b"-----BEGIN CERTIFICATE REQUEST-----\n"
                + base64.encodebytes(der)
                + b"-----END CERTIFICATE REQUEST-----\n"
            )
        ),
        st.text(max_size=60).map(lambda s: s.encode("utf-8", "surrogatepass")),
    )
)
def test_any_est_body_decodes_or_is_refused(body: bytes) -> None:
    try:
        der = est.decode_base64_body(body)
    except est.BadBody:
        return
    assert der

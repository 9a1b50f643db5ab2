"""Property-based tests of the CA layer's two DER readers: a PKCS#10 request (RFC 2986, read by
``ca.csr``) and an OCSP request (RFC 6960 §4.1, read by ``ca.revocation.parse_request``).

Whatever bytes arrive (random ones, and real requests with bytes flipped, cut short or grown,
which reach far deeper into the ASN.1 than random bytes do) they are read or refused with the
layer's own error (CAError, BadOCSPRequest), which the edge answers as 400 / EST status /
OCSP malformedRequest. Any other exception would be a 500.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jitsuin.ca.clock import FixedClock
from jitsuin.ca.csr import load_csr, verify_csr
from jitsuin.ca.errors import CAError
from jitsuin.ca.generations import create_generation
from jitsuin.ca.keys import KeyType, SoftwareSigner, generate_private_key
from jitsuin.ca.revocation import BadOCSPRequest, build_response, find_issuer, parse_request

BOUNDED = settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a failure is never chance
    suppress_health_check=[HealthCheck.too_slow],
)


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("a@example.com")]), critical=False
        )
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _ocsp_request(algorithm: hashes.HashAlgorithm, nonce: bytes | None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")])
    now = dt.datetime.now(dt.UTC)
    issuer = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    builder = ocsp.OCSPRequestBuilder().add_certificate(issuer, issuer, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


CSRS = [
    _csr(ec.generate_private_key(ec.SECP256R1())),
    _csr(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
]
OCSP_REQUESTS = [
    _ocsp_request(hashes.SHA1(), None),  # noqa: S303 (RFC 5019 §2.1.1: CertID hashes are SHA-1)
    _ocsp_request(hashes.SHA256(), b"\x01" * 16),
    _ocsp_request(hashes.SHA224(), b"\x02" * 40),
]


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A real DER message with a few bytes replaced, then cut or grown."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        cut = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            return bytes(data[:cut])
        return bytes(data) + draw(st.binary(max_size=8))

    return build()


def pem(der: bytes) -> bytes:
    return (
        b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(der)
        + b"-----END CERTIFICATE REQUEST-----\n"
    )


@BOUNDED
@given(st.one_of(st.binary(max_size=300), mutated(CSRS), mutated(CSRS).map(pem)))
def test_any_bytes_are_a_verified_csr_or_a_ca_refusal(data: bytes) -> None:
    with contextlib.suppress(CAError):
        load_csr(data)
    with contextlib.suppress(CAError):
        verify_csr(data)


@BOUNDED
@given(st.one_of(st.binary(max_size=200), mutated(OCSP_REQUESTS)))
def test_any_bytes_are_an_ocsp_cert_id_or_malformed(data: bytes) -> None:
    with contextlib.suppress(BadOCSPRequest):
        parse_request(data)


def test_an_unknown_hash_algorithm_is_malformed_not_a_crash() -> None:
    """The hashAlgorithm OID of the CertID replaced by one no library knows."""
    der = OCSP_REQUESTS[1]
    sha256 = bytes.fromhex("0609608648016503040201")  # OID 2.16.840.1.101.3.4.2.1
    assert sha256 in der
    unknown = der.replace(sha256, bytes.fromhex("0609608648016503040263"))  # ...4.2.99
    try:
        parse_request(unknown)
    except BadOCSPRequest:
        return
    raise AssertionError("an unknown hash algorithm was accepted")


# A CA generation of our own: requests about its certificate reach build_response, as they do
# on the server once find_issuer matches the CertID's issuer hashes.
CLOCK = FixedClock()
GENERATION = create_generation(
    1,
    SoftwareSigner(generate_private_key(KeyType.ECDSA_P256)),
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz CA")]),
    CLOCK,
)
SERIAL = GENERATION.certificate.serial_number
SERIAL_OCTETS = SERIAL.to_bytes(
    (SERIAL.bit_length() + 8) // 8, "big"
)  # DER: a leading 0x00 if needed
ABOUT_THE_CA = [
    ocsp.OCSPRequestBuilder()
    .add_certificate(GENERATION.certificate, GENERATION.certificate, algorithm)
    .build()
    .public_bytes(serialization.Encoding.DER)
    for algorithm in (hashes.SHA256(), hashes.SHA384(), hashes.SHA512())
]


@st.composite
def about_the_ca(draw: st.DrawFn) -> bytes:
    """A request about the CA's own certificate whose serialNumber octets are changed (the
    issuer hashes stay right, so the responder goes on to answer)."""
    der = bytearray(draw(st.sampled_from(ABOUT_THE_CA)))
    start = bytes(der).rindex(SERIAL_OCTETS)
    for _ in range(draw(st.integers(1, 3))):
        der[start + draw(st.integers(0, len(SERIAL_OCTETS) - 1))] = draw(st.integers(0, 255))
    return bytes(der)


@BOUNDED
@given(st.one_of(about_the_ca(), mutated(ABOUT_THE_CA)))
def test_a_request_the_responder_accepts_can_be_answered(data: bytes) -> None:
    """Whatever CertID parse_request lets through, build_response can sign an answer for it
    (RFC 6960 §4.2.1: a request it cannot answer is malformedRequest, never a crash)."""
    try:
        cert_id = parse_request(data)
    except BadOCSPRequest:
        return
    if find_issuer([GENERATION], cert_id) is GENERATION:
        ocsp.load_der_ocsp_response(build_response(GENERATION, cert_id, "unknown", CLOCK.now()))


def test_a_negative_serial_number_is_malformed() -> None:
    """RFC 5280 §4.1.2.2: a serial number is a positive integer; found by bench/run.py fuzz."""
    der = bytearray(ABOUT_THE_CA[0])
    der[bytes(der).rindex(SERIAL_OCTETS)] |= 0x80
    try:
        cert_id = parse_request(bytes(der))
    except BadOCSPRequest:
        return
    assert cert_id.serial < 0
    build_response(GENERATION, cert_id, "unknown", CLOCK.now())

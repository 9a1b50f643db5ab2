"""May a certificate serve as an operator's TLS client credential? Who signed it (RFC 5280 §6.1.3),
its validity period (§4.1.2.5), its extended key usage (§4.2.1.12) and key usage (RFC 8446
§4.4.2.2). Real keys, real CA generations, certificates built with pyca/cryptography."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jitsuin.ca.client_auth import client_auth_refusal
from jitsuin.ca.clock import UTC, FixedClock
from jitsuin.ca.generations import create_generation, generation_by_key_id, issuing_generation
from jitsuin.ca.keys import KeyType, SoftwareSigner, generate_private_key

START = dt.datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Jitsuin Test Personal CA")])


def leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    eku: list[x509.ObjectIdentifier] | None = None,
    digital_signature: bool | None = True,
    days: int = 30,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hanako Yamada")]))
        .issuer_name(CA_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=days))
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if digital_signature is not None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=not digital_signature,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(ca_key, hashes.SHA256())


PERSONAL = [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH]


def test_the_generation_that_signed_it_and_no_other():
    keys = [generate_private_key(KeyType.ECDSA_P256) for _ in range(2)]
    generations = [
        create_generation(n, SoftwareSigner(k), CA_NAME, FixedClock(START))
        for n, k in enumerate(keys, start=1)
    ]
    assert issuing_generation(leaf(keys[0], eku=PERSONAL), generations) is generations[0]
    assert issuing_generation(leaf(keys[1], eku=PERSONAL), generations) is generations[1]
    # Another CA with the very same name: its signature does not verify.
    impostor = ec.generate_private_key(ec.SECP256R1())
    assert issuing_generation(leaf(impostor, eku=PERSONAL), generations) is None
    assert issuing_generation(leaf(keys[0], eku=PERSONAL), generations[1:]) is None


def test_the_authority_key_identifier_narrows_the_search_but_the_signature_decides():
    keys = [generate_private_key(KeyType.ECDSA_P256) for _ in range(2)]
    generations = [
        create_generation(n, SoftwareSigner(k), CA_NAME, FixedClock(START))
        for n, k in enumerate(keys, start=1)
    ]

    def with_aki(ca_key: ec.EllipticCurvePrivateKey, key_id: bytes) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hanako Yamada")]))
            .issuer_name(CA_NAME)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(START)
            .not_valid_after(START + dt.timedelta(days=30))
            .add_extension(x509.AuthorityKeyIdentifier(key_id, None, None), critical=False)
            .sign(ca_key, hashes.SHA256())
        )

    first, second = (g.key_identifier for g in generations)
    assert issuing_generation(with_aki(keys[1], second), generations) is generations[1]
    assert generation_by_key_id(generations, second) is generations[1]
    # The key identifier of generation 1 on a certificate generation 2 signed: neither.
    assert issuing_generation(with_aki(keys[1], first), generations) is None
    # Another CA copying generation 2's name and key identifier: none.
    impostor = ec.generate_private_key(ec.SECP256R1())
    assert issuing_generation(with_aki(impostor, second), generations) is None
    assert generation_by_key_id(generations, b"\x00" * 20) is None


def test_a_personal_certificate_within_its_validity_may_authenticate():
    ca_key = ec.generate_private_key(ec.SECP256R1())
    cert = leaf(ca_key, eku=PERSONAL)
    assert client_auth_refusal(cert, START) is None
    assert client_auth_refusal(cert, START + dt.timedelta(days=30)) is None
    assert "not valid before" in client_auth_refusal(cert, START - dt.timedelta(seconds=1))
    later = START + dt.timedelta(days=30, seconds=1)
    assert "expired" in client_auth_refusal(cert, later)


def test_client_auth_is_required_by_the_key_purposes():
    ca_key = ec.generate_private_key(ec.SECP256R1())
    no_client_auth = leaf(ca_key, eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    assert "lacks clientAuth" in client_auth_refusal(no_client_auth, START)
    server_only = leaf(ca_key, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    assert "lacks clientAuth" in client_auth_refusal(server_only, START)
    assert "no extended key usage" in client_auth_refusal(leaf(ca_key, eku=None), START)
    no_signing = leaf(ca_key, eku=PERSONAL, digital_signature=False)
    assert "digitalSignature" in client_auth_refusal(no_signing, START)
    # Without a key usage extension the key is not restricted (RFC 5280 §4.2.1.3).
    assert client_auth_refusal(leaf(ca_key, eku=PERSONAL, digital_signature=None), START) is None

"""CA generations, the CA key file and the clock (SEED-R15; docs/conformance.md C-01..C-04)."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from jitsuin.ca.clock import UTC, FixedClock, SystemClock
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import create_generation, ten_years_after
from jitsuin.ca.keys import CA_KEY_TYPES, KeyType, SoftwareSigner, generate_private_key

DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)

SIGNATURE = {
    KeyType.ECDSA_P384: (SignatureAlgorithmOID.ECDSA_WITH_SHA384, "sha384"),
    KeyType.ECDSA_P256: (SignatureAlgorithmOID.ECDSA_WITH_SHA256, "sha256"),
    KeyType.RSA_3072: (SignatureAlgorithmOID.RSA_WITH_SHA256, "sha256"),
    KeyType.RSA_4096: (SignatureAlgorithmOID.RSA_WITH_SHA256, "sha256"),
}


def test_ca_key_types():
    """docs/conformance.md C-03: P-384 first (default), then P-256, RSA-3072, RSA-4096;
    never RSA-2048 for a CA key used past 2030."""
    assert CA_KEY_TYPES == (
        KeyType.ECDSA_P384,
        KeyType.ECDSA_P256,
        KeyType.RSA_3072,
        KeyType.RSA_4096,
    )


def test_ca_certificate(ca_type, ca_generation, ca_created_at, ca_subject, generation_numbers):
    ca = ca_generation(ca_type)
    cert = ca.certificate
    assert ca.number == generation_numbers[ca_type]
    assert cert.version is x509.Version.v3
    assert cert.serial_number > 0 and cert.serial_number.bit_length() >= 64
    # C-01: self-signed; subject == issuer, byte for byte.
    parsed = asn1_x509.Certificate.load(ca.der)
    assert parsed["tbs_certificate"]["subject"].dump() == parsed["tbs_certificate"]["issuer"].dump()
    assert cert.subject == ca_subject
    cert.verify_directly_issued_by(cert)
    assert cert.public_key() == ca.signer.public_key()
    # C-02; SEED-R15: 10 calendar years, the last second inclusive.
    assert ca.not_before == cert.not_valid_before_utc == ca_created_at
    assert ca.not_after == ca_created_at.replace(year=ca_created_at.year + 10) - SECOND
    assert (ca.not_after - ca.not_before + SECOND) <= 3653 * DAY
    # C-01; RFC 5280 4.2.1.9: bC critical, cA true, no pathLen.
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical is True
    assert bc.value.ca is True
    assert bc.value.path_length is None
    # C-01; RFC 5280 4.2.1.3: KU critical keyCertSign + cRLSign + digitalSignature (OCSP).
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical is True
    assert ku.value == x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    # RFC 5280 4.2.1.1-2: SKI present, not critical, == AKI keyIdentifier.
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert ski.critical is False
    assert ski.value.digest == ca.key_identifier
    assert ski.value.digest == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    assert aki.value.key_identifier == ski.value.digest
    assert aki.value.authority_cert_issuer is None
    assert aki.value.authority_cert_serial_number is None
    # C-01: no EKU, no policies; nothing beyond these four extensions.
    assert {e.oid for e in cert.extensions} == {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
    # C-02; SEED-R3: SHA-384 for P-384, SHA-256 otherwise.
    oid, hash_name = SIGNATURE[ca_type]
    assert cert.signature_algorithm_oid == oid
    assert cert.signature_hash_algorithm.name == hash_name
    assert parsed["signature_algorithm"].dump() == parsed["tbs_certificate"]["signature"].dump()
    if ca_type.is_rsa:
        assert parsed["signature_algorithm"].dump() == bytes.fromhex(
            "300d06092a864886f70d01010b0500"
        )
    # C-03: at least 128-bit security.
    key = cert.public_key()
    if ca_type.is_rsa:
        assert key.key_size == ca_type.rsa_bits >= 3072
    else:
        assert (
            key.curve.name == {"ecdsa-p256": "secp256r1", "ecdsa-p384": "secp384r1"}[ca_type.value]
        )


def test_every_generation_has_the_same_subject_dn(ca_generation):
    """docs/conformance.md C-04: byte-identical subject DN; the key identifiers tell generations
    apart."""
    generations = [ca_generation(k) for k in CA_KEY_TYPES]
    subjects = {
        asn1_x509.Certificate.load(g.der)["tbs_certificate"]["subject"].dump() for g in generations
    }
    assert len(subjects) == 1
    assert len({g.key_identifier for g in generations}) == len(generations)


def test_issuance_cutoff_arithmetic(ca_generation):
    """SEED-R15; docs/conformance.md C-07: the last notBefore whose 396-day certificate ends inside
    the CA certificate, less the margin."""
    ca = ca_generation(KeyType.ECDSA_P256)
    validity = dt.timedelta(days=396)
    assert ca.issuance_cutoff(dt.timedelta(0)) == ca.not_after - validity + SECOND
    assert ca.issuance_cutoff(dt.timedelta(days=30)) == ca.not_after - validity + SECOND - 30 * DAY
    # A certificate starting at the cut-off ends exactly ``margin`` before the CA does.
    for margin in (dt.timedelta(0), 30 * DAY, dt.timedelta(hours=5)):
        last_not_after = ca.issuance_cutoff(margin) + validity - SECOND
        assert ca.not_after - last_not_after == margin
    # "About every 9 years": with a 30-day margin the generation issues for ~8.8 years.
    span = ca.issuance_cutoff(30 * DAY) - ca.not_before
    assert 8 * 365 * DAY < span < 9 * 365 * DAY


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(
            dt.datetime(2026, 10, 1, tzinfo=UTC),
            dt.datetime(2036, 9, 30, 23, 59, 59, tzinfo=UTC),
            id="ordinary",
        ),
        pytest.param(
            dt.datetime(2028, 2, 29, 12, 0, 0, tzinfo=UTC),
            dt.datetime(2038, 2, 28, 11, 59, 59, tzinfo=UTC),
            id="29-february",
        ),
        pytest.param(
            dt.datetime(2040, 2, 29, 0, 0, 0, tzinfo=UTC),
            dt.datetime(2050, 2, 27, 23, 59, 59, tzinfo=UTC),
            id="29-february-into-generalizedtime",
        ),
    ],
)
def test_ten_years_after(start, end):
    """C-02: the last second of 10 calendar years (29 February falls back to the 28th)."""
    assert ten_years_after(start) == end
    assert end - start + SECOND <= 3653 * DAY


def test_generation_created_on_29_february():
    signer = SoftwareSigner(generate_private_key(KeyType.ECDSA_P256))
    start = dt.datetime(2028, 2, 29, 8, 0, 0, tzinfo=UTC)
    ca = create_generation(5, signer, x509.Name([]), FixedClock(start))
    assert ca.not_before == start
    assert ca.not_after == dt.datetime(2038, 2, 28, 7, 59, 59, tzinfo=UTC)
    ca.certificate.verify_directly_issued_by(ca.certificate)


# -- the CA key file: encrypted PKCS#8 ---------------------------------------------------------
def test_encrypted_pkcs8_round_trip(ca_type, ca_generation):
    signer = ca_generation(ca_type).signer
    pem = signer.encrypted_pkcs8(b"correct horse battery staple")
    # Only ever encrypted: the PEM label says so, and no plain PKCS#8 label appears.
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert pem.rstrip().endswith(b"-----END ENCRYPTED PRIVATE KEY-----")
    assert b"BEGIN PRIVATE KEY" not in pem
    # keys.py: PBES2 with AES-256-CBC.
    _, _, der = asn1_pem.unarmor(pem)
    info = asn1_keys.EncryptedPrivateKeyInfo.load(der)
    algorithm = info["encryption_algorithm"]
    assert algorithm["algorithm"].native == "pbes2"
    assert algorithm["parameters"]["encryption_scheme"]["algorithm"].native == "aes256_cbc"
    # Round trip: same key type, same public key, and the loaded key signs verifiably.
    loaded = SoftwareSigner.from_encrypted_pkcs8(pem, b"correct horse battery staple")
    assert loaded.key_type is ca_type
    assert loaded.public_key() == signer.public_key()
    data = b"to be signed"
    signature = loaded.sign(data)
    hash_ = hashes.SHA384() if ca_type is KeyType.ECDSA_P384 else hashes.SHA256()
    if ca_type.is_rsa:
        signer.public_key().verify(signature, data, padding.PKCS1v15(), hash_)
    else:
        signer.public_key().verify(signature, data, ec.ECDSA(hash_))


@pytest.fixture(scope="module")
def key_file(ca_generation) -> bytes:
    return ca_generation(KeyType.ECDSA_P256).signer.encrypted_pkcs8(b"right passphrase")


@pytest.mark.parametrize("passphrase", [b"wrong passphrase", b"Right passphrase", b"x"])
def test_wrong_passphrase(key_file, passphrase):
    with pytest.raises(CAError) as info:
        SoftwareSigner.from_encrypted_pkcs8(key_file, passphrase)
    assert info.value.kind is Kind.BAD_KEY_FILE
    assert info.value.message == "cannot decrypt the CA key: wrong passphrase or damaged key file"


def test_damaged_key_file(key_file):
    lines = key_file.splitlines(keepends=True)
    damaged = b"".join(lines[:2] + lines[3:])  # one base64 line missing
    with pytest.raises(CAError) as info:
        SoftwareSigner.from_encrypted_pkcs8(damaged, b"right passphrase")
    assert info.value.kind is Kind.BAD_KEY_FILE


def test_unencrypted_key_file_is_refused():
    key = generate_private_key(KeyType.ECDSA_P256)
    plain = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CAError) as info:
        SoftwareSigner.from_encrypted_pkcs8(plain, b"any passphrase")
    assert info.value.kind is Kind.BAD_KEY_FILE


def test_non_rsa_ec_key_file_is_refused():
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass"),
    )
    with pytest.raises(CAError) as info:
        SoftwareSigner.from_encrypted_pkcs8(pem, b"pass")
    assert info.value.kind is Kind.BAD_KEY_FILE
    assert info.value.message == "the CA key file holds neither an RSA nor an EC key"


def test_empty_passphrase_is_refused(ca_generation):
    signer = ca_generation(KeyType.ECDSA_P256).signer
    with pytest.raises(CAError) as info:
        signer.encrypted_pkcs8(b"")
    assert info.value.kind is Kind.BAD_KEY_FILE
    assert info.value.message == "a CA key is never written without a passphrase"


# -- the clock (docs/architecture.md, house habit 9)
# ------------------------------------------------------------------
def test_fixed_clock_rejects_naive_datetime():
    with pytest.raises(ValueError, match="aware"):
        FixedClock(dt.datetime(2026, 11, 2, 9, 30))  # naive on purpose


def test_fixed_clock_normalises_to_utc_whole_seconds():
    jst = dt.timezone(dt.timedelta(hours=9))
    clock = FixedClock(dt.datetime(2026, 11, 2, 18, 30, 15, 987654, tzinfo=jst))
    assert clock.now() == dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert clock.now().microsecond == 0
    clock.advance(dt.timedelta(days=1, seconds=5))
    assert clock.now() == dt.datetime(2026, 11, 3, 9, 30, 20, tzinfo=UTC)


def test_system_clock_is_aware_whole_seconds():
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert now.microsecond == 0

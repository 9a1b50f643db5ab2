"""Shared fixtures for the CA core tests: real keys, real CA generations, real certificates.

Key generation is the slow part (RSA-4096), so every key, CA generation and issued certificate is
made once per session and cached. Tests that move time get their own ``FixedClock``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from jitsuin.ca.clock import UTC, FixedClock
from jitsuin.ca.csr import verify_csr
from jitsuin.ca.generations import CAGeneration, create_generation
from jitsuin.ca.issuance import CAPolicy, IssuedCertificate, Issuer
from jitsuin.ca.keys import CA_KEY_TYPES, KeyType, PrivateKey, SoftwareSigner, generate_private_key
from jitsuin.ca.subject import VettedSubject

# The moment every test CA generation is created, and the moment subscriber certificates are
# issued. Fixed (docs/architecture.md, house habit 9: inject time), close to the time these tests
# were written so that pkilint applies today's effective-dated rules.
CA_CREATED_AT = dt.datetime(2026, 10, 1, 0, 0, 0, tzinfo=UTC)
ISSUED_AT = dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=UTC)

# A fixed arc under 2.25 (X.667), below 2^28. Not a real 128-bit UUID arc: pkilint's DER decoder
# (pyasn1-fasder, Rust const-oid 0.9) refuses some arcs of 2^28 and above (2.25.271828182 and
# 2.25.3141592653 fail, every UUID arc fails) with a FATAL "itu.invalid_asn1_syntax", so such an
# arc fails docs/conformance.md S-18 on every certificate.
POLICY_ARC = "2.25.123456789"
PKI_BASE_URL = "http://pki.example.com"

# Every CA generation gets a distinct number (it appears in the CRL and caIssuers URLs) and the
# same subject DN (docs/conformance.md C-04).
GENERATION_NUMBERS = {
    KeyType.ECDSA_P384: 1,
    KeyType.ECDSA_P256: 2,
    KeyType.RSA_3072: 3,
    KeyType.RSA_4096: 4,
}
CA_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Jitsuin Test Certification Co."),
        x509.NameAttribute(NameOID.COMMON_NAME, "Jitsuin Test Personal CA"),
    ]
)

SUBSCRIBER_KEY_TYPES = (
    KeyType.RSA_2048,
    KeyType.RSA_3072,
    KeyType.RSA_4096,
    KeyType.ECDSA_P256,
    KeyType.ECDSA_P384,
)
PERSONAL_PROFILES = ("general", "document-manager")

# What a CSR asks for in its subject and SAN; issuance must ignore all of it (docs/flow.md step 10).
CSR_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "Mallory Requested"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Requested Org Ltd"),
    ]
)
CSR_EMAIL = "mallory@requested.example.net"

SAMPLE_SUBJECTS = {
    # general accepts every group; this one carries the optional C.
    "general": VettedSubject(
        subscriber_id="app-0001",
        family_name="Yamada",
        given_name="Hanako",
        email="hanako.yamada@example.com",
        qualification_group="member",
        qualification_number="AB-1234",
        country="JP",
    ),
    # document-manager accepts only document information managers; no C.
    "document-manager": VettedSubject(
        subscriber_id="app-0002",
        family_name="Suzuki",
        given_name="Ichiro",
        email="ichiro.suzuki@example.com",
        qualification_group="document-information-manager",
        qualification_number="123456",
    ),
}


# -- keys ---------------------------------------------------------------------------------------
@functools.cache
def _subscriber_key(key_type: KeyType) -> PrivateKey:
    return generate_private_key(key_type)


@functools.cache
def _ca_generation(key_type: KeyType) -> CAGeneration:
    # A distinct key from the subscriber key of the same type, so AKI/SKI mix-ups show.
    signer = SoftwareSigner(generate_private_key(key_type))
    return create_generation(
        GENERATION_NUMBERS[key_type], signer, CA_SUBJECT, FixedClock(CA_CREATED_AT)
    )


def make_csr(
    key: PrivateKey,
    *,
    subject: x509.Name = CSR_SUBJECT,
    emails: tuple[str, ...] = (CSR_EMAIL,),
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """A DER PKCS#10 request; the subject and SAN are decoys the CA must ignore."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if emails:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(e) for e in emails]), critical=False
        )
    if algorithm is None:
        algorithm = KeyType.of(key).signature_hash
    return builder.sign(key, algorithm).public_bytes(Encoding.DER)


@functools.cache
def _issued(
    ca_type: KeyType, profile: str, key_type: KeyType
) -> tuple[IssuedCertificate, x509.Certificate]:
    """The certificate and the draft the pre-issuance lint saw."""
    drafts: list[x509.Certificate] = []

    def capture(draft, _profile):
        drafts.append(draft)
        return []

    issuer = Issuer(_ca_generation(ca_type), _policy(), FixedClock(ISSUED_AT), lint=capture)
    csr = verify_csr(make_csr(_subscriber_key(key_type)))
    issued = issuer.issue(csr, SAMPLE_SUBJECTS[profile], profile)
    assert len(drafts) == 1
    return issued, drafts[0]


def _policy() -> CAPolicy:
    return CAPolicy(policy_arc=POLICY_ARC, pki_base_url=PKI_BASE_URL)


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def clock() -> FixedClock:
    """A fresh clock at the issuance moment; a test may move it freely."""
    return FixedClock(ISSUED_AT)


@pytest.fixture(scope="session")
def policy() -> CAPolicy:
    return _policy()


@pytest.fixture(scope="session")
def ca_generation() -> Callable[[KeyType], CAGeneration]:
    """``ca_generation(KeyType.ECDSA_P384)``: the cached CA generation for a CA key type."""
    return _ca_generation


# -- the matrix: request these fixtures to be parametrized over it ----------------------------
@pytest.fixture(scope="session", params=CA_KEY_TYPES, ids=lambda k: f"ca-{k.value}")
def ca_type(request) -> KeyType:
    """Every CA key type an operator may choose (``CA_KEY_TYPES``)."""
    return request.param


@pytest.fixture(scope="session", params=PERSONAL_PROFILES)
def profile_name(request) -> str:
    """The seed's two certificate types (SEED-R1)."""
    return request.param


@pytest.fixture(scope="session", params=SUBSCRIBER_KEY_TYPES, ids=lambda k: f"key-{k.value}")
def subscriber_type(request) -> KeyType:
    """Every subscriber key type of docs/conformance.md S-03, spelled out here, not read from the
    code."""
    return request.param


@pytest.fixture(scope="session")
def issued_at() -> dt.datetime:
    return ISSUED_AT


@pytest.fixture(scope="session")
def ca_created_at() -> dt.datetime:
    return CA_CREATED_AT


@pytest.fixture(scope="session")
def ca_subject() -> x509.Name:
    return CA_SUBJECT


@pytest.fixture(scope="session")
def generation_numbers() -> dict[KeyType, int]:
    return dict(GENERATION_NUMBERS)


@pytest.fixture(scope="session")
def csr_decoys() -> tuple[x509.Name, str]:
    """The subject and e-mail every default test CSR asks for (and must not get)."""
    return CSR_SUBJECT, CSR_EMAIL


@pytest.fixture(scope="session")
def subscriber_key() -> Callable[[KeyType], PrivateKey]:
    """``subscriber_key(KeyType.RSA_2048)``: a cached subscriber private key."""
    return _subscriber_key


@pytest.fixture(scope="session")
def csr_for() -> Callable[..., bytes]:
    """``csr_for(key, subject=..., emails=..., algorithm=...)`` -> DER CSR."""
    return make_csr


@pytest.fixture(scope="session")
def sample_subject() -> Callable[[str], VettedSubject]:
    """``sample_subject("general")``: a vetted record that fits the profile."""
    return SAMPLE_SUBJECTS.__getitem__


@pytest.fixture(scope="session")
def issued_cert() -> Callable[[KeyType, str, KeyType], tuple[IssuedCertificate, x509.Certificate]]:
    """``issued_cert(ca_type, profile, key_type)`` -> (issued certificate, lint draft), cached."""
    return _issued


@pytest.fixture
def issuer_at(ca_generation, policy) -> Callable[..., Issuer]:
    """``issuer_at(clock, ca_type=P-384, policy=..., lint=None)`` -> an Issuer."""

    def make(
        clock: FixedClock,
        ca_type: KeyType = KeyType.ECDSA_P384,
        policy_: CAPolicy | None = None,
        lint=None,
    ) -> Issuer:
        return Issuer(ca_generation(ca_type), policy_ or policy, clock, lint=lint)

    return make

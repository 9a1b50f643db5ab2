"""Every refusal of the CA core: the bad input, the ``CAError`` kind and the message text.

Each refusal also checks that the call returned nothing (it raised instead of handing back a
certificate or a verified CSR).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from jitsuin.ca.csr import verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.issuance import CAPolicy, Issuer, check_public_key
from jitsuin.ca.keys import KeyType
from jitsuin.ca.profiles import PROFILES
from jitsuin.ca.subject import VettedSubject

_NOTHING = object()


def refused(call, *args, **kwargs) -> CAError:
    """Run ``call``; it must raise ``CAError`` and return nothing."""
    result = _NOTHING
    with pytest.raises(CAError) as info:
        result = call(*args, **kwargs)
    assert result is _NOTHING, f"returned {result!r} instead of raising"
    return info.value


def resign(csr_der: bytes, algorithm: str, sign) -> bytes:
    """Reassemble a CSR with its certificationRequestInfo signed by ``sign`` under ``algorithm``
    (for algorithms cryptography's builder refuses, such as SHA-1)."""
    parsed = asn1_csr.CertificationRequest.load(csr_der)
    info = parsed["certification_request_info"]
    return asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": algorithm},
            "signature": sign(info.dump()),
        }
    ).dump()


@pytest.fixture
def issuer(issuer_at, clock) -> Issuer:
    return issuer_at(clock)


@pytest.fixture
def good_csr(csr_for, subscriber_key):
    return verify_csr(csr_for(subscriber_key(KeyType.ECDSA_P256)))


# -- the CSR itself (RFC 2986; SEED-R3) ---------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not a csr at all", id="text"),
        pytest.param(b"\x30\x82\x01\x00\x02\x01", id="truncated-der"),
        pytest.param(
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            id="pem-garbage",
        ),
    ],
)
def test_unparseable_csr(data):
    error = refused(verify_csr, data)
    assert error.kind is Kind.BAD_CSR
    assert error.message == "not a PKCS#10 certificate request (PEM or DER)"


def test_certificate_is_not_a_csr(ca_generation):
    error = refused(verify_csr, ca_generation(KeyType.ECDSA_P256).der)
    assert error.kind is Kind.BAD_CSR


def test_pem_csr_is_accepted(csr_for, subscriber_key):
    """Control for the BAD_CSR tests: the same request in PEM parses."""
    der = csr_for(subscriber_key(KeyType.ECDSA_P256))
    pem = x509.load_der_x509_csr(der).public_bytes(Encoding.PEM)
    assert verify_csr(pem).spki_der == verify_csr(der).spki_der


@pytest.mark.parametrize("key_type", [KeyType.RSA_2048, KeyType.ECDSA_P256], ids=lambda k: k.value)
def test_tampered_csr_signature(key_type, csr_for, subscriber_key):
    """RFC 2986 §3: proof of possession."""
    der = bytearray(csr_for(subscriber_key(key_type)))
    der[-1] ^= 0x01  # the last octet of the signature BIT STRING (RSA s, or ECDSA s INTEGER)
    assert x509.load_der_x509_csr(bytes(der)).is_signature_valid is False
    error = refused(verify_csr, bytes(der))
    assert error.kind is Kind.BAD_SIGNATURE
    assert error.message == "the CSR signature does not verify with its own public key"


@pytest.mark.parametrize(
    ("key_type", "algorithm", "hash_", "name"),
    [
        pytest.param(KeyType.RSA_2048, "sha1_rsa", hashes.SHA1(), "SHA1", id="sha1-rsa"),  # noqa: S303
        pytest.param(KeyType.ECDSA_P256, "sha1_ecdsa", hashes.SHA1(), "SHA1", id="sha1-ecdsa"),  # noqa: S303
        pytest.param(KeyType.RSA_2048, "md5_rsa", hashes.MD5(), "MD5", id="md5-rsa"),  # noqa: S303
        pytest.param(KeyType.RSA_2048, "sha224_rsa", hashes.SHA224(), "SHA224", id="sha224-rsa"),
    ],
)
def test_weak_csr_signature_hash(key_type, algorithm, hash_, name, csr_for, subscriber_key):
    """SEED-R3: SHA-1 and anything weaker than SHA-256 are refused, even with a valid signature."""
    key = subscriber_key(key_type)
    if key_type.is_rsa:
        sign = lambda data: key.sign(data, padding.PKCS1v15(), hash_)  # noqa: E731
    else:
        sign = lambda data: key.sign(data, ec.ECDSA(hash_))  # noqa: E731
    der = resign(csr_for(key), algorithm, sign)
    parsed = x509.load_der_x509_csr(der)
    assert parsed.signature_hash_algorithm.name == hash_.name
    # The signature is genuine (checked with the primitive, since cryptography's CSR check no
    # longer verifies SHA-1): the refusal is about the hash, not the signature.
    signed = asn1_csr.CertificationRequest.load(der)
    info, signature = signed["certification_request_info"].dump(), signed["signature"].native
    if key_type.is_rsa:
        key.public_key().verify(signature, info, padding.PKCS1v15(), hash_)
    else:
        key.public_key().verify(signature, info, ec.ECDSA(hash_))
    error = refused(verify_csr, der)
    assert error.kind is Kind.WEAK_ALGORITHM
    assert error.message == (
        f"the CSR is signed with {name}; SHA-256 or stronger is required (SEED-R3)"
    )


def test_unknown_csr_signature_algorithm(csr_for, subscriber_key):
    key = subscriber_key(KeyType.RSA_2048)
    der = resign(
        csr_for(key),
        "1.3.6.1.4.1.55555.1.1",
        lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
    )
    error = refused(verify_csr, der)
    assert error.kind is Kind.WEAK_ALGORITHM
    assert error.message == "the CSR signature algorithm is not supported"


# -- the subscriber key (SBR 6.1.5, 6.1.6; docs/conformance.md S-03)
# ---------------------------------
@pytest.mark.parametrize(
    ("bits", "message"),
    [
        pytest.param(
            1024,
            "RSA key of 1024 bits is too small: at least 2048 bits are required (SBR 6.1.5)",
            id="rsa-1024",
        ),
        pytest.param(
            2050,
            "RSA key of 2050 bits: the modulus size must be a multiple of 8 (SBR 6.1.5)",
            id="rsa-2050",
        ),
        pytest.param(
            2056,
            "a 2056-bit RSA key is not accepted by profile general: use rsa-2048, rsa-3072, "
            "rsa-4096, ecdsa-p256, ecdsa-p384",
            id="rsa-2056",
        ),
    ],
)
def test_rsa_key_size(bits, message, issuer, csr_for, sample_subject):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    csr = verify_csr(csr_for(key, algorithm=hashes.SHA256()))  # the CSR itself is fine
    assert csr.public_key.key_size == bits
    error = refused(issuer.issue, csr, sample_subject("general"), "general")
    assert error.kind is Kind.BAD_PUBLIC_KEY
    assert error.message == message


def test_rsa_exponent_3_in_a_csr(issuer, csr_for, sample_subject):
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    csr = verify_csr(csr_for(key))
    error = refused(issuer.issue, csr, sample_subject("general"), "general")
    assert error.kind is Kind.BAD_PUBLIC_KEY
    assert error.message == "RSA public exponent 3 is not accepted: use 65537 (SBR 6.1.6)"


@pytest.mark.parametrize("exponent", [3, 17, 65539], ids=lambda e: f"e={e}")
def test_rsa_exponent_check_public_key(exponent, subscriber_key):
    n = subscriber_key(KeyType.RSA_2048).public_key().public_numbers().n
    key = rsa.RSAPublicNumbers(exponent, n).public_key()
    error = refused(check_public_key, PROFILES["general"], key)
    assert error.kind is Kind.BAD_PUBLIC_KEY
    assert error.message == (
        f"RSA public exponent {exponent} is not accepted: use 65537 (SBR 6.1.6)"
    )


@pytest.mark.parametrize(
    "curve", [ec.SECP521R1(), ec.SECP256K1(), ec.SECP224R1()], ids=lambda c: c.name
)
def test_unsupported_curve(curve, issuer, csr_for, sample_subject):
    key = ec.generate_private_key(curve)
    csr = verify_csr(csr_for(key, algorithm=hashes.SHA384()))
    error = refused(issuer.issue, csr, sample_subject("general"), "general")
    assert error.kind is Kind.BAD_PUBLIC_KEY
    assert error.message == (
        f"elliptic curve {curve.name} is not supported: use P-256 or P-384 (SBR 6.1.5)"
    )


@pytest.mark.parametrize(
    ("make_key", "type_name"),
    [
        pytest.param(ed25519.Ed25519PrivateKey.generate, "Ed25519PublicKey", id="ed25519"),
        pytest.param(ed448.Ed448PrivateKey.generate, "Ed448PublicKey", id="ed448"),
    ],
)
def test_edwards_key_csr(make_key, type_name):
    """docs/conformance.md S-03: only RSA and ECDSA subscriber keys."""
    der = _edwards_csr(make_key())
    error = refused(verify_csr, der)
    assert error.kind is Kind.BAD_PUBLIC_KEY, error.message
    assert error.message == f"{type_name} keys are not accepted: use RSA or ECDSA"


def _edwards_csr(key) -> bytes:
    # Edwards keys sign without a separate hash; the builder wants ``None``.
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edwards")])
    )
    return builder.sign(key, None).public_bytes(Encoding.DER)


def test_edwards_key_check_public_key():
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    error = refused(check_public_key, PROFILES["general"], key)
    assert error.kind is Kind.BAD_PUBLIC_KEY
    assert error.message == "only RSA and ECDSA keys are accepted"


# -- SEED-R2: every renewal is a re-key ------------------------------------------------------
def test_key_reused(issuer, good_csr, sample_subject, subscriber_key):
    other = verify_csr(
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(subscriber_key(KeyType.ECDSA_P384), hashes.SHA384())
        .public_bytes(Encoding.DER)
    )
    subject = sample_subject("general")
    error = refused(issuer.issue, good_csr, subject, "general", used_keys={good_csr.spki_sha256})
    assert error.kind is Kind.KEY_REUSED
    assert error.message == (
        "this public key was already certified for this subscriber; every renewal needs a new "
        "key pair (SEED-R2)"
    )
    # Control: another key's hash in used_keys does not block issuance.
    issued = issuer.issue(good_csr, subject, "general", used_keys=[other.spki_sha256])
    assert issued.spki_sha256 == good_csr.spki_sha256


# -- SEED-R15: issuance cut-off (docs/conformance.md C-07, S-16, S-17)
# --------------------------------
def test_cutoff_refuses_after(issuer_at, clock, policy, good_csr, sample_subject, ca_generation):
    ca = ca_generation(KeyType.ECDSA_P384)
    cutoff = ca.issuance_cutoff(policy.cutoff_margin)
    assert policy.cutoff_margin == dt.timedelta(days=30)
    clock.at = cutoff + dt.timedelta(seconds=1)
    error = refused(issuer_at(clock).issue, good_csr, sample_subject("general"), "general")
    assert error.kind is Kind.CUTOFF
    assert error.message == (
        f"CA generation {ca.number} stopped issuing at {cutoff.isoformat()} (its certificate "
        f"expires {ca.not_after.isoformat()}); a certificate issued now would outlive it: roll "
        "the CA over (SEED-R15)"
    )
    # Years later, still refused.
    clock.advance(dt.timedelta(days=400))
    assert refused(issuer_at(clock).issue, good_csr, sample_subject("general"), "general").kind is (
        Kind.CUTOFF
    )


@pytest.mark.parametrize("before", [0, 1, 86400], ids=lambda s: f"cutoff-minus-{s}s")
@pytest.mark.parametrize("margin_days", [30, 0], ids=lambda d: f"margin-{d}d")
def test_cutoff_still_issues_before(
    before, margin_days, issuer_at, clock, policy, good_csr, sample_subject, ca_generation
):
    ca = ca_generation(KeyType.ECDSA_P384)
    margin = dt.timedelta(days=margin_days)
    custom = CAPolicy(
        policy_arc=policy.policy_arc, pki_base_url=policy.pki_base_url, cutoff_margin=margin
    )
    clock.at = ca.issuance_cutoff(margin) - dt.timedelta(seconds=before)
    issued = issuer_at(clock, policy_=custom).issue(good_csr, sample_subject("general"), "general")
    assert issued.not_before == clock.at
    assert issued.not_after <= ca.not_after  # never outlives its CA
    assert ca.not_after - issued.not_after == margin + dt.timedelta(seconds=before)
    issued.certificate.verify_directly_issued_by(ca.certificate)


def test_cutoff_margin_zero_is_the_last_second(
    issuer_at, clock, policy, good_csr, sample_subject, ca_generation
):
    """With no margin the last certificate ends on the CA's last second, and one second later
    nothing is issued."""
    ca = ca_generation(KeyType.ECDSA_P384)
    custom = CAPolicy(
        policy_arc=policy.policy_arc,
        pki_base_url=policy.pki_base_url,
        cutoff_margin=dt.timedelta(0),
    )
    clock.at = ca.issuance_cutoff(dt.timedelta(0))
    issued = issuer_at(clock, policy_=custom).issue(good_csr, sample_subject("general"), "general")
    assert issued.not_after == ca.not_after
    clock.advance(dt.timedelta(seconds=1))
    error = refused(
        issuer_at(clock, policy_=custom).issue, good_csr, sample_subject("general"), "general"
    )
    assert error.kind is Kind.CUTOFF


def test_before_the_ca_exists(issuer_at, clock, good_csr, sample_subject, ca_generation):
    ca = ca_generation(KeyType.ECDSA_P384)
    clock.at = ca.not_before - dt.timedelta(seconds=1)
    error = refused(issuer_at(clock).issue, good_csr, sample_subject("general"), "general")
    assert error.kind is Kind.CUTOFF
    assert error.message == (
        f"CA generation {ca.number} is not valid before {ca.not_before.isoformat()}"
    )


# -- profiles ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param(
            "nope",
            "unknown profile 'nope'; known: general, document-manager, tls-server, ocsp-responder",
            id="nope",
        ),
        pytest.param(
            "",
            "unknown profile ''; known: general, document-manager, tls-server, ocsp-responder",
            id="empty",
        ),
        pytest.param("tls-server", "profile tls-server is not a personal profile", id="tls-server"),
        pytest.param(
            "ocsp-responder",
            "profile ocsp-responder is not a personal profile",
            id="ocsp-responder",
        ),
    ],
)
def test_unknown_profile(name, message, issuer, good_csr, sample_subject):
    error = refused(issuer.issue, good_csr, sample_subject("general"), name)
    assert error.kind is Kind.UNKNOWN_PROFILE
    assert error.message == message


# -- the vetted subject (SEED-R4, R6; docs/conformance.md S-10..S-13, X-11)
# ---------------------------
BAD_SUBJECTS = [
    pytest.param(
        "general",
        {"email": "Hanako.Yamada@example.com"},
        ["email 'Hanako.Yamada@example.com' is not lower-case (SEED-R6)"],
        id="uppercase-email",
    ),
    pytest.param(
        "general",
        {"email": "hanako.yamada"},
        ["email 'hanako.yamada' is not a valid address"],
        id="invalid-email",
    ),
    pytest.param(
        "general",
        {"family_name": "山田"},
        ["family_name '山田' is not a romanized name (letters, space, . ' - only)"],
        id="kanji-family-name",
    ),
    pytest.param(
        "general",
        {"given_name": "Hánako"},
        ["given_name 'Hánako' is not a romanized name (letters, space, . ' - only)"],
        id="accented-given-name",
    ),
    pytest.param(
        "general",
        {"given_name": "A" * 65},
        ["given_name is longer than 64 characters", "the common name would be longer than 64"],
        id="name-too-long",
    ),
    pytest.param(
        "general", {"subscriber_id": ""}, ["subscriber_id is empty"], id="no-subscriber-id"
    ),
    pytest.param(
        "general",
        {"country": "jp"},
        ["country 'jp' is not an ISO 3166 two-letter code"],
        id="lowercase-country",
    ),
    pytest.param(
        "general",
        {"qualification_group": "astronaut"},
        ["unknown qualification group 'astronaut'"],
        id="unknown-group",
    ),
    pytest.param(
        "document-manager",
        {"qualification_group": "member", "qualification_number": "AB-1234"},
        ["qualification group 'member' is not accepted by profile document-manager"],
        id="group-not-for-document-manager",
    ),
    pytest.param(
        "document-manager",
        {"qualification_number": "12AB"},
        [
            "qualification number '12AB' does not match the syntax of group "
            "'document-information-manager'"
        ],
        id="document-manager-number-syntax",
    ),
    pytest.param(
        "general",
        {"qualification_number": "ab-1234"},
        ["qualification number 'ab-1234' does not match the syntax of group 'member'"],
        id="member-number-syntax",
    ),
    pytest.param(
        "general", {"qualification_number": ""}, ["qualification_number is empty"], id="no-number"
    ),
    pytest.param(
        "general",
        {"qualification_number": "A" * 65},
        [
            "qualification_number is longer than 64 characters",
            f"qualification number '{'A' * 65}' does not match the syntax of group 'member'",
        ],
        id="number-too-long",
    ),
    pytest.param(
        "general",
        {"email": "Hanako@Example.com", "family_name": "山田", "qualification_group": "astronaut"},
        [
            "family_name '山田' is not a romanized name",
            "email 'Hanako@Example.com' is not lower-case (SEED-R6)",
            "unknown qualification group 'astronaut'",
        ],
        id="three-problems-at-once",
    ),
]


@pytest.mark.parametrize(("profile", "changes", "expected"), BAD_SUBJECTS)
def test_bad_subject(profile, changes, expected, issuer, good_csr, sample_subject):
    subject = dataclasses.replace(sample_subject(profile), **changes)
    error = refused(issuer.issue, good_csr, subject, profile)
    assert error.kind is Kind.BAD_SUBJECT
    for text in expected:
        assert text in error.message, error.message
    # Every problem is reported, in order, joined by "; ".
    assert len(error.message.split("; ")) == len(expected)


def test_from_mapping_lists_every_field_problem():
    with pytest.raises(ValueError) as info:
        VettedSubject.from_mapping(
            {
                "family_name": "Yamada",
                "given_name": 42,
                "email": ["hanako@example.com"],
                "nickname": "Hana",
                "qualification_group": "member",
                "country": 81,
            }
        )
    message = str(info.value)
    for text in (
        "unknown field 'nickname'",
        "missing field 'subscriber_id'",
        "missing field 'qualification_number'",
        "field 'given_name' must be a string",
        "field 'email' must be a string",
        "field 'country' must be a string",
    ):
        assert text in message, message
    assert len(message.split("; ")) == 6
    assert "family_name" not in message


def test_from_mapping_accepts_a_complete_record(sample_subject):
    subject = sample_subject("document-manager")
    data = {f.name: getattr(subject, f.name) for f in dataclasses.fields(subject)}
    del data["country"]  # optional
    assert VettedSubject.from_mapping(data) == subject


# -- the pre-issuance lint --------------------------------------------------------------------
def test_lint_refuses_and_sees_the_draft(issuer_at, clock, good_csr, sample_subject):
    seen = []

    def lint(draft, profile):
        seen.append((draft, profile))
        return ["pkilint:cabf.smime.example_error", "second finding"]

    issuer = issuer_at(clock, lint=lint)
    error = refused(issuer.issue, good_csr, sample_subject("document-manager"), "document-manager")
    assert error.kind is Kind.LINT
    assert error.message == (
        "the pre-issuance lint refused the certificate: pkilint:cabf.smime.example_error; "
        "second finding"
    )
    [(draft, profile)] = seen
    assert profile is PROFILES["document-manager"]
    assert isinstance(draft, x509.Certificate)
    assert draft.public_key() == good_csr.public_key
    assert draft.not_valid_before_utc == clock.now()
    assert draft.issuer == issuer.generation.certificate.subject
    san = draft.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["ichiro.suzuki@example.com"]


def test_lint_with_no_findings_lets_issuance_through(issuer_at, clock, good_csr, sample_subject):
    issuer = issuer_at(clock, lint=lambda draft, profile: [])
    assert issuer.issue(good_csr, sample_subject("general"), "general").profile == "general"


# -- the CA's own configuration -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"pki_base_url": "https://pki.example.com"},
            "pki_base_url 'https://pki.example.com' must be an http:// URL",
            id="https-base-url",
        ),
        pytest.param(
            {"policy_arc": "not-an-oid"},
            "policy_arc 'not-an-oid' is not a dotted OID",
            id="bad-arc",
        ),
        pytest.param(
            {"cutoff_margin": dt.timedelta(days=-1)},
            "cutoff_margin must not be negative",
            id="negative-margin",
        ),
    ],
)
def test_bad_config(changes, message, policy, clock, ca_generation):
    bad = dataclasses.replace(policy, **changes)
    error = refused(Issuer, ca_generation(KeyType.ECDSA_P384), bad, clock)
    assert error.kind is Kind.BAD_CONFIG
    assert error.message == message

"""The subscriber profile, field by field (docs/conformance.md subscriber table; SEED-R1..R6).

Matrix: every CA key type in ``CA_KEY_TYPES`` x both personal profiles x every subscriber key
type. Each certificate is issued once per session (conftest ``issued_cert``).
"""

from __future__ import annotations

import collections
import hashlib
import subprocess

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    ExtensionOID,
    NameOID,
    ObjectIdentifier,
    SignatureAlgorithmOID,
)

from jitsuin.ca.csr import verify_csr
from jitsuin.ca.issuance import CAPolicy
from jitsuin.ca.keys import KeyType, generate_private_key
from jitsuin.ca.profiles import NameOrder
from jitsuin.ca.signing import draft_certificate, sign_draft

DAY = 86400
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # RFC 9336
SMIME_IV_MP = ObjectIdentifier("2.23.140.1.5.4.2")  # S/MIME BR 7.1.6.1
CP_SUFFIX = {"general": "1.1", "document-manager": "1.2"}
GROUP_TITLES = {
    "member": "Registered Member",
    "document-information-manager": "Document Information Manager",
}
EXPECTED_CN = {"general": "Hanako Yamada", "document-manager": "Ichiro Suzuki"}

# docs/conformance.md S-02 / SEED-R3: the byte-exact AlgorithmIdentifier per issuer key.
SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")  # NULL parameters present
ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")  # parameters absent
ECDSA_WITH_SHA384 = bytes.fromhex("300a06082a8648ce3d040303")
EXPECTED_SIGALG = {
    KeyType.ECDSA_P384: (SignatureAlgorithmOID.ECDSA_WITH_SHA384, ECDSA_WITH_SHA384, "sha384"),
    KeyType.ECDSA_P256: (SignatureAlgorithmOID.ECDSA_WITH_SHA256, ECDSA_WITH_SHA256, "sha256"),
    KeyType.RSA_3072: (SignatureAlgorithmOID.RSA_WITH_SHA256, SHA256_WITH_RSA, "sha256"),
    KeyType.RSA_4096: (SignatureAlgorithmOID.RSA_WITH_SHA256, SHA256_WITH_RSA, "sha256"),
}
OPENSSL_SIGALG = {
    KeyType.ECDSA_P384: "ecdsa-with-SHA384",
    KeyType.ECDSA_P256: "ecdsa-with-SHA256",
    KeyType.RSA_3072: "sha256WithRSAEncryption",
    KeyType.RSA_4096: "sha256WithRSAEncryption",
}


def _key_usage(rsa: bool) -> x509.KeyUsage:
    """SEED-R5; S/MIME BR 7.1.2.3e dual use: RSA {dS, nR, kE}; EC {dS, nR, kA}."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=rsa,
        data_encipherment=False,
        key_agreement=not rsa,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture
def case(ca_type, profile_name, subscriber_type, issued_cert, ca_generation, subscriber_key):
    issued, draft = issued_cert(ca_type, profile_name, subscriber_type)
    return collections.namedtuple(
        "Case", "ca_type profile key_type issued cert draft ca key asn1 ca_asn1"
    )(
        ca_type,
        profile_name,
        subscriber_type,
        issued,
        issued.certificate,
        draft,
        ca_generation(ca_type),
        subscriber_key(subscriber_type),
        asn1_x509.Certificate.load(issued.der),
        asn1_x509.Certificate.load(ca_generation(ca_type).der),
    )


def test_version_serial_validity(case, issued_at):
    cert = case.cert
    # RFC 5280 4.1.2.1 (docs/conformance.md X-01): v3.
    assert cert.version is x509.Version.v3
    # RFC 5280 4.1.2.2; SBR 7.1: positive, <= 20 octets, >= 64 random bits.
    serial = cert.serial_number
    assert serial > 0
    assert serial.bit_length() // 8 + 1 <= 20, f"serial needs {serial.bit_length()} bits"
    assert serial.bit_length() >= 64, f"serial has only {serial.bit_length()} bits"
    assert serial < 2**159
    # SEED-R1 (S-01): exactly 396 days, notAfter inclusive.
    assert cert.not_valid_before_utc == issued_at
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert span.total_seconds() + 1 == 396 * DAY
    # RFC 5280 4.1.2.5: UTCTime before 2050.
    validity = case.asn1["tbs_certificate"]["validity"]
    assert validity["not_before"].name == "utc_time"
    assert validity["not_after"].name == "utc_time"
    # S-16: inside the issuer's validity.
    assert case.ca.not_before <= cert.not_valid_before_utc
    assert cert.not_valid_after_utc <= case.ca.not_after
    # RFC 5280 4.1.2.8: no unique identifiers.
    tbs = case.asn1["tbs_certificate"]
    assert not tbs["issuer_unique_id"].contents
    assert not tbs["subject_unique_id"].contents


def test_signature_algorithm(case):
    oid, raw, hash_name = EXPECTED_SIGALG[case.ca_type]
    cert = case.cert
    # SEED-R3; docs/conformance.md S-02: algorithm per issuer key, byte-exact AlgorithmIdentifier.
    assert cert.signature_algorithm_oid == oid
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == hash_name
    outer = case.asn1["signature_algorithm"].dump()
    inner = case.asn1["tbs_certificate"]["signature"].dump()
    assert outer == raw, outer.hex()
    # RFC 5280 4.1.1.2: tbs signature == signatureAlgorithm.
    assert inner == raw, inner.hex()
    if case.ca_type.is_rsa:
        assert isinstance(cert.signature_algorithm_parameters, padding.PKCS1v15)


def test_subject_comes_only_from_vetted_record(case, sample_subject, csr_decoys):
    vetted = sample_subject(case.profile)
    cert = case.cert
    # SEED-R4; SBR 7.1.4.2.2 (S-09..S-13): CN, givenName, surname, title = group title,
    # serialNumber = qualification number, optional C; nothing else.
    expected = [
        (NameOID.SURNAME, vetted.family_name),
        (NameOID.GIVEN_NAME, vetted.given_name),
        (NameOID.TITLE, GROUP_TITLES[vetted.qualification_group]),
        (NameOID.SERIAL_NUMBER, vetted.qualification_number),
        (NameOID.COMMON_NAME, EXPECTED_CN[case.profile]),  # NameOrder.GIVEN_FAMILY (S-11)
    ]
    if vetted.country:
        expected.append((NameOID.COUNTRY_NAME, vetted.country))
    got = [(a.oid, a.value) for a in cert.subject]
    assert collections.Counter(got) == collections.Counter(expected)
    assert all(len(rdn) == 1 for rdn in cert.subject.rdns)
    # docs/flow.md step 10: nothing from the CSR subject or SAN.
    decoy_subject, decoy_email = csr_decoys
    assert not cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    for attribute in decoy_subject:
        assert attribute.value not in {v for _, v in got}
    # RFC 5280 App. A: DirectoryString is PrintableString or UTF8String.
    for rdn in case.asn1["tbs_certificate"]["subject"].chosen:
        for ava in rdn:
            assert ava["value"].chosen.__class__.__name__ in {"PrintableString", "UTF8String"}
    # SAN (SEED-R6, SBR 7.1.4.2.1, S-07): only the vetted, lower-case address; not critical.
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical is False
    assert list(san.value) == [x509.RFC822Name(vetted.email)]
    assert decoy_email not in san.value.get_values_for_type(x509.RFC822Name)


def test_key_usage_and_eku(case):
    exts = case.cert.extensions
    # SEED-R5; SBR 7.1.2.3e (S-06): critical, exact bits per key type.
    ku = exts.get_extension_for_class(x509.KeyUsage)
    assert ku.critical is True
    assert ku.value == _key_usage(case.key_type.is_rsa)
    # SEED-R5; SBR 7.1.2.3f (S-05): emailProtection + documentSigning, and clientAuth (the
    # certificate authenticates its own EST re-enrollment, RFC 7030 §3.3.2); nothing else.
    eku = exts.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical is False
    assert sorted(eku.value, key=str) == sorted(
        [ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH, DOCUMENT_SIGNING],
        key=str,
    )
    assert len(list(eku.value)) == 3


def test_policies_crl_aia(case, policy, generation_numbers):
    exts = case.cert.extensions
    # SBR 7.1.2.3a, 7.1.6.1 (S-04): the SBR OID + the CA's CP OID for this profile.
    cp = exts.get_extension_for_class(x509.CertificatePolicies)
    assert cp.critical is False
    assert [p.policy_identifier for p in cp.value] == [
        SMIME_IV_MP,
        ObjectIdentifier(f"{policy.policy_arc}.{CP_SUFFIX[case.profile]}"),
    ]
    assert all(p.policy_qualifiers is None for p in cp.value)
    # SBR 7.1.2.3b,c (S-15): http URLs below pki_base_url, not critical.
    number = generation_numbers[case.ca_type]
    base = policy.pki_base_url
    crl = exts.get_extension_for_class(x509.CRLDistributionPoints)
    assert crl.critical is False
    assert list(crl.value) == [
        x509.DistributionPoint(
            [x509.UniformResourceIdentifier(f"{base}/crl/{number}.crl")], None, None, None
        )
    ]
    aia = exts.get_extension_for_class(x509.AuthorityInformationAccess)
    assert aia.critical is False
    assert sorted((d.access_method.dotted_string, d.access_location.value) for d in aia.value) == (
        sorted(
            [
                (AuthorityInformationAccessOID.OCSP.dotted_string, f"{base}/ocsp"),
                (AuthorityInformationAccessOID.CA_ISSUERS.dotted_string, f"{base}/ca/{number}.crt"),
            ]
        )
    )
    assert all(d.access_location.value.startswith("http://") for d in aia.value)


def test_key_identifiers_basic_constraints_and_extension_set(case):
    exts = case.cert.extensions
    # RFC 5280 4.2 (X-06, S-14): exactly these extensions, each once.
    assert sorted(e.oid.dotted_string for e in exts) == sorted(
        o.dotted_string
        for o in (
            ExtensionOID.BASIC_CONSTRAINTS,
            ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
            ExtensionOID.SUBJECT_KEY_IDENTIFIER,
            ExtensionOID.CRL_DISTRIBUTION_POINTS,
            ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            ExtensionOID.KEY_USAGE,
            ExtensionOID.EXTENDED_KEY_USAGE,
            ExtensionOID.CERTIFICATE_POLICIES,
        )
    )
    # RFC 5280 4.2.1.1: AKI keyIdentifier == issuer SKI; no issuer/serial.
    aki = exts.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert aki.critical is False
    assert aki.value.key_identifier == case.ca.key_identifier
    assert aki.value.authority_cert_issuer is None
    assert aki.value.authority_cert_serial_number is None
    # RFC 5280 4.2.1.2: SKI present, not critical, of the subscriber key.
    ski = exts.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ski.critical is False
    assert (
        ski.value.digest == x509.SubjectKeyIdentifier.from_public_key(case.key.public_key()).digest
    )
    assert ski.value.digest != case.ca.key_identifier
    # RFC 5280 4.2.1.9: cA false, critical, no pathLen.
    bc = exts.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical is True
    assert bc.value.ca is False
    assert bc.value.path_length is None


def test_chain_signature_and_draft(case):
    cert = case.cert
    # RFC 5280 4.1.2.4; SBR 7.1.4.1: issuer DN byte-identical to the CA subject DN.
    assert (
        case.asn1["tbs_certificate"]["issuer"].dump()
        == case.ca_asn1["tbs_certificate"]["subject"].dump()
    )
    # RFC 5280 6.1.3: the signature verifies with the CA key.
    cert.verify_directly_issued_by(case.ca.certificate)
    # The subject public key is the CSR's key.
    assert cert.public_key() == case.key.public_key()
    # signing.py: the pre-issuance lint saw exactly the TBS that was signed.
    assert case.draft.tbs_certificate_bytes == cert.tbs_certificate_bytes
    assert case.draft.signature_algorithm_oid == cert.signature_algorithm_oid
    # IssuedCertificate metadata.
    issued = case.issued
    assert issued.der == cert.public_bytes(serialization.Encoding.DER)
    assert issued.profile == case.profile
    assert issued.generation == case.ca.number
    assert issued.serial == cert.serial_number
    spki = case.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert issued.spki_sha256 == hashlib.sha256(spki).hexdigest()


def test_openssl_verifies_and_parses(case, tmp_path, issued_at):
    """SEED-R20: the certificate chains to the CA certificate with an independent verifier."""
    ca_pem = tmp_path / "ca.pem"
    leaf_pem = tmp_path / "leaf.pem"
    ca_pem.write_bytes(case.ca.certificate.public_bytes(serialization.Encoding.PEM))
    leaf_pem.write_bytes(case.cert.public_bytes(serialization.Encoding.PEM))
    at = str(int(issued_at.timestamp()) + 3600)  # independent of today's date
    verify = subprocess.run(
        [
            *("openssl", "verify", "-x509_strict", "-purpose", "smimesign", "-attime", at),
            *("-CAfile", str(ca_pem), str(leaf_pem)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.strip() == f"{leaf_pem}: OK"
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(leaf_pem)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert text.returncode == 0, text.stderr
    assert f"Signature Algorithm: {OPENSSL_SIGALG[case.ca_type]}" in text.stdout
    assert "E-mail Protection" in text.stdout
    assert "X509v3 Key Usage: critical" in text.stdout


def test_serials_are_unique(ca_type, issued_cert):
    """RFC 5280 4.1.2.2 (X-02): unique per issuer."""
    serials = [
        issued_cert(ca_type, profile, key_type)[0].serial
        for profile in ("general", "document-manager")
        for key_type in (KeyType.RSA_2048, KeyType.ECDSA_P256, KeyType.ECDSA_P384)
    ]
    assert len(set(serials)) == len(serials)


def test_family_given_name_order(issuer_at, clock, policy, subscriber_key, csr_for, sample_subject):
    """docs/conformance.md S-11: CN is built in the configured order."""
    family_first = CAPolicy(
        policy_arc=policy.policy_arc,
        pki_base_url=policy.pki_base_url,
        name_order=NameOrder.FAMILY_GIVEN,
    )
    issuer = issuer_at(clock, policy_=family_first)
    csr = verify_csr(csr_for(subscriber_key(KeyType.ECDSA_P256)))
    cert = issuer.issue(csr, sample_subject("general"), "general").certificate
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [
        "Yamada Hanako"
    ]


def test_sign_draft_keeps_tbs_bytes(ca_generation, clock):
    """signing.py: the real signature is over the draft's TBS bytes, reassembled unchanged."""
    ca = ca_generation(KeyType.RSA_3072)
    key = generate_private_key(KeyType.ECDSA_P256)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "draft test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(clock.now())
        .not_valid_after(clock.now().replace(year=2027))
    )
    draft = draft_certificate(builder, ca.signer)
    signed = sign_draft(draft, ca.signer)
    assert signed.draft is draft
    assert signed.draft.tbs_certificate_bytes == signed.certificate.tbs_certificate_bytes
    assert signed.der == signed.certificate.public_bytes(serialization.Encoding.DER)
    assert signed.certificate.signature != draft.signature
    signed.certificate.verify_directly_issued_by(ca.certificate)
    # The draft itself is signed by the throwaway key, so it must not verify with the CA key.
    with pytest.raises(InvalidSignature):
        draft.verify_directly_issued_by(ca.certificate)

"""PKCS#10 requests: the CSR contributes only a public key and proof of possession."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.keys import PublicKey, spki_der, spki_sha256

# SEED-R3: SHA-256 or stronger; SHA-1, MD5 and the like are refused.
_STRONG_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


@dataclass(frozen=True, slots=True)
class VerifiedCSR:
    public_key: PublicKey
    spki_der: bytes
    spki_sha256: str
    requested_subject: x509.Name  # kept only to compare with the vetted record, never copied
    requested_emails: tuple[str, ...]


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise CAError(Kind.BAD_CSR, "not a PKCS#10 certificate request (PEM or DER)") from exc


def verify_csr(data: bytes) -> VerifiedCSR:
    """Parse a CSR and check its proof of possession (RFC 2986 §3; SEED-R3)."""
    csr = load_csr(data)
    try:
        algorithm = csr.signature_hash_algorithm
    except Exception as exc:  # unknown signature OID: cryptography raises UnsupportedAlgorithm
        raise CAError(Kind.WEAK_ALGORITHM, "the CSR signature algorithm is not supported") from exc
    if algorithm is not None and not isinstance(algorithm, _STRONG_HASHES):
        raise CAError(
            Kind.WEAK_ALGORITHM,
            f"the CSR is signed with {algorithm.name.upper()}; SHA-256 or stronger is required "
            "(SEED-R3)",
        )
    try:
        key = csr.public_key()
    except Exception as exc:
        raise CAError(Kind.BAD_PUBLIC_KEY, "the CSR public key cannot be read") from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CAError(
            Kind.BAD_PUBLIC_KEY,
            f"{type(key).__name__.removeprefix('_')} keys are not accepted: use RSA or ECDSA",
        )
    if not csr.is_signature_valid:
        raise CAError(
            Kind.BAD_SIGNATURE, "the CSR signature does not verify with its own public key"
        )
    emails: tuple[str, ...] = ()
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails = tuple(san.get_values_for_type(x509.RFC822Name))
    except x509.ExtensionNotFound:
        pass
    except ValueError as exc:
        raise CAError(Kind.BAD_CSR, "the CSR extensions cannot be parsed") from exc
    return VerifiedCSR(
        public_key=key,
        spki_der=spki_der(key),
        spki_sha256=spki_sha256(key),
        requested_subject=csr.subject,
        requested_emails=emails,
    )

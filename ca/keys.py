"""Key types and the ``Signer`` protocol.

Issuance never touches a private key object: it hands to-be-signed bytes to a ``Signer``. The
software signer below holds a cryptography key; a PKCS#11 signer can implement the same protocol
without any change to issuance.
"""

from __future__ import annotations

import enum
import functools
import hashlib
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from jitsuin.ca.errors import CAError, Kind

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class KeyType(enum.Enum):
    """Key types by their configuration name (registry keyed by the wire name, docs/architecture.md,
    house habit 5)."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa-")

    @property
    def rsa_bits(self) -> int:
        return int(self.value.removeprefix("rsa-"))

    @property
    def curve(self) -> ec.EllipticCurve:
        return {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1()}[self.value]

    @property
    def signature_hash(self) -> hashes.HashAlgorithm:
        """The hash this key signs with. docs/conformance.md S-02 (SEED-R3): sha256WithRSAEncryption
        for RSA, ecdsa-with-SHA256 for P-256, ecdsa-with-SHA384 for P-384; never SHA-1."""
        if self is KeyType.ECDSA_P384:
            return hashes.SHA384()
        return hashes.SHA256()

    @classmethod
    def parse(cls, name: str) -> KeyType:
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(k.value for k in cls)
            raise ValueError(f"unknown key type {name!r}; choose one of {known}") from None

    @classmethod
    def of(cls, key: PublicKey | PrivateKey) -> KeyType:
        if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
            return cls.parse(f"rsa-{key.key_size}")
        if isinstance(key.curve, ec.SECP256R1):
            return cls.ECDSA_P256
        if isinstance(key.curve, ec.SECP384R1):
            return cls.ECDSA_P384
        raise ValueError(f"unsupported curve {key.curve.name}")


# The CA key types an operator may choose: P-384 by default, RSA-3072/4096 and P-256
# (docs/conformance.md C-03).
CA_KEY_TYPES = (KeyType.ECDSA_P384, KeyType.ECDSA_P256, KeyType.RSA_3072, KeyType.RSA_4096)


def generate_private_key(key_type: KeyType) -> PrivateKey:
    if key_type.is_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=key_type.rsa_bits)
    return ec.generate_private_key(key_type.curve)


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_sha256(key: PublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: how a key is recognised (SEED-R2)."""
    return hashlib.sha256(spki_der(key)).hexdigest()


class Signer(Protocol):
    """Signs bytes with a CA key that may live outside this process."""

    @property
    def key_type(self) -> KeyType: ...

    def public_key(self) -> PublicKey: ...

    def sign(self, data: bytes) -> bytes:
        """The signature value over ``data`` with ``key_type.signature_hash``: PKCS#1 v1.5 for
        RSA, a DER ECDSA-Sig-Value for EC."""
        ...


class SoftwareSigner:
    """A CA key held in memory, loaded from encrypted PKCS#8."""

    def __init__(self, private_key: PrivateKey) -> None:
        self._key = private_key
        self._key_type = KeyType.of(private_key)

    @property
    def key_type(self) -> KeyType:
        return self._key_type

    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        algorithm = self._key_type.signature_hash
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), algorithm)
        return self._key.sign(data, ec.ECDSA(algorithm))

    def encrypted_pkcs8(self, passphrase: bytes) -> bytes:
        """PEM encrypted PKCS#8 (PBES2, AES-256-CBC): the only form a CA key is written in."""
        if not passphrase:
            raise CAError(Kind.BAD_KEY_FILE, "a CA key is never written without a passphrase")
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )

    @classmethod
    def from_encrypted_pkcs8(cls, data: bytes, passphrase: bytes) -> SoftwareSigner:
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except (ValueError, TypeError) as exc:
            # Wrong passphrase and damaged file look alike to OpenSSL; say both.
            raise CAError(
                Kind.BAD_KEY_FILE,
                "cannot decrypt the CA key: wrong passphrase or damaged key file",
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise CAError(Kind.BAD_KEY_FILE, "the CA key file holds neither an RSA nor an EC key")
        return cls(key)


@functools.cache
def draft_key(key_type: KeyType) -> PrivateKey:
    """A throwaway key with the same signature AlgorithmIdentifier as ``key_type``.

    cryptography's builders sign only with their own key objects, so a certificate is first built
    and signed with this key; the TBS bytes are then signed by the real ``Signer``. Only the
    AlgorithmIdentifier of the draft's signature matters (it is inside the TBS, RFC 5280
    §4.1.2.3); its value is thrown away, and the lint never verifies a draft's signature. The
    AlgorithmIdentifier is set by the hash alone: sha256WithRSAEncryption whatever the modulus
    (RFC 4055 §5), ecdsa-with-SHA384 whatever the curve (RFC 5758 §3.2). So one 2048-bit draft
    key serves every RSA CA, and every ECDSA CA's drafts are signed with P-256 (a P-384
    signature costs about five times as much).
    """
    if key_type.is_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())

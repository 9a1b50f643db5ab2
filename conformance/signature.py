"""Signature checks and the byte-exact AlgorithmIdentifiers the profile allows (RFC 5280 §4.1.1.2,
RFC 4055, RFC 5758 §3.2; S/MIME BR 7.1.3.2)."""

from __future__ import annotations

from asn1crypto import algos
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

# RFC 4055 §5 / S/MIME BR 7.1.3.2.1: the parameters are an explicit NULL.
SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
SHA384_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010c0500")
SHA512_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010d0500")
# RFC 5758 §3.2 / S/MIME BR 7.1.3.2.2: the parameters are absent.
ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
ECDSA_WITH_SHA384 = bytes.fromhex("300a06082a8648ce3d040303")
ECDSA_WITH_SHA512 = bytes.fromhex("300a06082a8648ce3d040304")

ALGORITHM_NAMES = {
    SHA256_WITH_RSA: "sha256WithRSAEncryption",
    SHA384_WITH_RSA: "sha384WithRSAEncryption",
    SHA512_WITH_RSA: "sha512WithRSAEncryption",
    ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
}
# SHA-256 or stronger (SEED-R3; docs/conformance.md C-02), in the encodings above.
STRONG = frozenset(ALGORITHM_NAMES)

Verifier = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def expected_for_issuer(key: object) -> bytes | None:
    """docs/conformance.md S-02 (SEED-R3): the one AlgorithmIdentifier an issuer key of this type
    signs subscriber certificates with; None for a key type the profile does not know."""
    if isinstance(key, rsa.RSAPublicKey):
        return SHA256_WITH_RSA
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return ECDSA_WITH_SHA256
        if isinstance(key.curve, ec.SECP384R1):
            return ECDSA_WITH_SHA384
    return None


def describe(algorithm_der: bytes) -> str:
    known = ALGORITHM_NAMES.get(algorithm_der)
    if known is not None:
        return known
    try:
        parsed = algos.SignedDigestAlgorithm.load(algorithm_der)
        name = parsed["algorithm"].native
        params = parsed["parameters"]
        with_params = params.contents is not None and type(params).__name__ != "Void"
    except (ValueError, TypeError, KeyError):
        return f"an AlgorithmIdentifier {algorithm_der.hex()}"
    return f"{name} ({'with' if with_params else 'without'} parameters)"


def verifies(
    key: object,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    parameters: object = None,
) -> bool:
    """True when ``signature`` over ``data`` verifies with ``key``. ``parameters`` is what
    cryptography reports as ``signature_algorithm_parameters`` (PKCS#1 v1.5, PSS or ECDSA);
    when None, PKCS#1 v1.5 or ECDSA with ``hash_algorithm`` is assumed."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if hash_algorithm is None:
                return False
            pad = parameters if isinstance(parameters, padding.AsymmetricPadding) else None
            key.verify(signature, data, pad or padding.PKCS1v15(), hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if hash_algorithm is None:
                return False
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True

"""JSON Web Signature as ACME uses it (RFC 8555 §6.2): flattened JSON serialization only, one
signature, an explicit algorithm allow-list, JWK thumbprints (RFC 7638) and the MAC-signed inner
JWS of External Account Binding (§7.3.4). Sans-IO: bytes and JSON in, verdicts out.

Key parsing and ES/RS/HS verification come from josepy (certbot's JOSE library) and cryptography;
josepy has no OKP keys, so Ed25519 (RFC 8037) is read here with cryptography directly.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import josepy
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from jitsuin.protocol.untrusted import InputError, kind_of, member, read_json

_B64URL = re.compile(r"[A-Za-z0-9_-]*")

MIN_RSA_BITS = 2048  # RFC 8555 §6.2 leaves the size to the server; BR 6.1.5 and NIST SP 800-57


class JOSEErrorKind(enum.Enum):
    """What went wrong, for the edge to map onto an ACME error type."""

    MALFORMED = "malformed"
    BAD_ALGORITHM = "badSignatureAlgorithm"
    BAD_SIGNATURE = "badSignature"
    BAD_KEY = "badPublicKey"


class JOSEError(ValueError):
    def __init__(self, kind: JOSEErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _malformed(message: str) -> JOSEError:
    return JOSEError(JOSEErrorKind.MALFORMED, message)


def b64u_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: Any, what: str = "value") -> bytes:
    """Strict base64url without padding: only the URL-safe alphabet, no '=', canonical trailing
    bits. Lenient decoders accept two spellings of one value, which breaks exact comparisons."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise _malformed(f"{what} is not base64url without padding")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _malformed(f"{what} is not base64url without padding") from None
    if b64u_encode(data) != text:
        raise _malformed(f"{what} is not canonical base64url (stray trailing bits)")
    return data


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- keys ---------------------------------------------------------------------------------------
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# RFC 7638 §3.2: the required members of each key type, the only ones hashed.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                       "OKP": ("crv", "kty", "x")}  # fmt: skip
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


@dataclass(frozen=True, slots=True)
class JWK:
    """A public JSON Web Key that passed the allow-list (RFC 7517)."""

    key: PublicKey
    members: Mapping[str, str]  # the thumbprint members, as the client sent them

    @property
    def kty(self) -> str:
        return self.members["kty"]

    def to_json(self) -> dict[str, str]:
        return dict(self.members)

    def thumbprint(self) -> str:
        """RFC 7638 §3: SHA-256 over the required members in lexicographic order, base64url."""
        return b64u_encode(hashlib.sha256(canonical_json(dict(self.members))).digest())

    def same_key(self, other: PublicKey) -> bool:
        return public_key_der(self.key) == public_key_der(other)


def public_key_der(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_jwk(value: Any) -> JWK:
    """Read a public JWK: EC P-256/P-384, RSA >= 2048 bits, OKP Ed25519. Private members are
    refused (a client that sends its private key has leaked it)."""
    if not isinstance(value, dict):
        raise _malformed("jwk must be a JSON object")
    kty = value.get("kty")
    if not isinstance(kty, str):
        raise _malformed(f"jwk member 'kty' must be a string, not {kind_of(kty)}")
    if kty not in _THUMBPRINT_MEMBERS:
        raise JOSEError(JOSEErrorKind.BAD_KEY, f"unsupported key type {kty!r}: use EC, RSA or OKP")
    if any(member in value for member in _PRIVATE_MEMBERS):
        raise JOSEError(JOSEErrorKind.BAD_KEY, "the jwk holds private key members")
    members = {}
    for name in _THUMBPRINT_MEMBERS[kty]:
        if not isinstance(value.get(name), str):
            raise _malformed(f"jwk member {name!r} is missing or not a string")
        members[name] = value[name]
    key: PublicKey
    if kty == "OKP":
        if members["crv"] != "Ed25519":
            raise JOSEError(JOSEErrorKind.BAD_KEY, "OKP keys must be Ed25519 (RFC 8037)")
        raw = b64u_decode(members["x"], "jwk x")
        try:
            key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise JOSEError(JOSEErrorKind.BAD_KEY, "not an Ed25519 public key") from None
    else:
        for name in _THUMBPRINT_MEMBERS[kty]:
            if name not in ("kty", "crv"):
                b64u_decode(members[name], f"jwk {name}")
        if kty == "EC" and members["crv"] not in ("P-256", "P-384"):
            raise JOSEError(JOSEErrorKind.BAD_KEY, "EC keys must be on P-256 or P-384")
        try:
            parsed = josepy.JWK.from_json(members)
        except (josepy.errors.Error, ValueError) as exc:
            raise JOSEError(JOSEErrorKind.BAD_KEY, f"the jwk is not a valid key: {exc}") from None
        key = parsed.key._wrapped  # type: ignore[attr-defined]
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise JOSEError(
                    JOSEErrorKind.BAD_KEY,
                    f"RSA key of {key.key_size} bits: at least {MIN_RSA_BITS} are required",
                )
            if key.public_numbers().e < 3 or key.public_numbers().e % 2 == 0:
                raise JOSEError(JOSEErrorKind.BAD_KEY, "the RSA public exponent is not valid")
    return JWK(key, members)


def jwk_of(key: PublicKey) -> JWK:
    """The JWK of a public key (for tests, clients and key comparisons)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return JWK(key, {"crv": "Ed25519", "kty": "OKP", "x": b64u_encode(raw)})
    members = josepy.JWK.load(public_key_der(key)).to_json()
    return JWK(key, {name: members[name] for name in _THUMBPRINT_MEMBERS[members["kty"]]})


# -- algorithms (a registry keyed by the wire name, docs/architecture.md, house habit 5)
# --------------------------------
Verifier = Callable[[PublicKey, bytes, bytes], bool]


def _ecdsa(hash_cls: type[hashes.HashAlgorithm], curve: str, size: int) -> Verifier:
    def verify(key: PublicKey, message: bytes, signature: bytes) -> bool:
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve:
            return False
        if len(signature) != 2 * size:  # RFC 7518 §3.4: R || S, each exactly `size` octets
            return False
        der = encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )
        try:
            key.verify(der, message, ec.ECDSA(hash_cls()))
        except InvalidSignature:
            return False
        return True

    return verify


def _rs256(key: PublicKey, message: bytes, signature: bytes) -> bool:
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    return bool(josepy.RS256.verify(key, message, signature))


def _eddsa(key: PublicKey, message: bytes, signature: bytes) -> bool:
    if not isinstance(key, ed25519.Ed25519PublicKey):
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Algorithm:
    name: str
    kty: str
    crv: str | None
    verify: Verifier


# RFC 8555 §6.2: servers MUST support ES256 and SHOULD support EdDSA. No "none", no MAC
# algorithms in account-signed requests, no PS* (which few clients use) and no ES512 (P-521).
ALGORITHMS: Mapping[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("ES256", "EC", "P-256", _ecdsa(hashes.SHA256, "secp256r1", 32)),
        Algorithm("ES384", "EC", "P-384", _ecdsa(hashes.SHA384, "secp384r1", 48)),
        Algorithm("EdDSA", "OKP", "Ed25519", _eddsa),
        Algorithm("RS256", "RSA", None, _rs256),
    )
}

# RFC 8555 §7.3.4: the inner EAB JWS uses a MAC algorithm.
MAC_ALGORITHMS: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {
    "HS256": hashes.SHA256,
    "HS384": hashes.SHA384,
    "HS512": hashes.SHA512,
}


def _named(value: Any) -> str:
    """An algorithm name as a client sent it, for a message (a non-string by its JSON type)."""
    return repr(value[:40]) if isinstance(value, str) else kind_of(value)


def algorithm(name: Any) -> Algorithm:
    """The account-key algorithm ``name``; RFC 8555 §6.2: anything else, a name of another
    type included, is badSignatureAlgorithm."""
    found = ALGORITHMS.get(name) if isinstance(name, str) else None
    if found is None:
        raise JOSEError(
            JOSEErrorKind.BAD_ALGORITHM,
            f"signature algorithm {_named(name)} is not accepted; use one of "
            f"{', '.join(ALGORITHMS)}",
        )
    return found


# -- flattened JWS --------------------------------------------------------------------------------
_FLATTENED_MEMBERS = frozenset({"protected", "payload", "signature"})


@dataclass(frozen=True, slots=True)
class FlattenedJWS:
    """A parsed flattened JWS (RFC 7515 §7.2.2): the header is the protected one only."""

    protected: Mapping[str, Any]
    protected_b64: str
    payload: bytes
    payload_b64: str
    signature: bytes

    @property
    def signing_input(self) -> bytes:
        return f"{self.protected_b64}.{self.payload_b64}".encode("ascii")

    def payload_json(self) -> Any:
        try:
            return read_json(self.payload)
        except InputError as exc:
            raise _malformed(f"the JWS payload: {exc.message}") from None


def parse_flattened(value: Any) -> FlattenedJWS:
    """RFC 8555 §6.2: "flattened JSON Serialization" only. Refused: the compact and general
    serializations (a "signatures" array), an unprotected "header", detached or unencoded
    payloads (RFC 7797 "b64": false) and any "crit" extension."""
    if isinstance(value, (bytes, str)):
        try:
            value = read_json(value)
        except InputError as exc:
            raise _malformed(f"the body (the flattened JWS JSON): {exc.message}") from None
    if not isinstance(value, dict):
        raise _malformed("the body is not a JSON object (use the flattened JWS JSON)")
    if "signatures" in value:
        raise _malformed("the general JWS serialization is not accepted: use the flattened one")
    if "header" in value:
        raise _malformed("an unprotected JWS header is not accepted (RFC 8555 §6.2)")
    extra = set(value) - _FLATTENED_MEMBERS
    if extra:
        raise _malformed(f"unexpected JWS members: {', '.join(sorted(extra))}")
    missing = _FLATTENED_MEMBERS - set(value)
    if missing:
        raise _malformed(f"the JWS lacks {', '.join(sorted(missing))}")
    try:
        protected_b64, payload_b64, signature_b64 = (
            member(value, name, str) for name in ("protected", "payload", "signature")
        )
    except InputError as exc:
        raise _malformed(f"the JWS {exc.message}") from None
    header_bytes = b64u_decode(protected_b64, "the protected header")
    try:
        protected = read_json(header_bytes)
    except InputError as exc:
        raise _malformed(f"the protected header: {exc.message}") from None
    if not isinstance(protected, dict):
        raise _malformed("the protected header is not a JSON object")
    if "b64" in protected or "crit" in protected:
        raise _malformed("unencoded payloads and critical header extensions are not accepted")
    payload = b64u_decode(payload_b64, "the payload")
    signature = b64u_decode(signature_b64, "the signature")
    if not signature:
        # RFC 8555 §6.2: an unsigned JWS ("none", RFC 7518 §3.6) or one of an unknown algorithm
        # uses an algorithm the server does not support: badSignatureAlgorithm, not malformed.
        alg = protected.get("alg")
        if not isinstance(alg, str) or (alg not in ALGORITHMS and alg not in MAC_ALGORITHMS):
            algorithm(alg)
        raise _malformed("the signature is empty")
    return FlattenedJWS(protected, protected_b64, payload, payload_b64, signature)


def verify_signature(jws: FlattenedJWS, key: JWK) -> None:
    """Check ``alg`` against the allow-list and the key, then the signature (RFC 7515 §5.2)."""
    alg = algorithm(jws.protected.get("alg"))
    if alg.kty != key.kty or (alg.crv is not None and alg.crv != key.members.get("crv")):
        raise JOSEError(
            JOSEErrorKind.BAD_ALGORITHM,
            f"algorithm {alg.name} does not fit a {key.kty} {key.members.get('crv', '')} key",
        )
    if not alg.verify(key.key, jws.signing_input, jws.signature):
        raise JOSEError(JOSEErrorKind.BAD_SIGNATURE, "the JWS signature does not verify")


def sign_flattened(
    protected: Mapping[str, Any], payload: bytes | None, private_key: Any, alg: str
) -> dict[str, str]:
    """Make a flattened JWS (for clients and tests). ``payload`` None signs the empty string
    (POST-as-GET, RFC 8555 §6.3)."""
    header = b64u_encode(canonical_json({**protected, "alg": alg}))
    body = b64u_encode(payload or b"")
    message = f"{header}.{body}".encode()
    if alg in MAC_ALGORITHMS:
        signature = hmac.new(private_key, message, MAC_ALGORITHMS[alg]().name).digest()
    elif alg == "EdDSA":
        signature = private_key.sign(message)
    else:
        signature = josepy.JWASignature.from_json(alg).sign(private_key, message)
    return {"protected": header, "payload": body, "signature": b64u_encode(signature)}


# -- External Account Binding (RFC 8555 §7.3.4) ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class EABRequest:
    """The parts of an EAB JWS read before the MAC key is known."""

    jws: FlattenedJWS
    kid: str
    alg: str


def parse_eab(value: Any, outer_jwk: Mapping[str, Any], url: str) -> EABRequest:
    """The inner JWS: a MAC algorithm, ``kid`` = the EAB key id, ``url`` = the newAccount URL,
    no ``nonce`` and no ``jwk``, payload = the outer JWK exactly."""
    jws = parse_flattened(value)
    header = jws.protected
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in MAC_ALGORITHMS:
        raise JOSEError(
            JOSEErrorKind.BAD_ALGORITHM,
            f"the external account binding must use {', '.join(MAC_ALGORITHMS)}, not {_named(alg)}",
        )
    if "nonce" in header:
        raise _malformed("the external account binding JWS must not carry a nonce (§7.3.4)")
    if "jwk" in header:
        raise _malformed("the external account binding JWS must not carry a jwk")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _malformed("the external account binding JWS lacks its kid")
    if header.get("url") != url:
        raise _malformed("the external account binding url is not the newAccount URL")
    if jws.payload_json() != dict(outer_jwk):
        raise _malformed("the external account binding payload is not the account key")
    return EABRequest(jws, kid, alg)


def verify_eab(request: EABRequest, mac_key: bytes) -> bool:
    digest = MAC_ALGORITHMS[request.alg]().name
    expected = hmac.new(mac_key, request.jws.signing_input, digest).digest()
    return hmac.compare_digest(expected, request.jws.signature)

"""Just enough JOSE for the ACME probes (RFC 7515, RFC 7638, RFC 8555 §6.2): an ES256 account
key, its JWK and thumbprint, and flattened JWS objects, well-formed or deliberately not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class AccountKey:
    """An ECDSA P-256 key signing ES256 JWS (RFC 8555 §6.2: servers MUST support ES256)."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> AccountKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }

    def thumbprint(self) -> str:
        """RFC 7638: SHA-256 over the required members in lexicographic order."""
        return b64url(hashlib.sha256(_json(self.jwk())).digest())

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def flattened(
    key: AccountKey,
    protected: dict[str, Any],
    payload: Any,
    *,
    alg: str = "ES256",
    mac_key: bytes | None = None,
) -> dict[str, Any]:
    """A flattened JWS (RFC 7515 §7.2.2). ``payload`` None means POST-as-GET (empty payload,
    RFC 8555 §6.3). ``alg`` "none" leaves the signature empty; "HS256" MACs with ``mac_key``."""
    header = {"alg": alg, **protected}
    protected_b64 = b64url(_json(header))
    payload_b64 = "" if payload is None else b64url(_json(payload))
    signing_input = f"{protected_b64}.{payload_b64}".encode("ascii")
    if alg == "none":
        signature = b""
    elif alg == "HS256":
        signature = hmac.new(mac_key or b"\0" * 32, signing_input, hashlib.sha256).digest()
    else:
        signature = key.sign(signing_input)
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64url(signature)}


def eab(account: AccountKey, kid: str, mac_key: bytes, url: str) -> dict[str, Any]:
    """The externalAccountBinding JWS (RFC 8555 §7.3.4): HS256 over the account JWK, with kid
    and url, and no nonce."""
    return flattened(account, {"kid": kid, "url": url}, account.jwk(), alg="HS256", mac_key=mac_key)


def body(jws: dict[str, Any]) -> bytes:
    return json.dumps(jws).encode()

"""One-time credentials and how they are kept: keyed hashes (HMAC-SHA256) for what is only ever
compared, AES-256-GCM for what must be read back (the EAB MAC key, a queued PIN e-mail)."""

from __future__ import annotations

import base64
import hmac
import secrets
from hashlib import sha256

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Crockford's base32: no I, L, O, U; read back case-insensitively with O->0 and I/L->1.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_BACK = str.maketrans({"O": "0", "I": "1", "L": "1"})

ACCESS_CODE_CHARS = 26  # 130 bits (docs/flow.md: >= 128 bits)
PIN_DIGITS = 8


def _random(chars: int, alphabet: str = ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(chars))


def grouped(code: str, size: int = 5) -> str:
    return "-".join(code[i : i + size] for i in range(0, len(code), size))


def normalise(code: str) -> str:
    """What a person typed, as the code was made: separators dropped, upper case, O/I/L fixed."""
    return "".join(ch for ch in code.upper() if ch.isalnum()).translate(_READ_BACK)


def new_application_id() -> str:
    return "APP-" + _random(8)


def new_enrollment_id() -> str:
    return grouped(_random(10))


def new_access_code() -> str:
    return _random(ACCESS_CODE_CHARS)


def new_pin() -> str:
    return _random(PIN_DIGITS, "0123456789")


def new_eab_key() -> str:
    """An ACME External Account Binding MAC key (RFC 8555 §7.3.4), base64url without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def new_operator_token() -> str:
    return "jto_" + secrets.token_urlsafe(32)


class Keyring:
    """Derives a hashing key and a sealing key from the server's RA secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the RA secret must hold at least 32 bytes")
        self._hash_key = self._derive(secret, b"jitsuin ra keyed hash")
        self._aead = AESGCM(self._derive(secret, b"jitsuin ra sealing"))

    @staticmethod
    def _derive(secret: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)

    def digest(self, purpose: str, value: str) -> str:
        return hmac.new(self._hash_key, f"{purpose}\0{value}".encode(), sha256).hexdigest()

    def matches(self, purpose: str, value: str, stored: str | None) -> bool:
        """Constant-time comparison with a stored keyed hash."""
        candidate = self.digest(purpose, value)
        return hmac.compare_digest(candidate, stored or "0" * len(candidate))

    def seal(self, purpose: str, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, plaintext, purpose.encode())

    def open(self, purpose: str, sealed: bytes) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], purpose.encode())

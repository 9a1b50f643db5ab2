"""CA keys in a PKCS#11 token (an HSM; SoftHSM2 in tests) behind the ``Signer`` protocol: the key
pair is generated in the token, marked sensitive and not extractable, and never leaves it.

SoftHSM2 2.6 has no CKM_ECDSA_SHA384, so EC keys sign a digest made here with CKM_ECDSA and the
raw r||s is DER-encoded (X9.62 ECDSA-Sig-Value, RFC 5480 §2.2.3).

One logged-in session per token per process. PKCS#11 keeps the login state per application and
token, not per session (PKCS#11 v2.40 §5.6: all sessions of an application with a token share
it), so a second ``C_Login`` in the same process fails with CKR_USER_ALREADY_LOGGED_IN. Every
signer of a token (one per CA generation, the one that generates a rollover's key, and the
delegated OCSP responder's keys, server/revocation_status.py) therefore uses the same
read/write session, opened and logged in on first use and kept for the life of the process.
A session runs one operation at a time (§5.5; the application serialises the threads that
share it), and signing runs in worker threads, so one lock per token serialises every call
into that session."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import pkcs11
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, Mechanism, ObjectClass
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)
from pkcs11.util.rsa import encode_rsa_public_key

from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.keys import KeyType, PublicKey


@dataclass(frozen=True, slots=True)
class TokenConfig:
    library: Path
    token_label: str
    pin: str


def key_ref(token: TokenConfig, label: str) -> str:
    """RFC 7512-style reference stored with the generation (no PIN in it)."""
    return f"pkcs11:token={token.token_label};object={label}"


def parse_key_ref(ref: str) -> str:
    """The object label of a ``pkcs11:`` reference."""
    fields = dict(part.split("=", 1) for part in ref.removeprefix("pkcs11:").split(";"))
    return fields["object"]


@dataclass(frozen=True, slots=True)
class _Login:
    """A token's logged-in session and the lock every use of it holds."""

    session: pkcs11.Session
    lock: threading.Lock


_logins: dict[tuple[str, str], _Login] = {}
_logins_lock = threading.Lock()


def _login(token: TokenConfig) -> _Login:
    """The process's logged-in session with ``token``: opened (read/write, for key generation)
    and logged in with the user PIN the first time, the same session after that."""
    where = (str(token.library), token.token_label)
    with _logins_lock:
        login = _logins.get(where)
        if login is None:
            found = pkcs11.lib(str(token.library)).get_token(token_label=token.token_label)
            login = _Login(found.open(user_pin=token.pin, rw=True), threading.Lock())
            _logins[where] = login
        return login


def _refusal(token: TokenConfig, label: str, exc: Exception) -> CAError:
    return CAError(
        Kind.BAD_KEY_FILE,
        f"cannot use the key {label!r} in token {token.token_label!r}: {type(exc).__name__}",
    )


def private_key_labels(token: TokenConfig, prefix: str) -> list[str]:
    """The labels of the token's private keys that begin with ``prefix``."""
    try:
        login = _login(token)
        with login.lock:
            found = login.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            return [key.label for key in found if key.label.startswith(prefix)]
    except (pkcs11.PKCS11Error, RuntimeError) as exc:
        raise _refusal(token, prefix, exc) from exc


class Pkcs11Signer:
    def __init__(self, token: TokenConfig, label: str) -> None:
        try:
            self._login = _login(token)
            with self._login.lock:
                session = self._login.session
                self._private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
                if public.key_type == pkcs11.KeyType.EC:
                    der = encode_ec_public_key(public)
                else:
                    der = encode_rsa_public_key(public)
        except (pkcs11.PKCS11Error, RuntimeError) as exc:
            raise _refusal(token, label, exc) from exc
        self._public: PublicKey = serialization.load_der_public_key(der)  # type: ignore[assignment]
        self._key_type = KeyType.of(self._public)

    @property
    def key_type(self) -> KeyType:
        return self._key_type

    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        with self._login.lock:  # the token's one session runs one operation at a time
            if self._key_type.is_rsa:
                # docs/conformance.md S-02: sha256WithRSAEncryption (PKCS#1 v1.5).
                return bytes(self._private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
            digest = hashlib.new(self._key_type.signature_hash.name, data).digest()
            raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        return encode_ecdsa_signature(raw)

    @classmethod
    def generate(cls, token: TokenConfig, label: str, key_type: KeyType) -> Pkcs11Signer:
        """Generate the key pair inside the token (sensitive, never extractable)."""
        try:
            login = _login(token)
        except (pkcs11.PKCS11Error, RuntimeError) as exc:
            raise _refusal(token, label, exc) from exc
        with login.lock:
            session = login.session
            if any(True for _ in session.get_objects({Attribute.LABEL: label})):
                raise CAError(
                    Kind.BAD_KEY_FILE,
                    f"token {token.token_label!r} already holds a key labelled {label!r}",
                )
            private_template = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
            if key_type.is_rsa:
                session.generate_keypair(
                    pkcs11.KeyType.RSA,
                    key_type.rsa_bits,
                    store=True,
                    label=label,
                    private_template=private_template,
                )
            else:
                parameters = session.create_domain_parameters(
                    pkcs11.KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(key_type.curve.name)},
                    local=True,
                )
                parameters.generate_keypair(
                    store=True, label=label, private_template=private_template
                )
        return cls(token, label)

"""CA keys in a PKCS#11 token (an HSM; SoftHSM2 in tests) behind the ``Signer`` protocol: the key
pair is generated in the token, marked sensitive and not extractable, and never leaves it.

SoftHSM2 2.6 has no CKM_ECDSA_SHA384, so EC keys sign a digest made here with CKM_ECDSA and the
raw r||s is DER-encoded (X9.62 ECDSA-Sig-Value, RFC 5480 §2.2.3)."""

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


class Pkcs11Signer:
    def __init__(self, token: TokenConfig, label: str) -> None:
        try:
            self._token = pkcs11.lib(str(token.library)).get_token(token_label=token.token_label)
            self._session = self._token.open(user_pin=token.pin)
            self._private = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            public = self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        except (pkcs11.PKCS11Error, RuntimeError) as exc:
            raise CAError(
                Kind.BAD_KEY_FILE,
                f"cannot use the CA key {label!r} in token {token.token_label!r}: "
                f"{type(exc).__name__}",
            ) from exc
        if public.key_type == pkcs11.KeyType.EC:
            der = encode_ec_public_key(public)
        else:
            der = encode_rsa_public_key(public)
        self._public: PublicKey = serialization.load_der_public_key(der)  # type: ignore[assignment]
        self._key_type = KeyType.of(self._public)
        self._lock = threading.Lock()  # a PKCS#11 session runs one operation at a time

    @property
    def key_type(self) -> KeyType:
        return self._key_type

    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        with self._lock:
            if self._key_type.is_rsa:
                # CONFORMANCE S-02: sha256WithRSAEncryption (PKCS#1 v1.5).
                return bytes(self._private.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
            digest = hashlib.new(self._key_type.signature_hash.name, data).digest()
            raw = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        return encode_ecdsa_signature(raw)

    def close(self) -> None:
        self._session.close()

    @classmethod
    def generate(cls, token: TokenConfig, label: str, key_type: KeyType) -> Pkcs11Signer:
        """Generate the key pair inside the token (sensitive, never extractable)."""
        lib = pkcs11.lib(str(token.library))
        with lib.get_token(token_label=token.token_label).open(
            user_pin=token.pin, rw=True
        ) as session:
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

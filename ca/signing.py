"""Sign a cryptography builder's output with any ``Signer``.

The builder signs a draft with ``draft_key``; the draft's to-be-signed bytes are then signed by the
real signer and reassembled, keeping the TBS and AlgorithmIdentifier bytes exactly as built.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.keys import Signer, draft_key


@dataclass(frozen=True, slots=True)
class Signed:
    draft: x509.Certificate  # what the pre-issuance lint inspects (same TBS as ``certificate``)
    certificate: x509.Certificate
    der: bytes


def draft_certificate(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    key_type = signer.key_type
    return builder.sign(draft_key(key_type), key_type.signature_hash)


def sign_draft(draft: x509.Certificate, signer: Signer) -> Signed:
    parsed = asn1_x509.Certificate.load(draft.public_bytes(serialization.Encoding.DER))
    signature = signer.sign(draft.tbs_certificate_bytes)
    final = asn1_x509.Certificate(
        {
            "tbs_certificate": parsed["tbs_certificate"],
            "signature_algorithm": parsed["signature_algorithm"],
            "signature_value": signature,
        }
    )
    der = final.dump()
    return Signed(draft=draft, certificate=x509.load_der_x509_certificate(der), der=der)

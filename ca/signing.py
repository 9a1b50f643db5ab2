"""Sign a cryptography builder's output (certificate, CRL, OCSP response) with any ``Signer``.

The builder signs a draft with ``draft_key``; the draft's to-be-signed bytes are then signed by the
real signer and reassembled, keeping the TBS and AlgorithmIdentifier bytes exactly as built.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from jitsuin.ca.keys import KeyType, Signer, draft_key


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


def draft_crl(
    builder: x509.CertificateRevocationListBuilder, signer: Signer
) -> x509.CertificateRevocationList:
    key_type = signer.key_type
    return builder.sign(draft_key(key_type), key_type.signature_hash)


def sign_draft_crl(draft: x509.CertificateRevocationList, signer: Signer) -> bytes:
    """The DER CRL: the draft's TBSCertList signed by the real signer (RFC 5280 §5.1)."""
    parsed = asn1_crl.CertificateList.load(draft.public_bytes(serialization.Encoding.DER))
    final = asn1_crl.CertificateList(
        {
            "tbs_cert_list": parsed["tbs_cert_list"],
            "signature_algorithm": parsed["signature_algorithm"],
            "signature": signer.sign(draft.tbs_certlist_bytes),
        }
    )
    return final.dump()


@functools.cache
def _draft_responder(key_type: KeyType) -> x509.Certificate:
    """A throwaway certificate for the draft key: cryptography's OCSP builder insists that the
    responder certificate and the signing key match. Its responder ID is replaced below."""
    key = draft_key(key_type)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "draft")])
    now = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now)
    )
    return builder.sign(key, key_type.signature_hash)


def draft_ocsp(builder: ocsp.OCSPResponseBuilder, signer: Signer) -> ocsp.OCSPResponse:
    key_type = signer.key_type
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, _draft_responder(key_type))
    return builder.sign(draft_key(key_type), key_type.signature_hash)


def sign_draft_ocsp(
    draft: ocsp.OCSPResponse,
    signer: Signer,
    certs: Sequence[x509.Certificate] = (),
    produced_at: dt.datetime | None = None,
) -> bytes:
    """The DER OCSPResponse: the draft's ResponseData, with the responder ID set to the real key's
    hash (RFC 6960 §4.2.2.3, byKey), signed by the real signer (RFC 6960 §4.2.1). ``certs`` go in
    the BasicOCSPResponse's certs field: a delegated responder's certificate, which the client
    needs to verify the signature (§4.2.2.2). ``produced_at`` replaces the builder's wall-clock
    producedAt with the caller's clock (a delegated responder's certificate must cover it)."""
    parsed = asn1_ocsp.OCSPResponse.load(draft.public_bytes(serialization.Encoding.DER))
    basic = parsed["response_bytes"]["response"].parsed
    spki = signer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_hash = hashlib.sha1(  # noqa: S324 (RFC 6960 defines KeyHash as SHA-1)
        asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]
    ).digest()
    tbs = basic["tbs_response_data"].copy()
    tbs["responder_id"] = asn1_ocsp.ResponderId(name="by_key", value=key_hash)
    if produced_at is not None:
        tbs["produced_at"] = produced_at.astimezone(dt.UTC)
    tbs_der = tbs.dump(force=True)
    final_basic = asn1_ocsp.BasicOCSPResponse(
        {
            "tbs_response_data": asn1_ocsp.ResponseData.load(tbs_der),
            "signature_algorithm": basic["signature_algorithm"],
            "signature": signer.sign(tbs_der),
        }
    )
    if certs:
        final_basic["certs"] = [
            asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in certs
        ]
    final = asn1_ocsp.OCSPResponse(
        {
            "response_status": "successful",
            "response_bytes": {"response_type": "basic_ocsp_response", "response": final_basic},
        }
    )
    return final.dump()

"""EST wire formats (RFC 7030, with RFC 8951's clarifications): base64 bodies, certs-only CMS,
CSR attributes. Sans-IO: bytes in, bytes out."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from typing import ClassVar

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

PKCS10 = "application/pkcs10"
PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"  # RFC 7030 §4.2.3
PKCS7 = "application/pkcs7-mime"  # RFC 7030 §4.1.3 (cacerts)
CSRATTRS = "application/csrattrs"  # RFC 7030 §4.5.2

_WHITESPACE = re.compile(rb"\s+")


class BadBody(ValueError):
    """The body is not what the EST operation takes; the message says why."""


def decode_base64_body(body: bytes) -> bytes:
    """RFC 8951 §3.2: the body is base64 whatever Content-Transfer-Encoding says. Line breaks
    and surrounding space are ignored; PEM armour is accepted too (what some clients send)."""
    text = body.strip()
    if not text:
        raise BadBody("the request body is empty")
    if text.startswith(b"-----BEGIN"):
        lines = [ln for ln in text.splitlines() if not ln.startswith(b"-----")]
        text = b"".join(lines)
    compact = _WHITESPACE.sub(b"", text)
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadBody(f"the body is not valid base64: {exc}") from None
    if not der:
        raise BadBody("the body decodes to nothing")
    return der


def encode_base64_body(der: bytes) -> bytes:
    """Base64 in 64-character lines (RFC 7030 §4: Content-Transfer-Encoding base64)."""
    encoded = base64.b64encode(der)
    return b"\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64)) + b"\n"


def certs_only(certificates: Sequence[x509.Certificate]) -> bytes:
    """A certs-only CMS SignedData (RFC 5272 §4.2) holding ``certificates``, base64-encoded."""
    return encode_base64_body(pkcs7.serialize_certificates(list(certificates), Encoding.DER))


class _Attribute(core.Sequence):
    _fields: ClassVar = [
        ("type", core.ObjectIdentifier),
        ("values", core.SetOf, {"spec": core.Any}),
    ]


class _AttrOrOID(core.Choice):
    _alternatives: ClassVar = [("oid", core.ObjectIdentifier), ("attribute", _Attribute)]


class CsrAttrs(core.SequenceOf):
    """RFC 7030 §4.5.2: CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID."""

    _child_spec = _AttrOrOID


def csr_attributes(
    oids: Iterable[str], attributes: Iterable[tuple[str, Sequence[core.Asn1Value]]]
) -> bytes:
    """The DER CsrAttrs, base64-encoded: bare OIDs (e.g. signature algorithms) and attributes
    with values (e.g. id-ecPublicKey with the accepted curves, RFC 8295 §E)."""
    items = [_AttrOrOID(name="oid", value=core.ObjectIdentifier(oid)) for oid in oids]
    for oid, values in attributes:
        attribute = _Attribute({"type": oid, "values": [core.Any.load(v.dump()) for v in values]})
        items.append(_AttrOrOID(name="attribute", value=attribute))
    return encode_base64_body(CsrAttrs(items).dump())


def parse_csr_attributes(der: bytes) -> list[tuple[str, list[bytes]]]:
    """(OID, DER values) of each item; a bare OID has no values. For clients and tests."""
    out = []
    for item in CsrAttrs.load(der):
        if item.name == "oid":
            out.append((item.chosen.dotted, []))
        else:
            attribute = item.chosen
            out.append((attribute["type"].dotted, [v.dump() for v in attribute["values"]]))
    return out

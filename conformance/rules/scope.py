"""What the rule modules share: which documents a rule applies to, raw name attributes, the
RFC 5280 way of counting validity, and how a delegate's findings become violations."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509

from jitsuin.conformance.documents import CertificateDoc, CRLDoc, OCSPDoc
from jitsuin.conformance.findings import Note, Severity, Violation
from jitsuin.conformance.pkilint_delegate import PkilintFinding
from jitsuin.conformance.registry import DocKind

CERTIFICATES = (DocKind.CERTIFICATE,)
CRLS = (DocKind.CRL,)
OCSP_RESPONSES = (DocKind.OCSP_RESPONSE,)
REVOCATION = (DocKind.CRL, DocKind.OCSP_RESPONSE)
ONE_SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)
# S/MIME BR 1.2: the S/MIME BR took effect on 1 September 2023.
SBR_EFFECTIVE = dt.date(2023, 9, 1)

# RFC 5280 Appendix A / X.520 attribute types, by dotted OID.
CN = "2.5.4.3"
SURNAME = "2.5.4.4"
SERIAL_NUMBER = "2.5.4.5"
COUNTRY = "2.5.4.6"
LOCALITY = "2.5.4.7"
STATE = "2.5.4.8"
STREET = "2.5.4.9"
ORGANIZATION = "2.5.4.10"
ORGANIZATIONAL_UNIT = "2.5.4.11"
TITLE = "2.5.4.12"
POSTAL_CODE = "2.5.4.17"
GIVEN_NAME = "2.5.4.42"
DN_QUALIFIER = "2.5.4.46"
PSEUDONYM = "2.5.4.65"
ORGANIZATION_IDENTIFIER = "2.5.4.97"
EMAIL_ADDRESS = "1.2.840.113549.1.9.1"
DOMAIN_COMPONENT = "0.9.2342.19200300.100.1.25"

ATTRIBUTE_NAMES = {
    CN: "commonName",
    SURNAME: "surname",
    SERIAL_NUMBER: "serialNumber",
    COUNTRY: "countryName",
    LOCALITY: "localityName",
    STATE: "stateOrProvinceName",
    STREET: "streetAddress",
    ORGANIZATION: "organizationName",
    ORGANIZATIONAL_UNIT: "organizationalUnitName",
    TITLE: "title",
    POSTAL_CODE: "postalCode",
    GIVEN_NAME: "givenName",
    DN_QUALIFIER: "dnQualifier",
    PSEUDONYM: "pseudonym",
    ORGANIZATION_IDENTIFIER: "organizationIdentifier",
    EMAIL_ADDRESS: "emailAddress",
    DOMAIN_COMPONENT: "domainComponent",
}

# Universal tags of the string types (X.680 §8.6).
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
TELETEX_STRING = 0x14
IA5_STRING = 0x16
UNIVERSAL_STRING = 0x1C
BMP_STRING = 0x1E
TAG_NAMES = {
    UTF8_STRING: "UTF8String",
    PRINTABLE_STRING: "PrintableString",
    TELETEX_STRING: "TeletexString",
    IA5_STRING: "IA5String",
    UNIVERSAL_STRING: "UniversalString",
    BMP_STRING: "BMPString",
}


def attribute_name(oid: str) -> str:
    return ATTRIBUTE_NAMES.get(oid, oid)


@dataclass(frozen=True, slots=True)
class NameAttribute:
    oid: str
    value: str | None  # None when the value is not a string we can read
    tag: int
    rdn: int  # index of the RDN it sits in
    index: int  # index inside the RDN


def name_attributes(name: asn1_x509.Name) -> list[NameAttribute]:
    return list(_name_attributes(name.dump()))


@functools.lru_cache(maxsize=256)
def _name_attributes(der: bytes) -> tuple[NameAttribute, ...]:
    """By the Name's DER: a draft's rules ask for its subject a dozen times, and the CA's names
    recur on every draft."""
    name = asn1_x509.Name.load(der)
    out = []
    for r, rdn in enumerate(name.chosen):
        for i, atv in enumerate(rdn):
            raw = atv["value"].dump()
            try:
                native = atv["value"].native
            except (ValueError, TypeError):
                native = None
            out.append(
                NameAttribute(
                    atv["type"].dotted,
                    native if isinstance(native, str) else None,
                    raw[0] if raw else 0,
                    r,
                    i,
                )
            )
    return tuple(out)


def subject_attributes(doc: CertificateDoc) -> list[NameAttribute]:
    return name_attributes(doc.asn1["tbs_certificate"]["subject"])


def values(doc: CertificateDoc, oid: str) -> list[str]:
    return [a.value or "" for a in subject_attributes(doc) if a.oid == oid]


def subject_path(a: NameAttribute) -> str:
    return f"certificate.tbsCertificate.subject.rdnSequence.{a.rdn}.{a.index}"


def validity(doc: CertificateDoc) -> dt.timedelta:
    """RFC 5280 §4.1.2.5: the validity period includes both notBefore and notAfter, so a
    certificate whose notAfter is notBefore + 396 d - 1 s is valid for exactly 396 days."""
    return doc.not_after - doc.not_before + ONE_SECOND


def days(delta: dt.timedelta) -> str:
    whole, rest = divmod(delta, DAY)
    return f"{whole} days" + (f" {rest}" if rest else "")


# -- applies() predicates
def is_ca(doc: CertificateDoc) -> bool:
    return doc.is_ca


def is_end_entity(doc: CertificateDoc) -> bool:
    return not doc.is_ca


def is_smime(doc: CertificateDoc) -> bool:
    return doc.is_smime_subscriber


def is_ca_crl(doc: CRLDoc) -> bool:
    return doc.is_ca_crl


def is_successful(doc: OCSPDoc) -> bool:
    return doc.successful


def uses_pkilint(doc: CertificateDoc | CRLDoc | OCSPDoc) -> bool:
    return doc.ctx.pkilint


# -- delegates
def delegated(findings: Iterable[PkilintFinding], what: str) -> Iterator[Violation | Note]:
    """docs/conformance.md X-13/S-18/C-09/R-09: a delegate finding at WARNING or above is an ERROR
    of the rule ("no finding >= WARNING"); below that it is kept as a note."""
    for f in findings:
        text = f"{what}: {f.severity.name} {f.code}" + (f": {f.message}" if f.message else "")
        if f.severity >= Severity.WARNING:
            severity = Severity.FATAL if f.severity is Severity.FATAL else Severity.ERROR
            message = f"{what} reports {f.severity.name}: {f.message or f.code}"
            yield Violation(message, severity, f.code, f.node_path)
        else:
            yield Note(text)

"""docs/conformance.md A: RFC 5280 structure, for every certificate (X-01..X-14)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from jitsuin.conformance import pkilint_delegate
from jitsuin.conformance.documents import CertificateDoc
from jitsuin.conformance.findings import Note, Severity, Violation
from jitsuin.conformance.registry import Source, rule
from jitsuin.conformance.rules import scope
from jitsuin.conformance.signature import describe

E, W = Severity.ERROR, Severity.WARNING
Found = Iterator[Violation | Note]


@rule(
    "X-01",
    "Canonical DER, version 3",
    """The certificate is DER-encoded: decoding it and encoding it again as DER gives the same
    bytes. Its version is v3.""",
    citation="RFC 5280 §4.1, §4.1.2.1; X.690 §10",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x01(doc: CertificateDoc) -> Found:
    if doc.canonical is None:
        yield Violation("the certificate does not decode as an RFC 5280 Certificate")
    elif doc.canonical != doc.der:
        pairs = zip(doc.der, doc.canonical, strict=False)
        at = next(
            (i for i, (a, b) in enumerate(pairs) if a != b), min(len(doc.der), len(doc.canonical))
        )
        yield Violation(
            f"the encoding is not DER: re-encoding differs from byte {at} on "
            f"({len(doc.der)} bytes given, {len(doc.canonical)} in DER)"
        )
    if doc.cert.version is not x509.Version.v3:
        yield Violation(
            f"version is {doc.cert.version.name}, not v3",
            node_path="certificate.tbsCertificate.version",
        )


@rule(
    "X-02",
    "Serial number",
    """The serial number is positive, at most 20 octets (so below 2^159), and is unique among the
    certificates of one issuer key. The CA/Browser Forum BR 7.1 and the S/MIME BR 7.1 want
    "non-sequential serial numbers greater than zero (0) and less than 2^159 containing at least
    64 bits of output from a CSPRNG": a serial whose DER INTEGER content is shorter than 8 octets
    (a value below 2^55) cannot hold 64 random bits and is an error. A serial of 8 octets or
    more that is still below 2^63 may be 64 random bits with leading zero bits (a 64-bit draw
    lands below 2^55 once in 512), so it is only a warning.""",
    citation="RFC 5280 §4.1.2.2; BR 7.1; SBR 7.1",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x02(doc: CertificateDoc) -> Found:
    path = "certificate.tbsCertificate.serialNumber"
    serial = doc.serial
    octets = len(doc.asn1["tbs_certificate"]["serial_number"].contents)
    if serial <= 0:
        yield Violation(f"the serial number {serial} is not positive", node_path=path)
    if octets > 20:
        yield Violation(
            f"the serial number takes {octets} octets; at most 20 are allowed", node_path=path
        )
    elif serial >= 2**159:
        yield Violation("the serial number is 2^159 or more", node_path=path)
    # BR 7.1, SBR 7.1: "at least 64 bits of output from a CSPRNG". The margin is by encoded
    # length: fewer than 8 content octets can never hold 64 random bits.
    if serial > 0 and octets < 8:
        yield Violation(
            f"the serial number has {serial.bit_length()} bits in {octets} octets: fewer than 8 "
            "octets cannot carry 64 bits of CSPRNG output (BR 7.1, SBR 7.1)",
            node_path=path,
        )
    elif 0 < serial < 2**63:
        yield Violation(
            f"the serial number has {serial.bit_length()} bits: 64 random bits only if its "
            "leading bits happened to be zero (BR 7.1, SBR 7.1)",
            W,
            node_path=path,
        )
    issuer = doc.issuer
    for other in doc.corpus.with_serial(serial):
        if other is doc or other.der == doc.der:
            continue
        if issuer is not None and other.issuer is not None and other.issuer.key == issuer.key:
            yield Violation(
                f"serial {serial:x} is also used by {other.label} from the same issuer key",
                node_path=path,
            )


@rule(
    "X-03",
    "Signature algorithm and signature",
    """The tbsCertificate signature field equals signatureAlgorithm byte for byte, and the
    signature verifies with the issuer's public key.""",
    citation="RFC 5280 §4.1.1.2, §4.1.2.3, §6.1.3",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x03(doc: CertificateDoc) -> Found:
    inner = doc.asn1["tbs_certificate"]["signature"].dump()
    outer = doc.asn1["signature_algorithm"].dump()
    if inner != outer:
        yield Violation(
            f"tbsCertificate.signature is {describe(inner)} but signatureAlgorithm is "
            f"{describe(outer)}",
            node_path="certificate.tbsCertificate.signature",
        )
    if doc.ctx.draft and not doc.context_only:
        yield Note("a draft signed with a throwaway key: the signature is not checked")
        return
    if doc.issuer is not None:
        return
    claimed = [
        c
        for c in doc.corpus.certificates
        if c is not doc and (doc.aki is not None and c.ski == doc.aki)
    ]
    if claimed:
        yield Violation(
            f"the signature does not verify with the key of {claimed[0].label} "
            "(the certificate whose SKI its AKI names)",
            node_path="certificate.signature",
        )
    elif doc.self_issued and (doc.aki is None or doc.aki == doc.ski):
        yield Violation(
            "a self-signed certificate whose signature does not verify with its own key",
            node_path="certificate.signature",
        )
    else:
        yield Note("the issuer certificate is not among the files: signature not checked")


@rule(
    "X-04",
    "Issuer name",
    """The issuer field is byte-for-byte the subject field of the issuing certificate.""",
    citation="RFC 5280 §4.1.2.4, §7.1; SBR 7.1.4.1",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x04(doc: CertificateDoc) -> Found:
    issuer = doc.issuer
    if issuer is None:
        yield Note("the issuer certificate is not among the files: issuer name not compared")
        return
    mine = doc.asn1["tbs_certificate"]["issuer"].dump()
    theirs = issuer.asn1["tbs_certificate"]["subject"].dump()
    if mine != theirs:
        how = (
            "differs in encoding"
            if doc.cert.issuer == issuer.cert.subject
            else f"is {doc.cert.issuer.rfc4514_string()!r}"
        )
        yield Violation(
            f"the issuer name {how}; the issuing certificate's subject is "
            f"{issuer.cert.subject.rfc4514_string()!r}",
            node_path="certificate.tbsCertificate.issuer",
        )


_UTC = re.compile(rb"[0-9]{12}Z")
_GENERALIZED = re.compile(rb"[0-9]{14}Z")


@rule(
    "X-05",
    "Validity encoding",
    """Dates through 2049 are UTCTime, dates from 2050 GeneralizedTime; both in Zulu time with
    seconds and no fractions. notBefore is not after notAfter.""",
    citation="RFC 5280 §4.1.2.5, §4.1.2.5.1, §4.1.2.5.2",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x05(doc: CertificateDoc) -> Found:
    for field_name, label, when in (
        ("not_before", "notBefore", doc.not_before),
        ("not_after", "notAfter", doc.not_after),
    ):
        value = doc.asn1["tbs_certificate"]["validity"][field_name]
        raw = value.chosen.contents
        path = f"certificate.tbsCertificate.validity.{label}"
        if value.name == "utc_time":
            if not _UTC.fullmatch(raw):
                yield Violation(
                    f"UTCTime {raw.decode(errors='replace')!r} is not YYMMDDHHMMSSZ", node_path=path
                )
            if when.year >= 2050:
                yield Violation(
                    f"{when.isoformat()} is from 2050 on but encoded as UTCTime", node_path=path
                )
        else:
            if not _GENERALIZED.fullmatch(raw):
                yield Violation(
                    f"GeneralizedTime {raw.decode(errors='replace')!r} is not YYYYMMDDHHMMSSZ",
                    node_path=path,
                )
            if when.year < 2050:
                yield Violation(
                    f"{when.isoformat()} is before 2050 but encoded as GeneralizedTime",
                    node_path=path,
                )
    if doc.not_before > doc.not_after:
        yield Violation(
            "notBefore is after notAfter", node_path="certificate.tbsCertificate.validity"
        )


# Extensions a relying party processes in path validation (RFC 5280 §4.2, §6.1) or that the
# S/MIME BR allow to be critical: critical is fine for these; any other critical one is unknown.
KNOWN_CRITICAL = {
    ExtensionOID.BASIC_CONSTRAINTS.dotted_string,
    ExtensionOID.KEY_USAGE.dotted_string,
    ExtensionOID.EXTENDED_KEY_USAGE.dotted_string,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string,
    ExtensionOID.NAME_CONSTRAINTS.dotted_string,
    ExtensionOID.POLICY_CONSTRAINTS.dotted_string,
    ExtensionOID.INHIBIT_ANY_POLICY.dotted_string,
    ExtensionOID.CERTIFICATE_POLICIES.dotted_string,
    ExtensionOID.POLICY_MAPPINGS.dotted_string,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME.dotted_string,
    "1.3.6.1.4.1.11129.2.4.3",  # CT precertificate poison (RFC 6962 §3.1)
}


@rule(
    "X-06",
    "Extensions: no duplicates, no unknown critical",
    """No extension appears more than once, and no extension a relying party cannot process is
    marked critical.""",
    citation="RFC 5280 §4.2",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x06(doc: CertificateDoc) -> Found:
    seen: set[str] = set()
    extensions = doc.asn1["tbs_certificate"]["extensions"]
    for i, extension in enumerate(extensions):
        oid = extension["extn_id"].dotted
        path = f"certificate.tbsCertificate.extensions.{i}"
        if oid in seen:
            yield Violation(f"extension {oid} appears more than once", node_path=path)
        seen.add(oid)
        if extension["critical"].native and oid not in KNOWN_CRITICAL:
            yield Violation(
                f"extension {oid} is critical but not one a relying party is required to process",
                node_path=path,
            )


@rule(
    "X-07",
    "Authority key identifier",
    """A certificate that is not self-signed has an authorityKeyIdentifier with keyIdentifier,
    equal to the issuer's subjectKeyIdentifier, and without authorityCertIssuer or
    authorityCertSerialNumber.""",
    citation="RFC 5280 §4.2.1.1; SBR 7.1.2.2h, 7.1.2.3g",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: not doc.self_signed,
)
def x07(doc: CertificateDoc) -> Found:
    aki = doc.ext(x509.AuthorityKeyIdentifier)
    if aki is None:
        yield Violation("authorityKeyIdentifier is missing")
        return
    if aki.key_identifier is None:
        yield Violation("authorityKeyIdentifier has no keyIdentifier")
    if aki.authority_cert_issuer is not None or aki.authority_cert_serial_number is not None:
        yield Violation("authorityKeyIdentifier carries authorityCertIssuer/SerialNumber")
    if doc.critical(x509.AuthorityKeyIdentifier):
        yield Violation("authorityKeyIdentifier is critical")
    issuer = doc.issuer
    if issuer is None:
        yield Note("the issuer certificate is not among the files: key identifier not compared")
    elif (
        aki.key_identifier is not None
        and issuer.ski is not None
        and aki.key_identifier != issuer.ski
    ):
        yield Violation(
            f"keyIdentifier {aki.key_identifier.hex()} is not the issuer's SKI {issuer.ski.hex()}"
        )


@rule(
    "X-08",
    "Subject key identifier",
    """subjectKeyIdentifier is present and not critical: a CA certificate SHALL carry it (an
    error), an end-entity certificate SHOULD (a warning).""",
    citation="RFC 5280 §4.2.1.2",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x08(doc: CertificateDoc) -> Found:
    critical = doc.critical(x509.SubjectKeyIdentifier)
    if critical is None:
        yield Violation("subjectKeyIdentifier is missing", E if doc.is_ca else W)
    elif critical:
        yield Violation("subjectKeyIdentifier is critical")


@rule(
    "X-09",
    "Basic constraints",
    """A CA certificate has basicConstraints, critical, with cA TRUE; an end-entity certificate
    has cA FALSE or no basicConstraints, and no pathLenConstraint.""",
    citation="RFC 5280 §4.2.1.9",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x09(doc: CertificateDoc) -> Found:
    # Read with asn1crypto: cryptography refuses a pathLenConstraint with cA FALSE outright.
    value = doc.asn1.basic_constraints_value
    if value is None:
        ku = doc.asn1.key_usage_value
        if ku is not None and "key_cert_sign" in ku.native:
            yield Violation("keyCertSign is set but basicConstraints is missing")
        return
    ca = bool(value["ca"].native)
    if ca and "basic_constraints" not in doc.asn1.critical_extensions:
        yield Violation("a CA certificate's basicConstraints is not critical")
    if not ca and value["path_len_constraint"].native is not None:
        yield Violation("pathLenConstraint is set while cA is FALSE")


@rule(
    "X-10",
    "Key usage",
    """keyUsage is critical when present and present in every CA certificate; keyCertSign is set
    if and only if cA is TRUE.""",
    citation="RFC 5280 §4.2.1.3, §4.2.1.9",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x10(doc: CertificateDoc) -> Found:
    ku = doc.ext(x509.KeyUsage)
    if ku is None:
        if doc.is_ca:
            yield Violation("a CA certificate without keyUsage")
        return
    if not doc.critical(x509.KeyUsage):
        yield Violation("keyUsage is not critical")
    if ku.key_cert_sign and not doc.is_ca:
        yield Violation("keyCertSign is set but cA is not TRUE")
    if doc.is_ca and not ku.key_cert_sign:
        yield Violation("cA is TRUE but keyCertSign is not set")


# X.520 / RFC 5280 Appendix A: attributes with a fixed string type, and upper bounds.
_FIXED_TYPE = {
    scope.COUNTRY: (scope.PRINTABLE_STRING,),
    scope.SERIAL_NUMBER: (scope.PRINTABLE_STRING,),
    scope.DN_QUALIFIER: (scope.PRINTABLE_STRING,),
    scope.EMAIL_ADDRESS: (scope.IA5_STRING,),
    scope.DOMAIN_COMPONENT: (scope.IA5_STRING,),
}
_UPPER_BOUND = {
    scope.CN: 64,
    scope.TITLE: 64,
    scope.SERIAL_NUMBER: 64,
    scope.ORGANIZATION: 64,
    scope.ORGANIZATIONAL_UNIT: 64,
    scope.LOCALITY: 128,
    scope.STATE: 128,
    scope.STREET: 128,
    scope.POSTAL_CODE: 40,
    scope.PSEUDONYM: 128,
    scope.GIVEN_NAME: 32768,
    scope.SURNAME: 32768,
    scope.EMAIL_ADDRESS: 255,
}
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")


@rule(
    "X-11",
    "Name string types and lengths",
    """Subject and issuer attributes use PrintableString or UTF8String (countryName,
    serialNumber and dnQualifier PrintableString; emailAddress and domainComponent IA5String),
    PrintableString holds only its character set, and values respect the upper bounds (CN,
    title, serialNumber, O, OU 64; emailAddress 255; countryName 2).""",
    citation="RFC 5280 §4.1.2.4, §4.1.2.6, Appendix A; SBR 7.1.4.2",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
)
def x11(doc: CertificateDoc) -> Found:
    tbs = doc.asn1["tbs_certificate"]
    for which in ("issuer", "subject"):
        for a in scope.name_attributes(tbs[which]):
            name = scope.attribute_name(a.oid)
            path = f"certificate.tbsCertificate.{which}.rdnSequence.{a.rdn}.{a.index}"
            allowed = _FIXED_TYPE.get(a.oid, (scope.PRINTABLE_STRING, scope.UTF8_STRING))
            if a.tag not in allowed:
                want = " or ".join(scope.TAG_NAMES[t] for t in allowed)
                got = scope.TAG_NAMES.get(a.tag, f"tag 0x{a.tag:02x}")
                yield Violation(f"{which} {name} is a {got}, not {want}", node_path=path)
            if a.value is None:
                continue
            if a.tag == scope.PRINTABLE_STRING and not _PRINTABLE.fullmatch(a.value):
                yield Violation(
                    f"{which} {name} holds characters outside PrintableString", node_path=path
                )
            bound = _UPPER_BOUND.get(a.oid)
            if bound is not None and len(a.value) > bound:
                yield Violation(
                    f"{which} {name} has {len(a.value)} characters; at most {bound}", node_path=path
                )
            if a.oid == scope.COUNTRY and len(a.value) != 2:
                yield Violation(
                    f"{which} countryName {a.value!r} is not two letters", node_path=path
                )


@rule(
    "X-12",
    "No unique identifiers",
    """issuerUniqueID and subjectUniqueID are absent (conforming CAs MUST NOT generate them).""",
    citation="RFC 5280 §4.1.2.8",
    source=Source.RFC5280,
    severity=W,
    kinds=scope.CERTIFICATES,
)
def x12(doc: CertificateDoc) -> Found:
    tbs = doc.asn1["tbs_certificate"]
    for field_name, label in (
        ("issuer_unique_id", "issuerUniqueID"),
        ("subject_unique_id", "subjectUniqueID"),
    ):
        if tbs[field_name].contents is not None and type(tbs[field_name]).__name__ != "Void":
            yield Violation(f"{label} is present", node_path=f"certificate.tbsCertificate.{label}")


@rule(
    "X-13",
    "pkilint RFC 5280 linter",
    """pkilint's lint_pkix_cert reports no finding at WARNING or above. An S/MIME subscriber
    certificate is left to S-18: pkilint's S/MIME linter runs every validator of lint_pkix_cert
    as well (its subject, SPKI, issuer, validity and extension containers extend the RFC 5280
    ones), so running both would lint it twice and report each RFC 5280 finding twice.""",
    citation="RFC 5280 (delegated to pkilint lint_pkix_cert)",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: scope.uses_pkilint(doc) and not scope.is_smime(doc),
    delegate="pkilint",
)
def x13(doc: CertificateDoc) -> Found:
    yield from scope.delegated(
        pkilint_delegate.lint_pkix_certificate(doc.der, doc.decoded, doc.ctx.shapes),
        "pkilint lint_pkix_cert",
    )


@rule(
    "X-14",
    "Valid at the given time",
    """With a time given (--at), the certificate is valid then: notBefore <= time <= notAfter.
    Without one the rule does not apply: conformance is about the object, not today's date.""",
    citation="RFC 5280 §4.1.2.5, §6.1.3 (a)(2)",
    source=Source.RFC5280,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: doc.ctx.at is not None,
)
def x14(doc: CertificateDoc) -> Found:
    at = doc.ctx.at
    assert at is not None
    if at < doc.not_before:
        yield Violation(f"not valid before {doc.not_before.isoformat()} (asked: {at.isoformat()})")
    if at > doc.not_after:
        yield Violation(f"expired at {doc.not_after.isoformat()} (asked: {at.isoformat()})")

"""docs/conformance.md B: the subscriber profile (S/MIME BR Individual-validated multipurpose,
narrowed by the seed's rules), S-01..S-20, and J-01.

Rules marked config-dependent check the exact values of a jitsuin configuration when one is given
(CP OID, qualification groups and number syntax, name order, CRL/OCSP URLs, cut-off margin) and
the shape only otherwise, so that they are useful on other CAs' certificates.

Longer than 600 lines because part B is one table of 21 rules in docs/conformance.md, and each
rule is one function here, next to the others of its part, as in the other rule modules.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID

from jitsuin.ca.profiles import SUBSCRIBER_VALIDITY, NameOrder
from jitsuin.conformance import pkilint_delegate
from jitsuin.conformance.documents import CertificateDoc
from jitsuin.conformance.findings import Note, Severity, Violation
from jitsuin.conformance.lineage import lineage_of
from jitsuin.conformance.profile import SAN_KINDS
from jitsuin.conformance.registry import Source, rule
from jitsuin.conformance.rules import scope
from jitsuin.conformance.signature import (
    ECDSA_WITH_SHA256,
    ECDSA_WITH_SHA384,
    SHA256_WITH_RSA,
    describe,
    expected_for_issuer,
)

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
Found = Iterator[Violation | Note]
SMIME = scope.is_smime

SBR_MAX_VALIDITY = dt.timedelta(days=825)  # SBR 6.3.2 (strict and multipurpose)
IV_MULTIPURPOSE = "2.23.140.1.5.4.2"  # SBR 7.1.6.1
ANY_POLICY = "2.5.29.32.0"
DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"  # RFC 9336


def _margin(doc: CertificateDoc) -> dt.timedelta:
    e = doc.ctx.expectations
    return e.ca.cutoff_margin if e is not None else dt.timedelta(0)


@rule(
    "S-01",
    "Subscriber validity: 396 days",
    """notAfter - notBefore + 1 s is at most 396 days (SEED-R1: both certificate types are valid
    exactly 396 days; with a configuration, exactly that) and never more than the 825 days of
    SBR 6.3.2. A profile file states the profile's maximum, and whether it is also the exact
    validity.""",
    citation="SEED-R1; SBR 6.3.2; RFC 5280 §4.1.2.5",
    source=Source.SEED,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s01(doc: CertificateDoc) -> Found:
    period = scope.validity(doc)
    path = "certificate.tbsCertificate.validity"
    e = doc.ctx.expectations
    profile = doc.profile
    # With a configuration but no profile known from the CP OID (S-04 says so): the bounds its
    # personal profiles share.
    if profile is not None:
        candidates = [profile]
    elif e is not None:
        candidates = [p for p in e.profiles.values() if p.personal]
    else:
        candidates = []
    limit = max((p.max_validity for p in candidates), default=SUBSCRIBER_VALIDITY)
    exact = (
        e is not None
        and bool(candidates)
        and all(p.exact_validity and p.max_validity == limit for p in candidates)
    )
    source = f"profile {profile.name}" if profile is not None and e is not None else "SEED-R1"
    if period > SBR_MAX_VALIDITY:
        yield Violation(
            f"valid {scope.days(period)}: more than the 825 days of SBR 6.3.2", node_path=path
        )
    elif period > limit:
        yield Violation(
            f"valid {scope.days(period)}: more than {scope.days(limit)} ({source})", node_path=path
        )
    elif exact and period != limit:
        yield Violation(
            f"valid {scope.days(period)}, not exactly {scope.days(limit)} ({source})",
            node_path=path,
        )


@rule(
    "S-02",
    "Signature algorithm by issuer key",
    """The signature AlgorithmIdentifier is, byte for byte, sha256WithRSAEncryption with NULL
    parameters for an RSA issuer, ecdsa-with-SHA256 for a P-256 issuer, ecdsa-with-SHA384 for a
    P-384 issuer; nothing else (no PSS, no SHA-1, no sha384WithRSAEncryption).""",
    citation="SEED-R3; SBR 7.1.3.2",
    source=Source.SEED,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
)
def s02(doc: CertificateDoc) -> Found:
    actual = doc.asn1["signature_algorithm"].dump()
    issuer = doc.issuer
    if issuer is None:
        allowed = {SHA256_WITH_RSA, ECDSA_WITH_SHA256, ECDSA_WITH_SHA384}
        if actual not in allowed:
            yield Violation(f"signed with {describe(actual)}, which the profile never uses")
        else:
            yield Note("the issuer certificate is not among the files: issuer key type unknown")
        return
    expected = expected_for_issuer(issuer.cert.public_key())
    if expected is None:
        yield Violation("the issuer key is neither RSA nor ECDSA P-256/P-384")
    elif actual != expected:
        yield Violation(
            f"signed with {describe(actual)}; an issuer with this key signs with "
            f"{describe(expected)}",
            node_path="certificate.signatureAlgorithm",
        )


@rule(
    "S-03",
    "Subscriber key type",
    """The subscriber key is RSA of exactly 2048, 3072 or 4096 bits with e = 65537, or ECDSA on
    P-256 or P-384 (narrower than SBR 6.1.5, which allows any RSA size >= 2048 divisible by 8);
    with a configuration, one of the profile's key types.""",
    citation="SEED-R2 (key update); SBR 6.1.5, 6.1.6; docs/conformance.md S-03",
    source=Source.PROJECT,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s03(doc: CertificateDoc) -> Found:
    key = doc.cert.public_key()
    path = "certificate.tbsCertificate.subjectPublicKeyInfo"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size not in (2048, 3072, 4096):
            yield Violation(
                f"an RSA key of {key.key_size} bits; use 2048, 3072 or 4096", node_path=path
            )
        if key.public_numbers().e != 65537:
            yield Violation(
                f"RSA public exponent {key.public_numbers().e}, not 65537", node_path=path
            )
        name = f"rsa-{key.key_size}"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            yield Violation(f"an EC key on {key.curve.name}; use P-256 or P-384", node_path=path)
        name = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name, "")
    else:
        yield Violation(f"a {type(key).__name__.lstrip('_')} key; use RSA or ECDSA", node_path=path)
        return
    profile = doc.profile
    if profile is not None and name and name not in profile.key_types:
        yield Violation(f"profile {profile.name} does not accept {name} keys", node_path=path)


@rule(
    "S-04",
    "Certificate policies",
    """certificatePolicies is not critical and holds exactly one reserved S/MIME BR OID,
    2.23.140.1.5.4.2 (Individual-validated multipurpose), plus the CA's own CP OID; no
    anyPolicy. With a configuration the CP OID is the profile's (policy_arc + suffix).""",
    citation="SBR 7.1.2.3a, 7.1.6.1",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    effective=scope.SBR_EFFECTIVE,
    config_dependent=True,
)
def s04(doc: CertificateDoc) -> Found:
    if doc.critical(x509.CertificatePolicies) is None:
        yield Violation("certificatePolicies is missing")
        return
    if doc.critical(x509.CertificatePolicies):
        yield Violation("certificatePolicies is critical")
    oids = [o.dotted_string for o in doc.policy_oids]
    reserved = [o for o in oids if o.startswith("2.23.140.1.5.")]
    if len(reserved) != 1:
        yield Violation(f"{len(reserved)} reserved S/MIME policy OIDs; exactly one is required")
    elif reserved[0] != IV_MULTIPURPOSE:
        yield Violation(f"policy {reserved[0]} is not {IV_MULTIPURPOSE} (IV multipurpose)")
    if ANY_POLICY in oids:
        yield Violation("anyPolicy is present")
    own = [o for o in oids if not o.startswith("2.23.140.1.") and o != ANY_POLICY]
    expectations = doc.ctx.expectations
    if expectations is None:
        if len(own) != 1:
            yield Violation(
                f"{len(own)} CA policy OIDs beside the S/MIME one; exactly one (the CP OID)"
            )
        return
    profile = doc.profile
    if profile is None:
        known = sorted(o for p in expectations.profiles.values() for o in p.policy_oids)
        yield Violation(
            f"no CP OID of this CA's profiles ({', '.join(known)}) among {', '.join(own) or 'none'}"
        )
        return
    if len(own) != 1 or own[0] not in profile.policy_oids:
        wanted = " or ".join(profile.policy_oids)
        yield Violation(
            f"the CA policy OIDs are {own}; profile {profile.name} has exactly {wanted}"
        )


_FORBIDDEN_EKU = {
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "serverAuth",
    ExtendedKeyUsageOID.CODE_SIGNING.dotted_string: "codeSigning",
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string: "anyExtendedKeyUsage",
}
_ALLOWED_EKU = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,  # docs/divergences.md: EST re-enrollment
    DOCUMENT_SIGNING,
    "1.3.6.1.4.1.311.10.3.12",  # Microsoft Document Signing
    "1.2.840.113583.1.1.5",  # Adobe Authentic Documents Trust
}


@rule(
    "S-05",
    "Extended key usage",
    """extKeyUsage contains emailProtection; never serverAuth, codeSigning, timeStamping,
    OCSPSigning or anyExtendedKeyUsage; every other purpose is on the allowlist (clientAuth,
    documentSigning, Microsoft and Adobe document signing). With a configuration, exactly the
    profile's purposes, or a subset of them when its profile file says eku_match = "subset".""",
    citation="SEED-R5; SBR 7.1.2.3f; RFC 9336",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s05(doc: CertificateDoc) -> Found:
    eku = doc.ext(x509.ExtendedKeyUsage)
    if eku is None:
        yield Violation("extKeyUsage is missing")
        return
    oids = [o.dotted_string for o in eku]
    if ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string not in oids:
        yield Violation("emailProtection is missing")
    for oid in oids:
        if oid in _FORBIDDEN_EKU:
            yield Violation(f"{_FORBIDDEN_EKU[oid]} is not allowed")
        elif oid not in _ALLOWED_EKU:
            yield Violation(f"purpose {oid} is not on the allowlist")
    profile = doc.profile
    if profile is None:
        return
    want = sorted(profile.eku)
    if profile.eku_exact and set(oids) != profile.eku:
        yield Violation(f"purposes {sorted(oids)}; profile {profile.name} has {want}")
    elif not profile.eku_exact and not set(oids) <= profile.eku:
        extra = sorted(set(oids) - profile.eku)
        yield Violation(f"purposes {extra} are not among profile {profile.name}'s {want}")


_KU_NAMES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def _key_usage_set(ku: x509.KeyUsage) -> frozenset[str]:
    out = {n for n in _KU_NAMES if getattr(ku, n)}
    if ku.key_agreement:
        out |= {n for n in ("encipher_only", "decipher_only") if getattr(ku, n)}
    return frozenset(out)


_DS, _NR, _KE, _KA = "digital_signature", "content_commitment", "key_encipherment", "key_agreement"
# SBR 7.1.2.3e (strict/multipurpose): signing, key management or dual use.
_SBR_RSA = {frozenset(s) for s in ({_DS}, {_DS, _NR}, {_KE}, {_DS, _KE}, {_DS, _NR, _KE})}
_SBR_EC = {
    frozenset(base | extra)
    for base in ({_DS}, {_DS, _NR}, {_KA}, {_DS, _KA}, {_DS, _NR, _KA})
    for extra in (set(), {"encipher_only"}, {"decipher_only"})
    if _KA in base or not extra
}
# SEED-R5: dual use, signing documents (with nonRepudiation) and encrypting e-mail.
_SEED_RSA = frozenset({_DS, _NR, _KE})
_SEED_EC = frozenset({_DS, _NR, _KA})


def _pretty(usages: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(usages)) + "}"


@rule(
    "S-06",
    "Key usage",
    """keyUsage is, for an RSA key, exactly {digitalSignature, nonRepudiation, keyEncipherment}
    and for an EC key {digitalSignature, nonRepudiation, keyAgreement} (SEED-R5 dual use; with a
    configuration); without one, any signing, key-management or dual-use set of SBR 7.1.2.3e.
    It SHOULD be critical (a warning).""",
    citation="SEED-R5; SBR 7.1.2.3e",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s06(doc: CertificateDoc) -> Found:
    ku = doc.ext(x509.KeyUsage)
    if ku is None:
        yield Violation("keyUsage is missing")
        return
    if not doc.critical(x509.KeyUsage):
        yield Violation("keyUsage is not critical", W)
    usages = _key_usage_set(ku)
    is_rsa = isinstance(doc.cert.public_key(), rsa.RSAPublicKey)
    if doc.ctx.expectations is not None or doc.ctx.profile is not None:
        want = _SEED_RSA if is_rsa else _SEED_EC
        if usages != want:
            yield Violation(
                f"keyUsage {_pretty(usages)}; the profile has {_pretty(want)} (SEED-R5)"
            )
    elif usages not in (_SBR_RSA if is_rsa else _SBR_EC):
        yield Violation(f"keyUsage {_pretty(usages)} is none of the SBR 7.1.2.3e sets for this key")


SMTP_UTF8_MAILBOX = "1.3.6.1.5.5.7.8.9"  # RFC 8398


@rule(
    "S-07",
    "Subject alternative name",
    """subjectAltName is present, not critical, holds at least one rfc822Name, and only
    rfc822Name, SmtpUTF8Mailbox otherName or directoryName entries; a profile file may narrow
    the kinds and waive the rfc822Name.""",
    config_dependent=True,
    citation="SEED-R4; SBR 7.1.2.3h, 7.1.4.2.1",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
)
def s07(doc: CertificateDoc) -> Found:
    critical = doc.critical(x509.SubjectAlternativeName)
    if critical is None:
        yield Violation("subjectAltName is missing")
        return
    if critical:
        yield Violation("subjectAltName is critical")
    san = doc.ext(x509.SubjectAlternativeName)
    assert san is not None
    profile = doc.profile
    allowed = profile.san_allowed if profile is not None else frozenset(SAN_KINDS)
    rfc822_required = profile.san_rfc822_required if profile is not None else True
    if rfc822_required and not san.get_values_for_type(x509.RFC822Name):
        yield Violation("subjectAltName has no rfc822Name")
    for name in san:
        if isinstance(name, x509.RFC822Name):
            kind = "rfc822Name"
        elif isinstance(name, x509.DirectoryName):
            kind = "directoryName"
        elif isinstance(name, x509.OtherName) and name.type_id.dotted_string == SMTP_UTF8_MAILBOX:
            kind = "smtpUTF8Mailbox"
        else:
            yield Violation(f"subjectAltName carries a {type(name).__name__}")
            continue
        if kind not in allowed:
            yield Violation(f"subjectAltName carries a {kind}, which the profile does not allow")


def _sans(doc: CertificateDoc) -> list[str]:
    san = doc.ext(x509.SubjectAlternativeName)
    return list(san.get_values_for_type(x509.RFC822Name)) if san else []


@rule(
    "S-08",
    "Subject emailAddress",
    """If the subject has emailAddress, it appears once and equals one of the subjectAltName
    rfc822Names.""",
    citation="SBR 7.1.4.2.2h",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
)
def s08(doc: CertificateDoc) -> Found:
    emails = scope.values(doc, scope.EMAIL_ADDRESS)
    if len(emails) > 1:
        yield Violation(f"emailAddress appears {len(emails)} times")
    sans = {s.lower() for s in _sans(doc)}
    for value in emails:
        if value.lower() not in sans:
            yield Violation(f"emailAddress {value!r} is not among the subjectAltName rfc822Names")


_IV_ALLOWED = {
    scope.CN,
    scope.GIVEN_NAME,
    scope.SURNAME,
    scope.PSEUDONYM,
    scope.SERIAL_NUMBER,
    scope.EMAIL_ADDRESS,
    scope.TITLE,
    scope.STREET,
    scope.LOCALITY,
    scope.STATE,
    scope.POSTAL_CODE,
    scope.COUNTRY,
}


@rule(
    "S-09",
    "Subject attribute types",
    """Every subject attribute is one the Individual-validated profile allows (no
    organizationName, organizationalUnitName or organizationIdentifier) and appears at most once;
    with a configuration, only the profile's attributes (for jitsuin CN, givenName, surname,
    title, serialNumber and C, SEED-R4), each value matching the profile's pattern, and every
    attribute the profile requires is present.""",
    citation="SEED-R4; SBR 7.1.4.2.6",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s09(doc: CertificateDoc) -> Found:
    profile = doc.profile if doc.ctx.expectations is not None else None
    patterns: Mapping[str, str | None] = {}
    if profile is not None:
        patterns = profile.subject_allowed
    elif doc.ctx.expectations is not None:  # no profile known (S-04 says so): any personal one's
        for p in doc.ctx.expectations.profiles.values():
            if p.personal:
                patterns = {**p.subject_allowed, **patterns}
    allowed = set(patterns) if doc.ctx.expectations is not None else _IV_ALLOWED
    seen: set[str] = set()
    attributes = scope.subject_attributes(doc)
    for a in attributes:
        name = scope.attribute_name(a.oid)
        pattern = patterns.get(a.oid)
        if a.oid not in allowed:
            yield Violation(
                f"subject {name} is not allowed in this profile", node_path=scope.subject_path(a)
            )
        elif pattern is not None and not re.fullmatch(pattern, a.value or ""):
            yield Violation(
                f"subject {name} {a.value!r} does not match the profile's pattern {pattern!r}",
                node_path=scope.subject_path(a),
            )
        if a.oid in seen:
            yield Violation(
                f"subject {name} appears more than once", node_path=scope.subject_path(a)
            )
        seen.add(a.oid)
    if profile is not None:
        for oid in sorted(profile.subject_required - seen):
            name = scope.attribute_name(oid)
            yield Violation(f"subject {name} is missing (profile {profile.name})")


_ROMANIZED = re.compile(r"[A-Za-z][A-Za-z .'-]*")
_HAS_LETTER = re.compile(r"\w", re.UNICODE)


@rule(
    "S-10",
    "Personal name",
    """givenName and/or surname is present and no pseudonym. Values are not metadata only
    ('.', '-', ' '); with a configuration they are romanized (letters, space, . ' -), unless its
    profile file says romanized_names = false.""",
    citation="SEED-R4; SBR 7.1.4.2.2e,f; docs/conformance.md S-10",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s10(doc: CertificateDoc) -> Found:
    attributes = scope.subject_attributes(doc)
    names = [a for a in attributes if a.oid in (scope.GIVEN_NAME, scope.SURNAME)]
    if not names:
        yield Violation("neither givenName nor surname is present")
    for a in attributes:
        if a.oid == scope.PSEUDONYM:
            yield Violation("pseudonym is present", node_path=scope.subject_path(a))
    profile = doc.profile if doc.ctx.expectations is not None else None
    strict = profile.romanized_names if profile is not None else doc.ctx.expectations is not None
    for a in names:
        value = a.value or ""
        label = scope.attribute_name(a.oid)
        if not _HAS_LETTER.search(value):
            yield Violation(f"{label} {value!r} holds no name", node_path=scope.subject_path(a))
        elif strict and not _ROMANIZED.fullmatch(value):
            yield Violation(f"{label} {value!r} is not romanized", node_path=scope.subject_path(a))


@rule(
    "S-11",
    "Common name is the personal name",
    """commonName is the personal name built from givenName and surname in the configured order
    (with a configuration; either order without one), or a mailbox address of the
    subjectAltName.""",
    citation="SEED-R4; SBR 7.1.4.2.2a",
    source=Source.PROJECT,
    severity=W,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s11(doc: CertificateDoc) -> Found:
    cns = scope.values(doc, scope.CN)
    given = scope.values(doc, scope.GIVEN_NAME)
    family = scope.values(doc, scope.SURNAME)
    if not cns:
        yield Violation("commonName is missing")
        return
    e = doc.ctx.expectations
    order = e.ca.name_order if e is not None else None
    orders = [order] if order is not None else list(NameOrder)
    wanted = {o.common_name(g, f) for o in orders for g in given for f in family}
    wanted |= set(given if not family else []) | set(family if not given else [])
    sans = {s.lower() for s in _sans(doc)}
    for cn in cns:
        if cn not in wanted and cn.lower() not in sans:
            shown = " or ".join(repr(w) for w in sorted(wanted)) or "a name"
            yield Violation(f"commonName {cn!r} is not {shown}")


def _groups(doc: CertificateDoc) -> list:  # type: ignore[type-arg]
    e = doc.ctx.expectations
    assert e is not None
    profile = doc.profile
    return [g for g in e.ca.groups.values() if profile is None or profile.accepts_group(g.id)]


@rule(
    "S-12",
    "Qualification information 1 in title",
    """title is present once and non-empty; with a configuration it is the title of a
    qualification group the profile accepts.""",
    citation="SEED-R4; SBR 7.1.4.2.2i",
    source=Source.SEED,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s12(doc: CertificateDoc) -> Found:
    titles = scope.values(doc, scope.TITLE)
    if len(titles) != 1 or not titles[0].strip():
        yield Violation(f"{len(titles)} title attributes; exactly one with the qualification group")
        return
    if doc.ctx.expectations is None or not doc.ctx.expectations.ca.groups:
        return  # a profile file without qualification groups: presence only
    accepted = {g.title for g in _groups(doc)}
    if titles[0] not in accepted:
        yield Violation(
            f"title {titles[0]!r} is not a qualification group of this profile ({sorted(accepted)})"
        )


@rule(
    "S-13",
    "Qualification information 2 in serialNumber",
    """subject serialNumber is present once and non-empty; with a configuration it matches the
    number syntax of the group named in title.""",
    citation="SEED-R4; SBR 7.1.4.2.2g",
    source=Source.SEED,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s13(doc: CertificateDoc) -> Found:
    numbers = scope.values(doc, scope.SERIAL_NUMBER)
    if len(numbers) != 1 or not numbers[0].strip():
        yield Violation(
            f"{len(numbers)} serialNumber attributes; exactly one with the qualification number"
        )
        return
    if doc.ctx.expectations is None or not doc.ctx.expectations.ca.groups:
        return  # a profile file without qualification groups: presence only
    titles = scope.values(doc, scope.TITLE)
    groups = [g for g in _groups(doc) if titles and g.title == titles[0]]
    if not groups:
        yield Note("title names no known group: the number syntax is not checked (see S-12)")
        return
    if not any(g.number_matches(numbers[0]) for g in groups):
        yield Violation(
            f"serialNumber {numbers[0]!r} does not match the syntax {groups[0].number_pattern!r} "
            f"of group {groups[0].id}"
        )


_STANDARD_EXTENSIONS = {
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string,
    ExtensionOID.KEY_USAGE.dotted_string,
    ExtensionOID.EXTENDED_KEY_USAGE.dotted_string,
    ExtensionOID.CERTIFICATE_POLICIES.dotted_string,
    ExtensionOID.BASIC_CONSTRAINTS.dotted_string,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string,
    ExtensionOID.CRL_DISTRIBUTION_POINTS.dotted_string,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string,
    "1.3.6.1.5.5.7.1.3",  # qcStatements (SBR 7.1.2.3l)
    "1.3.6.1.4.1.11129.2.4.2",  # signed certificate timestamps
    "1.3.6.1.4.1.52266.1",  # legal entity identifier (SBR 7.1.2.3k)
    "1.2.840.113583.1.1.9.1",  # Adobe time-stamp
    "1.2.840.113583.1.1.9.2",  # Adobe archiveRevInfo
    "1.2.840.113549.1.9.15",  # smimeCapabilities
}
SUBJECT_DIRECTORY_ATTRIBUTES = "2.5.29.9"


@rule(
    "S-14",
    "No subjectDirectoryAttributes; private extensions",
    """subjectDirectoryAttributes is absent; any extension beyond the S/MIME BR profile's is not
    critical and, with a configuration, sits under the CA's own OID arc.""",
    citation="SBR 7.1.2.3j, 7.1.2.4; docs/conformance.md S-14",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s14(doc: CertificateDoc) -> Found:
    e = doc.ctx.expectations
    for i, extension in enumerate(doc.asn1["tbs_certificate"]["extensions"]):
        oid = extension["extn_id"].dotted
        path = f"certificate.tbsCertificate.extensions.{i}"
        if oid == SUBJECT_DIRECTORY_ATTRIBUTES:
            yield Violation("subjectDirectoryAttributes is present", node_path=path)
        elif oid not in _STANDARD_EXTENSIONS:
            if extension["critical"].native:
                yield Violation(f"private extension {oid} is critical", node_path=path)
            arc = e.ca.policy_arc if e is not None else None
            if arc is not None and not oid.startswith(arc + "."):
                yield Violation(f"extension {oid} is not under the CA's arc {arc}", node_path=path)


@rule(
    "S-15",
    "CRL distribution point and authority information access",
    """cRLDistributionPoints is present, not critical, with http:// URLs only; authorityInfoAccess
    is not critical and holds an http:// OCSP URL and an http:// caIssuers URL. With a
    configuration the URLs follow the profile's templates (for jitsuin BASE/crl/N.crl,
    BASE/ca/N.crt and BASE/ocsp under pki_base_url), and the CRL and caIssuers URLs name one
    generation.""",
    citation="SBR 7.1.2.3b, 7.1.2.3c",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s15(doc: CertificateDoc) -> Found:
    crl_urls: list[str] = []
    dps = doc.ext(x509.CRLDistributionPoints)
    if dps is None:
        yield Violation("cRLDistributionPoints is missing")
    else:
        if doc.critical(x509.CRLDistributionPoints):
            yield Violation("cRLDistributionPoints is critical")
        for dp in dps:
            for name in dp.full_name or []:
                if not isinstance(
                    name, x509.UniformResourceIdentifier
                ) or not name.value.startswith("http://"):
                    yield Violation(
                        f"a CRL distribution point {getattr(name, 'value', name)!r} is not "
                        "an http:// URL"
                    )
                else:
                    crl_urls.append(name.value)
        if not crl_urls:
            yield Violation("cRLDistributionPoints holds no http:// URL")
    aia = doc.ext(x509.AuthorityInformationAccess)
    ocsp_urls: list[str] = []
    issuer_urls: list[str] = []
    if aia is None:
        yield Violation("authorityInfoAccess is missing")
    else:
        if doc.critical(x509.AuthorityInformationAccess):
            yield Violation("authorityInfoAccess is critical")
        for d in aia:
            value = getattr(d.access_location, "value", "")
            if not isinstance(
                d.access_location, x509.UniformResourceIdentifier
            ) or not value.startswith("http://"):
                yield Violation(f"access location {value!r} is not an http:// URL")
                continue
            if d.access_method == AuthorityInformationAccessOID.OCSP:
                ocsp_urls.append(value)
            elif d.access_method == AuthorityInformationAccessOID.CA_ISSUERS:
                issuer_urls.append(value)
        if not ocsp_urls:
            yield Violation("authorityInfoAccess has no OCSP URL")
        if not issuer_urls:
            yield Violation("authorityInfoAccess has no caIssuers URL")
    e = doc.ctx.expectations
    if e is None:
        return
    generations = set()
    for urls, kind, template in (
        (crl_urls, "CRL", e.ca.crl),
        (ocsp_urls, "OCSP", e.ca.ocsp),
        (issuer_urls, "caIssuers", e.ca.ca_issuers),
    ):
        for url in urls:
            generation = template.match(url)
            if generation is None:
                yield Violation(f"{kind} URL {url!r} does not follow this CA's {template.template}")
            elif generation:
                generations.add(generation)
    if len(generations) > 1:
        yield Violation(
            f"the CRL and caIssuers URLs name different generations {sorted(generations)}"
        )


@rule(
    "S-16",
    "Inside the issuer's validity",
    """notBefore >= the issuer's notBefore and notAfter <= the issuer's notAfter: no certificate
    outlives its issuing CA certificate.""",
    citation="SEED-R15; RFC 9810 §4.4; docs/conformance.md S-16",
    source=Source.SEED,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
)
def s16(doc: CertificateDoc) -> Found:
    issuer = doc.issuer
    if issuer is None:
        yield Note("the issuer certificate is not among the files: not compared")
        return
    if doc.not_before < issuer.not_before:
        yield Violation(
            f"notBefore {doc.not_before.isoformat()} is before the issuer's "
            f"{issuer.not_before.isoformat()}"
        )
    if doc.not_after > issuer.not_after:
        yield Violation(
            f"notAfter {doc.not_after.isoformat()} is after the issuer's "
            f"{issuer.not_after.isoformat()}"
        )


@rule(
    "S-17",
    "Issued by the current key before its cut-off",
    """The certificate was issued (notBefore) no later than its issuing key's cut-off (the
    issuer's notAfter - 396 days + 1 s - the configured margin; with a profile file, its
    profile's maximum validity), and not after a newer generation of the same CA took over.""",
    citation="SEED-R15; docs/conformance.md S-17, C-07",
    source=Source.PROJECT,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
    config_dependent=True,
)
def s17(doc: CertificateDoc) -> Found:
    issuer = doc.issuer
    if issuer is None:
        yield Note("the issuer certificate is not among the files: cut-off not checked")
        return
    e = doc.ctx.expectations
    profile = doc.profile if e is not None else None
    if profile is not None:
        room = profile.max_validity
    else:
        room = e.longest_validity if e is not None else SUBSCRIBER_VALIDITY
    cutoff = issuer.not_after - room + scope.ONE_SECOND - _margin(doc)
    if doc.not_before > cutoff:
        yield Violation(
            f"issued {doc.not_before.isoformat()}, after the issuing key's cut-off "
            f"{cutoff.isoformat()}"
        )
    lineage = lineage_of(issuer)
    if lineage is None:
        return
    mine = lineage.generation(issuer.key)
    for generation in lineage.generations:
        if mine is None or generation.start <= mine.start:
            continue
        # Strictly after: certificates carry whole seconds, and one issued in the second of the
        # rollover may well have been signed just before it.
        if generation.self_signed is not None and doc.not_before > generation.start:
            yield Violation(
                f"issued {doc.not_before.isoformat()} with an old key, after the newer generation "
                f"{generation.self_signed.label} took over at {generation.start.isoformat()}"
            )


@rule(
    "S-18",
    "pkilint S/MIME BR linter",
    """pkilint's lint_cabf_smime_cert (type from the reserved policy OID, else
    INDIVIDUAL-MULTIPURPOSE) reports no finding at WARNING or above.""",
    citation="SBR 4.3.1.2 (pre-issuance linting); delegated to pkilint lint_cabf_smime_cert",
    source=Source.SBR,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=lambda doc: SMIME(doc) and scope.uses_pkilint(doc),
    delegate="pkilint",
)
def s18(doc: CertificateDoc) -> Found:
    kind, findings = pkilint_delegate.lint_smime_certificate(doc.der, doc.decoded, doc.ctx.shapes)
    yield from scope.delegated(findings, f"pkilint lint_cabf_smime_cert {kind}")


@rule(
    "S-19",
    "A renewal is a re-key",
    """No two certificates of the same subscriber (same rfc822Name, or same subject) among the
    files certify the same public key.""",
    citation="SEED-R2",
    source=Source.SEED,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
)
def s19(doc: CertificateDoc) -> Found:
    mine = {s.lower() for s in _sans(doc)}
    subject = doc.cert.subject.public_bytes()
    for other in doc.corpus.with_key(doc.key):
        if other is doc or other.der == doc.der or other.is_ca:
            continue
        same_person = bool(mine & {s.lower() for s in _sans(other)}) or (
            other.cert.subject.public_bytes() == subject
        )
        if same_person:
            yield Violation(
                f"the key is certified again in {other.label} (serial {other.cert.serial_number:x})"
            )


@rule(
    "S-20",
    "E-mail addresses in lower case",
    """Every rfc822Name and emailAddress is written in lower case.""",
    citation="SEED-R6",
    source=Source.SEED,
    severity=E,
    kinds=scope.CERTIFICATES,
    applies=SMIME,
)
def s20(doc: CertificateDoc) -> Found:
    for value in _sans(doc) + scope.values(doc, scope.EMAIL_ADDRESS):
        if value != value.lower():
            yield Violation(f"e-mail address {value!r} is not in lower case")


@rule(
    "J-01",
    "Accreditation limits",
    """For accreditation under the Electronic Signatures Act, a subscriber certificate is valid at
    most 5 years and an RSA key has at least 2048 bits (informational).""",
    citation="電子署名及び認証業務に関する法律施行規則 (Ordinance for Enforcement of the Act on "
    "Electronic Signatures and Certification Business) §6",
    source=Source.JP,
    severity=INFO,
    kinds=scope.CERTIFICATES,
    applies=scope.is_end_entity,
)
def j01(doc: CertificateDoc) -> Found:
    if scope.validity(doc) > dt.timedelta(days=5 * 365 + 2):
        yield Violation(f"valid {scope.days(scope.validity(doc))}: more than 5 years")
    key = doc.cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        yield Violation(f"an RSA key of {key.key_size} bits")

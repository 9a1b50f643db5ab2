"""Does a subscriber certificate chain to the published CA certificates, and if not, why not?
(SEED-R20, step 12.) Path building, signature and revocation checks are pyhanko-certvalidator's;
this module adds the subscriber-profile check and a diagnosis a person can act on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)

from jitsuin.ca.profiles import DOCUMENT_SIGNING

# What a certificate is checked to be good for once its path is valid (RFC 5280 §4.2.1.12: the
# extKeyUsage purpose; "any" checks none). The default is SEED-R20's: an e-mail protection
# certificate.
PURPOSES: Mapping[str, tuple[x509.ObjectIdentifier, str] | None] = {
    "smime": (ExtendedKeyUsageOID.EMAIL_PROTECTION, "an e-mail protection certificate"),
    "document": (DOCUMENT_SIGNING, "a document signing certificate (RFC 9336)"),
    "client": (ExtendedKeyUsageOID.CLIENT_AUTH, "a TLS client certificate"),
    "any": None,
}
DEFAULT_PURPOSE = "smime"


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    chain: tuple[x509.Certificate, ...] = ()
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _key_id(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    return None


def _diagnose(
    leaf: x509.Certificate, candidates: Sequence[x509.Certificate], at: dt.datetime
) -> list[str]:
    reasons = []
    if at < leaf.not_valid_before_utc:
        reasons.append(f"the certificate is not valid before {leaf.not_valid_before_utc}")
    if at > leaf.not_valid_after_utc:
        reasons.append(f"the certificate expired at {leaf.not_valid_after_utc}")
    by_name = [c for c in candidates if c.subject.public_bytes() == leaf.issuer.public_bytes()]
    if not by_name:
        reasons.append(
            f"no published CA certificate is named {leaf.issuer.rfc4514_string()!r}: "
            "the certificate was issued by another CA"
        )
        return reasons
    aki = _key_id(leaf, x509.AuthorityKeyIdentifier)
    by_key = [c for c in by_name if aki is None or _key_id(c, x509.SubjectKeyIdentifier) == aki]
    if not by_key:
        reasons.append(
            "a CA certificate with the issuer's name is published, but none with the key "
            f"identifier {aki.hex() if aki else '?'}: the issuing CA generation is not published "
            "or the certificate belongs to another CA with the same name"
        )
        return reasons
    for issuer in by_key:
        try:
            leaf.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError):
            key_id = _key_id(issuer, x509.SubjectKeyIdentifier) or b""
            reasons.append(
                f"the signature does not verify with the published CA key {key_id.hex()}"
            )
            continue
        if not issuer.not_valid_before_utc <= at <= issuer.not_valid_after_utc:
            reasons.append(
                f"the issuing CA certificate is not valid at {at.isoformat()} "
                f"({issuer.not_valid_before_utc} to {issuer.not_valid_after_utc})"
            )
    return reasons


def revoked_reason(when: dt.datetime, reason: str, whose: str = "the certificate") -> str:
    """One wording for a revocation, from a CRL or from the CA's own records."""
    return f"revoked: {whose} was revoked at {when.isoformat()}, reason {reason}"


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


async def validate_path(
    leaf: x509.Certificate,
    trusted: Sequence[x509.Certificate],
    others: Sequence[x509.Certificate] = (),
    crls: Sequence[bytes] = (),
    at: dt.datetime | None = None,
    *,
    require_revocation: bool = False,
) -> Verdict:
    """RFC 5280 §6 path validation by pyhanko-certvalidator (which passes NIST PKITS, §4.5 key
    rollover included): ``others`` are candidate intermediates such as link certificates; with
    ``require_revocation`` every certificate on the path must be covered by one of ``crls``."""
    at = at or dt.datetime.now(dt.UTC)
    if not trusted:
        return Verdict(False, reasons=("no CA certificates to verify against",))
    context = ValidationContext(
        trust_roots=[_asn1(c) for c in trusted],
        other_certs=[_asn1(c) for c in others],
        crls=[asn1_crl.CertificateList.load(c) for c in crls],
        revocation_mode="require" if require_revocation else "soft-fail",
        moment=at,
        time_tolerance=dt.timedelta(0),  # RFC 5280 §4.1.2.5: notAfter is the last valid second
        allow_fetching=False,
    )
    validator = CertificateValidator(_asn1(leaf), validation_context=context)
    try:
        path = await validator.async_validate_path()
    except RevokedError as exc:
        # asn1crypto's CRLReason names are cryptography's ReasonFlags member names.
        reason = x509.ReasonFlags[exc.reason.native].value
        whose = "the certificate" if exc.is_ee_cert else "a CA certificate on its path"
        return Verdict(False, reasons=(revoked_reason(exc.revocation_dt, reason, whose),))
    except (PathValidationError, PathBuildingError, ValidationError) as exc:
        reasons = _diagnose(leaf, [*trusted, *others], at) or [str(exc)]
        return Verdict(False, reasons=tuple(reasons))
    chain = tuple(x509.load_der_x509_certificate(c.dump()) for c in reversed(list(path)))
    return Verdict(True, chain)


def purpose_problem(leaf: x509.Certificate, purpose: str = DEFAULT_PURPOSE) -> str | None:
    """Why ``leaf`` is not good for ``purpose`` (one of PURPOSES), or None. Checked after the
    path: a revoked or foreign certificate is reported as that, not as the wrong kind."""
    wanted = PURPOSES[purpose]
    if wanted is None:
        return None
    oid, kind = wanted
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or oid not in eku:
        return f"the certificate chains, but it is not {kind}"
    return None


async def verify_subscriber(
    leaf: x509.Certificate,
    trusted: Sequence[x509.Certificate],
    others: Sequence[x509.Certificate] = (),
    crls: Sequence[bytes] = (),
    at: dt.datetime | None = None,
    *,
    require_revocation: bool = False,
    purpose: str = DEFAULT_PURPOSE,
) -> Verdict:
    """SEED-R20: the certificate chains to the published CA certificates (through link
    certificates after a rollover; a certificate listed on one of ``crls`` fails) and is good
    for ``purpose`` (by default an e-mail protection certificate)."""
    verdict = await validate_path(
        leaf, trusted, others, crls, at, require_revocation=require_revocation
    )
    if not verdict.ok:
        return verdict
    problem = purpose_problem(leaf, purpose)
    if problem is not None:
        return Verdict(False, verdict.chain, (problem,))
    return verdict

"""Does a subscriber certificate chain to the published CA certificates, and if not, why not?
(SEED-R20, step 12.) Path building and signature checks are cryptography's; this module adds the
subscriber-profile checks and a diagnosis a person can act on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID


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


def verify_subscriber(
    leaf: x509.Certificate,
    trusted: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    at: dt.datetime | None = None,
) -> Verdict:
    """Validate ``leaf`` against ``trusted`` CA certificates (RFC 5280 §6 path validation by
    cryptography) at time ``at``, then check that it is an e-mail protection certificate."""
    at = at or dt.datetime.now(dt.UTC)
    if not trusted:
        return Verdict(False, reasons=("no CA certificates to verify against",))
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(list(trusted)))
        .time(at)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
    )
    try:
        result = builder.build_client_verifier().verify(leaf, list(intermediates))
    except verification.VerificationError as exc:
        reasons = _diagnose(leaf, [*trusted, *intermediates], at) or [str(exc)]
        return Verdict(False, reasons=tuple(reasons))
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.EMAIL_PROTECTION not in eku:
        return Verdict(
            False,
            tuple(result.chain),
            ("the certificate chains, but it is not an e-mail protection certificate",),
        )
    return Verdict(True, tuple(result.chain))

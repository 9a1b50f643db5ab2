"""Certificate profiles as data (docs/conformance.md, subscriber table; SEED-R1, R4, R5).

``general`` and ``document-manager`` are the seed's two certificate types. They differ only in
their certificate-policy OID and in the qualification groups they accept. ``tls-server`` is the
profile of the server's own HTTPS certificate.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from jitsuin.ca.keys import CA_KEY_TYPES, KeyType

# SEED-R1: exactly 396 days, counted as RFC 5280 counts (notAfter is inclusive, so the last
# second is notBefore + 396 d - 1 s).
SUBSCRIBER_VALIDITY = dt.timedelta(days=396)
# The delegated OCSP responder certificate (RFC 6960 §4.2.2.2): it carries id-pkix-ocsp-nocheck,
# so it cannot be revoked in practice, and a compromise of its key is "as serious as the
# compromise of a CA key used to sign CRLs, at least for the validity period of this certificate"
# (§4.2.2.2.1). Seven days bounds that window as CRL_VALIDITY bounds a CRL's. It is renewed once
# less than OCSP_RESPONDER_RENEW_BEFORE remains, which exceeds an OCSP response's validity
# (3 days) with a day to spare: no response outlives the certificate that signed it.
OCSP_RESPONDER_VALIDITY = dt.timedelta(days=7)
OCSP_RESPONDER_RENEW_BEFORE = dt.timedelta(days=4)
# SEED-R15: a CA certificate is valid 10 years (docs/conformance.md C-02: at most 3653 days).
CA_VALIDITY_YEARS = 10

# S/MIME BR 7.1.6.1: Individual-validated, multipurpose generation.
SMIME_IV_MULTIPURPOSE = ObjectIdentifier("2.23.140.1.5.4.2")
# RFC 9336: id-kp-documentSigning.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


class NameOrder(enum.Enum):
    """How the common name is built from the romanized names (docs/conformance.md S-11)."""

    GIVEN_FAMILY = "given-family"
    FAMILY_GIVEN = "family-given"

    def common_name(self, given_name: str, family_name: str) -> str:
        if self is NameOrder.GIVEN_FAMILY:
            return f"{given_name} {family_name}"
        return f"{family_name} {given_name}"


@dataclass(frozen=True, slots=True)
class QualificationGroup:
    """Qualification info 1 (the group, written into ``title``) and the syntax of qualification
    info 2 (the number, written into ``serialNumber``). SEED-R4; docs/conformance.md S-12, S-13."""

    id: str
    title: str
    number_pattern: str

    def number_matches(self, number: str) -> bool:
        return re.fullmatch(self.number_pattern, number) is not None


DEFAULT_GROUPS: Mapping[str, QualificationGroup] = {
    g.id: g
    for g in (
        QualificationGroup(
            id="document-information-manager",
            title="Document Information Manager",
            number_pattern=r"[0-9]{4,12}",
        ),
        QualificationGroup(
            id="member",
            title="Registered Member",
            number_pattern=r"[A-Z0-9][A-Z0-9-]{0,31}",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    cp_oid_suffix: str  # under the CA's policy arc: the CA's own CP OID for this profile
    groups: tuple[str, ...] | None  # accepted qualification groups; None accepts every group
    key_types: tuple[KeyType, ...]
    validity: dt.timedelta
    eku: tuple[ObjectIdentifier, ...]
    personal: bool = True

    def accepts_group(self, group_id: str) -> bool:
        return self.groups is None or group_id in self.groups

    def key_usage(self, key_type: KeyType) -> x509.KeyUsage:
        """SEED-R5 and S/MIME BR 7.1.2.3e, dual use: RSA {dS, nR, kE}; EC {dS, nR, kA}.
        The TLS server profile: dS (+ kE for RSA), BR 7.1.2.7.11."""
        rsa = key_type.is_rsa
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=self.personal,
            key_encipherment=rsa,
            data_encipherment=False,
            key_agreement=self.personal and not rsa,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )


_SUBSCRIBER_KEYS = (
    KeyType.RSA_2048,
    KeyType.RSA_3072,
    KeyType.RSA_4096,
    KeyType.ECDSA_P256,
    KeyType.ECDSA_P384,
)
# SEED-R5; S/MIME BR 7.1.2.3f: emailProtection, plus documentSigning and clientAuth (both allowed
# in multipurpose). clientAuth because the certificate is the TLS client credential of its own
# EST re-enrollment (RFC 7030 §3.3.2): OpenSSL-based servers refuse a client certificate whose
# EKU lacks it.
_PERSONAL_EKU = (
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ExtendedKeyUsageOID.CLIENT_AUTH,
    DOCUMENT_SIGNING,
)
OCSP_RESPONDER = "ocsp-responder"

PROFILES: Mapping[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="general",
            cp_oid_suffix="1.1",
            groups=None,
            key_types=_SUBSCRIBER_KEYS,
            validity=SUBSCRIBER_VALIDITY,
            eku=_PERSONAL_EKU,
        ),
        Profile(
            name="document-manager",
            cp_oid_suffix="1.2",
            groups=("document-information-manager",),
            key_types=_SUBSCRIBER_KEYS,
            validity=SUBSCRIBER_VALIDITY,
            eku=_PERSONAL_EKU,
        ),
        Profile(
            name="tls-server",
            cp_oid_suffix="1.3",
            groups=(),
            key_types=_SUBSCRIBER_KEYS,
            validity=SUBSCRIBER_VALIDITY,
            eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
            personal=False,
        ),
        # RFC 6960 §4.2.2.2: id-kp-OCSPSigning, issued by the CA key it answers for. Its CP OID
        # is reserved; the certificate carries none (TLS BR 7.1.2.8.5: NOT RECOMMENDED).
        Profile(
            name=OCSP_RESPONDER,
            cp_oid_suffix="1.4",
            groups=(),
            key_types=CA_KEY_TYPES,  # the responder key has its CA key's type
            validity=OCSP_RESPONDER_VALIDITY,
            eku=(ExtendedKeyUsageOID.OCSP_SIGNING,),
            personal=False,
        ),
    )
}
PERSONAL_PROFILES = tuple(name for name, p in PROFILES.items() if p.personal)

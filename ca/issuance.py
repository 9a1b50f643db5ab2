"""The issuance engine: (verified CSR key, vetted subject, profile, clock) -> certificate.

The CSR contributes only the public key (already proven by its signature); every subject field
comes from the vetted record. Each refusal is a ``CAError`` with a precise message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID, ObjectIdentifier

from jitsuin.ca.clock import Clock
from jitsuin.ca.csr import VerifiedCSR
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import ONE_SECOND, CAGeneration
from jitsuin.ca.keys import KeyType, PublicKey, spki_sha256
from jitsuin.ca.profiles import (
    DEFAULT_GROUPS,
    OCSP_RESPONDER,
    PROFILES,
    SMIME_IV_MULTIPURPOSE,
    NameOrder,
    Profile,
    QualificationGroup,
)
from jitsuin.ca.signing import Signed, draft_certificate, sign_draft
from jitsuin.ca.subject import VettedSubject, subject_name

# The pre-issuance lint: inspects the draft and returns the messages of blocking findings.
Lint = Callable[[x509.Certificate, Profile], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Intent:
    """What the CA key is about to sign, handed to the ``reserve`` hook before the signature."""

    generation: int
    serial: int
    profile: str
    tbs_sha256: str  # SHA-256 of the TBSCertificate the key signs (the draft's, byte for byte)


# Records the intent to sign and reserves its serial before the CA key signs, as Boulder records
# serials before signing: True when reserved, False when the serial is taken (a new one is drawn).
# An exception stops the issuance with nothing signed.
Reserve = Callable[[Intent], bool]

MAX_OID_ARC = 2**28
SERIAL_DRAWS = 3
_SUPPORTED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}


@dataclass(frozen=True, slots=True)
class CAPolicy:
    """What the CA's configuration decides about the certificates it issues."""

    policy_arc: str  # the CA's own OID arc; profile CP OIDs hang below it
    pki_base_url: str  # plain-HTTP base of CRL, OCSP and caIssuers (S/MIME BR 7.1.2.3b,c)
    name_order: NameOrder = NameOrder.GIVEN_FAMILY
    cutoff_margin: dt.timedelta = dt.timedelta(days=30)
    groups: Mapping[str, QualificationGroup] = field(default_factory=lambda: DEFAULT_GROUPS)

    def problems(self) -> list[str]:
        out = []
        try:
            ObjectIdentifier(self.policy_arc)
        except ValueError:
            out.append(f"policy_arc {self.policy_arc!r} is not a dotted OID")
        else:
            # Many decoders (pkilint's among them, and Windows) take arcs of at most 28 bits
            # (4 base-128 bytes); 2.25.<UUID> arcs cannot be linted or widely parsed.
            if any(int(arc) >= MAX_OID_ARC for arc in self.policy_arc.split(".")):
                out.append(
                    f"policy_arc {self.policy_arc!r} has an arc of 2^28 or more, which common "
                    "decoders reject: use an arc under your IANA enterprise number"
                )
        if not self.pki_base_url.startswith("http://"):
            # S/MIME BR 7.1.2.3b,c: CRL DP and AIA URLs are http (not https).
            out.append(f"pki_base_url {self.pki_base_url!r} must be an http:// URL")
        if self.cutoff_margin < dt.timedelta(0):
            out.append("cutoff_margin must not be negative")
        return out

    def cp_oid(self, profile: Profile) -> ObjectIdentifier:
        return ObjectIdentifier(f"{self.policy_arc}.{profile.cp_oid_suffix}")

    def crl_url(self, generation: int) -> str:
        return f"{self.pki_base_url.rstrip('/')}/crl/{generation}.crl"

    def ocsp_url(self) -> str:
        return f"{self.pki_base_url.rstrip('/')}/ocsp"

    def ca_issuers_url(self, generation: int) -> str:
        return f"{self.pki_base_url.rstrip('/')}/ca/{generation}.crt"


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    certificate: x509.Certificate
    der: bytes
    profile: str
    generation: int
    spki_sha256: str

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


def profile_named(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise CAError(Kind.UNKNOWN_PROFILE, f"unknown profile {name!r}; known: {known}") from None


def check_public_key(profile: Profile, key: PublicKey) -> KeyType:
    """SBR 6.1.5/6.1.6 and docs/conformance.md S-03: RSA 2048/3072/4096 with e = 65537, P-256,
    P-384."""
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if bits < 2048:
            raise CAError(
                Kind.BAD_PUBLIC_KEY,
                f"RSA key of {bits} bits is too small: at least 2048 bits are required (SBR 6.1.5)",
            )
        if bits % 8:
            raise CAError(
                Kind.BAD_PUBLIC_KEY,
                f"RSA key of {bits} bits: the modulus size must be a multiple of 8 (SBR 6.1.5)",
            )
        if key.public_numbers().e != 65537:
            raise CAError(
                Kind.BAD_PUBLIC_KEY,
                f"RSA public exponent {key.public_numbers().e} is not accepted: use 65537 "
                "(SBR 6.1.6)",
            )
        key_type = KeyType.parse(f"rsa-{bits}") if bits in (2048, 3072, 4096) else None
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _SUPPORTED_CURVES:
            raise CAError(
                Kind.BAD_PUBLIC_KEY,
                f"elliptic curve {key.curve.name} is not supported: use P-256 or P-384 (SBR 6.1.5)",
            )
        key_type = KeyType.of(key)
    else:
        raise CAError(Kind.BAD_PUBLIC_KEY, "only RSA and ECDSA keys are accepted")
    if key_type is None or key_type not in profile.key_types:
        accepted = ", ".join(k.value for k in profile.key_types)
        raise CAError(
            Kind.BAD_PUBLIC_KEY,
            f"a {key.key_size}-bit {'RSA' if key_type is None else key_type.value} key is not "
            f"accepted by profile {profile.name}: use {accepted}",
        )
    return key_type


class Issuer:
    """Issues certificates with one CA generation."""

    def __init__(
        self,
        generation: CAGeneration,
        policy: CAPolicy,
        clock: Clock,
        lint: Lint | None = None,
    ) -> None:
        problems = policy.problems()
        if problems:
            raise CAError(Kind.BAD_CONFIG, "; ".join(problems))
        self.generation = generation
        self.policy = policy
        self.clock = clock
        self.lint = lint

    # -- personal certificates -------------------------------------------------------------
    def issue(
        self,
        csr: VerifiedCSR,
        subject: VettedSubject,
        profile_name: str,
        used_keys: Collection[str] = (),
        *,
        reserve: Reserve | None = None,
    ) -> IssuedCertificate:
        """Issue a personal certificate. ``used_keys`` are the SPKI SHA-256 hashes of the
        subscriber's earlier certificates (SEED-R2: a renewal is always a re-key)."""
        profile = profile_named(profile_name)
        if not profile.personal:
            raise CAError(Kind.UNKNOWN_PROFILE, f"profile {profile.name} is not a personal profile")
        key_type = check_public_key(profile, csr.public_key)
        group = self._check_subject(subject, profile)
        if csr.spki_sha256 in used_keys:
            raise CAError(
                Kind.KEY_REUSED,
                "this public key was already certified for this subscriber; every renewal needs "
                "a new key pair (SEED-R2)",
            )
        not_before, not_after = self._validity(profile)
        # SEED-R4; S/MIME BR 7.1.4.2.2: the mapping is ca/subject.py's subject_name.
        name = subject_name(subject, group, self.policy.name_order)
        builder = (
            self._base_builder(csr.public_key, name, not_before, not_after)
            .add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(subject.email)]), critical=False
            )
            .add_extension(profile.key_usage(key_type), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(profile.eku)), critical=False)
            .add_extension(
                x509.CertificatePolicies(
                    [
                        x509.PolicyInformation(SMIME_IV_MULTIPURPOSE, None),
                        x509.PolicyInformation(self.policy.cp_oid(profile), None),
                    ]
                ),
                critical=False,
            )
        )
        return self._finish(builder, profile, csr.public_key, reserve)

    def check_subject(self, subject: VettedSubject, profile_name: str) -> None:
        """Raise ``CAError(BAD_SUBJECT)`` listing every reason the record cannot be issued to
        under the profile: lets the RA refuse at entry what issuance would refuse later."""
        self._check_subject(subject, profile_named(profile_name))

    def _check_subject(self, subject: VettedSubject, profile: Profile) -> QualificationGroup:
        problems = subject.problems()
        group = self.policy.groups.get(subject.qualification_group)
        if group is None:
            problems.append(f"unknown qualification group {subject.qualification_group!r}")
        elif not profile.accepts_group(group.id):
            problems.append(
                f"qualification group {group.id!r} is not accepted by profile {profile.name}"
            )
        elif subject.qualification_number and not group.number_matches(
            subject.qualification_number
        ):
            problems.append(
                f"qualification number {subject.qualification_number!r} does not match the "
                f"syntax of group {group.id!r}"
            )
        if problems:
            raise CAError(Kind.BAD_SUBJECT, "; ".join(problems))
        assert group is not None
        return group

    # -- the server's own TLS certificate ---------------------------------------------------
    def issue_tls_server(
        self,
        public_key: PublicKey,
        dns_names: Sequence[str],
        ip_addresses: Sequence[object] = (),
        validity: dt.timedelta | None = None,
        *,
        reserve: Reserve | None = None,
    ) -> IssuedCertificate:
        """A server-auth certificate. ``validity`` may shorten the profile's (an ACME EAB
        key's policy); it never lengthens it."""
        profile = profile_named("tls-server")
        key_type = check_public_key(profile, public_key)
        if not dns_names and not ip_addresses:
            raise CAError(Kind.BAD_SUBJECT, "a TLS server certificate needs a DNS name or an IP")
        if validity is not None and not ONE_SECOND < validity <= profile.validity:
            raise CAError(
                Kind.BAD_CONFIG, f"validity must be positive and at most {profile.validity.days} d"
            )
        not_before, not_after = self._validity(profile)
        if validity is not None:
            not_after = min(not_after, not_before + validity - ONE_SECOND)
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ip) for ip in ip_addresses]  # type: ignore[arg-type]
        # An empty subject, the names only in a critical subjectAltName (RFC 5280 §4.2.1.6; TLS
        # BR 7.1.2.7.2 makes the CN optional): a CN holding an IP address is read as a DNS name
        # by clients such as certbot, which then refuse the certificate.
        builder = (
            self._base_builder(public_key, x509.Name([]), not_before, not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=True)
            .add_extension(profile.key_usage(key_type), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(profile.eku)), critical=False)
        )
        return self._finish(builder, profile, public_key, reserve)

    # -- the delegated OCSP responder ----------------------------------------------------------
    def issue_ocsp_responder(
        self, public_key: PublicKey, *, reserve: Reserve | None = None
    ) -> IssuedCertificate:
        """A delegated OCSP responder certificate for this generation (RFC 6960 §4.2.2.2): issued
        by the CA key it answers for, id-kp-OCSPSigning, id-pkix-ocsp-nocheck (§4.2.2.2.1: the
        client does not check its revocation, so it carries no CRL DP or OCSP URL), keyUsage
        digitalSignature only, valid OCSP_RESPONDER_VALIDITY. Unlike a subscriber certificate it
        is issued after the generation's issuance cut-off too (the generation answers for its
        certificates until they expire), but never past the CA certificate's notAfter."""
        profile = profile_named(OCSP_RESPONDER)
        check_public_key(profile, public_key)
        ca = self.generation
        not_before = self.clock.now()
        if not ca.not_before <= not_before < ca.not_after:
            raise CAError(
                Kind.CUTOFF,
                f"CA generation {ca.number} is not valid at {not_before.isoformat()}: it has no "
                "OCSP responder to certify",
            )
        not_after = min(not_before + profile.validity - ONE_SECOND, ca.not_after)
        ca_names = [a for a in ca.certificate.subject if a.oid != NameOID.COMMON_NAME]
        ca_cn = ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = f"{ca_cn[0].value if ca_cn else 'CA'} OCSP Responder {ca.number}"[:64]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([*ca_names, x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.certificate.subject)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .public_key(public_key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier(ca.key_identifier, None, None), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(list(profile.eku)), critical=False)
            .add_extension(x509.OCSPNoCheck(), critical=False)
        )
        return self._finish(builder, profile, public_key, reserve)

    # -- shared steps -------------------------------------------------------------------------
    def _validity(self, profile: Profile) -> tuple[dt.datetime, dt.datetime]:
        not_before = self.clock.now()
        not_after = not_before + profile.validity - ONE_SECOND  # SEED-R1: exactly 396 days
        cutoff = self.generation.issuance_cutoff(self.policy.cutoff_margin)
        if not_before > cutoff or not_after > self.generation.not_after:
            # SEED-R15; docs/conformance.md S-16/S-17: no certificate outlives its issuing CA.
            raise CAError(
                Kind.CUTOFF,
                f"CA generation {self.generation.number} stopped issuing at "
                f"{cutoff.isoformat()} (its certificate expires "
                f"{self.generation.not_after.isoformat()}); a certificate issued now would "
                "outlive it: roll the CA over (SEED-R15)",
            )
        if not_before < self.generation.not_before:
            raise CAError(
                Kind.CUTOFF,
                f"CA generation {self.generation.number} is not valid before "
                f"{self.generation.not_before.isoformat()}",
            )
        return not_before, not_after

    def _base_builder(
        self,
        public_key: PublicKey,
        name: x509.Name,
        not_before: dt.datetime,
        not_after: dt.datetime,
    ) -> x509.CertificateBuilder:
        ca = self.generation
        number = ca.number
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(ca.certificate.subject)  # byte-identical issuer DN
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .public_key(public_key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier(ca.key_identifier, None, None), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier(self.policy.crl_url(number))],
                            None,
                            None,
                            None,
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(self.policy.ocsp_url()),
                        ),
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(self.policy.ca_issuers_url(number)),
                        ),
                    ]
                ),
                critical=False,
            )
        )

    def _finish(
        self,
        builder: x509.CertificateBuilder,
        profile: Profile,
        public_key: PublicKey,
        reserve: Reserve | None,
    ) -> IssuedCertificate:
        for _ in range(SERIAL_DRAWS):
            # SBR 7.1: at least 64 CSPRNG bits; cryptography draws 159 bits, positive, < 2^159.
            draft = draft_certificate(
                builder.serial_number(x509.random_serial_number()), self.generation.signer
            )
            if self.lint is not None:
                blocking = list(self.lint(draft, profile))
                if blocking:
                    raise CAError(
                        Kind.LINT,
                        "the pre-issuance lint refused the certificate: " + "; ".join(blocking),
                    )
            intent = Intent(
                self.generation.number,
                draft.serial_number,
                profile.name,
                hashlib.sha256(draft.tbs_certificate_bytes).hexdigest(),
            )
            if reserve is None or reserve(intent):
                break
        else:
            raise CAError(
                Kind.BAD_CONFIG,
                f"{SERIAL_DRAWS} random serials in a row were taken: the random number "
                "generator is broken; nothing was signed",
            )
        signed: Signed = sign_draft(draft, self.generation.signer)
        return IssuedCertificate(
            certificate=signed.certificate,
            der=signed.der,
            profile=profile.name,
            generation=self.generation.number,
            spki_sha256=spki_sha256(public_key),
        )

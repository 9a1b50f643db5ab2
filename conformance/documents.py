"""The objects the rules judge: certificates, CRLs and OCSP responses, each with the corpus it was
loaded with (the other files of the same run, for the cross-object rules: leaf vs issuer,
rollover set, CRL vs issued certificates), and the lint context (configuration, forced profile,
evaluation time, suppressions).

Longer than 600 lines because each kind of document and the context are one class apiece, and
the rules read every parsed field from here rather than parsing again."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyasn1_fasder as fasder
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc5280

from jitsuin.ca.issuance import CAPolicy
from jitsuin.ca.profiles import SUBSCRIBER_VALIDITY
from jitsuin.conformance import profile as profile_description
from jitsuin.conformance.profile import CAProfile, SubscriberProfile
from jitsuin.conformance.registry import DocKind
from jitsuin.conformance.shapes import ShapeCache
from jitsuin.conformance.signature import verifies

SMIME_POLICY_ARC = "2.23.140.1.5."  # S/MIME BR 7.1.6.1 reserved policy OIDs
# Subject attributes that name a natural person (SBR 7.1.4.2.2 b, e, f, h): givenName, surname,
# pseudonym, emailAddress. No CA certificate profile (SBR 7.1.2.1, 7.1.2.2) has them.
PERSONAL_ATTRIBUTES = {
    "2.5.4.42": "givenName",
    "2.5.4.4": "surname",
    "2.5.4.65": "pseudonym",
    "1.2.840.113549.1.9.1": "emailAddress",
}
E = TypeVar("E", bound=x509.ExtensionType)
# jitsuin's built-in profiles, for --profile without a configuration.
JITSUIN_PROFILES = profile_description.jitsuin_profiles()


# -- what the configuration fixes
@dataclass(frozen=True, slots=True)
class Expectations:
    """The values only the issuing CA knows (docs/conformance.md "Rules that depend on a CA's
    configuration"), as a profile description (conformance/profile.py): its profiles (CP OIDs,
    purposes, subject, SAN, keys, validity), URL templates, qualification groups, name order,
    cut-off margin and CA subject. Without it the rules check shape only."""

    ca: CAProfile
    ca_subject: x509.Name | None = None
    ca_signs_ocsp: bool = True  # the CA key signs OCSP itself (RFC 6960 §4.2.2.2)

    @classmethod
    def from_policy(cls, policy: CAPolicy, ca_subject: x509.Name | None = None) -> Expectations:
        """jitsuin's own configuration, translated into the profile structure."""
        return cls.from_profile(profile_description.from_policy(policy), ca_subject)

    @classmethod
    def from_profile(cls, ca: CAProfile, ca_subject: x509.Name | None = None) -> Expectations:
        return cls(ca=ca, ca_subject=ca_subject, ca_signs_ocsp=ca.ca_signs_ocsp)

    @property
    def profiles(self) -> Mapping[str, SubscriberProfile]:
        return self.ca.profiles

    @property
    def longest_validity(self) -> dt.timedelta:
        """The longest validity of the CA's personal profiles: what an issuing key's cut-off
        must leave room for (S-17, C-07)."""
        return max(
            (p.max_validity for p in self.profiles.values() if p.personal),
            default=SUBSCRIBER_VALIDITY,
        )

    def profile_for_policies(self, oids: Iterable[ObjectIdentifier]) -> SubscriberProfile | None:
        dotted = {o.dotted_string for o in oids}
        for profile in self.ca.profiles.values():
            if dotted.intersection(profile.policy_oids):
                return profile
        return None


@dataclass(frozen=True, slots=True)
class LintContext:
    expectations: Expectations | None = None
    profile: str | None = None  # force this subscriber profile (``--profile``)
    at: dt.datetime | None = None  # judge validity at this time (``--at``); never the clock
    suppress: Mapping[str, str] = field(default_factory=dict)  # code or rule id -> reason
    draft: bool = False  # signed with a throwaway key (pre-issuance): skip signature checks
    pkilint: bool = True
    # Lint with pkilint incrementally, keeping per shape here (conformance/shapes.py); None: whole.
    shapes: ShapeCache | None = None
    # was this serial issued by the CA key with this SKI? None = unknown.
    issued: Callable[[bytes, int], bool | None] | None = None
    # C-13: keys (``key_id``) of the subordinate CAs the user declares (``--intermediate``).
    intermediates: frozenset[str] = frozenset()

    def forced_profile(self) -> SubscriberProfile | None:
        if self.profile is None:
            return None
        profiles = self.expectations.profiles if self.expectations else JITSUIN_PROFILES
        try:
            return profiles[self.profile]
        except KeyError:
            known = ", ".join(profiles)
            raise ValueError(f"unknown profile {self.profile!r}; known: {known}") from None


# -- DER helpers
def canonical_der(der: bytes, spec: Any, decoded: Any = None) -> bytes | None:
    """Decode as BER and re-encode as DER (X.690 §10): equal bytes mean canonical DER. None when
    the bytes do not decode as ``spec`` at all. ``decoded``: what pyasn1-fasder read from
    ``der`` already, if anything."""
    try:
        # Fast path: pyasn1-fasder (pkilint's decoder) is a strict DER decoder: it refuses long
        # or indefinite lengths, non-minimal integers, BOOLEAN other than 00/FF, constructed
        # strings, unsorted SET OF, set unused bits and encoded DEFAULTs (X.690 §10, §11;
        # tests/conformance/test_der.py holds it to that). What it accepts is DER as given.
        if decoded is not None or fasder.decode_der(der, spec):
            return der
    except Exception:  # noqa: S110 (refused: the BER decoder below says how it differs)
        pass
    try:
        value, rest = ber_decoder.decode(der, asn1Spec=spec)
        if rest:
            return None
        return der_encoder.encode(value)
    except (PyAsn1Error, ValueError, TypeError):
        return None


def key_id(public_key: Any) -> str:
    """SHA-256 of the SubjectPublicKeyInfo: what identifies a key across certificates."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


# -- documents
class _Doc:
    kind: DocKind
    corpus: Corpus

    def __init__(self, der: bytes, label: str, *, context_only: bool = False) -> None:
        self.der = der
        self.label = label
        self.context_only = context_only  # given for the cross-object rules, not reported

    @property
    def ctx(self) -> LintContext:
        return self.corpus.context


class CertificateDoc(_Doc):
    kind = DocKind.CERTIFICATE

    def __init__(
        self,
        der: bytes,
        label: str,
        *,
        context_only: bool = False,
        parsed: x509.Certificate | None = None,
    ) -> None:
        super().__init__(der, label, context_only=context_only)
        if parsed is not None:
            self.cert = parsed
            self._asn1_source = der
            return
        try:
            with warnings.catch_warnings():  # e.g. a serial of 0: X-02 reports it
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                self.cert = x509.load_der_x509_certificate(der)
            self._asn1_source = der
        except ValueError:
            # Not DER: cryptography's parser is strict. Re-encode what a BER parser reads so the
            # other rules can still run; X-01 reports the difference.
            self.canonical = canonical_der(der, rfc5280.Certificate())
            if self.canonical is None:
                raise
            self.cert = x509.load_der_x509_certificate(self.canonical)
            self._asn1_source = self.canonical

    @functools.cached_property
    def canonical(self) -> bytes | None:
        """The DER re-encoding (X-01), made when a rule asks: a context certificate (the CA
        certificates given with every draft) is seldom asked."""
        return canonical_der(self.der, rfc5280.Certificate(), self.decoded)

    @functools.cached_property
    def decoded(self) -> Any:
        """The certificate as pkilint's strict DER decoder (pyasn1-fasder) reads it, or None when
        it refuses it: decoded once for X-01 and pkilint's lint_pkix_cert (X-13)."""
        try:
            return fasder.decode_der(self.der, rfc5280.Certificate())[0]
        except Exception:
            return None

    @functools.cached_property
    def asn1(self) -> asn1_x509.Certificate:
        """The certificate as parsed, bytes preserved (for byte-exact comparisons)."""
        return asn1_x509.Certificate.load(self._asn1_source)

    @property
    def effective_time(self) -> dt.datetime:
        return self.cert.not_valid_before_utc

    @property
    def not_before(self) -> dt.datetime:
        return self.cert.not_valid_before_utc

    @functools.cached_property
    def serial(self) -> int:
        """The serial number as encoded (cryptography warns on a non-positive one)."""
        return int(self.asn1["tbs_certificate"]["serial_number"].native)

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def description(self) -> str:
        if self.is_ca:
            role = "certificate with cA TRUE" if self.subscriber_marks else "CA certificate"
        else:
            role = "certificate"
        return f"{role} {self.cert.subject.rfc4514_string()} serial {self.cert.serial_number:x}"

    @functools.cached_property
    def extensions(self) -> x509.Extensions:
        """cryptography's view of the extensions. With a duplicate (X-06) it keeps the first of
        each kind, and it leaves out one cryptography cannot parse (e.g. a pathLenConstraint with
        cA FALSE, X-09), so that the other rules still see the rest of the certificate."""
        try:
            return self.cert.extensions
        except (x509.DuplicateExtension, ValueError):
            pass

        def with_extensions(kept: list[Any]) -> x509.Certificate:
            parsed = asn1_x509.Certificate.load(self._asn1_source)
            parsed["tbs_certificate"]["extensions"] = kept
            return x509.load_der_x509_certificate(parsed.dump(force=True))

        seen: set[str] = set()
        kept = []
        for extension in asn1_x509.Certificate.load(self._asn1_source)["tbs_certificate"][
            "extensions"
        ]:
            if extension["extn_id"].dotted in seen:
                continue
            seen.add(extension["extn_id"].dotted)
            try:
                with_extensions([extension]).extensions  # noqa: B018 (does it parse alone?)
            except (x509.DuplicateExtension, ValueError):
                continue
            kept.append(extension)
        return with_extensions(kept).extensions

    def ext(self, cls: type[E]) -> E | None:
        try:
            return self.extensions.get_extension_for_class(cls).value
        except x509.ExtensionNotFound:
            return None

    def critical(self, cls: type[x509.ExtensionType]) -> bool | None:
        try:
            return self.extensions.get_extension_for_class(cls).critical
        except x509.ExtensionNotFound:
            return None

    @functools.cached_property
    def ski(self) -> bytes | None:
        value = self.ext(x509.SubjectKeyIdentifier)
        return value.digest if value else None

    @functools.cached_property
    def aki(self) -> bytes | None:
        value = self.ext(x509.AuthorityKeyIdentifier)
        return value.key_identifier if value else None

    @functools.cached_property
    def key(self) -> str:
        return key_id(self.cert.public_key())

    @functools.cached_property
    def is_ca(self) -> bool:
        try:
            found = self.cert.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            return False
        except (x509.DuplicateExtension, ValueError):
            # asn1crypto reads what cryptography refuses (a pathLenConstraint with cA FALSE,
            # which X-09 then reports, or a duplicate extension, X-06).
            return bool(self.asn1.ca)
        return found.value.ca

    @property
    def self_issued(self) -> bool:
        """RFC 5280 §6.1: subject and issuer DN are the same (every generation and link
        certificate of one CA is self-issued, docs/conformance.md C-04)."""
        return self.cert.subject.public_bytes() == self.cert.issuer.public_bytes()

    @functools.cached_property
    def self_signed(self) -> bool:
        if not self.self_issued:
            return False
        if self.ctx.draft and not self.context_only:  # a throwaway key signed the draft
            return self.aki is None or self.aki == self.ski
        return self.signed_with(self.cert.public_key())

    def signed_with(self, public_key: Any) -> bool:
        try:
            spki = public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except (AttributeError, TypeError, ValueError):  # not a key cryptography can write
            return _signed_with(self.cert, public_key)
        return _certificate_signed_with(self._asn1_source, spki)

    @functools.cached_property
    def policy_oids(self) -> tuple[ObjectIdentifier, ...]:
        value = self.ext(x509.CertificatePolicies)
        return tuple(p.policy_identifier for p in value) if value else ()

    @functools.cached_property
    def subscriber_marks(self) -> tuple[str, ...]:
        """What makes this a subscriber certificate whatever its cA bit says (C-12): a personal
        subject attribute, an rfc822Name SAN, the configured subscriber policy of a profile;
        on a self-issued certificate (a generation or link, SBR 7.1.2.1) also an EKU or a
        reserved S/MIME policy OID. A subordinate CA may carry those two (SBR 7.1.2.2: its EKU
        must include emailProtection, its policies may be the reserved ones), so there they
        mark nothing."""
        marks = []
        subject = self.cert.subject
        for oid, name in PERSONAL_ATTRIBUTES.items():
            if subject.get_attributes_for_oid(ObjectIdentifier(oid)):
                marks.append(f"subject {name}")
        san = self.ext(x509.SubjectAlternativeName)
        if san is not None and san.get_values_for_type(x509.RFC822Name):
            marks.append("an rfc822Name subjectAltName")
        expectations = self.ctx.expectations
        if expectations is not None:
            profile = expectations.profile_for_policies(self.policy_oids)
            if profile is not None:
                own = [o.dotted_string for o in self.policy_oids]
                policy = next(o for o in profile.policy_oids if o in own)
                marks.append(f"the subscriber policy {policy}")
        if self.self_issued:
            reserved = [
                o.dotted_string
                for o in self.policy_oids
                if o.dotted_string.startswith(SMIME_POLICY_ARC)
            ]
            marks.extend(f"the S/MIME BR subscriber policy {o}" for o in reserved)
            if self.ext(x509.ExtendedKeyUsage) is not None:
                marks.append("an extendedKeyUsage")
        return tuple(marks)

    @functools.cached_property
    def is_smime_subscriber(self) -> bool:
        """A subscriber certificate under the S/MIME BR: the forced profile says so, or it has
        emailProtection or a reserved S/MIME policy OID (SBR 7.1.2.3). A certificate with cA
        TRUE is one only when it carries a subscriber mark (C-12): then the S rules and
        pkilint's S/MIME linter judge it too."""
        if self.is_ca and not self.subscriber_marks:
            return False
        forced = self.ctx.forced_profile()
        if forced is not None:
            return forced.personal
        eku = self.ext(x509.ExtendedKeyUsage)
        if eku is not None and ExtendedKeyUsageOID.EMAIL_PROTECTION in eku:
            return True
        return any(o.dotted_string.startswith(SMIME_POLICY_ARC) for o in self.policy_oids)

    @functools.cached_property
    def profile(self) -> SubscriberProfile | None:
        """The CA's profile: forced, or found from the CP OID when a configuration is given."""
        forced = self.ctx.forced_profile()
        if forced is not None:
            return forced
        if self.ctx.expectations is not None:
            return self.ctx.expectations.profile_for_policies(self.policy_oids)
        return None

    @property
    def issuer(self) -> CertificateDoc | None:
        return self.corpus.issuer_of(self)


class CRLDoc(_Doc):
    kind = DocKind.CRL

    def __init__(self, der: bytes, label: str, *, context_only: bool = False) -> None:
        super().__init__(der, label, context_only=context_only)
        self.crl = x509.load_der_x509_crl(der)

    @functools.cached_property
    def asn1(self) -> asn1_crl.CertificateList:
        return asn1_crl.CertificateList.load(self.der)

    @property
    def effective_time(self) -> dt.datetime:
        return self.crl.last_update_utc

    @property
    def description(self) -> str:
        number = self.number
        return (
            f"CRL {self.crl.issuer.rfc4514_string()} number {number if number is not None else '?'}"
        )

    def ext(self, cls: type[E]) -> E | None:
        try:
            return self.crl.extensions.get_extension_for_class(cls).value
        except x509.ExtensionNotFound:
            return None

    @functools.cached_property
    def number(self) -> int | None:
        value = self.ext(x509.CRLNumber)
        return value.crl_number if value else None

    @functools.cached_property
    def aki(self) -> bytes | None:
        value = self.ext(x509.AuthorityKeyIdentifier)
        return value.key_identifier if value else None

    @functools.cached_property
    def is_ca_crl(self) -> bool:
        """An ARL: the issuing distribution point says it covers only CA certificates."""
        idp = self.ext(x509.IssuingDistributionPoint)
        return bool(idp and idp.only_contains_ca_certs)

    def signed_with(self, public_key: Any) -> bool:
        try:
            return self.crl.is_signature_valid(public_key)
        except (TypeError, ValueError):
            return False

    @property
    def issuer(self) -> CertificateDoc | None:
        return self.corpus.issuer_of(self)

    @functools.cached_property
    def serials(self) -> frozenset[int]:
        return frozenset(r.serial_number for r in self.crl)


class OCSPDoc(_Doc):
    kind = DocKind.OCSP_RESPONSE

    def __init__(self, der: bytes, label: str, *, context_only: bool = False) -> None:
        super().__init__(der, label, context_only=context_only)
        self.response = ocsp.load_der_ocsp_response(der)

    @property
    def successful(self) -> bool:
        return self.response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL

    @functools.cached_property
    def basic(self) -> asn1_ocsp.BasicOCSPResponse:
        """The BasicOCSPResponse as parsed, bytes preserved (successful responses only)."""
        return asn1_ocsp.OCSPResponse.load(self.der)["response_bytes"]["response"].parsed

    @property
    def effective_time(self) -> dt.datetime | None:
        return self.response.produced_at_utc if self.successful else None

    @property
    def description(self) -> str:
        if not self.successful:
            return f"OCSP response ({self.response.response_status.name})"
        serials = ", ".join(f"{r.serial_number:x}" for r in self.response.responses)
        return f"OCSP response for serial {serials}"


Document = CertificateDoc | CRLDoc | OCSPDoc


def _signed_with(cert: x509.Certificate, public_key: Any) -> bool:
    try:
        hash_algorithm = cert.signature_hash_algorithm
    except Exception:  # UnsupportedAlgorithm
        return False
    return verifies(
        public_key,
        cert.signature,
        cert.tbs_certificate_bytes,
        hash_algorithm,
        cert.signature_algorithm_parameters,
    )


@functools.lru_cache(maxsize=256)
def _certificate_signed_with(der: bytes, spki: bytes) -> bool:
    """``_signed_with`` by the certificate's and the key's DER: the CA certificates given with
    every draft are checked once per process, not once per draft."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        cert = x509.load_der_x509_certificate(der)
    return _signed_with(cert, serialization.load_der_public_key(spki))


# -- the corpus
class Corpus:
    """Every document of one run plus context certificates (e.g. the CA certificates of the
    store); documents reach each other through it."""

    def __init__(
        self,
        documents: Iterable[Document],
        context: LintContext | None = None,
        extra_certificates: Iterable[x509.Certificate] = (),
    ) -> None:
        self.context = context or LintContext()
        self.documents: list[Document] = list(documents)
        seen = {d.der for d in self.documents}
        for cert in extra_certificates:
            der = cert.public_bytes(serialization.Encoding.DER)
            if der not in seen:
                seen.add(der)
                label = f"(given CA certificate {cert.subject.rfc4514_string()})"
                self.documents.append(CertificateDoc(der, label, context_only=True, parsed=cert))
        for doc in self.documents:
            doc.corpus = self
        self._issuers: dict[int, CertificateDoc | None] = {}

    @property
    def reported(self) -> list[Document]:
        return [d for d in self.documents if not d.context_only]

    @property
    def certificates(self) -> list[CertificateDoc]:
        return [d for d in self.documents if isinstance(d, CertificateDoc)]

    @property
    def ca_certificates(self) -> list[CertificateDoc]:
        """cA TRUE and no subscriber mark: a mis-marked subscriber certificate (C-12) is neither
        a generation nor a link of the rollover set."""
        return [d for d in self.certificates if d.is_ca and not d.subscriber_marks]

    @property
    def crls(self) -> list[CRLDoc]:
        return [d for d in self.documents if isinstance(d, CRLDoc)]

    def with_key(self, key: str) -> list[CertificateDoc]:
        return self._by_key.get(key, [])

    def with_serial(self, serial: int) -> list[CertificateDoc]:
        return self._by_serial.get(serial, [])

    @functools.cached_property
    def _by_key(self) -> dict[str, list[CertificateDoc]]:
        index: dict[str, list[CertificateDoc]] = {}
        for doc in self.certificates:
            index.setdefault(doc.key, []).append(doc)
        return index

    @functools.cached_property
    def _by_serial(self) -> dict[int, list[CertificateDoc]]:
        index: dict[int, list[CertificateDoc]] = {}
        for doc in self.certificates:
            index.setdefault(doc.serial, []).append(doc)
        return index

    def issuer_of(self, doc: CertificateDoc | CRLDoc) -> CertificateDoc | None:
        """The certificate whose key signed ``doc``: by AKI and name first, confirmed by the
        signature (in draft mode, where the signature is a throwaway's, by AKI and name only)."""
        if id(doc) in self._issuers:
            return self._issuers[id(doc)]
        found = self._find_issuer(doc)
        self._issuers[id(doc)] = found
        return found

    def _find_issuer(self, doc: CertificateDoc | CRLDoc) -> CertificateDoc | None:
        if isinstance(doc, CertificateDoc) and doc.self_signed:
            return doc
        issuer_name = (doc.cert if isinstance(doc, CertificateDoc) else doc.crl).issuer
        name = issuer_name.public_bytes()

        def rank(c: CertificateDoc) -> int:
            by_key = doc.aki is not None and c.ski == doc.aki
            by_name = c.cert.subject.public_bytes() == name
            return (0 if by_key else 2) + (0 if by_name else 1)

        candidates = sorted(
            (c for c in self.certificates if c is not doc and (c.is_ca or c.ski == doc.aki)),
            key=rank,
        )
        if self.context.draft and not doc.context_only:
            best = [c for c in candidates if rank(c) < 3]
            return best[0] if best else None
        for candidate in candidates:
            if doc.signed_with(candidate.cert.public_key()):
                return candidate
        return None

    @functools.cached_property
    def lineages(self) -> list[Any]:
        from jitsuin.conformance.lineage import analyse  # one module, imported when needed

        return analyse(self)


# -- loading files
@dataclass(frozen=True, slots=True)
class Unreadable:
    """A file or PEM block that holds no certificate, CRL or OCSP response we can read."""

    label: str
    reason: str


_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s]+")


def _from_der(der: bytes, label: str, hint: str | None = None) -> list[Document | Unreadable]:
    attempts: list[tuple[str, Callable[[], list[Document]]]] = [
        ("certificate", lambda: [CertificateDoc(der, label)]),
        ("crl", lambda: [CRLDoc(der, label)]),
        ("ocsp", lambda: [OCSPDoc(der, label)]),
        ("pkcs7", lambda: _pkcs7(der, label)),
    ]
    if hint is not None:
        attempts.sort(key=lambda a: a[0] != hint)
    for _, attempt in attempts:
        try:
            return list(attempt())
        except x509.InvalidVersion as exc:
            # RFC 5280 §4.1.2.1: only v1 and v3 certificates can be read at all.
            return [Unreadable(label, f"an X.509 certificate of an unknown version ({exc})")]
        except (ValueError, TypeError):
            continue
    return [Unreadable(label, "not a certificate, CRL, OCSP response or certs-only PKCS#7")]


def _pkcs7(der: bytes, label: str) -> list[Document]:
    certificates = pkcs7.load_der_pkcs7_certificates(der)
    if not certificates:
        raise ValueError("an empty PKCS#7")
    return [
        CertificateDoc(
            c.public_bytes(serialization.Encoding.DER),
            f"{label}#{i}" if len(certificates) > 1 else label,
            parsed=c,
        )
        for i, c in enumerate(certificates, 1)
    ]


_PEM_HINTS = {
    b"CERTIFICATE": "certificate",
    b"X509 CRL": "crl",
    b"OCSP RESPONSE": "ocsp",
    b"PKCS7": "pkcs7",
    b"CMS": "pkcs7",
}


def load_objects(data: bytes, label: str) -> list[Document | Unreadable]:
    """Every certificate, CRL and OCSP response in ``data``: DER, PEM (any number of blocks),
    or a bare base64 body (an EST reply)."""
    blocks = list(_PEM.finditer(data))
    if blocks:
        out: list[Document | Unreadable] = []
        for i, match in enumerate(blocks, 1):
            name = f"{label}#{i}" if len(blocks) > 1 else label
            kind = match.group(1)
            if kind.endswith(b"PRIVATE KEY") or kind in (b"CERTIFICATE REQUEST", b"PUBLIC KEY"):
                continue  # not something the linter judges
            try:
                der = base64.b64decode(re.sub(rb"\s+", b"", match.group(2)), validate=True)
            except (binascii.Error, ValueError):
                out.append(Unreadable(name, "a PEM block that is not valid base64"))
                continue
            out.extend(_from_der(der, name, _PEM_HINTS.get(kind)))
        return out
    if data[:1] == b"\x30":
        return _from_der(data, label)
    if data.strip() and _BASE64.fullmatch(data):
        try:
            der = base64.b64decode(re.sub(rb"\s+", b"", data), validate=True)
        except (binascii.Error, ValueError):
            return [Unreadable(label, "neither DER nor PEM")]
        return _from_der(der, label, "pkcs7")
    return [Unreadable(label, "neither DER nor PEM")]


def iter_documents(items: Sequence[Document | Unreadable]) -> Iterator[Document]:
    return (i for i in items if not isinstance(i, Unreadable))

"""Revocation status publication: CRLs (RFC 5280 §5) and OCSP responses (RFC 6960), signed by the
generation that issued the certificates, or for OCSP by its delegated responder (docs/conformance.md
D; S/MIME BR 4.9.7, 4.9.10, 7.2, 7.3)."""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from jitsuin.ca.generations import CAGeneration
from jitsuin.ca.keys import Signer
from jitsuin.ca.profiles import OCSP_RESPONDER_RENEW_BEFORE
from jitsuin.ca.signing import draft_crl, draft_ocsp, sign_draft_crl, sign_draft_ocsp

# SBR 4.9.7: a subscriber CRL is valid at most 10 days and reissued at least every 7 days.
CRL_VALIDITY = dt.timedelta(days=7)
CRL_REFRESH_AFTER = dt.timedelta(days=3, hours=12)
# SBR 4.9.10 (docs/conformance.md R-07): 8 hours <= validity <= 10 days; refreshed well before it
# ends.
OCSP_VALIDITY = dt.timedelta(days=3)
OCSP_REFRESH_AFTER = dt.timedelta(hours=12)
# RFC 5280 §3.3 / docs/conformance.md R-04: an entry stays until one CRL past the certificate's
# expiry.
CRL_KEEP_AFTER_EXPIRY = CRL_VALIDITY


class Reason(enum.Enum):
    """RFC 5280 §5.3.1 CRLReason, by the name the store records (cryptography's
    ``x509.ReasonFlags`` values), in the order of its codes (7 is unused). Who may give which
    reason is said once here, by the predicates below."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    CERTIFICATE_HOLD = "certificateHold"
    REMOVE_FROM_CRL = "removeFromCRL"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"
    AA_COMPROMISE = "aACompromise"

    @property
    def code(self) -> int:
        return _CODES[self]

    @property
    def flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags(self.value)

    @classmethod
    def named(cls, name: str | None) -> Reason | None:
        """The reason a record names, or None for none or a name RFC 5280 does not define."""
        try:
            return cls(name)
        except ValueError:
            return None

    @property
    def recorded(self) -> bool:
        """May the CA revoke a certificate for this reason? Never certificateHold (S/MIME BR
        4.9.13, 7.2.2), removeFromCRL or aACompromise (no attribute authorities here).
        ``unspecified`` is recorded, and published without a reasonCode (RFC 5280 §5.3.1)."""
        return self in _RECORDED

    @property
    def reason_code(self) -> int | None:
        """The reasonCode a CRL entry or OCSP answer carries: none for ``unspecified``
        (S/MIME BR 7.2.2: omit it instead; docs/conformance.md, R-03)."""
        return self.code if self.recorded and self is not Reason.UNSPECIFIED else None

    @property
    def subscriber_may_give(self) -> bool:
        """A reason a subscriber may claim (ACME revokeCert, RFC 8555 §7.6): not cACompromise,
        which is the CA's to say, and ``unspecified`` when they give none."""
        return self in _SUBSCRIBER

    @property
    def operator_may_give(self) -> bool:
        """A reason an RA operator may give for a subscriber's certificate: a subscriber's
        reasons, named (S/MIME BR 7.2.2 allows no unspecified reasonCode)."""
        return self.subscriber_may_give and self is not Reason.UNSPECIFIED

    def allowed_on_crl(self, *, ca_certificates: bool) -> bool:
        """May a CRL entry carry this reasonCode? S/MIME BR 7.2.2 lists one set for CRLs of
        subscriber certificates and another for CRLs of CA certificates."""
        return self in (_ON_CA_CRL if ca_certificates else _ON_SUBSCRIBER_CRL)


_CODES = {
    Reason.UNSPECIFIED: 0,
    Reason.KEY_COMPROMISE: 1,
    Reason.CA_COMPROMISE: 2,
    Reason.AFFILIATION_CHANGED: 3,
    Reason.SUPERSEDED: 4,
    Reason.CESSATION_OF_OPERATION: 5,
    Reason.CERTIFICATE_HOLD: 6,
    Reason.REMOVE_FROM_CRL: 8,
    Reason.PRIVILEGE_WITHDRAWN: 9,
    Reason.AA_COMPROMISE: 10,
}
assert set(_CODES) == set(Reason)
_SUBSCRIBER = frozenset(
    {
        Reason.UNSPECIFIED,
        Reason.KEY_COMPROMISE,
        Reason.AFFILIATION_CHANGED,
        Reason.SUPERSEDED,
        Reason.CESSATION_OF_OPERATION,
        Reason.PRIVILEGE_WITHDRAWN,
    }
)
_RECORDED = _SUBSCRIBER | {Reason.CA_COMPROMISE}
_ON_SUBSCRIBER_CRL = _SUBSCRIBER - {Reason.UNSPECIFIED}
_ON_CA_CRL = frozenset(
    {
        Reason.KEY_COMPROMISE,
        Reason.CA_COMPROMISE,
        Reason.AFFILIATION_CHANGED,
        Reason.SUPERSEDED,
        Reason.CESSATION_OF_OPERATION,
    }
)


@dataclass(frozen=True, slots=True)
class Revoked:
    serial: int
    revoked_at: dt.datetime
    reason: str | None
    not_after: dt.datetime


def build_crl(
    generation: CAGeneration,
    revoked: Sequence[Revoked],
    number: int,
    this_update: dt.datetime,
) -> bytes:
    """A v2 CRL of ``generation`` (RFC 5280 §5.1): issuer DN byte-identical to the CA
    certificate's subject, AKI = the signer's SKI, CRLNumber non-critical (docs/conformance.md
    R-01), reason codes non-critical and never unspecified (R-03), no empty revokedCertificates
    (R-04).

    cryptography builds the header and extensions; the revokedCertificates list is encoded here
    because the immutable builder copies its list on every addition (quadratic: 100 k entries take
    14 s, 1 M would take hours) and asn1crypto is slower still (50 s for 100 k)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(generation.certificate.subject)
        .last_update(this_update)
        .next_update(this_update + CRL_VALIDITY)
        .add_extension(
            x509.AuthorityKeyIdentifier(generation.key_identifier, None, None), critical=False
        )
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    signer = generation.signer
    draft = draft_crl(builder, signer)
    entries = [e for e in revoked if e.not_after + CRL_KEEP_AFTER_EXPIRY >= this_update]
    if not entries:
        return sign_draft_crl(draft, signer)
    tbs = asn1_crl.CertificateList.load(draft.public_bytes(serialization.Encoding.DER))[
        "tbs_cert_list"
    ]
    head = b"".join(
        tbs[name].dump()
        for name in ("version", "signature", "issuer", "this_update", "next_update")
    )
    tbs_der = _der(0x30, head + _revoked_certificates(entries) + tbs["crl_extensions"].dump())
    algorithm = asn1_crl.CertificateList.load(draft.public_bytes(serialization.Encoding.DER))[
        "signature_algorithm"
    ].dump()
    signature = _der(0x03, b"\x00" + signer.sign(tbs_der))
    return _der(0x30, tbs_der + algorithm + signature)


def _der(tag: int, body: bytes) -> bytes:
    """One DER TLV (X.690 §8.1: definite length, minimal length octets)."""
    length = len(body)
    if length < 0x80:
        return bytes((tag, length)) + body
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + body


def _time(moment: dt.datetime) -> bytes:
    """RFC 5280 §5.1.2.6 / §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""
    moment = moment.astimezone(dt.UTC)
    if moment.year < 2050:
        return _der(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())
    return _der(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())


_REASON_CODE_OID = bytes.fromhex("0603551d15")  # id-ce-cRLReasons, 2.5.29.21


def _revoked_certificates(entries: Sequence[Revoked]) -> bytes:
    out = []
    for entry in entries:
        serial = entry.serial.to_bytes((entry.serial.bit_length() + 8) // 8, "big")
        body = _der(0x02, serial) + _time(entry.revoked_at)
        reason = Reason.named(entry.reason)
        code = reason.reason_code if reason else None
        if code is not None:
            # crlEntryExtensions { reasonCode, not critical, ENUMERATED } (RFC 5280 §5.3.1)
            extension = _der(0x30, _REASON_CODE_OID + _der(0x04, _der(0x0A, bytes((code,)))))
            body += _der(0x30, extension)
        out.append(_der(0x30, body))
    return _der(0x30, b"".join(out))


# -- OCSP ------------------------------------------------------------------------------------------
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def issuer_hashes(generation: CAGeneration, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of RFC 6960 §4.1.1: the hashes of the DER issuer name and
    of the subjectPublicKey BIT STRING value."""
    return _issuer_hashes(generation.certificate, algorithm.name)


@functools.lru_cache(maxsize=64)
def _issuer_hashes(certificate: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    # Keyed by the certificate object (hashed and compared by its DER in cryptography): every
    # OCSP request looks its issuer up here, so nothing is re-encoded per request.
    name = certificate.subject.public_bytes()
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key = asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]  # drop unused-bits octet
    return hashlib.new(algorithm, name).digest(), hashlib.new(algorithm, key).digest()


@dataclass(frozen=True, slots=True)
class CertID:
    name_hash: bytes
    key_hash: bytes
    algorithm: hashes.HashAlgorithm
    serial: int
    nonce: bytes | None


class BadOCSPRequest(ValueError):
    pass


def parse_request(der: bytes) -> CertID:
    """One CertID per request (RFC 6960 §4.1.1; S/MIME BR responders may limit to one)."""
    try:
        request = ocsp.load_der_ocsp_request(der)
        algorithm_name = request.hash_algorithm.name
        nonce = None
        extensions = request.extensions
        if len(extensions):  # most requests have none (RFC 5019 §2.1.1: no nonce)
            with contextlib.suppress(x509.ExtensionNotFound):
                nonce = extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        cert_id = CertID(
            request.issuer_name_hash,
            request.issuer_key_hash,
            _HASHES[algorithm_name](),
            request.serial_number,
            nonce,
        )
    except (ValueError, KeyError, UnsupportedAlgorithm, NotImplementedError) as exc:
        # RFC 6960 §4.2.1: a request that cannot be read, a CertID hashed with an algorithm
        # this responder does not know included, is answered malformedRequest, unsigned; so is
        # one that asks about more than one certificate (cryptography: NotImplementedError).
        raise BadOCSPRequest(str(exc)) from exc
    if cert_id.serial < 0:  # RFC 5280 §4.1.2.2: serial numbers are positive
        raise BadOCSPRequest("the serial number is negative")
    if nonce is not None and not 1 <= len(nonce) <= 32:  # RFC 8954 §2.1
        raise BadOCSPRequest("the nonce must be 1 to 32 octets")
    return cert_id


def find_issuer(generations: Sequence[CAGeneration], cert_id: CertID) -> CAGeneration | None:
    for generation in generations:
        if issuer_hashes(generation, cert_id.algorithm) == (cert_id.name_hash, cert_id.key_hash):
            return generation
    return None


@dataclass(frozen=True, slots=True)
class DelegatedResponder:
    """A generation's delegated OCSP responder (RFC 6960 §4.2.2.2): its key, and the certificate
    the generation's CA key issued to it (id-kp-OCSPSigning, id-pkix-ocsp-nocheck)."""

    certificate: x509.Certificate
    signer: Signer

    def due(self, now: dt.datetime) -> bool:
        """Whether the certificate must be renewed: less than OCSP_RESPONDER_RENEW_BEFORE left,
        so a response it signs (valid OCSP_VALIDITY) never outlives it."""
        return now >= self.certificate.not_valid_after_utc - OCSP_RESPONDER_RENEW_BEFORE


def _reason_flag(name: str | None) -> x509.ReasonFlags | None:
    """The revocationReason of an OCSP answer: as on the CRL, none for ``unspecified``."""
    reason = Reason.named(name)
    return reason.flag if reason is not None and reason.reason_code is not None else None


def build_response(
    generation: CAGeneration,
    cert_id: CertID,
    status: str,
    this_update: dt.datetime,
    revoked_at: dt.datetime | None = None,
    reason: str | None = None,
    responder: DelegatedResponder | None = None,
) -> bytes:
    """A basic OCSP response signed by the issuing generation's own key, or by its delegated
    ``responder``, whose certificate then goes in the certs field (RFC 6960 §4.2.2.2;
    docs/conformance.md R-06), valid OCSP_VALIDITY (R-07). ``status`` is good, revoked or unknown; a
    serial this CA never issued is never good (R-08). No reasonCode singleExtension (R-08)."""
    cert_status = {
        "good": ocsp.OCSPCertStatus.GOOD,
        "revoked": ocsp.OCSPCertStatus.REVOKED,
        "unknown": ocsp.OCSPCertStatus.UNKNOWN,
    }[status]
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=cert_id.name_hash,
        issuer_key_hash=cert_id.key_hash,
        serial_number=cert_id.serial,
        algorithm=cert_id.algorithm,
        cert_status=cert_status,
        this_update=this_update,
        next_update=this_update + OCSP_VALIDITY,
        revocation_time=revoked_at if status == "revoked" else None,
        revocation_reason=_reason_flag(reason) if status == "revoked" else None,
    )
    if cert_id.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(cert_id.nonce), critical=False)
    if responder is None:
        signer, certs = generation.signer, []
    else:
        signer, certs = responder.signer, [responder.certificate]
    return sign_draft_ocsp(draft_ocsp(builder, signer), signer, certs, produced_at=this_update)


def unsuccessful(status: str) -> bytes:
    """malformedRequest, internalError, tryLater or unauthorized (RFC 6960 §4.2.1)."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus[status.upper()]
    ).public_bytes(serialization.Encoding.DER)

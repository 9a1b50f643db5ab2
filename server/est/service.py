"""Re-enrollment (RFC 7030 §4.2.2) with the current certificate as the credential. A renewal is
always a re-key (SEED-R2); whether it waits for an operator is a per-profile policy."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from cryptography import x509

from jitsuin.ca.csr import VerifiedCSR, verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import issuing_generation
from jitsuin.ca.subject import VettedSubject, vetted_from_subject
from jitsuin.server.authority import Authority
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.storage import AuditEvent, Conflict, NotFound, ReenrollmentRecord


class Settled(enum.StrEnum):
    """How a re-enrollment request stands for the client that sent it."""

    ISSUED = "issued"  # the certificate is in the reply
    PENDING = "pending"  # waiting for an operator: the client retries later (RFC 7030 §4.2.3)


@dataclass(frozen=True, slots=True)
class Reenrolled:
    status: Settled
    certificate_der: bytes | None  # with ISSUED only
    request_id: int


def vetted_from_certificate(authority: Authority, cert: x509.Certificate) -> VettedSubject:
    """The subject of a certificate this CA issued is the vetted record it was issued from
    (the inverse of its making: ca/subject.py)."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    email = san.get_values_for_type(x509.RFC822Name)[0]
    return vetted_from_subject(cert.subject, email, authority.config.ca.groups.values())


def _same_identity(csr: VerifiedCSR, cert: x509.Certificate) -> str | None:
    """RFC 7030 §4.2.2: the CSR's Subject and SubjectAltName must equal the certificate's.
    An empty subject without SAN is taken as "the same" (the CA fills it in)."""
    if len(csr.requested_subject) == 0 and not csr.requested_emails:
        return None
    if csr.requested_subject.public_bytes() != cert.subject.public_bytes():
        return "the CSR subject differs from the certificate being renewed"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if sorted(csr.requested_emails) != sorted(san.get_values_for_type(x509.RFC822Name)):
        return "the CSR subjectAltName differs from the certificate being renewed"
    return None


class Reenrollment:
    def __init__(self, authority: Authority, approval_profiles: frozenset[str]) -> None:
        self.authority = authority
        self.store = authority.store
        self.clock = authority.clock
        self.approval_profiles = approval_profiles

    async def reenroll(
        self,
        peer_der: bytes,
        csr_der: bytes,
        *,
        identity_checked: bool = False,
        profile: str | None = None,
    ) -> Reenrolled:
        """``identity_checked``: the caller (ACME, whose order names the identifiers) has already
        matched the CSR to the certificate being renewed; the subject comes from it anyway.
        ``profile``: the EST label the request came under, which must be the certificate's."""
        peer = x509.load_der_x509_certificate(peer_der)
        generation = issuing_generation(peer, self.authority.generations)
        if generation is None:
            raise RAError(RAKind.UNAUTHORIZED, "the client certificate was not issued by this CA")
        serial_hex = format(peer.serial_number, "x")
        try:
            record = await self.store.certificate(generation.number, peer.serial_number)
        except NotFound:
            raise RAError(
                RAKind.UNAUTHORIZED, "the client certificate is unknown to this CA"
            ) from None
        if record.status != "valid":
            raise RAError(RAKind.FORBIDDEN, "the client certificate has been revoked")
        now = self.clock.now()
        if not record.not_before <= now <= record.not_after:
            raise RAError(RAKind.UNAUTHORIZED, "the client certificate is not valid now")
        if record.subscriber_id is None or record.profile == "tls-server":
            raise RAError(RAKind.FORBIDDEN, "only personal certificates are re-enrolled here")
        if profile is not None and profile != record.profile:
            # RFC 7030 §3.2.2: the label selects the CA's profile; a renewal keeps the profile
            # the person was vetted for, so another label is refused, as in simpleenroll.
            raise RAError(
                RAKind.INVALID,
                f"this is a {record.profile} certificate: re-enroll under the {record.profile} "
                f"label (/.well-known/est/{record.profile}/simplereenroll)",
            )
        csr = verify_csr(csr_der)
        problem = None if identity_checked else _same_identity(csr, peer)
        if problem:
            raise RAError(RAKind.FORBIDDEN, problem)
        actor = f"subscriber:{record.subscriber_id}"
        csr_hash = hashlib.sha256(csr_der).hexdigest()
        request = await self.store.reenrollment(generation.number, serial_hex, csr_hash)
        if request is None:
            if csr.spki_sha256 in await self.store.used_keys(record.subscriber_id):
                raise CAError(
                    Kind.KEY_REUSED,
                    "re-enrollment needs a new key pair: this key was certified before (SEED-R2)",
                )
            pending = record.profile in self.approval_profiles
            try:
                request = await self.store.add_reenrollment(
                    ReenrollmentRecord(
                        id=0,
                        previous_generation=generation.number,
                        previous_serial=serial_hex,
                        csr_sha256=csr_hash,
                        csr_der=csr_der,
                        profile=record.profile,
                        subscriber_id=record.subscriber_id,
                        status="pending" if pending else "approved",
                        created_at=now,
                    ),
                    AuditEvent(
                        now,
                        actor,
                        "reenrollment.request",
                        f"generation/{generation.number}/serial/{serial_hex}",
                        {"pending": pending},
                    ),
                )
            except Conflict:  # the same CSR raced in twice
                request = await self.store.reenrollment(generation.number, serial_hex, csr_hash)
                assert request is not None
        return await self._settle(request, peer, csr, actor)

    async def _settle(
        self, request: ReenrollmentRecord, peer: x509.Certificate, csr: VerifiedCSR, actor: str
    ) -> Reenrolled:
        if request.status == "issued":
            return await self._stored(request)
        if request.status == "pending":
            return Reenrolled(Settled.PENDING, None, request.id)
        if request.status == "rejected":
            raise RAError(RAKind.FORBIDDEN, "an operator rejected this re-enrollment request")
        subject = vetted_from_certificate(self.authority, peer)
        target = f"reenrollment/{request.id}"
        issued = await self.authority.sign_personal(
            csr, subject, request.profile, requester=actor, target=target
        )
        try:
            await self.store.complete_reenrollment(
                request.id,
                self.authority.certificate_record(issued, subject.subscriber_id, subject.email),
                AuditEvent(
                    self.clock.now(),
                    actor,
                    "certificate.reenroll",
                    f"generation/{issued.generation}/serial/{issued.serial:x}",
                    {"request": request.id, "previous": request.previous_serial},
                ),
            )
        except Conflict as exc:  # issued by a concurrent retry: return that one
            await self.authority.discard(issued, actor, target, str(exc))
            return await self._stored(await self.store.reenrollment_by_id(request.id))
        return Reenrolled(Settled.ISSUED, issued.der, request.id)

    async def _stored(self, request: ReenrollmentRecord) -> Reenrolled:
        assert request.certificate_generation is not None and request.certificate_serial
        cert = await self.store.certificate(
            request.certificate_generation, int(request.certificate_serial, 16)
        )
        return Reenrolled(Settled.ISSUED, cert.der, request.id)

    async def decide(self, request_id: int, approve: bool, operator: str) -> None:
        now = self.clock.now()
        status = "approved" if approve else "rejected"
        try:
            await self.store.decide_reenrollment(
                request_id,
                status,
                operator,
                now,
                AuditEvent(now, operator, f"reenrollment.{status}", f"reenrollment/{request_id}"),
            )
        except NotFound:
            raise RAError(RAKind.NOT_FOUND, f"there is no re-enrollment {request_id}") from None
        except Conflict as exc:
            raise RAError(RAKind.CONFLICT, str(exc)) from None

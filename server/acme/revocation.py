"""Revocation (RFC 8555 §7.6) and renewal information (ARI, RFC 9773)."""

from __future__ import annotations

from collections.abc import Mapping

from cryptography import x509

from jitsuin.ca.generations import issuing_generation
from jitsuin.ca.revocation import Reason
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.ari import RETRY_AFTER_SECONDS, suggested_window
from jitsuin.protocol.acme.messages import Identifier
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.server.acme.common import (
    Reply,
    Verified,
    generation_by_key_id,
    not_found,
    unauthorized,
)
from jitsuin.server.authority import Authority
from jitsuin.server.storage import Conflict, NotFound

# RFC 5280 §5.3.1 reason codes a subscriber may give in revokeCert (§7.6), by ca/revocation.py.
REVOCATION_REASONS: Mapping[int, str] = {r.code: r.value for r in Reason if r.subscriber_may_give}


class Revocation:
    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        self.store = authority.store
        self.clock = authority.clock

    async def revoke(self, verified: Verified) -> Reply:
        request = messages.parse_revocation(verified.payload())
        try:
            cert = x509.load_der_x509_certificate(request.certificate_der)
        except ValueError:
            raise messages.malformed("the certificate is not DER X.509") from None
        reason = REVOCATION_REASONS.get(request.reason if request.reason is not None else 0)
        if reason is None:
            allowed = ", ".join(str(c) for c in REVOCATION_REASONS)
            raise AcmeError(
                ErrorType.BAD_REVOCATION_REASON,
                f"reason code {request.reason} is not accepted; use one of {allowed} "
                "(RFC 5280 §5.3.1)",
            )
        generation = issuing_generation(cert, self.authority.generations)
        if generation is None:
            raise not_found("certificate issued by this CA")
        try:
            record = await self.store.certificate(generation.number, cert.serial_number)
        except NotFound:
            raise not_found("certificate issued by this CA") from None
        if record.der != request.certificate_der:
            raise not_found("certificate issued by this CA")
        actor = await self._actor(verified, cert, generation.number)
        if record.status == "revoked":
            raise AcmeError(ErrorType.ALREADY_REVOKED, "the certificate is already revoked")
        try:
            await self.authority.revoke(generation.number, cert.serial_number, reason, actor)
        except Conflict:
            raise AcmeError(
                ErrorType.ALREADY_REVOKED, "the certificate is already revoked"
            ) from None
        return Reply(b"", content_type="application/octet-stream")

    async def _actor(self, verified: Verified, cert: x509.Certificate, generation: int) -> str:
        """§7.6: the issuing account, an account holding valid authorizations for every
        identifier in the certificate, or the certificate's own key."""
        if verified.jwk is not None:
            if not verified.jwk.same_key(cert.public_key()):  # type: ignore[arg-type]
                raise unauthorized("the JWS key is not the certificate's key")
            return "acme:certificate-key"
        account = verified.owner()
        order = await self.store.acme_order_by_certificate(generation, cert.serial_number)
        if order is not None and order.account_id == account.id:
            return f"acme:{account.id}"
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise unauthorized("this account may not revoke the certificate") from None
        identifiers = [Identifier("dns", n) for n in san.get_values_for_type(x509.DNSName)]
        identifiers += [Identifier("ip", str(a)) for a in san.get_values_for_type(x509.IPAddress)]
        identifiers += [
            Identifier("email", e.lower()) for e in san.get_values_for_type(x509.RFC822Name)
        ]
        now = self.clock.now()
        for identifier in identifiers:
            base = identifier.base
            if not await self.store.acme_reusable_authorization(
                account.id, base.type, base.value, identifier.wildcard, now
            ):
                raise unauthorized(
                    f"this account neither ordered the certificate nor holds a valid "
                    f"authorization for {identifier.value}"
                )
        if not identifiers:
            raise unauthorized("this account may not revoke the certificate")
        return f"acme:{account.id}"

    async def renewal_info(self, cert_id: str) -> Reply:
        """RFC 9773 §4.1: the suggested window of a certificate of this CA."""
        key_id, serial = messages.parse_ari_cert_id(cert_id)
        number = generation_by_key_id(self.authority.generations, key_id)
        if number is None:
            raise not_found("certificate")
        try:
            record = await self.store.certificate(number, serial)
        except NotFound:
            raise not_found("certificate") from None
        start, end = suggested_window(
            record.not_before,
            record.not_after,
            self.clock.now(),
            renew_now=record.status == "revoked" or number != self.authority.current.number,
        )
        body = {"suggestedWindow": {"start": messages.rfc3339(start), "end": messages.rfc3339(end)}}
        return Reply(body, retry_after=RETRY_AFTER_SECONDS)

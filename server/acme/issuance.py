"""Finalize and issue (RFC 8555 §7.4), and the certificate download (§7.4.2).

A personal order is issued through the RA: its first certificate redeems the application in the
RA's own transaction (consuming the PIN too); later ones are renewals under the RA's
re-enrollment policy, which may wait for an operator (``processing`` + Retry-After). A tls-server
order is signed here, under its EAB key's policy."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.chains import chains
from jitsuin.ca.csr import VerifiedCSR, verify_csr
from jitsuin.ca.errors import CAError
from jitsuin.ca.generations import issuing_generation
from jitsuin.ca.issuance import check_public_key, profile_named
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.messages import Identifier
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.acme.status import OrderStatus
from jitsuin.server.acme import policy
from jitsuin.server.acme.common import PERSONAL, Reply, Verified, not_found
from jitsuin.server.acme.errors import from_ca, from_ra
from jitsuin.server.acme.orders import Orders
from jitsuin.server.acme.requests import RequestVerifier
from jitsuin.server.acme.transitions import finalize_order, issue_order
from jitsuin.server.authority import Authority
from jitsuin.server.est.service import Reenrollment, Settled
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.service import RAService, contradicts
from jitsuin.server.storage import AcmeAccountRecord, AcmeOrderRecord, AuditEvent, Conflict

# What a personal order records as its re-enrollment request while its application's first
# certificate waits for the RA (no re-enrollment request exists yet).
_AWAITING_RA = -1


@dataclass(frozen=True, slots=True)
class _Issued:
    generation: int
    serial: int


@dataclass(frozen=True, slots=True)
class _Waiting:
    """The RA holds the request for an operator (§7.4: the order stays processing)."""

    request_id: int


class Issuance:
    def __init__(
        self,
        authority: Authority,
        ra: RAService,
        reenrollment: Reenrollment,
        requests: RequestVerifier,
        orders: Orders,
    ) -> None:
        self.authority = authority
        self.store = authority.store
        self.clock = authority.clock
        self.ra = ra
        self.reenrollment = reenrollment
        self.requests = requests
        self.orders = orders
        self._issuing: set[str] = set()

    async def finalize(self, verified: Verified, order_id: str) -> Reply:
        order = await self.orders.refresh(await self.orders.owned(verified, order_id))
        account = verified.owner()
        if order.status != OrderStatus.READY:
            raise AcmeError(
                ErrorType.ORDER_NOT_READY,
                f"the order is {order.status}, not ready (§7.4)",
            )
        csr_der = messages.parse_finalize(verified.payload())
        try:
            csr = x509.load_der_x509_csr(csr_der)
        except ValueError:
            raise AcmeError(ErrorType.BAD_CSR, "the csr is not a DER PKCS#10 request") from None
        _check_csr_identifiers(order, csr, account.kind == PERSONAL)
        if self.requests.account_key(account).same_key(csr.public_key()):  # type: ignore[arg-type]
            raise AcmeError(ErrorType.BAD_CSR, "the CSR must not use the account key")
        try:
            verified_csr = verify_csr(csr_der)
        except CAError as exc:
            raise from_ca(exc) from None
        _refuse_must_staple(csr)
        # Refused before the order moves on, so that the client can send a better CSR.
        try:
            check_public_key(profile_named(order.profile), verified_csr.public_key)
        except CAError as exc:
            raise from_ca(exc) from None
        if account.kind == PERSONAL:
            contradiction = contradicts(verified_csr, await policy.application(self.store, account))
            if contradiction:
                raise AcmeError(ErrorType.BAD_CSR, contradiction)
        now = self.clock.now()
        try:
            order = await finalize_order(
                self.store,
                order,
                csr_der,
                now,
                AuditEvent(
                    now, f"acme:{account.id}", "acme.order.finalize", f"acme/order/{order.id}"
                ),
            )
        except Conflict:
            raise AcmeError(
                ErrorType.ORDER_NOT_READY, "the order was finalized meanwhile"
            ) from None
        return self.orders.reply(await self.complete(order, verified_csr))

    async def complete(
        self, order: AcmeOrderRecord, csr: VerifiedCSR | None = None
    ) -> AcmeOrderRecord:
        """processing -> valid (or -> invalid). Safe to call again for the same order: every
        path finds the certificate an earlier call made. Within this process one issuance per
        order runs at a time (a poll during finalize does not sign twice)."""
        if order.id in self._issuing:
            return order
        self._issuing.add(order.id)
        try:
            return await self._issue_once(order, csr)
        finally:
            self._issuing.discard(order.id)

    async def _issue_once(
        self, order: AcmeOrderRecord, csr: VerifiedCSR | None = None
    ) -> AcmeOrderRecord:
        """``csr``: ``order.csr_der`` as finalize just verified it (None: verified here)."""
        account = await self.requests.account(order.account_id)
        assert order.csr_der is not None
        try:
            if account.kind == PERSONAL:
                outcome = await self._issue_personal(account, order)
                if isinstance(outcome, _Waiting):
                    if order.reenrollment_id != outcome.request_id:
                        order = await self.store.acme_await_reenrollment(
                            order.id, OrderStatus.PROCESSING, outcome.request_id, self.clock.now()
                        )
                    return order
                return await issue_order(
                    self.store, order, outcome.generation, outcome.serial, self.clock.now()
                )
            return await self._issue_tls(account, order, csr)
        except Conflict:
            return await self.store.acme_order(order.id)
        except (AcmeError, CAError, RAError) as exc:
            error = (
                exc
                if isinstance(exc, AcmeError)
                else (from_ca(exc) if isinstance(exc, CAError) else from_ra(exc))
            )
            failed = await self.orders.fail(order, error)
            if failed.status == OrderStatus.INVALID:
                raise error from None
            return failed

    async def _issue_personal(
        self, account: AcmeAccountRecord, order: AcmeOrderRecord
    ) -> _Issued | _Waiting:
        assert order.csr_der is not None
        app = await policy.application(self.store, account)
        previous = await self._previous_certificate(account, order)
        if previous is None:
            # The first certificate: step 10 through the RA's own transaction.
            try:
                redeemed = await self.ra.redeem_by_eab(
                    app.enrollment_id or "", order.csr_der, "acme"
                )
            except RAError as exc:
                if exc.kind is RAKind.PENDING:
                    return _Waiting(_AWAITING_RA)
                raise
            return self._issued(redeemed.certificate_der)
        # A renewal (docs/flow.md: "new order on the same account"): the RA's re-enrollment
        # policy, which may hold it for an operator (processing + Retry-After, §7.4).
        result = await self.reenrollment.reenroll(previous, order.csr_der, identity_checked=True)
        if result.status is Settled.PENDING:
            return _Waiting(result.request_id)
        assert result.certificate_der is not None
        return self._issued(result.certificate_der)

    def _issued(self, der: bytes) -> _Issued:
        cert = x509.load_der_x509_certificate(der)
        generation = issuing_generation(cert, self.authority.generations)
        assert generation is not None
        return _Issued(generation.number, cert.serial_number)

    async def _previous_certificate(
        self, account: AcmeAccountRecord, order: AcmeOrderRecord
    ) -> bytes | None:
        """The newest certificate this account obtained before ``order``, if any."""
        newest = None
        after = 0
        while page := await self.store.acme_orders(account.id, after, 200):
            for other in page:
                if other.id != order.id and other.certificate_serial is not None:
                    newest = other
            after = page[-1].seq
        if newest is None or newest.certificate_generation is None:
            return None
        record = await self.store.certificate(
            newest.certificate_generation, int(newest.certificate_serial or "0", 16)
        )
        return record.der

    async def _issue_tls(
        self, account: AcmeAccountRecord, order: AcmeOrderRecord, csr: VerifiedCSR | None = None
    ) -> AcmeOrderRecord:
        assert order.csr_der is not None
        key = await policy.eab_policy(self.store, account)
        if csr is None:
            csr = verify_csr(order.csr_der)
        dns = [v for t, v in order.identifiers if t == "dns"]
        ips = [ipaddress.ip_address(v) for t, v in order.identifiers if t == "ip"]
        actor, target = f"acme:{account.id}", f"acme-order/{order.id}"
        issued = await self.authority.sign_tls_server(
            csr.public_key,
            dns,
            ips,
            dt.timedelta(days=key.lifetime_days),
            requester=actor,
            target=target,
        )
        now = self.clock.now()
        try:
            return await issue_order(
                self.store,
                order,
                issued.generation,
                issued.serial,
                now,
                AuditEvent(
                    now,
                    actor,
                    "certificate.issue",
                    f"generation/{issued.generation}/serial/{issued.serial:x}",
                    {"profile": issued.profile, "order": order.id, "eabKid": account.eab_kid},
                ),
                certificate=self.authority.certificate_record(issued, None, None),
            )
        except Conflict as exc:  # another process finalized the order first
            await self.authority.discard(issued, actor, target, str(exc))
            raise

    async def certificate(
        self, verified: Verified, order_id: str, alternate: int, accept: str
    ) -> Reply:
        """§7.4.2: the chain to the issuing generation, or an alternate chain to another."""
        order = await self.orders.owned(verified, order_id)
        if not verified.post_as_get:
            raise messages.malformed("a certificate is downloaded with POST-as-GET (§7.4.2)")
        if order.status != OrderStatus.VALID or order.certificate_generation is None:
            raise not_found("certificate")
        record = await self.store.certificate(
            order.certificate_generation, int(order.certificate_serial or "0", 16)
        )
        leaf = x509.load_der_x509_certificate(record.der)
        # The store recorded which generation signed it: found by number, with no signature
        # check (a P-384 verification is most of a download's CPU), which a certificate that a
        # client presents needs and this one, read from the store, does not.
        issuing = self.authority.generation(record.generation)
        if issuing is None and await self.authority.refresh():  # a rollover made elsewhere
            issuing = self.authority.generation(record.generation)
        found = chains(leaf, issuing, self.authority.generations, self.authority.links)
        if alternate >= len(found):
            raise not_found("certificate chain")
        chain = found[alternate]
        links = [
            (self.orders.urls.certificate(order.id, n), "alternate")
            for n in range(len(found))
            if n != alternate
        ]
        media = _negotiate(accept)
        if media == "application/pkix-cert":
            body: bytes = record.der
        else:
            body = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
        return Reply(body, links=links, content_type=media)


def _check_csr_identifiers(
    order: AcmeOrderRecord, csr: x509.CertificateSigningRequest, personal: bool
) -> None:
    wanted = {Identifier(t, v) for t, v in order.identifiers}
    found, common_names = messages.csr_identifiers(csr)
    if found != wanted:
        missing = sorted(i.value for i in wanted - found)
        extra = sorted(i.value for i in found - wanted)
        raise AcmeError(
            ErrorType.BAD_CSR,
            "the CSR must name exactly the order's identifiers (§7.4)"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; not in the order {', '.join(extra)}" if extra else ""),
        )
    values = {i.value for i in wanted}
    for name in common_names:
        # A personal certificate's subject comes from the vetted record; the RA checks that
        # a CSR's common name does not contradict it.
        if name.lower() not in values and not personal:
            raise AcmeError(ErrorType.BAD_CSR, f"the CSR common name {name!r} is not ordered")


def _refuse_must_staple(csr: x509.CertificateSigningRequest) -> None:
    """A CSR asking for the TLS Feature extension (RFC 7633, OCSP must-staple) is refused with
    badCSR instead of being issued without it: a client that asked for must-staple relies on it,
    and the certificate would silently lack it. jitsuin's profiles never carry the extension
    (as Let's Encrypt, which refuses such orders since 2025)."""
    try:
        csr.extensions.get_extension_for_class(x509.TLSFeature)
    except x509.ExtensionNotFound:
        return
    raise AcmeError(
        ErrorType.BAD_CSR,
        "the CSR asks for the TLS Feature extension (OCSP must-staple, RFC 7633), which this CA "
        "does not issue: send a CSR without it (certbot: leave out --must-staple)",
    )


def _negotiate(accept: str) -> str:
    """§7.4.2: PEM chain by default; DER of the leaf for application/pkix-cert."""
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    for media in offered:
        if media in ("application/pem-certificate-chain", "*/*", "application/*", ""):
            return "application/pem-certificate-chain"
        if media == "application/pkix-cert":
            return media
    if not offered:
        return "application/pem-certificate-chain"
    raise AcmeError(
        ErrorType.MALFORMED,
        "certificates are served as application/pem-certificate-chain or application/pkix-cert",
        status=406,
    )

"""The CA as the server runs it: the store, the current generation's signer, the issuer and the
pre-issuance lint wired together. The CA core decides; this facade keeps records.

``Authority`` is one object for its callers, put together from parts of its own (server/ca_state.py
lists them). This module opens the CA and holds issuance: every signature of a certificate by a CA
key in the server goes through ``sign_personal`` or ``sign_tls_server`` here, with its signing
intent reserved before the signature, and its record and audit entry after."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging

from jitsuin.ca.clock import Clock
from jitsuin.ca.csr import VerifiedCSR, verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.issuance import Intent, IssuedCertificate, Reserve
from jitsuin.ca.keys import PublicKey
from jitsuin.ca.subject import VettedSubject
from jitsuin.server.ca_keys import create_first_generation, load_generation
from jitsuin.server.ca_refresh import FollowsOtherProcesses
from jitsuin.server.ca_rollover import Rollovers
from jitsuin.server.ca_state import links_from
from jitsuin.server.config import Config
from jitsuin.server.lint_pool import LintProcesses, issuer_for, lint_processes
from jitsuin.server.revocation_status import RevocationStatus
from jitsuin.server.storage import (
    AuditEvent,
    CertificateRecord,
    Conflict,
    IntentRecord,
    StoreError,
    open_store,
)
from jitsuin.server.tls_files import TLSFiles

__all__ = ["Authority", "LintProcesses"]


class Authority(FollowsOtherProcesses, Rollovers, RevocationStatus, TLSFiles):
    """The running CA: its state (server/ca_state.py) and every part of it, as one object."""

    @classmethod
    async def open(cls, config: Config, clock: Clock, *, create: bool = True) -> Authority:
        """Open the store and the CA; with ``create``, make generation 1 on first start."""
        config.home.mkdir(parents=True, exist_ok=True)
        store = await open_store(config)
        pool: LintProcesses | None = None
        try:
            records = await store.generations()
            if not records:
                if not create:
                    raise CAError(Kind.BAD_CONFIG, f"no CA in {config.home}: run `jitsuin init`")
                records = [await create_first_generation(config, store, clock)]
            generations = [load_generation(config, r) for r in records]
            links = links_from(await store.links())
            pool = lint_processes(config)
            issuer = issuer_for(config, generations[-1], clock, pool)
        except BaseException:
            await store.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            raise
        return cls(config, store, clock, generations, issuer, links, lint_pool=pool)

    async def close(self) -> None:
        await self.store.close()
        if self.lint_pool is not None:
            self.lint_pool.shutdown(cancel_futures=True)

    # -- issuance ------------------------------------------------------------------------------
    def _reserver(self, requester: str, target: str) -> Reserve:
        """The hook the issuer calls before the CA key signs: it records the intent (serial,
        generation, profile, TBS hash, who and what for) and waits for the commit, so that a
        crash after the signature leaves a reserved intent, never silence. It runs in the
        signing worker thread and writes through this event loop."""
        loop = asyncio.get_running_loop()

        def reserve(intent: Intent) -> bool:
            record = IntentRecord(
                generation=intent.generation,
                serial=intent.serial,
                profile=intent.profile,
                tbs_sha256=intent.tbs_sha256,
                requester=requester,
                target=target,
                reserved_at=self.clock.now(),
            )
            try:
                asyncio.run_coroutine_threadsafe(self.store.reserve_intent(record), loop).result()
            except Conflict:  # the serial is reserved or certified already: draw another
                return False
            return True

        return reserve

    async def sign_personal(
        self,
        csr: VerifiedCSR,
        subject: VettedSubject,
        profile: str,
        *,
        requester: str,
        target: str,
    ) -> IssuedCertificate:
        """Issue from the vetted record; only the signing intent is recorded yet. SEED-R2: the
        subscriber's earlier keys are looked up so that a renewal is always a re-key.
        Generations added by another process are loaded first, so no process issues from a
        superseded one."""
        await self.refresh()
        used = await self.store.used_keys(subject.subscriber_id)
        reserve = self._reserver(requester, target)
        try:
            return await asyncio.to_thread(
                self.issuer.issue, csr, subject, profile, used, reserve=reserve
            )
        except CAError as exc:
            if exc.kind is Kind.LINT:  # SBR 4.3.1.2: a draft the lint refused leaves a trace
                await self.store.append_audit(
                    AuditEvent(
                        self.clock.now(),
                        "system",
                        "certificate.lint_refused",
                        f"subscriber/{subject.subscriber_id}",
                        {"profile": profile, "findings": exc.message},
                    )
                )
            raise

    async def sign_tls_server(
        self,
        public_key: PublicKey,
        dns: list[str],
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
        validity: dt.timedelta | None = None,
        *,
        requester: str,
        target: str,
    ) -> IssuedCertificate:
        """A tls-server certificate; as ``sign_personal``, only its signing intent is recorded."""
        await self.refresh()  # never issue from a generation another process retired
        return await asyncio.to_thread(
            self.issuer.issue_tls_server,
            public_key,
            dns,
            ips,
            validity,
            reserve=self._reserver(requester, target),
        )

    async def discard(self, issued: IssuedCertificate, actor: str, target: str, why: str) -> None:
        """Settle the intent of a certificate that was signed but will never be handed out (the
        request was answered by another signature meanwhile), with an audit entry carrying its
        serial: no signature of the CA key goes unaccounted for."""
        now = self.clock.now()
        try:
            await self.store.discard_intent(
                issued.generation,
                issued.serial,
                now,
                AuditEvent(
                    now,
                    actor,
                    "certificate.discarded",
                    target,
                    {
                        "serial": format(issued.serial, "x"),
                        "generation": issued.generation,
                        "profile": issued.profile,
                        "reason": why,
                    },
                ),
            )
        except StoreError:  # the intent stays reserved: audit verify still lists it
            logging.getLogger("jitsuin.ca").exception(
                "could not settle the discarded signature of serial %x", issued.serial
            )

    async def issue_personal(
        self, csr_data: bytes, subject: VettedSubject, profile: str, actor: str
    ) -> IssuedCertificate:
        """The operator path: verify the CSR, issue, and record the certificate with its audit
        entry in one transaction. A refusal raises ``CAError`` and writes nothing but the
        signing intent (settled as discarded when the store refuses the certificate)."""
        target = f"subscriber/{subject.subscriber_id}"
        issued = await self.sign_personal(
            verify_csr(csr_data), subject, profile, requester=actor, target=target
        )
        await self._record(issued, subject.subscriber_id, subject.email, actor, target)
        return issued

    def certificate_record(
        self, issued: IssuedCertificate, subscriber_id: str | None, email: str | None
    ) -> CertificateRecord:
        return CertificateRecord(
            generation=issued.generation,
            serial=issued.serial,
            der=issued.der,
            subscriber_id=subscriber_id,
            subject=issued.certificate.subject.rfc4514_string(),
            email=email,
            profile=issued.profile,
            not_before=issued.not_before,
            not_after=issued.not_after,
            issued_at=self.clock.now(),
            spki_sha256=issued.spki_sha256,
        )

    async def _record(
        self,
        issued: IssuedCertificate,
        subscriber_id: str | None,
        email: str | None,
        actor: str,
        target: str,
        details: dict[str, object] | None = None,
    ) -> None:
        try:
            await self.store.record_certificate(
                self.certificate_record(issued, subscriber_id, email),
                AuditEvent(
                    at=self.clock.now(),
                    actor=actor,
                    action="certificate.issue",
                    target=f"generation/{issued.generation}/serial/{issued.serial:x}",
                    details={
                        "profile": issued.profile,
                        "subscriber_id": subscriber_id,
                        **(details or {}),
                    },
                ),
            )
        except Conflict as exc:
            # Two requests with one key raced past the used_keys check (SEED-R2).
            await self.discard(issued, actor, target, str(exc))
            raise CAError(Kind.KEY_REUSED, str(exc)) from exc

"""Seed step 10: the certificate against the PIN (EST, the web page) or the EAB key (ACME), issued
from the vetted record and committed with the spent PIN in one transaction (SEED-R13). The seed's
last stage is server/ra/closing.py.

A new workflow step of this stage is a method here that checks its permission and calls
``self.move`` (server/ra/base.py); next, declare that permission in server/ra/permissions.py."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass

from jitsuin.ca.csr import VerifiedCSR, verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.issuance import IssuedCertificate
from jitsuin.server.ra.base import PURPOSE_PIN, RETRIES, RABase, contradicts
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.workflow import ISSUED_OR_LATER, REDEEMABLE, Event, still_ahead
from jitsuin.server.storage import ApplicationRecord, Credential

# Not approved yet: the client waits (EST 202, ACME processing).
_BEFORE_APPROVAL = still_ahead(Event.APPROVE)


@dataclass(frozen=True, slots=True)
class Redeemed:
    application: ApplicationRecord
    certificate_der: bytes
    repeated: bool  # a retry after a lost response: the same certificate again


def _same_pin_unspent(before: ApplicationRecord, after: ApplicationRecord) -> bool:
    """The application can still be redeemed with the PIN checked against ``before``: waiting
    for pickup (approved or pin_sent), the same PIN, not spent, not reissued (SEED-R13)."""
    return (
        after.state in REDEEMABLE
        and after.pin_hash == before.pin_hash
        and after.pin_expires_at == before.pin_expires_at
        and after.pin_used_at is None
        and after.certificate_serial is None
    )


class Redemption(RABase):
    async def redeem(
        self,
        enrollment_id: str,
        pin: str,
        csr_data: bytes,
        channel: str,
        source: str,
        profile: str | None = None,
    ) -> Redeemed:
        """Check the PIN (``check_pin``), issue from the vetted record, and consume the PIN,
        mark the application issued and store the certificate in one transaction (SEED-R13).
        A retry with the same PIN and key after a lost response gets the same certificate."""
        app = await self.check_pin(enrollment_id, pin, csr_data, channel, source)
        return await self.redeem_checked(app, csr_data, channel, profile)

    async def check_pin(
        self, enrollment_id: str, pin: str, csr_data: bytes, channel: str, source: str
    ) -> ApplicationRecord:
        """The application whose PIN this is (``try_credential``); ``source``: the client's
        address, which waits after a wrong try."""
        app = await self._by_enrollment(enrollment_id)
        if app.state in _BEFORE_APPROVAL:
            # RFC 7030 §4.2.1: a CSR that cannot be issued is refused now (400), not deferred
            # with 202 to be retried forever.
            verify_csr(csr_data)
            raise RAError(
                RAKind.PENDING,
                f"the application is {app.state}: the certificate can be picked up after approval",
                {"state": app.state},
            )
        if app.pin_hash is None:
            # Closed (rejected, abandoned) before a PIN was sent, or its PIN withdrawn on
            # closing: no PIN exists that a try could match, so the try is neither compared nor
            # counted (docs/threat-model.md, attempt limits) and decides nothing worth auditing.
            self.refused("credential_absent", f"a PIN was tried for {app.id}, which has none")
            raise RAError(
                RAKind.ILLEGAL_TRANSITION,
                f"the application is {app.state}: it has no download PIN",
                {"state": app.state},
                recorded=True,
            )
        candidate = pin.strip()
        attempt = await self.try_credential(
            app,
            Credential.PIN,
            source,
            lambda stored: self.keyring.matches(PURPOSE_PIN, candidate, stored),
            f"applicant:{app.enrollment_id}:{channel}",
            "redeem.wrong_pin",
        )
        self._refuse_unless_right(
            attempt,
            f"the PIN of {app.id}",
            locked=("too many wrong PINs: ask the CA to send a new PIN", "pin_locked"),
            wrong="unknown enrollment ID or wrong PIN",
        )
        return app

    async def redeem_checked(
        self, app: ApplicationRecord, csr_data: bytes, channel: str, profile: str | None = None
    ) -> Redeemed:
        """Step 10 once ``check_pin`` accepted the PIN."""
        if profile is not None and profile != app.profile:
            raise RAError(
                RAKind.INVALID,
                f"this enrollment is for a {app.profile} certificate: use the {app.profile} label",
            )
        return await self._redeem_checked(app, csr_data, f"applicant:{app.enrollment_id}:{channel}")

    async def redeem_by_eab(self, enrollment_id: str, csr_data: bytes, channel: str) -> Redeemed:
        """Step 10 through ACME: the caller proved the External Account Binding made with this
        application's e-mailed MAC key (RFC 8555 §7.3.4), which stands in for the PIN. The same
        transaction as ``redeem`` issues and consumes the PIN and the EAB key, so one application
        gives one certificate whichever door is used first."""
        app = await self._by_enrollment(enrollment_id)
        actor = f"applicant:{app.enrollment_id}:{channel}"
        if app.state in _BEFORE_APPROVAL:
            raise RAError(
                RAKind.PENDING,
                f"the application is {app.state}: the certificate can be picked up after approval",
                {"state": app.state},
            )
        return await self._redeem_checked(app, csr_data, actor)

    @contextlib.asynccontextmanager
    async def _one_redemption(self, app_id: str) -> AsyncIterator[None]:
        lock = self._redeeming.get(app_id)
        if lock is None:
            lock = self._redeeming[app_id] = asyncio.Lock()
        async with lock:
            yield

    async def _redeem_checked(
        self, app: ApplicationRecord, csr_data: bytes, actor: str
    ) -> Redeemed:
        """The rest of step 10 once the credential has been checked. Pickups of one application
        take turns in this process, and each reads the application afresh once its turn comes:
        a double-clicked or retried pickup finds the certificate the first one made, instead of
        having the CA key sign a second certificate that the store then refuses."""
        csr = verify_csr(csr_data)
        async with self._one_redemption(app.id):
            return await self._redeem_turn(await self._load(app.id), csr, actor)

    async def _redeem_turn(self, app: ApplicationRecord, csr: VerifiedCSR, actor: str) -> Redeemed:
        if app.state in ISSUED_OR_LATER:
            return await self._repeat(app, csr)
        if app.state not in REDEEMABLE:
            raise RAError(
                RAKind.ILLEGAL_TRANSITION, f"the application is {app.state}", {"state": app.state}
            )
        if app.pin_expires_at is not None and self.clock.now() > app.pin_expires_at:
            raise RAError(RAKind.EXPIRED, "the PIN has expired: ask the CA to send a new PIN")
        contradiction = contradicts(csr, app)
        if contradiction:
            raise CAError(Kind.BAD_SUBJECT, contradiction)
        issued = await self.authority.sign_personal(
            csr, self.subject_of(app), app.profile, requester=actor, target=f"application/{app.id}"
        )
        return await self._commit_issue(app, issued, actor, csr)

    async def _commit_issue(
        self, app: ApplicationRecord, issued: IssuedCertificate, actor: str, csr: VerifiedCSR
    ) -> Redeemed:
        record = self.authority.certificate_record(issued, app.email, app.email)
        for _ in range(RETRIES):
            try:
                updated = await self.move(
                    app,
                    Event.REDEEM,
                    actor,
                    # The PIN's hash stays (RAStore.redeem_application): a retry with it after a
                    # lost response gets the same certificate; pin_used_at makes the PIN spent.
                    functools.partial(self.store.redeem_application, certificate=record),
                    {"serial": format(issued.serial, "x"), "generation": issued.generation},
                )
            except RAError as exc:
                if exc.kind is not RAKind.CONFLICT:
                    raise
                fresh = await self._load(app.id)
                if _same_pin_unspent(app, fresh):
                    # Only the mailer moved (approved -> pin_sent, its PIN e-mail went out): a
                    # pickup in approved or pin_sent redeems the same way, so commit again.
                    app = fresh
                    continue
                # Another server process redeemed the PIN first (the turns above are per
                # process): this certificate was signed and is never handed out. Its intent is
                # settled as discarded, with an audit entry carrying its serial, so that no
                # signature of the CA key goes unaccounted for; the same key gets the winner's.
                await self.authority.discard(
                    issued, actor, f"application/{app.id}", f"the application is {fresh.state}"
                )
                return await self._repeat(fresh, csr)
            return Redeemed(updated, issued.der, repeated=False)
        await self.authority.discard(issued, actor, f"application/{app.id}", "kept changing")
        raise RAError(RAKind.CONFLICT, f"application {app.id} keeps changing: try again")

    async def _repeat(self, app: ApplicationRecord, csr: VerifiedCSR) -> Redeemed:
        if app.certificate_generation is None or app.certificate_serial is None:
            raise RAError(RAKind.CONFLICT, f"the application is {app.state}")
        cert = await self.store.certificate(
            app.certificate_generation, int(app.certificate_serial, 16)
        )
        if cert.spki_sha256 != csr.spki_sha256:
            raise RAError(
                RAKind.LOCKED,
                "this PIN has been used: the certificate was issued to another key",
                {"reason": "pin_used"},
            )
        return Redeemed(app, cert.der, repeated=True)

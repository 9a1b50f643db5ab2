"""Seed steps 7 to 9: approval under the two-person rule, the PIN and EAB key made and queued for
e-mail, the PIN e-mail sent, a new PIN. The seed's next stage is server/ra/redemption.py.

A new workflow step of this stage is a method here that checks its permission and calls
``self.move`` (server/ra/base.py); next, declare that permission in server/ra/permissions.py."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from jitsuin.server.ra import credentials
from jitsuin.server.ra.base import PURPOSE_EAB, PURPOSE_MAIL, PURPOSE_PIN, RETRIES, RABase, person
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.letters import pin_mail
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.ra.workflow import REDEEMABLE, Event, allowing
from jitsuin.server.storage import ApplicationRecord, Operator, OutboxMail

_VETTING_ACTIONS = frozenset(
    {
        "application.create",
        f"application.{Event.ACCEPT_DOCUMENTS.value}",
        f"application.{Event.FIND_DEFICIENT.value}",
    }
)

# The store's write of a new PIN (RAStore.record_approval_and_pin with its approver bound, or
# RAStore.reissue_pin), before the PIN, the EAB key and their mail are bound to it.
NewPin = Callable[..., Awaitable[ApplicationRecord]]


class Approval(RABase):
    async def approve(self, operator: Operator, app_id: str) -> ApplicationRecord:
        self.allow(operator, Permission.APPROVE)
        app = await self._load(app_id)
        # SEED-R11: the state machine only reaches online_input_received through both.
        missing = [
            what
            for what, value in (
                ("the signed letter", app.letter_returned_at),
                ("the payment", app.paid_at),
                ("the online input", app.online_input_at),
            )
            if value is None
        ]
        if missing and app.state in allowing(Event.APPROVE):
            raise RAError(RAKind.INVALID, "cannot approve without " + ", ".join(missing))
        if self.config.ra.two_person_rule:
            await self._two_persons(operator, app)
        return await self._new_pin(
            app,
            Event.APPROVE,
            operator,
            functools.partial(self.store.record_approval_and_pin, approved_by=operator.name),
        )

    async def _two_persons(self, operator: Operator, app: ApplicationRecord) -> None:
        """The two-person rule (vetting and approval by different people): refuse, and audit, an
        approval by a person who entered or reviewed the application under any operator name.
        The persons behind an action are the operator and whoever else may know the credential
        it was made with (who set the token, who bound the certificate); those behind the
        vetting are read from the audit log, resubmissions included."""
        vetters = await self.store.audit_persons(f"application/{app.id}", _VETTING_ACTIONS)
        vetters |= {name for name in (app.created_by, app.reviewed_by) if name}
        approvers = {operator.name, *operator.credential_set_by}
        shared = sorted({person(p) for p in approvers} & {person(p) for p in vetters})
        if not shared:
            return
        facts = {"persons": sorted(approvers), "vetters": sorted(vetters), "shared": shared}
        await self.store.append_audit(
            self._audit(operator, "application.approve.refused", app.id, facts)
        )
        setters = operator.credential_set_by
        acting = (
            f"{operator.name}, with a {operator.credential} that {', '.join(setters)} set, acts "
            f"for {', '.join(sorted(approvers))}"
            if setters
            else f"{operator.name} acts for themself"
        )
        raise RAError(
            RAKind.FORBIDDEN,
            f"two-person rule: {acting}, and {', '.join(shared)} entered or reviewed this "
            "application, so may not approve it"
            + (
                f"; a token from the host CLI (jitsuin ra operator-token {operator.name}) becomes "
                f"{operator.name}'s own once they replace it (POST /ra/operators/"
                f"{operator.name}/token)"
                if setters
                else ""
            ),
            {"rule": "two-person", **facts},
        )

    async def reissue_pin(self, operator: Operator, app_id: str) -> ApplicationRecord:
        """A new PIN and EAB key; the old ones die with the superseded mail."""
        self.allow(operator, Permission.REISSUE_PIN)
        return await self._new_pin(
            await self._load(app_id), Event.REISSUE_PIN, operator, self.store.reissue_pin
        )

    async def _new_pin(
        self,
        app: ApplicationRecord,
        event: Event,
        actor: Operator | str,
        write: NewPin,
    ) -> ApplicationRecord:
        pin = credentials.new_pin()
        eab_key = credentials.new_eab_key()
        expires = self.clock.now() + self.config.ra.pin_ttl
        message = pin_mail(
            app,
            self.config.mail.sender,
            pin,
            eab_key,
            expires,
            self.config.server.public_https_url,
            name_order=self.config.ca.name_order,
        )
        return await self.move(
            app,
            event,
            actor,
            functools.partial(
                write,
                pin_hash=self.keyring.digest(PURPOSE_PIN, pin),
                pin_expires_at=expires,
                eab_key_sealed=self.keyring.seal(PURPOSE_EAB, eab_key.encode()),
                mail=OutboxMail(
                    application_id=app.id,
                    kind="pin",
                    recipient=app.email,
                    body_sealed=self.keyring.seal(PURPOSE_MAIL, message.as_bytes()),
                    next_attempt_at=self.clock.now(),
                ),
            ),
            {"pinExpiresAt": expires.isoformat()},
        )

    def open_mail(self, sealed: bytes) -> bytes:
        return self.keyring.open(PURPOSE_MAIL, sealed)

    def eab_key(self, app: ApplicationRecord) -> bytes | None:
        """The EAB MAC key, while the application can still be redeemed (for ACME)."""
        if app.eab_key_sealed is None or app.state not in REDEEMABLE:
            return None
        return self.open_eab_key(app.eab_key_sealed)

    def open_eab_key(self, sealed: bytes) -> bytes:
        return self.keyring.open(PURPOSE_EAB, sealed)

    async def pin_mailed(self, app_id: str) -> None:
        """The PIN e-mail went out: approved -> pin_sent. A pickup may redeem the PIN at any
        moment, before or while this runs; an application no longer approved (issued, say) has
        nothing left to record, and the mail stays marked sent."""
        for _ in range(RETRIES):
            app = await self._load(app_id)
            if app.state not in allowing(Event.PIN_MAILED):
                return
            try:
                await self.move(app, Event.PIN_MAILED, "system")
            except RAError as exc:
                if exc.kind is not RAKind.CONFLICT:
                    raise
                continue  # changed meanwhile: read it again
            return

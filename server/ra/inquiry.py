"""Seed steps 3 to 5: the inquiry letter with the access code and the invoice, the letter returned
signed and sealed, and the payment (either order). The seed's next stage is server/ra/applicant.py.

A new workflow step of this stage is a method here that checks its permission and calls
``self.move`` (server/ra/base.py); next, declare that permission in server/ra/permissions.py."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from jitsuin.server.http_json import Body
from jitsuin.server.ra import credentials
from jitsuin.server.ra.base import PURPOSE_ACCESS, RABase
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.letters import JAPAN, ca_fingerprints, configured_letter
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.ra.workflow import Event
from jitsuin.server.storage import ApplicationRecord, Operator


@dataclass(frozen=True, slots=True)
class Dispatched:
    application: ApplicationRecord
    enrollment_id: str
    access_code: str  # shown once, printed in the letter, never stored
    letter_html: str


class Inquiry(RABase):
    async def dispatch_inquiry(self, operator: Operator, app_id: str, data: Any) -> Dispatched:
        """Restricted-delivery letter (SEED-R10) with the online-input credential (SEED-R12) and
        the invoice. Sending again replaces the access code."""
        self.allow(operator, Permission.DISPATCH)
        body = Body(data)
        tracking = body.text("trackingNumber", limit=64)
        body.done()
        app = await self._load(app_id)
        enrollment_id = app.enrollment_id or credentials.new_enrollment_id()
        access_code = credentials.new_access_code()
        invoice = app.invoice_number or f"INV-{app.id.removeprefix('APP-')}"
        updated = await self.move(
            app,
            Event.DISPATCH_INQUIRY,
            operator,
            functools.partial(
                self.store.record_inquiry,
                tracking_number=tracking,
                enrollment_id=enrollment_id,
                access_code_hash=self.keyring.digest(PURPOSE_ACCESS, access_code),
                invoice_number=invoice,
                invoice_amount=app.invoice_amount or self.config.ra.invoice_amount,
            ),
            {"trackingNumber": tracking},
        )
        letter = configured_letter(
            self.config,
            updated,
            enrollment_id,
            access_code,
            self.clock.now().astimezone(JAPAN).date(),
            ca_fingerprints(self.authority),
        )
        return Dispatched(updated, enrollment_id, access_code, letter)

    # -- steps 4 and 5: letter back, payment ------------------------------------------------------
    async def record_letter(self, operator: Operator, app_id: str, data: Any) -> ApplicationRecord:
        self.allow(operator, Permission.RECORD_LETTER)
        body = Body(data)
        signed, sealed = body.flag("signed"), body.flag("sealed")
        self_inking = body.flag("selfInking")
        body.done()
        if not (signed and sealed) or self_inking:
            raise RAError(
                RAKind.INVALID,
                "the returned inquiry letter must be signed and sealed, not with a self-inking "
                "stamp (SEED-R9, SEED-R10); ask the applicant to send it again",
            )
        app = await self._load(app_id)
        return await self.move(app, Event.LETTER_RETURNED, operator, self.store.record_letter)

    async def record_payment(self, operator: Operator, app_id: str, data: Any) -> ApplicationRecord:
        self.allow(operator, Permission.RECORD_PAYMENT)
        body = Body(data)
        invoice = body.text("invoiceNumber", limit=64)
        amount = body.integer("amount")
        body.done()
        app = await self._load(app_id)
        if app.invoice_number and invoice != app.invoice_number:
            raise RAError(
                RAKind.INVALID,
                f"invoice {invoice} is not this application's invoice ({app.invoice_number})",
            )
        if app.invoice_amount and amount < app.invoice_amount:
            raise RAError(
                RAKind.INVALID,
                f"the payment of {amount} yen is less than the invoice ({app.invoice_amount} yen)",
            )
        return await self.move(
            app,
            Event.PAYMENT,
            operator,
            functools.partial(self.store.record_payment, amount=amount),
            {"amount": amount},
        )

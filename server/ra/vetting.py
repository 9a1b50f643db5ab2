"""Seed step 2: the review of the documents (SEED-R6...R9), and resubmission of a deficient
application. The seed's next stage is server/ra/inquiry.py.

A new workflow step of this stage is a method here that checks its permission and calls
``self.move`` (server/ra/base.py); next, declare that permission in server/ra/permissions.py."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from typing import Any

from jitsuin.server.http_json import Body
from jitsuin.server.ra.base import RABase
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.ra.workflow import Event
from jitsuin.server.storage import ApplicationRecord, Operator

# The resident record must have been issued within 3 months before receipt (SEED-R7).
RESIDENT_RECORD_MONTHS = 3

DEFICIENCY_TEXT = {
    "resident_record_too_old": "the resident record was issued more than 3 months before "
    "receipt (SEED-R7)",
    "resident_record_photocopy": "the resident record is a photocopy, not an original (SEED-R7)",
    "individual_number_shown": "the resident record shows the Individual Number (SEED-R8)",
    "name_mismatch": "the name differs from the resident record (SEED-R6)",
    "address_mismatch": "the address differs from the resident record (SEED-R6)",
    "date_of_birth_mismatch": "the date of birth differs from the resident record (SEED-R6)",
    "self_inking_stamp": "the seal was made with a self-inking stamp (SEED-R9)",
}


def _months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clamped to that month's last day."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


class Vetting(RABase):
    async def review(self, operator: Operator, app_id: str, data: Any) -> ApplicationRecord:
        """SEED-R6...R9. Every check is an explicit yes/no by the reviewer."""
        self.allow(operator, Permission.REVIEW)
        body = Body(data)
        received = body.date("receivedOn")
        record = body.obj("residentRecord")
        seal = body.obj("seal")
        p = "residentRecord."
        issued = body.date("issuedOn", record, p)
        checks = {
            "original": body.flag("original", record, p),
            "showsIndividualNumber": body.flag("showsIndividualNumber", record, p),
            "nameMatches": body.flag("nameMatches", record, p),
            "addressMatches": body.flag("addressMatches", record, p),
            "dateOfBirthMatches": body.flag("dateOfBirthMatches", record, p),
        }
        self_inking = body.flag("selfInking", seal, "seal.")
        body.errors += [f"unknown field '{p}{k}'" for k in set(record) - {*checks, "issuedOn"}]
        body.errors += [f"unknown field 'seal.{k}'" for k in set(seal) - {"selfInking"}]
        if received > self.clock.now().date():
            body.errors.append("receivedOn is in the future")
        if issued > received:
            body.errors.append("residentRecord.issuedOn is after receivedOn")
        body.done()
        deficiencies = []
        if issued < _months_before(received, RESIDENT_RECORD_MONTHS):
            deficiencies.append("resident_record_too_old")
        if not checks["original"]:
            deficiencies.append("resident_record_photocopy")
        if checks["showsIndividualNumber"]:
            # SEED-R8: only the fact is kept; the number itself never reaches us.
            deficiencies.append("individual_number_shown")
        for key, code in (
            ("nameMatches", "name_mismatch"),
            ("addressMatches", "address_mismatch"),
            ("dateOfBirthMatches", "date_of_birth_mismatch"),
        ):
            if not checks[key]:
                deficiencies.append(code)
        if self_inking:
            deficiencies.append("self_inking_stamp")
        app = await self._load(app_id)
        review = {
            "receivedOn": received.isoformat(),
            "residentRecordIssuedOn": issued.isoformat(),
            **checks,
            "selfInking": self_inking,
            "deficiencies": deficiencies,
            "reviewedBy": operator.name,
        }
        event = Event.FIND_DEFICIENT if deficiencies else Event.ACCEPT_DOCUMENTS
        return await self.move(
            app,
            event,
            operator,
            functools.partial(self.store.record_review, review=review, reviewed_by=operator.name),
            {"deficiencies": deficiencies},
        )

    async def resubmit(self, operator: Operator, app_id: str) -> ApplicationRecord:
        """New documents arrived for a deficient application: review starts again."""
        self.allow(operator, Permission.REVIEW)
        return await self.move(await self._load(app_id), Event.RESUBMIT, operator)

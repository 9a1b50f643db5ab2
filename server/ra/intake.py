"""Seed step 1: an operator enters the application; reading and listing applications (every read of
personal data audited, SEED-R18). The seed's next stage is server/ra/vetting.py.

A new workflow step of this stage is a method here that checks its permission and calls
``self.move`` (server/ra/base.py); next, declare that permission in server/ra/permissions.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jitsuin.ca.errors import CAError
from jitsuin.ca.profiles import PERSONAL_PROFILES
from jitsuin.ca.subject import VettedSubject
from jitsuin.server.ra import credentials
from jitsuin.server.ra.base import RABase
from jitsuin.server.ra.body import EARLIEST_DATE, Body
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.ra.workflow import State
from jitsuin.server.storage import ApplicationRecord, Operator


class Intake(RABase):
    async def create(self, operator: Operator, data: Any) -> ApplicationRecord:
        self.allow(operator, Permission.CREATE)
        body = Body(data)
        profile = body.text("profile")
        if profile and profile not in PERSONAL_PROFILES:
            body.errors.append(f"profile must be one of {', '.join(PERSONAL_PROFILES)}")
        family = body.text("familyName", limit=64)
        given = body.text("givenName", limit=64)
        email = body.text("email", limit=255)
        group = body.text("qualificationGroup", limit=64)
        number = body.text("qualificationNumber", limit=64)
        address = body.text("postalAddress", limit=512)
        born = body.date("dateOfBirth")
        if born != dt.date.min and not EARLIEST_DATE <= born < self.clock.now().date():
            body.errors.append("dateOfBirth is not a plausible date of birth")
        billing = body.obj("billing")
        addressee = billing.get("addressee")
        company = billing.get("company")
        if addressee not in ("self", "company"):
            body.errors.append("billing.addressee must be 'self' or 'company' (SEED-R19)")
        elif addressee == "company" and not (isinstance(company, str) and company.strip()):
            body.errors.append("billing.company names the company the invoice goes to (SEED-R19)")
        elif addressee == "self" and company is not None:
            body.errors.append("billing.company is only for addressee 'company'")
        unknown_billing = set(billing) - {"addressee", "company"}
        body.errors += [f"unknown field 'billing.{k}'" for k in sorted(unknown_billing)]
        body.done()
        app_id = credentials.new_application_id()
        subject = VettedSubject(app_id, family, given, email, group, number)
        try:
            # SEED-R4, R6: refuse now what issuance would refuse later.
            self.authority.issuer.check_subject(subject, profile)
        except CAError as exc:
            raise RAError(RAKind.INVALID, exc.message) from None
        now = self.clock.now()
        record = ApplicationRecord(
            id=app_id,
            version=1,
            state=State.RECEIVED.value,
            profile=profile,
            family_name=family,
            given_name=given,
            email=email,
            qualification_group=group,
            qualification_number=number,
            postal_address=address,
            date_of_birth=born.isoformat(),
            billing_addressee=str(addressee),
            billing_company=company.strip() if isinstance(company, str) else None,
            created_by=operator.name,
            created_at=now,
            updated_at=now,
        )
        await self.store.create_application(
            record, self._audit(operator, "application.create", app_id, {"profile": profile})
        )
        return record

    async def read(self, operator: Operator, app_id: str) -> ApplicationRecord:
        """A personal-data read, audited (SEED-R18)."""
        self.allow(operator, Permission.READ)
        app = await self._load(app_id)
        await self.store.append_audit(self._audit(operator, "application.read", app_id))
        return app

    async def list(
        self, operator: Operator, state: str | None, limit: int, offset: int
    ) -> list[ApplicationRecord]:
        self.allow(operator, Permission.READ)
        if state is not None and state not in State.__members__.values():
            raise RAError(RAKind.INVALID, f"unknown state {state!r}")
        apps = await self.store.applications(state, limit, offset)
        await self.store.append_audit(
            self._event(
                operator,
                "application.list",
                "applications",
                {"state": state, "ids": [a.id for a in apps]},
            )
        )
        return apps

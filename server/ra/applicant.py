"""Seed step 6: the applicant's online input with the mailed access code (SEED-R12), and the
applicant's status page. The seed's next stage is server/ra/approval.py.

A new workflow step of this stage is a method here that checks its permission and calls
``self.move`` (server/ra/base.py); next, declare that permission in server/ra/permissions.py."""

from __future__ import annotations

from typing import Any

from jitsuin.server.http_json import Body
from jitsuin.server.ra import credentials
from jitsuin.server.ra.base import PURPOSE_ACCESS, RABase
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.workflow import Event, allowing, not_yet
from jitsuin.server.storage import ApplicationRecord, Credential

# Online input not taken yet: the letter or the payment is still to come (the client waits).
_BEFORE_ONLINE_INPUT = not_yet(Event.ONLINE_INPUT)


class Applicant(RABase):
    async def online_input(self, data: Any, source: str) -> ApplicationRecord:
        """SEED-R12: enrollment ID + access code from the mailed notice; single use; wrong
        attempts counted and locked (``try_credential``). ``confirm: false`` shows the vetted
        data first. ``source``: the client's address, which waits after a wrong try."""
        body = Body(data)
        enrollment_id = body.text("enrollmentId", limit=32)
        code = body.text("accessCode", limit=64)
        confirm = body.flag("confirm")
        body.done()
        app = await self._by_enrollment(enrollment_id)
        actor = f"applicant:{app.enrollment_id}"
        if app.access_used_at is not None:
            raise RAError(
                RAKind.LOCKED, "this access code has been used", {"reason": "access_code_used"}
            )
        candidate = credentials.normalise(code)
        attempt = await self.try_credential(
            app,
            Credential.ACCESS_CODE,
            source,
            lambda stored: self.keyring.matches(PURPOSE_ACCESS, candidate, stored),
            actor,
            "online_input.wrong_code",
        )
        self._refuse_unless_right(
            attempt,
            f"the access code of {app.id}",
            locked=(
                "too many wrong access codes: ask the CA for a new letter",
                "access_code_locked",
            ),
            wrong="unknown enrollment ID or wrong access code",
        )
        if app.state not in allowing(Event.ONLINE_INPUT):
            raise RAError(
                RAKind.PENDING if app.state in _BEFORE_ONLINE_INPUT else RAKind.ILLEGAL_TRANSITION,
                f"the application is {app.state}: online input is taken after the signed letter "
                "and the payment have both arrived",
                {"state": app.state},
            )
        if not confirm:
            await self.store.append_audit(self._audit(actor, "online_input.view", app.id))
            return app
        return await self.move(app, Event.ONLINE_INPUT, actor, self.store.record_online_input)

    async def status(self, data: Any) -> ApplicationRecord:
        """Where an application stands, for the applicant's status page. Found by the enrollment
        ID alone, so the caller must show the state and never personal data (SEED-R18)."""
        body = Body(data)
        enrollment_id = body.text("enrollmentId", limit=32)
        body.done()
        return await self._by_enrollment(enrollment_id)

"""Closing an application: rejected or abandoned while open, or its certificate revoked (RFC 5280
reason codes).

A new workflow step of this stage is a method here that checks its permission and calls
``self.move`` (server/ra/base.py); next, declare that permission in server/ra/permissions.py."""

from __future__ import annotations

import functools
from typing import Any

from jitsuin.ca.revocation import Reason
from jitsuin.server.http_json import Body
from jitsuin.server.ra.base import RABase
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.ra.workflow import Event, allowing
from jitsuin.server.storage import ApplicationRecord, Conflict, Operator

# RFC 5280 §5.3.1 reason names an operator may give (S/MIME BR 7.2.2), by ca/revocation.py.
REVOCATION_REASONS = tuple(r.value for r in Reason if r.operator_may_give)


class Closing(RABase):
    async def close(
        self, operator: Operator, app_id: str, event: Event, data: Any
    ) -> ApplicationRecord:
        self.allow(operator, Permission.CLOSE)
        body = Body(data)
        reason = body.text("reason", limit=512)
        body.done()
        app = await self._load(app_id)
        return await self.move(
            app,
            event,
            operator,
            functools.partial(self.store.close_application, reason=reason),
            {"reason": reason},
        )

    async def revoke(self, operator: Operator, app_id: str, data: Any) -> ApplicationRecord:
        """A revocation request with an RFC 5280 reason code (CRL and OCSP publish it)."""
        self.allow(operator, Permission.REVOKE)
        body = Body(data)
        reason = body.text("reason", limit=64)
        body.done()
        if reason not in REVOCATION_REASONS:
            raise RAError(
                RAKind.INVALID,
                f"reason must be one of {', '.join(REVOCATION_REASONS)} (RFC 5280 §5.3.1; "
                "S/MIME BR 7.2.2)",
            )
        app = await self._load(app_id)
        if app.state not in allowing(Event.REVOKE) or app.certificate_serial is None:
            raise RAError(
                RAKind.ILLEGAL_TRANSITION,
                f"cannot revoke: the application is {app.state}",
                {"state": app.state},
            )
        serial = int(app.certificate_serial, 16)
        assert app.certificate_generation is not None
        try:
            await self.authority.revoke(
                app.certificate_generation,
                serial,
                reason,
                operator.name,
                target=f"application/{app.id}",
            )
        except Conflict as exc:
            raise RAError(RAKind.CONFLICT, str(exc)) from None
        # The store closed the application in the revocation's own transaction
        # (Store.revoke_certificate), as it does for ACME revokeCert and the CLI.
        return await self._load(app_id)

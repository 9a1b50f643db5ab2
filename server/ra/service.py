"""RA operations over the store: every transition goes through the workflow table
(server/ra/workflow.py, ``RABase.move``), every operator action is checked against its
permission (server/ra/permissions.py) and audited, as is every personal-data read, and no
secret is kept in clear.

``RAService`` is composed of one part per stage, each in its own module, in the seed's order:
operators (operators.py), steps 1 (intake.py), 2 (vetting.py), 3 to 5 (inquiry.py), 6
(applicant.py), 7 to 9 (approval.py) and 10 (redemption.py), closing (closing.py), and what
admins look at (oversight.py). Handlers, the CLI and the mailer call it; they check nothing."""

from __future__ import annotations

from jitsuin.server.ra.applicant import Applicant
from jitsuin.server.ra.approval import Approval
from jitsuin.server.ra.base import (
    application_json,
    contradicts,
    credential_details,
    credential_known_to,
)
from jitsuin.server.ra.body import Body
from jitsuin.server.ra.closing import REVOCATION_REASONS, Closing
from jitsuin.server.ra.inquiry import Dispatched, Inquiry
from jitsuin.server.ra.intake import Intake
from jitsuin.server.ra.operators import Operators
from jitsuin.server.ra.oversight import Oversight
from jitsuin.server.ra.redemption import Redeemed, Redemption
from jitsuin.server.ra.vetting import Vetting

__all__ = [
    "REVOCATION_REASONS",
    "Body",
    "Dispatched",
    "RAService",
    "Redeemed",
    "application_json",
    "contradicts",
    "credential_details",
    "credential_known_to",
]


class RAService(
    Operators,
    Intake,
    Vetting,
    Inquiry,
    Applicant,
    Approval,
    Redemption,
    Closing,
    Oversight,
):
    """The RA: one instance per server process (server/app.py) or CLI command."""

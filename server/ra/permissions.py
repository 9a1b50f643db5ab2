"""Who may do what: every operator action of the RA has a permission of its own, held by some of
the three roles, and the service checks it (``check``) before anything else; the handlers check
nothing. The two-person rule is checked on top of this (server/ra/approval.py).

A new workflow step (server/ra/workflow.py) adds its permission here; the next file to touch is
server/ra/handlers.py, for the step's route."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.storage import Operator

ROLES = ("reviewer", "approver", "admin")
_VETTERS = frozenset({"reviewer", "admin"})
_APPROVERS = frozenset({"approver", "admin"})
_ADMINS = frozenset({"admin"})


class Permission(enum.StrEnum):
    READ = "applications.read"
    CREATE = "applications.create"
    REVIEW = "applications.review"
    DISPATCH = "applications.dispatch"
    RECORD_LETTER = "applications.record_letter"
    RECORD_PAYMENT = "applications.record_payment"
    APPROVE = "applications.approve"
    REISSUE_PIN = "applications.reissue_pin"
    CLOSE = "applications.close"
    DISCLOSE = "applications.disclose"
    REVOKE = "certificates.revoke"
    MAIL_READ = "mail.read"
    MAIL_RETRY = "mail.retry"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    REENROLLMENTS_READ = "reenrollments.read"
    REENROLLMENTS_DECIDE = "reenrollments.decide"
    OPERATORS = "operators.manage"
    CA_ROLLOVER = "ca.rollover"
    ACME_EAB = "acme.eab"  # EAB keys for the ACME tls-server profile


# The roles that hold each permission, and how a refusal words it ("... may not <words>").
_GRANTS: Mapping[Permission, tuple[frozenset[str], str]] = {
    Permission.READ: (frozenset(ROLES), "read applications"),
    Permission.CREATE: (_VETTERS, "create applications"),
    Permission.REVIEW: (_VETTERS, "review applications"),
    Permission.DISPATCH: (_VETTERS, "dispatch inquiry letters"),
    Permission.RECORD_LETTER: (_VETTERS, "record returned letters"),
    Permission.RECORD_PAYMENT: (_VETTERS, "record payments"),
    Permission.APPROVE: (_APPROVERS, "approve applications"),
    Permission.REISSUE_PIN: (_APPROVERS, "reissue PINs"),
    Permission.CLOSE: (frozenset(ROLES), "reject or abandon applications"),
    Permission.DISCLOSE: (_ADMINS, "disclose an applicant's records"),
    Permission.REVOKE: (_APPROVERS, "revoke certificates"),
    Permission.MAIL_READ: (_APPROVERS, "read the mail outbox"),
    Permission.MAIL_RETRY: (_APPROVERS, "retry mail in the outbox"),
    Permission.AUDIT_READ: (_ADMINS, "read the audit log"),
    Permission.AUDIT_VERIFY: (_ADMINS, "verify the audit log"),
    Permission.REENROLLMENTS_READ: (_APPROVERS, "read re-enrollment requests"),
    Permission.REENROLLMENTS_DECIDE: (_APPROVERS, "decide re-enrollment requests"),
    Permission.OPERATORS: (_ADMINS, "manage operators"),
    Permission.CA_ROLLOVER: (_ADMINS, "roll the CA over to a new generation"),
    Permission.ACME_EAB: (_APPROVERS, "manage ACME EAB keys"),
}
assert set(_GRANTS) == set(Permission), "every permission has its roles and words"

# The names server/acme still asks by, from before permissions had names of their own.
_FORMER_NAMES = {"read": Permission.READ, "acme_eab": Permission.ACME_EAB}


def check(operator: Operator, permission: Permission | str) -> None:
    """Refuse (403) unless the operator's role holds ``permission``; the refusal names it."""
    permission = _FORMER_NAMES.get(permission, permission)
    permission = Permission(permission)
    roles, words = _GRANTS[permission]
    if operator.role not in roles:
        raise RAError(
            RAKind.FORBIDDEN,
            f"operator {operator.name} ({operator.role}) may not {words} "
            f"(permission {permission.value})",
        )

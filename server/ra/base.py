"""What every part of the RA service shares: the store, the clock and the keyring, audit
entries, permission checks, loading an application, and ``move``, the one function that changes
an application's state (by the table in server/ra/workflow.py).

A workflow step's method lives in the module of its stage and calls ``move``; from there its
permission is declared in server/ra/permissions.py (the next file to touch for a new step)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from jitsuin.ca.csr import VerifiedCSR
from jitsuin.ca.subject import VettedSubject, csr_contradiction
from jitsuin.server.authority import Authority
from jitsuin.server.config import Config
from jitsuin.server.operator_auth import credential_details
from jitsuin.server.ra import credentials
from jitsuin.server.ra.credentials import Keyring
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.permissions import Permission, check
from jitsuin.server.ra.workflow import Event, IllegalTransition, next_state
from jitsuin.server.storage import (
    ApplicationRecord,
    Attempt,
    AttemptPolicy,
    AuditEvent,
    Conflict,
    Credential,
    NotFound,
    Operator,
    Outcome,
)

# What each keyed hash or sealed secret is for (credentials.Keyring): one key per purpose.
PURPOSE_ACCESS = "access-code"
PURPOSE_PIN = "pin"
PURPOSE_EAB = "eab-key"
PURPOSE_MAIL = "mail"

# A workflow write of the store (RAStore.record_review, record_payment, ...), its step's own
# values bound (functools.partial): it takes the application's id and version read, the target
# state, the time and the audit entry.
Write = Callable[[str, int, str, dt.datetime, AuditEvent], Awaitable[ApplicationRecord]]

# A redemption or the mailer's step commits again when only the other one moved the application.
RETRIES = 3


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """The store's NotFound and Conflict as the RA's 404 and 409 problems
    (docs/architecture.md, house habit 1)."""
    try:
        yield
    except NotFound as exc:
        raise RAError(RAKind.NOT_FOUND, str(exc)) from None
    except Conflict as exc:
        raise RAError(RAKind.CONFLICT, str(exc)) from None


class RABase:
    def __init__(self, authority: Authority, config: Config, keyring: Keyring) -> None:
        self.authority = authority
        self.store = authority.store
        self.clock = authority.clock
        self.config = config
        self.keyring = keyring
        self.attempts = AttemptPolicy(config.ra.max_attempts, config.ra.attempt_backoff)
        # One redemption at a time per application in this process (server/ra/redemption.py).
        self._redeeming: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _audit(
        self,
        actor: Operator | str,
        action: str,
        app_id: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        return self._event(actor, action, f"application/{app_id}", details)

    def _event(
        self,
        actor: Operator | str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """An audit entry; an operator's carries the credential it acted with
        (docs/threat-model.md, "Two persons, really")."""
        return AuditEvent(
            at=self.clock.now(),
            actor=actor if isinstance(actor, str) else actor.name,
            action=action,
            target=target,
            details={**(details or {}), **credential_details(actor)},
        )

    @staticmethod
    def allow(operator: Operator, permission: Permission | str) -> None:
        """Refuse unless the operator's role holds ``permission`` (server/ra/permissions.py)."""
        check(operator, permission)

    async def _load(self, app_id: str) -> ApplicationRecord:
        try:
            return await self.store.application(app_id)
        except NotFound:
            raise RAError(RAKind.NOT_FOUND, f"there is no application {app_id}") from None

    async def move(
        self,
        app: ApplicationRecord,
        event: Event,
        actor: Operator | str,
        write: Write | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> ApplicationRecord:
        """The one place an application's state changes: the workflow table gives the target
        state for ``event`` (or refuses it, 409 naming the current state), and the store's
        ``write`` for the step (RAStore.move_application if the step writes only its state)
        writes it with an audit entry, if the application is still at the version read (409
        otherwise). The one exception is revocation, which the store makes in the
        revocation's own transaction (Store.revoke_certificate), whatever the door."""
        try:
            target = next_state(app.state, event)
        except IllegalTransition as exc:
            raise RAError(
                RAKind.ILLEGAL_TRANSITION, str(exc), {"state": app.state, "event": event.value}
            ) from None
        now = self.clock.now()
        audit_details = {"from": app.state, "to": target.value, **(details or {})}
        try:
            return await (write or self.store.move_application)(
                app.id,
                app.version,
                target.value,
                now,
                self._audit(actor, f"application.{event.value}", app.id, audit_details),
            )
        except Conflict as exc:
            raise RAError(RAKind.CONFLICT, str(exc)) from None

    @staticmethod
    def subject_of(app: ApplicationRecord) -> VettedSubject:
        # The subscriber is the person, known by the vetted e-mail address: SEED-R2 compares
        # keys across all of the person's certificates, not only this application's.
        return VettedSubject(
            subscriber_id=app.email,
            family_name=app.family_name,
            given_name=app.given_name,
            email=app.email,
            qualification_group=app.qualification_group,
            qualification_number=app.qualification_number,
        )

    def refused(self, kind: str, detail: str) -> None:
        """Count and log a refusal that decided nothing about anyone known (not audited)."""
        self.authority.refusals.note(kind, self.clock.now(), detail)

    def retry_after(self, attempt: Attempt) -> int:
        """Whole seconds until a throttled source may try again (RFC 9110 §10.2.3)."""
        assert attempt.retry_at is not None
        return max(math.ceil((attempt.retry_at - self.clock.now()).total_seconds()), 1)

    async def try_credential(
        self,
        app: ApplicationRecord,
        credential: Credential,
        source: str,
        matches: Callable[[Any], bool],
        actor: str,
        action: str,
    ) -> Attempt:
        """One try of an applicant's credential (SEED-R12, SEED-R13), counted before it is
        compared, in one transaction with the comparison (the store's ``try_credential``): of any
        number of concurrent tries, from any number of processes, at most ``max_attempts`` wrong
        ones are ever compared until the CA sends a new credential. A right try is not counted.
        After a wrong try its source waits (``attempt_backoff``, doubled per wrong try of that
        source); its tries meanwhile are refused uncompared and uncounted, so a stranger who
        knows the enrollment ID cannot lock the credential with one burst. A wrong try is
        audited with its source, so that the CA can tell a lock-out from the applicant's typos."""
        return await self.store.try_credential(
            app.id,
            credential,
            self.attempts,
            source,
            self.clock.now(),
            matches,
            self._audit(actor, action, app.id, {"source": source}),
        )

    def _refuse_unless_right(
        self, attempt: Attempt, what: str, *, locked: tuple[str, str], wrong: str
    ) -> None:
        """The refusal of a try that was not right. A wrong try is in the audit log already; a
        locked or throttled one decided nothing (it was not compared) and anyone who knows the
        enrollment ID can send any number of them, so it is counted and logged, not audited."""
        if attempt.outcome is Outcome.RIGHT:
            return
        if attempt.outcome is Outcome.WRONG:
            raise RAError(
                RAKind.UNAUTHORIZED,
                wrong,
                {"attemptsLeft": max(self.attempts.limit - attempt.wrong, 0)},
                recorded=True,
            )
        self.refused(f"credential_{attempt.outcome.value}", f"a try of {what} was not compared")
        if attempt.outcome is Outcome.LOCKED:
            raise RAError(RAKind.LOCKED, locked[0], {"reason": locked[1]}, recorded=True)
        raise RAError(
            RAKind.THROTTLED,
            "a wrong credential was tried from this address just now: wait before trying again",
            {"retryAfter": self.retry_after(attempt)},
            recorded=True,
        )

    async def _by_enrollment(self, enrollment_id: str) -> ApplicationRecord:
        try:
            return await self.store.application_by_enrollment_id(
                credentials.grouped(credentials.normalise(enrollment_id))
            )
        except NotFound:
            self.refused("unknown_enrollment_id", "no application has this enrollment ID")
            raise RAError(
                RAKind.UNAUTHORIZED, "unknown enrollment ID or wrong credential", recorded=True
            ) from None


def person(who: str) -> str:
    """The person behind an actor: the host account ``<user>`` of the CLI's ``cli:<user>`` is
    taken to be operator ``<user>``, so that someone who sets a credential on the host and
    vets through the API as themself is one person to the two-person rule."""
    return who.removeprefix("cli:")


def credential_known_to(actor: Operator | str, name: str) -> tuple[str, ...]:
    """Who, besides operator ``name``, may know a credential that ``actor`` sets for it (a
    token, or the choice of a bound certificate):

    - the host CLI (``cli:<user>``, trusted like root): that user, until the operator replaces
      the credential with one of their own;
    - another operator (an admin through the API): the admin and whoever else may know the
      credential the admin acted with, so that setting a credential through a chain of
      operators does not shed anyone;
    - the operator themself: whoever else may know the credential they acted with, except the
      host CLI: replacing what the CLI handed over takes the credential over, while one that
      an admin set stays known to that admin however often it is replaced with itself.
    """
    if isinstance(actor, str):
        return (actor,)
    if actor.name != name:
        return tuple(sorted({actor.name, *actor.credential_set_by} - {name}))
    return tuple(sorted(p for p in actor.credential_set_by if not p.startswith("cli:")))


def contradicts(csr: VerifiedCSR, app: ApplicationRecord) -> str | None:
    """A CSR may leave its subject empty; what it does say must agree with the vetted record
    (ca/subject.py, ``csr_contradiction``)."""
    return csr_contradiction(csr.requested_subject, csr.requested_emails, RABase.subject_of(app))


def application_json(app: ApplicationRecord) -> dict[str, Any]:
    """The operator's view (camelCase JSON); never a secret or a secret's hash."""

    def when(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": app.id,
        "state": app.state,
        "version": app.version,
        "profile": app.profile,
        "familyName": app.family_name,
        "givenName": app.given_name,
        "email": app.email,
        "qualificationGroup": app.qualification_group,
        "qualificationNumber": app.qualification_number,
        "postalAddress": app.postal_address,
        "dateOfBirth": app.date_of_birth,
        "billing": {"addressee": app.billing_addressee, "company": app.billing_company},
        "createdBy": app.created_by,
        "createdAt": when(app.created_at),
        "updatedAt": when(app.updated_at),
        "reviewedBy": app.reviewed_by,
        "review": app.review,
        "trackingNumber": app.tracking_number,
        "invoice": {"number": app.invoice_number, "amount": app.invoice_amount},
        "enrollmentId": app.enrollment_id,
        "accessCode": {"attempts": app.access_attempts, "usedAt": when(app.access_used_at)},
        "letterReturnedAt": when(app.letter_returned_at),
        "paidAt": when(app.paid_at),
        "paidAmount": app.paid_amount,
        "onlineInputAt": when(app.online_input_at),
        "approvedBy": app.approved_by,
        "approvedAt": when(app.approved_at),
        "pin": {
            "expiresAt": when(app.pin_expires_at),
            "attempts": app.pin_attempts,
            "usedAt": when(app.pin_used_at),
        },
        "certificate": (
            {"generation": app.certificate_generation, "serial": app.certificate_serial}
            if app.certificate_serial
            else None
        ),
        "closedReason": app.closed_reason,
    }

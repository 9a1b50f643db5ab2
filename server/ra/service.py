"""RA operations over the store: every transition goes through the workflow table, every
operator action and personal-data read is audited, and no secret is kept in clear."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import dataclasses
import datetime as dt
import hashlib
import math
import re
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from jitsuin.ca.client_auth import client_auth_refusal
from jitsuin.ca.csr import VerifiedCSR, verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import issuing_generation
from jitsuin.ca.issuance import IssuedCertificate
from jitsuin.ca.profiles import PERSONAL_PROFILES
from jitsuin.ca.revocation import Reason
from jitsuin.ca.subject import VettedSubject
from jitsuin.server.authority import Authority
from jitsuin.server.config import Config
from jitsuin.server.ra import credentials
from jitsuin.server.ra.credentials import Keyring
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.letters import inquiry_letter, pin_mail
from jitsuin.server.ra.mynumber import fields_with_individual_number
from jitsuin.server.ra.workflow import Event, IllegalTransition, State, next_state
from jitsuin.server.storage import (
    ApplicationRecord,
    Attempt,
    AttemptPolicy,
    AuditEvent,
    Conflict,
    Credential,
    NotFound,
    Operator,
    OutboxMail,
    Outcome,
)

ROLES = ("reviewer", "approver", "admin")
# Who may do what. The two-person rule is checked on top of this (approve).
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "create": frozenset({"reviewer", "admin"}),
    "review": frozenset({"reviewer", "admin"}),
    "dispatch": frozenset({"reviewer", "admin"}),
    "record_letter": frozenset({"reviewer", "admin"}),
    "record_payment": frozenset({"reviewer", "admin"}),
    "approve": frozenset({"approver", "admin"}),
    "reissue_pin": frozenset({"approver", "admin"}),
    "reject": frozenset(ROLES),
    "revoke": frozenset({"approver", "admin"}),
    "disclose": frozenset({"admin"}),
    "mail": frozenset({"approver", "admin"}),
    "audit": frozenset({"admin"}),
    "operators": frozenset({"admin"}),
    "acme_eab": frozenset({"approver", "admin"}),  # EAB keys for the ACME tls-server profile
}
# How a refusal names a permission whose key is not a verb ("bob (reviewer) may not ...").
_PERMISSION_WORDS = {
    "operators": "manage operators",
    "acme_eab": "manage ACME EAB keys",
    "audit": "read the audit log",
    "mail": "manage the mail outbox",
}

# RFC 5280 §5.3.1 reason names an operator may give (S/MIME BR 7.2.2), by ca/revocation.py.
REVOCATION_REASONS = tuple(r.value for r in Reason if r.operator_may_give)

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

_PURPOSE_ACCESS = "access-code"
_PURPOSE_PIN = "pin"
_PURPOSE_EAB = "eab-key"
_PURPOSE_MAIL = "mail"


@dataclass(frozen=True, slots=True)
class Dispatched:
    application: ApplicationRecord
    enrollment_id: str
    access_code: str  # shown once, printed in the letter, never stored
    letter_html: str


@dataclass(frozen=True, slots=True)
class Redeemed:
    application: ApplicationRecord
    certificate_der: bytes
    repeated: bool  # a retry after a lost response: the same certificate again


def _months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier, clamped to that month's last day."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


# The earliest date the RA takes in any field: before it, a date is a typing error, and a date
# near 0001-01-01 would leave the calendar when months are counted back from it (SEED-R7).
EARLIEST_DATE = dt.date(1900, 1, 1)
# The largest integer the RA takes: what a PostgreSQL integer column holds.
MAX_INTEGER = 2**31 - 1


class Body:
    """Reads a JSON object field by field, collecting every error before refusing."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise RAError(RAKind.MALFORMED, "the request body must be a JSON object")
        # SEED-R8: the Individual Number is refused wherever it appears, and never echoed.
        leaked = fields_with_individual_number(data)
        if leaked:
            raise RAError(
                RAKind.INVALID,
                "a field holds an Individual Number (My Number); it must never be sent to or "
                "stored by the CA (SEED-R8): " + ", ".join(leaked),
                {"fields": leaked},
            )
        self.data = data
        self.errors: list[str] = []
        self.seen: set[str] = set()

    def text(self, key: str, *, required: bool = True, limit: int = 256) -> str:
        self.seen.add(key)
        value = self.data.get(key)
        if value is None:
            if required:
                self.errors.append(f"{key} is required")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.errors.append(f"{key} must be a non-empty string")
            return ""
        if len(value) > limit:
            self.errors.append(f"{key} is longer than {limit} characters")
        return value.strip()

    def flag(self, key: str, data: Mapping[str, Any] | None = None, prefix: str = "") -> bool:
        source = self.data if data is None else data
        if data is None:
            self.seen.add(key)
        value = source.get(key)
        if not isinstance(value, bool):
            self.errors.append(f"{prefix}{key} must be true or false")
            return False
        return value

    def date(self, key: str, data: Mapping[str, Any] | None = None, prefix: str = "") -> dt.date:
        source = self.data if data is None else data
        if data is None:
            self.seen.add(key)
        value = source.get(key)
        try:
            day = dt.date.fromisoformat(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.errors.append(f"{prefix}{key} must be a date (YYYY-MM-DD)")
            return dt.date.min
        if day < EARLIEST_DATE:
            self.errors.append(f"{prefix}{key} must not be before {EARLIEST_DATE.isoformat()}")
            return dt.date.min
        return day

    def obj(self, key: str) -> dict[str, Any]:
        self.seen.add(key)
        value = self.data.get(key)
        if not isinstance(value, dict):
            self.errors.append(f"{key} must be an object")
            return {}
        return value

    def integer(self, key: str, maximum: int = MAX_INTEGER) -> int:
        self.seen.add(key)
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
            self.errors.append(f"{key} must be an integer 0..{maximum}")
            return 0
        return value

    def done(self) -> None:
        self.errors += [f"unknown field {k!r}" for k in self.data if k not in self.seen]
        if self.errors:
            raise RAError(RAKind.INVALID, "; ".join(self.errors), {"errors": self.errors})


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """The store's NotFound and Conflict as the RA's 404 and 409 problems (house habit 1)."""
    try:
        yield
    except NotFound as exc:
        raise RAError(RAKind.NOT_FOUND, str(exc)) from None
    except Conflict as exc:
        raise RAError(RAKind.CONFLICT, str(exc)) from None


class RAService:
    def __init__(self, authority: Authority, config: Config, keyring: Keyring) -> None:
        self.authority = authority
        self.store = authority.store
        self.clock = authority.clock
        self.config = config
        self.keyring = keyring
        self.attempts = AttemptPolicy(config.ra.max_attempts, config.ra.attempt_backoff)
        # One redemption at a time per application in this process (see _redeem_checked).
        self._redeeming: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # -- helpers ----------------------------------------------------------------------------------
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
    def allow(operator: Operator, permission: str) -> None:
        if operator.role not in PERMISSIONS[permission]:
            action = _PERMISSION_WORDS.get(permission, permission.replace("_", " "))
            raise RAError(
                RAKind.FORBIDDEN, f"operator {operator.name} ({operator.role}) may not {action}"
            )

    async def _load(self, app_id: str) -> ApplicationRecord:
        try:
            return await self.store.application(app_id)
        except NotFound:
            raise RAError(RAKind.NOT_FOUND, f"there is no application {app_id}") from None

    async def _transition(
        self,
        app: ApplicationRecord,
        event: Event,
        actor: Operator | str,
        changes: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> ApplicationRecord:
        try:
            target = next_state(app.state, event)
        except IllegalTransition as exc:
            raise RAError(
                RAKind.ILLEGAL_TRANSITION, str(exc), {"state": app.state, "event": event.value}
            ) from None
        now = self.clock.now()
        audit_details = {"from": app.state, "to": target.value, **(details or {})}
        try:
            return await self.store.update_application(
                app.id,
                app.version,
                {**(changes or {}), "state": target.value, "updated_at": now},
                self._audit(actor, f"application.{event.value}", app.id, audit_details),
                **extra,
            )
        except Conflict as exc:
            raise RAError(RAKind.CONFLICT, str(exc)) from None

    def subject_of(self, app: ApplicationRecord) -> VettedSubject:
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

    # -- operators --------------------------------------------------------------------------------
    async def authenticate(self, token: str) -> Operator:
        operator = await self.store.operator_by_token(self.keyring.digest("operator", token))
        if operator is None:
            self.refused("unknown_operator_token", "no operator has this token")
            raise RAError(RAKind.UNAUTHORIZED, "unknown or disabled operator token", recorded=True)
        if operator.disabled_at is not None:
            raise RAError(RAKind.UNAUTHORIZED, "unknown or disabled operator token")
        return dataclasses.replace(operator, credential="token")

    async def add_operator(self, actor: str, name: str, role: str) -> str:
        """Create an operator; returns the API token, which is shown once and kept only hashed.
        Only the host CLI creates operators (``actor`` is ``cli:<user>``), so the token is
        known to ``actor`` until the operator replaces it (``rotate_operator_token``)."""
        if role not in ROLES:
            raise RAError(RAKind.INVALID, f"role must be one of {', '.join(ROLES)}")
        if not re.fullmatch(r"[a-z][a-z0-9._-]{0,63}", name):
            raise RAError(RAKind.INVALID, "operator names are lower-case letters, digits, . _ -")
        token = credentials.new_operator_token()
        now = self.clock.now()
        try:
            await self.store.add_operator(
                Operator(name=name, role=role, created_at=now, token_set_by=(actor,)),
                self.keyring.digest("operator", token),
                AuditEvent(now, actor, "operator.add", f"operator/{name}", {"role": role}),
            )
        except Conflict as exc:
            raise RAError(RAKind.CONFLICT, str(exc)) from None
        return token

    # -- operators' TLS client certificates (optional to the API token) ---------------------------
    async def authenticate_certificate(self, certificate_der: bytes) -> Operator:
        """The operator bound to the TLS client certificate the peer presented. The handshake
        already checked the chain to a generation of this CA (server/__main__.py, RFC 8446
        §4.4.2.4); here: the binding, the certificate's status in the store, read on every
        request so that a revocation takes effect at once, its validity period at this CA's
        clock (RFC 5280 §4.1.2.5), and the operator not disabled."""
        sha256 = hashlib.sha256(certificate_der).hexdigest()
        operator = await self.store.operator_by_certificate(sha256)
        if operator is None or operator.disabled_at is not None:
            raise RAError(
                RAKind.UNAUTHORIZED, "the client certificate is not bound to an enabled operator"
            )
        assert operator.certificate_generation is not None
        assert operator.certificate_serial is not None
        try:
            record = await self.store.certificate(
                operator.certificate_generation, operator.certificate_serial
            )
        except NotFound:
            record = None
        if record is None or record.status != "valid":
            raise RAError(RAKind.UNAUTHORIZED, "the client certificate has been revoked")
        if not record.not_before <= self.clock.now() <= record.not_after:
            raise RAError(RAKind.UNAUTHORIZED, "the client certificate is not valid now")
        return dataclasses.replace(operator, credential="certificate")

    async def bind_certificate(
        self, actor: Operator | str, name: str, data: bytes, presented: bytes | None = None
    ) -> dict[str, Any]:
        """Bind operator ``name`` to one certificate (PEM or DER) issued by this CA, replacing
        any earlier binding. Refused unless a generation of this CA signed it, the store holds
        this very certificate as valid (not revoked), it is within its validity period and its
        extended key usage has clientAuth (RFC 5280 §4.2.1.12)."""
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                cert = x509.load_pem_x509_certificates(data)[0]  # the first is the leaf
            else:
                cert = x509.load_der_x509_certificate(data)
        except ValueError:
            raise RAError(RAKind.INVALID, "not an X.509 certificate (PEM or DER)") from None
        der = cert.public_bytes(serialization.Encoding.DER)
        generation = issuing_generation(cert, self.authority.generations)
        if generation is None:
            raise RAError(
                RAKind.INVALID,
                "the certificate was not issued by this CA (no CA generation signed it)",
            )
        try:
            record = await self.store.certificate(generation.number, cert.serial_number)
        except NotFound:
            record = None
        if record is None or record.der != der:
            raise RAError(RAKind.INVALID, "the certificate is not one this CA has issued")
        if record.status != "valid":
            raise RAError(RAKind.INVALID, "the certificate has been revoked")
        now = self.clock.now()
        refusal = client_auth_refusal(cert, now)
        if refusal is not None:
            raise RAError(RAKind.INVALID, refusal)
        if isinstance(actor, Operator) and actor.name == name and presented != der:
            # Binding one's own certificate makes it one's own credential (two-person rule): the
            # operator proves that they hold its key by presenting it in this TLS handshake, so
            # that nobody can talk them into binding a certificate whose key someone else holds.
            raise RAError(
                RAKind.INVALID,
                "to bind your own certificate, present it as the TLS client certificate of this "
                "request (proof that you hold its key)",
            )
        binding = {
            "operator": name,
            "sha256": hashlib.sha256(der).hexdigest(),
            "generation": generation.number,
            "serial": format(cert.serial_number, "x"),
            "subject": cert.subject.rfc4514_string(),
            "notAfter": record.not_after.isoformat(),
        }
        bound_by = credential_known_to(actor, name)
        audit = {k: binding[k] for k in ("sha256", "generation", "serial")}
        with _store_errors():
            await self.store.bind_operator_certificate(
                name,
                binding["sha256"],
                generation.number,
                cert.serial_number,
                self._event(
                    actor,
                    "operator.bind_certificate",
                    f"operator/{name}",
                    {**audit, "boundBy": list(bound_by)},
                ),
                bound_by=bound_by,
            )
        return {**binding, "boundBy": list(bound_by)}

    async def unbind_certificate(self, actor: Operator | str, name: str) -> None:
        """The operator's certificate no longer authenticates it (the API token still does)."""
        with _store_errors():
            await self.store.unbind_operator_certificate(
                name, self._event(actor, "operator.unbind_certificate", f"operator/{name}")
            )

    # -- cutting an operator off: disable, enable, a new token -------------------------------------
    async def disable_operator(self, actor: Operator | str, name: str) -> dt.datetime:
        """From now on neither the operator's token nor its bound certificate authenticates it
        (both are checked against the store on every request); returns when. An admin cannot
        disable themself, so that the last enabled admin is not locked out by mistake (the CLI's
        actor is ``cli:<user>``, never an operator's name)."""
        if actor == name or (isinstance(actor, Operator) and actor.name == name):
            raise RAError(
                RAKind.FORBIDDEN,
                f"operator {name} may not disable themself: another admin (or the CLI, "
                "jitsuin ra operator-disable) must, so that the last admin is not locked out",
            )
        now = self.clock.now()
        with _store_errors():
            await self.store.disable_operator(
                name, now, self._event(actor, "operator.disable", f"operator/{name}")
            )
        return now

    async def enable_operator(self, actor: Operator | str, name: str) -> None:
        """The operator's token and bound certificate authenticate it again."""
        with _store_errors():
            await self.store.enable_operator(
                name, self._event(actor, "operator.enable", f"operator/{name}")
            )

    async def rotate_operator_token(self, actor: Operator | str, name: str) -> str:
        """A new API token for the operator; the old one stops working at once. Returns the new
        token, which is shown once and kept only as its keyed hash (like ``add_operator``). A
        disabled operator stays disabled: rotating does not enable it. Who else may know the
        new token is recorded with it (``credential_known_to``): an operator who rotates their
        own token takes it over from the host CLI that created it."""
        token = credentials.new_operator_token()
        set_by = credential_known_to(actor, name)
        with _store_errors():
            await self.store.rotate_operator_token(
                name,
                self.keyring.digest("operator", token),
                self._event(
                    actor, "operator.rotate_token", f"operator/{name}", {"setBy": list(set_by)}
                ),
                set_by=set_by,
            )
        return token

    # -- step 1: the application ------------------------------------------------------------------
    async def create(self, operator: Operator, data: Any) -> ApplicationRecord:
        self.allow(operator, "create")
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
        self.allow(operator, "read")
        app = await self._load(app_id)
        await self.store.append_audit(self._audit(operator, "application.read", app_id))
        return app

    async def list(
        self, operator: Operator, state: str | None, limit: int, offset: int
    ) -> list[ApplicationRecord]:
        self.allow(operator, "read")
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

    # -- step 2: document review ------------------------------------------------------------------
    async def review(self, operator: Operator, app_id: str, data: Any) -> ApplicationRecord:
        """SEED-R6...R9. Every check is an explicit yes/no by the reviewer."""
        self.allow(operator, "review")
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
        return await self._transition(
            app,
            event,
            operator,
            {"review": review, "reviewed_by": operator.name},
            {"deficiencies": deficiencies},
        )

    async def resubmit(self, operator: Operator, app_id: str) -> ApplicationRecord:
        """New documents arrived for a deficient application: review starts again."""
        self.allow(operator, "review")
        return await self._transition(await self._load(app_id), Event.RESUBMIT, operator)

    # -- step 3: inquiry letter -------------------------------------------------------------------
    async def dispatch_inquiry(self, operator: Operator, app_id: str, data: Any) -> Dispatched:
        """Restricted-delivery letter (SEED-R10) with the online-input credential (SEED-R12) and
        the invoice. Sending again replaces the access code."""
        self.allow(operator, "dispatch")
        body = Body(data)
        tracking = body.text("trackingNumber", limit=64)
        body.done()
        app = await self._load(app_id)
        enrollment_id = app.enrollment_id or credentials.new_enrollment_id()
        access_code = credentials.new_access_code()
        invoice = app.invoice_number or f"INV-{app.id.removeprefix('APP-')}"
        updated = await self._transition(
            app,
            Event.DISPATCH_INQUIRY,
            operator,
            {
                "tracking_number": tracking,
                "enrollment_id": enrollment_id,
                "access_code_hash": self.keyring.digest(_PURPOSE_ACCESS, access_code),
                "access_attempts": 0,
                "access_used_at": None,
                "invoice_number": invoice,
                "invoice_amount": app.invoice_amount or self.config.ra.invoice_amount,
            },
            {"trackingNumber": tracking},
        )
        letter = inquiry_letter(
            updated,
            enrollment_id,
            access_code,
            self.config.server.public_https_url,
            self.clock.now().date(),
            [
                (g.number, g.certificate.fingerprint(hashes.SHA256()).hex())
                for g in self.authority.generations
            ],
        )
        return Dispatched(updated, enrollment_id, access_code, letter)

    # -- steps 4 and 5: letter back, payment ------------------------------------------------------
    async def record_letter(self, operator: Operator, app_id: str, data: Any) -> ApplicationRecord:
        self.allow(operator, "record_letter")
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
        return await self._transition(
            app, Event.LETTER_RETURNED, operator, {"letter_returned_at": self.clock.now()}
        )

    async def record_payment(self, operator: Operator, app_id: str, data: Any) -> ApplicationRecord:
        self.allow(operator, "record_payment")
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
        return await self._transition(
            app,
            Event.PAYMENT,
            operator,
            {"paid_at": self.clock.now(), "paid_amount": amount},
            {"amount": amount},
        )

    # -- the applicant's credentials ---------------------------------------------------------------
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

    def refused(self, kind: str, detail: str) -> None:
        """Count and log a refusal that decided nothing about anyone known (not audited)."""
        self.authority.refusals.note(kind, self.clock.now(), detail)

    def retry_after(self, attempt: Attempt) -> int:
        """Whole seconds until a throttled source may try again (RFC 9110 §10.2.3)."""
        assert attempt.retry_at is not None
        return max(math.ceil((attempt.retry_at - self.clock.now()).total_seconds()), 1)

    # -- step 6: the applicant's online input -----------------------------------------------------
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
            lambda stored: self.keyring.matches(_PURPOSE_ACCESS, candidate, stored),
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
        if app.state != State.AWAITING_ONLINE_INPUT:
            raise RAError(
                RAKind.PENDING if app.state in _BEFORE_ONLINE_INPUT else RAKind.ILLEGAL_TRANSITION,
                f"the application is {app.state}: online input is taken after the signed letter "
                "and the payment have both arrived",
                {"state": app.state},
            )
        if not confirm:
            await self.store.append_audit(self._audit(actor, "online_input.view", app.id))
            return app
        now = self.clock.now()
        return await self._transition(
            app,
            Event.ONLINE_INPUT,
            actor,
            {"online_input_at": now, "access_used_at": now, "access_code_hash": None},
        )

    async def status(self, data: Any) -> ApplicationRecord:
        """Where an application stands, for the applicant's status page. Found by the enrollment
        ID alone, so the caller must show the state and never personal data (SEED-R18)."""
        body = Body(data)
        enrollment_id = body.text("enrollmentId", limit=32)
        body.done()
        return await self._by_enrollment(enrollment_id)

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

    # -- steps 7-9: approval, PIN e-mail ----------------------------------------------------------
    async def approve(self, operator: Operator, app_id: str) -> ApplicationRecord:
        self.allow(operator, "approve")
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
        if missing and app.state == State.ONLINE_INPUT_RECEIVED:
            raise RAError(RAKind.INVALID, "cannot approve without " + ", ".join(missing))
        if self.config.ra.two_person_rule:
            await self._two_persons(operator, app)
        return await self._new_pin(
            app,
            Event.APPROVE,
            operator,
            {"approved_by": operator.name, "approved_at": self.clock.now()},
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
        self.allow(operator, "reissue_pin")
        return await self._new_pin(await self._load(app_id), Event.REISSUE_PIN, operator, {})

    async def _new_pin(
        self,
        app: ApplicationRecord,
        event: Event,
        actor: Operator | str,
        changes: Mapping[str, Any],
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
        )
        return await self._transition(
            app,
            event,
            actor,
            {
                **changes,
                "pin_hash": self.keyring.digest(_PURPOSE_PIN, pin),
                "pin_expires_at": expires,
                "pin_attempts": 0,
                "eab_key_sealed": self.keyring.seal(_PURPOSE_EAB, eab_key.encode()),
            },
            {"pinExpiresAt": expires.isoformat()},
            mail=OutboxMail(
                application_id=app.id,
                kind="pin",
                recipient=app.email,
                body_sealed=self.keyring.seal(_PURPOSE_MAIL, message.as_bytes()),
                next_attempt_at=self.clock.now(),
            ),
        )

    def open_mail(self, sealed: bytes) -> bytes:
        return self.keyring.open(_PURPOSE_MAIL, sealed)

    def eab_key(self, app: ApplicationRecord) -> bytes | None:
        """The EAB MAC key, while the application can still be redeemed (for ACME)."""
        if app.eab_key_sealed is None or app.state not in (State.APPROVED, State.PIN_SENT):
            return None
        return self.open_eab_key(app.eab_key_sealed)

    def open_eab_key(self, sealed: bytes) -> bytes:
        return self.keyring.open(_PURPOSE_EAB, sealed)

    async def pin_mailed(self, app_id: str) -> None:
        """The PIN e-mail went out: approved -> pin_sent. A pickup may redeem the PIN at any
        moment, before or while this runs; an application no longer approved (issued, say) has
        nothing left to record, and the mail stays marked sent."""
        for _ in range(_REDEEM_TRIES):
            app = await self._load(app_id)
            if app.state != State.APPROVED:
                return
            try:
                await self._transition(app, Event.PIN_MAILED, "system")
            except RAError as exc:
                if exc.kind is not RAKind.CONFLICT:
                    raise
                continue  # changed meanwhile: read it again
            return

    # -- step 10: redeem --------------------------------------------------------------------------
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
            lambda stored: self.keyring.matches(_PURPOSE_PIN, candidate, stored),
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
        if app.state in (State.ISSUED, State.REVOKED, State.EXPIRED):
            return await self._repeat(app, csr)
        if app.state not in (State.APPROVED, State.PIN_SENT):
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
        for _ in range(_REDEEM_TRIES):
            try:
                updated = await self._transition(
                    app,
                    Event.REDEEM,
                    actor,
                    {
                        # The PIN's hash stays: a retry with it after a lost response gets the
                        # same certificate; pin_used_at is what makes the PIN spent.
                        "pin_used_at": self.clock.now(),
                        "eab_key_sealed": None,
                        "certificate_generation": issued.generation,
                        "certificate_serial": format(issued.serial, "x"),
                    },
                    {"serial": format(issued.serial, "x"), "generation": issued.generation},
                    certificate=record,
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

    # -- closing ----------------------------------------------------------------------------------
    async def close(
        self, operator: Operator, app_id: str, event: Event, data: Any
    ) -> ApplicationRecord:
        self.allow(operator, "reject")
        body = Body(data)
        reason = body.text("reason", limit=512)
        body.done()
        app = await self._load(app_id)
        return await self._transition(
            app,
            event,
            operator,
            {
                "closed_reason": reason,
                "pin_hash": None,
                "access_code_hash": None,
                "eab_key_sealed": None,
            },
            {"reason": reason},
        )

    async def revoke(self, operator: Operator, app_id: str, data: Any) -> ApplicationRecord:
        """A revocation request with an RFC 5280 reason code (CRL and OCSP publish it)."""
        self.allow(operator, "revoke")
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
        if app.state != State.ISSUED or app.certificate_serial is None:
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

    async def audit_read(
        self, operator: Operator, action: str, target: str, subjects: list[str]
    ) -> None:
        """A read of personal data (addresses, names) is audited (SEED-R18)."""
        await self.store.append_audit(self._event(operator, action, target, {"subjects": subjects}))

    async def retry_mail(self, operator: Operator, mail_id: int) -> None:
        self.allow(operator, "mail")
        try:
            await self.store.retry_mail(
                mail_id, self.clock.now(), self._event(operator, "mail.requeue", f"mail/{mail_id}")
            )
        except Conflict as exc:
            raise RAError(RAKind.CONFLICT, str(exc)) from None

    # -- SEED-R18: disclosure on an in-person request ---------------------------------------------
    async def disclose(self, operator: Operator, app_id: str) -> dict[str, Any]:
        self.allow(operator, "disclose")
        app = await self._load(app_id)
        people = await self.store.applications_by_email(app.email)
        certificates = []
        for a in people:
            if a.certificate_generation is not None and a.certificate_serial is not None:
                cert = await self.store.certificate(
                    a.certificate_generation, int(a.certificate_serial, 16)
                )
                certificates.append(
                    {
                        "serial": a.certificate_serial,
                        "subject": cert.subject,
                        "notBefore": cert.not_before.isoformat(),
                        "notAfter": cert.not_after.isoformat(),
                        "status": cert.status,
                    }
                )
        await self.store.append_audit(
            self._audit(
                operator,
                "application.disclose",
                app_id,
                {"applications": [a.id for a in people]},
            )
        )
        return {
            "subject": app.email,
            "exportedAt": self.clock.now().isoformat(),
            "exportedBy": operator.name,
            "applications": [application_json(a) for a in people],
            "certificates": certificates,
            "note": "The Individual Number is never stored by this CA (SEED-R8).",
        }


_VETTING_ACTIONS = frozenset(
    {
        "application.create",
        f"application.{Event.ACCEPT_DOCUMENTS.value}",
        f"application.{Event.FIND_DEFICIENT.value}",
    }
)

_BEFORE_ONLINE_INPUT = frozenset(
    {
        State.RECEIVED,
        State.DOCUMENTS_DEFICIENT,
        State.DOCUMENTS_ACCEPTED,
        State.INQUIRY_SENT,
        State.IDENTITY_CONFIRMED,
        State.PAID,
    }
)
_BEFORE_APPROVAL = _BEFORE_ONLINE_INPUT | {State.AWAITING_ONLINE_INPUT, State.ONLINE_INPUT_RECEIVED}

# A redemption or the mailer's step commits again when only the other one moved the application.
_REDEEM_TRIES = 3


def _same_pin_unspent(before: ApplicationRecord, after: ApplicationRecord) -> bool:
    """The application can still be redeemed with the PIN checked against ``before``: waiting
    for pickup (approved or pin_sent), the same PIN, not spent, not reissued (SEED-R13)."""
    return (
        after.state in (State.APPROVED, State.PIN_SENT)
        and after.pin_hash == before.pin_hash
        and after.pin_expires_at == before.pin_expires_at
        and after.pin_used_at is None
        and after.certificate_serial is None
    )


def person(who: str) -> str:
    """The person behind an actor: the host account ``<user>`` of the CLI's ``cli:<user>`` is
    taken to be operator ``<user>``, so that someone who sets a credential on the host and
    vets through the API as themself is one person to the two-person rule."""
    return who.removeprefix("cli:")


def credential_details(actor: Operator | str) -> dict[str, Any]:
    """What an operator's audit entry says about the credential the action was made with: the
    kind and who else may know it (empty: the operator's own)."""
    if isinstance(actor, str) or actor.credential is None:
        return {}
    return {"credential": actor.credential, "credentialSetBy": list(actor.credential_set_by)}


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
    (RFC 7030 §4.2.1 lets the CA fill in the subject; it must not silently contradict it)."""
    for email in csr.requested_emails:
        if email.lower() != app.email:
            return f"the CSR asks for e-mail {email!r}, but the vetted address is {app.email!r}"
    expected = {
        NameOID.EMAIL_ADDRESS: {app.email},
        NameOID.GIVEN_NAME: {app.given_name},
        NameOID.SURNAME: {app.family_name},
        NameOID.COMMON_NAME: {
            f"{app.given_name} {app.family_name}",
            f"{app.family_name} {app.given_name}",
        },
    }
    for attribute in csr.requested_subject:
        allowed = expected.get(attribute.oid)
        value = str(attribute.value)
        if allowed is not None and value not in allowed and value.lower() not in allowed:
            name = attribute.oid._name
            return f"the CSR subject {name} {value!r} contradicts the vetted record"
    return None


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

"""The RA's part of the store (``RAStore``, ``MailStore``): operators, applications, the tries
of their credentials, and the mail outbox."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from jitsuin.server.storage import (
    ApplicationRecord,
    Attempt,
    AttemptPolicy,
    AuditEvent,
    CertificateRecord,
    Conflict,
    Credential,
    MailRecord,
    NotFound,
    Operator,
    OutboxMail,
    Outcome,
    canonical_details,
    entry_persons,
    persons_column,
    persons_from_column,
)
from jitsuin.server.storage.driver import (
    Reader,
    Row,
    Session,
    Violation,
    marks,
    moment,
    when,
)
from jitsuin.server.storage.store_base import Part, hex_serial, insert_new


class RAPart(Part):
    """``RAStore``."""

    async def audit_persons(self, target: str, actions: frozenset[str]) -> set[str]:
        if not actions:
            return set()
        rows = await self._db.fetch(
            "SELECT actor, details FROM audit_log"  # noqa: S608
            f" WHERE target = ? AND action IN ({marks(len(actions))})",
            target,
            *sorted(actions),
        )
        return {p for actor, details in rows for p in entry_persons(actor, json.loads(details))}

    # -- operators -------------------------------------------------------------------------------
    async def add_operator(self, operator: Operator, token_hash: str, audit: AuditEvent) -> None:
        async def body(db: Session) -> None:
            await insert_new(
                db,
                f"operator {operator.name!r} exists",
                "INSERT INTO operators (name, role, token_hash, created_at, token_set_by)"
                " VALUES (?, ?, ?, ?, ?)",
                operator.name,
                operator.role,
                token_hash,
                operator.created_at,
                persons_column(operator.token_set_by),
            )
            await self._append(db, audit)

        await self._db.transaction(body)

    async def _operator_where(self, clause: str, *args: Any) -> Operator | None:
        row = await self._db.lookups.fetchrow(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE {clause}",  # noqa: S608
            *args,
        )
        return _operator(row) if row else None

    async def operator_by_token(self, token_hash: str) -> Operator | None:
        return await self._operator_where("token_hash = ?", token_hash)

    async def operator_by_certificate(self, sha256: str) -> Operator | None:
        return await self._operator_where("cert_sha256 = ?", sha256)

    async def operators(self) -> list[Operator]:
        rows = await self._db.fetch(
            f"SELECT {_OPERATOR_COLUMNS} FROM operators ORDER BY name"  # noqa: S608
        )
        return [_operator(r) for r in rows]

    async def bind_operator_certificate(
        self,
        name: str,
        sha256: str,
        generation: int,
        serial: int,
        audit: AuditEvent,
        *,
        bound_by: tuple[str, ...],
    ) -> None:
        await self._set_operator_credential(
            name,
            "UPDATE operators SET cert_sha256 = ?, cert_generation = ?, cert_serial = ?,"
            " cert_bound_by = ? WHERE name = ?",
            (sha256, generation, hex_serial(serial), persons_column(bound_by), name),
            "the certificate is bound to another operator",
            audit,
        )

    async def rotate_operator_token(
        self, name: str, token_hash: str, audit: AuditEvent, *, set_by: tuple[str, ...]
    ) -> None:
        await self._set_operator_credential(
            name,
            "UPDATE operators SET token_hash = ?, token_set_by = ? WHERE name = ?",
            (token_hash, persons_column(set_by), name),
            "the token hash belongs to another operator",
            audit,
        )

    async def _set_operator_credential(
        self, name: str, update: str, args: tuple[Any, ...], taken: str, audit: AuditEvent
    ) -> None:
        """Run ``update`` of the operator ``name`` with its audit entry in one transaction:
        NotFound without such an operator, Conflict (``taken``) when another operator has the
        credential."""

        async def body(db: Session) -> None:
            try:
                changed = await db.execute(update, *args)
            except Violation as exc:
                raise Conflict(taken) from exc
            if changed != 1:
                raise NotFound(f"there is no operator {name!r}")
            await self._append(db, audit)

        await self._db.transaction(body)

    async def unbind_operator_certificate(self, name: str, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET cert_sha256 = NULL, cert_generation = NULL,"
            " cert_serial = NULL, cert_bound_by = NULL WHERE name = ? AND cert_sha256 IS NOT NULL",
            (name,),
            f"operator {name!r} has no certificate bound",
            audit,
        )

    async def disable_operator(self, name: str, at: dt.datetime, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL",
            (at, name),
            f"operator {name!r} is disabled already",
            audit,
        )

    async def enable_operator(self, name: str, audit: AuditEvent) -> None:
        await self._change_operator(
            name,
            "UPDATE operators SET disabled_at = NULL WHERE name = ? AND disabled_at IS NOT NULL",
            (name,),
            f"operator {name!r} is not disabled",
            audit,
        )

    async def _change_operator(
        self, name: str, update: str, args: tuple[Any, ...], conflict: str, audit: AuditEvent
    ) -> None:
        """Run a conditional ``update`` of the operator ``name`` with its audit entry in one
        transaction: NotFound without such an operator, Conflict (``conflict``) when its
        condition does not hold."""

        async def body(db: Session) -> None:
            if await db.execute(update, *args) != 1:
                if await db.fetchrow("SELECT 1 FROM operators WHERE name = ?", name) is None:
                    raise NotFound(f"there is no operator {name!r}")
                raise Conflict(conflict)
            await self._append(db, audit)

        await self._db.transaction(body)

    # -- applications ----------------------------------------------------------------------------
    async def create_application(self, record: ApplicationRecord, audit: AuditEvent) -> None:
        values = _application_columns({f.name: getattr(record, f.name) for f in fields(record)})

        async def body(db: Session) -> None:
            await insert_new(
                db,
                f"application {record.id} exists",
                f"INSERT INTO applications ({', '.join(values)})"  # noqa: S608
                f" VALUES ({marks(len(values))})",
                *values.values(),
            )
            await self._append(db, audit)

        await self._db.transaction(body)

    @staticmethod
    async def _application_where(db: Reader, tail: str, *args: Any) -> list[ApplicationRecord]:
        rows = await db.fetch(
            f"SELECT {', '.join(_APPLICATION_FIELDS)} FROM applications {tail}",  # noqa: S608
            *args,
        )
        return [_application(r) for r in rows]

    async def application(self, application_id: str) -> ApplicationRecord:
        found = await self._application_where(self._db.lookups, "WHERE id = ?", application_id)
        if not found:
            raise NotFound(f"no application {application_id}")
        return found[0]

    async def application_by_enrollment_id(self, enrollment_id: str) -> ApplicationRecord:
        found = await self._application_where(
            self._db.lookups, "WHERE enrollment_id = ?", enrollment_id
        )
        if not found:
            raise NotFound("unknown enrollment ID")
        return found[0]

    async def applications_by_email(self, email: str) -> list[ApplicationRecord]:
        return await self._application_where(
            self._db, "WHERE email = ? ORDER BY created_at, id", email
        )

    async def applications_by_name(
        self, text: str, limit: int = 100, offset: int = 0
    ) -> list[ApplicationRecord]:
        # Written once for both databases: lower() on both sides, since SQLite's LIKE ignores
        # case and PostgreSQL's does not, and the wildcards escaped, so that what the operator
        # typed is matched as it is. A name holds no U+0000, which PostgreSQL cannot take.
        needle = "".join(text.split()).lower()
        if not needle or "\x00" in needle:
            return []
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        return await self._application_where(
            self._db,
            "WHERE lower(family_name || given_name) LIKE ? ESCAPE '\\'"
            " OR lower(given_name || family_name) LIKE ? ESCAPE '\\'"
            " ORDER BY created_at, id LIMIT ? OFFSET ?",
            pattern,
            pattern,
            limit,
            offset,
        )

    async def applications(
        self, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApplicationRecord]:
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        return await self._application_where(
            self._db, f"{where} ORDER BY created_at, id LIMIT ? OFFSET ?", *args, limit, offset
        )

    # -- the workflow's writes, one per kind of step ---------------------------------------------
    # Each takes the target ``state`` the workflow table gave (server/ra/workflow.py, by
    # RABase.move in server/ra/base.py) and writes it with the step's own columns, ``updated_at``
    # = ``at`` and the audit entry, if the application is still at ``version``.
    async def move_application(
        self, application_id: str, version: int, state: str, at: dt.datetime, audit: AuditEvent
    ) -> ApplicationRecord:
        return await self._update_application(application_id, version, state, at, {}, audit)

    async def record_review(
        self,
        application_id: str,
        version: int,
        state: str,
        at: dt.datetime,
        audit: AuditEvent,
        *,
        review: Mapping[str, Any],
        reviewed_by: str,
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id,
            version,
            state,
            at,
            {"review": canonical_details(review), "reviewed_by": reviewed_by},
            audit,
        )

    async def record_inquiry(
        self,
        application_id: str,
        version: int,
        state: str,
        at: dt.datetime,
        audit: AuditEvent,
        *,
        tracking_number: str,
        enrollment_id: str,
        access_code_hash: str,
        invoice_number: str,
        invoice_amount: int,
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id,
            version,
            state,
            at,
            {
                "tracking_number": tracking_number,
                "enrollment_id": enrollment_id,
                "access_code_hash": access_code_hash,
                Credential.ACCESS_CODE.counter: 0,
                "access_used_at": None,
                "invoice_number": invoice_number,
                "invoice_amount": invoice_amount,
            },
            audit,
        )

    async def record_letter(
        self, application_id: str, version: int, state: str, at: dt.datetime, audit: AuditEvent
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id, version, state, at, {"letter_returned_at": at}, audit
        )

    async def record_payment(
        self,
        application_id: str,
        version: int,
        state: str,
        at: dt.datetime,
        audit: AuditEvent,
        *,
        amount: int,
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id, version, state, at, {"paid_at": at, "paid_amount": amount}, audit
        )

    async def record_online_input(
        self, application_id: str, version: int, state: str, at: dt.datetime, audit: AuditEvent
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id,
            version,
            state,
            at,
            {"online_input_at": at, "access_used_at": at, "access_code_hash": None},
            audit,
        )

    async def record_approval_and_pin(
        self,
        application_id: str,
        version: int,
        state: str,
        at: dt.datetime,
        audit: AuditEvent,
        *,
        approved_by: str,
        pin_hash: str,
        pin_expires_at: dt.datetime,
        eab_key_sealed: bytes,
        mail: OutboxMail,
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id,
            version,
            state,
            at,
            {
                "approved_by": approved_by,
                "approved_at": at,
                **_new_pin(pin_hash, pin_expires_at, eab_key_sealed),
            },
            audit,
            mail=mail,
        )

    async def reissue_pin(
        self,
        application_id: str,
        version: int,
        state: str,
        at: dt.datetime,
        audit: AuditEvent,
        *,
        pin_hash: str,
        pin_expires_at: dt.datetime,
        eab_key_sealed: bytes,
        mail: OutboxMail,
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id,
            version,
            state,
            at,
            _new_pin(pin_hash, pin_expires_at, eab_key_sealed),
            audit,
            mail=mail,
        )

    async def redeem_application(
        self,
        application_id: str,
        version: int,
        state: str,
        at: dt.datetime,
        audit: AuditEvent,
        *,
        certificate: CertificateRecord,
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id,
            version,
            state,
            at,
            {
                # The PIN's hash stays: a retry with it after a lost response gets the same
                # certificate; pin_used_at is what makes the PIN spent.
                "pin_used_at": at,
                "eab_key_sealed": None,
                "certificate_generation": certificate.generation,
                "certificate_serial": hex_serial(certificate.serial),
            },
            audit,
            certificate=certificate,
        )

    async def close_application(
        self,
        application_id: str,
        version: int,
        state: str,
        at: dt.datetime,
        audit: AuditEvent,
        *,
        reason: str,
    ) -> ApplicationRecord:
        return await self._update_application(
            application_id,
            version,
            state,
            at,
            {
                "closed_reason": reason,
                "pin_hash": None,
                "access_code_hash": None,
                "eab_key_sealed": None,
            },
            audit,
        )

    async def _update_application(
        self,
        application_id: str,
        version: int,
        state: str,
        at: dt.datetime,
        columns: Mapping[str, Any],
        audit: AuditEvent,
        mail: OutboxMail | None = None,
        certificate: CertificateRecord | None = None,
    ) -> ApplicationRecord:
        values = {**columns, "state": state, "updated_at": at}
        assignments = ", ".join(f"{name} = ?" for name in values)

        async def body(db: Session) -> ApplicationRecord:
            # One conditional statement: on PostgreSQL (READ COMMITTED) a concurrent writer's
            # row lock is waited for, then the version is compared with the committed row, so
            # of two racing updates exactly one applies.
            changed = await db.execute(
                f"UPDATE applications SET {assignments}, version = version + 1"  # noqa: S608
                " WHERE id = ? AND version = ?",
                *values.values(),
                application_id,
                version,
            )
            if changed != 1:
                current = await self._application_where(db, "WHERE id = ?", application_id)
                if not current:
                    raise NotFound(f"no application {application_id}")
                raise Conflict(
                    f"application {application_id} changed meanwhile (now {current[0].state})"
                )
            for counter in _ATTEMPT_COUNTERS & set(values):
                # A new credential (new letter, new PIN): the waits of its old tries go too.
                await db.execute(
                    "DELETE FROM attempt_throttle WHERE application_id = ? AND counter = ?",
                    application_id,
                    counter,
                )
            if certificate is not None:
                await self._insert_certificate(db, certificate)
            if mail is not None:
                await db.execute(
                    "UPDATE mail_outbox SET status = 'superseded', body_sealed = NULL"
                    " WHERE application_id = ? AND kind = ? AND status IN ('pending', 'failed')",
                    mail.application_id,
                    mail.kind,
                )
                await db.execute(
                    "INSERT INTO mail_outbox (application_id, kind, recipient, body_sealed,"
                    " status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                    mail.application_id,
                    mail.kind,
                    mail.recipient,
                    mail.body_sealed,
                    mail.next_attempt_at,
                    audit.at,
                )
            await self._append(db, audit)
            (updated,) = await self._application_where(db, "WHERE id = ?", application_id)
            return updated

        return await self._db.transaction(body)

    async def try_credential(
        self,
        application_id: str,
        credential: Credential,
        policy: AttemptPolicy,
        source: str,
        now: dt.datetime,
        matches: Callable[[Any], bool],
        failure: AuditEvent,
    ) -> Attempt:
        counter, column = credential.counter, credential.column
        refund = f"UPDATE applications SET {counter} = {counter} - 1 WHERE id = ?"  # noqa: S608
        throttle = "application_id = ? AND counter = ? AND source = ?"

        async def body(db: Session) -> Attempt:
            # Count first, in one conditional statement, so a try beyond the limit is never
            # compared however many arrive at once: tries of one application take turns until
            # COMMIT (SQLite: BEGIN IMMEDIATE; PostgreSQL: the row lock, the limit re-checked
            # after the wait).
            claimed = await db.fetchrow(
                f"UPDATE applications SET {counter} = {counter} + 1"  # noqa: S608
                f" WHERE id = ? AND {counter} < ? RETURNING {counter}, {column}",
                application_id,
                policy.limit,
            )
            if claimed is None:
                row = await db.fetchrow(
                    f"SELECT {counter} FROM applications WHERE id = ?",  # noqa: S608
                    application_id,
                )
                if row is None:
                    raise NotFound(f"no application {application_id}")
                return Attempt(Outcome.LOCKED, int(row[0]))
            tried, stored = int(claimed[0]), claimed[1]
            waiting = await db.fetchrow(
                f"SELECT wrong, retry_at FROM attempt_throttle WHERE {throttle}",  # noqa: S608
                application_id,
                counter,
                source,
            )
            wrong_here = int(waiting[0]) if waiting else 0
            if waiting and when(waiting[1]) > now:
                await db.execute(refund, application_id)
                return Attempt(Outcome.THROTTLED, tried - 1, when(waiting[1]))
            if matches(stored):
                await db.execute(refund, application_id)
                await db.execute(
                    f"DELETE FROM attempt_throttle WHERE {throttle}",  # noqa: S608
                    application_id,
                    counter,
                    source,
                )
                return Attempt(Outcome.RIGHT, tried - 1)
            await db.execute(
                "INSERT INTO attempt_throttle (application_id, counter, source, wrong, retry_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (application_id, counter, source)"
                " DO UPDATE SET wrong = excluded.wrong, retry_at = excluded.retry_at",
                application_id,
                counter,
                source,
                wrong_here + 1,
                now + policy.wait(wrong_here + 1),
            )
            await self._append(db, failure)
            return Attempt(Outcome.WRONG, tried)

        return await self._db.transaction(body)


class MailPart(Part):
    """``MailStore``."""

    async def due_mail(self, now: dt.datetime, limit: int = 10) -> list[MailRecord]:
        rows = await self._db.fetch(
            f"SELECT {_MAIL_COLUMNS} FROM mail_outbox"  # noqa: S608
            " WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            now,
            limit,
        )
        return [_mail(r) for r in rows]

    async def mail(self, status: str | None = None, limit: int = 100) -> list[MailRecord]:
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = await self._db.fetch(
            f"SELECT {_MAIL_COLUMNS} FROM mail_outbox {where} ORDER BY id LIMIT ?",  # noqa: S608
            *args,
            limit,
        )
        return [_mail(r) for r in rows]

    async def claim_mail(self, mail_id: int, now: dt.datetime, until: dt.datetime) -> bool:
        """Take a due mail for sending until ``until``, so that one process sends it."""

        async def body(db: Session) -> int:
            return await db.execute(
                "UPDATE mail_outbox SET next_attempt_at = ?"
                " WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?",
                until,
                mail_id,
                now,
            )

        return await self._db.transaction(body) == 1

    async def mark_mail(
        self,
        mail_id: int,
        status: str,
        audit: AuditEvent,
        error: str | None = None,
        next_attempt_at: dt.datetime | None = None,
        sent_at: dt.datetime | None = None,
    ) -> None:
        await self._change_one(
            "UPDATE mail_outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = coalesce(?, next_attempt_at), sent_at = ?,"
            " body_sealed = CASE WHEN ? THEN NULL ELSE body_sealed END"
            " WHERE id = ? AND status = 'pending'",
            (status, error, next_attempt_at, sent_at, status == "sent", mail_id),
            Conflict(f"mail {mail_id} is no longer pending"),
            audit,
        )

    async def retry_mail(self, mail_id: int, now: dt.datetime, audit: AuditEvent) -> None:
        await self._change_one(
            "UPDATE mail_outbox SET status = 'pending', next_attempt_at = ?"
            " WHERE id = ? AND status = 'failed' AND body_sealed IS NOT NULL",
            (now, mail_id),
            Conflict(f"mail {mail_id} is not a failed mail that can be retried"),
            audit,
        )


_OPERATOR_COLUMNS = (
    "name, role, created_at, disabled_at, cert_sha256, cert_generation, cert_serial,"
    " token_set_by, cert_bound_by"
)
_MAIL_COLUMNS = (
    "id, application_id, kind, recipient, body_sealed, status, attempts, last_error,"
    " next_attempt_at, created_at, sent_at"
)

# The applications table has one column per ApplicationRecord field, of the same name.
_APPLICATION_FIELDS = tuple(f.name for f in fields(ApplicationRecord))
_APPLICATION_TIMES = frozenset(name for name in _APPLICATION_FIELDS if name.endswith("_at"))
_ATTEMPT_COUNTERS = frozenset(c.counter for c in Credential)


def _new_pin(pin_hash: str, expires_at: dt.datetime, eab_key_sealed: bytes) -> dict[str, Any]:
    """A new PIN and EAB key (approval, or a PIN sent again): their tries count from zero."""
    return {
        "pin_hash": pin_hash,
        "pin_expires_at": expires_at,
        Credential.PIN.counter: 0,
        "eab_key_sealed": eab_key_sealed,
    }


def _application_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Application fields as their columns take them: times as datetimes (ISO 8601 text is
    read as one), the review as canonical JSON."""
    out = {}
    for name, value in values.items():
        if name in _APPLICATION_TIMES and isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        elif name == "review" and value is not None:
            value = canonical_details(value)
        out[name] = value
    return out


def _application(row: Row) -> ApplicationRecord:
    values = dict(zip(_APPLICATION_FIELDS, row, strict=True))
    for name in _APPLICATION_TIMES:
        values[name] = moment(values[name])
    if values["review"]:
        values["review"] = json.loads(values["review"])
    if values["eab_key_sealed"] is not None:
        values["eab_key_sealed"] = bytes(values["eab_key_sealed"])
    return ApplicationRecord(**values)


def _operator(row: Row) -> Operator:
    return Operator(
        name=row[0],
        role=row[1],
        created_at=when(row[2]),
        disabled_at=moment(row[3]),
        certificate_sha256=row[4],
        certificate_generation=row[5],
        certificate_serial=int(row[6], 16) if row[6] is not None else None,
        token_set_by=persons_from_column(row[7]),
        certificate_bound_by=persons_from_column(row[8]) if row[4] is not None else (),
    )


def _mail(row: Row) -> MailRecord:
    return MailRecord(
        id=row[0],
        application_id=row[1],
        kind=row[2],
        recipient=row[3],
        body_sealed=bytes(row[4]) if row[4] is not None else None,
        status=row[5],
        attempts=row[6],
        last_error=row[7],
        next_attempt_at=when(row[8]),
        created_at=when(row[9]),
        sent_at=moment(row[10]),
    )

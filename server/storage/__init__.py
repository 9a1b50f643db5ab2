"""The store interface (docs/architecture.md, house habit 10: the consumer owns it) and its records.

SQL lives only below this package, written once in ``store.py`` over a thin driver layer
(``driver.py``): SQLite (``sqlite.py``) is the embedded default, PostgreSQL (``postgres.py``)
serves several processes; both pass the same contract tests (tests/server/test_store_contract.py).
``Store`` is the union of the parts below, one per client (CA, audit, RA, mail, EST, ACME), so
that a service can type against the part it uses. This file is long because it is the whole
interface: the records, the audit chain's rules and the protocol parts.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jitsuin.protocol.acme.status import (
    CANCELLABLE_ORDERS,
    AccountStatus,
    AuthzStatus,
    ChallengeStatus,
    OrderStatus,
)

GENESIS_HASH = "0" * 64


class StoreError(Exception):
    pass


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    pass


class AuditChainBroken(StoreError):
    pass


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    number: int
    certificate_der: bytes
    key_ref: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class LinkRecord:
    old_generation: int
    new_generation: int
    old_with_new: bytes
    new_with_old: bytes


@dataclass(frozen=True, slots=True)
class CRLRecord:
    number: int
    generation: int
    this_update: dt.datetime
    next_update: dt.datetime
    der: bytes


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    generation: int
    serial: int
    der: bytes
    subscriber_id: str | None
    subject: str
    email: str | None
    profile: str
    not_before: dt.datetime
    not_after: dt.datetime
    issued_at: dt.datetime
    spki_sha256: str
    status: str = "valid"
    revoked_at: dt.datetime | None = None
    revocation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class IntentRecord:
    """The intent to sign a certificate, recorded before the CA key signs it: ``reserved`` until
    the certificate is recorded (``issued``) or the signature is thrown away (``discarded``)."""

    generation: int
    serial: int
    profile: str
    tbs_sha256: str | None  # None for certificates recorded before intents existed
    requester: str
    target: str
    reserved_at: dt.datetime
    state: str = "reserved"
    settled_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: str
    created_at: dt.datetime
    disabled_at: dt.datetime | None = None
    # The TLS client certificate bound to the operator (migration 0007), if any: the SHA-256
    # fingerprint of its DER (hex) and where its revocation status is kept.
    certificate_sha256: str | None = None
    certificate_generation: int | None = None
    certificate_serial: int | None = None
    # Who else may know each credential (migration 0012): the persons who set the token and
    # bound the certificate, when that was not the operator themself ("cli:<user>" for the host
    # CLI). Empty: the operator's own. The two-person rule counts them as acting too.
    token_set_by: tuple[str, ...] = ()
    certificate_bound_by: tuple[str, ...] = ()
    # How this operator authenticated the request at hand ("token" or "certificate"); None for
    # an operator read from the store outside a request.
    credential: str | None = None

    @property
    def credential_set_by(self) -> tuple[str, ...]:
        """Who else may know the credential this request was made with."""
        if self.credential == "token":
            return self.token_set_by
        if self.credential == "certificate":
            return self.certificate_bound_by
        return ()


@dataclass(frozen=True, slots=True)
class ApplicationRecord:
    """One application = one certificate (docs/flow.md). Column names match the table."""

    id: str
    version: int
    state: str
    profile: str
    family_name: str
    given_name: str
    email: str
    qualification_group: str
    qualification_number: str
    postal_address: str
    date_of_birth: str
    billing_addressee: str
    billing_company: str | None
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    reviewed_by: str | None = None
    review: Mapping[str, Any] | None = None
    tracking_number: str | None = None
    invoice_number: str | None = None
    invoice_amount: int | None = None
    letter_returned_at: dt.datetime | None = None
    paid_at: dt.datetime | None = None
    paid_amount: int | None = None
    enrollment_id: str | None = None
    access_code_hash: str | None = None
    access_attempts: int = 0
    access_used_at: dt.datetime | None = None
    online_input_at: dt.datetime | None = None
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    pin_hash: str | None = None
    pin_expires_at: dt.datetime | None = None
    pin_attempts: int = 0
    pin_used_at: dt.datetime | None = None
    eab_key_sealed: bytes | None = None
    certificate_generation: int | None = None
    certificate_serial: str | None = None
    closed_reason: str | None = None


class Credential(enum.Enum):
    """A secret the applicant types, by the counter its wrong tries add to and the column that
    keeps it (hashed or sealed). The PIN e-mail's ACME EAB key shares the PIN's counter: both are
    the same pickup credential (docs/flow.md)."""

    ACCESS_CODE = ("access_attempts", "access_code_hash")
    PIN = ("pin_attempts", "pin_hash")
    EAB_KEY = ("pin_attempts", "eab_key_sealed")

    @property
    def counter(self) -> str:
        return self.value[0]

    @property
    def column(self) -> str:
        return self.value[1]


class Outcome(enum.Enum):
    RIGHT = "right"  # compared and matched: the try is not counted
    WRONG = "wrong"  # compared and did not match: counted, audited, the source waits
    LOCKED = "locked"  # max_attempts wrong tries already: not compared
    THROTTLED = "throttled"  # this source's wait after its last wrong try is not over: not compared


@dataclass(frozen=True, slots=True)
class AttemptPolicy:
    """The hard lock (``limit`` wrong tries per credential, lifted only by a new credential) and
    the wait a source has after each of its wrong tries: ``backoff`` doubled per wrong try of that
    source, at most ``longest_wait``."""

    limit: int
    backoff: dt.timedelta
    longest_wait: dt.timedelta = dt.timedelta(hours=1)

    def wait(self, wrong_from_source: int) -> dt.timedelta:
        if wrong_from_source <= 0 or not self.backoff:
            return dt.timedelta(0)
        doublings = min(wrong_from_source - 1, 32)
        return min(self.backoff * 2**doublings, self.longest_wait)


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    wrong: int  # wrong tries counted against the credential, this one included
    retry_at: dt.datetime | None = None  # THROTTLED: when this source may try again


@dataclass(frozen=True, slots=True)
class OutboxMail:
    application_id: str
    kind: str
    recipient: str
    body_sealed: bytes
    next_attempt_at: dt.datetime


@dataclass(frozen=True, slots=True)
class MailRecord:
    id: int
    application_id: str
    kind: str
    recipient: str
    body_sealed: bytes | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime
    created_at: dt.datetime
    sent_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ReenrollmentRecord:
    id: int
    previous_generation: int
    previous_serial: str
    csr_sha256: str
    csr_der: bytes
    profile: str
    subscriber_id: str
    status: str
    created_at: dt.datetime
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    certificate_generation: int | None = None
    certificate_serial: str | None = None


# -- ACME (RFC 8555) records ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AcmeEABKeyRecord:
    """An EAB key an operator made for the tls-server profile, with its policy."""

    kid: str
    key_sealed: bytes
    allowed: tuple[str, ...]  # DNS suffixes ("example.org") and IP networks ("192.0.2.0/24")
    lifetime_days: int
    max_certificates: int | None
    expires_at: dt.datetime | None
    note: str | None
    created_by: str
    created_at: dt.datetime
    used_at: dt.datetime | None = None
    account_id: str | None = None
    disabled_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AcmeAccountRecord:
    id: str
    thumbprint: str
    jwk: Mapping[str, str]
    contact: tuple[str, ...]
    status: AccountStatus
    kind: str  # "personal" (kid = enrollment ID) or "tls-server" (an operator's EAB key)
    eab_kid: str
    eab_alg: str
    application_id: str | None
    terms_agreed: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AcmeChallengeRecord:
    id: str
    authz_id: str
    type: str
    token: str
    status: ChallengeStatus
    updated_at: dt.datetime
    validated_at: dt.datetime | None = None
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AcmeAuthzRecord:
    id: str
    account_id: str
    identifier_type: str
    identifier_value: str
    wildcard: bool
    status: AuthzStatus
    expires_at: dt.datetime
    created_at: dt.datetime
    challenges: tuple[AcmeChallengeRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class AcmeOrderRecord:
    id: str
    account_id: str
    status: OrderStatus
    expires_at: dt.datetime
    identifiers: tuple[tuple[str, str], ...]  # (type, value)
    profile: str
    created_at: dt.datetime
    updated_at: dt.datetime
    authz_ids: tuple[str, ...] = ()
    replaces: str | None = None
    error: Mapping[str, Any] | None = None
    csr_der: bytes | None = None
    reenrollment_id: int | None = None
    certificate_generation: int | None = None
    certificate_serial: str | None = None
    seq: int = 0


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened; the store numbers it and chains it."""

    at: dt.datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    event: AuditEvent
    prev_hash: str
    hash: str


def canonical_details(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, seq: int, event: AuditEvent) -> str:
    """SHA-256 over the previous hash and the canonical entry: altering, removing or reordering
    any entry breaks every hash after it."""
    body = canonical_details(
        {
            "seq": seq,
            # The store keeps UTC; hash the UTC form so an event logged with another offset
            # still verifies after the round trip.
            "at": event.at.astimezone(dt.UTC).isoformat(),
            "actor": event.actor,
            "action": event.action,
            "target": event.target,
            "details": json.loads(canonical_details(event.details)),
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def verify_chain(entries: list[AuditEntry], prev_hash: str = GENESIS_HASH) -> int:
    """Check the chain from ``prev_hash``; return how many entries were checked."""
    for entry in entries:
        if (
            entry.prev_hash != prev_hash
            or chain_hash(prev_hash, entry.seq, entry.event) != entry.hash
        ):
            raise AuditChainBroken(f"audit log entry {entry.seq} does not match the hash chain")
        prev_hash = entry.hash
    return len(entries)


def verify_head(last_seq: int, last_hash: str, head: tuple[int, str] | None) -> None:
    """Compare the end of the verified chain (``last_seq`` 0 and the genesis hash for an empty
    log) with the head the store recorded at the last append (migration 0008): a hash chain
    alone cannot show that its newest entries were cut off."""
    if head is None:
        raise AuditChainBroken("the audit log's head record is missing")
    head_seq, head_hash = head
    if head_seq > last_seq:
        removed = (
            f"entry {head_seq}"
            if head_seq == last_seq + 1
            else f"entries {last_seq + 1} to {head_seq}"
        )
        raise AuditChainBroken(
            f"audit log {removed} removed: the log ends at entry {last_seq}, its recorded head "
            f"is entry {head_seq}"
        )
    if head_seq != last_seq or head_hash != last_hash:
        raise AuditChainBroken(
            f"audit log entry {last_seq} does not match the recorded head (entry {head_seq})"
        )


def persons_column(persons: Sequence[str]) -> str:
    """``Operator.token_set_by`` / ``certificate_bound_by`` as stored: a sorted JSON array."""
    return json.dumps(sorted(set(persons)))


def persons_from_column(text: str | None) -> tuple[str, ...]:
    # NULL only on a row that migration 0012 found no audit entry for; operators are created by
    # the host CLI only, so such a credential was set there.
    return tuple(json.loads(text)) if text is not None else ("cli:unknown",)


def entry_persons(actor: str, details: Mapping[str, Any]) -> set[str]:
    """The persons behind one audit entry: its actor and whoever else knew the credential it
    was made with (details ``credentialSetBy``, written by the RA for operator actions)."""
    others = details.get("credentialSetBy")
    return {actor, *(others if isinstance(others, list) else ())}


async def verify_audit_log(
    read: Callable[[int], Awaitable[list[AuditEntry]]],
    read_head: Callable[[], Awaitable[tuple[int, str] | None]],
) -> int:
    """Verify the whole chain and its recorded head; ``read(after_seq)`` returns the next batch
    of entries, ``read_head()`` the head. Entries appended while the chain is read move the head
    past the last entry read: the entries after it are read and verified too, until a read
    finds none, so an append racing the check is not reported as a removal (while entries
    really cut off still are). Returns how many entries were checked."""
    checked, prev_hash, after = 0, GENESIS_HASH, 0
    while True:
        found = False
        while batch := await read(after):
            found = True
            checked += verify_chain(batch, prev_hash)
            prev_hash, after = batch[-1].hash, batch[-1].seq
        head = await read_head()
        if head is None or head[0] <= after or not found:
            verify_head(after, prev_hash, head)
            return checked


def application_revoked(application_id: str, reason: str, revocation: AuditEvent) -> AuditEvent:
    """The audit entry of an application closed because its certificate was revoked: the same
    action and details as the RA's own transition (docs/flow.md: issued -> revoked)."""
    return AuditEvent(
        revocation.at,
        revocation.actor,
        "application.revoke",
        f"application/{application_id}",
        {"from": "issued", "to": "revoked", "reason": reason},
    )


# RFC 8555 §7.3.6, §7.1.6: the orders a deactivation cancels (-> invalid), from the table.
ACME_CANCELLABLE_ORDERS = tuple(status.value for status in CANCELLABLE_ORDERS)


def acme_cancelled(
    kind: str, object_id: str, previous: str, deactivation: AuditEvent
) -> AuditEvent:
    """The audit entry of an order (``kind`` "order": -> invalid) or authorization ("authz":
    -> deactivated) cancelled because its account was deactivated (RFC 8555 §7.3.6), under the
    deactivation's actor and time."""
    if kind == "order":
        action, to = "acme.order.cancel", "invalid"
    else:
        action, to = "acme.authorization.deactivate", "deactivated"
    return AuditEvent(
        deactivation.at,
        deactivation.actor,
        action,
        f"acme/{kind}/{object_id}",
        {"from": previous, "to": to, "reason": "account deactivated"},
    )


async def open_store(config: HasDatabaseURL) -> Store:
    """The store ``config.database_url`` names: ``sqlite:///PATH`` (the embedded default) or
    ``postgresql://USER@HOST[:PORT]/DATABASE[?schema=NAME]`` (several server processes)."""
    url = config.database_url
    if url.startswith("sqlite:///"):
        from jitsuin.server.storage.sqlite import SQLiteStore  # the driver only when used

        return await SQLiteStore.open(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from jitsuin.server.storage.postgres import PostgresStore

        return await PostgresStore.open(url)
    raise ValueError(f"unsupported database_url {url!r}")


class HasDatabaseURL(Protocol):
    @property
    def database_url(self) -> str: ...


class CAStore(Protocol):
    """What the CA authority (server/authority.py) keeps: its generations and the links between
    them, the certificates it signs and their signing intents, revocation and CRLs."""

    async def add_generation(
        self, record: GenerationRecord, audit: AuditEvent, link: LinkRecord | None = None
    ) -> None:
        """Record a CA generation (with the link certificates from the previous one, after a
        rollover) and its audit entry in one transaction (Conflict if the number exists)."""
        ...

    async def links(self) -> list[LinkRecord]: ...

    async def generations(self) -> list[GenerationRecord]:
        """All CA generations, oldest first."""
        ...

    async def reserve_intent(self, intent: IntentRecord) -> None:
        """Record the intent to sign before the CA key signs. Conflict when the serial is already
        reserved or certified in the generation. Recording a certificate settles its intent as
        ``issued`` in the same transaction (every method that records a certificate does)."""
        ...

    async def discard_intent(
        self, generation: int, serial: int, at: dt.datetime, audit: AuditEvent
    ) -> None:
        """Settle a reserved intent as ``discarded`` (signed, never handed out) with its audit
        entry. NotFound when there is no such intent; Conflict when it is settled already."""
        ...

    async def intents(self, state: str, limit: int = 1000) -> list[IntentRecord]:
        """Intents in ``state``, oldest first."""
        ...

    async def certificates_without_intent(self, limit: int = 1000) -> list[tuple[int, int]]:
        """(generation, serial) of recorded certificates with no intent settled as issued."""
        ...

    async def record_certificate(self, record: CertificateRecord, audit: AuditEvent) -> None:
        """Record an issued certificate and its audit entry in one transaction. Conflict when the
        serial exists for the generation or the subscriber's key was certified before."""
        ...

    async def certificate(self, generation: int, serial: int) -> CertificateRecord: ...

    async def certificates(self, limit: int = 100, offset: int = 0) -> list[CertificateRecord]: ...

    async def count_certificates(self) -> int: ...

    async def used_keys(self, subscriber_id: str) -> set[str]:
        """SPKI SHA-256 hashes of the subscriber's certificates (SEED-R2)."""
        ...

    async def revoke_certificate(
        self, generation: int, serial: int, reason: str, at: dt.datetime, audit: AuditEvent
    ) -> None:
        """Revoke a valid certificate (Conflict when unknown or already revoked) and, in the same
        transaction, close the application it was issued for, if it is still ``issued``
        (audited as ``application_revoked`` describes): whichever door revokes (RA, ACME
        revokeCert, CLI), the certificate and its application never disagree."""
        ...

    async def revoked(
        self, generation: int
    ) -> list[tuple[int, dt.datetime, str | None, dt.datetime]]:
        """(serial, revoked_at, reason, not_after) of the generation's revoked certificates."""
        ...

    async def latest_expiry(self, generation: int) -> dt.datetime | None:
        """The last notAfter among the generation's certificates."""
        ...

    async def next_crl(
        self, generation: int
    ) -> tuple[int, list[tuple[int, dt.datetime, str | None, dt.datetime]]]:
        """The next CRL number (of the counter ``crl``) and what the CRL lists, as ``revoked``
        gives it, read in one transaction after the number is taken: a CRL with a higher number
        lists every certificate one with a lower number does, whichever process made either."""
        ...

    async def add_crl(self, record: CRLRecord) -> None: ...

    async def latest_crl(self, generation: int) -> CRLRecord | None: ...


class AuditStore(Protocol):
    """The hash-chained audit log. Every writing method of the store appends its entry in its
    own transaction; these append an entry alone, read the log and check its chain."""

    async def append_audit(self, event: AuditEvent) -> AuditEntry: ...

    async def audit_log(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]: ...

    async def audit_entries(
        self,
        target: str | None = None,
        actor: str | None = None,
        before_seq: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries before ``before_seq`` (all when None), newest first,
        of ``target`` and/or by ``actor`` when given: one page of the RA console's audit view."""
        ...

    async def verify_audit_chain(self) -> int:
        """Walk the whole log; AuditChainBroken on the first mismatch; returns the count."""
        ...


class RAStore(Protocol):
    """The RA workflow (server/ra/): operators, applications and the tries of their credentials."""

    async def add_operator(self, operator: Operator, token_hash: str, audit: AuditEvent) -> None:
        """Insert the operator (its ``token_set_by`` included). Conflict when the name exists."""
        ...

    async def operator_by_token(self, token_hash: str) -> Operator | None: ...

    async def operators(self) -> list[Operator]: ...

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
        """Bind the operator to one client certificate (replacing an earlier one), recording
        ``bound_by`` (``Operator.certificate_bound_by``), with its audit entry, in one
        transaction. NotFound when there is no such operator; Conflict when the
        certificate is bound to another operator."""
        ...

    async def unbind_operator_certificate(self, name: str, audit: AuditEvent) -> None:
        """Remove the operator's certificate binding with its audit entry. NotFound when there is
        no such operator; Conflict when no certificate is bound."""
        ...

    async def operator_by_certificate(self, sha256: str) -> Operator | None:
        """The operator bound to the certificate with this SHA-256 fingerprint (hex)."""
        ...

    async def disable_operator(self, name: str, at: dt.datetime, audit: AuditEvent) -> None:
        """Set the operator's ``disabled_at`` to ``at`` with its audit entry, in one transaction:
        neither its token nor its certificate authenticates it from then on. NotFound when there
        is no such operator; Conflict when it is disabled already."""
        ...

    async def enable_operator(self, name: str, audit: AuditEvent) -> None:
        """Clear the operator's ``disabled_at`` with its audit entry, in one transaction. NotFound
        when there is no such operator; Conflict when it is not disabled."""
        ...

    async def rotate_operator_token(
        self, name: str, token_hash: str, audit: AuditEvent, *, set_by: tuple[str, ...]
    ) -> None:
        """Replace the operator's token hash and record ``set_by`` (``Operator.token_set_by``)
        with its audit entry, in one transaction: the old
        token no longer authenticates. NotFound when there is no such operator; Conflict when
        another operator has this hash."""
        ...

    async def create_application(self, record: ApplicationRecord, audit: AuditEvent) -> None: ...

    async def application(self, application_id: str) -> ApplicationRecord: ...

    async def application_by_enrollment_id(self, enrollment_id: str) -> ApplicationRecord: ...

    async def applications_by_email(self, email: str) -> list[ApplicationRecord]: ...

    async def applications_by_name(
        self, text: str, limit: int = 100, offset: int = 0
    ) -> list[ApplicationRecord]:
        """Applications whose name contains ``text``, as stored (romanized or kanji/kana),
        family name then given name or the other way round: spaces in ``text`` are ignored,
        letters A-Z match in either case, and ``%``, ``_`` and ``\\`` are plain characters. Oldest
        first, ``limit`` from ``offset``."""
        ...

    async def audit_persons(self, target: str, actions: frozenset[str]) -> set[str]:
        """Who did any of ``actions`` on ``target``, from the audit log: each entry's actor and
        the persons its details name in ``credentialSetBy`` (who else knew the credential)."""
        ...

    async def applications(
        self, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ApplicationRecord]: ...

    # The workflow's writes, one per kind of step. Each writes the target ``state`` the workflow
    # table gave (server/ra/workflow.py, asked by RABase.move in server/ra/base.py), its step's
    # columns and ``updated_at`` = ``at``, with ``audit``, in one transaction, if the application
    # is still at ``version``: Conflict otherwise, NotFound if there is no such application.
    async def move_application(
        self, application_id: str, version: int, state: str, at: dt.datetime, audit: AuditEvent
    ) -> ApplicationRecord:
        """A step that writes only its state (documents resubmitted, the PIN e-mail sent)."""
        ...

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
        """The documents' review, accepted or deficient."""
        ...

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
        """An inquiry letter sent: a new access code, whose tries (and their waits) start again
        and which is unused."""
        ...

    async def record_letter(
        self, application_id: str, version: int, state: str, at: dt.datetime, audit: AuditEvent
    ) -> ApplicationRecord:
        """The signed and sealed letter came back at ``at``."""
        ...

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
        """``amount`` was paid at ``at``."""
        ...

    async def record_online_input(
        self, application_id: str, version: int, state: str, at: dt.datetime, audit: AuditEvent
    ) -> ApplicationRecord:
        """The applicant confirmed the online input at ``at``: the access code is spent."""
        ...

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
        """Approved by ``approved_by`` at ``at``, with a new PIN and EAB key (their tries and
        waits start again) and ``mail`` queued, superseding any unsent mail of its kind."""
        ...

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
        """A new PIN and EAB key, as ``record_approval_and_pin`` makes them."""
        ...

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
        """The PIN redeemed at ``at`` for ``certificate``, which is recorded; the EAB key goes
        and the PIN's hash stays (a retry after a lost response gets the same certificate)."""
        ...

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
        """Rejected or abandoned for ``reason``: every credential of the application goes."""
        ...

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
        """One try of ``credential``, atomic across coroutines and processes: in one transaction,
        count the try first (a conditional increment that only succeeds below ``policy.limit``;
        LOCKED without comparing otherwise), then THROTTLED (uncounted, not compared) while
        ``source`` is waiting after its last wrong try, then ``matches(stored column value)``.
        RIGHT takes the count back; WRONG keeps it, makes ``source`` wait ``policy.wait`` and
        appends ``failure`` to the audit log. NotFound if there is no such application."""
        ...


class MailStore(Protocol):
    """The mail outbox the RA fills and the mailer (server/ra/mailer.py) empties."""

    async def due_mail(self, now: dt.datetime, limit: int = 10) -> list[MailRecord]: ...

    async def mail(self, status: str | None = None, limit: int = 100) -> list[MailRecord]: ...

    async def claim_mail(self, mail_id: int, now: dt.datetime, until: dt.datetime) -> bool:
        """Take a due mail for sending until ``until`` (False if another process has it)."""
        ...

    async def mark_mail(
        self,
        mail_id: int,
        status: str,
        audit: AuditEvent,
        error: str | None = None,
        next_attempt_at: dt.datetime | None = None,
        sent_at: dt.datetime | None = None,
    ) -> None:
        """Record a send attempt; a sent mail's body is wiped in the same statement."""
        ...

    async def retry_mail(self, mail_id: int, now: dt.datetime, audit: AuditEvent) -> None:
        """Put a failed mail back in the queue (Conflict unless it failed and still has a body)."""
        ...


class ESTStore(Protocol):
    """EST re-enrollment requests (server/est/)."""

    async def reenrollment(
        self, previous_generation: int, previous_serial: str, csr_sha256: str
    ) -> ReenrollmentRecord | None: ...

    async def reenrollment_by_id(self, reenrollment_id: int) -> ReenrollmentRecord: ...

    async def reenrollments(self, status: str | None = None) -> list[ReenrollmentRecord]: ...

    async def add_reenrollment(
        self, record: ReenrollmentRecord, audit: AuditEvent
    ) -> ReenrollmentRecord:
        """Insert (the id of ``record`` is ignored); Conflict when the same request exists."""
        ...

    async def decide_reenrollment(
        self, reenrollment_id: int, status: str, operator: str, at: dt.datetime, audit: AuditEvent
    ) -> None:
        """pending -> approved / rejected (Conflict otherwise)."""
        ...

    async def complete_reenrollment(
        self, reenrollment_id: int, certificate: CertificateRecord, audit: AuditEvent
    ) -> None:
        """Mark the request issued and record its certificate in one transaction (Conflict when
        it was issued meanwhile)."""
        ...


class ACMEStore(Protocol):
    """ACME (RFC 8555, server/acme/): nonces, EAB keys, accounts, orders, authorizations and
    challenges."""

    # True where one server process has the store to itself (SQLite: ``serve`` holds the
    # serve-lock, server/workers.py), so that what it caches of an ACME record stays true until
    # it changes the record itself; False where several processes share it (PostgreSQL).
    acme_process_local: bool

    async def acme_add_nonce(self, value: str, expires_at: dt.datetime) -> None:
        """Remember a nonce this server handed out (any process may redeem it)."""
        ...

    async def acme_add_nonces(self, values: Sequence[str], expires_at: dt.datetime) -> None:
        """Remember nonces this server will hand out, in one transaction."""
        ...

    async def acme_use_nonce(self, value: str, now: dt.datetime) -> bool:
        """Redeem a nonce once: True if it was issued, unexpired and unused (it is then gone)."""
        ...

    async def acme_prune_nonces(self, now: dt.datetime) -> int:
        """Delete expired nonces; returns how many."""
        ...

    async def acme_add_eab_key(self, record: AcmeEABKeyRecord, audit: AuditEvent) -> None:
        """Conflict if the kid exists."""
        ...

    async def acme_eab_key(self, kid: str) -> AcmeEABKeyRecord:
        """NotFound if there is no such key."""
        ...

    async def acme_eab_keys(self) -> list[AcmeEABKeyRecord]: ...

    async def acme_disable_eab_key(self, kid: str, at: dt.datetime, audit: AuditEvent) -> None:
        """NotFound if there is no such key; disabling twice is a no-op."""
        ...

    async def acme_create_account(
        self, record: AcmeAccountRecord, audit: AuditEvent, operator_key: bool
    ) -> None:
        """Insert the account and, for an operator's EAB key, mark the key used by it, in one
        transaction. Conflict when the key (thumbprint) has an account, the EAB kid was used
        before, or the operator key is used, disabled or unknown."""
        ...

    async def acme_account(self, account_id: str) -> AcmeAccountRecord:
        """NotFound if there is no such account."""
        ...

    async def acme_account_by_thumbprint(self, thumbprint: str) -> AcmeAccountRecord | None: ...

    async def acme_update_contact(
        self,
        account_id: str,
        contact: Sequence[str] | None,
        terms_agreed: bool | None,
        at: dt.datetime,
        audit: AuditEvent,
    ) -> AcmeAccountRecord:
        """RFC 8555 §7.3.2: the account's new ``contact`` and ``terms_agreed`` (None: left as
        they are), ``updated_at`` = ``at``; the account as written. NotFound if there is no
        such account."""
        ...

    async def acme_change_key(
        self,
        account_id: str,
        jwk: Mapping[str, Any],
        thumbprint: str,
        at: dt.datetime,
        audit: AuditEvent,
    ) -> AcmeAccountRecord:
        """RFC 8555 §7.3.5: the account's new key; the account as written. Conflict when the
        thumbprint belongs to another account, NotFound if there is no such account."""
        ...

    async def acme_add_order(
        self,
        order: AcmeOrderRecord,
        new_authorizations: list[AcmeAuthzRecord],
        audit: AuditEvent,
    ) -> None:
        """Insert the new authorizations (with their challenges) and the order linked to every
        id in ``order.authz_ids``, in one transaction."""
        ...

    async def acme_add_authorization(self, authz: AcmeAuthzRecord, audit: AuditEvent) -> None:
        """A pre-authorization (newAuthz, §7.4.1) with its challenges."""
        ...

    async def acme_order(self, order_id: str) -> AcmeOrderRecord:
        """NotFound if there is no such order; ``authz_ids`` in creation order."""
        ...

    async def acme_orders(
        self, account_id: str, after_seq: int, limit: int
    ) -> list[AcmeOrderRecord]:
        """The account's orders with ``seq`` above ``after_seq``, oldest first (a page)."""
        ...

    async def acme_move_order(
        self,
        order_id: str,
        expected_status: str,
        status: str,
        at: dt.datetime,
        *,
        error: Mapping[str, Any] | None = None,
        audit: AuditEvent | None = None,
    ) -> AcmeOrderRecord:
        """The order to ``status`` (with ``error`` when it fails, §7.1.6) if it is still
        ``expected_status`` (Conflict otherwise); the order as written."""
        ...

    async def acme_finalize_order(
        self,
        order_id: str,
        expected_status: str,
        status: str,
        csr_der: bytes,
        at: dt.datetime,
        audit: AuditEvent,
    ) -> AcmeOrderRecord:
        """§7.4: the order to ``status`` with the CSR it is finalized with, as
        ``acme_move_order``."""
        ...

    async def acme_issue_order(
        self,
        order_id: str,
        expected_status: str,
        status: str,
        generation: int,
        serial: int,
        at: dt.datetime,
        audit: AuditEvent | None = None,
        certificate: CertificateRecord | None = None,
    ) -> AcmeOrderRecord:
        """The order to ``status`` with the certificate issued for it (generation and serial)
        and, when given, ``certificate`` recorded in the same transaction (issuance is
        crash-safe), as ``acme_move_order``."""
        ...

    async def acme_await_reenrollment(
        self, order_id: str, expected_status: str, reenrollment_id: int, at: dt.datetime
    ) -> AcmeOrderRecord:
        """The RA's re-enrollment request the order waits for (its status stays), as
        ``acme_move_order``."""
        ...

    async def acme_order_by_certificate(
        self, generation: int, serial: int
    ) -> AcmeOrderRecord | None:
        """The valid order whose certificate this is."""
        ...

    async def acme_orders_replacing(self, cert_id: str) -> list[AcmeOrderRecord]:
        """Orders whose ``replaces`` is this RFC 9773 certificate identifier."""
        ...

    async def acme_count_orders(
        self, account_id: str, since: dt.datetime
    ) -> tuple[int, dt.datetime | None]:
        """How many orders the account created since ``since``, and the oldest one's time."""
        ...

    async def acme_count_certificates(self, eab_kid: str) -> int:
        """Valid orders (certificates issued) of accounts bound with this EAB kid."""
        ...

    async def acme_authorization(self, authz_id: str) -> AcmeAuthzRecord:
        """NotFound if there is no such authorization; with its challenges."""
        ...

    async def acme_authorization_of_challenge(self, challenge_id: str) -> AcmeAuthzRecord:
        """The authorization a challenge belongs to, with its challenges, in one read; NotFound
        if there is no such challenge."""
        ...

    async def acme_reusable_authorization(
        self,
        account_id: str,
        identifier_type: str,
        identifier_value: str,
        wildcard: bool,
        now: dt.datetime,
    ) -> AcmeAuthzRecord | None:
        """The account's newest valid, unexpired authorization for the identifier (§7.4: a
        server MAY reuse it)."""
        ...

    async def acme_update_authorization(
        self, authz_id: str, expected_status: str, status: str, audit: AuditEvent | None = None
    ) -> AcmeAuthzRecord:
        """Conflict unless the authorization is still ``expected_status``."""
        ...

    async def acme_challenge(self, challenge_id: str) -> AcmeChallengeRecord:
        """NotFound if there is no such challenge."""
        ...

    async def acme_update_challenge(
        self,
        challenge_id: str,
        expected_status: str,
        status: str,
        at: dt.datetime,
        error: Mapping[str, Any] | None = None,
        authz_status: str | None = None,
        audit: AuditEvent | None = None,
        order_status: str | None = None,
    ) -> AcmeChallengeRecord:
        """Move a challenge on (Conflict unless still ``expected_status``) and, with
        ``authz_status``, its pending authorization too, in one transaction. With
        ``order_status`` too, each unexpired ``pending`` order of that authorization whose
        authorizations are then all ``valid`` moves to ``order_status`` in it (RFC 8555
        §7.1.6: the order is ready once its authorizations are)."""
        ...

    async def acme_deactivate_account(
        self,
        account_id: str,
        status: str,
        order_error: Mapping[str, Any],
        audit: AuditEvent,
        *,
        contact: Sequence[str] | None = None,
        terms_agreed: bool | None = None,
    ) -> AcmeAccountRecord:
        """RFC 8555 §7.3.6 in one transaction: a ``valid`` account to ``status`` (deactivated,
        the transition table's target), with ``contact`` and ``terms_agreed`` when given and
        ``updated_at`` = ``audit.at``, and cancel the pending operations its key authorized:
        each of its orders still ``pending``, ``ready`` or ``processing`` becomes ``invalid``
        with ``order_error`` (``updated_at`` = ``audit.at``) and each of its ``pending``
        authorizations ``deactivated`` (§7.1.6). Audited with ``audit``, then one entry per
        order and per authorization (``acme_cancelled``), oldest first; the account as written.
        NotFound if there is no such account; Conflict unless it is ``valid``."""
        ...


class Store(CAStore, AuditStore, RAStore, MailStore, ESTStore, ACMEStore, Protocol):
    """The whole store, as ``open_store`` returns it. A service types against the part it uses."""

    async def close(self) -> None: ...

"""The store interface (house habit 10: the consumer owns it) and its records.

SQL lives only below this package. SQLite (``sqlite.py``) is the embedded default; a PostgreSQL
implementation passes the same contract tests (tests/server/test_store_contract.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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
            "at": event.at.isoformat(),
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


class Store(Protocol):
    async def close(self) -> None: ...

    async def add_generation(self, record: GenerationRecord, audit: AuditEvent) -> None:
        """Record a CA generation and its audit entry in one transaction (Conflict if the
        number exists)."""
        ...

    async def generations(self) -> list[GenerationRecord]:
        """All CA generations, oldest first."""
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

    async def append_audit(self, event: AuditEvent) -> AuditEntry: ...

    async def audit_log(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]: ...

    async def verify_audit_chain(self) -> int:
        """Walk the whole log; AuditChainBroken on the first mismatch; returns the count."""
        ...

"""Rollover (SEED-R15...R17): when the current generation stops issuing, and the ceremony that
makes the next generation with its link certificates (RFC 9810 §4.4). A part of ``Authority``
(server/ca_state.py lists the others)."""

from __future__ import annotations

import asyncio
import datetime as dt

from cryptography.hazmat.primitives import hashes, serialization

from jitsuin.ca.generations import CAGeneration
from jitsuin.ca.rollover import roll_over
from jitsuin.server.ca_keys import new_key
from jitsuin.server.ca_state import AuthorityState, Link
from jitsuin.server.lint_pool import issuer_for
from jitsuin.server.storage import AuditEvent, GenerationRecord, LinkRecord


class Rollovers(AuthorityState):
    """Numbers the new generation after any another process made (``refresh``,
    server/ca_refresh.py)."""

    def rollover_due(self) -> dt.datetime:
        """When the current generation stops issuing: the rollover must happen by then."""
        return self.current.issuance_cutoff(self.config.ca.cutoff_margin)

    def rollover_warning(self) -> str | None:
        due = self.rollover_due()
        if self.clock.now() < due - self.config.ca.rollover_warning:
            return None
        return (
            f"CA generation {self.current.number} stops issuing at {due.isoformat()}: "
            "run `jitsuin ca rollover` before then (SEED-R15)"
        )

    async def rollover(self, actor: str) -> CAGeneration:
        """Make the next generation with its link certificates; issuance switches at once."""
        await self.refresh()  # another process may have rolled over: number after its generation
        old = self.current
        number = old.number + 1
        signer, ref = new_key(self.config, number)
        # The link certificates get no signing intent: they are CA certificates made in this
        # ceremony and stored, with their fingerprints audited, in the transaction that adds the
        # generation. A crash before that commit loses them unpublished, and leaves the new CA
        # key behind (file written exclusively, or labelled in the token), which makes the next
        # rollover refuse loudly until an operator looks: the trace an intent would have been.
        result = await asyncio.to_thread(
            roll_over, old, signer, self.clock, await self.store.latest_expiry(old.number)
        )
        new = result.new
        await self.store.add_generation(
            GenerationRecord(
                number=number,
                certificate_der=new.der,
                key_ref=ref,
                created_at=self.clock.now(),
            ),
            AuditEvent(
                at=self.clock.now(),
                actor=actor,
                action="ca.rollover",
                target=f"generation/{number}",
                details={
                    "previous": old.number,
                    "sha256": new.certificate.fingerprint(hashes.SHA256()).hex(),
                    "oldWithNew": result.old_with_new.fingerprint(hashes.SHA256()).hex(),
                    "newWithOld": result.new_with_old.fingerprint(hashes.SHA256()).hex(),
                },
            ),
            LinkRecord(
                old.number,
                number,
                result.old_with_new.public_bytes(serialization.Encoding.DER),
                result.new_with_old.public_bytes(serialization.Encoding.DER),
            ),
        )
        self.generations.append(new)
        self.links.append(Link(old.number, number, result.old_with_new, result.new_with_old))
        self.issuer = issuer_for(self.config, new, self.clock, self.lint_pool)
        for listener in self.rollover_listeners:
            listener(new)
        return new

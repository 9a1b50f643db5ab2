"""Several server processes, one store (``serve --workers N``, or ``jitsuin ca rollover`` beside a
running server): each process loads the generations another one added, so that none issues from
a superseded generation and what is served follows the newest. A part of ``Authority``
(server/ca_state.py lists the others)."""

from __future__ import annotations

import asyncio
import logging

from jitsuin.server.ca_keys import load_generation
from jitsuin.server.ca_state import AuthorityState, links_from
from jitsuin.server.lint_pool import issuer_for


class FollowsOtherProcesses(AuthorityState):
    async def refresh(self) -> bool:
        """Load the generations another process added (``jitsuin ca rollover``, or a rollover
        through another server process sharing the store): issuance moves to the newest, and the
        rollover listeners run as after a rollover here. True when something was added."""
        records = await self.store.generations()
        if len(records) == len(self.generations):  # generations are only ever added
            return False
        async with self._refresh_lock:
            known = {g.number for g in self.generations}
            added = [r for r in records if r.number not in known]
            if not added:
                return False
            loaded = [load_generation(self.config, r) for r in added]  # as ``open`` does
            link_records = await self.store.links()
            self.generations.extend(loaded)
            self.generations.sort(key=lambda g: g.number)
            self.links[:] = links_from(link_records)
            self.issuer = issuer_for(self.config, self.current, self.clock, self.lint_pool)
            for generation in loaded:
                for listener in self.rollover_listeners:
                    listener(generation)
        return True

    async def follow_rollovers(self, interval: float = 5.0) -> None:
        """Run forever: ``refresh`` every ``interval`` seconds, so that what is served without
        issuing (CA certificates, links, OCSP, the TLS trust) follows a rollover elsewhere."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # a database hiccup must not end the watch
                logging.getLogger("jitsuin.ca").exception("reloading the CA generations failed")

"""The one store: every ``Store`` method, written once over a ``Driver`` (``driver.py``).

``SQLiteStore`` (``sqlite.py``) and ``PostgresStore`` (``postgres.py``) are ``SQLStore`` with
their driver and their keeper of ACME nonces. ``SQLStore`` is assembled from one part per
client, as the ``Store`` protocol is (``jitsuin.server.storage``): ``store_ca.py`` (CA and
audit log), ``store_ra.py`` (RA and mail outbox), ``store_est.py`` and ``store_acme.py``, over
``store_base.py``.

Each writing method is one transaction (``self._db.transaction``) that ends with its audit entry
(``_append``): on PostgreSQL the audit log's lock is then held for as short a time as possible.
``Conflict`` and ``NotFound`` carry the same messages on both databases
(tests/server/test_store_contract.py).

To add a query: write it once, in the part of the client that asks for it, with ``?``
placeholders, passing datetimes and bools as Python values, and decode time columns with
``when`` / ``moment`` (``driver.py``).
"""

from __future__ import annotations

from jitsuin.server.storage.driver import Driver
from jitsuin.server.storage.store_acme import ACMEPart, Nonces
from jitsuin.server.storage.store_ca import AuditPart, CAPart
from jitsuin.server.storage.store_est import ESTPart
from jitsuin.server.storage.store_ra import MailPart, RAPart


class SQLStore(CAPart, AuditPart, RAPart, MailPart, ESTPart, ACMEPart):
    def __init__(self, driver: Driver, nonces: Nonces) -> None:
        self._db = driver
        self._nonces = nonces

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        row = await self._db.fetchrow("SELECT max(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

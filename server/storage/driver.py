"""What the one store (``store.py``) asks of a database: the driver layer.

The store writes every statement once, with ``?`` placeholders, and passes datetimes and bools
as Python values. A driver (``sqlite.py`` on aiosqlite, ``postgres.py`` on asyncpg) numbers the
placeholders where its database wants ``$n``, encodes the values (the time codec), maps the
schema's refusals to ``Violation`` (a ``Conflict``), and runs transactions its own way. The few
statements that differ between the two databases are the ``Session`` hooks below, each named
for what it is for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from jitsuin.server.storage import Conflict

T = TypeVar("T")

Row = Sequence[Any]


class Violation(Conflict):
    """A write the schema refused (unique key, foreign key, check). ``columns`` are the columns
    of the unique key it broke, when the database names them (empty otherwise)."""

    def __init__(self, message: str, columns: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.columns = frozenset(columns)


def moment(value: dt.datetime | str | None) -> dt.datetime | None:
    """The time codec's reading half: a time column as the driver returns it (a datetime from
    PostgreSQL, ISO 8601 text in UTC from SQLite) as an aware datetime; None stays None."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def when(value: dt.datetime | str) -> dt.datetime:
    """``moment`` of a column that is never NULL."""
    found = moment(value)
    assert found is not None
    return found


def marks(count: int) -> str:
    """``?, ?, ...`` for an ``IN (...)`` list of ``count`` values, at least one (PostgreSQL
    refuses ``IN ()``)."""
    return ", ".join("?" * count)


class Reader(Protocol):
    """Queries: on the driver each on its own, or on a ``Session``."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...


class Session(Reader, Protocol):
    """Statements on one connection, inside a transaction (``Driver.transaction``) or a read
    (``Driver.read``)."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @property
    def for_update(self) -> str:
        """Appended to a SELECT whose rows the transaction goes on to change: `` FOR UPDATE``
        where rows are locked one by one (PostgreSQL), empty where the transaction holds the
        whole database's write lock from its start (SQLite's BEGIN IMMEDIATE)."""
        ...

    async def lock_audit_log(self) -> None:
        """Make appends to the audit log take turns until this transaction ends, so that the
        chain head read next is the committed one (a no-op where writers already do)."""
        ...


class Lookups(Reader, Protocol):
    """Queries that an index bounds: one row by its key, the few rows under one parent row.
    A driver may answer them without leaving the event loop's thread (SQLite: ``sqlite.py``);
    a query that may read many rows goes to the ``Driver`` itself."""

    async def read(self, body: Callable[[Session], Awaitable[T]]) -> T:
        """``body(session)``'s queries, as ``Driver.read``."""
        ...


class Driver(Reader, Protocol):
    @property
    def lookups(self) -> Lookups:
        """Where the store sends its index-bounded queries (``Lookups``)."""
        ...

    async def transaction(self, body: Callable[[Session], Awaitable[T]]) -> T:
        """``body(session)`` in one transaction: committed when it returns, rolled back when it
        raises. ``body`` awaits nothing but the session's statements."""
        ...

    async def read(self, body: Callable[[Session], Awaitable[T]]) -> T:
        """``body(session)``'s queries on one connection, outside a transaction."""
        ...

    async def migrate(self) -> None:
        """Apply the numbered migrations of this dialect not applied yet."""
        ...

    async def close(self) -> None: ...

"""Shared helpers for the server tests: real data directories, real keys, real CSRs, free ports.

Nothing here is a mock: a home is written by ``jitsuin.server.config.write_default`` exactly as
``jitsuin init`` writes it, then edited the way an operator would edit the TOML.

With ``--import-mode=importlib`` a test module cannot import this conftest, so each helper is
also offered as a session fixture of the same name that returns the function.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
import urllib.parse
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from jitsuin.ca.keys import KeyType, PrivateKey
from jitsuin.server import config as configuration
from jitsuin.server.storage import AuditEntry
from jitsuin.server.storage.sqlite import SQLiteStore


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_home(
    home: Path,
    *,
    http_port: int | None = None,
    https_port: int | None = None,
    key_type: KeyType = KeyType.ECDSA_P256,
) -> Path:
    """The default configuration of ``jitsuin init`` in ``home``, with the listener ports
    replaced as an operator would edit them. Returns the config path; no CA is created yet."""
    path = configuration.write_default(home, key_type, configuration.DEFAULT_SUBJECT)
    text = path.read_text(encoding="utf-8")
    for default, port in (("127.0.0.1:8080", http_port), ("127.0.0.1:8443", https_port)):
        if port is not None:
            assert default in text, f"write_default no longer listens on {default}"
            text = text.replace(default, f"127.0.0.1:{port}")
    path.write_text(text, encoding="utf-8")
    return path


def _make_csr(key: PrivateKey, *, algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    """A PEM PKCS#10 request whose subject is a decoy: the CA takes only the key from it."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Requested Name")])
    )
    csr = builder.sign(key, algorithm or hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def _subject_record(**overrides: Any) -> dict[str, Any]:
    """A vetted subject record (JSON object) that fits the ``general`` profile."""
    record: dict[str, Any] = {
        "subscriber_id": "app-0001",
        "family_name": "Yamada",
        "given_name": "Hanako",
        "email": "hanako.yamada@example.com",
        "qualification_group": "member",
        "qualification_number": "AB-1234",
        "country": "JP",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}


class _StoreSnapshot:
    """What a home's store holds, read through the store API (synchronously, for CLI tests)."""

    def __init__(self, database: Path) -> None:
        self.certificates, self.audit, self.generations, self.chain_length = asyncio.run(
            self._read(database)
        )

    @staticmethod
    async def _read(
        database: Path,
    ) -> tuple[int, list[AuditEntry], list[x509.Certificate], int]:
        store = await SQLiteStore.open(database)
        try:
            count = await store.count_certificates()
            audit = await store.audit_log(limit=100_000)
            generations = [
                x509.load_der_x509_certificate(r.certificate_der) for r in await store.generations()
            ]
            checked = await store.verify_audit_chain()
        finally:
            await store.close()
        return count, audit, generations, checked

    @property
    def actions(self) -> list[str]:
        return [entry.event.action for entry in self.audit]


# -- the helpers as fixtures ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def free_port():
    return _free_port


@pytest.fixture(scope="session")
def write_home():
    return _write_home


@pytest.fixture(scope="session")
def make_csr():
    return _make_csr


@pytest.fixture(scope="session")
def subject_record():
    return _subject_record


@pytest.fixture(scope="session")
def snapshot():
    """``snapshot(database_path)``: counts, audit log and CA certificates of a store."""
    return _StoreSnapshot


# -- PostgreSQL ------------------------------------------------------------------------------------
# The server every developer machine and CI runs (trust auth); JITSUIN_TEST_POSTGRES points
# elsewhere. Each test gets a schema of its own in it, dropped afterwards.
POSTGRES_URL = os.environ.get("JITSUIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_postgres_problem: list[str] = []  # the session's one reachability check, once made


def _off_loop(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run asyncpg work to completion on a loop of its own thread: the tests call this from
    synchronous helpers while their own event loop is running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class PostgresSchema:
    """A schema of the test database that belongs to one test. ``url`` is the ``database_url``
    a configuration or ``open_store`` takes; ``execute`` is another client's view of it."""

    def __init__(self, base_url: str) -> None:
        self.name = f"jitsuin_test_{secrets.token_hex(6)}"
        self.base_url = base_url
        separator = "&" if urllib.parse.urlsplit(base_url).query else "?"
        self.url = f"{base_url}{separator}schema={self.name}"

    def execute(self, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements in autocommit on a separate connection; return the last one's rows."""

        async def run() -> list[tuple[Any, ...]]:
            connection = await asyncpg.connect(
                self.base_url, server_settings={"search_path": self.name}
            )
            try:
                rows: list[Any] = []
                for statement in statements:
                    rows = await connection.fetch(statement)
                return [tuple(row) for row in rows]
            finally:
                await connection.close()

        return _off_loop(run)

    def drop(self) -> None:
        async def run() -> None:
            connection = await asyncpg.connect(self.base_url)
            try:
                await connection.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
            finally:
                await connection.close()

        _off_loop(run)


def _require_postgres() -> None:
    """Skip (on a developer machine) or fail (in CI, which has the server) when PostgreSQL is
    not reachable, naming what is missing."""
    if not _postgres_problem:

        async def probe() -> str:
            try:
                connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                return f"{type(exc).__name__}: {exc}"
            await connection.close()
            return ""

        _postgres_problem.append(_off_loop(probe))
    if _postgres_problem[0]:
        where = re.sub(r"//[^@/]*@", "//", POSTGRES_URL)
        reason = (
            f"PostgreSQL is not reachable at {where} ({_postgres_problem[0]}): start it "
            "(pg_ctlcluster ... main start) or point JITSUIN_TEST_POSTGRES at one"
        )
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def postgres_schema():
    """A fresh schema of the test PostgreSQL database, dropped after the test."""
    _require_postgres()
    schema = PostgresSchema(POSTGRES_URL)
    yield schema
    schema.drop()

"""Shared helpers for the server tests: real data directories, real keys, real CSRs, free ports.

Nothing here is a mock: a home is written by ``jitsuin.server.config.write_default`` exactly as
``jitsuin init`` writes it, then edited the way an operator would edit the TOML.

With ``--import-mode=importlib`` a test module cannot import this conftest, so each helper is
also offered as a session fixture of the same name that returns the function.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

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

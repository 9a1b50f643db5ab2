"""U+0000 on PostgreSQL (which text cannot hold: asyncpg raises CharacterNotInRepertoireError):
in a path id or name, or in a JSON string, it is refused before the store sees it, so the answer
is a 404 or 400 problem, not a 500. The app runs in process on loopback over a real schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from jitsuin.ca.clock import SystemClock
from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration
from jitsuin.server.app import create_app
from jitsuin.server.authority import Authority
from jitsuin.server.keys import RA


def _postgres_home(home: Path, url: str) -> configuration.Config:
    path = configuration.write_default(home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    text = path.read_text(encoding="utf-8")
    assert text.count('database_url = "sqlite:///jitsuin.db"') == 1
    path.write_text(text.replace("sqlite:///jitsuin.db", url), encoding="utf-8")
    return configuration.load(path, home)


@pytest.fixture
async def served(postgres_schema, tmp_path, free_port) -> AsyncIterator[tuple[str, str]]:
    """(base URL, admin token) of the full app on PostgreSQL."""
    authority = await Authority.open(
        _postgres_home(tmp_path / "home", postgres_schema.url), SystemClock()
    )
    app = create_app(authority, send_mail=False)
    token = await app[RA].add_operator("cli", "root", "admin")
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        await runner.cleanup()
        await authority.close()


async def _call(base: str, token: str, method: str, path: str, body: Any = None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, base + path, data=body, headers=headers) as reply,
    ):
        return reply.status, reply.content_type


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ra/applications/APP-%00"),
        ("GET", "/ra/applications/%00"),
        ("POST", "/ra/applications/a%00b/approve"),
        ("POST", "/ra/operators/a%00/disable"),
        ("POST", "/ra/operators/a%00/token"),
        ("GET", "/ra/acme/eab-keys/kid-%00"),
        ("POST", "/ra/acme/eab-keys/kid-a%00/disable"),
    ],
)
async def test_nul_in_a_path_is_not_found(served, method, path):
    assert await _call(*served, method, path) == (404, "application/problem+json")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/applicant/status", b'{"enrollmentId": "A\\u0000"}'),
        ("/applicant/online-input", b'{"enrollmentId": "A", "accessCode": "\\u0000"}'),
        ("/ra/applications", b'{"familyName": "\\u0000"}'),
    ],
)
async def test_nul_in_a_json_string_is_malformed(served, path, body):
    assert await _call(*served, "POST", path, body) == (400, "application/problem+json")

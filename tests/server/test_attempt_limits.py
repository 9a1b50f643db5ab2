"""The attempt limits of the applicant's credentials under concurrent abuse
(docs/threat-model.md): a burst of 200 wrong tries of an access code, a download PIN and an ACME
EAB MAC, sent at once from 200 source addresses against a live ``jitsuin serve`` (SQLite) and
``jitsuin serve --workers 4`` (PostgreSQL), gets at most ``max_attempts`` compared, and the right
credential is refused after the lock. The same burst from one address gets one try compared:
that address then waits (429 with Retry-After in each protocol's own format).

How many tries were compared is read from the audit log: each compared wrong try appends one
entry (``online_input.wrong_code``, ``redeem.wrong_pin``, ``redeem.wrong_eab``) in the
transaction that counts it. The applications are written straight into the store of the running
server, in the state where the credential is taken, with credentials the test knows.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jitsuin.protocol.jose import b64u_decode, jwk_of, sign_flattened
from jitsuin.server import config as configuration
from jitsuin.server.ra import credentials
from jitsuin.server.ra.credentials import Keyring
from jitsuin.server.storage import ApplicationRecord, AuditEvent, open_store

BURST = 200
MAX_ATTEMPTS = 5  # the default [ra] max_attempts
# Keyring purposes of the RA (server/ra/service.py): how the credentials are hashed and sealed.
ACCESS_PURPOSE, PIN_PURPOSE, EAB_PURPOSE = "access-code", "pin", "eab-key"


@dataclasses.dataclass
class Seeded:
    """One application per credential, and the right credentials."""

    ids: dict[str, str]  # credential -> application id
    enrollment: dict[str, str]  # credential -> enrollment ID
    access_code: str
    pin: str
    eab_key: str


def _application(app_id: str, state: str, now: dt.datetime, **values: Any) -> ApplicationRecord:
    return ApplicationRecord(
        id=app_id,
        version=1,
        state=state,
        profile="general",
        family_name="Yamada",
        given_name="Hanako",
        email=f"{app_id.lower()}@example.com",
        qualification_group="member",
        qualification_number="AB-1234",
        postal_address="1-1 Chiyoda, Chiyoda-ku, Tokyo",
        date_of_birth="1980-01-02",
        billing_addressee="self",
        billing_company=None,
        created_by="alice",
        created_at=now,
        updated_at=now,
        **values,
    )


async def _seed(config: configuration.Config, tag: str) -> Seeded:
    keyring = Keyring(config.ra_secret())
    now = dt.datetime.now(dt.UTC)
    seeded = Seeded({}, {}, credentials.new_access_code(), credentials.new_pin(), "")
    seeded.eab_key = credentials.new_eab_key()
    store = await open_store(config)
    try:
        for credential, state in (
            ("access", "awaiting_online_input"),
            ("pin", "pin_sent"),
            ("eab", "pin_sent"),
        ):
            app_id = f"APP-{tag}{credential.upper()}"
            enrollment_id = credentials.new_enrollment_id()
            values: dict[str, Any] = {"enrollment_id": enrollment_id}
            if credential == "access":
                values["access_code_hash"] = keyring.digest(ACCESS_PURPOSE, seeded.access_code)
            else:
                values |= {
                    "pin_hash": keyring.digest(PIN_PURPOSE, seeded.pin),
                    "pin_expires_at": now + dt.timedelta(days=1),
                    "eab_key_sealed": keyring.seal(EAB_PURPOSE, seeded.eab_key.encode()),
                }
            await store.create_application(
                _application(app_id, state, now, **values),
                AuditEvent(now, "alice", "application.create", f"application/{app_id}"),
            )
            seeded.ids[credential] = app_id
            seeded.enrollment[credential] = enrollment_id
    finally:
        await store.close()
    return seeded


async def _compared(config: configuration.Config, app_id: str) -> dict[str, int]:
    """The audited wrong tries of the application, by action, and its two counters."""
    store = await open_store(config)
    try:
        entries = await store.audit_log(limit=100_000)
        app = await store.application(app_id)
    finally:
        await store.close()
    found = collections.Counter(
        e.event.action for e in entries if e.event.target == f"application/{app_id}"
    )
    found.pop("application.create", None)
    return {**found, "pin_attempts": app.pin_attempts, "access_attempts": app.access_attempts}


# -- the server ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _serving(home: Path, config: configuration.Config, workers: int | None) -> Iterator[None]:
    command = [sys.executable, "-m", "jitsuin.server", "--home", str(home), "serve"]
    if workers:
        command += ["--workers", str(workers)]
    log = (home / "server.log").open("ab")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 90
        health = f"http://127.0.0.1:{config.server.http.port}/health"
        while True:
            assert server.poll() is None, (home / "server.log").read_text()
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2):
                break
            assert time.monotonic() < deadline, (home / "server.log").read_text()
            time.sleep(0.2)
        yield
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@dataclasses.dataclass
class Live:
    home: Path
    config: configuration.Config
    base: str  # https://127.0.0.1:port
    tls: ssl.SSLContext

    async def burst(self, requests: list[dict[str, Any]], sources: list[str]) -> list[Any]:
        """Send each request from its own source address (127.x.y.z: the whole of 127/8 is the
        loopback on Linux), all at once; returns (status, headers, body) of each."""

        async def one(request: dict[str, Any], source: str) -> Any:
            connector = aiohttp.TCPConnector(ssl=self.tls, local_addr=(source, 0))
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.request(timeout=aiohttp.ClientTimeout(total=120), **request) as reply,
            ):
                return reply.status, dict(reply.headers), await reply.read()

        return await asyncio.gather(*(one(r, s) for r, s in zip(requests, sources, strict=True)))


def _sources(count: int, network: int) -> list[str]:
    return [f"127.{network}.{n // 250}.{n % 250 + 1}" for n in range(count)]


@pytest.fixture(params=["sqlite", "postgresql-4-workers"])
def live(request, tmp_path, write_home, free_port) -> Iterator[Live]:
    home = tmp_path / "home"
    path = write_home(home, http_port=free_port(), https_port=free_port())
    # Every try of a burst reaches the attempt check: the connection limit per address, which
    # would close half of a 200-connection burst from one address at accept, is tested in
    # test_connections.py.
    text = path.read_text(encoding="utf-8")
    assert text.count("max_connections_per_address = 100 ") == 1
    path.write_text(
        text.replace(
            "max_connections_per_address = 100 ", f"max_connections_per_address = {BURST}"
        ),
        encoding="utf-8",
    )
    workers = None
    if request.param != "sqlite":
        schema = request.getfixturevalue("postgres_schema")
        text = path.read_text(encoding="utf-8").replace("sqlite:///jitsuin.db", schema.url)
        path.write_text(text, encoding="utf-8")
        workers = 4
    config = configuration.load(path, home)
    with _serving(home, config, workers):
        ca = urllib.request.urlopen(f"http://127.0.0.1:{config.server.http.port}/ca.pem").read()
        tls = ssl.create_default_context(cadata=ca.decode())
        yield Live(home, config, f"https://127.0.0.1:{config.server.https.port}", tls)


# -- the requests ----------------------------------------------------------------------------------
def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return base64.b64encode(
        request.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    )


def _est(live: Live, enrollment_id: str, pin: str, csr: bytes) -> dict[str, Any]:
    token = base64.b64encode(f"{enrollment_id}:{pin}".encode()).decode()
    return {
        "method": "POST",
        "url": f"{live.base}/.well-known/est/simpleenroll",
        "data": csr,
        "headers": {"Content-Type": "application/pkcs10", "Authorization": f"Basic {token}"},
    }


def _online_input(live: Live, enrollment_id: str, code: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"{live.base}/applicant/online-input",
        "json": {"enrollmentId": enrollment_id, "accessCode": code, "confirm": True},
    }


async def _new_accounts(live: Live, kid: str, mac_keys: list[str]) -> list[dict[str, Any]]:
    """One signed newAccount per MAC key, each with its own nonce and its own account key."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=live.tls)) as session:
        async with session.get(f"{live.base}/acme/directory") as reply:
            directory = await reply.json()
        url = directory["newAccount"]
        requests = []
        for mac in mac_keys:
            async with session.head(directory["newNonce"]) as reply:
                nonce = reply.headers["Replay-Nonce"]
            key = ec.generate_private_key(ec.SECP256R1())
            jwk = jwk_of(key.public_key()).to_json()
            eab = sign_flattened(
                {"alg": "HS256", "kid": kid, "url": url},
                json.dumps(jwk).encode(),
                b64u_decode(mac),
                "HS256",
            )
            payload = {"termsOfServiceAgreed": True, "externalAccountBinding": eab}
            jws = sign_flattened(
                {"nonce": nonce, "url": url, "jwk": jwk},
                json.dumps(payload).encode(),
                key,
                "ES256",
            )
            requests.append(
                {
                    "method": "POST",
                    "url": url,
                    "data": json.dumps(jws),
                    "headers": {"Content-Type": "application/jose+json"},
                }
            )
    return requests


def _wrong_pin(pin: str, n: int) -> str:
    wrong = f"{n:08d}"
    return wrong if wrong != pin else "99999999"


# -- the tests -------------------------------------------------------------------------------------
def test_a_burst_of_wrong_credentials_from_200_addresses_compares_at_most_the_limit(live):
    seeded = asyncio.run(_seed(live.config, "B"))
    csr = _csr()
    wrong_macs = [credentials.new_eab_key() for _ in range(BURST)]

    async def run() -> dict[str, list[Any]]:
        bursts = {
            "access": [
                _online_input(live, seeded.enrollment["access"], credentials.new_access_code())
                for _ in range(BURST)
            ],
            "pin": [
                _est(live, seeded.enrollment["pin"], _wrong_pin(seeded.pin, n), csr)
                for n in range(BURST)
            ],
            "eab": await _new_accounts(live, seeded.enrollment["eab"], wrong_macs),
        }
        return {
            name: await live.burst(requests, _sources(BURST, 10 + i))
            for i, (name, requests) in enumerate(bursts.items())
        }

    replies = asyncio.run(run())
    access = asyncio.run(_compared(live.config, seeded.ids["access"]))
    pin = asyncio.run(_compared(live.config, seeded.ids["pin"]))
    eab = asyncio.run(_compared(live.config, seeded.ids["eab"]))
    print(f"compared of {BURST}: access code {access}, PIN {pin}, EAB MAC {eab}")
    # At most max_attempts compared; here exactly, as no try of the burst was right.
    assert access.get("online_input.wrong_code", 0) == MAX_ATTEMPTS, access
    assert pin.get("redeem.wrong_pin", 0) == MAX_ATTEMPTS, pin
    assert eab.get("redeem.wrong_eab", 0) == MAX_ATTEMPTS, eab
    assert access["access_attempts"] == pin["pin_attempts"] == eab["pin_attempts"] == MAX_ATTEMPTS
    statuses = {name: collections.Counter(r[0] for r in got) for name, got in replies.items()}
    assert statuses["access"] == {401: MAX_ATTEMPTS, 403: BURST - MAX_ATTEMPTS}, statuses
    assert statuses["pin"] == {401: BURST}, statuses  # RFC 7030 §3.2.3: a bad credential
    assert statuses["eab"] == {403: BURST}, statuses  # RFC 8555 §6.7 unauthorized

    # The right credentials after the lock are refused, and nothing more is compared.
    async def right() -> list[Any]:
        requests = [
            _online_input(live, seeded.enrollment["access"], seeded.access_code),
            _est(live, seeded.enrollment["pin"], seeded.pin, csr),
            *(await _new_accounts(live, seeded.enrollment["eab"], [seeded.eab_key])),
        ]
        return await live.burst(requests, _sources(3, 20))

    (access_reply, est_reply, acme_reply) = asyncio.run(right())
    assert access_reply[0] == 403 and b"too many" in access_reply[2], access_reply
    assert est_reply[0] == 401 and est_reply[1]["Jitsuin-Error"] == "pin_locked", est_reply
    assert acme_reply[0] == 403 and b"too many" in acme_reply[2], acme_reply
    assert asyncio.run(_compared(live.config, seeded.ids["pin"]))["redeem.wrong_pin"] == 5


def test_a_burst_from_one_address_compares_one_try_and_the_rest_wait(live):
    seeded = asyncio.run(_seed(live.config, "T"))
    csr = _csr()
    source = ["127.30.0.1"] * BURST

    async def run() -> dict[str, list[Any]]:
        return {
            "access": await live.burst(
                [
                    _online_input(live, seeded.enrollment["access"], credentials.new_access_code())
                    for _ in range(BURST)
                ],
                source,
            ),
            "pin": await live.burst(
                [
                    _est(live, seeded.enrollment["pin"], _wrong_pin(seeded.pin, n), csr)
                    for n in range(BURST)
                ],
                source,
            ),
            "eab": await live.burst(
                await _new_accounts(
                    live,
                    seeded.enrollment["eab"],
                    [credentials.new_eab_key() for _ in range(BURST)],
                ),
                source,
            ),
        }

    replies = asyncio.run(run())
    for name, action in (
        ("access", "online_input.wrong_code"),
        ("pin", "redeem.wrong_pin"),
        ("eab", "redeem.wrong_eab"),
    ):
        compared = asyncio.run(_compared(live.config, seeded.ids[name]))
        assert compared.get(action) == 1, (name, compared)
        statuses = collections.Counter(r[0] for r in replies[name])
        assert statuses == {401 if name != "eab" else 403: 1, 429: BURST - 1}, (name, statuses)
        waited = [r for r in replies[name] if r[0] == 429]
        # RFC 6585 §4 / RFC 8555 §6.6: Retry-After in whole seconds, at most the first wait.
        assert all(1 <= int(r[1]["Retry-After"]) <= 15 for r in waited), name
    problem = next(json.loads(r[2]) for r in replies["access"] if r[0] == 429)
    assert problem["type"].endswith("throttled") and problem["retryAfter"] >= 1
    acme = next(json.loads(r[2]) for r in replies["eab"] if r[0] == 429)
    assert acme["type"] == "urn:ietf:params:acme:error:rateLimited"
    est = next(r for r in replies["pin"] if r[0] == 429)
    assert est[1]["Content-Type"].startswith("text/plain")
    assert est[1]["Jitsuin-Error"] == "throttled"
    # The waits cost the applicant nothing: one try counted of each credential.
    assert asyncio.run(_compared(live.config, seeded.ids["pin"]))["pin_attempts"] == 1

"""Several server processes on one PostgreSQL store (README.md, "Scale-out"): real OS processes
race each other on what must stay exact: PIN tries compared, serial and key uniqueness, the audit
chain, a PIN redeemed once; and ``jitsuin serve --workers N`` runs, follows a rollover and stops.

Each racer is ``python -c SCRIPT``: it opens the store (or the whole Authority) first, prints
``ready``, and starts only when the test has heard ``ready`` from every racer and answered
``go``, so the interesting part runs at the same moment in every process.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jitsuin.ca.clock import SystemClock
from jitsuin.ca.errors import CAError
from jitsuin.ca.keys import KeyType
from jitsuin.ca.subject import VettedSubject
from jitsuin.server import config as configuration
from jitsuin.server import workers as serve_workers
from jitsuin.server.__main__ import main as jitsuin_main
from jitsuin.server.authority import Authority
from jitsuin.server.ra.credentials import Keyring
from jitsuin.server.storage import (
    AcmeEABKeyRecord,
    ApplicationRecord,
    AuditEvent,
    GenerationRecord,
    open_store,
)

T0 = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)

PRELUDE = textwrap.dedent(
    """
    import asyncio, datetime as dt, json, sys, types
    from jitsuin.server.storage import AuditEvent, Conflict, open_store

    def barrier():
        print("ready", flush=True)
        assert sys.stdin.readline().strip() == "go"

    def event(actor, n):
        return AuditEvent(dt.datetime.now(dt.UTC), actor, "race", f"n/{n}", {"n": n})

    async def opened(url):
        return await open_store(types.SimpleNamespace(database_url=url))
    """
)


def race(script: str, *argvs: list[str], timeout: float = 120) -> list[Any]:
    """Start one racer per argv, release them together, return what each printed (JSON)."""
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", PRELUDE + textwrap.dedent(script), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    try:
        for racer in racers:
            line = racer.stdout.readline()  # type: ignore[union-attr]
            assert line.strip() == "ready", f"racer failed to start: {line!r} {racer.stderr.read()}"  # type: ignore[union-attr]
        for racer in racers:
            racer.stdin.write("go\n")  # type: ignore[union-attr]
            racer.stdin.flush()  # type: ignore[union-attr]
        results = []
        for racer in racers:
            out, err = racer.communicate(timeout=timeout)
            assert racer.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()


def store_of(url: str):
    return open_store(types.SimpleNamespace(database_url=url))


def application(app_id: str = "APP-RACE0001", **overrides: Any) -> ApplicationRecord:
    values: dict[str, Any] = {
        "id": app_id,
        "version": 1,
        "state": "received",
        "profile": "general",
        "family_name": "Yamada",
        "given_name": "Hanako",
        "email": "hanako.yamada@example.com",
        "qualification_group": "member",
        "qualification_number": "AB-1234",
        "postal_address": "1-1 Chiyoda, Chiyoda-ku, Tokyo",
        "date_of_birth": "1980-01-02",
        "billing_addressee": "self",
        "billing_company": None,
        "created_by": "alice",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return ApplicationRecord(**values)


# -- the store, raced by two processes -------------------------------------------------------------
async def test_pin_tries_from_two_processes_compare_at_most_the_limit(postgres_schema):
    """80 wrong tries at once from two processes (40 each, from 80 addresses): the count comes
    first, in one conditional statement, so exactly max_attempts are compared."""
    store = await store_of(postgres_schema.url)
    try:
        await store.create_application(application(), AuditEvent(T0, "alice", "create", "a"))
        results = await asyncio.to_thread(
            race,
            """
            from jitsuin.server.storage import AttemptPolicy, Credential

            async def main(url, name):
                store = await opened(url)
                policy = AttemptPolicy(limit=5, backoff=dt.timedelta(0))
                compared = []

                def wrong(stored):
                    compared.append(stored)
                    return False

                barrier()
                attempts = await asyncio.gather(*(
                    store.try_credential(
                        "APP-RACE0001", Credential.PIN, policy, f"{name}-{n}",
                        dt.datetime.now(dt.UTC), wrong, event(name, n),
                    )
                    for n in range(40)
                ))
                await store.close()
                print(json.dumps({
                    "outcomes": [a.outcome.value for a in attempts], "compared": len(compared)
                }))

            asyncio.run(main(*sys.argv[1:]))
            """,
            [postgres_schema.url, "p1"],
            [postgres_schema.url, "p2"],
        )
        outcomes = collections.Counter(o for r in results for o in r["outcomes"])
        assert outcomes == {"wrong": 5, "locked": 75}
        assert sum(r["compared"] for r in results) == 5
        assert (await store.application("APP-RACE0001")).pin_attempts == 5
        assert await store.verify_audit_chain() == 6
    finally:
        await store.close()


async def test_serial_and_key_uniqueness_hold_across_processes(postgres_schema):
    store = await store_of(postgres_schema.url)
    try:
        await store.add_generation(
            GenerationRecord(1, b"\x30\x82ca", "file:keys/ca-1.key.pem", T0),
            AuditEvent(T0, "system", "ca.generation.create", "generation/1"),
        )
        results = await asyncio.to_thread(
            race,
            """
            from jitsuin.server.storage import CertificateRecord

            T0 = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)

            def certificate(serial, subscriber, spki):
                return CertificateRecord(
                    1, serial, b"der", subscriber, "CN=x", None, "general", T0, T0, T0, spki
                )

            async def attempt(store, name, record):
                try:
                    await store.record_certificate(record, event(name, record.serial))
                    return "ok"
                except Conflict as exc:
                    return str(exc)

            async def main(url, name):
                store = await opened(url)
                barrier()
                # The same 30 serials from both processes, each with a key of its own ...
                serials = await asyncio.gather(*(
                    attempt(store, name, certificate(1000 + n, f"{name}-{n}", f"{name}{n:062d}"))
                    for n in range(30)
                ))
                # ... and one subscriber's key certified twice under different serials.
                key = await attempt(store, name, certificate(
                    5000 + (name == "p2"), "same-subscriber", "ab" * 32
                ))
                await store.close()
                print(json.dumps({"serials": serials, "key": key}))

            asyncio.run(main(*sys.argv[1:]))
            """,
            [postgres_schema.url, "p1"],
            [postgres_schema.url, "p2"],
        )
        for n in range(30):
            outcomes = sorted(result["serials"][n] for result in results)
            assert outcomes == ["ok", f"serial {1000 + n:x} exists in this generation"], n
        keys = sorted(result["key"] for result in results)
        assert keys == ["ok", "this key was already certified for this subscriber"]
        assert await store.count_certificates() == 31
        assert await store.used_keys("same-subscriber") == {"ab" * 32}
        # Refused inserts wrote no audit entry; the chain is whole.
        assert await store.verify_audit_chain() == 1 + 31
    finally:
        await store.close()


async def test_acme_nonces_and_eab_bindings_are_single_use_across_processes(postgres_schema):
    store = await store_of(postgres_schema.url)
    try:
        for n in range(40):
            await store.acme_add_nonce(f"nonce-{n}", T0 + dt.timedelta(days=1))
        await store.acme_add_eab_key(
            AcmeEABKeyRecord("kid-1", b"mac", ("example.org",), 90, None, None, None, "root", T0),
            AuditEvent(T0, "root", "acme.eab.add", "eab/kid-1"),
        )
        first, second = await asyncio.to_thread(
            race,
            """
                    from jitsuin.server.storage import AcmeAccountRecord

                    T0 = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)

                    async def bind(store, name, kid, operator_key):
                        record = AcmeAccountRecord(
                            f"{name}-{kid}", f"thumb-{name}-{kid}", {"kty": "EC"}, (), "valid",
                            "tls-server" if operator_key else "personal", kid, "HS256", None,
                            True, T0, T0,
                        )
                        try:
                            await store.acme_create_account(record, event(name, 0), operator_key)
                            return "ok"
                        except Conflict as exc:
                            return str(exc)

                    async def main(url, name):
                        store = await opened(url)
                        barrier()
                        now = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
                        used = await asyncio.gather(
                            *(store.acme_use_nonce(f"nonce-{n}", now) for n in range(40))
                        )
                        operator = await bind(store, name, "kid-1", True)
                        personal = await bind(store, name, "ENROL-1", False)
                        await store.close()
                        print(json.dumps({"used": used, "eab": [operator, personal]}))

                    asyncio.run(main(*sys.argv[1:]))
                    """,
            [postgres_schema.url, "p1"],
            [postgres_schema.url, "p2"],
        )
        # Every nonce was accepted by exactly one of the processes (RFC 8555 §6.5).
        assert [a + b for a, b in zip(first["used"], second["used"], strict=True)] == [1] * 40
        operator = sorted([first["eab"][0], second["eab"][0]])
        assert operator == ["EAB key kid-1 is used, disabled or unknown", "ok"]
        personal = sorted([first["eab"][1], second["eab"][1]])
        assert personal == ["ok", "this external account binding was used before"]
        key = await store.acme_eab_key("kid-1")
        assert key.account_id == (await store.acme_account(key.account_id)).id
        assert await store.verify_audit_chain() == 3
    finally:
        await store.close()


# -- the RA: one PIN, two processes redeeming it ---------------------------------------------------
def _postgres_home(home: Path, url: str) -> configuration.Config:
    path = configuration.write_default(home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    text = path.read_text(encoding="utf-8")
    assert text.count('database_url = "sqlite:///jitsuin.db"') == 1
    path.write_text(text.replace("sqlite:///jitsuin.db", url), encoding="utf-8")
    config = configuration.load(path, home)
    assert config.database_dialect == "postgresql"
    return config


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return request.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


REDEEM = """
import base64
from jitsuin.ca.clock import SystemClock
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority
from jitsuin.server.ra.credentials import Keyring
from jitsuin.server.ra.errors import RAError
from jitsuin.server.ra.service import RAService

async def main(config_path, home, enrollment_id, pin, csr):
    config = configuration.load(configuration.Path(config_path), configuration.Path(home))
    authority = await Authority.open(config, SystemClock(), create=False)
    ra = RAService(authority, config, Keyring(config.ra_secret()))
    barrier()
    try:
        done = await ra.redeem(enrollment_id, pin, csr.encode(), "est", "192.0.2.1")
        result = {"der": base64.b64encode(done.certificate_der).decode(), "repeated": done.repeated}
    except RAError as exc:
        result = {"refused": exc.kind.value, "details": exc.extensions}
    await authority.close()
    print(json.dumps(result))

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "two-keys"])
async def test_a_pin_is_redeemed_once_by_two_processes(postgres_schema, tmp_path, same_key):
    config = _postgres_home(tmp_path / "home", postgres_schema.url)
    authority = await Authority.open(config, SystemClock())  # generation 1 in PostgreSQL
    pin = "31415926"
    keyring = Keyring(config.ra_secret())
    now = dt.datetime.now(dt.UTC)
    try:
        await authority.store.create_application(
            application(
                state="pin_sent",
                email="hanako.yamada@example.com",
                enrollment_id="ABCDE-FGHJK",
                pin_hash=keyring.digest("pin", pin),
                pin_expires_at=now + dt.timedelta(days=14),
                approved_by="bob",
                approved_at=now,
                created_at=now,
                updated_at=now,
            ),
            AuditEvent(now, "alice", "application.create", "application/APP-RACE0001"),
        )
        first = _csr()
        csrs = [first, first] if same_key else [first, _csr()]
        argv = [str(config.source), str(config.home), "ABCDE-FGHJK", pin]
        results = await asyncio.to_thread(
            race, REDEEM, [*argv, csrs[0]], [*argv, csrs[1]], timeout=180
        )

        issued = [r for r in results if "der" in r]
        store = authority.store
        assert await store.count_certificates() == 1, results
        app = await store.application("APP-RACE0001")
        assert (app.state, app.version) == ("issued", 2)
        certificate = await store.certificate(1, int(app.certificate_serial, 16))
        if same_key:
            # Both get the one certificate; exactly one of them made it.
            assert [r["der"] for r in issued] == [issued[0]["der"]] * 2
            assert sorted(r["repeated"] for r in issued) == [False, True]
        else:
            (winner,) = issued
            (loser,) = [r for r in results if "refused" in r]
            assert (loser["refused"], loser["details"]) == ("locked", {"reason": "pin_used"})
            assert winner["repeated"] is False
        assert issued[0]["der"] == base64.b64encode(certificate.der).decode()
        log = await store.audit_log()
        assert [e.event.action for e in log].count("application.redeem") == 1
        assert await store.verify_audit_chain() == len(log)
    finally:
        await authority.close()


# -- CA generations across processes ---------------------------------------------------------------
async def test_another_process_rollover_is_followed_and_concurrent_rollovers_are_refused(
    postgres_schema, tmp_path, make_csr, subject_record
):
    config = _postgres_home(tmp_path / "home", postgres_schema.url)
    first = await Authority.open(config, SystemClock())
    second = await Authority.open(config, SystemClock(), create=False)
    try:
        results = await asyncio.gather(
            first.rollover("worker-1"), second.rollover("worker-2"), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, Exception)]
        assert len(refused) == 1 and isinstance(refused[0], CAError), results
        assert "refusing to overwrite a CA key" in str(refused[0])
        loser = second if refused[0] is results[1] else first

        # The loser still holds generation 1 until it looks: issuing loads generation 2 first.
        assert [g.number for g in loser.generations] == [1]
        subject = VettedSubject.from_mapping(subject_record())
        csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
        issued = await loser.issue_personal(csr, subject, "general", actor="test")
        assert issued.generation == 2
        assert [g.number for g in loser.generations] == [1, 2]
        assert [(link.old, link.new) for link in loser.links] == [(1, 2)]

        # The winner's key file is the one recorded for generation 2.
        reopened = await Authority.open(config, SystemClock(), create=False)
        assert [g.number for g in reopened.generations] == [1, 2]
        await reopened.close()
        assert not list((config.home / "keys").glob("*.tmp"))
    finally:
        await first.close()
        await second.close()


# -- jitsuin serve --workers N ---------------------------------------------------------------------
def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _start_workers(home: Path, config: configuration.Config, workers: int) -> subprocess.Popen:
    command = ["-m", "jitsuin.server", "--home", str(home), "--config", str(config.source)]
    server = subprocess.Popen(
        [sys.executable, *command, "serve", "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    health = f"http://127.0.0.1:{config.server.http.port}/health"
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stdout.read()  # type: ignore[union-attr]
        with contextlib.suppress(OSError):
            if len(_children(server.pid)) == workers and _get_json(health)["status"]:
                return server
        time.sleep(0.2)
    server.kill()
    raise AssertionError(f"no answer from {health}: {server.communicate()[0]}")


@pytest.fixture
def workers_home(postgres_schema, tmp_path, free_port, write_home):
    home = tmp_path / "home"
    path = write_home(home, http_port=free_port(), https_port=free_port())
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("sqlite:///jitsuin.db", postgres_schema.url), encoding="utf-8")
    return home, configuration.load(path, home)


def test_serve_workers_share_the_listeners_follow_a_rollover_and_stop(workers_home):
    home, config = workers_home
    server = _start_workers(home, config, 2)
    try:
        children = _children(server.pid)
        assert len(children) == 2
        health = f"http://127.0.0.1:{config.server.http.port}/health"
        assert {_get_json(health)["ca"]["generation"] for _ in range(20)} == {1}

        rollover = subprocess.run(
            [sys.executable, "-m", "jitsuin.server", "--home", str(home), "ca", "rollover"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rollover.returncode == 0, rollover.stderr
        # Every worker notices within its refresh interval (5 s): 40 answers in a row say 2.
        deadline = time.monotonic() + 30
        streak = 0
        while streak < 40:
            assert time.monotonic() < deadline, "the workers still serve generation 1"
            streak = streak + 1 if _get_json(health)["ca"]["generation"] == 2 else 0
        assert _children(server.pid) == children  # no worker was restarted

        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
        assert server.returncode == 0, output
        assert "2 worker processes" in output
        assert not [pid for pid in children if _alive(pid)]
    finally:
        if server.poll() is None:
            server.kill()


def test_connections_are_spread_over_the_workers(workers_home):
    """Each worker accepts on a socket of its own (SO_REUSEPORT): 64 connections made at once
    land on both, about half each, whichever worker happens to be waiting in accept()."""
    home, config = workers_home
    server = _start_workers(home, config, 2)
    port = config.server.http.port
    held = []
    try:
        children = _children(server.pid)
        for _ in range(64):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(sock)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for sock in held:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # accepted and answered
        # Who holds the server side of each connection (iproute2's ss, as root or same user).
        listed = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        owners = collections.Counter(int(pid) for pid in re.findall(r"pid=(\d+)", listed))
        assert set(owners) == set(children), listed
        assert sum(owners.values()) == 64
        assert min(owners.values()) >= 16, owners  # P(fewer by chance) is about 1e-4
    finally:
        for sock in held:
            sock.close()
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)


def test_workers_stop_when_their_parent_is_killed(workers_home):
    home, config = workers_home
    server = _start_workers(home, config, 2)
    children = _children(server.pid)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=10)
    deadline = time.monotonic() + 20
    while [pid for pid in children if _alive(pid)]:
        assert time.monotonic() < deadline, "workers outlived their parent"
        time.sleep(0.1)


def test_several_workers_on_sqlite_are_refused(tmp_path, write_home, capsys):
    home = tmp_path / "home"
    write_home(home)
    code = jitsuin_main(["--home", str(home), "serve", "--workers", "3"])
    assert code == 2
    message = capsys.readouterr().err
    assert "--workers 3 needs a PostgreSQL store" in message
    assert 'database_url = "postgresql://' in message
    assert jitsuin_main(["--home", str(home), "serve", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_one_server_per_sqlite_store_and_none_needed_on_postgresql(tmp_path, postgres_schema):
    """``serve`` holds the SQLite store's serve lock while it runs (its ACME nonces live in the
    process); a second claim is refused naming the holder, and a released lock can be taken
    again. On PostgreSQL there is nothing to hold."""
    path = configuration.write_default(tmp_path, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    config = configuration.load(path, tmp_path)
    with serve_workers.sole_server(config):
        lock = config.database_path.with_name("jitsuin.db.serve-lock")
        assert lock.read_text() == f"{os.getpid()}\n"
        with pytest.raises(serve_workers.StoreInUse) as refused, serve_workers.sole_server(config):
            pass
        assert f"jitsuin serve (pid {os.getpid()}) is already running on" in str(refused.value)
    with serve_workers.sole_server(config):  # released when the first one ended
        pass
    shared = dataclasses.replace(config, database_url=postgres_schema.url)
    with serve_workers.sole_server(shared), serve_workers.sole_server(shared):
        pass

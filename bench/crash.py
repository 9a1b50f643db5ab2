"""kill -9 during approval and pickup: is every signature of the CA key accounted for?

    nice .venv/bin/python bench/crash.py [--rounds 100] [--postgres] [--seed N]

Starts `jitsuin serve` on loopback (SQLite in a temporary data directory, or PostgreSQL at
127.0.0.1:5432 database test in a schema of its own with --postgres). Each round vets a few
applications, then approves them over the RA API while earlier approved ones are picked up
with EST simpleenroll, concurrently, and kills the server with SIGKILL at a random moment;
the next round starts it again. A pickup whose answer was lost is retried later with the same
key (it must get the same certificate). At the end, with the server stopped, it checks:

- every certificate a client got back is in the certificates table (none lost);
- every certificate in the table has a signing intent settled as issued whose TBS hash is the
  certificate's (0 certificates without an intent);
- no serial twice, in the certificates or in the intents (0 duplicates);
- `jitsuin audit verify` exits 0;

and prints the figures, with the intents a kill left open (signed or maybe signed, never
recorded). Bounded: --rounds rounds, each at most a few seconds of load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import random
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from run import JITSUIN, Server, _drop_schema, mailed_pins, own_token, vet

from jitsuin.ca.clock import SystemClock
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority
from jitsuin.server.ra.credentials import Keyring
from jitsuin.server.ra.service import RAService

PER_ROUND = 4  # applications vetted and approved per round
KILL_WITHIN = 2.5  # seconds after the load starts
ROUND_LIMIT = 20.0  # seconds: a round's load never runs longer


@dataclass
class Pickup:
    enrollment_id: str
    pin: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def csr(self) -> bytes:
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(self.key, hashes.SHA256())
        )
        return base64.encodebytes(request.public_bytes(serialization.Encoding.DER))


@dataclass
class Figures:
    kills: int = 0
    approvals: int = 0
    approvals_lost: int = 0
    pickups: int = 0
    pickups_lost: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    handed_out: dict[int, bytes] = field(default_factory=dict)  # serial -> DER


class Crash:
    def __init__(self, server: Server, rng: random.Random) -> None:
        self.server = server
        self.rng = rng
        self.figures = Figures()
        self.to_approve: list[str] = []  # application IDs at online_input_received
        self.ready: list[Pickup] = []  # approved, PIN known, no certificate back yet
        self.enrollment_of: dict[str, str] = {}
        self.vetted = 0

    async def open_ra(self) -> tuple[Authority, RAService]:
        cfg = configuration.load(self.server.home / "jitsuin.toml", self.server.home)
        authority = await Authority.open(cfg, SystemClock(), create=False)
        return authority, RAService(authority, cfg, Keyring(cfg.ra_secret()))

    async def setup(self) -> str:
        authority, ra = await self.open_ra()
        try:
            self.reviewer = await ra.authenticate(await own_token(ra, "rev", "reviewer"))
            return await own_token(ra, "app", "approver")
        finally:
            await authority.close()

    async def prepare(self) -> None:
        """Vet this round's applications, and learn the PINs of those approved so far."""
        authority, ra = await self.open_ra()
        try:
            for _ in range(PER_ROUND):
                record, enrollment_id = await vet(ra, self.reviewer, self.vetted)
                self.vetted += 1
                self.to_approve.append(record.id)
                self.enrollment_of[record.id] = enrollment_id
            pins = await mailed_pins(ra, 100_000)
            waiting = {p.enrollment_id for p in self.ready}
            for app_id in list(self.enrollment_of):
                enrollment_id = self.enrollment_of[app_id]
                if (
                    enrollment_id in pins
                    and enrollment_id not in waiting
                    and (await ra.store.application(app_id)).state in ("approved", "pin_sent")
                ):
                    self.ready.append(Pickup(enrollment_id, pins[enrollment_id]))
                    del self.enrollment_of[app_id]
        finally:
            await authority.close()

    async def approve(self, session: aiohttp.ClientSession, token: str, app_id: str) -> None:
        try:
            async with session.post(
                f"{self.server.https}/ra/applications/{app_id}/approve",
                headers={"Authorization": f"Bearer {token}"},
                ssl=self.tls,
            ) as reply:
                await reply.read()
                if reply.status == 200:
                    self.figures.approvals += 1
                    self.to_approve.remove(app_id)
                elif reply.status == 409:  # approved before a kill took the answer
                    self.to_approve.remove(app_id)
                else:
                    self.figures.refused[reply.status] += 1
        except (aiohttp.ClientError, OSError):
            self.figures.approvals_lost += 1

    async def pickup(self, session: aiohttp.ClientSession, pickup: Pickup) -> None:
        try:
            async with session.post(
                f"{self.server.https}/.well-known/est/simpleenroll",
                data=pickup.csr(),
                headers={
                    "Content-Type": "application/pkcs10",
                    "Authorization": aiohttp.encode_basic_auth(pickup.enrollment_id, pickup.pin),
                },
                ssl=self.tls,
            ) as reply:
                body = await reply.read()
                if reply.status != 200:
                    self.figures.refused[reply.status] += 1
                    return
        except (aiohttp.ClientError, OSError):
            self.figures.pickups_lost += 1  # the same key tries again next round
            return
        (cert,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
        self.figures.handed_out[cert.serial_number] = cert.public_bytes(serialization.Encoding.DER)
        self.figures.pickups += 1
        self.ready.remove(pickup)

    async def load(self, token: str) -> None:
        """Approvals and pickups at once until the server is killed (or all are done)."""
        self.tls = ssl.create_default_context(cafile=str(self.server.home / "ca.pem"))
        timeout = aiohttp.ClientTimeout(total=ROUND_LIMIT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            jobs = [self.approve(session, token, a) for a in list(self.to_approve)]
            jobs += [self.pickup(session, p) for p in list(self.ready)]
            self.rng.shuffle(jobs)
            await asyncio.gather(*jobs)

    def round(self, token: str) -> None:
        asyncio.run(self.prepare())
        assert self.server.process is not None
        process = self.server.process
        moment = self.rng.uniform(0, KILL_WITHIN)

        def kill() -> None:
            time.sleep(moment)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                self.figures.kills += 1

        killer = threading.Thread(target=kill)
        killer.start()
        asyncio.run(self.load(token))
        killer.join()
        process.wait()
        self.server.start()


async def account(home: Path, handed_out: dict[int, bytes]) -> dict[str, int]:
    cfg = configuration.load(home / "jitsuin.toml", home)
    authority = await Authority.open(cfg, SystemClock(), create=False)
    store = authority.store
    try:
        certificates = []
        offset = 0
        while page := await store.certificates(limit=1000, offset=offset):
            certificates += page
            offset += len(page)
        intents = {
            state: await store.intents(state, limit=1_000_000)
            for state in ("reserved", "issued", "discarded")
        }
        recorded = {(c.generation, c.serial): c for c in certificates}
        issued = {(i.generation, i.serial): i for i in intents["issued"]}
        all_intents = [i for group in intents.values() for i in group]
        mismatched = sum(
            1
            for key, c in recorded.items()
            if key in issued
            and issued[key].tbs_sha256
            != hashlib.sha256(
                x509.load_der_x509_certificate(c.der).tbs_certificate_bytes
            ).hexdigest()
        )
        serials = [c.serial for c in certificates]
        lost = [s for s in handed_out if s not in {c.serial for c in certificates}]
        return {
            "certificates recorded": len(certificates),
            "intents issued": len(intents["issued"]),
            "intents discarded": len(intents["discarded"]),
            "intents never completed (signed or maybe signed by a killed server)": len(
                intents["reserved"]
            ),
            "certificates handed out but not recorded (lost)": len(lost),
            "certificates without a matching intent": len(
                await store.certificates_without_intent(limit=1_000_000)
            ),
            "certificates whose intent names another TBS": mismatched,
            "duplicate serials among certificates": len(serials) - len(set(serials)),
            "duplicate serials among intents": len(all_intents)
            - len({(i.generation, i.serial) for i in all_intents}),
        }
    finally:
        await authority.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--postgres", action="store_true", help="the store on PostgreSQL")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jitsuin-crash-") as tmp:
        server = Server(Path(tmp), 1, postgres=args.postgres)
        server.start()
        try:
            with urllib.request.urlopen(f"{server.http}/ca.pem", timeout=5) as reply:
                (server.home / "ca.pem").write_bytes(reply.read())
            crash = Crash(server, random.Random(seed))
            token = asyncio.run(crash.setup())
            for n in range(args.rounds):
                crash.round(token)
                if (n + 1) % 10 == 0:
                    print(f"  round {n + 1}: {crash.figures.kills} kills", flush=True)
            # A last calm round: the pickups left over are made.
            asyncio.run(crash.prepare())
            asyncio.run(crash.load(token))
            server.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            server.process.wait(timeout=30)  # type: ignore[union-attr]
            checks = asyncio.run(account(server.home, crash.figures.handed_out))
            verify = subprocess.run(
                [JITSUIN, "--home", str(server.home), "audit", "verify"],
                capture_output=True,
                text=True,
            )
        finally:
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
            if server.schema is not None:
                asyncio.run(_drop_schema(server.schema))
    f = crash.figures
    print(
        f"crash test on {server.backend}, seed {seed}: {args.rounds} rounds, {f.kills} kill -9, "
        f"{time.monotonic() - started:.0f} s"
    )
    print(
        f"  approvals: {f.approvals} answered, {f.approvals_lost} lost to a kill; "
        f"pickups: {f.pickups} certificates back, "
        f"{f.pickups_lost} lost to a kill; other answers: {dict(f.refused) or 'none'}"
    )
    print(f"  serials handed out to clients: {len(f.handed_out)}")
    for name, value in checks.items():
        print(f"  {name}: {value}")
    print("  jitsuin audit verify: exit", verify.returncode)
    for line in (verify.stdout + verify.stderr).splitlines()[:3]:
        print("    " + line)
    failed = verify.returncode != 0 or any(
        checks[k]
        for k in checks
        if k.startswith(("certificates handed", "certificates without", "certificates whose"))
        or k.startswith("duplicate")
    )
    print("RESULT:", "FAILED" if failed else "every signature accounted for")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

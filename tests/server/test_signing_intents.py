"""Every signature of the CA key is accounted for: the intent to sign (serial, generation,
profile, TBS hash, requester, target) is in the store before the key signs, the certificate's
record settles it, and `jitsuin audit verify` lists a signature whose commit never came (a crash
between the two) and refuses certificates without an intent. The server's own TLS certificate
is audited with its serial, generation and names."""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from jitsuin.ca.clock import FixedClock
from jitsuin.ca.csr import verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.subject import VettedSubject
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority

JITSUIN = str(Path(sys.executable).parent / "jitsuin")
SERVER = Path(__file__).resolve().parents[2] / "server"


def audit_verify(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JITSUIN, "--home", str(home), "audit", "verify"], capture_output=True, text=True
    )


async def open_authority(tmp_path: Path, write_home) -> Authority:
    path = write_home(tmp_path)
    clock = FixedClock(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    return await Authority.open(configuration.load(path, tmp_path), clock)


def subject(n: int = 0) -> VettedSubject:
    return VettedSubject(f"s{n}", "Yamada", "Taro", f"t{n}@example.jp", "member", "AB-1")


async def test_the_servers_own_tls_certificate_is_audited_with_its_serial_and_names(
    tmp_path, write_home
):
    authority = await open_authority(tmp_path, write_home)
    try:
        cert_path, _ = await authority.tls_files()
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        entries = await authority.store.audit_log()
        (issue,) = [e for e in entries if e.event.action == "certificate.issue"]
        assert issue.event.target == f"generation/1/serial/{cert.serial_number:x}"
        assert issue.event.details["serial"] == format(cert.serial_number, "x")
        assert issue.event.details["generation"] == 1
        assert issue.event.details["sans"] == ["localhost", "127.0.0.1"]
        (intent,) = await authority.store.intents("issued")
        assert (intent.serial, intent.target, intent.requester) == (
            cert.serial_number,
            "tls/server",
            "system",
        )
        assert intent.tbs_sha256 == hashlib.sha256(cert.tbs_certificate_bytes).hexdigest()
    finally:
        await authority.close()


async def test_a_signature_whose_commit_never_came_is_listed_by_audit_verify(
    tmp_path, write_home, make_csr
):
    authority = await open_authority(tmp_path, write_home)
    try:
        recorded = await authority.issue_personal(
            make_csr(ec.generate_private_key(ec.SECP256R1())), subject(0), "general", "cli"
        )
        # What a crash right after the signature leaves: the intent, no certificate record.
        signed = await authority.sign_personal(
            verify_csr(make_csr(ec.generate_private_key(ec.SECP256R1()))),
            subject(1),
            "general",
            requester="applicant:E-1:est",
            target="application/APP-1",
        )
        (intent,) = await authority.store.intents("reserved")
        assert (intent.generation, intent.serial, intent.profile) == (1, signed.serial, "general")
        assert (
            intent.tbs_sha256
            == hashlib.sha256(signed.certificate.tbs_certificate_bytes).hexdigest()
        )
        (done,) = await authority.store.intents("issued")
        assert (done.serial, done.target, done.requester) == (
            recorded.serial,
            "subscriber/s0",
            "cli",
        )
    finally:
        await authority.close()

    result = audit_verify(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "signing intents: 1 never completed, 0 discarded" in result.stdout
    assert (
        f"never completed: generation 1 serial {signed.serial:x} profile general for "
        "application/APP-1 by applicant:E-1:est"
    ) in result.stdout
    assert "every one has its signing intent" in result.stdout


async def test_a_certificate_recorded_without_an_intent_fails_audit_verify(
    tmp_path, write_home, make_csr
):
    authority = await open_authority(tmp_path, write_home)
    try:
        # Signed by the CA core without the server's reserve hook, then recorded: a path that
        # skipped the intent.
        issued = authority.issuer.issue(
            verify_csr(make_csr(ec.generate_private_key(ec.SECP256R1()))), subject(2), "general"
        )
        await authority.store.record_certificate(
            authority.certificate_record(issued, "s2", None),
            (await authority.store.audit_log())[0].event,
        )
    finally:
        await authority.close()
    result = audit_verify(tmp_path)
    assert result.returncode == 1
    assert f"certificate without a signing intent: generation 1 serial {issued.serial:x}" in (
        result.stderr
    )


async def test_a_certificate_the_store_refuses_is_settled_as_discarded(
    tmp_path, write_home, make_csr
):
    authority = await open_authority(tmp_path, write_home)
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
    try:
        first = await authority.issue_personal(csr, subject(3), "general", "cli")
        # The same key again for the same subscriber gets past the CA core when the used-key
        # lookup is raced (SEED-R2); here the record of the second signature is refused.
        reserve = authority._reserver("cli", "subscriber/s3")
        second = await asyncio.to_thread(
            authority.issuer.issue, verify_csr(csr), subject(3), "general", reserve=reserve
        )
        with pytest.raises(CAError, match="already certified") as refused:
            await authority._record(second, "s3", None, "cli", "subscriber/s3")
        assert refused.value.kind is Kind.KEY_REUSED
        assert first.serial != second.serial
        (discarded,) = await authority.store.intents("discarded")
        assert discarded.serial == second.serial
        entry = (await authority.store.audit_log())[-1].event
        assert entry.action == "certificate.discarded"
        assert entry.details["serial"] == format(second.serial, "x")
    finally:
        await authority.close()


def test_every_signing_call_in_the_server_goes_through_the_reserve_hook():
    """In server/, the issuer signs only in authority.py, and each call passes ``reserve``."""
    calls = []
    for path in sorted(SERVER.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("issue", "issue_tls_server"):
                calls.append((path.relative_to(SERVER).as_posix(), node.attr, node.lineno))
    assert {path for path, _, _ in calls} == {"authority.py"}, calls
    source = (SERVER / "authority.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(
            isinstance(a, ast.Attribute) and a.attr in ("issue", "issue_tls_server")
            for a in node.args
        ):
            assert "reserve" in {k.arg for k in node.keywords}, ast.unparse(node)
    assert len(calls) == 2, calls  # personal and tls-server

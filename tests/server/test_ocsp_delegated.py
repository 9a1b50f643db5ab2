"""``[ocsp] responder = "delegated"``: a responder key per CA generation with a
short-lived certificate from that generation's CA key (RFC 6960 §4.2.2.2: id-kp-OCSPSigning,
id-pkix-ocsp-nocheck), carried in every response, issued through a signing intent and the
pre-issuance lint, and renewed by the server before it expires (clock travel with FixedClock).
Against a running server, ``openssl ocsp -CAfile`` verifies the delegated answers and
pyhanko-certvalidator validates a certificate with OCSP required."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from jitsuin.ca.clock import FixedClock
from jitsuin.ca.profiles import OCSP_RESPONDER_RENEW_BEFORE, OCSP_RESPONDER_VALIDITY
from jitsuin.ca.revocation import OCSP_VALIDITY
from jitsuin.ca.subject import VettedSubject
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority

JITSUIN = str(Path(sys.executable).parent / "jitsuin")
START = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def _delegated(path: Path) -> Path:
    text = path.read_text(encoding="utf-8")
    assert 'responder = "ca"' in text, "the default configuration no longer names the responder"
    path.write_text(text.replace('responder = "ca"', 'responder = "delegated"'), encoding="utf-8")
    return path


async def _open(home: Path, write_home, clock: FixedClock, *, delegated: bool = True) -> Authority:
    path = write_home(home) if not (home / configuration.CONFIG_NAME).exists() else None
    path = path or home / configuration.CONFIG_NAME
    if delegated and 'responder = "ca"' in path.read_text():
        _delegated(path)
    return await Authority.open(configuration.load(path, home), clock)


async def _leaf(authority: Authority, make_csr) -> x509.Certificate:
    csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
    subject = VettedSubject("s1", "Yamada", "Taro", "t1@example.jp", "member", "AB-1")
    return (await authority.issue_personal(csr, subject, "general", "test")).certificate


def _request(cert: x509.Certificate, ca: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA256())
    return builder.build().public_bytes(serialization.Encoding.DER)


async def _ask(authority: Authority, cert: x509.Certificate) -> ocsp.OCSPResponse:
    der = await authority.ocsp(_request(cert, authority.current.certificate))
    return ocsp.load_der_ocsp_response(der)


def _signed_by(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(
            response.signature,
            response.tbs_response_bytes,
            ec.ECDSA(response.signature_hash_algorithm),
        )
    except Exception:
        return False
    return True


async def test_delegated_responses_carry_the_responder_certificate(tmp_path, write_home, make_csr):
    clock = FixedClock(START)
    authority = await _open(tmp_path, write_home, clock)
    try:
        leaf = await _leaf(authority, make_csr)
        response = await _ask(authority, leaf)
        assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
        [responder] = response.certificates
        ca = authority.current.certificate
        # RFC 6960 §4.2.2.2: issued by the CA key the answer is about, for OCSP signing only
        assert responder.issuer == ca.subject
        responder.verify_directly_issued_by(ca)
        eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
        assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)  # §4.2.2.2.1
        assert not responder.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        span = responder.not_valid_after_utc - responder.not_valid_before_utc
        assert span == OCSP_RESPONDER_VALIDITY - dt.timedelta(seconds=1)
        # signed by the responder key, named by it, never by the CA key
        assert _signed_by(response, responder) and not _signed_by(response, ca)
        assert (
            response.responder_key_hash
            == x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
        )
        # producedAt comes from the injected clock, inside the responder certificate's validity
        assert response.produced_at_utc == clock.now()
        # no response outlives the certificate that signed it
        assert response.next_update_utc <= responder.not_valid_after_utc
        # the key sits in the data directory, readable by its owner only
        key_file = tmp_path / "keys" / "ocsp-1.key.pem"
        assert key_file.stat().st_mode & 0o777 == 0o600
        # accounted for as every signature of the CA key: intent, record and audit entry
        record = await authority.store.certificate(1, responder.serial_number)
        assert record.profile == "ocsp-responder"
        intents = await authority.store.intents("issued")
        assert [(i.target, i.profile) for i in intents if i.serial == responder.serial_number] == [
            ("ocsp/responder/1", "ocsp-responder")
        ]
    finally:
        await authority.close()


async def test_the_ca_signs_itself_by_default(tmp_path, write_home, make_csr):
    clock = FixedClock(START)
    authority = await _open(tmp_path, write_home, clock, delegated=False)
    try:
        assert authority.config.ocsp.responder == "ca"
        response = await _ask(authority, await _leaf(authority, make_csr))
        assert response.certificates == []
        assert _signed_by(response, authority.current.certificate)
        assert not (tmp_path / "keys" / "ocsp-1.key.pem").exists()
    finally:
        await authority.close()


async def test_the_responder_certificate_is_renewed_before_it_expires(
    tmp_path, write_home, make_csr
):
    clock = FixedClock(START)
    authority = await _open(tmp_path, write_home, clock)
    try:
        leaf = await _leaf(authority, make_csr)
        first = (await _ask(authority, leaf)).certificates[0]
        due = first.not_valid_after_utc - OCSP_RESPONDER_RENEW_BEFORE
        # an answer signed one hour before the renewal is due stays in the cache...
        clock.advance(due - clock.now() - dt.timedelta(hours=1))
        cached = await _ask(authority, leaf)
        assert cached.certificates == [first]
        # ...until the renewal, one hour later: the answer (still fresh by its own age) carries
        # the old certificate and is not sent again
        clock.advance(dt.timedelta(hours=1))
        renewed = await _ask(authority, leaf)
        [second] = renewed.certificates
        assert second.serial_number != first.serial_number
        assert second.public_key() == first.public_key()  # one key per generation
        assert clock.now() < first.not_valid_after_utc  # renewed before the old one ended
        assert second.not_valid_before_utc == clock.now()
        assert _signed_by(renewed, second)
        assert renewed.next_update_utc <= second.not_valid_after_utc
        assert renewed.this_update_utc + OCSP_VALIDITY <= second.not_valid_after_utc
        # another server process on the same data directory uses the renewed certificate
        again = await _open(tmp_path, write_home, clock)
        try:
            assert (await _ask(again, leaf)).certificates == [second]
        finally:
            await again.close()
        issued = [
            e.event
            for e in await authority.store.audit_log()
            if e.event.action == "certificate.issue"
            and e.event.details.get("purpose") == "delegated OCSP responder"
        ]
        assert len(issued) == 2
    finally:
        await authority.close()


async def test_each_generation_has_its_own_responder(tmp_path, write_home, make_csr):
    """After a rollover the old generation still answers for its certificates, through a
    responder certificate its own key issues (RFC 6960 §4.2.2.2: issued by the CA that issued
    the certificate in question), though it no longer issues subscriber certificates."""
    clock = FixedClock(START)
    authority = await _open(tmp_path, write_home, clock)
    try:
        old_leaf = await _leaf(authority, make_csr)
        old = authority.current
        await authority.rollover("test")
        der = await authority.ocsp(_request(old_leaf, old.certificate))
        [responder] = ocsp.load_der_ocsp_response(der).certificates
        responder.verify_directly_issued_by(old.certificate)
        assert (tmp_path / "keys" / "ocsp-1.key.pem").exists()
        assert not (tmp_path / "keys" / "ocsp-2.key.pem").exists()
        new_leaf = await _leaf(authority, make_csr)
        [second] = (await _ask(authority, new_leaf)).certificates
        second.verify_directly_issued_by(authority.current.certificate)
        assert second.public_key() != responder.public_key()
    finally:
        await authority.close()


def test_the_responder_setting_is_checked(tmp_path, write_home):
    path = write_home(tmp_path)
    path.write_text(path.read_text().replace('responder = "ca"', 'responder = "ours"'))
    with pytest.raises(configuration.ConfigError) as caught:
        configuration.load(path, tmp_path)
    assert "ocsp.responder: use 'ca' or 'delegated', not 'ours'" in caught.value.errors


# -- a running server ------------------------------------------------------------------------------
class Server:
    def __init__(self, home: Path, http: str) -> None:
        self.home = home
        self.http = http


@pytest.fixture(scope="module")
def server(tmp_path_factory, write_home, free_port, make_csr, subject_record) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("delegated")
    http_port, https_port = free_port(), free_port()
    _delegated(write_home(home, http_port=http_port, https_port=https_port))
    subprocess.run([JITSUIN, "--home", str(home), "init"], check=True, capture_output=True)
    for name, subscriber in (("good", "alice"), ("revoked", "bob")):
        csr = home / f"{name}.csr"
        csr.write_bytes(make_csr(ec.generate_private_key(ec.SECP256R1())))
        record = home / f"{name}.json"
        record.write_text(json.dumps(subject_record(subscriber_id=subscriber)))
        subprocess.run(
            [
                *(JITSUIN, "--home", str(home), "issue", "--csr", str(csr)),
                *("--subject", str(record), "--profile", "general"),
                *("--out", str(home / f"{name}.pem")),
            ],
            check=True,
            capture_output=True,
        )
    revoked = x509.load_pem_x509_certificate((home / "revoked.pem").read_bytes())
    subprocess.run(
        [
            *(JITSUIN, "--home", str(home), "ca", "revoke", format(revoked.serial_number, "x")),
            *("--generation", "1", "--reason", "keyCompromise"),
        ],
        check=True,
        capture_output=True,
    )
    log = (home / "server.log").open("wb")
    process = subprocess.Popen([JITSUIN, "--home", str(home), "serve"], stdout=log, stderr=log)
    running = Server(home, f"http://127.0.0.1:{http_port}")
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{running.http}/ca/1.pem", timeout=10) as reply:
                    (home / "ca.pem").write_bytes(reply.read())
                break
            except OSError:
                assert process.poll() is None, (home / "server.log").read_text()
                time.sleep(0.1)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.mark.parametrize("name", ["good", "revoked"])
def test_openssl_verifies_the_delegated_response(server: Server, name: str) -> None:
    home = server.home
    out = home / f"{name}.ocsp"
    result = subprocess.run(
        [
            *("openssl", "ocsp", "-issuer", home / "ca.pem", "-CAfile", home / "ca.pem"),
            *("-url", f"{server.http}/ocsp", "-cert", home / f"{name}.pem", "-respout", out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    # -CAfile only: openssl finds the responder certificate in the response, checks that the
    # CA issued it with OCSPSigning, and trusts the answer (RFC 6960 §4.2.2.2)
    assert "Response verify OK" in result.stderr, result.stderr
    assert f"{home / f'{name}.pem'}: {name}" in result.stdout, result.stdout
    assert ocsp.load_der_ocsp_response(out.read_bytes()).certificates


def test_pyhanko_certvalidator_requires_and_accepts_the_delegated_response(
    server: Server,
) -> None:
    """pyHanko's validator, pyhanko-certvalidator, checks the certificate path with OCSP
    required for the end entity, fetching the answer from the running delegated responder.
    tests/conformance/test_pdf_delegated_ocsp.py validates a signed PDF with such a response."""
    home = server.home

    def der(name: str) -> asn1_x509.Certificate:
        cert = x509.load_pem_x509_certificate((home / f"{name}.pem").read_bytes())
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    async def validate(name: str) -> list[bytes]:
        backend = AIOHttpFetcherBackend()
        context = ValidationContext(
            trust_roots=[der("ca")],
            allow_fetching=True,
            fetcher_backend=backend,
            revinfo_policy=CertRevTrustPolicy(
                RevocationCheckingPolicy(
                    ee_certificate_rule=RevocationCheckingRule.OCSP_REQUIRED,
                    intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
                )
            ),
        )
        try:
            validator = CertificateValidator(der(name), validation_context=context)
            await validator.async_validate_usage({"digital_signature"})
        finally:
            await backend.close()
        return [r.dump() for r in context.ocsps]

    [answer] = asyncio.run(validate("good"))
    [responder] = ocsp.load_der_ocsp_response(answer).certificates
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
    with pytest.raises(RevokedError):
        asyncio.run(validate("revoked"))

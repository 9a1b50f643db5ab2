"""The OCSP responder's caches: a revocation through this process shows at once; one made by
another process shows within server.ocsp_status_ttl; signed answers are reused while fresh."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from jitsuin.ca.clock import FixedClock
from jitsuin.ca.subject import VettedSubject
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority
from jitsuin.server.storage import AuditEvent


async def _setup(tmp_path, write_home, make_csr):
    path = write_home(tmp_path)
    clock = FixedClock(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    authority = await Authority.open(configuration.load(path, tmp_path), clock)
    certs = []
    for n in range(2):
        csr = make_csr(ec.generate_private_key(ec.SECP256R1()))
        subject = VettedSubject(f"s{n}", "Yamada", "Taro", f"t{n}@example.jp", "member", "AB-1")
        certs.append((await authority.issue_personal(csr, subject, "general", "test")).certificate)
    return authority, clock, certs


def _request(cert: x509.Certificate, ca: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA256())
    return builder.build().public_bytes(serialization.Encoding.DER)


async def _status(authority: Authority, cert: x509.Certificate) -> str:
    der = await authority.ocsp(_request(cert, authority.current.certificate))
    return ocsp.load_der_ocsp_response(der).certificate_status.name


async def test_revocation_here_shows_at_once(tmp_path, write_home, make_csr):
    authority, _, (cert, _) = await _setup(tmp_path, write_home, make_csr)
    try:
        assert await _status(authority, cert) == "GOOD"
        await authority.revoke(1, cert.serial_number, "keyCompromise", "test")
        assert await _status(authority, cert) == "REVOKED"
    finally:
        await authority.close()


async def test_revocation_elsewhere_shows_within_the_ttl(tmp_path, write_home, make_csr):
    authority, clock, (_, cert) = await _setup(tmp_path, write_home, make_csr)
    try:
        assert await _status(authority, cert) == "GOOD"
        # another process revokes through the shared store, not through this Authority
        await authority.store.revoke_certificate(
            1,
            cert.serial_number,
            "superseded",
            clock.now(),
            AuditEvent(clock.now(), "other-process", "certificate.revoke", "x"),
        )
        assert await _status(authority, cert) == "GOOD"  # still within the TTL
        clock.advance(authority.config.server.ocsp_status_ttl + dt.timedelta(seconds=1))
        assert await _status(authority, cert) == "REVOKED"
    finally:
        await authority.close()


async def test_signed_answers_are_reused_while_fresh(tmp_path, write_home, make_csr):
    authority, clock, (cert, _) = await _setup(tmp_path, write_home, make_csr)
    try:
        request = _request(cert, authority.current.certificate)
        first = await authority.ocsp(request)
        assert await authority.ocsp(request) == first  # the same signed bytes: no new signature
        clock.advance(dt.timedelta(hours=13))  # past OCSP_REFRESH_AFTER
        refreshed = await authority.ocsp(request)
        assert refreshed != first
        response = ocsp.load_der_ocsp_response(refreshed)
        assert response.this_update_utc == clock.now()
    finally:
        await authority.close()


async def test_answers_about_made_up_serials_are_not_kept(tmp_path, write_home, make_csr):
    """Anyone can ask about any serial: "unknown" answers are signed afresh and never kept, so
    made-up serials neither grow the caches nor evict the answers about real certificates."""
    authority, _, (cert, _) = await _setup(tmp_path, write_home, make_csr)
    ca = authority.current.certificate
    name_hash = _sha1(ca.subject.public_bytes())
    key_hash = _sha1(ca.public_key().public_bytes(serialization.Encoding.X962, PUBLIC_POINT))
    try:
        assert await _status(authority, cert) == "GOOD"
        for serial in range(1, 201):
            builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
                name_hash,
                key_hash,
                serial,
                hashes.SHA1(),  # noqa: S303 (RFC 5019 §2.1.1)
            )
            der = builder.build().public_bytes(serialization.Encoding.DER)
            answer = ocsp.load_der_ocsp_response(await authority.ocsp(der))
            assert answer.certificate_status.name == "UNKNOWN"
        assert [key[1] for key in authority._ocsp_cache] == [cert.serial_number]
        assert list(authority._status_cache) == [(1, cert.serial_number)]
    finally:
        await authority.close()


PUBLIC_POINT = serialization.PublicFormat.UncompressedPoint


def _sha1(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 (the CertID hash of RFC 5019 §2.1.1)
    digest.update(data)
    return digest.finalize()


async def test_each_certid_hash_gets_an_answer_in_its_own_terms(tmp_path, write_home, make_csr):
    """RFC 6960 §4.2.1: the response's CertID is the request's, hash algorithm included. NSS
    (pdfsig, Firefox) asks with SHA-1 and rejects an answer whose CertID is hashed otherwise, so
    an answer cached for a SHA-256 request must not be sent to it."""
    authority, _, (cert, _) = await _setup(tmp_path, write_home, make_csr)
    ca = authority.current.certificate
    try:
        for algorithm in (hashes.SHA256(), hashes.SHA1(), hashes.SHA256()):  # noqa: S303
            request = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, algorithm).build()
            der = await authority.ocsp(request.public_bytes(serialization.Encoding.DER))
            answer = ocsp.load_der_ocsp_response(der)
            assert answer.hash_algorithm.name == algorithm.name
            assert answer.issuer_key_hash == request.issuer_key_hash
            assert answer.issuer_name_hash == request.issuer_name_hash
            assert answer.serial_number == cert.serial_number
    finally:
        await authority.close()

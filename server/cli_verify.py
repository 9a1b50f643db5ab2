"""``jitsuin verify`` (SEED-R20): does a certificate chain to this CA's published certificates,
and why not? What the CA publishes is read from the store, so no CA key or passphrase is needed."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from collections.abc import Callable

from asn1crypto import pem as asn1_pem
from cryptography import x509

from jitsuin.ca.verify import Verdict, purpose_problem, revoked_reason, validate_path
from jitsuin.server.cli_errors import EXIT_REFUSED, CLIError, bullets, read_input
from jitsuin.server.config import Config
from jitsuin.server.fingerprint import colon_fingerprint
from jitsuin.server.storage import CertificateRecord, NotFound, open_store


async def generation_certificates(config: Config) -> list[tuple[int, x509.Certificate]]:
    """Published CA certificates read from the store: no CA key or passphrase needed."""
    if config.database_dialect == "sqlite" and not config.database_path.exists():
        raise CLIError(f"no CA in {config.home}: run `jitsuin init` first")
    store = await open_store(config)
    try:
        records = await store.generations()
    finally:
        await store.close()
    if not records:
        raise CLIError(f"no CA in {config.home}: run `jitsuin init` first")
    return [(r.number, x509.load_der_x509_certificate(r.certificate_der)) for r in records]


async def _published(
    config: Config, leaf: x509.Certificate
) -> tuple[list[x509.Certificate], list[x509.Certificate], list[bytes], CertificateRecord | None]:
    """What this CA publishes (CA and link certificates, the latest CRLs) and what it knows of
    ``leaf``, read from the store: no CA key or passphrase needed."""
    trusted = [cert for _, cert in await generation_certificates(config)]
    store = await open_store(config)
    try:
        links: list[x509.Certificate] = []
        for link in await store.links():
            links += [
                x509.load_der_x509_certificate(link.old_with_new),
                x509.load_der_x509_certificate(link.new_with_old),
            ]
        crls = [
            crl.der
            for number in range(1, len(trusted) + 1)
            if (crl := await store.latest_crl(number)) is not None
        ]
        status = None
        for number in range(1, len(trusted) + 1):
            with contextlib.suppress(NotFound):
                status = await store.certificate(number, leaf.serial_number)
    finally:
        await store.close()
    return trusted, links, crls, status


def _load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CLIError(f"{source}: not a certificate (PEM or DER)") from exc


def _load_crls(data: bytes, source: str) -> list[bytes]:
    """The CRLs of a file as DER: one DER CRL, or PEM with one or more X509 CRL blocks."""
    try:
        if asn1_pem.detect(data):
            blocks = [der for kind, _, der in asn1_pem.unarmor(data, multiple=True)
                      if kind == "X509 CRL"]  # fmt: skip
        else:
            blocks = [data]
        for der in blocks:
            x509.load_der_x509_crl(der)
    except ValueError as exc:
        raise CLIError(f"{source}: not a CRL (PEM or DER)") from exc
    if not blocks:
        raise CLIError(f"{source}: no X509 CRL in the PEM file")
    return blocks


async def verify(args: argparse.Namespace, load: Callable[[], Config]) -> int:
    """SEED-R20: does the certificate chain to the published CA certificates, and why not?"""
    certs = _load_certificates(read_input(args.certificate, "certificate"), args.certificate)
    leaf, others = certs[0], certs[1:]
    given_crls = [
        der for path in args.crl or () for der in _load_crls(read_input(path, "CRL"), path)
    ]
    crls: list[bytes] = []
    status: CertificateRecord | None = None
    if args.ca:
        trusted = [c for path in args.ca for c in _load_certificates(read_input(path, "CA"), path)]
    else:
        published = await _published(load(), leaf)
        trusted, links, crls, status = published
        others += links
    at = dt.datetime.now(dt.UTC)
    if args.at:
        try:
            at = dt.datetime.fromisoformat(args.at)
        except ValueError as exc:
            raise CLIError(f"--at: not an ISO 8601 time: {args.at!r}") from exc
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
    # CRLs given on the command line are meant to be used: every certificate on the path must
    # then be covered by one (RFC 5280 §6.3), as in the NIST PKITS tests.
    verdict = await validate_path(
        leaf, trusted, others, [*crls, *given_crls], at, require_revocation=bool(given_crls)
    )
    subject = leaf.subject.rfc4514_string()
    if verdict.ok and status is not None and status.status == "revoked":
        assert status.revoked_at is not None
        reason = revoked_reason(status.revoked_at, status.revocation_reason or "unspecified")
        verdict = Verdict(False, verdict.chain, (reason,))
    # The purpose last: a revoked certificate is reported as revoked, whatever its EKU.
    if verdict.ok and (problem := purpose_problem(leaf, args.purpose)) is not None:
        verdict = Verdict(False, verdict.chain, (problem,))
    if verdict.ok:
        print(f"OK: {subject} chains to {verdict.chain[-1].subject.rfc4514_string()}")
        print(f"  CA SHA-256 {colon_fingerprint(verdict.chain[-1])}")
        print(f"  valid until {leaf.not_valid_after_utc.isoformat()}")
        return 0
    print(f"NOT OK: {subject}", file=sys.stderr)
    print(bullets(verdict.reasons), file=sys.stderr)
    return EXIT_REFUSED

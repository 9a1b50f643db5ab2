"""CA generations: a key pair and its self-signed CA certificate (SEED-R15; docs/conformance.md
C-01/C-02).

Every generation carries a byte-identical subject DN (C-04); the key identifiers tell them apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.clock import Clock
from jitsuin.ca.keys import Signer
from jitsuin.ca.profiles import CA_VALIDITY_YEARS, SUBSCRIBER_VALIDITY
from jitsuin.ca.signing import draft_certificate, sign_draft

ONE_SECOND = dt.timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class CAGeneration:
    number: int
    certificate: x509.Certificate
    signer: Signer

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def key_identifier(self) -> bytes:
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return ski.value.digest

    def issuance_cutoff(self, margin: dt.timedelta) -> dt.datetime:
        return issuance_cutoff(self.certificate, margin)


def authority_key_id(cert: x509.Certificate) -> bytes | None:
    """The keyIdentifier of ``cert``'s authority key identifier (RFC 5280 §4.2.1.1), if any."""
    try:
        return cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def generation_by_key_id(generations: Sequence[CAGeneration], key_id: bytes) -> CAGeneration | None:
    """The generation whose subject key identifier is ``key_id`` (an AKI, or an ARI CertID's
    keyIdentifier, RFC 9773 §4.1)."""
    return next((g for g in generations if g.key_identifier == key_id), None)


def issuing_generation(
    cert: x509.Certificate, generations: Sequence[CAGeneration]
) -> CAGeneration | None:
    """The CA generation whose key signed ``cert``: found by the authority key identifier (any
    generation when the certificate has none), then checked as RFC 5280 §6.1.3 (a)(1), (a)(4)
    check a path: the issuer name matches the generation's subject and the signature verifies
    with its public key. A certificate of another CA, even one that copies this CA's name or
    key identifier, has none."""
    key_id = authority_key_id(cert)
    candidates = (
        reversed(generations)
        if key_id is None
        else [g for g in generations if g.key_identifier == key_id]
    )
    for generation in candidates:
        try:
            cert.verify_directly_issued_by(generation.certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return generation
    return None


def issuance_cutoff(ca_certificate: x509.Certificate, margin: dt.timedelta) -> dt.datetime:
    """The last notBefore at which a 396-day certificate still ends inside the CA certificate,
    less a margin (SEED-R15; docs/conformance.md C-07, S-16)."""
    return ca_certificate.not_valid_after_utc - SUBSCRIBER_VALIDITY + ONE_SECOND - margin


def ten_years_after(start: dt.datetime) -> dt.datetime:
    """The last second of a validity of ``CA_VALIDITY_YEARS`` calendar years (C-02)."""
    try:
        end = start.replace(year=start.year + CA_VALIDITY_YEARS)
    except ValueError:  # 29 February
        end = start.replace(year=start.year + CA_VALIDITY_YEARS, day=28)
    return end - ONE_SECOND


def ca_extensions(subject_ski: bytes, issuer_ski: bytes) -> list[tuple[x509.ExtensionType, bool]]:
    """Extensions of CA and link certificates (S/MIME BR 7.1.2.1; docs/conformance.md C-01, C-09):
    basicConstraints cA critical, keyUsage keyCertSign + cRLSign (+ digitalSignature: the CA key
    signs OCSP responses itself, RFC 6960 §4.2.2.2) critical, SKI, and AKI = the signer's SKI."""
    return [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        ),
        (x509.SubjectKeyIdentifier(subject_ski), False),
        (x509.AuthorityKeyIdentifier(issuer_ski, None, None), False),
    ]


def create_generation(
    number: int, signer: Signer, subject: x509.Name, clock: Clock
) -> CAGeneration:
    """A self-signed CA certificate for ``signer``'s key (S/MIME BR 7.1.2.1, root profile)."""
    not_before = clock.now()
    public_key = signer.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key).digest
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(ten_years_after(not_before))
    )
    for extension, critical in ca_extensions(ski, ski):
        builder = builder.add_extension(extension, critical=critical)
    signed = sign_draft(draft_certificate(builder, signer), signer)
    return CAGeneration(number=number, certificate=signed.certificate, signer=signer)

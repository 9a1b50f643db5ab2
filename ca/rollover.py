"""CA key rollover: the next generation and its link certificates (RFC 4210 §4.4 as updated by
RFC 9810 §4.4; SEED-R15...R17; docs/conformance.md C-05...C-08).

- NewWithNew: the new self-signed CA certificate, 10 years (SEED-R15).
- OldWithNew: the old public key signed by the new key, valid exactly as OldWithOld: from the old
  key's creation to the old CA certificate's expiry (SEED-R16; RFC 9810 §4.4.1).
- NewWithOld: the new public key signed by the old key, from the new key's creation (NewWithNew's
  notBefore) to OldWithOld's notAfter, which is at least the expiry of the last certificate the old
  key issued because the issuance cut-off kept every old-key leaf inside OldWithOld (SEED-R17,
  docs/conformance.md C-06/C-07).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from jitsuin.ca.clock import Clock
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import CAGeneration, ca_extensions, create_generation
from jitsuin.ca.keys import PublicKey, Signer
from jitsuin.ca.signing import draft_certificate, sign_draft


@dataclass(frozen=True, slots=True)
class Rollover:
    new: CAGeneration
    old_with_new: x509.Certificate
    new_with_old: x509.Certificate


def _link(
    subject_key: PublicKey,
    subject_ski: bytes,
    signer: Signer,
    signer_ski: bytes,
    name: x509.Name,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)  # every generation carries the same DN (docs/conformance.md C-04)
        .issuer_name(name)
        .public_key(subject_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in ca_extensions(subject_ski, signer_ski):
        builder = builder.add_extension(extension, critical=critical)
    return sign_draft(draft_certificate(builder, signer), signer).certificate


def roll_over(
    old: CAGeneration, new_signer: Signer, clock: Clock, last_old_leaf_expiry: dt.datetime | None
) -> Rollover:
    """Create generation ``old.number + 1`` and the two link certificates."""
    if last_old_leaf_expiry is not None and last_old_leaf_expiry > old.not_after:
        # Cannot happen while the issuance cut-off holds; refuse rather than publish a NewWithOld
        # that ends before an old-key certificate (SEED-R17).
        raise CAError(
            Kind.CUTOFF,
            f"a certificate of generation {old.number} outlives its CA certificate; "
            "NewWithOld could not cover it",
        )
    if clock.now() >= old.not_after:
        raise CAError(Kind.CUTOFF, f"CA generation {old.number} has expired; link impossible")
    name = old.certificate.subject
    new = create_generation(old.number + 1, new_signer, name, clock)
    old_with_new = _link(
        old.certificate.public_key(),
        old.key_identifier,
        new_signer,
        new.key_identifier,
        name,
        old.not_before,
        old.not_after,
    )
    new_with_old = _link(
        new.certificate.public_key(),
        new.key_identifier,
        old.signer,
        old.key_identifier,
        name,
        new.not_before,
        old.not_after,
    )
    return Rollover(new=new, old_with_new=old_with_new, new_with_old=new_with_old)

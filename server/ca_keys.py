"""The CA keys of the generations: made in the PKCS#11 token or as encrypted PKCS#8 files in the
data directory (``[ca] key_store``), found again from the reference stored with each generation,
and checked against its certificate before the CA uses them."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from jitsuin.ca.clock import Clock
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import CAGeneration, create_generation
from jitsuin.ca.keys import Signer, SoftwareSigner, generate_private_key
from jitsuin.server.config import Config
from jitsuin.server.pkcs11_signer import Pkcs11Signer
from jitsuin.server.pkcs11_signer import key_ref as pkcs11_key_ref
from jitsuin.server.pkcs11_signer import parse_key_ref as parse_pkcs11_ref
from jitsuin.server.secret_files import write_secret
from jitsuin.server.storage import AuditEvent, GenerationRecord, Store


def new_key(config: Config, number: int) -> tuple[Signer, str]:
    """A new CA key: in the PKCS#11 token, or as encrypted PKCS#8 in the data directory.
    Returns the signer and the key reference stored with the generation."""
    if config.ca.key_store == "pkcs11":
        token = config.token()
        label = f"ca-{number}"
        signer = Pkcs11Signer.generate(token, label, config.ca.key_type)
        return signer, pkcs11_key_ref(token, label)
    software = SoftwareSigner(generate_private_key(config.ca.key_type))
    key_path = config.keys_dir / f"ca-{number}.key.pem"
    try:
        write_secret(key_path, software.encrypted_pkcs8(config.passphrase()), exclusive=True)
    except FileExistsError:
        raise CAError(
            Kind.BAD_KEY_FILE,
            f"{key_path} exists but the store has no CA generation {number}: refusing to "
            "overwrite a CA key (restore the database or move the key away)",
        ) from None
    return software, f"file:{key_path.relative_to(config.home)}"


async def create_first_generation(config: Config, store: Store, clock: Clock) -> GenerationRecord:
    """Generation 1 (``jitsuin init``, or the first start): its key, its self-signed CA
    certificate, stored with an audit entry."""
    signer, ref = new_key(config, 1)
    generation = create_generation(1, signer, config.ca.subject, clock)
    record = GenerationRecord(
        number=1,
        certificate_der=generation.der,
        key_ref=ref,
        created_at=clock.now(),
    )
    # Nothing is stored unless the key signed and the stored reference finds it again (in a
    # token, through this process's one login): a generation whose key cannot be loaded
    # would make every later start fail, and `init` would not make it again.
    try:
        generation.certificate.verify_directly_issued_by(generation.certificate)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise CAError(
            Kind.BAD_KEY_FILE, f"{ref}: the new CA certificate's signature does not verify"
        ) from exc
    load_generation(config, record)
    await store.add_generation(
        record,
        AuditEvent(
            at=clock.now(),
            actor="system",
            action="ca.generation.create",
            target="generation/1",
            details={
                "key_type": config.ca.key_type.value,
                "subject": config.ca.subject.rfc4514_string(),
                "sha256": generation.certificate.fingerprint(hashes.SHA256()).hex(),
            },
        ),
    )
    return record


def load_generation(config: Config, record: GenerationRecord) -> CAGeneration:
    scheme, _, ref = record.key_ref.partition(":")
    signer: Signer
    if scheme == "pkcs11":
        signer = Pkcs11Signer(config.token(), parse_pkcs11_ref(record.key_ref))
    elif scheme == "file":
        path = config.home / ref
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CAError(
                Kind.BAD_KEY_FILE,
                f"cannot read the CA key of generation {record.number}: {exc}",
            ) from exc
        signer = SoftwareSigner.from_encrypted_pkcs8(data, config.passphrase())
    else:
        raise CAError(Kind.BAD_KEY_FILE, f"unsupported key reference {record.key_ref!r}")
    certificate = x509.load_der_x509_certificate(record.certificate_der)
    if signer.public_key() != certificate.public_key():
        raise CAError(
            Kind.BAD_KEY_FILE,
            f"{record.key_ref} does not hold the key of CA generation {record.number}",
        )
    return CAGeneration(record.number, certificate, signer)

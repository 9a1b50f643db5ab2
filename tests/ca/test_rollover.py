"""CA key rollover over years with a movable clock (SEED-R15...R17; RFC 9810 §4.4;
docs/conformance.md C): every link certificate field and validity window, and {trust old, trust new}
x {old-key leaf, new-key leaf} validated by openssl and by the path validator behind `jitsuin
verify`, with the cross cases failing when the link certificates are missing."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from jitsuin.ca.clock import FixedClock
from jitsuin.ca.csr import verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import CAGeneration, create_generation
from jitsuin.ca.issuance import CAPolicy, Issuer
from jitsuin.ca.keys import KeyType, SoftwareSigner, generate_private_key
from jitsuin.ca.profiles import SUBSCRIBER_VALIDITY
from jitsuin.ca.rollover import Rollover, roll_over
from jitsuin.ca.subject import VettedSubject
from jitsuin.ca.verify import validate_path

START = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)
NAME = x509.Name.from_rfc4514_string("CN=jitsuin Personal CA,O=jitsuin,C=JP")
POLICY = CAPolicy(policy_arc="1.3.6.1.4.1.32473.7", pki_base_url="http://pki.example.com")


def _leaf(issuer: Issuer, n: int) -> x509.Certificate:
    key = generate_private_key(KeyType.ECDSA_P256)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    subject = VettedSubject(f"s{n}", "Yamada", "Taro", f"taro{n}@example.jp", "member", f"AB-{n}")
    record = verify_csr(csr.public_bytes(serialization.Encoding.PEM))
    return issuer.issue(record, subject, "general").certificate


@dataclass
class History:
    old: CAGeneration
    rollover: Rollover
    old_leaves: list[x509.Certificate]
    new_leaves: list[x509.Certificate]
    at_rollover: dt.datetime
    clock: FixedClock


@pytest.fixture(scope="module")
def history() -> History:
    clock = FixedClock(START)
    old = create_generation(
        1, SoftwareSigner(generate_private_key(KeyType.ECDSA_P384)), NAME, clock
    )
    issuer = Issuer(old, POLICY, clock)
    old_leaves = []
    for years in (0, 3, 6):  # certificates issued over the years (each renewed yearly, SEED-R1)
        clock.at = START + dt.timedelta(days=365 * years)
        old_leaves.append(_leaf(issuer, years))
    # travel to the last moment generation 1 may issue, and issue there: the latest old leaf
    clock.at = old.issuance_cutoff(POLICY.cutoff_margin)
    old_leaves.append(_leaf(issuer, 99))
    clock.advance(dt.timedelta(seconds=1))
    with pytest.raises(CAError) as refused:
        _leaf(issuer, 100)
    assert refused.value.kind is Kind.CUTOFF  # SEED-R15: past the cut-off, no more issuance
    last_expiry = max(c.not_valid_after_utc for c in old_leaves)
    result = roll_over(
        old, SoftwareSigner(generate_private_key(KeyType.ECDSA_P384)), clock, last_expiry
    )
    at_rollover = clock.now()
    new_issuer = Issuer(result.new, POLICY, clock)  # issuance switches to the new key at once
    new_leaves = [_leaf(new_issuer, 200)]
    clock.advance(dt.timedelta(days=100))
    new_leaves.append(_leaf(new_issuer, 201))
    return History(old, result, old_leaves, new_leaves, at_rollover, clock)


def _ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def _aki(cert: x509.Certificate) -> bytes | None:
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier


def test_new_with_new(history: History) -> None:
    new = history.rollover.new.certificate
    # C-04: byte-identical subject DN in every generation; key identifiers tell them apart
    assert new.subject.public_bytes() == history.old.certificate.subject.public_bytes()
    assert _ski(new) != _ski(history.old.certificate)
    assert new.not_valid_before_utc == history.at_rollover
    # C-08 (RFC 9810): NwN starts before OwO ends and ends after the next planned rollover
    assert new.not_valid_before_utc < history.old.not_after
    assert new.not_valid_after_utc > history.rollover.new.issuance_cutoff(POLICY.cutoff_margin)
    new.verify_directly_issued_by(new)


def test_old_with_new(history: History) -> None:
    """SEED-R16; C-05: the old key signed by the new key, valid exactly as OldWithOld."""
    own = history.rollover.old_with_new
    old, new = history.old.certificate, history.rollover.new.certificate
    assert own.public_key() == old.public_key()
    own.verify_directly_issued_by(new)
    assert _aki(own) == _ski(new) and _ski(own) == _ski(old)
    assert own.not_valid_before_utc == old.not_valid_before_utc
    assert own.not_valid_after_utc == old.not_valid_after_utc
    assert own.subject == own.issuer == NAME


def test_new_with_old(history: History) -> None:
    """SEED-R17; C-06: the new key signed by the old key, from the new key's creation to at
    least the last old-key leaf's expiry and at most OldWithOld's end."""
    nwo = history.rollover.new_with_old
    old, new = history.old.certificate, history.rollover.new.certificate
    assert nwo.public_key() == new.public_key()
    nwo.verify_directly_issued_by(old)
    assert _aki(nwo) == _ski(old) and _ski(nwo) == _ski(new)
    assert nwo.not_valid_before_utc == new.not_valid_before_utc
    last_old_leaf = max(c.not_valid_after_utc for c in history.old_leaves)
    assert last_old_leaf <= nwo.not_valid_after_utc <= old.not_valid_after_utc
    # C-07: the rollover came no later than OwO.notAfter - 396 days (- margin)
    assert history.at_rollover <= old.not_valid_after_utc - SUBSCRIBER_VALIDITY


@pytest.mark.parametrize("which", ["old_with_new", "new_with_old"])
def test_link_certificate_extensions(history: History, which: str) -> None:
    cert = getattr(history.rollover, which)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca  # C-09
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert cert.signature_hash_algorithm.name == "sha384"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "jitsuin Personal CA"
    )


def test_old_leaves_fit_inside_the_old_ca(history: History) -> None:
    for leaf in history.old_leaves:  # S-16: no certificate outlives its issuing CA
        assert leaf.not_valid_after_utc <= history.old.not_after
        assert _aki(leaf) == _ski(history.old.certificate)
    for leaf in history.new_leaves:
        assert _aki(leaf) == _ski(history.rollover.new.certificate)


# -- {trust old, trust new} x {old-key leaf, new-key leaf} -----------------------------------------
CASES = [
    # trust, leaf, intermediates, expected
    ("old", "old", [], True),
    ("old", "new", ["new_with_old"], True),
    ("old", "new", [], False),
    ("new", "new", [], True),
    ("new", "old", ["old_with_new"], True),
    ("new", "old", [], False),
]
IDS = [f"trust-{t}-{leaf}-leaf-{'+'.join(i) or 'no-links'}" for t, leaf, i, _ in CASES]


def _anchor(history: History, which: str) -> x509.Certificate:
    return history.old.certificate if which == "old" else history.rollover.new.certificate


def _leaves(history: History, which: str) -> list[x509.Certificate]:
    return history.old_leaves if which == "old" else history.new_leaves


def _check_time(history: History) -> dt.datetime:
    # a moment when every certificate in play is valid: just after the last new leaf
    return history.clock.now() + dt.timedelta(hours=1)


def _pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


@pytest.mark.parametrize(("trust", "leaf", "links", "expected"), CASES, ids=IDS)
def test_openssl_validates_across_the_rollover(
    history: History, tmp_path: Path, trust: str, leaf: str, links: list[str], expected: bool
) -> None:
    anchor = _pem(tmp_path / "anchor.pem", _anchor(history, trust))
    at = str(int(_check_time(history).timestamp()))
    # only leaves still valid at the check time (old leaves of years 0 and 3 have expired)
    leaves = [c for c in _leaves(history, leaf) if c.not_valid_after_utc > _check_time(history)]
    assert leaves
    for n, cert in enumerate(leaves):
        argv = ["openssl", "verify", "-x509_strict", "-attime", at, "-CAfile", str(anchor)]
        if links:
            chain = [getattr(history.rollover, name) for name in links]
            argv += ["-untrusted", str(_pem(tmp_path / "links.pem", *chain))]
        argv.append(str(_pem(tmp_path / f"leaf{n}.pem", cert)))
        result = subprocess.run(argv, capture_output=True, text=True)
        assert (result.returncode == 0) is expected, result.stdout + result.stderr


@pytest.mark.parametrize(("trust", "leaf", "links", "expected"), CASES, ids=IDS)
def test_the_jitsuin_validator_agrees(
    history: History, trust: str, leaf: str, links: list[str], expected: bool
) -> None:
    at = _check_time(history)
    leaves = [c for c in _leaves(history, leaf) if c.not_valid_after_utc > at]
    others = [getattr(history.rollover, name) for name in links]
    for cert in leaves:
        verdict = asyncio.run(validate_path(cert, [_anchor(history, trust)], others, at=at))
        assert verdict.ok is expected, verdict.reasons


def test_never_new_with_new_as_an_intermediate(history: History) -> None:
    """The trap of docs/conformance.md C: NewWithNew offered as an intermediate must not be needed
    and is not what makes a cross case pass."""
    at = _check_time(history)
    verdict = asyncio.run(
        validate_path(
            history.new_leaves[0],
            [history.old.certificate],
            [history.rollover.new.certificate],
            at=at,
        )
    )
    assert not verdict.ok

"""The incremental gate (``[ca] lint = "incremental"``, conformance/shapes.py) gives the findings
the whole linter gives: on every certificate of the conformance cases and of the corpus of
everything jitsuin issues, each linted as the first of its shape and again as a later one, and
on randomized and mutated drafts (bench/lint_diff.py; ``bench/run.py lint-diff`` runs 10,000 and
more). The shape key and the split of pkilint's validators are checked on their own too."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.clock import FixedClock
from jitsuin.ca.issuance import Issuer
from jitsuin.ca.keys import KeyType
from jitsuin.conformance import pkilint_delegate, shapes
from jitsuin.conformance.documents import CertificateDoc, LintContext
from jitsuin.conformance.gate import IssuanceLint, _lint_one
from jitsuin.conformance.registry import DocKind
from jitsuin.server import config as configuration

DER = serialization.Encoding.DER
ROOT = Path(__file__).resolve().parents[2]

# The golden cases break certificates on purpose: cryptography warns about their negative serials
# and over-long attributes while both lint paths read them.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive"),
    pytest.mark.filterwarnings("ignore:Attribute's length must be"),
]


def _by_path(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


lint_diff = _by_path("bench_lint_diff", ROOT / "bench" / "lint_diff.py")


def _findings(factory, der: bytes, cache: shapes.ShapeCache | None) -> list[tuple[str, ...]]:
    context = LintContext(expectations=factory.expectations, draft=True, shapes=cache)
    found = _lint_one(CertificateDoc(der, "draft"), [factory.ca().cert], context)
    return sorted(map(lint_diff._tuple, found))


# -- the shape key


def test_drafts_that_differ_in_values_only_share_a_shape(factory):
    one = factory.leaf("general", KeyType.ECDSA_P256, n=1)
    other = factory.leaf(
        "general",
        KeyType.ECDSA_P256,
        n=2,
        at=dt.datetime(2027, 1, 5, 1, 2, 3, tzinfo=dt.UTC),
        subject=dataclasses.replace(
            factory_subject(), given_name="Kazuyoshi", email="k.otherwise@example.org"
        ),
    )
    assert one.public_bytes(DER) != other.public_bytes(DER)
    assert shapes.shape_key(one.public_bytes(DER)) == shapes.shape_key(other.public_bytes(DER))


def factory_subject():
    from jitsuin.ca.subject import VettedSubject

    return VettedSubject("app-7", "Sato", "Hanako", "hanako@example.com", "member", "AB-7", "JP")


def test_a_change_outside_the_slots_is_another_shape(factory):
    leaf = factory.leaf("general", KeyType.ECDSA_P256, n=1)
    ca = factory.ca()
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    flipped = factory.variant(leaf, ca.key, replace={x509.ExtendedKeyUsage: (eku.value, True)})
    rsa = factory.leaf("general", KeyType.RSA_2048, n=1)
    keys = {shapes.shape_key(c.public_bytes(DER)) for c in (leaf, flipped, rsa)}
    assert len(keys) == 3 and None not in keys


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x81\x03\x02\x01\x01",  # a long form where the short one fits
        bytes.fromhex("3003020101"),  # not a certificate
    ],
    ids=["empty", "indefinite", "non-minimal-length", "not-a-certificate"],
)
def test_what_cannot_be_cut_into_slots_has_no_shape(der):
    assert shapes.shape_key(der) is None


def test_a_non_minimal_length_inside_the_tbs_has_no_shape(factory):
    der = factory.leaf().public_bytes(DER)
    assert shapes.shape_key(der) is not None
    # serialNumber's length written in long form: BER, not DER
    tbs_at = 4
    serial_at = tbs_at + 4 + 5  # TBS header, then [0] version (a0 03 02 01 02)
    assert der[serial_at] == 0x02
    length = der[serial_at + 1]
    ber = der[: serial_at + 1] + bytes((0x81, length)) + der[serial_at + 2 :]
    ber = lint_diff._relength(ber, b"", b"\x00")[:-1]  # the outer lengths grow by one
    assert shapes.shape_key(ber) is None


# -- the split of pkilint's validators


def _leaves(container: Any) -> list[Any]:
    """The validators that are not containers, anywhere in ``container``."""
    inner = getattr(container, "validators", None)
    if inner is None:
        return [container]
    return [leaf for v in inner for leaf in _leaves(v)]


def _every(container: Any) -> list[Any]:
    return [container, *(w for v in getattr(container, "validators", []) for w in _every(v))]


@pytest.mark.parametrize("linter", ["pkix", "smime"])
def test_every_validator_runs_once_per_shape_or_on_every_draft(linter):
    """Each validator of the whole linter is judged once per shape (and only if it is in
    SHAPE_VALIDATORS), or is node-local (restricted to the slots in the per-draft part), or runs
    on every draft as it is."""
    args = ("INDIVIDUAL", "MULTIPURPOSE") if linter == "smime" else ()
    split = pkilint_delegate._split(linter, *args)
    per_draft = {id(v) for v in _leaves(split.per_draft)}
    kinds = {"shape": 0, "local": 0, "per-draft": 0}
    for v in _leaves(split.linter):
        if id(v) in split.shape:
            assert type(v).__name__ in shapes.SHAPE_VALIDATORS and id(v) not in per_draft
            kinds["shape"] += 1
        elif id(v) in split.local:
            kinds["local"] += 1
        else:
            assert id(v) in per_draft, type(v).__name__
            kinds["per-draft"] += 1
    assert all(kinds.values()), kinds
    assert len(per_draft) == len(_leaves(split.linter)) - kinds["shape"]


def test_every_name_in_the_split_is_a_pkilint_validator():
    """A name that no longer matches a pkilint class would silently move nothing: each one
    must name a validator of one of the linters the gate runs."""
    names = set()
    for linter, args in (("pkix", ()), ("smime", ("INDIVIDUAL", "MULTIPURPOSE"))):
        names |= {type(v).__name__ for v in _every(pkilint_delegate._split(linter, *args).linter)}
    assert set(shapes.SHAPE_VALIDATORS) - names == set()
    assert shapes.NODE_LOCAL_VALIDATORS - names == set()


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("certificate.tbsCertificate.serialNumber", True),
        ("certificate.tbsCertificate.validity.notAfter.utcTime", True),
        ("certificate.tbsCertificate.subject.rdnSequence.2.0.value.x520CommonName", True),
        ("certificate.tbsCertificate.subject.rdnSequence.2.0.type", False),
        ("certificate.tbsCertificate.issuer.rdnSequence.0.0.value", False),
        ("certificate.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey.eCPoint", True),
        ("certificate.tbsCertificate.subjectPublicKeyInfo.algorithm", False),
        ("certificate.tbsCertificate.extensions.5.extnValue.subjectAltName.0.dNSName", True),
        ("certificate.tbsCertificate.extensions.2.extnValue.subjectKeyIdentifier", True),
        (
            "certificate.tbsCertificate.extensions.3.extnValue.cRLDistributionPoints.0."
            "distributionPoint.fullName.0.uniformResourceIdentifier",
            False,
        ),
    ],
)
def test_the_slots_in_pkilint_paths(path, inside):
    assert shapes.in_slot(path) is inside


# -- the differential test


def _golden_cases() -> list[Any]:
    """The conformance cases (tests/conformance/golden.py), registered by importing the rule
    modules' cases through test_rules.py."""
    from tests.conformance import test_rules
    from tests.conformance.golden import CASES

    assert test_rules.CASE_MODULES  # importing them registered their cases
    return list(CASES)


def _conformance_certificates(factory) -> list[bytes]:
    """The DER of every certificate judged by the conformance cases (tests/conformance/
    test_rules.py), and of the corpus of everything jitsuin issues."""
    found: dict[bytes, None] = {}
    for case in _golden_cases():
        factory.last_judged = None
        try:
            case.build(factory)
        except Exception:  # noqa: S112 (a live case needing a server: not a certificate)
            continue
        doc = factory.last_judged
        if doc is not None and doc.kind is DocKind.CERTIFICATE:
            found[doc.der] = None
    for obj in factory.good:
        if isinstance(obj, x509.Certificate):
            found[obj.public_bytes(DER)] = None
    return list(found)


def test_incremental_equals_full_on_the_conformance_cases(factory):
    certificates = _conformance_certificates(factory)
    assert len(certificates) > 100
    cache = shapes.ShapeCache()
    for obj in factory.good:  # the shapes jitsuin issues, seen first
        if isinstance(obj, x509.Certificate):
            _findings(factory, obj.public_bytes(DER), cache)
    hits = cache.hits
    for der in certificates:
        full = _findings(factory, der, None)
        first = _findings(factory, der, cache)  # a known shape, or the first of its own
        again = _findings(factory, der, cache)  # a later draft of its shape
        assert first == full, der.hex()
        assert again == full, der.hex()
    assert cache.hits - hits >= len(certificates)


def test_incremental_equals_full_on_random_and_mutated_drafts():
    """A sample here (``bench/run.py lint-diff`` runs 10,000 and more); the seed is printed on
    failure and can be set with JITSUIN_LINT_DIFF_SEED."""
    seed = int(os.environ.get("JITSUIN_LINT_DIFF_SEED", random.randrange(2**32)))
    lab = lint_diff.Lab.create()
    generator = lint_diff.Generator(lab, seed)
    tally = lint_diff.run(lab, generator.drafts(int(os.environ.get("JITSUIN_LINT_DIFF_N", 120))))
    assert not tally.differences, f"seed {seed}: " + "\n".join(map(str, tally.differences[:3]))
    assert tally.drafts >= 100 and tally.blocked > 10 and lab.shapes.hits > 20, (seed, tally)


# -- the gate and its setting


def test_the_incremental_gate_keeps_shapes_and_passes_what_jitsuin_issues(factory, times):
    ca = factory.ca()
    gate = IssuanceLint(factory.expectations, issuers=[ca.cert], incremental=True)
    issuer = Issuer(ca.generation, factory.policy, FixedClock(times["ISSUED_AT"]), lint=gate)
    for n in range(3):
        key = factory.key(KeyType.ECDSA_P256, 60 + n)
        issuer.issue_tls_server(key.public_key(), [f"host{n}.example.com"])
    assert gate.shapes is not None
    assert (gate.shapes.misses, gate.shapes.hits) == (1, 2)


def test_lint_mode_is_configured(tmp_path):
    path = configuration.write_default(tmp_path, KeyType.ECDSA_P384, configuration.DEFAULT_SUBJECT)
    assert configuration.load(path, tmp_path).ca.lint == "incremental"
    text = path.read_text()
    path.write_text(text.replace("\n[ca]\n", '\n[ca]\nlint = "full"\n', 1))
    assert configuration.load(path, tmp_path).ca.lint == "full"
    path.write_text(text.replace("\n[ca]\n", '\n[ca]\nlint = "sometimes"\n', 1))
    with pytest.raises(configuration.ConfigError, match=r"ca\.lint: use 'incremental' or 'full'"):
        configuration.load(path, tmp_path)

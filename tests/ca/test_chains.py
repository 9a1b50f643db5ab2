"""Chains across CA generations (RFC 8555 §7.4.2 alternates; RFC 9810 §4.4 link certificates):
each chain runs from the leaf through the link certificates to one generation's root, every
certificate signed by the next one."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from jitsuin.ca.chains import chains
from jitsuin.ca.clock import FixedClock
from jitsuin.ca.csr import verify_csr
from jitsuin.ca.generations import CAGeneration, create_generation
from jitsuin.ca.issuance import CAPolicy, Issuer
from jitsuin.ca.keys import KeyType, SoftwareSigner, generate_private_key
from jitsuin.ca.rollover import roll_over
from jitsuin.ca.subject import VettedSubject

START = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)
NAME = x509.Name.from_rfc4514_string("CN=jitsuin Personal CA,O=jitsuin,C=JP")
POLICY = CAPolicy(policy_arc="1.3.6.1.4.1.32473.7", pki_base_url="http://pki.example.com")


@dataclass(frozen=True)
class Link:
    old: int
    old_with_new: x509.Certificate
    new_with_old: x509.Certificate


@dataclass(frozen=True)
class Three:
    generations: list[CAGeneration]
    links: list[Link]
    leaves: list[x509.Certificate]  # one issued by each generation


def _leaf(generation: CAGeneration, clock: FixedClock) -> x509.Certificate:
    key = generate_private_key(KeyType.ECDSA_P256)
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    der = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    subject = VettedSubject("s", "Yamada", "Taro", "taro@example.jp", "member", "AB-1")
    return Issuer(generation, POLICY, clock).issue(verify_csr(der), subject, "general").certificate


@pytest.fixture(scope="module")
def three() -> Three:
    clock = FixedClock(START)
    generations = [
        create_generation(1, SoftwareSigner(generate_private_key(KeyType.ECDSA_P256)), NAME, clock)
    ]
    links: list[Link] = []
    leaves = [_leaf(generations[0], clock)]
    for _ in range(2):
        clock.advance(dt.timedelta(days=30))
        old = generations[-1]
        rolled = roll_over(
            old, SoftwareSigner(generate_private_key(KeyType.ECDSA_P256)), clock, None
        )
        generations.append(rolled.new)
        links.append(Link(old.number, rolled.old_with_new, rolled.new_with_old))
        leaves.append(_leaf(rolled.new, clock))
    return Three(generations, links, leaves)


def _signed_in_order(chain: list[x509.Certificate]) -> bool:
    for child, parent in itertools.pairwise(chain):
        child.verify_directly_issued_by(parent)  # raises if not
    return chain[-1].subject == chain[-1].issuer


def test_the_default_chain_ends_at_the_issuing_generation(three: Three) -> None:
    g1, g2, g3 = three.generations
    found = chains(three.leaves[1], g2, three.generations, three.links)
    assert found[0] == [three.leaves[1], g2.certificate]
    # then the alternates, nearest generation first, older before newer at the same distance
    assert [chain[-1] for chain in found[1:]] == [g1.certificate, g3.certificate]
    assert found[1] == [three.leaves[1], three.links[0].new_with_old, g1.certificate]
    assert found[2] == [three.leaves[1], three.links[1].old_with_new, g3.certificate]
    assert all(_signed_in_order(chain) for chain in found)


def test_chains_cross_several_links(three: Three) -> None:
    g1, _, g3 = three.generations
    to_newest = chains(three.leaves[0], g1, three.generations, three.links)[-1]
    assert to_newest == [
        three.leaves[0],
        three.links[0].old_with_new,
        three.links[1].old_with_new,
        g3.certificate,
    ]
    to_oldest = chains(three.leaves[2], g3, three.generations, three.links)[-1]
    assert to_oldest[-1] == g1.certificate and len(to_oldest) == 4
    assert _signed_in_order(to_newest) and _signed_in_order(to_oldest)


def test_a_missing_link_cuts_the_generations_behind_it_off(three: Three) -> None:
    g1, g2, _ = three.generations
    found = chains(three.leaves[0], g1, three.generations, three.links[:1])
    assert [chain[-1] for chain in found] == [g1.certificate, g2.certificate]
    assert chains(three.leaves[0], g1, three.generations, []) == [[three.leaves[0], g1.certificate]]


def test_a_certificate_of_no_generation_is_alone(three: Three) -> None:
    assert chains(three.leaves[0], None, three.generations, three.links) == [[three.leaves[0]]]

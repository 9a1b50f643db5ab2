"""Certificate chains across CA generations (RFC 8555 §7.4.2 alternates; RFC 9810 §4.4 link
certificates): a pure function of the generations and the links between them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cryptography import x509

from jitsuin.ca.generations import CAGeneration


class GenerationLink(Protocol):
    """The link certificates between generation ``old`` and ``old + 1``."""

    @property
    def old(self) -> int: ...

    @property
    def old_with_new(self) -> x509.Certificate: ...  # the new key certifying the old one

    @property
    def new_with_old(self) -> x509.Certificate: ...  # the old key certifying the new one


def chains(
    certificate: x509.Certificate,
    issuing: CAGeneration | None,
    generations: Sequence[CAGeneration],
    links: Sequence[GenerationLink],
) -> list[list[x509.Certificate]]:
    """The default chain and the alternates: leaf + the issuing generation's CA certificate;
    then, for each other generation, nearest first, leaf + the link certificates leading to it
    (NewWithOld towards older roots, OldWithNew towards newer ones) + that root. A generation
    that a missing link cuts off has no chain; a certificate of no known generation is alone."""
    if issuing is None:
        return [[certificate]]
    by_number = {g.number: g for g in generations}
    by_old = {link.old: link for link in links}
    found = [[certificate, issuing.certificate]]
    for number in sorted(by_number, key=lambda n: (abs(n - issuing.number), n)):
        if number == issuing.number:
            continue
        path = [certificate]
        ok = True
        if number < issuing.number:
            for old in range(issuing.number - 1, number - 1, -1):
                if old not in by_old:
                    ok = False
                    break
                path.append(by_old[old].new_with_old)
        else:
            for old in range(issuing.number, number):
                if old not in by_old:
                    ok = False
                    break
                path.append(by_old[old].old_with_new)
        if ok:
            found.append([*path, by_number[number].certificate])
    return found

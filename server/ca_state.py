"""What the CA holds while the server runs: the store, the generations and their link
certificates, the current issuer with its lint, and the caches and locks of publication. The
parts of ``Authority`` (server/authority.py) each extend this state:

- server/ca_refresh.py: generations added by another process;
- server/ca_rollover.py: the rollover ceremony;
- server/revocation_status.py: revocation, CRLs, OCSP and its delegated responder;
- server/tls_files.py: the HTTPS listener's own certificate;
- server/authority.py: opening the CA, and every signature with its records.

The keys are made and loaded by server/ca_keys.py, the lint is wired by server/lint_pool.py."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cryptography import x509

from jitsuin.ca.clock import Clock
from jitsuin.ca.generations import CAGeneration
from jitsuin.ca.issuance import Issuer
from jitsuin.ca.revocation import DelegatedResponder
from jitsuin.conformance.gate import IssuanceLint
from jitsuin.server.config import Config
from jitsuin.server.lint_pool import LintProcesses
from jitsuin.server.refusals import Refusals
from jitsuin.server.storage import LinkRecord, Store


@dataclass(frozen=True, slots=True)
class Link:
    """The link certificates between generation ``old`` and ``old + 1`` (RFC 9810 §4.4)."""

    old: int
    new: int
    old_with_new: x509.Certificate
    new_with_old: x509.Certificate


def links_from(records: Iterable[LinkRecord]) -> list[Link]:
    """The stored link certificates, parsed."""
    return [
        Link(
            r.old_generation,
            r.new_generation,
            x509.load_der_x509_certificate(r.old_with_new),
            x509.load_der_x509_certificate(r.new_with_old),
        )
        for r in records
    ]


@dataclass
class AuthorityState:
    """What every part of ``Authority`` reads, and what they change under their own locks."""

    config: Config
    store: Store
    clock: Clock
    generations: list[CAGeneration]
    issuer: Issuer
    links: list[Link] = field(default_factory=list)
    # The pre-issuance gate's lint processes (``[ca] lint_processes``), None when it lints inline.
    lint_pool: LintProcesses | None = None
    # Called with the new generation after a rollover (the server adds it to its TLS trust).
    rollover_listeners: list[Callable[[CAGeneration], None]] = field(default_factory=list)
    # Refusals tied to no known application or operator: counted and logged, not audited.
    refusals: Refusals = field(default_factory=Refusals)
    # Signed OCSP answers by (generation, serial, status, CertID hash algorithm).
    _ocsp_cache: OrderedDict[tuple[int, int, str, str], tuple[dt.datetime, bytes]] = field(
        default_factory=OrderedDict
    )
    _status_cache: OrderedDict[
        tuple[int, int], tuple[dt.datetime, tuple[str, dt.datetime | None, str | None]]
    ] = field(default_factory=OrderedDict)
    # ``[ocsp] responder = "delegated"``: each generation's responder, by generation number.
    _responders: dict[int, DelegatedResponder] = field(default_factory=dict)
    _responder_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _crl_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _refresh_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def current(self) -> CAGeneration:
        return self.generations[-1]

    def generation(self, number: int) -> CAGeneration | None:
        return next((g for g in self.generations if g.number == number), None)

    def _lint(self) -> IssuanceLint:
        lint = self.issuer.lint
        assert isinstance(lint, IssuanceLint)
        return lint

    def published_certificates(self) -> list[x509.Certificate]:
        """Every generation's CA certificate and every link certificate."""
        out = [g.certificate for g in self.generations]
        for link in self.links:
            out += [link.old_with_new, link.new_with_old]
        return out

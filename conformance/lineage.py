"""CA generations and the link certificates between them, recognised in a corpus (RFC 9810 §4.4,
formerly RFC 4210 §4.4; docs/conformance.md C).

A *generation* is a CA key with its self-signed certificate (OldWithOld, NewWithNew). A *link
certificate* is a CA certificate whose subject key and signing key differ: OldWithNew carries the
old key signed by the new one, NewWithOld the new key signed by the old one. Keys joined by link
certificates form a *lineage*, ordered by when each generation's certificate starts.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from jitsuin.conformance.documents import CertificateDoc, Corpus


@dataclass(slots=True)
class Generation:
    key: str
    certificates: list[CertificateDoc] = field(default_factory=list)

    @property
    def self_signed(self) -> CertificateDoc | None:
        own = [c for c in self.certificates if c.self_signed]
        return min(own, key=lambda c: c.not_before) if own else None

    @property
    def start(self) -> dt.datetime:
        root = self.self_signed
        if root is not None:
            return root.not_before
        return min(c.not_before for c in self.certificates)

    @property
    def ski(self) -> bytes | None:
        root = self.self_signed
        return root.ski if root else next((c.ski for c in self.certificates if c.ski), None)


@dataclass(slots=True)
class Rollover:
    old: Generation
    new: Generation
    old_with_new: list[CertificateDoc] = field(default_factory=list)
    new_with_old: list[CertificateDoc] = field(default_factory=list)


@dataclass(slots=True)
class Lineage:
    generations: list[Generation]
    rollovers: list[Rollover]
    links: list[CertificateDoc]
    leaves: dict[str, list[CertificateDoc]]  # key -> end-entity certificates it signed

    def generation(self, key: str) -> Generation | None:
        return next((g for g in self.generations if g.key == key), None)

    def rollover_of(self, doc: CertificateDoc) -> tuple[Rollover, str] | None:
        """(rollover, role) where role is OwO, NwN, OwN or NwO, for a certificate of this
        lineage."""
        for r in self.rollovers:
            if doc in r.old_with_new:
                return r, "OwN"
            if doc in r.new_with_old:
                return r, "NwO"
        for r in self.rollovers:
            if doc is r.new.self_signed:
                return r, "NwN"
            if doc is r.old.self_signed:
                return r, "OwO"
        return None

    @property
    def certificates(self) -> list[CertificateDoc]:
        return [c for g in self.generations for c in g.certificates]


def _signer_key(doc: CertificateDoc) -> str | None:
    issuer = doc.issuer
    return issuer.key if issuer is not None else None


def analyse(corpus: Corpus) -> list[Lineage]:
    cas = corpus.ca_certificates
    by_key: dict[str, Generation] = {}
    for cert in cas:
        by_key.setdefault(cert.key, Generation(cert.key)).certificates.append(cert)
    parent: dict[str, str] = {k: k for k in by_key}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    links: list[tuple[CertificateDoc, str, str]] = []  # (certificate, subject key, signer key)
    for cert in cas:
        if cert.self_signed:
            continue
        signer = _signer_key(cert)
        if signer is None or signer == cert.key or signer not in by_key:
            continue
        links.append((cert, cert.key, signer))
        parent[find(cert.key)] = find(signer)

    groups: dict[str, list[Generation]] = {}
    for key, generation in by_key.items():
        groups.setdefault(find(key), []).append(generation)
    lineages = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda g: g.start)
        keys = {g.key for g in members}
        rollovers = [Rollover(old, new) for old, new in itertools.pairwise(members)]
        lineage_links = []
        for cert, subject_key, signer_key in links:
            if subject_key not in keys:
                continue
            lineage_links.append(cert)
            for r in rollovers:
                if subject_key == r.old.key and signer_key == r.new.key:
                    r.old_with_new.append(cert)
                elif subject_key == r.new.key and signer_key == r.old.key:
                    r.new_with_old.append(cert)
        leaves: dict[str, list[CertificateDoc]] = {k: [] for k in keys}
        for cert in corpus.certificates:
            if cert.is_ca:
                continue
            signer = _signer_key(cert)
            if signer in leaves:
                leaves[signer].append(cert)
        lineages.append(Lineage(members, rollovers, lineage_links, leaves))
    return lineages


def lineage_of(doc: CertificateDoc) -> Lineage | None:
    for lineage in doc.corpus.lineages:
        if doc in lineage.certificates:
            return lineage
    return None

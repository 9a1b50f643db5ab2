"""Live-server conformance, sans-IO: what a probe sent and what the server answered (an
``Exchange``), and the server as a document the EST and ACME rules judge (``ServerDoc``).

The HTTP driver lives in ``jitsuin.server.conformance_live`` (only the server layer talks HTTP);
it fills a ``ServerDoc`` with named exchanges and facts, and this registry judges them, so every
protocol rule has the same metadata, findings and reports as the certificate rules, and can be
tested with made-up exchanges.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from jitsuin.conformance.documents import LintContext
from jitsuin.conformance.registry import DocKind


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer (or the transport error instead)."""

    name: str  # the probe, e.g. "cacerts", "enroll-no-auth", "bad-nonce"
    method: str
    url: str
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    request_headers: tuple[tuple[str, str], ...] = ()
    request_body: bytes | None = None
    tls_version: str | None = None
    error: str | None = None

    def header(self, name: str) -> str | None:
        found = self.headers_all(name)
        return found[0] if found else None

    def headers_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower case ('' when absent)."""
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()

    @property
    def media_parameters(self) -> dict[str, str]:
        message = Message()
        message["Content-Type"] = self.header("Content-Type") or "application/octet-stream"
        return {k.lower(): v for k, v in message.get_params()[1:]}

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def links(self, relation: str) -> list[str]:
        """Targets of ``Link: <url>;rel="relation"`` headers (RFC 8288)."""
        out = []
        for value in self.headers_all("Link"):
            for part in value.split(","):
                target, _, params = part.partition(";")
                rels = [
                    p.split("=", 1)[1].strip().strip('"')
                    for p in params.split(";")
                    if p.strip().lower().startswith("rel=")
                ]
                if relation in " ".join(rels).split():
                    out.append(target.strip().strip("<>"))
        return out

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace").strip()

    def summary(self) -> str:
        if self.error:
            return f"{self.method} {self.url}: {self.error}"
        return f"{self.method} {self.url} -> {self.status} {self.media_type or '(no type)'}"


@dataclass
class ServerDoc:
    """A live server, judged by the EST (E-xx) or ACME (A-xx) rules."""

    kind: DocKind
    label: str  # the base URL
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    context: LintContext = field(default_factory=LintContext)
    context_only: bool = False

    @property
    def ctx(self) -> LintContext:
        return self.context

    @property
    def effective_time(self) -> dt.datetime | None:
        return None

    @property
    def description(self) -> str:
        protocol = "EST server" if self.kind is DocKind.EST_SERVER else "ACME server"
        return f"{protocol} ({len(self.exchanges)} exchanges)"

    def add(self, exchange: Exchange) -> Exchange:
        self.exchanges[exchange.name] = exchange
        return exchange

    def get(self, name: str) -> Exchange | None:
        exchange = self.exchanges.get(name)
        return exchange if exchange is not None and exchange.error is None else None

    def has(self, *names: str) -> bool:
        return any(self.get(n) is not None for n in names)

    def answered(self, names: Iterable[str] | None = None) -> list[Exchange]:
        chosen = (
            self.exchanges.values() if names is None else [self.exchanges.get(n) for n in names]
        )
        return [e for e in chosen if e is not None and e.error is None]


def est_server(
    base_url: str,
    exchanges: Iterable[Exchange] = (),
    facts: Mapping[str, Any] | None = None,
    context: LintContext | None = None,
) -> ServerDoc:
    doc = ServerDoc(DocKind.EST_SERVER, base_url, context=context or LintContext())
    for e in exchanges:
        doc.add(e)
    doc.facts.update(facts or {})
    return doc


def acme_server(
    directory_url: str,
    exchanges: Iterable[Exchange] = (),
    facts: Mapping[str, Any] | None = None,
    context: LintContext | None = None,
) -> ServerDoc:
    doc = ServerDoc(DocKind.ACME_SERVER, directory_url, context=context or LintContext())
    for e in exchanges:
        doc.add(e)
    doc.facts.update(facts or {})
    return doc

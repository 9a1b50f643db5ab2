"""Challenge types (RFC 8555 §8; RFC 8737 tls-alpn-01; RFC 8738 for IP identifiers) as a
registry keyed by the wire name (docs/architecture.md, house habit 5): which identifiers each
applies to, and what the validation server expects to find."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509

from jitsuin.protocol.acme.messages import Identifier
from jitsuin.protocol.jose import b64u_encode

# RFC 8737 §3: the acmeIdentifier extension and the ALPN protocol name.
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
ACME_TLS_ALPN = "acme-tls/1"
HTTP01_PATH = "/.well-known/acme-challenge/"
DNS01_PREFIX = "_acme-challenge."


@dataclass(frozen=True, slots=True)
class ChallengeType:
    name: str
    identifier_types: frozenset[str]
    wildcard: bool  # may validate a wildcard's base domain

    def applies_to(self, identifier: Identifier, wildcard: bool) -> bool:
        return identifier.type in self.identifier_types and (self.wildcard or not wildcard)


CHALLENGE_TYPES: Mapping[str, ChallengeType] = {
    c.name: c
    for c in (
        # §8.3; RFC 8738 §7 allows http-01 for ip identifiers.
        ChallengeType("http-01", frozenset({"dns", "ip"}), wildcard=False),
        # §8.4: dns-01 is the only way to a wildcard; RFC 8738 §7: never for ip identifiers.
        ChallengeType("dns-01", frozenset({"dns"}), wildcard=True),
        # RFC 8737 §3; RFC 8738 §6 for ip identifiers (reverse-DNS SNI).
        ChallengeType("tls-alpn-01", frozenset({"dns", "ip"}), wildcard=False),
    )
}


def offered(identifier: Identifier, wildcard: bool) -> list[str]:
    """The challenge types an authorization for ``identifier`` offers (§7.1.4)."""
    return [c.name for c in CHALLENGE_TYPES.values() if c.applies_to(identifier, wildcard)]


def new_token() -> str:
    """§8.1: at least 128 bits of entropy, base64url; these carry 256."""
    return b64u_encode(secrets.token_bytes(32))


def key_authorization(token: str, thumbprint: str) -> str:
    """§8.1: token || '.' || base64url(JWK thumbprint)."""
    return f"{token}.{thumbprint}"


def dns01_txt(key_auth: str) -> str:
    """§8.4: the TXT record holds base64url(SHA-256(key authorization))."""
    return b64u_encode(hashlib.sha256(key_auth.encode("ascii")).digest())


def tls_alpn01_digest(key_auth: str) -> bytes:
    """RFC 8737 §3: the acmeIdentifier extension holds SHA-256(key authorization)."""
    return hashlib.sha256(key_auth.encode("ascii")).digest()


def reverse_dns_name(ip: str) -> str:
    """RFC 8738 §6: the SNI of a tls-alpn-01 validation for an ip identifier."""
    return ipaddress.ip_address(ip).reverse_pointer

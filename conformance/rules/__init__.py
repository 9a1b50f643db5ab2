"""The rules, one module per part of docs/conformance.md (A rfc5280, B smime, C ca, D revocation)
and per protocol (est, acme); importing this package registers them all."""

from jitsuin.conformance.rules import acme, ca, est, revocation, rfc5280, smime

__all__ = ["acme", "ca", "est", "revocation", "rfc5280", "smime"]

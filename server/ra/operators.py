"""Operators: adding one, authenticating by API token or bound TLS client certificate, and
cutting one off (disable, enable, a new token). Setting another operator's credential takes
permission operators.manage; everyone may set their own, which makes it theirs (two-person
rule, server/ra/approval.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.client_auth import client_auth_refusal
from jitsuin.ca.generations import issuing_generation
from jitsuin.server.ra import credentials
from jitsuin.server.ra.base import RABase, credential_known_to, store_errors
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.permissions import ROLES, Permission
from jitsuin.server.storage import Conflict, NotFound, Operator


class Operators(RABase):
    def _may_manage(self, actor: Operator | str, name: str | None = None) -> None:
        """An operator acting through the API needs permission operators.manage, unless it acts
        on itself (``name``); the host CLI (``cli:<user>``) is trusted like root."""
        if isinstance(actor, Operator) and actor.name != name:
            self.allow(actor, Permission.OPERATORS)

    async def authenticate(self, token: str) -> Operator:
        operator = await self.store.operator_by_token(self.keyring.digest("operator", token))
        if operator is None:
            self.refused("unknown_operator_token", "no operator has this token")
            raise RAError(RAKind.UNAUTHORIZED, "unknown or disabled operator token", recorded=True)
        if operator.disabled_at is not None:
            raise RAError(RAKind.UNAUTHORIZED, "unknown or disabled operator token")
        return dataclasses.replace(operator, credential="token")

    async def add_operator(self, actor: Operator | str, name: str, role: str) -> str:
        """Create an operator; returns the API token, which is shown once and kept only hashed.
        The host CLI (``actor`` is ``cli:<user>``) or an operator with permission
        operators.manage (an admin in the console) creates one. Whoever did may know the token
        until the operator replaces it (``rotate_operator_token``): it is recorded with the
        token, and the two-person rule counts them (``credential_known_to``)."""
        self._may_manage(actor)
        if role not in ROLES:
            raise RAError(RAKind.INVALID, f"role must be one of {', '.join(ROLES)}")
        if not re.fullmatch(r"[a-z][a-z0-9._-]{0,63}", name):
            raise RAError(RAKind.INVALID, "operator names are lower-case letters, digits, . _ -")
        token = credentials.new_operator_token()
        set_by = credential_known_to(actor, name)
        event = self._event(
            actor, "operator.add", f"operator/{name}", {"role": role, "setBy": list(set_by)}
        )
        try:
            await self.store.add_operator(
                Operator(name=name, role=role, created_at=event.at, token_set_by=set_by),
                self.keyring.digest("operator", token),
                event,
            )
        except Conflict as exc:
            raise RAError(RAKind.CONFLICT, str(exc)) from None
        return token

    # -- operators' TLS client certificates (optional to the API token) ---------------------------
    async def authenticate_certificate(self, certificate_der: bytes) -> Operator:
        """The operator bound to the TLS client certificate the peer presented. The handshake
        already checked the chain to a generation of this CA (server/__main__.py, RFC 8446
        §4.4.2.4); here: the binding, the certificate's status in the store, read on every
        request so that a revocation takes effect at once, its validity period at this CA's
        clock (RFC 5280 §4.1.2.5), and the operator not disabled."""
        sha256 = hashlib.sha256(certificate_der).hexdigest()
        operator = await self.store.operator_by_certificate(sha256)
        if operator is None or operator.disabled_at is not None:
            raise RAError(
                RAKind.UNAUTHORIZED, "the client certificate is not bound to an enabled operator"
            )
        assert operator.certificate_generation is not None
        assert operator.certificate_serial is not None
        try:
            record = await self.store.certificate(
                operator.certificate_generation, operator.certificate_serial
            )
        except NotFound:
            record = None
        if record is None or record.status != "valid":
            raise RAError(RAKind.UNAUTHORIZED, "the client certificate has been revoked")
        if not record.not_before <= self.clock.now() <= record.not_after:
            raise RAError(RAKind.UNAUTHORIZED, "the client certificate is not valid now")
        return dataclasses.replace(operator, credential="certificate")

    async def bind_certificate(
        self, actor: Operator | str, name: str, data: bytes, presented: bytes | None = None
    ) -> dict[str, Any]:
        """Bind operator ``name`` to one certificate (PEM or DER) issued by this CA, replacing
        any earlier binding. Refused unless a generation of this CA signed it, the store holds
        this very certificate as valid (not revoked), it is within its validity period and its
        extended key usage has clientAuth (RFC 5280 §4.2.1.12)."""
        self._may_manage(actor, name)
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                cert = x509.load_pem_x509_certificates(data)[0]  # the first is the leaf
            else:
                cert = x509.load_der_x509_certificate(data)
        except ValueError:
            raise RAError(RAKind.INVALID, "not an X.509 certificate (PEM or DER)") from None
        der = cert.public_bytes(serialization.Encoding.DER)
        generation = issuing_generation(cert, self.authority.generations)
        if generation is None:
            raise RAError(
                RAKind.INVALID,
                "the certificate was not issued by this CA (no CA generation signed it)",
            )
        try:
            record = await self.store.certificate(generation.number, cert.serial_number)
        except NotFound:
            record = None
        if record is None or record.der != der:
            raise RAError(RAKind.INVALID, "the certificate is not one this CA has issued")
        if record.status != "valid":
            raise RAError(RAKind.INVALID, "the certificate has been revoked")
        now = self.clock.now()
        refusal = client_auth_refusal(cert, now)
        if refusal is not None:
            raise RAError(RAKind.INVALID, refusal)
        if isinstance(actor, Operator) and actor.name == name and presented != der:
            # Binding one's own certificate makes it one's own credential (two-person rule): the
            # operator proves that they hold its key by presenting it in this TLS handshake, so
            # that nobody can talk them into binding a certificate whose key someone else holds.
            raise RAError(
                RAKind.INVALID,
                "to bind your own certificate, present it as the TLS client certificate of this "
                "request (proof that you hold its key)",
            )
        binding = {
            "operator": name,
            "sha256": hashlib.sha256(der).hexdigest(),
            "generation": generation.number,
            "serial": format(cert.serial_number, "x"),
            "subject": cert.subject.rfc4514_string(),
            "notAfter": record.not_after.isoformat(),
        }
        bound_by = credential_known_to(actor, name)
        audit = {k: binding[k] for k in ("sha256", "generation", "serial")}
        with store_errors():
            await self.store.bind_operator_certificate(
                name,
                binding["sha256"],
                generation.number,
                cert.serial_number,
                self._event(
                    actor,
                    "operator.bind_certificate",
                    f"operator/{name}",
                    {**audit, "boundBy": list(bound_by)},
                ),
                bound_by=bound_by,
            )
        return {**binding, "boundBy": list(bound_by)}

    async def unbind_certificate(self, actor: Operator | str, name: str) -> None:
        """The operator's certificate no longer authenticates it (the API token still does)."""
        self._may_manage(actor)
        with store_errors():
            await self.store.unbind_operator_certificate(
                name, self._event(actor, "operator.unbind_certificate", f"operator/{name}")
            )

    # -- cutting an operator off: disable, enable, a new token -------------------------------------
    async def disable_operator(self, actor: Operator | str, name: str) -> dt.datetime:
        """From now on neither the operator's token nor its bound certificate authenticates it
        (both are checked against the store on every request); returns when. An admin cannot
        disable themself, so that the last enabled admin is not locked out by mistake (the CLI's
        actor is ``cli:<user>``, never an operator's name)."""
        self._may_manage(actor)
        if actor == name or (isinstance(actor, Operator) and actor.name == name):
            raise RAError(
                RAKind.FORBIDDEN,
                f"operator {name} may not disable themself: another admin (or the CLI, "
                "jitsuin ra operator-disable) must, so that the last admin is not locked out",
            )
        now = self.clock.now()
        with store_errors():
            await self.store.disable_operator(
                name, now, self._event(actor, "operator.disable", f"operator/{name}")
            )
        return now

    async def enable_operator(self, actor: Operator | str, name: str) -> None:
        """The operator's token and bound certificate authenticate it again."""
        self._may_manage(actor)
        with store_errors():
            await self.store.enable_operator(
                name, self._event(actor, "operator.enable", f"operator/{name}")
            )

    async def rotate_operator_token(self, actor: Operator | str, name: str) -> str:
        """A new API token for the operator; the old one stops working at once. Returns the new
        token, which is shown once and kept only as its keyed hash (like ``add_operator``). A
        disabled operator stays disabled: rotating does not enable it. Who else may know the
        new token is recorded with it (``credential_known_to``): an operator who rotates their
        own token takes it over from the host CLI that created it."""
        self._may_manage(actor, name)
        token = credentials.new_operator_token()
        set_by = credential_known_to(actor, name)
        with store_errors():
            await self.store.rotate_operator_token(
                name,
                self.keyring.digest("operator", token),
                self._event(
                    actor, "operator.rotate_token", f"operator/{name}", {"setBy": list(set_by)}
                ),
                set_by=set_by,
            )
        return token

"""External Account Binding (RFC 8555 §7.3.4): checking a binding when an account is created, and
the EAB keys operators make for the tls-server profile, each with a policy (allowed DNS suffixes
and IP networks, certificate lifetime, how many certificates, expiry). The MAC key of an operator's
key is shown once and kept only sealed. A personal binding is an RA application's: kid = its
enrollment ID, MAC key = the one e-mailed with the download PIN (docs/flow.md)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from typing import Any

from jitsuin.ca.clock import Clock
from jitsuin.ca.profiles import PROFILES
from jitsuin.protocol.acme import messages
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.protocol.jose import b64u_decode, b64u_encode, verify_eab
from jitsuin.server.acme.common import PERSONAL, TLS_SERVER, new_id, unauthorized
from jitsuin.server.acme.paths import Urls
from jitsuin.server.config import AcmeConfig
from jitsuin.server.http_json import Body
from jitsuin.server.operator_auth import credential_details
from jitsuin.server.ra import credentials
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.ra.service import RAService
from jitsuin.server.storage import (
    AcmeEABKeyRecord,
    AuditEvent,
    Credential,
    NotFound,
    Operator,
    Outcome,
    Store,
)

_EAB_PURPOSE = "acme-eab-key"
_EAB_MAX_DAYS = 3650  # an operator's EAB key expires within ten years (expiresInDays)


class ExternalAccounts:
    def __init__(
        self, store: Store, clock: Clock, config: AcmeConfig, urls: Urls, ra: RAService
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.urls = urls
        self.ra = ra

    # -- a binding, when an account is created -----------------------------------------------------
    async def check_binding(
        self, kid: str, eab: Any, now: dt.datetime, source: str
    ) -> tuple[str, str | None, str]:
        """(kind, application id, stored kid) of a binding whose MAC verifies (§7.3.4)."""
        try:
            key = await self.store.acme_eab_key(kid)
        except NotFound:
            key = None
        if key is not None:
            if key.disabled_at is not None or key.used_at is not None:
                raise unauthorized("this external account binding key is used or disabled")
            if key.expires_at is not None and now > key.expires_at:
                raise unauthorized("this external account binding key has expired")
            mac = self.ra.keyring.open(_EAB_PURPOSE, key.key_sealed)
            if not verify_eab(eab, mac):
                raise unauthorized("the external account binding MAC does not verify")
            return TLS_SERVER, None, key.kid
        # A personal binding: kid = enrollment ID, MAC key from the PIN e-mail (docs/flow.md).
        enrollment_id = credentials.grouped(credentials.normalise(kid))
        try:
            app = await self.store.application_by_enrollment_id(enrollment_id)
        except NotFound:
            self.ra.refused("unknown_eab_kid", "no EAB key or application has this kid")
            raise unauthorized("unknown external account binding key id") from None
        if self.ra.eab_key(app) is None:
            raise unauthorized(
                f"the application is {app.state}: its external account binding key is not "
                "usable (it is made at approval and spent with the certificate)"
            )
        if app.pin_expires_at is not None and now > app.pin_expires_at:
            raise unauthorized("the PIN and its external account binding key have expired")
        # The MAC key shares the PIN's attempt count, counted before it is compared (see
        # RAService.try_credential): the PIN and the EAB key together get max_attempts wrong tries.
        attempt = await self.ra.try_credential(
            app,
            Credential.EAB_KEY,
            source,
            lambda sealed: sealed is not None and verify_eab(eab, self._mac_key(sealed)),
            f"applicant:{enrollment_id}:acme",
            "redeem.wrong_eab",
        )
        if attempt.outcome in (Outcome.LOCKED, Outcome.THROTTLED):
            # Not compared: counted and logged, not audited (server/refusals.py).
            what = f"a try of the EAB key of {app.id} was not compared"
            self.ra.refused(f"credential_{attempt.outcome.value}", what)
        if attempt.outcome is Outcome.LOCKED:
            raise unauthorized("too many wrong tries: ask the CA to send a new PIN")
        if attempt.outcome is Outcome.THROTTLED:
            # RFC 8555 §6.6: rateLimited with Retry-After.
            raise AcmeError(
                ErrorType.RATE_LIMITED,
                "a wrong external account binding was tried from this address just now: wait "
                "before trying again",
                headers=[
                    ("Retry-After", str(self.ra.retry_after(attempt))),
                    ("Link", f'<{self.urls.help()}>;rel="help"'),
                ],
            )
        if attempt.outcome is Outcome.WRONG:
            raise unauthorized("the external account binding MAC does not verify")
        return PERSONAL, app.id, enrollment_id

    def _mac_key(self, sealed: bytes) -> bytes:
        return b64u_decode(self.ra.open_eab_key(sealed).decode(), "EAB key")

    # -- operators' keys for tls-server ------------------------------------------------------------
    async def create_key(self, operator: Operator, data: Any) -> tuple[AcmeEABKeyRecord, str]:
        """An operator's EAB key for the tls-server profile, with its policy; returns the
        record and the base64url MAC key, which is shown once and kept only sealed."""
        self.ra.allow(operator, Permission.ACME_EAB)
        body = Body(data)
        body.seen.add("allowed")
        allowed = data.get("allowed") if isinstance(data, dict) else None
        if not isinstance(allowed, list) or not allowed:
            body.errors.append("allowed must be a non-empty list of DNS suffixes or IP networks")
            allowed = []
        for entry in allowed:
            if not isinstance(entry, str) or _policy_entry_problem(entry):
                body.errors.append(
                    f"allowed: {entry!r} is not a lower-case DNS suffix or an IP network"
                )
        lifetime = self.config.tls_server_lifetime_days
        if "certificateLifetimeDays" in body.data:
            lifetime = body.integer("certificateLifetimeDays")
            if not 1 <= lifetime <= PROFILES[TLS_SERVER].validity.days:
                body.errors.append(
                    "certificateLifetimeDays must be 1.."
                    f"{PROFILES[TLS_SERVER].validity.days} (the tls-server profile)"
                )
        limit = body.integer("maxCertificates") if "maxCertificates" in body.data else None
        expires_days = (
            body.integer("expiresInDays", _EAB_MAX_DAYS) if "expiresInDays" in body.data else None
        )
        note = body.text("note", required=False, limit=256) or None
        body.done()
        now = self.clock.now()
        mac = secrets.token_bytes(32)
        record = AcmeEABKeyRecord(
            kid="kid-" + new_id(),
            key_sealed=self.ra.keyring.seal(_EAB_PURPOSE, mac),
            allowed=tuple(allowed),
            lifetime_days=lifetime,
            max_certificates=limit,
            expires_at=now + dt.timedelta(days=expires_days) if expires_days else None,
            note=note,
            created_by=operator.name,
            created_at=now,
        )
        await self.store.acme_add_eab_key(
            record,
            AuditEvent(
                now,
                operator.name,
                "acme.eab_key.create",
                f"acme/eab/{record.kid}",
                {
                    "allowed": list(record.allowed),
                    "lifetimeDays": lifetime,
                    "maxCertificates": limit,
                    **credential_details(operator),
                },
            ),
        )
        return record, b64u_encode(mac)

    async def keys(self, operator: Operator) -> list[AcmeEABKeyRecord]:
        self.ra.allow(operator, Permission.READ)
        return await self.store.acme_eab_keys()

    async def key(self, operator: Operator, kid: str) -> AcmeEABKeyRecord:
        self.ra.allow(operator, Permission.READ)
        try:
            return await self.store.acme_eab_key(kid)
        except NotFound:
            raise RAError(RAKind.NOT_FOUND, "there is no such EAB key") from None

    async def disable_key(self, operator: Operator, kid: str) -> AcmeEABKeyRecord:
        self.ra.allow(operator, Permission.ACME_EAB)
        now = self.clock.now()
        try:
            await self.store.acme_disable_eab_key(
                kid,
                now,
                AuditEvent(
                    now,
                    operator.name,
                    "acme.eab_key.disable",
                    f"acme/eab/{kid}",
                    credential_details(operator),
                ),
            )
        except NotFound:
            raise RAError(RAKind.NOT_FOUND, f"there is no EAB key {kid}") from None
        return await self.store.acme_eab_key(kid)


def _policy_entry_problem(entry: str) -> str | None:
    try:
        ipaddress.ip_network(entry, strict=False)
        return None
    except ValueError:
        pass
    return messages.dns_problem(entry)


def eab_key_json(record: AcmeEABKeyRecord) -> dict[str, Any]:
    def when(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "kid": record.kid,
        "allowed": list(record.allowed),
        "certificateLifetimeDays": record.lifetime_days,
        "maxCertificates": record.max_certificates,
        "expiresAt": when(record.expires_at),
        "note": record.note,
        "createdBy": record.created_by,
        "createdAt": when(record.created_at),
        "usedAt": when(record.used_at),
        "account": record.account_id,
        "disabledAt": when(record.disabled_at),
    }

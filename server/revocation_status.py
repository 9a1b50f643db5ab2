"""Revocation and its publication (RFC 5280 §5, RFC 6960): revoking, each generation's CRL, OCSP
answers with their caches, and the delegated OCSP responder (RFC 6960 §4.2.2.2). Every CRL and
OCSP response is linted before it leaves (docs/conformance.md, part D). A part of ``Authority``
(server/ca_state.py lists the others): it looks for generations another process added
(``refresh``) and records the responder certificates it makes as every signature is recorded
(``_reserver``, ``_record``, server/authority.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import CAGeneration, issuing_generation
from jitsuin.ca.keys import Signer, SoftwareSigner, generate_private_key
from jitsuin.ca.revocation import (
    CRL_REFRESH_AFTER,
    CRL_VALIDITY,
    OCSP_REFRESH_AFTER,
    BadOCSPRequest,
    DelegatedResponder,
    Reason,
    Revoked,
    build_crl,
    build_response,
    find_issuer,
    parse_request,
    unsuccessful,
)
from jitsuin.server import metrics
from jitsuin.server.ca_state import AuthorityState
from jitsuin.server.lint_pool import issuer_for
from jitsuin.server.pkcs11_signer import Pkcs11Signer, private_key_labels
from jitsuin.server.secret_files import write_secret
from jitsuin.server.storage import AuditEvent, CRLRecord, NotFound

OCSP_CACHE_SIZE = 100_000
# What follows ``ocsp-G-`` in the label of a responder key in the token (_token_responder).
_RESPONDER_LABEL = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")


class RevocationStatus(AuthorityState):
    async def revoke(
        self, generation: int, serial: int, reason: str, actor: str, target: str | None = None
    ) -> None:
        """Revoke, then publish at once: a fresh CRL, and no cached OCSP answer survives.
        ``unspecified`` (ACME revokeCert without a reason, RFC 8555 §7.6) is published without
        a reasonCode, as RFC 5280 §5.3.1 recommends for it."""
        known = Reason.named(reason)
        if known is None or not known.recorded:
            raise CAError(Kind.BAD_CONFIG, f"unknown revocation reason {reason!r}")
        now = self.clock.now()
        await self.store.revoke_certificate(
            generation,
            serial,
            reason,
            now,
            AuditEvent(
                now,
                actor,
                "certificate.revoke",
                target or f"generation/{generation}/serial/{serial:x}",
                {"serial": format(serial, "x"), "generation": generation, "reason": reason},
            ),
        )
        self._status_cache.pop((generation, serial), None)
        for key in [k for k in self._ocsp_cache if k[:2] == (generation, serial)]:
            del self._ocsp_cache[key]
        await self.crl(generation, force=True)

    async def crl(self, number: int, *, force: bool = False) -> bytes:
        """The generation's current CRL, reissued when it is half through its validity or after
        a revocation (SBR 4.9.7: valid <= 10 days, reissued <= 7 days)."""
        generation = self.generation(number)
        if generation is None and await self.refresh():  # rolled over by another process?
            generation = self.generation(number)
        if generation is None:
            raise CAError(Kind.BAD_CONFIG, f"there is no CA generation {number}")
        async with self._crl_lock:
            now = self.clock.now()
            latest = await self.store.latest_crl(number)
            if latest and not force and now < latest.this_update + CRL_REFRESH_AFTER:
                return latest.der
            # The number and the list are drawn in one transaction, so that a later number
            # never lists less than an earlier one (RFC 5280 §5.2.3) across processes and hosts.
            crl_number, rows = await self.store.next_crl(number)
            revoked = [Revoked(*row) for row in rows]
            der = await asyncio.to_thread(build_crl, generation, revoked, crl_number, now)
            # Lint the CRL before publishing, against the last one (docs/conformance.md, part D).
            await asyncio.to_thread(
                self._lint().check_crl,
                der,
                issuers=self.published_certificates(),
                previous=[latest.der] if latest else [],
            )
            await self.store.add_crl(CRLRecord(crl_number, number, now, now + CRL_VALIDITY, der))
            return der

    async def ocsp(self, request_der: bytes) -> bytes:
        """An OCSP response for one CertID (RFC 6960). Signed answers are cached per status and
        reused until they are half-aged; the status itself is read from the store every time, so
        a revocation by any process shows at once."""
        try:
            cert_id = parse_request(request_der)
        except BadOCSPRequest:
            return unsuccessful("malformed_request")
        generation = find_issuer(self.generations, cert_id)
        if generation is None and await self.refresh():  # rolled over by another process?
            generation = find_issuer(self.generations, cert_id)
        if generation is None:
            return unsuccessful("unauthorized")  # not a CA this responder serves
        now = self.clock.now()
        responder = await self.responder(generation)
        status, revoked_at, reason = await self._status(generation.number, cert_id.serial, now)
        # RFC 6960 §4.2.1: an answer's CertID is the request's, hash algorithm included (NSS
        # asks with SHA-1, others with SHA-256), so an answer is kept per CertID hash as well.
        key = (generation.number, cert_id.serial, status, cert_id.algorithm.name)
        cached = self._ocsp_cache.get(key) if cert_id.nonce is None else None
        if cached and now < cached[0] + OCSP_REFRESH_AFTER and cached[1]:
            self._ocsp_cache.move_to_end(key)
            metrics.OCSP_RESPONSES.labels("hit").inc()
            return cached[1]
        metrics.OCSP_RESPONSES.labels("miss").inc()
        der = await asyncio.to_thread(
            build_response,
            generation,
            cert_id,
            status,
            now,
            revoked_at,
            reason,
            responder,
        )
        # Lint the response before sending (docs/conformance.md, part D: R-06...R-09).
        await asyncio.to_thread(
            self._lint().check_ocsp_response,
            der,
            issuers=self.published_certificates(),
            issued=lambda ski, serial: status != "unknown",
        )
        # Only answers about certificates this CA issued are kept: the serials of "unknown"
        # answers are the client's choice, and keeping them would let anyone fill the cache
        # (memory, and eviction of the answers relying parties need) with made-up serials.
        if cert_id.nonce is None and status != "unknown":
            self._ocsp_cache[key] = (now, der)
            while len(self._ocsp_cache) > OCSP_CACHE_SIZE:
                self._ocsp_cache.popitem(last=False)
        return der

    # -- the delegated OCSP responder (RFC 6960 §4.2.2.2) -----------------------------------------
    async def responder(self, generation: CAGeneration) -> DelegatedResponder | None:
        """The generation's delegated OCSP responder, or None when the CA key signs OCSP itself
        (``[ocsp] responder = "ca"``). Its certificate is renewed with the generation's CA key
        once it is due (``DelegatedResponder.due``, by this authority's clock), and the cached
        answers it signed are dropped then, so no response carries a certificate about to end."""
        if self.config.ocsp.responder != "delegated":
            return None
        now = self.clock.now()
        current = self._responders.get(generation.number)
        if current is not None and not current.due(now):
            return current
        async with self._responder_lock:
            current = self._responders.get(generation.number)
            if current is not None and not current.due(now):
                return current  # renewed while this request waited for the lock
            signer: Signer
            if self.config.ca.key_store == "pkcs11":
                signer, certificate = await asyncio.to_thread(
                    self._token_responder, generation, now
                )
            else:
                signer = await asyncio.to_thread(self._responder_key, generation)
                certificate = self._stored_responder(generation, signer, now)
            if certificate is None:
                certificate = await self._certify_responder(generation, signer)
            renewed = DelegatedResponder(certificate, signer)
            self._responders[generation.number] = renewed
            # The cached answers carry the old certificate: none of them is sent again.
            for key in [k for k in self._ocsp_cache if k[0] == generation.number]:
                del self._ocsp_cache[key]
            return renewed

    def _responder_key(self, generation: CAGeneration) -> Signer:
        """The generation's responder key with key_store = "file", made on first use with the CA
        key's type, in ``keys/ocsp-N.key.pem`` (PKCS#8, mode 0600, unencrypted: it signs
        unattended, and its certificate is short-lived)."""
        label = f"ocsp-{generation.number}"
        path = self.config.keys_dir / f"{label}.key.pem"
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), None)
        except FileNotFoundError:
            fresh = generate_private_key(generation.signer.key_type)
            pem = fresh.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            with contextlib.suppress(FileExistsError):  # another process made it: use theirs
                write_secret(path, pem, exclusive=True)
            key = serialization.load_pem_private_key(path.read_bytes(), None)
        except ValueError as exc:
            raise CAError(Kind.BAD_KEY_FILE, f"{path} is not a PEM private key: {exc}") from exc
        return SoftwareSigner(key)  # type: ignore[arg-type]

    def _token_responder(
        self, generation: CAGeneration, now: dt.datetime
    ) -> tuple[Signer, x509.Certificate | None]:
        """With key_store = "pkcs11", the responder key is made in the token (sensitive, never
        extractable; server/pkcs11_signer.py) through the process's one login, never the CA key
        itself. The key of the stored certificate while it is not due, with that certificate;
        otherwise a new key, whose certificate the caller issues: each renewal is a new key.
        Labels are ``ocsp-G-<time>-<random>``: the newest sorts first, and the workers of one
        server or hosts sharing a token that renew at the same moment never make two keys of
        one label (which no later lookup by label could tell apart)."""
        token = self.config.token()
        prefix = f"ocsp-{generation.number}-"
        labels = sorted(
            (
                label
                for label in private_key_labels(token, prefix)
                if _RESPONDER_LABEL.fullmatch(label.removeprefix(prefix))
            ),
            reverse=True,
        )
        for label in labels:  # the newest first: normally the stored certificate's key
            signer = Pkcs11Signer(token, label)
            certificate = self._stored_responder(generation, signer, now)
            if certificate is not None:
                return signer, certificate
        label = f"{prefix}{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        return Pkcs11Signer.generate(token, label, generation.signer.key_type), None

    def _responder_path(self, generation: CAGeneration) -> Path:
        return self.config.home / "ocsp" / f"responder-{generation.number}.pem"

    def _stored_responder(
        self, generation: CAGeneration, signer: Signer, now: dt.datetime
    ) -> x509.Certificate | None:
        """The certificate this or another server process last made for the responder, if it is
        still for this key, from this generation, and not due."""
        try:
            certificate = x509.load_pem_x509_certificate(
                self._responder_path(generation).read_bytes()
            )
        except (FileNotFoundError, ValueError):
            return None
        if (
            certificate.public_key() != signer.public_key()
            or issuing_generation(certificate, [generation]) is None
            or DelegatedResponder(certificate, signer).due(now)
            or now < certificate.not_valid_before_utc
        ):
            return None
        return certificate

    async def _certify_responder(
        self, generation: CAGeneration, signer: Signer
    ) -> x509.Certificate:
        """A new responder certificate from the generation's CA key, accounted for as every
        signature of it is: a signing intent before the signature, the pre-issuance lint of its
        profile, and the certificate recorded with its audit entry."""
        issuer = (
            self.issuer
            if generation is self.current
            else issuer_for(self.config, generation, self.clock, self.lint_pool)
        )
        target = f"ocsp/responder/{generation.number}"
        issued = await asyncio.to_thread(
            issuer.issue_ocsp_responder,
            signer.public_key(),
            reserve=self._reserver("system", target),
        )
        await self._record(
            issued,
            None,
            None,
            "system",
            target,
            {
                "purpose": "delegated OCSP responder",
                "serial": format(issued.serial, "x"),
                "generation": issued.generation,
                "not_after": issued.not_after.isoformat(),
            },
        )
        path = self._responder_path(generation)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
        os.replace(tmp, path)
        return issued.certificate

    async def _status(
        self, generation: int, serial: int, now: dt.datetime
    ) -> tuple[str, dt.datetime | None, str | None]:
        """good / revoked / unknown, from the store, remembered for OCSP_STATUS_TTL so that a
        busy responder does not query the store on every request. A revocation by this process
        shows at once (revoke() forgets the entry); one by another process within
        ``server.ocsp_status_ttl``."""
        key = (generation, serial)
        cached = self._status_cache.get(key)
        if cached and now < cached[0] + self.config.server.ocsp_status_ttl:
            return cached[1]
        try:
            record = await self.store.certificate(generation, serial)
            status = (
                ("revoked", record.revoked_at, record.revocation_reason)
                if record.status == "revoked"
                else ("good", None, None)
            )
        except NotFound:
            # Never "good" for a serial never issued; not remembered (see ocsp()).
            return ("unknown", None, None)
        self._status_cache[key] = (now, status)
        while len(self._status_cache) > OCSP_CACHE_SIZE:
            self._status_cache.popitem(last=False)
        return status

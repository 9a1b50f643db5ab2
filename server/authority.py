"""The CA as the server runs it: the store, the current generation's signer, the issuer and the
pre-issuance lint wired together. The CA core decides; this module keeps records."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import fcntl
import ipaddress
import logging
import multiprocessing
import os
import ssl
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from jitsuin.ca.clock import Clock
from jitsuin.ca.csr import VerifiedCSR, verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.generations import CAGeneration, create_generation
from jitsuin.ca.issuance import Intent, IssuedCertificate, Issuer, Reserve
from jitsuin.ca.keys import KeyType, PublicKey, Signer, SoftwareSigner, generate_private_key
from jitsuin.ca.revocation import (
    CRL_REFRESH_AFTER,
    CRL_VALIDITY,
    OCSP_REFRESH_AFTER,
    REASONS,
    BadOCSPRequest,
    DelegatedResponder,
    Revoked,
    build_crl,
    build_response,
    find_issuer,
    parse_request,
    unsuccessful,
)
from jitsuin.ca.rollover import roll_over
from jitsuin.ca.subject import VettedSubject
from jitsuin.conformance.documents import Expectations
from jitsuin.conformance.gate import IssuanceLint
from jitsuin.server import metrics
from jitsuin.server.config import Config
from jitsuin.server.pkcs11_signer import Pkcs11Signer
from jitsuin.server.pkcs11_signer import key_ref as pkcs11_key_ref
from jitsuin.server.pkcs11_signer import parse_key_ref as parse_pkcs11_ref
from jitsuin.server.refusals import Refusals
from jitsuin.server.storage import (
    AuditEvent,
    CertificateRecord,
    Conflict,
    CRLRecord,
    GenerationRecord,
    IntentRecord,
    LinkRecord,
    NotFound,
    Store,
    StoreError,
    open_store,
)

TLS_RENEW_BEFORE_DAYS = 30
# How often a process waiting for another's reissue of the HTTPS certificate looks again.
TLS_LOCK_POLL_SECONDS = 0.05
OCSP_CACHE_SIZE = 100_000


def write_secret(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write a file readable by its owner only (mode 0600), replacing it atomically. With
    ``exclusive``, FileExistsError instead of replacing: two processes rolling over at once never
    overwrite each other's CA key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if not exclusive:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


@dataclass(frozen=True, slots=True)
class Link:
    """The link certificates between generation ``old`` and ``old + 1`` (RFC 9810 §4.4)."""

    old: int
    new: int
    old_with_new: x509.Certificate
    new_with_old: x509.Certificate


class LintProcesses(Executor):
    """The gate's lint processes (``[ca] lint_processes``), started with ``spawn``, not ``fork``:
    the server has threads and an event loop by then, which a forked child must not inherit.
    The processes start on the first lint, so a server that issues nothing runs none.

    A lint process that dies (killed, out of memory) breaks a ``ProcessPoolExecutor`` for good;
    here the next submission starts new processes instead, so one lost process costs the
    drafts it was linting (the gate retries them once, then refuses) and not every issuance
    until a restart."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self._lock:
            if self._closed:
                raise RuntimeError("the lint processes are shut down")
            if self._pool is None:
                self._pool = self._new_pool()
            try:
                return self._pool.submit(fn, *args, **kwargs)
            except BrokenProcessPool:
                logging.getLogger("jitsuin.ca").warning(
                    "a lint process died; starting new lint processes"
                )
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                return self._pool.submit(fn, *args, **kwargs)

    def pids(self) -> list[int]:
        """The live lint processes' ids (none before the first lint)."""
        with self._lock:
            pool = self._pool
        processes = dict(getattr(pool, "_processes", None) or {})
        return [pid for pid, process in processes.items() if process.is_alive()]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _lint_pool(config: Config) -> LintProcesses | None:
    if config.ca.lint_processes == 0:
        return None
    return LintProcesses(config.ca.lint_processes)


@dataclass
class Authority:
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
    _ocsp_cache: OrderedDict[tuple[int, int, str], tuple[dt.datetime, bytes]] = field(
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

    @classmethod
    async def open(cls, config: Config, clock: Clock, *, create: bool = True) -> Authority:
        """Open the store and the CA; with ``create``, make generation 1 on first start."""
        config.home.mkdir(parents=True, exist_ok=True)
        store = await open_store(config)
        pool: LintProcesses | None = None
        try:
            records = await store.generations()
            if not records:
                if not create:
                    raise CAError(Kind.BAD_CONFIG, f"no CA in {config.home}: run `jitsuin init`")
                records = [await cls._create_first(config, store, clock)]
            generations = [cls._load(config, r) for r in records]
            links = [
                Link(
                    r.old_generation,
                    r.new_generation,
                    x509.load_der_x509_certificate(r.old_with_new),
                    x509.load_der_x509_certificate(r.new_with_old),
                )
                for r in await store.links()
            ]
            pool = _lint_pool(config)
            issuer = cls._issuer(config, generations[-1], clock, pool)
        except BaseException:
            await store.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            raise
        return cls(config, store, clock, generations, issuer, links, lint_pool=pool)

    @staticmethod
    def _issuer(
        config: Config, generation: CAGeneration, clock: Clock, pool: Executor | None
    ) -> Issuer:
        # C-01 asks the CA certificate for digitalSignature only when the CA key signs OCSP.
        expectations = dataclasses.replace(
            Expectations.from_policy(config.policy(), config.ca.subject),
            ca_signs_ocsp=config.ocsp.responder == "ca",
        )
        gate = IssuanceLint(
            expectations,
            suppressed=config.ca.lint_suppress,
            issuers=[generation.certificate],
            executor=pool,
            incremental=config.ca.lint == "incremental",
        )
        return Issuer(generation, config.policy(), clock, lint=gate)

    async def close(self) -> None:
        await self.store.close()
        if self.lint_pool is not None:
            self.lint_pool.shutdown(cancel_futures=True)

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

    @staticmethod
    def _new_key(config: Config, number: int) -> tuple[Signer, str]:
        """A new CA key: in the PKCS#11 token, or as encrypted PKCS#8 in the data directory.
        Returns the signer and the key reference stored with the generation."""
        if config.ca.key_store == "pkcs11":
            token = config.token()
            label = f"ca-{number}"
            signer = Pkcs11Signer.generate(token, label, config.ca.key_type)
            return signer, pkcs11_key_ref(token, label)
        software = SoftwareSigner(generate_private_key(config.ca.key_type))
        key_path = config.keys_dir / f"ca-{number}.key.pem"
        try:
            write_secret(key_path, software.encrypted_pkcs8(config.passphrase()), exclusive=True)
        except FileExistsError:
            raise CAError(
                Kind.BAD_KEY_FILE,
                f"{key_path} exists but the store has no CA generation {number}: refusing to "
                "overwrite a CA key (restore the database or move the key away)",
            ) from None
        return software, f"file:{key_path.relative_to(config.home)}"

    @staticmethod
    async def _create_first(config: Config, store: Store, clock: Clock) -> GenerationRecord:
        signer, ref = Authority._new_key(config, 1)
        generation = create_generation(1, signer, config.ca.subject, clock)
        record = GenerationRecord(
            number=1,
            certificate_der=generation.der,
            key_ref=ref,
            created_at=clock.now(),
        )
        # Nothing is stored unless the key signed and the stored reference finds it again (in a
        # token, through this process's one login): a generation whose key cannot be loaded
        # would make every later start fail, and `init` would not make it again.
        try:
            generation.certificate.verify_directly_issued_by(generation.certificate)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise CAError(
                Kind.BAD_KEY_FILE, f"{ref}: the new CA certificate's signature does not verify"
            ) from exc
        Authority._load(config, record)
        await store.add_generation(
            record,
            AuditEvent(
                at=clock.now(),
                actor="system",
                action="ca.generation.create",
                target="generation/1",
                details={
                    "key_type": config.ca.key_type.value,
                    "subject": config.ca.subject.rfc4514_string(),
                    "sha256": generation.certificate.fingerprint(hashes.SHA256()).hex(),
                },
            ),
        )
        return record

    @staticmethod
    def _load(config: Config, record: GenerationRecord) -> CAGeneration:
        scheme, _, ref = record.key_ref.partition(":")
        signer: Signer
        if scheme == "pkcs11":
            signer = Pkcs11Signer(config.token(), parse_pkcs11_ref(record.key_ref))
        elif scheme == "file":
            path = config.home / ref
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CAError(
                    Kind.BAD_KEY_FILE,
                    f"cannot read the CA key of generation {record.number}: {exc}",
                ) from exc
            signer = SoftwareSigner.from_encrypted_pkcs8(data, config.passphrase())
        else:
            raise CAError(Kind.BAD_KEY_FILE, f"unsupported key reference {record.key_ref!r}")
        certificate = x509.load_der_x509_certificate(record.certificate_der)
        if signer.public_key() != certificate.public_key():
            raise CAError(
                Kind.BAD_KEY_FILE,
                f"{record.key_ref} does not hold the key of CA generation {record.number}",
            )
        return CAGeneration(record.number, certificate, signer)

    # -- several server processes ---------------------------------------------------------------
    async def refresh(self) -> bool:
        """Load the generations another process added (``jitsuin ca rollover``, or a rollover
        through another server process sharing the store): issuance moves to the newest, and the
        rollover listeners run as after a rollover here. True when something was added."""
        records = await self.store.generations()
        if len(records) == len(self.generations):  # generations are only ever added
            return False
        async with self._refresh_lock:
            known = {g.number for g in self.generations}
            added = [r for r in records if r.number not in known]
            if not added:
                return False
            loaded = [self._load(self.config, r) for r in added]  # as ``open`` does
            link_records = await self.store.links()
            self.generations.extend(loaded)
            self.generations.sort(key=lambda g: g.number)
            self.links[:] = [
                Link(
                    r.old_generation,
                    r.new_generation,
                    x509.load_der_x509_certificate(r.old_with_new),
                    x509.load_der_x509_certificate(r.new_with_old),
                )
                for r in link_records
            ]
            self.issuer = self._issuer(self.config, self.current, self.clock, self.lint_pool)
            for generation in loaded:
                for listener in self.rollover_listeners:
                    listener(generation)
        return True

    async def follow_rollovers(self, interval: float = 5.0) -> None:
        """Run forever: ``refresh`` every ``interval`` seconds, so that what is served without
        issuing (CA certificates, links, OCSP, the TLS trust) follows a rollover elsewhere."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # a database hiccup must not end the watch
                logging.getLogger("jitsuin.ca").exception("reloading the CA generations failed")

    # -- issuance ------------------------------------------------------------------------------
    def _reserver(self, requester: str, target: str) -> Reserve:
        """The hook the issuer calls before the CA key signs: it records the intent (serial,
        generation, profile, TBS hash, who and what for) and waits for the commit, so that a
        crash after the signature leaves a reserved intent, never silence. It runs in the
        signing worker thread and writes through this event loop."""
        loop = asyncio.get_running_loop()

        def reserve(intent: Intent) -> bool:
            record = IntentRecord(
                generation=intent.generation,
                serial=intent.serial,
                profile=intent.profile,
                tbs_sha256=intent.tbs_sha256,
                requester=requester,
                target=target,
                reserved_at=self.clock.now(),
            )
            try:
                asyncio.run_coroutine_threadsafe(self.store.reserve_intent(record), loop).result()
            except Conflict:  # the serial is reserved or certified already: draw another
                return False
            return True

        return reserve

    async def sign_personal(
        self,
        csr: VerifiedCSR,
        subject: VettedSubject,
        profile: str,
        *,
        requester: str,
        target: str,
    ) -> IssuedCertificate:
        """Issue from the vetted record; only the signing intent is recorded yet. SEED-R2: the
        subscriber's earlier keys are looked up so that a renewal is always a re-key.
        Generations added by another process are loaded first, so no process issues from a
        superseded one."""
        await self.refresh()
        used = await self.store.used_keys(subject.subscriber_id)
        reserve = self._reserver(requester, target)
        try:
            return await asyncio.to_thread(
                self.issuer.issue, csr, subject, profile, used, reserve=reserve
            )
        except CAError as exc:
            if exc.kind is Kind.LINT:  # SBR 4.3.1.2: a draft the lint refused leaves a trace
                await self.store.append_audit(
                    AuditEvent(
                        self.clock.now(),
                        "system",
                        "certificate.lint_refused",
                        f"subscriber/{subject.subscriber_id}",
                        {"profile": profile, "findings": exc.message},
                    )
                )
            raise

    async def sign_tls_server(
        self,
        public_key: PublicKey,
        dns: list[str],
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
        validity: dt.timedelta | None = None,
        *,
        requester: str,
        target: str,
    ) -> IssuedCertificate:
        """A tls-server certificate; as ``sign_personal``, only its signing intent is recorded."""
        await self.refresh()  # never issue from a generation another process retired
        return await asyncio.to_thread(
            self.issuer.issue_tls_server,
            public_key,
            dns,
            ips,
            validity,
            reserve=self._reserver(requester, target),
        )

    async def discard(self, issued: IssuedCertificate, actor: str, target: str, why: str) -> None:
        """Settle the intent of a certificate that was signed but will never be handed out (the
        request was answered by another signature meanwhile), with an audit entry carrying its
        serial: no signature of the CA key goes unaccounted for."""
        now = self.clock.now()
        try:
            await self.store.discard_intent(
                issued.generation,
                issued.serial,
                now,
                AuditEvent(
                    now,
                    actor,
                    "certificate.discarded",
                    target,
                    {
                        "serial": format(issued.serial, "x"),
                        "generation": issued.generation,
                        "profile": issued.profile,
                        "reason": why,
                    },
                ),
            )
        except StoreError:  # the intent stays reserved: audit verify still lists it
            logging.getLogger("jitsuin.ca").exception(
                "could not settle the discarded signature of serial %x", issued.serial
            )

    async def issue_personal(
        self, csr_data: bytes, subject: VettedSubject, profile: str, actor: str
    ) -> IssuedCertificate:
        """The operator path: verify the CSR, issue, and record the certificate with its audit
        entry in one transaction. A refusal raises ``CAError`` and writes nothing but the
        signing intent (settled as discarded when the store refuses the certificate)."""
        target = f"subscriber/{subject.subscriber_id}"
        issued = await self.sign_personal(
            verify_csr(csr_data), subject, profile, requester=actor, target=target
        )
        await self._record(issued, subject.subscriber_id, subject.email, actor, target)
        return issued

    def certificate_record(
        self, issued: IssuedCertificate, subscriber_id: str | None, email: str | None
    ) -> CertificateRecord:
        return CertificateRecord(
            generation=issued.generation,
            serial=issued.serial,
            der=issued.der,
            subscriber_id=subscriber_id,
            subject=issued.certificate.subject.rfc4514_string(),
            email=email,
            profile=issued.profile,
            not_before=issued.not_before,
            not_after=issued.not_after,
            issued_at=self.clock.now(),
            spki_sha256=issued.spki_sha256,
        )

    async def _record(
        self,
        issued: IssuedCertificate,
        subscriber_id: str | None,
        email: str | None,
        actor: str,
        target: str,
        details: dict[str, object] | None = None,
    ) -> None:
        try:
            await self.store.record_certificate(
                self.certificate_record(issued, subscriber_id, email),
                AuditEvent(
                    at=self.clock.now(),
                    actor=actor,
                    action="certificate.issue",
                    target=f"generation/{issued.generation}/serial/{issued.serial:x}",
                    details={
                        "profile": issued.profile,
                        "subscriber_id": subscriber_id,
                        **(details or {}),
                    },
                ),
            )
        except Conflict as exc:
            # Two requests with one key raced past the used_keys check (SEED-R2).
            await self.discard(issued, actor, target, str(exc))
            raise CAError(Kind.KEY_REUSED, str(exc)) from exc

    # -- rollover (SEED-R15...R17) ----------------------------------------------------------------
    def rollover_due(self) -> dt.datetime:
        """When the current generation stops issuing: the rollover must happen by then."""
        return self.current.issuance_cutoff(self.config.ca.cutoff_margin)

    def rollover_warning(self) -> str | None:
        due = self.rollover_due()
        if self.clock.now() < due - self.config.ca.rollover_warning:
            return None
        return (
            f"CA generation {self.current.number} stops issuing at {due.isoformat()}: "
            "run `jitsuin ca rollover` before then (SEED-R15)"
        )

    async def rollover(self, actor: str) -> CAGeneration:
        """Make the next generation with its link certificates; issuance switches at once."""
        await self.refresh()  # another process may have rolled over: number after its generation
        old = self.current
        number = old.number + 1
        signer, ref = self._new_key(self.config, number)
        # The link certificates get no signing intent: they are CA certificates made in this
        # ceremony and stored, with their fingerprints audited, in the transaction that adds the
        # generation. A crash before that commit loses them unpublished, and leaves the new CA
        # key behind (file written exclusively, or labelled in the token), which makes the next
        # rollover refuse loudly until an operator looks: the trace an intent would have been.
        result = await asyncio.to_thread(
            roll_over, old, signer, self.clock, await self.store.latest_expiry(old.number)
        )
        new = result.new
        await self.store.add_generation(
            GenerationRecord(
                number=number,
                certificate_der=new.der,
                key_ref=ref,
                created_at=self.clock.now(),
            ),
            AuditEvent(
                at=self.clock.now(),
                actor=actor,
                action="ca.rollover",
                target=f"generation/{number}",
                details={
                    "previous": old.number,
                    "sha256": new.certificate.fingerprint(hashes.SHA256()).hex(),
                    "oldWithNew": result.old_with_new.fingerprint(hashes.SHA256()).hex(),
                    "newWithOld": result.new_with_old.fingerprint(hashes.SHA256()).hex(),
                },
            ),
            LinkRecord(
                old.number,
                number,
                result.old_with_new.public_bytes(serialization.Encoding.DER),
                result.new_with_old.public_bytes(serialization.Encoding.DER),
            ),
        )
        self.generations.append(new)
        self.links.append(Link(old.number, number, result.old_with_new, result.new_with_old))
        self.issuer = self._issuer(self.config, new, self.clock, self.lint_pool)
        for listener in self.rollover_listeners:
            listener(new)
        return new

    # -- revocation (RFC 5280 §5, RFC 6960) -------------------------------------------------------
    async def revoke(
        self, generation: int, serial: int, reason: str, actor: str, target: str | None = None
    ) -> None:
        """Revoke, then publish at once: a fresh CRL, and no cached OCSP answer survives.
        ``unspecified`` (ACME revokeCert without a reason, RFC 8555 §7.6) is published without
        a reasonCode, as RFC 5280 §5.3.1 recommends for it."""
        if reason not in REASONS and reason != "unspecified":
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
        for status in ("good", "revoked", "unknown"):
            self._ocsp_cache.pop((generation, serial, status), None)
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
            crl_number, rows = await self.store.next_crl(number)
            revoked = [Revoked(*row) for row in rows]
            der = await asyncio.to_thread(build_crl, generation, revoked, crl_number, now)
            # Lint before publishing (issue 8): CONFORMANCE D on the CRL, against the previous one.
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
        key = (generation.number, cert_id.serial, status)
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
        # Lint before sending (issue 8): CONFORMANCE D on the response (R-06...R-09).
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
        """The generation's responder key, made on first use with the CA key's type, in
        ``keys/ocsp-N.key.pem`` (PKCS#8, mode 0600, unencrypted: it signs unattended, and its
        certificate is short-lived). Also with key_store = "pkcs11": a second login to the token
        beside the CA key's session fails (CKR_USER_ALREADY_LOGGED_IN) with today's signer."""
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
            or _aki(certificate) != generation.key_identifier
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
            else self._issuer(self.config, generation, self.clock, self.lint_pool)
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

    # -- the server's own TLS certificate ---------------------------------------------------------
    async def tls_files(self) -> tuple[Path, Path]:
        """The HTTPS listener's certificate chain and key: configured files, or a certificate
        from this CA, reissued when missing, near expiry, from an older generation, for other
        names, or with another chain than ``_tls_links`` gives."""
        async with self._tls_files_locked():
            return await self._tls_files()

    async def load_tls(self, context: ssl.SSLContext) -> bytes:
        """Load the certificate chain of ``tls_files`` into a listener's live context, so that
        new handshakes present it (established connections keep theirs); the chain loaded.
        Called at start, after every rollover this process learns of, and now and then for
        expiry; the lock keeps another process from replacing the files between the check and
        the load."""
        async with self._tls_files_locked():
            cert_file, key_file = await self._tls_files()
            context.load_cert_chain(cert_file, key_file)
            return cert_file.read_bytes()

    @contextlib.asynccontextmanager
    async def _tls_files_locked(self) -> AsyncIterator[None]:
        """An exclusive lock on ``tls/`` across processes (``serve --workers N``, or a restart
        beside a running server): the first process to see a rollover issues the new server
        certificate, the others wait and find it current, so one certificate is made per
        rollover and data directory."""
        directory = self.config.home / "tls"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:  # polled, not a blocking call in a thread: cancellation stays clean
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(TLS_LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def _tls_files(self) -> tuple[Path, Path]:
        server = self.config.server
        if server.tls_cert_file and server.tls_key_file:
            return server.tls_cert_file, server.tls_key_file
        # Another process may have rolled over: judge the files against the newest generation.
        await self.refresh()
        cert_path = self.config.home / "tls" / "server.pem"
        key_path = self.config.home / "tls" / "server.key"
        if cert_path.exists() and key_path.exists() and self._tls_current(cert_path, key_path):
            return cert_path, key_path
        key = generate_private_key(KeyType.ECDSA_P256)
        dns = [n for n in server.tls_names if not _is_ip(n)]
        ips = [ipaddress.ip_address(n) for n in server.tls_names if _is_ip(n)]
        issued = await self.sign_tls_server(
            key.public_key(), dns, ips, requester="system", target="tls/server"
        )
        # The server's own certificate is audited like any other, with its names.
        await self._record(
            issued,
            None,
            None,
            "system",
            "tls/server",
            {
                "purpose": "server TLS",
                "serial": format(issued.serial, "x"),
                "generation": issued.generation,
                "sans": list(server.tls_names),
            },
        )
        write_secret(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        chain = b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in [issued.certificate, *self._tls_links()]
        )
        write_secret(cert_path, chain)
        return cert_path, key_path

    def _tls_links(self) -> list[x509.Certificate]:
        """What the listener sends after its leaf: the NewWithOld link into the current
        generation while it is valid (RFC 9810 §4.4: the new public key signed with the old
        private key). A client that still trusts only the previous generation's ca.pem builds
        leaf -> NewWithOld -> old anchor; one that trusts the new ca.pem stops at its anchor,
        the leaf's issuer, and never uses the link. Older links are not sent: a client two
        generations behind has a trust anchor outside the overlap the link certificates
        cover (SEED-R17)."""
        now = self.clock.now()
        return [
            link.new_with_old
            for link in self.links
            if link.new == self.current.number and now < link.new_with_old.not_valid_after_utc
        ]

    def _tls_current(self, path: Path, key_path: Path) -> bool:
        try:
            leaf, *rest = x509.load_pem_x509_certificates(path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        except (ValueError, TypeError):
            return False
        if key.public_key() != leaf.public_key():  # a reissue cut short between the two files
            return False
        remaining = leaf.not_valid_after_utc - self.clock.now()
        try:
            names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        have = {str(n.value) for n in names}
        return (
            remaining.days > TLS_RENEW_BEFORE_DAYS
            and leaf.issuer == self.current.certificate.subject
            and _aki(leaf) == self.current.key_identifier
            and have == set(self.config.server.tls_names)
            and rest == self._tls_links()
        )


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True

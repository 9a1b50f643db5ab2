"""Fixtures for the conformance tests: real CA generations and real subscriber certificates from
jitsuin's own issuer, a rollover set built here with cryptography (OldWithOld, NewWithNew,
OldWithNew, NewWithOld, docs/conformance.md C), CRLs and OCSP responses, and helpers that derive a
broken variant of any of them (a builder copy with one change, or the DER edited with asn1crypto and
signed again with the real key).

With ``--import-mode=importlib`` test modules cannot import this file, so everything is reached
through the ``factory`` fixture.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from jitsuin.ca.clock import UTC, FixedClock
from jitsuin.ca.csr import verify_csr
from jitsuin.ca.generations import CAGeneration, create_generation
from jitsuin.ca.issuance import CAPolicy, Issuer
from jitsuin.ca.keys import KeyType, PrivateKey, SoftwareSigner, generate_private_key
from jitsuin.ca.subject import VettedSubject
from jitsuin.conformance.documents import (
    Corpus,
    Expectations,
    LintContext,
    Unreadable,
    load_objects,
)
from jitsuin.conformance.findings import Outcome
from jitsuin.conformance.registry import REGISTRY
from jitsuin.conformance.runner import Report, lint_corpus, run_rules

DER = serialization.Encoding.DER
T0 = dt.datetime(2026, 10, 1, tzinfo=UTC)  # generation 1 is created
ISSUED_AT = dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=UTC)
# The rollover: early enough that a 396-day certificate issued just before it still ends
# inside OldWithOld with the 30-day margin (C-07): 10 y - 396 d - 30 d is about 8 y 304 d.
ROLLOVER_AT = dt.datetime(2035, 3, 30, tzinfo=UTC)
POLICY_ARC = "1.3.6.1.4.1.32473.77"
PKI_BASE_URL = "http://pki.example.com"
CA_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Jitsuin Conformance Test"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Jitsuin Conformance CA"),
    ]
)
SUBJECTS = {
    "general": VettedSubject(
        subscriber_id="app-1",
        family_name="Yamada",
        given_name="Hanako",
        email="hanako.yamada@example.com",
        qualification_group="member",
        qualification_number="AB-1234",
        country="JP",
    ),
    "document-manager": VettedSubject(
        subscriber_id="app-2",
        family_name="Suzuki",
        given_name="Ichiro",
        email="ichiro.suzuki@example.com",
        qualification_group="document-information-manager",
        qualification_number="123456",
    ),
}
SUBSCRIBER_KEYS = (
    KeyType.RSA_2048,
    KeyType.RSA_3072,
    KeyType.RSA_4096,
    KeyType.ECDSA_P256,
    KeyType.ECDSA_P384,
)


def der(obj: Any) -> bytes:
    if isinstance(obj, bytes):
        return obj
    return obj.public_bytes(DER)


def sign_bytes(key: PrivateKey, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm)
    return key.sign(data, ec.ECDSA(algorithm))


def hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    return KeyType.of(key).signature_hash


@dataclass
class CA:
    """A CA key with its generation (jitsuin's own create_generation)."""

    key: PrivateKey
    generation: CAGeneration

    @property
    def cert(self) -> x509.Certificate:
        return self.generation.certificate

    @property
    def ski(self) -> bytes:
        return self.generation.key_identifier


@dataclass
class Rollover:
    old: CA
    new: CA
    own: x509.Certificate  # OldWithNew
    nwo: x509.Certificate  # NewWithOld
    old_leaf: x509.Certificate
    new_leaf: x509.Certificate

    @property
    def owo(self) -> x509.Certificate:
        return self.old.cert

    @property
    def nwn(self) -> x509.Certificate:
        return self.new.cert

    @property
    def ca_set(self) -> list[x509.Certificate]:
        return [self.owo, self.nwn, self.own, self.nwo]


@dataclass
class Factory:
    expectations: Expectations
    policy: CAPolicy
    _cas: dict[Any, CA] = field(default_factory=dict)
    last_judged: Any = None

    # -- keys and CAs
    @staticmethod
    @functools.cache
    def key(key_type: KeyType, n: int = 0) -> PrivateKey:
        return generate_private_key(key_type)

    def ca(
        self,
        key_type: KeyType = KeyType.ECDSA_P384,
        *,
        at: dt.datetime = T0,
        n: int = 0,
        number: int = 1,
        subject: x509.Name = CA_SUBJECT,
    ) -> CA:
        cache = (key_type, at, n, number, subject.public_bytes())
        if cache not in self._cas:
            key = self.key(key_type, 100 + n)
            generation = create_generation(number, SoftwareSigner(key), subject, FixedClock(at))
            self._cas[cache] = CA(key, generation)
        return self._cas[cache]

    def issuer(self, ca: CA, at: dt.datetime = ISSUED_AT) -> Issuer:
        return Issuer(ca.generation, self.policy, FixedClock(at))

    def leaf(
        self,
        profile: str = "general",
        key_type: KeyType = KeyType.ECDSA_P256,
        ca: CA | None = None,
        at: dt.datetime = ISSUED_AT,
        n: int = 0,
        subject: VettedSubject | None = None,
    ) -> x509.Certificate:
        """A certificate issued by jitsuin's own issuer (the real profile code)."""
        ca = ca or self.ca()
        key = self.key(key_type, n)
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
        verified = verify_csr(csr.sign(key, hash_for(key)).public_bytes(DER))
        issued = self.issuer(ca, at).issue(verified, subject or SUBJECTS[profile], profile)
        return issued.certificate

    def tls_leaf(self, ca: CA | None = None) -> x509.Certificate:
        ca = ca or self.ca()
        key = self.key(KeyType.ECDSA_P256, 50)
        return self.issuer(ca).issue_tls_server(key.public_key(), ["www.example.com"]).certificate

    # -- derived certificates
    @staticmethod
    def builder_from(
        cert: x509.Certificate,
        *,
        drop: Iterable[type[x509.ExtensionType] | x509.ObjectIdentifier] = (),
        replace: dict[type[x509.ExtensionType], tuple[x509.ExtensionType, bool]] | None = None,
        add: Sequence[tuple[x509.ExtensionType, bool]] = (),
        subject: x509.Name | None = None,
        issuer: x509.Name | None = None,
        public_key: Any = None,
        serial: int | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> x509.CertificateBuilder:
        """A builder that makes ``cert`` again, without the extensions in ``drop``, with the
        ones in ``replace`` swapped (value, critical), those in ``add`` added, and any of the
        named fields changed."""
        replace = dict(replace or {})
        dropped = set(drop)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject or cert.subject)
            .issuer_name(issuer or cert.issuer)
            .public_key(public_key or cert.public_key())
            .serial_number(serial or cert.serial_number)
            .not_valid_before(not_before or cert.not_valid_before_utc)
            .not_valid_after(not_after or cert.not_valid_after_utc)
        )
        for ext in cert.extensions:
            kind = type(ext.value)
            if kind in dropped or ext.oid in dropped:
                continue
            if kind in replace:
                value, critical = replace.pop(kind)
                builder = builder.add_extension(value, critical)
            else:
                builder = builder.add_extension(ext.value, ext.critical)
        for value, critical in [*replace.values(), *add]:
            builder = builder.add_extension(value, critical)
        return builder

    @staticmethod
    def sign(
        builder: x509.CertificateBuilder,
        key: PrivateKey,
        algorithm: hashes.HashAlgorithm | None = None,
    ) -> x509.Certificate:
        return builder.sign(key, algorithm or hash_for(key))

    def variant(self, cert: x509.Certificate, key: PrivateKey, **kwargs: Any) -> x509.Certificate:
        """``cert`` made again with one change (see ``builder_from``), signed by ``key``."""
        algorithm = kwargs.pop("algorithm", None)
        return self.sign(self.builder_from(cert, **kwargs), key, algorithm)

    @staticmethod
    def tamper_crl(
        crl: x509.CertificateRevocationList,
        key: PrivateKey,
        edit: Callable[[Any], None],
        algorithm: hashes.HashAlgorithm | None = None,
        algorithm_id: str | None = None,
    ) -> bytes:
        """Edit a CRL's TBSCertList with asn1crypto and sign it again with ``key``."""
        from asn1crypto import crl as asn1_crl

        parsed = asn1_crl.CertificateList.load(der(crl))
        tbs = parsed["tbs_cert_list"]
        if algorithm_id is not None:
            tbs["signature"] = {"algorithm": algorithm_id}
            parsed["signature_algorithm"] = {"algorithm": algorithm_id}
        edit(tbs)
        tbs_der = tbs.dump(force=True)
        return asn1_crl.CertificateList(
            {
                "tbs_cert_list": asn1_crl.TbsCertList.load(tbs_der),
                "signature_algorithm": parsed["signature_algorithm"],
                "signature": sign_bytes(key, tbs_der, algorithm or hash_for(key)),
            }
        ).dump()

    @staticmethod
    def tamper(
        cert: x509.Certificate | bytes,
        key: PrivateKey | None,
        edit: Callable[[asn1_x509.TbsCertificate], None],
        algorithm: hashes.HashAlgorithm | None = None,
        algorithm_id: str | None = None,
    ) -> bytes:
        """Edit the TBS with asn1crypto and sign it again with ``key`` (or keep the old
        signature when ``key`` is None), keeping the outer AlgorithmIdentifier unless
        ``algorithm_id`` (an asn1crypto name such as ``sha1_rsa``) replaces both."""
        parsed = asn1_x509.Certificate.load(der(cert))
        tbs = parsed["tbs_certificate"]
        if algorithm_id is not None:
            tbs["signature"] = {"algorithm": algorithm_id}
            parsed["signature_algorithm"] = {"algorithm": algorithm_id}
        edit(tbs)
        tbs_der = tbs.dump(force=True)
        signature = (
            parsed["signature_value"].native
            if key is None
            else sign_bytes(key, tbs_der, algorithm or hash_for(key))
        )
        return asn1_x509.Certificate(
            {
                "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
                "signature_algorithm": parsed["signature_algorithm"],
                "signature_value": signature,
            }
        ).dump()

    # -- rollover
    def link(
        self,
        subject_ca: CA,
        signer: CA,
        not_before: dt.datetime,
        not_after: dt.datetime,
        **kwargs: Any,
    ) -> x509.Certificate:
        """A link certificate: ``subject_ca``'s key, signed by ``signer``'s key (RFC 9810
        §4.4.1), with the CA profile of a generation certificate."""
        ku = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_ca.cert.subject)
            .issuer_name(signer.cert.subject)
            .public_key(subject_ca.key.public_key())  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(kwargs.pop("ku", ku), critical=kwargs.pop("ku_critical", True))
            .add_extension(x509.SubjectKeyIdentifier(subject_ca.ski), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier(signer.ski, None, None), critical=False)
        )
        assert not kwargs, kwargs
        return self.sign(builder, signer.key)

    def rollover(
        self,
        *,
        at: dt.datetime = ROLLOVER_AT,
        new_subject: x509.Name = CA_SUBJECT,
        new_type: KeyType = KeyType.ECDSA_P384,
        n: int = 1,
    ) -> Rollover:
        old = self.ca()
        new = self.ca(new_type, at=at, n=n, number=2, subject=new_subject)
        # OwN: old key signed by the new, with OldWithOld's validity (RFC 9810; SEED-R16).
        own = self.link(old, new, old.cert.not_valid_before_utc, old.cert.not_valid_after_utc)
        # NwO: new key signed by the old, from NewWithNew's start to OldWithOld's end (SEED-R17).
        nwo = self.link(new, old, new.cert.not_valid_before_utc, old.cert.not_valid_after_utc)
        old_leaf = self.leaf(ca=old, at=at - dt.timedelta(days=10), n=2)
        new_leaf = self.leaf(ca=new, at=at + dt.timedelta(days=10), n=3)
        return Rollover(old, new, own, nwo, old_leaf, new_leaf)

    # -- CRLs and OCSP
    @staticmethod
    def crl(
        ca: CA,
        *,
        this_update: dt.datetime,
        days: float = 7,
        number: int | None = 1,
        revoked: Sequence[tuple[int, x509.ReasonFlags | None]] = (),
        aki: bool = True,
        algorithm: hashes.HashAlgorithm | None = None,
        reason_critical: bool = False,
        extra: Sequence[tuple[x509.ExtensionType, bool]] = (),
        signer_key: PrivateKey | None = None,
    ) -> x509.CertificateRevocationList:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(this_update)
            .next_update(this_update + dt.timedelta(days=days))
        )
        if aki:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier(ca.ski, None, None), critical=False
            )
        if number is not None:
            builder = builder.add_extension(x509.CRLNumber(number), critical=False)
        for value, critical in extra:
            builder = builder.add_extension(value, critical)
        for serial, reason in revoked:
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(this_update - dt.timedelta(hours=1))
            )
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason), critical=reason_critical)
            builder = builder.add_revoked_certificate(entry.build())
        key = signer_key or ca.key
        return builder.sign(key, algorithm or hash_for(key))

    @staticmethod
    def ocsp(
        ca: CA,
        cert: x509.Certificate,
        *,
        this_update: dt.datetime,
        hours: float = 96,
        status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
        reason: x509.ReasonFlags | None = None,
        responder: tuple[x509.Certificate, PrivateKey] | None = None,
        signer_key: PrivateKey | None = None,
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
        next_update: bool = True,
    ) -> ocsp.OCSPResponse:
        revoked_at = (
            this_update - dt.timedelta(hours=2) if status is ocsp.OCSPCertStatus.REVOKED else None
        )
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=ca.cert,
            algorithm=hashes.SHA1(),  # noqa: S303 (the CertID hash every client sends, RFC 6960)
            cert_status=status,
            this_update=this_update,
            next_update=this_update + dt.timedelta(hours=hours) if next_update else None,
            revocation_time=revoked_at,
            revocation_reason=reason,
        )
        for value, critical in extensions:
            builder = builder.add_extension(value, critical)
        if responder is not None:
            responder_cert, responder_key = responder
            builder = builder.certificates([responder_cert]).responder_id(
                ocsp.OCSPResponderEncoding.HASH, responder_cert
            )
            return builder.sign(responder_key, hashes.SHA256())
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
        response = builder.sign(ca.key, hash_for(ca.key))
        if signer_key is None:
            return response
        # A forgery: the same response, its signature replaced by another key's.
        from asn1crypto import ocsp as asn1_ocsp

        parsed = asn1_ocsp.OCSPResponse.load(der(response))
        basic = parsed["response_bytes"]["response"].parsed
        tbs = basic["tbs_response_data"].dump()
        basic["signature"] = sign_bytes(signer_key, tbs, hash_for(signer_key))
        parsed["response_bytes"]["response"] = asn1_ocsp.BasicOCSPResponse.load(
            basic.dump(force=True)
        )
        return ocsp.load_der_ocsp_response(parsed.dump(force=True))

    # -- judging
    @staticmethod
    def corpus(
        target: Any,
        others: Iterable[Any] = (),
        context: LintContext | None = None,
        extra: Iterable[x509.Certificate] = (),
    ) -> Corpus:
        def load(obj: Any, label: str) -> list[Any]:
            items = load_objects(der(obj), label)
            bad = [i for i in items if isinstance(i, Unreadable)]
            assert not bad, bad
            return items

        documents = load(target, "target")
        for i, other in enumerate(others):
            documents += load(other, f"other-{i}")
        return Corpus(documents, context or LintContext(), extra)

    def judge(
        self,
        rule_id: str,
        target: Any,
        others: Iterable[Any] = (),
        context: LintContext | None = None,
        extra: Iterable[x509.Certificate] = (),
    ) -> Outcome:
        """One rule's outcome on ``target`` (a certificate, CRL, OCSP response or DER), with
        ``others`` as the other files of the run and ``extra`` as context certificates."""
        corpus = self.corpus(target, others, context, extra)
        self.last_judged = corpus.documents[0]  # for the pkilint cross-check
        (outcome,) = run_rules(corpus.documents[0], [REGISTRY.get(rule_id)], corpus.context)
        return outcome

    def lint(self, objects: Iterable[Any], context: LintContext | None = None) -> Report:
        objects = list(objects)
        corpus = self.corpus(objects[0], objects[1:], context)
        return lint_corpus(corpus)

    def configured(self, **kwargs: Any) -> LintContext:
        return LintContext(expectations=self.expectations, **kwargs)

    # -- the corpus of everything jitsuin issues, plus a rollover
    @functools.cached_property
    def good(self) -> list[Any]:
        """Both profiles x every subscriber key type from one generation, a TLS server
        certificate, a complete rollover set with a leaf from each key, a CRL from each key
        (numbers increasing across keys) and OCSP responses."""
        r = self.rollover()
        objects: list[Any] = [*r.ca_set, r.old_leaf, r.new_leaf, self.tls_leaf()]
        for profile in SUBJECTS:
            for i, key_type in enumerate(SUBSCRIBER_KEYS):
                objects.append(self.leaf(profile, key_type, n=10 + i))
        revoked = self.leaf(ca=r.old, at=ROLLOVER_AT - dt.timedelta(days=5), n=30)
        objects.append(revoked)
        when = ROLLOVER_AT + dt.timedelta(days=1)
        objects.append(
            self.crl(
                r.old,
                this_update=when,
                number=100,
                revoked=[(revoked.serial_number, x509.ReasonFlags.key_compromise)],
            )
        )
        objects.append(self.crl(r.new, this_update=when, number=101))
        objects.append(self.ocsp(r.old, r.old_leaf, this_update=when))
        objects.append(
            self.ocsp(
                r.old,
                revoked,
                this_update=when,
                status=ocsp.OCSPCertStatus.REVOKED,
                reason=x509.ReasonFlags.key_compromise,
            )
        )
        objects.append(self.ocsp(r.new, r.new_leaf, this_update=when))
        return objects


@pytest.fixture(scope="session")
def factory() -> Factory:
    policy = CAPolicy(policy_arc=POLICY_ARC, pki_base_url=PKI_BASE_URL)
    return Factory(Expectations.from_policy(policy, CA_SUBJECT), policy)


@pytest.fixture(scope="session")
def times() -> dict[str, dt.datetime]:
    return {"T0": T0, "ISSUED_AT": ISSUED_AT, "ROLLOVER_AT": ROLLOVER_AT}


# == live servers: a running jitsuin (``live_jitsuin`` of tests/conftest.py) and Pebble


@pytest.fixture(scope="module")
def jitsuin_server(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any) -> Iterator[Any]:
    """A real ``jitsuin serve`` on loopback with a real SMTP server for the PIN e-mails.
    document-manager re-enrollments wait for an operator (the 202 flow)."""
    with live_jitsuin.server(
        tmp_path_factory.mktemp("live-home"),
        operators=[("alice", "reviewer"), ("bob", "approver")],
        reenroll_approval=["document-manager"],
    ) as running:
        yield running


@dataclass
class Pebble:
    directory: str
    ca_bundle: Path
    log: Path


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway TLS CA and a localhost certificate for Pebble (Debian's package ships no
    test certificates)."""
    now = dt.datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conformance test TLS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any) -> Iterator[Pebble]:
    """Pebble (Debian package ``pebble``; scripts/test installs it) on loopback: challenges
    always valid, no artificial sleeps, no random nonce rejection."""
    binary = shutil.which("pebble")
    if binary is None:
        pytest.skip("pebble is not installed (./scripts/test installs the Debian package)")
    directory = tmp_path_factory.mktemp("pebble")
    ca, cert, key = _tls_files(directory)
    port, management = live_jitsuin.free_port(), live_jitsuin.free_port()
    config = directory / "pebble-config.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{port}",
                    "managementListenAddress": f"127.0.0.1:{management}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": live_jitsuin.free_port(),
                    "tlsPort": live_jitsuin.free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    env = {
        **os.environ,
        "PEBBLE_VA_ALWAYS_VALID": "1",
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
    }
    log_path = directory / "pebble.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [binary, "-config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=directory,
    )
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.1)
        else:
            raise AssertionError("pebble did not start: " + log_path.read_text())
        yield Pebble(f"https://localhost:{port}/dir", ca, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

"""The pre-issuance gate (SBR 4.3.1.2): the registry runs on every draft before the CA key signs,
and a finding at ERROR refuses the issuance with CAError(LINT); nothing is stored and the refusal
is audited. The CRL and OCSP checks the CA can run before publishing."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import multiprocessing
import os
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from jitsuin.ca import profiles
from jitsuin.ca.clock import FixedClock, SystemClock
from jitsuin.ca.csr import verify_csr
from jitsuin.ca.errors import CAError, Kind
from jitsuin.ca.issuance import Issuer
from jitsuin.ca.keys import KeyType, generate_private_key
from jitsuin.ca.revocation import Revoked, build_crl, build_response, parse_request
from jitsuin.ca.subject import VettedSubject
from jitsuin.conformance.gate import IssuanceLint, lint_crl, lint_ocsp_response
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority, LintProcesses

SUBJECT = VettedSubject(
    subscriber_id="app-9",
    family_name="Tanaka",
    given_name="Jiro",
    email="jiro.tanaka@example.com",
    qualification_group="member",
    qualification_number="ZZ-9",
)


def _csr(key_type: KeyType = KeyType.ECDSA_P256) -> bytes:
    key = generate_private_key(key_type)
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return csr.sign(key, key_type.signature_hash).public_bytes(serialization.Encoding.DER)


class CountingSigner:
    """Wraps the CA signer: how often did the real key sign?"""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    @property
    def key_type(self):
        return self.inner.key_type

    def public_key(self):
        return self.inner.public_key()

    def sign(self, data: bytes) -> bytes:
        self.calls += 1
        return self.inner.sign(data)


class DifferentialLint(IssuanceLint):
    """The gate as the server runs it (``[ca] lint = "incremental"``), checked on every draft
    against the whole linter: each draft these tests issue is a case of the differential test
    (docs/conformance.md, "Incremental lint")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, incremental=True, **kwargs)
        self.whole = IssuanceLint(*args, **kwargs)

    def findings(self, draft, profile):
        found = super().findings(draft, profile)
        assert sorted(found, key=repr) == sorted(self.whole.findings(draft, profile), key=repr)
        return found


@pytest.fixture
def gated(factory, times):
    ca = factory.ca()
    signer = CountingSigner(ca.generation.signer)
    generation = dataclasses.replace(ca.generation, signer=signer)
    gate = DifferentialLint(factory.expectations, issuers=[ca.cert])
    issuer = Issuer(generation, factory.policy, FixedClock(times["ISSUED_AT"]), lint=gate)
    return issuer, signer


@pytest.mark.parametrize("profile", ["general", "document-manager"])
@pytest.mark.parametrize("key_type", list(KeyType), ids=lambda k: k.value)
def test_the_gate_passes_what_jitsuin_issues(gated, profile, key_type):
    issuer, signer = gated
    subject = (
        SUBJECT
        if profile == "general"
        else dataclasses.replace(
            SUBJECT, qualification_group="document-information-manager", qualification_number="4711"
        )
    )
    issued = issuer.issue(verify_csr(_csr(key_type)), subject, profile)
    assert signer.calls == 1
    assert issued.certificate.not_valid_after_utc - issued.certificate.not_valid_before_utc == (
        dt.timedelta(days=396) - dt.timedelta(seconds=1)
    )


@pytest.mark.parametrize(
    ("dns", "ips"),
    [(["www.example.com"], []), ([], ["192.0.2.7"]), (["a.example.com"], ["2001:db8::7"])],
    ids=["dns", "ip", "both"],
)
def test_the_gate_passes_tls_server_certificates_with_an_empty_subject(factory, gated, dns, ips):
    """no CN (a CN holding an IP address broke certbot); the names are in a
    critical subjectAltName, as RFC 5280 §4.2.1.6 requires for an empty subject. The gate (pkilint
    X-13) refuses the same certificate with the subjectAltName not critical."""
    issuer, signer = gated
    key = generate_private_key(KeyType.ECDSA_P256).public_key()
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    cert = issuer.issue_tls_server(key, dns, addresses).certificate
    assert signer.calls == 1
    assert cert.subject == x509.Name([])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.DNSName) == dns
    assert san.value.get_values_for_type(x509.IPAddress) == addresses

    not_critical = factory.sign(
        factory.builder_from(cert, replace={x509.SubjectAlternativeName: (san.value, False)}),
        factory.ca().key,
    )
    blocking = issuer.lint(not_critical, profiles.PROFILES["tls-server"])
    assert any("san_extension_not_critical_empty_subject" in b for b in blocking), blocking


def test_a_400_day_profile_is_refused_before_the_ca_key_signs(gated, monkeypatch):
    issuer, signer = gated
    broken = dataclasses.replace(profiles.PROFILES["general"], validity=dt.timedelta(days=400))
    monkeypatch.setitem(profiles.PROFILES, "general", broken)  # type: ignore[index]
    with pytest.raises(CAError) as refused:
        issuer.issue(verify_csr(_csr()), SUBJECT, "general")
    assert refused.value.kind is Kind.LINT
    assert "S-01" in refused.value.message and "400 days" in refused.value.message
    assert signer.calls == 0  # the real CA key never signed


@pytest.mark.parametrize("lint_processes", [0, 1], ids=["in-process", "lint-process"])
def test_the_server_refuses_stores_nothing_and_audits(tmp_path, monkeypatch, lint_processes):
    """Through the server's Authority, as `jitsuin issue` and EST use it; with ``[ca]
    lint_processes = 1`` the drafts are linted in a separate process, which refuses the same."""
    path = configuration.write_default(tmp_path, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    text = path.read_text().replace("\n[ca]\n", f"\n[ca]\nlint_processes = {lint_processes}\n")
    path.write_text(text)
    config = configuration.load(path, tmp_path)
    assert config.ca.lint_processes == lint_processes

    async def run() -> tuple[int, list[str], CAError | None]:
        authority = await Authority.open(config, SystemClock())
        refused = None
        try:
            await authority.issue_personal(_csr(), SUBJECT, "general", actor="test")  # fine
            gate = authority.issuer.lint
            assert isinstance(gate, IssuanceLint) and gate.executor is authority.lint_pool
            if lint_processes:
                # The pool starts its process on the first submission: the gate used it.
                assert authority.lint_pool is not None and len(authority.lint_pool.pids()) == 1
            else:
                assert authority.lint_pool is None
            broken = dataclasses.replace(
                profiles.PROFILES["general"], validity=dt.timedelta(days=400)
            )
            monkeypatch.setitem(profiles.PROFILES, "general", broken)  # type: ignore[index]
            try:
                other = dataclasses.replace(
                    SUBJECT, subscriber_id="app-10", email="other@example.com"
                )
                await authority.issue_personal(_csr(), other, "general", actor="test")
            except CAError as exc:
                refused = exc
            count = await authority.store.count_certificates()
            actions = [e.event.action for e in await authority.store.audit_log(limit=1000)]
        finally:
            await authority.close()
        return count, actions, refused

    count, actions, refused = asyncio.run(run())
    assert refused is not None and refused.kind is Kind.LINT
    assert count == 1  # only the certificate issued before the profile broke
    assert actions.count("certificate.issue") == 1
    assert "certificate.lint_refused" in actions


def test_with_lint_processes_the_gate_finds_and_refuses_the_same(factory):
    """Linted in a lint process, a draft gets the findings the in-process gate gives it, and a
    finding only pkilint makes there (the others suppressed) refuses it."""
    ca = factory.ca()
    profile = profiles.PROFILES["general"]
    draft = factory.variant(factory.leaf(ca=ca), ca.key, drop=[x509.SubjectAlternativeName])
    inline = IssuanceLint(factory.expectations, issuers=[ca.cert]).findings(draft, profile)
    assert any(f.code.startswith("pkilint:") for f in inline)
    assert any(not f.code.startswith("pkilint:") for f in inline)
    ours = {f.code: "test: pkilint alone" for f in inline if not f.code.startswith("pkilint:")}
    pool = LintProcesses(1)
    try:
        split = IssuanceLint(factory.expectations, issuers=[ca.cert], executor=pool)
        assert sorted(split.findings(draft, profile), key=repr) == sorted(inline, key=repr)
        assert len(pool.pids()) == 1
        pkilint_only = IssuanceLint(
            factory.expectations, suppressed=ours, issuers=[ca.cert], executor=pool
        )
        refusal = pkilint_only(draft, profile)
        assert refusal and all("pkilint:" in line for line in refusal)
    finally:
        pool.shutdown()


def test_in_lint_processes_the_incremental_gate_finds_the_same(factory):
    """The lint process keeps the shapes it saw: a second draft of a shape is judged from them
    plus its own values, with the findings the whole linter gives it in this process."""
    ca = factory.ca()
    profile = profiles.PROFILES["general"]
    drafts = [
        factory.variant(factory.leaf(ca=ca, n=n), ca.key, drop=[x509.SubjectAlternativeName])
        for n in (71, 72)
    ]
    inline = IssuanceLint(factory.expectations, issuers=[ca.cert])
    pool = LintProcesses(1)
    try:
        incremental = IssuanceLint(
            factory.expectations, issuers=[ca.cert], executor=pool, incremental=True
        )
        for draft in drafts:
            found = incremental.findings(draft, profile)
            assert sorted(found, key=repr) == sorted(inline.findings(draft, profile), key=repr)
            assert any(f.code.startswith("pkilint:") for f in found)
    finally:
        pool.shutdown()


def test_lint_processes_replace_one_that_died():
    """A ProcessPoolExecutor whose process died stays broken; the server's LintProcesses starts
    new processes on the next submission instead."""
    pool = LintProcesses(1)
    try:
        assert pool.pids() == []  # nothing started before the first lint
        assert pool.submit(pow, 2, 3).result(timeout=60) == 8
        first = pool.pids()
        assert len(first) == 1
        with pytest.raises(BrokenExecutor):  # the process exits under the task: as if killed
            pool.submit(os._exit, 1).result(timeout=60)
        assert pool.submit(pow, 2, 4).result(timeout=60) == 16
        assert len(pool.pids()) == 1 and set(pool.pids()).isdisjoint(first)
    finally:
        pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(pow, 2, 5)


def test_a_lint_that_cannot_run_refuses_and_stores_nothing(tmp_path):
    """A gate whose executor stays broken (the draft linted twice, both processes lost) refuses
    with CAError(LINT_UNAVAILABLE): the draft is never signed without a lint (SBR 4.3.1.2)."""
    path = configuration.write_default(tmp_path, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    config = configuration.load(path, tmp_path)
    broken = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    with pytest.raises(BrokenExecutor):
        broken.submit(os._exit, 1).result(timeout=60)

    async def run() -> tuple[int, CAError]:
        authority = await Authority.open(config, SystemClock())
        try:
            gate = authority.issuer.lint
            assert isinstance(gate, IssuanceLint)
            gate.executor = broken
            with pytest.raises(CAError) as refused:
                await authority.issue_personal(_csr(), SUBJECT, "general", actor="test")
            return await authority.store.count_certificates(), refused.value
        finally:
            await authority.close()
            broken.shutdown()

    count, refused = asyncio.run(run())
    assert refused.kind is Kind.LINT_UNAVAILABLE and "nothing was signed" in refused.message
    assert count == 0


def test_crl_and_ocsp_checks(factory, times):
    ca = factory.ca()
    leaf = factory.leaf()
    now = times["ISSUED_AT"] + dt.timedelta(days=3)
    revoked = [
        Revoked(
            leaf.serial_number,
            now - dt.timedelta(hours=1),
            "keyCompromise",
            leaf.not_valid_after_utc,
        )
    ]
    crl = build_crl(ca.generation, revoked, 7, now)  # the CA's own CRL builder
    assert [f for f in lint_crl(crl, [ca.cert]) if f.counts] == []
    gate = IssuanceLint(factory.expectations, issuers=[ca.cert])
    gate.check_crl(crl)
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca.cert, hashes.SHA1()).build()  # noqa: S303
    cert_id = parse_request(request.public_bytes(serialization.Encoding.DER))
    response = build_response(
        ca.generation, cert_id, "revoked", now, now - dt.timedelta(hours=1), "keyCompromise"
    )
    assert [f for f in lint_ocsp_response(response, [ca.cert]) if f.counts] == []
    gate.check_ocsp_response(response)
    good = build_response(ca.generation, cert_id, "good", now + dt.timedelta(minutes=5))
    with pytest.raises(CAError) as refused:  # "good", but on the CRL just published
        gate.check_ocsp_response(good, crls=[crl])
    assert "R-08" in refused.value.message
    never = build_response(ca.generation, cert_id, "good", now)
    with pytest.raises(CAError) as refused:
        gate.check_ocsp_response(never, issued=lambda ski, serial: False)
    assert "R-08" in refused.value.message
    long_crl = factory.crl(ca, this_update=now, days=15)
    with pytest.raises(CAError) as refused:
        gate.check_crl(long_crl.public_bytes(serialization.Encoding.DER))
    assert "R-02" in refused.value.message

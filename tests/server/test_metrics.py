"""Prometheus metrics (server/metrics.py): a live ``jitsuin serve`` with ``[metrics] listen`` on a
port of its own is exercised through its doors (EST with the mailed PIN, wrong PINs to a lock,
an unknown enrollment ID, ``jitsuin issue`` from the CLI, CRL and OCSP fetches), then /metrics
is fetched with curl and every metric is looked for, with the values the exercise must have
left. The public listeners do not answer /metrics."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from jitsuin.ca.keys import KeyType
from jitsuin.conformance.findings import Finding, Severity
from jitsuin.conformance.gate import _blocking
from jitsuin.server import config as configuration
from jitsuin.server import metrics
from jitsuin.server.config import load
from jitsuin.server.storage import AuditEvent

# Every metric the endpoint exports (counters with their _total suffix).
METRICS = (
    "jitsuin_http_requests_total",
    "jitsuin_http_request_duration_seconds",
    "jitsuin_certificates_issued_total",
    "jitsuin_lint_refusals_total",
    "jitsuin_lint_findings_total",
    "jitsuin_credential_failures_total",
    "jitsuin_credential_locks_total",
    "jitsuin_refusals_total",
    "jitsuin_mail_attempts_total",
    "jitsuin_mail_queue_pending",
    "jitsuin_mail_queue_failed",
    "jitsuin_mail_queue_oldest_age_seconds",
    "jitsuin_crl_age_seconds",
    "jitsuin_crl_next_update_seconds",
    "jitsuin_ocsp_responses_total",
    "jitsuin_ca_validity_left_seconds",
    "jitsuin_ca_issuance_cutoff_seconds",
    "jitsuin_ca_current_generation",
    "jitsuin_db_operation_duration_seconds",
    "jitsuin_audit_checkpoint_seq",
    "jitsuin_audit_checkpoint_age_seconds",
)


def _csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, for every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def _value(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that carry ``labels`` (any other labels too)."""
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if base == name and all(pairs.get(k) == v for k, v in labels.items()):
            total += value
    return total


def test_metrics_endpoint_counts_what_the_server_did(
    live_jitsuin, tmp_path, make_csr, subject_record
):
    port = live_jitsuin.free_port()
    home = tmp_path / "ca"
    toml = f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
    options = {"max_attempts": 2, "attempt_backoff_seconds": 0, "toml": toml}
    with live_jitsuin.server(home, **options) as server:
        url = f"http://127.0.0.1:{port}/metrics"
        assert f"metrics: {url}\n" in (home / "server.log").read_text()
        # Never on the public listeners.
        assert server.fetch("/metrics")[0] == 404
        try:
            urllib.request.urlopen(f"{server.http}/metrics", timeout=30)
            raise AssertionError("the plain-HTTP listener answered /metrics")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404

        # EST pickup with the mailed PIN (door est; the mail queue sent the PIN).
        _, cert, _, _ = server.enrolled(tmp_path / "subscriber")
        # Two wrong PINs lock the credential (max_attempts = 2); the right one is then refused.
        app = server.application()
        for _ in range(2):
            assert server.simpleenroll(app["enrollment_id"], "00000000", _csr())[0] == 401
        assert server.simpleenroll(app["enrollment_id"], app["pin"], _csr())[0] != 200
        # An enrollment ID the CA never gave: a refusal about nobody.
        assert server.simpleenroll("NOPE-NOPE-NOPE", "12345678", _csr())[0] == 401
        # The CLI door.
        csr, record = tmp_path / "cli.csr", tmp_path / "cli.json"
        csr.write_bytes(make_csr(ec.generate_private_key(ec.SECP256R1())))
        record.write_text(json.dumps(subject_record(subscriber_id="cli-1")))
        server.cli("issue", "--csr", str(csr), "--subject", str(record), "--profile", "general")
        # A CRL, and the same OCSP question twice (the second answer comes from the cache).
        with urllib.request.urlopen(f"{server.http}/crl/1.crl", timeout=30) as reply:
            assert reply.status == 200
        ca = server.ca_certificates()[0]
        question = ocsp.OCSPRequestBuilder().add_certificate(cert, ca, hashes.SHA256()).build()
        encoded = base64.b64encode(question.public_bytes(serialization.Encoding.DER)).decode()
        for _ in range(2):
            with urllib.request.urlopen(f"{server.http}/ocsp/{encoded}", timeout=30) as reply:
                assert reply.status == 200

        text = subprocess.run(
            ["curl", "-sS", "--fail", url], capture_output=True, text=True, check=True
        ).stdout

    for name in METRICS:
        assert f"# TYPE {name} " in text, name
    samples = _samples(text)
    assert _value(samples, "jitsuin_http_requests_total", family="est", status="200") >= 1
    assert _value(samples, "jitsuin_http_requests_total", family="est", status="401") >= 3
    assert _value(samples, "jitsuin_http_requests_total", family="ra", status="200") >= 1
    assert _value(samples, "jitsuin_http_requests_total", family="crl", status="200") == 1
    assert _value(samples, "jitsuin_http_request_duration_seconds_count", family="ocsp") == 2
    issued = "jitsuin_certificates_issued_total"
    assert _value(samples, issued, profile="general", door="est") == 1
    assert _value(samples, issued, profile="general", door="cli") == 1
    failures = "jitsuin_credential_failures_total"
    assert _value(samples, failures, credential="pin", outcome="wrong") == 2
    assert _value(samples, failures, credential="pin", outcome="locked") == 1
    assert _value(samples, "jitsuin_credential_locks_total", credential="pin") == 1
    assert _value(samples, "jitsuin_refusals_total") >= 1
    assert _value(samples, "jitsuin_mail_attempts_total", status="sent") >= 2
    assert _value(samples, "jitsuin_mail_queue_pending") == 0
    assert _value(samples, "jitsuin_mail_queue_failed") == 0
    assert 0 <= _value(samples, "jitsuin_crl_age_seconds", generation="1") < 3600
    assert _value(samples, "jitsuin_crl_next_update_seconds", generation="1") > 86400
    assert _value(samples, "jitsuin_ocsp_responses_total", cache="hit") == 1
    assert _value(samples, "jitsuin_ocsp_responses_total", cache="miss") == 1
    left = _value(samples, "jitsuin_ca_validity_left_seconds", generation="1")
    cutoff = _value(samples, "jitsuin_ca_issuance_cutoff_seconds", generation="1")
    assert 0 < cutoff < left
    assert _value(samples, "jitsuin_ca_current_generation") == 1
    db = "jitsuin_db_operation_duration_seconds_count"
    assert _value(samples, db, operation="try_credential") >= 4
    # serve wrote a checkpoint of the head at its start (server/checkpoints.py)
    assert _value(samples, "jitsuin_audit_checkpoint_seq") >= 1


def test_metrics_listener_can_be_turned_off(tmp_path):
    """``[metrics] listen = ""``: no listener, and serve says so."""
    home = tmp_path / "ca"
    path = configuration.write_default(home, KeyType.ECDSA_P256, "CN=x")
    path.write_text(path.read_text() + '\n[metrics]\nlisten = ""\n')
    assert load(path, home).metrics.listen is None
    path.write_text(path.read_text().replace('listen = ""', 'listen = "nowhere"'))
    try:
        load(path, home)
        raise AssertionError("a bad [metrics] listen was taken")
    except configuration.ConfigError as exc:
        assert any(e.startswith("metrics.listen:") for e in exc.errors), exc.errors


def test_the_alert_rules_name_only_metrics_the_server_exports():
    """contrib/prometheus/jitsuin-alerts.yml (docs/operations.md) stays in step with METRICS."""
    rules = Path(__file__).resolve().parents[2] / "contrib" / "prometheus" / "jitsuin-alerts.yml"
    expressions = re.findall(r"^\s*expr: (.+)$", rules.read_text(), re.MULTILINE)
    assert len(expressions) >= 10
    named = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for expr in expressions
        for name in re.findall(r"\bjitsuin_\w+", expr)
    }
    assert named and named <= set(METRICS), named - set(METRICS)


def test_lint_refusals_are_counted_by_rule():
    """A lint refusal's audit entry (server/authority.py) counts once per profile and once per
    blocking finding's rule, read from the gate's own message (conformance/gate.py)."""
    findings = [
        Finding("C-07", Severity.ERROR, "C-07", "no policy: the CP OID is missing; see 7.1"),
        Finding("pkilint", Severity.WARNING, "cabf.smime.x", "a: b; c"),
        Finding("C-09", Severity.NOTICE, "C-09", "below the threshold"),
    ]
    message = "the pre-issuance lint refused the certificate: " + "; ".join(
        _blocking(findings, Severity.WARNING)
    )
    counters = {rule: metrics.LINT_FINDINGS.labels(rule) for rule in ("C-07", "pkilint", "C-09")}
    before = {rule: counter._value.get() for rule, counter in counters.items()}
    refusals = metrics.LINT_REFUSALS.labels("general")
    refused_before = refusals._value.get()
    event = AuditEvent(
        dt.datetime.now(dt.UTC),
        "system",
        "certificate.lint_refused",
        "subscriber/x",
        {"profile": "general", "findings": message},
    )
    metrics._after_append_audit({"event": event}, None)
    assert refusals._value.get() == refused_before + 1
    after = {rule: counter._value.get() for rule, counter in counters.items()}
    assert after == {
        "C-07": before["C-07"] + 1,
        "pkilint": before["pkilint"] + 1,
        "C-09": before["C-09"],
    }


def test_workers_share_one_metrics_endpoint(postgres_schema, tmp_path, free_port, write_home):
    """``serve --workers 2``: the parent serves /metrics with the workers' counts summed
    (multiprocess mode), so every request either worker answered is counted once."""
    home, http, port = tmp_path / "home", free_port(), free_port()
    path = write_home(home, http_port=http, https_port=free_port())
    text = path.read_text().replace("sqlite:///jitsuin.db", postgres_schema.url)
    path.write_text(text + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    server = subprocess.Popen(
        [sys.executable, "-m", "jitsuin.server", "--home", str(home), "serve", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=10):
                    pass
                before = _metrics_text(port)
                if before is not None:
                    break
            except OSError:
                assert server.poll() is None
                time.sleep(0.1)
        for _ in range(60):  # a connection each: the kernel spreads them over both workers
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=10):
                pass
        after = _metrics_text(port)
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert f"metrics: http://127.0.0.1:{port}/metrics\n" in output
    assert before is not None and after is not None
    health = "jitsuin_http_requests_total"
    counted = _value(_samples(after), health, family="health")
    assert counted - _value(_samples(before), health, family="health") == 60
    samples = _samples(after)
    assert _value(samples, "jitsuin_ca_current_generation") == 1
    assert _value(samples, "jitsuin_ca_validity_left_seconds", generation="1") > 0


def _metrics_text(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            return reply.read().decode()
    except OSError:
        return None

"""Prometheus metrics on a listener of their own (``[metrics] listen``, loopback by default).

The public listeners never answer /metrics: the counts of PIN failures, locks and refusals are
for the operator, not for anyone on the network.

Events are counted where they happen, in the process that handles them: HTTP requests by the
outermost middleware (``observe`` in server/middlewares.py, which times each request once for
this and the access log); issuance, lint refusals, credential failures and locks, mail
attempts and the latency of every store call by wrapping the store's methods
(``instrument_store``), so that no service has to know about metrics; refusals by
server/refusals.py; OCSP cache hits by the authority. State (the mail queue, CRL ages, how long
each CA generation has left) is read from the store when Prometheus scrapes, by the process that
serves /metrics: it is the same in every process.

``serve --workers N``: the workers share one metrics endpoint, served by the supervising parent.
The parent gives every worker ``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory of its own), each
worker's counters and histograms go to files there, and the parent sums them on each scrape
(prometheus_client's multiprocess mode). One scrape target per server, however many workers,
and a worker restarted by the supervisor keeps its predecessor's counts (its files stay): the
counters never go backwards. Per-worker ports were the other choice; they would need N scrape
targets that change with ``--workers`` and lose a restarted worker's counts.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import inspect
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from jitsuin.server import checkpoints, logging_json
from jitsuin.server.config import Listen
from jitsuin.server.storage import AuditChainBroken

log = logging.getLogger("jitsuin.metrics")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
disable_created_metrics()  # no *_created series: the process start time says as much

# -- events, counted where they happen ------------------------------------------------------------
REQUESTS = Counter(
    "jitsuin_http_requests",
    "HTTP requests answered, by route family (the first segment of the matched route) and status",
    ["family", "status"],
)
REQUEST_SECONDS = Histogram(
    "jitsuin_http_request_duration_seconds", "Time to answer an HTTP request", ["family"]
)
ISSUED = Counter(
    "jitsuin_certificates_issued",
    "Certificates issued and recorded, by profile and door (est, browser, acme, cli, system)",
    ["profile", "door"],
)
LINT_REFUSALS = Counter(
    "jitsuin_lint_refusals", "Drafts the pre-issuance lint refused, by profile", ["profile"]
)
LINT_FINDINGS = Counter(
    "jitsuin_lint_findings", "Blocking findings of the drafts the lint refused, by rule", ["rule"]
)
CREDENTIAL_FAILURES = Counter(
    "jitsuin_credential_failures",
    "Tries of an applicant's access code, PIN or ACME EAB key that were not right: wrong "
    "(compared), locked or throttled (refused uncompared)",
    ["credential", "outcome"],
)
CREDENTIAL_LOCKS = Counter(
    "jitsuin_credential_locks",
    "Credentials locked by their last allowed wrong try (until the CA sends a new one)",
    ["credential"],
)
REFUSALS = Counter(
    "jitsuin_refusals",
    "Refusals about no known application (unknown enrollment ID or EAB kid, missing "
    "credential, ...; server/refusals.py), by kind",
    ["kind"],
)
MAIL_ATTEMPTS = Counter(
    "jitsuin_mail_attempts", "Send attempts of the mail queue, by the status they left", ["status"]
)
OCSP_RESPONSES = Counter(
    "jitsuin_ocsp_responses", "OCSP responses by signed-answer cache use (hit, miss)", ["cache"]
)
DB_SECONDS = Histogram(
    "jitsuin_db_operation_duration_seconds",
    "Time of one store operation (a transaction or query), by operation",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# The door of the request being handled, when the route alone does not tell it: a browser's
# pickup page enrolls over EST, and says so with its Fetch Metadata (Sec-Fetch-Mode), which EST
# clients do not send.
_BROWSER = contextvars.ContextVar("jitsuin_metrics_browser", default=False)


def _family(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None or request.match_info.http_exception is not None:  # 404, 405
        return "unmatched"
    path = resource.canonical
    if path.startswith("/.well-known/est"):
        return "est"
    return path.strip("/").split("/", 1)[0] or "root"


def request_started(request: web.Request) -> None:
    """Called by ``server/middlewares.py``'s ``observe`` as a request arrives."""
    _BROWSER.set("sec-fetch-mode" in request.headers)


def request_answered(request: web.Request, status: int, seconds: float) -> None:
    """Count every answer by route family and status (``observe``, the outermost middleware,
    calls this once it is answered)."""
    family = _family(request)
    REQUESTS.labels(family, str(status)).inc()
    REQUEST_SECONDS.labels(family).observe(seconds)


def door(actor: str) -> str:
    """The door a certificate left by, from the audit actor of its issuance."""
    kind, _, rest = actor.partition(":")
    channel = rest.rpartition(":")[2] if kind == "applicant" else ""
    if kind == "acme" or channel == "acme":
        return "acme"
    if channel == "est" or kind == "subscriber":  # subscriber: EST re-enrollment
        return "browser" if _BROWSER.get() else "est"
    if kind in ("cli", "system"):
        return kind
    return "other"


# "RULE SEVERITY[ CODE]: message" per blocking finding (conformance/gate.py), "; " between them.
_FINDING = re.compile(r"(?:^|: |; )([A-Za-z][\w.-]{0,60}) (?:INFO|NOTICE|WARNING|ERROR|FATAL)\b")


def _rules(findings: str) -> list[str]:
    return _FINDING.findall(findings)


# -- the store, wrapped ---------------------------------------------------------------------------
def _after_try_credential(arguments: dict[str, Any], attempt: Any) -> None:
    outcome = attempt.outcome.value
    if outcome == "right":
        return
    credential = arguments["credential"].name.lower()
    CREDENTIAL_FAILURES.labels(credential, outcome).inc()
    if outcome == "wrong" and attempt.wrong >= arguments["policy"].limit:
        CREDENTIAL_LOCKS.labels(credential).inc()


def _after_issue(arguments: dict[str, Any], _result: Any) -> None:
    record = arguments.get("certificate") or arguments.get("record")
    where = door(getattr(arguments.get("audit"), "actor", ""))
    if record is not None and where != "cli":  # State counts those from the audit log
        ISSUED.labels(record.profile, where).inc()


def _after_append_audit(arguments: dict[str, Any], _result: Any) -> None:
    event = arguments["event"]
    if event.action == "certificate.lint_refused":
        LINT_REFUSALS.labels(str(event.details.get("profile"))).inc()
        for rule in _rules(str(event.details.get("findings", ""))):
            LINT_FINDINGS.labels(rule).inc()


def _after_mark_mail(arguments: dict[str, Any], _result: Any) -> None:
    MAIL_ATTEMPTS.labels(arguments["status"]).inc()


_AFTER: dict[str, Callable[[dict[str, Any], Any], None]] = {
    "try_credential": _after_try_credential,
    "record_certificate": _after_issue,
    "redeem_application": _after_issue,
    "complete_reenrollment": _after_issue,
    "acme_issue_order": _after_issue,
    "append_audit": _after_append_audit,
    "mark_mail": _after_mark_mail,
}


def instrument_store(store: Any) -> None:
    """Time every coroutine method of ``store`` (DB latency by operation) and count the events
    its calls record (see ``_AFTER``). Idempotent."""
    if getattr(store, "_jitsuin_metrics", False):
        return
    for name in dir(type(store)):
        method = getattr(store, name, None)
        if name.startswith("_") or not inspect.iscoroutinefunction(method):
            continue
        setattr(store, name, _timed(name, method))
    store._jitsuin_metrics = True


def _timed(name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    after = _AFTER.get(name)
    signature = inspect.signature(method)
    # The actor of an audit entry is the actor of the request that appends it (the log's).
    audited = next((p for p in ("audit", "event") if p in signature.parameters), None)
    histogram = DB_SECONDS.labels(name)

    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await method(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - started)
        if after is None and audited is None:
            return result
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        actor = getattr(bound.arguments.get(audited or ""), "actor", None)
        if isinstance(actor, str) and logging_json.REQUEST_ID.get() is not None:
            logging_json.ACTOR.set(actor)
        if after is not None:
            try:
                after(bound.arguments, result)
            except Exception:  # a count must never fail the operation it counts
                log.exception("counting %s failed", name)
        return result

    return timed


# -- state, read when Prometheus scrapes ----------------------------------------------------------
MAIL_SCAN = 100_000  # queued mails read per scrape, at most


class State:
    """A collector of gauges read from the store by ``refresh`` just before each scrape."""

    def __init__(self) -> None:
        self.families: list[Metric] = []
        # Certificates issued by `jitsuin issue` (a process of its own, with no listener), by
        # profile: counted from the audit log, read on from ``audit_seq`` at each scrape.
        self.cli_issued: dict[str, int] = {}
        self.audit_seq = 0

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return list(self.families)

    async def refresh(self, authority: Any) -> None:
        await authority.refresh()  # a rollover by another process
        now: dt.datetime = authority.clock.now()
        store = authority.store
        families: list[Metric] = []
        while entries := await store.audit_log(self.audit_seq, limit=1000):
            for entry in entries:
                event = entry.event
                if event.action == "certificate.issue" and door(event.actor) == "cli":
                    profile = str(event.details.get("profile"))
                    self.cli_issued[profile] = self.cli_issued.get(profile, 0) + 1
            self.audit_seq = entries[-1].seq
        queue = {s: await store.mail(s, limit=MAIL_SCAN) for s in ("pending", "failed")}
        families.append(
            _gauge("jitsuin_mail_queue_pending", "Mails waiting to be sent", len(queue["pending"]))
        )
        families.append(
            _gauge(
                "jitsuin_mail_queue_failed",
                "Mails that failed for good (until an operator retries them)",
                len(queue["failed"]),
            )
        )
        oldest = min((m.created_at for m in queue["pending"]), default=None)
        families.append(
            _gauge(
                "jitsuin_mail_queue_oldest_age_seconds",
                "Age of the oldest pending mail (0 when none is pending)",
                (now - oldest).total_seconds() if oldest else 0.0,
            )
        )
        crl_age = GaugeMetricFamily(
            "jitsuin_crl_age_seconds", "Age of the newest CRL (thisUpdate)", labels=["generation"]
        )
        crl_next = GaugeMetricFamily(
            "jitsuin_crl_next_update_seconds",
            "Time to the newest CRL's nextUpdate (negative: past)",
            labels=["generation"],
        )
        validity = GaugeMetricFamily(
            "jitsuin_ca_validity_left_seconds",
            "Time to the CA generation's notAfter",
            labels=["generation"],
        )
        cutoff = GaugeMetricFamily(
            "jitsuin_ca_issuance_cutoff_seconds",
            "Time to the generation's issuance cut-off (SEED-R15: roll over before it)",
            labels=["generation"],
        )
        margin = authority.config.ca.cutoff_margin
        for generation in authority.generations:
            label = [str(generation.number)]
            crl = await store.latest_crl(generation.number)
            if crl is not None:
                crl_age.add_metric(label, (now - crl.this_update).total_seconds())
                crl_next.add_metric(label, (crl.next_update - now).total_seconds())
            validity.add_metric(label, (generation.not_after - now).total_seconds())
            cutoff.add_metric(label, (generation.issuance_cutoff(margin) - now).total_seconds())
        current = _gauge(
            "jitsuin_ca_current_generation",
            "The number of the generation that issues now",
            authority.current.number,
        )
        families += [crl_age, crl_next, validity, cutoff, current]
        try:
            checkpoint = checkpoints.newest(authority.config.home)
            seq = checkpoint.seq if checkpoint else 0
        except AuditChainBroken as exc:  # said by the gauge (-1) and the log, not a failed scrape
            log.warning("metrics: %s", exc)
            checkpoint, seq = None, -1
        families.append(
            _gauge(
                "jitsuin_audit_checkpoint_seq",
                "The audit log entry of the newest signed checkpoint (server/checkpoints.py); "
                "-1: its newest checkpoint does not verify",
                seq,
            )
        )
        families.append(
            _gauge(
                "jitsuin_audit_checkpoint_age_seconds",
                "Age of the newest signed audit checkpoint (0 when there is none)",
                (now - checkpoint.at).total_seconds() if checkpoint else 0.0,
            )
        )
        self.families = families


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


# -- the listener ---------------------------------------------------------------------------------
def registry() -> CollectorRegistry:
    """This process's counters, or, under ``serve --workers N``, every worker's, summed."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if not directory:
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined, path=directory)
    return combined


class _Exposition:
    """The registry's metrics, with the certificates `jitsuin issue` recorded added to
    ``jitsuin_certificates_issued_total`` as door "cli"."""

    def __init__(self, registry: CollectorRegistry, state: State) -> None:
        self.registry = registry
        self.state = state

    def collect(self) -> Iterable[Metric]:
        issued = None
        for metric in self.registry.collect():
            if metric.name == "jitsuin_certificates_issued":
                issued = metric
            else:
                yield metric
        if issued is None:
            issued = CounterMetricFamily(
                "jitsuin_certificates_issued", ISSUED._documentation, labels=["profile", "door"]
            )
        for profile, count in sorted(self.state.cli_issued.items()):
            labels = {"profile": profile, "door": "cli"}
            issued.add_sample("jitsuin_certificates_issued_total", labels, count)
        yield issued


class Endpoint:
    """The /metrics listener: ``start`` returns its URL, or None when ``[metrics] listen`` is
    off or cannot be bound (a warning: a taken monitoring port does not stop the CA; Prometheus
    alerts on the target being down)."""

    def __init__(self, authority: Any, listen: Listen | None) -> None:
        self.authority = authority
        self.listen = listen
        self.state = State()
        self.registry = registry()
        self.runner: web.AppRunner | None = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        await self.state.refresh(self.authority)
        body = generate_latest(_Exposition(self.registry, self.state))  # type: ignore[arg-type]
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> str | None:
        if self.listen is None:
            return None
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.listen.host, self.listen.port).start()
        except OSError as exc:
            await runner.cleanup()
            log.warning("metrics: cannot listen on %s (%s): not served", self.listen, exc.strerror)
            return None
        self.registry.register(self.state)
        self.runner = runner
        return f"http://{self.listen}/metrics"

    async def move(self, listen: Listen | None) -> str | None:
        """Listen on ``listen`` instead (SIGHUP, server/reload.py)."""
        await self.stop()
        self.listen = listen
        return await self.start()

    async def stop(self) -> None:
        if self.runner is not None:
            self.registry.unregister(self.state)
            await self.runner.cleanup()
            self.runner = None

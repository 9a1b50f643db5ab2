"""The pre-issuance gate as the server wires it: the lint processes it may run in
(``[ca] lint_processes``) and the gate each generation's issuer is given. Everything the server
decides about linting a draft, CRL or OCSP response before signing or publishing it is here;
the rules themselves are in conformance/."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import threading
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from jitsuin.ca.clock import Clock
from jitsuin.ca.generations import CAGeneration
from jitsuin.ca.issuance import Issuer
from jitsuin.conformance.documents import Expectations
from jitsuin.conformance.gate import IssuanceLint
from jitsuin.server.config import Config


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


def lint_processes(config: Config) -> LintProcesses | None:
    """The lint processes ``[ca] lint_processes`` asks for; None for 0 (lint in the issuing
    thread)."""
    if config.ca.lint_processes == 0:
        return None
    return LintProcesses(config.ca.lint_processes)


def issuer_for(
    config: Config, generation: CAGeneration, clock: Clock, pool: Executor | None
) -> Issuer:
    """The issuer of ``generation``, its drafts checked by the gate (linted in ``pool``, or in
    the issuing thread when None) before the CA key signs them."""
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

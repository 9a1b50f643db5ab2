"""``jitsuin serve``: one server process with its listeners, or the supervising parent of
``serve --workers N`` (server/workers.py). The command's options are read in server/__main__.py."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

from aiohttp import web

from jitsuin.ca.clock import SystemClock
from jitsuin.server import checkpoints, metrics, reload, workers
from jitsuin.server.app import create_app, create_public_app
from jitsuin.server.authority import Authority
from jitsuin.server.cli_errors import CLIError
from jitsuin.server.config import Config
from jitsuin.server.connections import Listener, allow_file_descriptors, give_back_memory
from jitsuin.server.fingerprint import colon_fingerprint
from jitsuin.server.tls_context import https_context


def describe(config: Config, authority: Authority) -> None:
    current = authority.current
    print(f"data directory: {config.home}")
    print(f"CA generation {current.number}: {current.certificate.subject.rfc4514_string()}")
    print(f"  valid {current.not_before.isoformat()} to {current.not_after.isoformat()}")
    print(f"  SHA-256 {colon_fingerprint(current.certificate)}")


async def serve_one(config: Config, inherited: dict[str, socket.socket]) -> int:
    """One server process: the listeners (inherited from ``serve --workers N``'s parent, or its
    own) until SIGINT or SIGTERM."""
    authority = await Authority.open(config, SystemClock())
    metrics.instrument_store(authority.store)
    # A worker's counts reach /metrics through the parent (server/metrics.py).
    endpoint = metrics.Endpoint(authority, None if inherited else config.metrics.listen)
    runners: list[web.AppRunner] = []
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    try:
        server = config.server
        # No access log on the public listener: CRL/OCSP/AIA fetches are high-volume and carry
        # no personal data; the HTTPS listener keeps its access log.
        # aiohttp's keep-alive timer is the request head deadline (server/connections.py).
        head = config.http.request_head_timeout
        public = web.AppRunner(
            create_public_app(authority), access_log=None, keepalive_timeout=head
        )
        await public.setup()
        runners.append(public)
        sites = [Listener(public, server.http, inherited.get("http"), config.http)]
        if server.https is not None:
            context, follow = await https_context(authority)
            tasks.append(asyncio.create_task(follow))
            # Its access log is server/logging_json.py's: route templates, never paths as sent.
            full = web.AppRunner(create_app(authority), access_log=None, keepalive_timeout=head)
            await full.setup()
            runners.append(full)
            https = inherited.get("https")
            sites.append(Listener(full, server.https, https, config.http, context))
        allow_file_descriptors(config.http, len(sites))
        for site in sites:
            await site.start()
        # What start-up built and dropped (the first lint's imports, a new CA's keys and TLS
        # certificate) goes back to the system before the first request, not at the next trim.
        gc.collect()
        give_back_memory()
        # A rollover by `jitsuin ca rollover` or another worker reaches this process too.
        tasks.append(asyncio.create_task(authority.follow_rollovers()))
        if not inherited:  # under serve --workers N, the parent writes them
            tasks.append(asyncio.create_task(checkpoints.follow(authority)))
        follow = reload.follow_sighup(
            config, None if inherited else endpoint, with_pid=bool(inherited)
        )
        tasks.append(asyncio.create_task(follow))
        if inherited:  # a worker of `serve --workers N`: the parent has said where everything is
            tasks.append(asyncio.create_task(workers.watch_parent(stop)))
            logging.getLogger("jitsuin.workers").info("worker %d serving", os.getpid())
            await _wait_for_signal(stop)
            return 0
        describe(config, authority)
        base = server.public_http_url
        print(f"CA certificate: {base}/ca.crt (DER)  {base}/ca.pem (PEM)")
        print(f"health: {base}/health")
        if server.https is not None:
            print(f"HTTPS (enrollment): {server.public_https_url}/")
        _print_metrics(await endpoint.start())
        for warning in [authority.rollover_warning(), *config.warnings()]:
            if warning:
                logging.getLogger("jitsuin.ca").warning(warning)
                print(f"WARNING: {warning}")
        print("press Ctrl-C to stop", flush=True)
        await _wait_for_signal(stop)
    finally:
        for task in tasks:
            task.cancel()
        await endpoint.stop()
        for runner in reversed(runners):
            await runner.cleanup()
        await authority.close()
    return 0


def _print_metrics(url: str | None) -> None:
    print(f"metrics: {url}" if url else "metrics: not served (see [metrics] listen)")


async def _wait_for_signal(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_workers(config: Config, count: int, home: Path) -> int:
    """The supervising parent of ``serve --workers N`` (server/workers.py): the CA, migrations
    and the HTTPS certificate are made here once, then N workers accept on sockets
    of their own bound to the same addresses (SO_REUSEPORT; server/workers.py)."""
    authority = await Authority.open(config, SystemClock())
    try:
        if config.server.https is not None:
            await authority.tls_files()  # made once here, not raced by the workers
        describe(config, authority)
    except BaseException:
        await authority.close()
        raise
    listens = {"http": config.server.http, "https": config.server.https}
    sockets: dict[str, list[socket.socket]] = {}
    # The workers' counters, summed by this process's /metrics (server/metrics.py).
    counts = tempfile.TemporaryDirectory(prefix="jitsuin-metrics-")
    os.environ[metrics.MULTIPROCESS_ENV] = counts.name
    endpoint = metrics.Endpoint(authority, config.metrics.listen)
    try:
        for name, listen in listens.items():
            if listen is not None:
                try:
                    sockets[name] = workers.bind(listen, count)
                except OSError as exc:
                    raise CLIError(f"cannot listen on {listen}: {exc.strerror}") from exc
        base = config.server.public_http_url
        print(f"CA certificate: {base}/ca.crt (DER)  {base}/ca.pem (PEM)")
        print(f"health: {base}/health")
        if config.server.https is not None:
            print(f"HTTPS (enrollment): {config.server.public_https_url}/")
        _print_metrics(await endpoint.start())
        for warning in config.warnings():
            logging.getLogger("jitsuin.ca").warning(warning)
            print(f"WARNING: {warning}")
        print(f"{count} worker processes; press Ctrl-C to stop", flush=True)
        command = [sys.executable, "-m", "jitsuin.server", "--home", str(home)]
        if config.source is not None:
            command += ["--config", str(config.source)]
        supervisor = workers.Supervisor([*command, "serve"], sockets)
        follow = [
            asyncio.create_task(
                reload.follow_sighup(config, endpoint, forward=supervisor.signal_all)
            ),
            asyncio.create_task(checkpoints.follow(authority)),
        ]
        try:
            return await supervisor.run()
        finally:
            for task in follow:
                task.cancel()
    finally:
        for own in sockets.values():
            for sock in own:
                sock.close()
        await endpoint.stop()
        await authority.close()
        counts.cleanup()

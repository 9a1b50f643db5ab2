"""SIGHUP: ``jitsuin serve`` reads its configuration file again and applies what it can change
safely while it serves (``systemctl reload jitsuin``):

- ``[log] format``: the log handler is replaced; records from then on are in the new format;
- ``[metrics] listen``: the metrics listener moves to the new address (or stops, for "").

Everything else needs a restart, and a reload that changes it says so in the log (at WARNING)
and changes nothing of it: the CA's keys and policy, the listeners and their TLS settings, the
database, the RA's limits and the mail relay are read once at start, by objects that serving
requests rely on not to change under them. A configuration that no longer loads is logged and
ignored; the running one stays. Under ``serve --workers N`` the parent applies the change and
passes the signal on to every worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Callable
from typing import Any

from jitsuin.server import config as configuration
from jitsuin.server import logging_json
from jitsuin.server.config import Config, ConfigError

log = logging.getLogger("jitsuin.reload")

RELOADABLE = ("log", "metrics")


async def reload(current: Config, endpoint: Any, *, with_pid: bool = False) -> Config:
    """Apply the configuration file as it is now; return the configuration in force."""
    try:
        new = configuration.load(current.source, current.home)
    except ConfigError as exc:
        log.error("SIGHUP: the configuration does not load, nothing changed: %s", exc.errors)
        return current
    fixed = [
        f.name
        for f in dataclasses.fields(Config)
        if f.name not in RELOADABLE and getattr(new, f.name) != getattr(current, f.name)
    ]
    if new.log != current.log:
        logging_json.configure(new.log.format, with_pid=with_pid)
        log.info("SIGHUP: [log] format = %s", new.log.format)
    if fixed:
        log.warning(
            "SIGHUP: changed settings that need a restart were left as they were: %s",
            ", ".join(sorted(fixed)),
        )
    if new.metrics != current.metrics and endpoint is not None:
        url = await endpoint.move(new.metrics.listen)
        log.info("SIGHUP: metrics %s", url or "not served")
    applied = {name: getattr(new, name) for name in RELOADABLE}
    return dataclasses.replace(current, **applied)


async def follow_sighup(
    config: Config,
    endpoint: Any,
    *,
    with_pid: bool = False,
    forward: Callable[[], None] | None = None,
) -> None:
    """Run forever: on each SIGHUP, ``reload``, then ``forward`` (the workers' parent passes the
    signal on)."""
    hup = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, hup.set)
    while True:
        await hup.wait()
        hup.clear()
        config = await reload(config, endpoint, with_pid=with_pid)
        if forward is not None:
            forward()

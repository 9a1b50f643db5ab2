"""``jitsuin serve --workers N``: N server processes sharing one PostgreSQL store and the same
listening sockets.

The parent opens the CA once (migrations, generation 1 on first start, the HTTPS certificate),
binds the listeners, and starts N children (``python -m jitsuin.server ... serve
--worker-sockets http=FD,https=FD``) that inherit bound sockets and accept on them. Each child
has a listening socket of its own on each address, all bound with SO_REUSEPORT (Linux ≥ 3.9), so
that the kernel spreads new connections evenly over the children by a hash of the connection;
with one shared socket, whichever child happened to be waiting in accept() took them all. A
restarted child gets its predecessor's sockets: the parent keeps them open, so connections that
arrive meanwhile wait in that socket's backlog. Every child has its own Authority, store pool
and mail worker; everything they must agree on lives in the store (see storage/postgres.py).

The parent only supervises: SIGINT or SIGTERM stops every child (SIGTERM, then SIGKILL after
``STOP_SECONDS``); a child that exits on its own is started again, unless it died within
``CRASH_SECONDS`` of starting, which stops the whole server (a configuration or database problem
would only loop). A child whose parent is gone (killed with SIGKILL) stops by itself.

SQLite is refused with more than one worker: its single writer lock would serialize every
process on one file, with ``busy_timeout`` errors under load, for no gain.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

from jitsuin.server.config import Config, Listen

log = logging.getLogger("jitsuin.workers")

WORKER_SOCKETS = "--worker-sockets"
PARENT_ENV = "JITSUIN_WORKER_PARENT"  # the supervisor's pid, as the worker was started
CRASH_SECONDS = 10.0
STOP_SECONDS = 15.0
PARENT_CHECK_SECONDS = 1.0


def refusal(dialect: str, workers: int) -> str | None:
    """Why ``workers`` processes cannot share this store, or None."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers > 1 and dialect != "postgresql":
        return (
            f"--workers {workers} needs a PostgreSQL store: several processes would serialize on "
            'the one SQLite file. Set database_url = "postgresql://USER@HOST/DATABASE" in the '
            "configuration, or run one process (--workers 1)."
        )
    return None


class StoreInUse(Exception):
    """Another ``jitsuin serve`` is running on this SQLite store."""


@contextlib.contextmanager
def sole_server(config: Config) -> Iterator[None]:
    """On SQLite, make this process the only ``jitsuin serve`` on the store file while the block
    runs: the store keeps its ACME nonces in the serving process (storage/sqlite.py), and the
    file's one writer lock would serialize several processes anyway (PostgreSQL is for several).
    An exclusive ``flock`` on ``<database>.serve-lock``, which the kernel releases when the
    process ends, however it ends; the file names the holder. Raises ``StoreInUse``. The CLI's
    other commands (``jitsuin ra``, ``ca rollover``, ...) do not take it."""
    if config.database_dialect != "sqlite":
        yield
        return
    path = config.database_path.with_name(config.database_path.name + ".serve-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise StoreInUse(
                f"jitsuin serve (pid {holder}) is already running on {config.database_path}: "
                "one server process per SQLite store. Stop it, or for several processes use "
                'PostgreSQL (database_url = "postgresql://USER@HOST/DATABASE", serve --workers N).'
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def bind(listen: Listen, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``listen``, one per child (SO_REUSEADDR, as aiohttp's own
    sites, and SO_REUSEPORT: the kernel balances connections across them). With port 0 the
    first picks the port and the others join it."""
    family, _, _, _, address = socket.getaddrinfo(
        listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_server(address, family=family, backlog=1024, reuse_port=True)
            sock.set_inheritable(True)
            sockets.append(sock)
            address = sock.getsockname()
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def sockets_argument(sockets: dict[str, socket.socket]) -> str:
    return ",".join(f"{name}={sock.fileno()}" for name, sock in sockets.items())


def inherited_sockets(argument: str | None) -> dict[str, socket.socket]:
    """The sockets a worker was started with: ``http=5,https=6`` -> {name: socket}."""
    if not argument:
        return {}
    found = {}
    for item in argument.split(","):
        name, _, fd = item.partition("=")
        found[name] = socket.socket(fileno=int(fd))
    return found


async def watch_parent(stop: asyncio.Event) -> None:
    """Set ``stop`` when the supervisor is gone (this process was handed to another parent),
    even if that happened while this worker was still starting."""
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    log.warning("the supervising process %d is gone: stopping", parent)
    stop.set()


class Supervisor:
    def __init__(self, command: Sequence[str], sockets: dict[str, list[socket.socket]]):
        """``sockets``: for each listener name, one bound socket per child."""
        self.command = list(command)
        self.sockets = [
            {name: own[index] for name, own in sockets.items()}
            for index in range(len(next(iter(sockets.values()))))
        ]
        self.count = len(self.sockets)
        self.children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}

    def _start(self, index: int) -> None:
        own = self.sockets[index - 1]
        child = subprocess.Popen(
            [*self.command, WORKER_SOCKETS, sockets_argument(own)],
            pass_fds=[sock.fileno() for sock in own.values()],
            stdin=subprocess.DEVNULL,
            env={**os.environ, PARENT_ENV: str(os.getpid())},
        )
        self.children[index] = (child, time.monotonic())
        log.info("worker %d started (pid %d)", index, child.pid)

    async def run(self) -> int:
        """Start the workers and keep them running until SIGINT/SIGTERM; 0, or 1 when a worker
        kept failing to start."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        failure = None
        try:
            for index in range(1, self.count + 1):
                self._start(index)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                for index, (child, started) in list(self.children.items()):
                    code = child.poll()
                    if code is None or stop.is_set():
                        continue
                    if time.monotonic() - started < CRASH_SECONDS:
                        failure = (
                            f"worker {index} (pid {child.pid}) exited with status {code} within "
                            f"{CRASH_SECONDS:.0f} s of starting: stopping the server"
                        )
                        stop.set()
                        break
                    log.warning(
                        "worker %d (pid %d) exited with %d: restarting", index, child.pid, code
                    )
                    self._start(index)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()
        if failure:
            print(f"jitsuin: {failure}", file=sys.stderr)
            return 1
        return 0

    def signal_all(self, sig: int = signal.SIGHUP) -> None:
        """Pass ``sig`` on to every running child (SIGHUP: reload, server/reload.py)."""
        for child, _ in self.children.values():
            if child.poll() is None:
                child.send_signal(sig)

    async def stop(self) -> None:
        """SIGTERM to every child; SIGKILL to any still running after STOP_SECONDS."""
        for child, _ in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and any(
            child.poll() is None for child, _ in self.children.values()
        ):
            await asyncio.sleep(0.05)
        for index, (child, _) in self.children.items():
            if child.poll() is None:
                log.warning("worker %d (pid %d) did not stop: killing it", index, child.pid)
                child.kill()
                child.wait()

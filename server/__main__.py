"""The ``jitsuin`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import getpass
import json
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from asn1crypto import pem as asn1_pem
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from jitsuin.ca.clock import SystemClock
from jitsuin.ca.errors import CAError
from jitsuin.ca.generations import issuance_cutoff
from jitsuin.ca.keys import CA_KEY_TYPES, KeyType
from jitsuin.ca.revocation import Reason
from jitsuin.ca.subject import VettedSubject
from jitsuin.ca.verify import (
    DEFAULT_PURPOSE,
    PURPOSES,
    Verdict,
    purpose_problem,
    revoked_reason,
    validate_path,
)
from jitsuin.server import (
    backup,
    checkpoints,
    cli_conformance,
    cli_ra,
    logging_json,
    metrics,
    permissions,
    reload,
    workers,
)
from jitsuin.server import config as configuration
from jitsuin.server.app import create_app, create_public_app
from jitsuin.server.authority import Authority
from jitsuin.server.cli_errors import EXIT_REFUSED, EXIT_USAGE, CLIError
from jitsuin.server.config import Config, ConfigError, Listen
from jitsuin.server.connections import Listener, allow_file_descriptors
from jitsuin.server.est import client as est_client
from jitsuin.server.storage import CertificateRecord, Conflict, NotFound, open_store
from jitsuin.server.tls_context import https_context

EXIT_SOFTWARE = 70  # sysexits.h EX_SOFTWARE: an internal error, not the operator's
DEBUG_ENV = "JITSUIN_DEBUG"


def _home(args: argparse.Namespace) -> Path:
    return Path(
        args.home or os.environ.get("JITSUIN_HOME") or configuration.DEFAULT_HOME
    ).absolute()


def _config_path(args: argparse.Namespace, home: Path) -> Path | None:
    explicit = getattr(args, "config", None) or os.environ.get("JITSUIN_CONFIG")
    if explicit:
        return Path(explicit).absolute()
    default = home / configuration.CONFIG_NAME
    return default if default.exists() else None


def _load(args: argparse.Namespace, *, initialise: bool = False) -> Config:
    home = _home(args)
    path = _config_path(args, home)
    if path is not None and _token_settings(args) is not None:
        raise CLIError(
            f"--pkcs11-*: {path} exists; set key_store and the pkcs11_* keys of [ca] there "
            "(the next rollover makes its key in the token)"
        )
    if path is None:
        if not initialise:
            raise CLIError(
                f"no configuration in {home}: point --home DIR (or $JITSUIN_HOME) at the data "
                "directory, or --config at its jitsuin.toml; `jitsuin init` makes a new CA"
            )
        key_type = KeyType.parse(getattr(args, "key_type", None) or KeyType.ECDSA_P384.value)
        subject = getattr(args, "subject", None) or configuration.DEFAULT_SUBJECT
        listens = {k: v for k in _LISTEN_FLAGS if (v := getattr(args, k, None)) is not None}
        path = configuration.write_default(
            home, key_type, subject, **listens, token=_token_settings(args)
        )
        print(f"wrote the default configuration {path}")
    try:
        config = configuration.load(path, home)
    except ConfigError as exc:
        raise CLIError("configuration errors:\n" + _bullets(exc.errors)) from exc
    _check_listen_flags(args, config, path)
    return config


def _token_settings(args: argparse.Namespace) -> configuration.TokenSettings | None:
    """init --pkcs11-library/--pkcs11-token/--pkcs11-pin-file: all three, or none."""
    given = [getattr(args, f"pkcs11_{name}", None) for name in ("library", "token", "pin_file")]
    if not any(given):
        return None
    library, token, pin_file = given
    if not all(given):
        raise CLIError("--pkcs11-library, --pkcs11-token and --pkcs11-pin-file go together")
    return configuration.TokenSettings(Path(library).absolute(), token, Path(pin_file).absolute())


# init and serve --http/--https/--smtp HOST:PORT: what a new configuration listens on and mails
# through. They only write a new file, never override one: every other command (`ra inquiry`,
# `ra approve`, ...) reads the file for the URLs it prints and mails.
_LISTEN_FLAGS = {
    "http": "[server] http_listen",
    "https": "[server] https_listen",
    "smtp": "[mail] smtp_host and smtp_port",
}


def _check_listen_flags(args: argparse.Namespace, config: Config, path: Path) -> None:
    configured = {
        "http": config.server.http,
        "https": config.server.https,
        "smtp": Listen(config.mail.smtp_host, config.mail.smtp_port),
    }
    for flag, where in _LISTEN_FLAGS.items():
        wanted = getattr(args, flag, None)
        if wanted is not None and wanted != configured[flag]:
            raise CLIError(
                f"--{flag} {wanted}: {path} already sets {where} to {configured[flag]}; edit it "
                f"there (--{flag} only sets up a new configuration)"
            )


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"  - {line}" for line in lines)


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


# -- commands -------------------------------------------------------------------------------
async def cmd_init(args: argparse.Namespace) -> int:
    permissions.restrict_new_files()
    config = _load(args, initialise=True)
    for warning in permissions.secure_data_directory(config):
        print(f"WARNING: {warning}", file=sys.stderr)
    authority = await Authority.open(config, SystemClock())
    try:
        _describe(config, authority)
    finally:
        await authority.close()
    return 0


def _describe(config: Config, authority: Authority) -> None:
    current = authority.current
    print(f"data directory: {config.home}")
    print(f"CA generation {current.number}: {current.certificate.subject.rfc4514_string()}")
    print(f"  valid {current.not_before.isoformat()} to {current.not_after.isoformat()}")
    print(f"  SHA-256 {_fingerprint(current.certificate)}")


async def cmd_serve(args: argparse.Namespace) -> int:
    permissions.restrict_new_files()
    config = _load(args, initialise=True)
    inherited = workers.inherited_sockets(args.worker_sockets)
    logging_json.configure(config.log.format, with_pid=bool(inherited))
    for warning in permissions.secure_data_directory(config):
        logging.getLogger("jitsuin.files").warning(warning)
    problem = workers.refusal(config.database_dialect, args.workers)
    if problem:
        raise CLIError(problem)
    if args.workers > 1 and not inherited:
        return await _serve_workers(args, config)
    try:
        with workers.sole_server(config):
            return await _serve(config, inherited)
    except workers.StoreInUse as exc:
        raise CLIError(str(exc)) from None


async def _serve(config: Config, inherited: dict[str, socket.socket]) -> int:
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
        _describe(config, authority)
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


async def _serve_workers(args: argparse.Namespace, config: Config) -> int:
    """The supervising parent of ``serve --workers N`` (server/workers.py): the CA, migrations
    and the HTTPS certificate are made here once, then N workers accept on sockets
    of their own bound to the same addresses (SO_REUSEPORT; server/workers.py)."""
    authority = await Authority.open(config, SystemClock())
    try:
        if config.server.https is not None:
            await authority.tls_files()  # made once here, not raced by the workers
        _describe(config, authority)
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
                    sockets[name] = workers.bind(listen, args.workers)
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
        print(f"{args.workers} worker processes; press Ctrl-C to stop", flush=True)
        command = [sys.executable, "-m", "jitsuin.server", "--home", str(_home(args))]
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


def cmd_check_config(args: argparse.Namespace) -> int:
    home = _home(args)
    path = Path(args.file).absolute() if args.file else _config_path(args, home)
    if path is None:
        raise CLIError(f"no configuration file given and none in {home}")
    try:
        config = configuration.load(path, home)
    except ConfigError as exc:
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        print(_bullets(exc.errors), file=sys.stderr)
        return EXIT_USAGE
    problems = config.policy().problems()
    try:
        if config.needs_passphrase():
            config.passphrase()
    except ConfigError as exc:
        problems += exc.errors
    if problems:
        print(f"{path}: {len(problems)} error(s)", file=sys.stderr)
        print(_bullets(problems), file=sys.stderr)
        return EXIT_USAGE
    for warning in config.warnings():
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"{path}: OK")
    return 0


async def cmd_ca_show(args: argparse.Namespace) -> int:
    config = _load(args)
    records = await _generation_certificates(config)
    margin = config.ca.cutoff_margin
    for number, cert in records:
        cutoff = issuance_cutoff(cert, margin)
        valid = f"{cert.not_valid_before_utc.isoformat()} .. {cert.not_valid_after_utc.isoformat()}"
        print(f"generation {number}")
        print(f"  subject      {cert.subject.rfc4514_string()}")
        print(f"  valid        {valid}")
        print(f"  issues until {cutoff.isoformat()}")
        print(f"  SHA-256      {_fingerprint(cert)}")
    last = records[-1][1]
    if dt.datetime.now(dt.UTC) >= issuance_cutoff(last, margin) - config.ca.rollover_warning:
        print(
            f"WARNING: generation {records[-1][0]} stops issuing at "
            f"{issuance_cutoff(last, margin).isoformat()}: run `jitsuin ca rollover` (SEED-R15)",
            file=sys.stderr,
        )
    return 0


async def cmd_ca_rollover(args: argparse.Namespace) -> int:
    """The next CA generation with its link certificates (SEED-R15...R17)."""
    config = _load(args)
    authority = await Authority.open(config, SystemClock(), create=False)
    try:
        old = authority.current
        new = await authority.rollover(f"cli:{getpass.getuser()}")
        link = authority.links[-1]
    finally:
        await authority.close()
    print(f"generation {new.number} created; issuance uses it now")
    print(f"  NewWithNew  SHA-256 {_fingerprint(new.certificate)}")
    print(f"  OldWithNew  SHA-256 {_fingerprint(link.old_with_new)}  (generation {old.number} key)")
    print(f"  NewWithOld  SHA-256 {_fingerprint(link.new_with_old)}")
    print(
        "running servers load it within seconds (before their next issuance at once), "
        "and their HTTPS listeners present a certificate of it"
    )
    return 0


async def cmd_ca_revoke(args: argparse.Namespace) -> int:
    """Revoke any certificate of this CA by serial (RFC 5280 §5.3.1 reason)."""
    config = _load(args)
    authority = await Authority.open(config, SystemClock(), create=False)
    try:
        serial = args.serial
        generation = args.generation or authority.current.number
        try:
            await authority.revoke(generation, serial, args.reason, f"cli:{getpass.getuser()}")
        except Conflict as exc:
            raise CLIError(str(exc), EXIT_REFUSED) from exc
    finally:
        await authority.close()
    print(f"revoked {serial:x} of generation {generation} ({args.reason}); the CRL is reissued")
    return 0


async def _generation_certificates(config: Config) -> list[tuple[int, x509.Certificate]]:
    """Published CA certificates read from the store: no CA key or passphrase needed."""
    if config.database_dialect == "sqlite" and not config.database_path.exists():
        raise CLIError(f"no CA in {config.home}: run `jitsuin init` first")
    store = await open_store(config)
    try:
        records = await store.generations()
    finally:
        await store.close()
    if not records:
        raise CLIError(f"no CA in {config.home}: run `jitsuin init` first")
    return [(r.number, x509.load_der_x509_certificate(r.certificate_der)) for r in records]


async def _published(
    config: Config, leaf: x509.Certificate
) -> tuple[list[x509.Certificate], list[x509.Certificate], list[bytes], CertificateRecord | None]:
    """What this CA publishes (CA and link certificates, the latest CRLs) and what it knows of
    ``leaf``, read from the store: no CA key or passphrase needed."""
    trusted = [cert for _, cert in await _generation_certificates(config)]
    store = await open_store(config)
    try:
        links: list[x509.Certificate] = []
        for link in await store.links():
            links += [
                x509.load_der_x509_certificate(link.old_with_new),
                x509.load_der_x509_certificate(link.new_with_old),
            ]
        crls = [
            crl.der
            for number in range(1, len(trusted) + 1)
            if (crl := await store.latest_crl(number)) is not None
        ]
        status = None
        for number in range(1, len(trusted) + 1):
            with contextlib.suppress(NotFound):
                status = await store.certificate(number, leaf.serial_number)
    finally:
        await store.close()
    return trusted, links, crls, status


async def cmd_issue(args: argparse.Namespace) -> int:
    config = _load(args)
    csr_data = _read(args.csr, "CSR")
    try:
        subject = VettedSubject.from_mapping(json.loads(_read(args.subject, "subject record")))
    except json.JSONDecodeError as exc:
        raise CLIError(f"{args.subject}: not JSON: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise CLIError(f"{args.subject}: {exc}") from exc
    authority = await Authority.open(config, SystemClock(), create=False)
    try:
        issued = await authority.issue_personal(csr_data, subject, args.profile, actor="cli")
    finally:
        await authority.close()
    pem = issued.certificate.public_bytes(serialization.Encoding.PEM)
    if args.out:
        Path(args.out).write_bytes(pem)
        print(f"issued serial {issued.serial:x} ({issued.profile}) to {args.out}")
    else:
        sys.stdout.write(pem.decode())
    return 0


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def _load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CLIError(f"{source}: not a certificate (PEM or DER)") from exc


def _load_crls(data: bytes, source: str) -> list[bytes]:
    """The CRLs of a file as DER: one DER CRL, or PEM with one or more X509 CRL blocks."""
    try:
        if asn1_pem.detect(data):
            blocks = [der for kind, _, der in asn1_pem.unarmor(data, multiple=True)
                      if kind == "X509 CRL"]  # fmt: skip
        else:
            blocks = [data]
        for der in blocks:
            x509.load_der_x509_crl(der)
    except ValueError as exc:
        raise CLIError(f"{source}: not a CRL (PEM or DER)") from exc
    if not blocks:
        raise CLIError(f"{source}: no X509 CRL in the PEM file")
    return blocks


async def cmd_verify(args: argparse.Namespace) -> int:
    """SEED-R20: does the certificate chain to the published CA certificates, and why not?"""
    certs = _load_certificates(_read(args.certificate, "certificate"), args.certificate)
    leaf, others = certs[0], certs[1:]
    given_crls = [der for path in args.crl or () for der in _load_crls(_read(path, "CRL"), path)]
    crls: list[bytes] = []
    status: CertificateRecord | None = None
    if args.ca:
        trusted = [c for path in args.ca for c in _load_certificates(_read(path, "CA"), path)]
    else:
        published = await _published(_load(args), leaf)
        trusted, links, crls, status = published
        others += links
    at = dt.datetime.now(dt.UTC)
    if args.at:
        try:
            at = dt.datetime.fromisoformat(args.at)
        except ValueError as exc:
            raise CLIError(f"--at: not an ISO 8601 time: {args.at!r}") from exc
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
    # CRLs given on the command line are meant to be used: every certificate on the path must
    # then be covered by one (RFC 5280 §6.3), as in the NIST PKITS tests.
    verdict = await validate_path(
        leaf, trusted, others, [*crls, *given_crls], at, require_revocation=bool(given_crls)
    )
    subject = leaf.subject.rfc4514_string()
    if verdict.ok and status is not None and status.status == "revoked":
        assert status.revoked_at is not None
        reason = revoked_reason(status.revoked_at, status.revocation_reason or "unspecified")
        verdict = Verdict(False, verdict.chain, (reason,))
    # The purpose last: a revoked certificate is reported as revoked, whatever its EKU.
    if verdict.ok and (problem := purpose_problem(leaf, args.purpose)) is not None:
        verdict = Verdict(False, verdict.chain, (problem,))
    if verdict.ok:
        print(f"OK: {subject} chains to {verdict.chain[-1].subject.rfc4514_string()}")
        print(f"  CA SHA-256 {_fingerprint(verdict.chain[-1])}")
        print(f"  valid until {leaf.not_valid_after_utc.isoformat()}")
        return 0
    print(f"NOT OK: {subject}", file=sys.stderr)
    print(_bullets(verdict.reasons), file=sys.stderr)
    return EXIT_REFUSED


def _hex_serial(value: str) -> int:
    """A serial number as printed by openssl and `ca show` (hex, colons allowed)."""
    try:
        serial = int(value.replace(":", ""), 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a hexadecimal serial number: {value!r}") from None
    if serial <= 0:  # RFC 5280 §4.1.2.2: a positive integer
        raise argparse.ArgumentTypeError(f"a serial number is positive: {value!r}")
    return serial


def _listen(value: str) -> Listen:
    try:
        return configuration.parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _listen_flags(p: argparse.ArgumentParser) -> None:
    for flag, where in _LISTEN_FLAGS.items():
        p.add_argument(
            f"--{flag}",
            type=_listen,
            metavar="HOST:PORT",
            help=f"{where} of a new configuration (edit the file to change an existing one)",
        )


def _global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """--home, --config and --debug, accepted before the subcommand and after it (`jitsuin serve
    --home DIR`); after it they override only when given."""
    default = None if top else argparse.SUPPRESS
    given = parser._option_string_actions
    if "--home" not in given:
        parser.add_argument(
            "--home",
            default=default,
            help="data directory (default $JITSUIN_HOME or ./jitsuin-data)",
        )
    if "--config" not in given:  # lint and conformance have a --config of their own
        parser.add_argument(
            "--config", default=default, help="configuration file (default HOME/jitsuin.toml)"
        )
    if "--debug" not in given:
        parser.add_argument(
            "--debug",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
            help=f"show the traceback of an unexpected error (or ${DEBUG_ENV}=1)",
        )


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command that runs something (``ra create``, ``est enroll``, ...), by its words."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                inner = subcommands(child)
                found += [(f"{name} {words}", p) for words, p in inner] or [(name, child)]
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jitsuin", description="jitsuin: a CA for personal signing and S/MIME certificates"
    )
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create the data directory, configuration and CA")
    p.add_argument(
        "--key-type",
        choices=[k.value for k in CA_KEY_TYPES],
        help="CA key type (default ecdsa-p384)",
    )
    p.add_argument("--subject", help=f"CA subject DN (default {configuration.DEFAULT_SUBJECT!r})")
    _listen_flags(p)
    p.add_argument(
        "--pkcs11-library",
        metavar="PATH",
        help="make the CA keys in a PKCS#11 token: its module (with --pkcs11-token and "
        "--pkcs11-pin-file; a new configuration only)",
    )
    p.add_argument("--pkcs11-token", metavar="LABEL", help="the token's label")
    p.add_argument("--pkcs11-pin-file", metavar="PATH", help="a file holding the token's user PIN")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("serve", help="run the server (creates the CA on first start)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the listeners (more than 1 needs a PostgreSQL store)",
    )
    p.add_argument(workers.WORKER_SOCKETS, dest="worker_sockets", help=argparse.SUPPRESS)
    _listen_flags(p)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("check-config", help="validate a configuration and list every error")
    p.add_argument("file", nargs="?", help="configuration file")
    p.set_defaults(handler=cmd_check_config)

    ca = sub.add_parser("ca", help="CA administration").add_subparsers(
        dest="ca_command", required=True
    )
    p = ca.add_parser("show", help="show the CA generations")
    p.set_defaults(handler=cmd_ca_show)
    p = ca.add_parser("rollover", help="create the next CA generation and link certificates")
    p.set_defaults(handler=cmd_ca_rollover)
    p = ca.add_parser("revoke", help="revoke a certificate by serial number")
    p.add_argument("serial", type=_hex_serial, help="serial number in hex (colons allowed)")
    p.add_argument("--generation", type=int, help="issuing generation (default: current)")
    p.add_argument(
        "--reason",
        required=True,
        choices=sorted(r.value for r in Reason if r.reason_code is not None),
    )
    p.set_defaults(handler=cmd_ca_revoke)

    p = sub.add_parser("issue", help="issue a certificate from a CSR and a vetted record")
    p.add_argument("--csr", required=True, help="PKCS#10 request (PEM or DER)")
    p.add_argument("--subject", required=True, help="vetted subject record (JSON)")
    p.add_argument("--profile", required=True, help="general or document-manager")
    p.add_argument("--out", help="write the certificate (PEM) here instead of stdout")
    p.set_defaults(handler=cmd_issue)

    p = sub.add_parser("verify", help="check that a certificate chains to the CA (SEED-R20)")
    p.add_argument("certificate", help="certificate (PEM or DER; PEM may carry a chain)")
    p.add_argument("--ca", action="append", help="trusted CA certificate file (repeatable)")
    p.add_argument(
        "--crl",
        nargs="+",
        action="extend",
        metavar="FILE",
        help="CRLs to check revocation with (PEM or DER; one or more, after the certificate); "
        "every certificate on the path must then be covered by one",
    )
    p.add_argument(
        "--purpose",
        choices=list(PURPOSES),
        default=DEFAULT_PURPOSE,
        help="what the certificate must be good for (extKeyUsage): e-mail protection, document "
        f"signing, TLS client, or any (default {DEFAULT_PURPOSE})",
    )
    p.add_argument("--at", help="verify at this ISO 8601 time instead of now")
    p.set_defaults(handler=cmd_verify)

    cli_ra.add_parsers(sub, _load)
    backup.add_parsers(sub, _load, _home)
    est_client.add_parsers(sub)
    cli_conformance.add_parsers(sub)
    for _, command in subcommands(parser):
        _global_options(command, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Expected failures (CLIError, a CA refusal, a configuration error, a file or address the
    operator named) print one line and exit non-zero. Anything else is a bug: one line naming it,
    exit 70, and the traceback with --debug or JITSUIN_DEBUG=1."""
    args = build_parser().parse_args(argv)
    try:
        result = args.handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result)
    except CLIError as exc:
        print(f"jitsuin: {exc}", file=sys.stderr)
        return exc.code
    except CAError as exc:
        print(f"jitsuin: refused ({exc.kind.value}): {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except ConfigError as exc:
        print("jitsuin: configuration errors:\n" + _bullets(exc.errors), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a file, directory or address named on the command line or config
        if args.debug or os.environ.get(DEBUG_ENV) == "1":
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"jitsuin: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:
        if args.debug or os.environ.get(DEBUG_ENV) == "1":
            raise
        print(
            f"jitsuin: internal error: {type(exc).__name__}: {exc} (a bug; run again with "
            f"--debug or {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())

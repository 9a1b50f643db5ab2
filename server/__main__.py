"""The ``jitsuin`` command line."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from jitsuin.ca.clock import SystemClock
from jitsuin.ca.errors import CAError
from jitsuin.ca.generations import issuance_cutoff
from jitsuin.ca.keys import CA_KEY_TYPES, KeyType
from jitsuin.ca.revocation import Reason
from jitsuin.ca.subject import VettedSubject
from jitsuin.ca.verify import (
    DEFAULT_PURPOSE,
    PURPOSES,
)
from jitsuin.server import (
    backup,
    cli_conformance,
    cli_ra,
    cli_serve,
    cli_verify,
    logging_json,
    permissions,
    workers,
)
from jitsuin.server import config as configuration
from jitsuin.server.authority import Authority
from jitsuin.server.cli_errors import EXIT_REFUSED, EXIT_USAGE, CLIError, bullets, read_input
from jitsuin.server.config import Config, ConfigError, Listen
from jitsuin.server.est import client as est_client
from jitsuin.server.fingerprint import colon_fingerprint
from jitsuin.server.storage import Conflict

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
        raise CLIError("configuration errors:\n" + bullets(exc.errors)) from exc
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


# -- commands -------------------------------------------------------------------------------
async def cmd_init(args: argparse.Namespace) -> int:
    permissions.restrict_new_files()
    config = _load(args, initialise=True)
    for warning in permissions.secure_data_directory(config):
        print(f"WARNING: {warning}", file=sys.stderr)
    authority = await Authority.open(config, SystemClock())
    try:
        cli_serve.describe(config, authority)
    finally:
        await authority.close()
    return 0


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
        return await cli_serve.serve_workers(config, args.workers, _home(args))
    try:
        with workers.sole_server(config):
            return await cli_serve.serve_one(config, inherited)
    except workers.StoreInUse as exc:
        raise CLIError(str(exc)) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    home = _home(args)
    path = Path(args.file).absolute() if args.file else _config_path(args, home)
    if path is None:
        raise CLIError(f"no configuration file given and none in {home}")
    try:
        config = configuration.load(path, home)
    except ConfigError as exc:
        print(f"{path}: {len(exc.errors)} error(s)", file=sys.stderr)
        print(bullets(exc.errors), file=sys.stderr)
        return EXIT_USAGE
    problems = config.policy().problems()
    try:
        if config.needs_passphrase():
            config.passphrase()
    except ConfigError as exc:
        problems += exc.errors
    if problems:
        print(f"{path}: {len(problems)} error(s)", file=sys.stderr)
        print(bullets(problems), file=sys.stderr)
        return EXIT_USAGE
    for warning in config.warnings():
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"{path}: OK")
    return 0


async def cmd_ca_show(args: argparse.Namespace) -> int:
    config = _load(args)
    records = await cli_verify.generation_certificates(config)
    margin = config.ca.cutoff_margin
    for number, cert in records:
        cutoff = issuance_cutoff(cert, margin)
        valid = f"{cert.not_valid_before_utc.isoformat()} .. {cert.not_valid_after_utc.isoformat()}"
        print(f"generation {number}")
        print(f"  subject      {cert.subject.rfc4514_string()}")
        print(f"  valid        {valid}")
        print(f"  issues until {cutoff.isoformat()}")
        print(f"  SHA-256      {colon_fingerprint(cert)}")
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
    print(f"  NewWithNew  SHA-256 {colon_fingerprint(new.certificate)}")
    old_with_new = colon_fingerprint(link.old_with_new)
    print(f"  OldWithNew  SHA-256 {old_with_new}  (generation {old.number} key)")
    print(f"  NewWithOld  SHA-256 {colon_fingerprint(link.new_with_old)}")
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


async def cmd_issue(args: argparse.Namespace) -> int:
    config = _load(args)
    csr_data = read_input(args.csr, "CSR")
    try:
        subject = VettedSubject.from_mapping(json.loads(read_input(args.subject, "subject record")))
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


async def cmd_verify(args: argparse.Namespace) -> int:
    return await cli_verify.verify(args, lambda: _load(args))


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
        print("jitsuin: configuration errors:\n" + bullets(exc.errors), file=sys.stderr)
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

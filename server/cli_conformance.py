"""``jitsuin lint`` (certificates, CRLs and OCSP responses in files) and ``jitsuin conformance``
(a live EST or ACME server), both over the rule registry of ``jitsuin.conformance``.

Exit status: 0 clean, 1 a finding at the threshold or above (ERROR unless --fail-on says
otherwise), 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import sys
from pathlib import Path

from cryptography import x509

from jitsuin.ca.keys import KeyType
from jitsuin.conformance import profile as profile_description
from jitsuin.conformance import report as reports
from jitsuin.conformance.documents import Expectations, LintContext, key_id
from jitsuin.conformance.findings import Severity
from jitsuin.conformance.profile import ProfileFileError
from jitsuin.conformance.registry import REGISTRY, Rule
from jitsuin.conformance.runner import Report, lint_corpus, lint_paths, load_corpus, run_rules
from jitsuin.server import config as configuration
from jitsuin.server.config import Config, ConfigError

EXIT_USAGE = 2
PASSWORD_ENV = "JITSUIN_EST_PASSWORD"  # noqa: S105 (a variable name)


class UsageError(Exception):
    pass


def _config(args: argparse.Namespace) -> Config | None:
    path = getattr(args, "lint_config", None) or getattr(args, "config", None)
    if not path:
        return None
    file = Path(path).absolute()
    try:
        return configuration.load(file, file.parent)
    except ConfigError as exc:
        raise UsageError(
            "configuration errors:\n" + "\n".join(f"  - {e}" for e in exc.errors)
        ) from exc


async def _store_certificates(config: Config) -> list[x509.Certificate]:
    """The CA and link certificates of the configuration's store, as issuers for the
    cross-object rules (read only; nothing needs the CA key)."""
    if config.database_dialect == "sqlite" and not config.database_path.exists():
        return []
    from jitsuin.server.storage import open_store

    store = await open_store(config)
    try:
        out = [x509.load_der_x509_certificate(r.certificate_der) for r in await store.generations()]
        for link in await store.links():
            out += [
                x509.load_der_x509_certificate(d) for d in (link.old_with_new, link.new_with_old)
            ]
        return out
    finally:
        await store.close()


def _at(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"--at: not an ISO 8601 time: {value!r}") from exc
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _suppressions(args: argparse.Namespace, config: Config | None) -> dict[str, str]:
    out = dict(config.ca.lint_suppress) if config is not None else {}
    for item in args.suppress or []:
        code, sep, reason = item.partition("=")
        if not sep or not reason.strip():
            raise UsageError(f"--suppress {item!r}: write CODE=REASON")
        out[code.strip()] = reason.strip()
    return out


def _rules(selected: list[str] | None) -> list[Rule] | None:
    if not selected:
        return None
    chosen = []
    for pattern in selected:
        matched = [r for r in REGISTRY if r.id == pattern or r.id.startswith(pattern.rstrip("*"))]
        if not matched:
            raise UsageError(f"--rule {pattern!r} matches no rule (see --list-rules)")
        chosen += [r for r in matched if r not in chosen]
    return chosen


def _expectations(args: argparse.Namespace, config: Config | None) -> Expectations | None:
    """The profile structure the config-dependent rules read: from a profile file, or jitsuin's
    own configuration translated into it (conformance/profile.py)."""
    profile_file = getattr(args, "profile_file", None)
    if profile_file:
        if config is not None:
            raise UsageError("give --config or --profile-file, not both")
        try:
            return Expectations.from_profile(profile_description.load(Path(profile_file)))
        except ProfileFileError as exc:
            raise UsageError(f"--profile-file: {exc}") from exc
    if config is None:
        return None
    # jitsuin.toml in the profile structure; C-01 wants digitalSignature only when the CA signs.
    described = profile_description.from_policy(
        config.policy(), ca_signs_ocsp=config.ocsp.responder == "ca"
    )
    return Expectations.from_profile(described, config.ca.subject)


def _context(args: argparse.Namespace, config: Config | None) -> LintContext:
    expectations = _expectations(args, config)
    context = LintContext(
        expectations=expectations,
        profile=args.profile,
        at=_at(args.at),
        suppress=_suppressions(args, config),
        pkilint=not args.no_pkilint,
    )
    if args.profile:
        try:
            context.forced_profile()
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    return context


def _finish(args: argparse.Namespace, report: Report) -> int:
    text = reports.render(report, args.format, verbose=args.verbose)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(reports.summary(report), file=sys.stderr)
    else:
        sys.stdout.write(text)
    return report.exit_code(Severity.parse(args.fail_on))


def _intermediates(paths: list[str]) -> list[x509.Certificate]:
    """C-13: the certificates of subordinate CAs the user declares (PEM or DER files)."""
    out: list[x509.Certificate] = []
    for name in paths:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise UsageError(f"--intermediate {name}: {exc.strerror or exc}") from exc
        try:
            found = (
                x509.load_pem_x509_certificates(data)
                if b"-----BEGIN" in data
                else [x509.load_der_x509_certificate(data)]
            )
        except ValueError as exc:
            raise UsageError(f"--intermediate {name}: not a certificate ({exc})") from exc
        for cert in found:
            try:
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            if not is_ca:
                raise UsageError(
                    f"--intermediate {name}: {cert.subject.rfc4514_string()} is not "
                    "a CA certificate (cA is not TRUE)"
                )
            out.append(cert)
    return out


def cmd_lint(args: argparse.Namespace) -> int:
    try:
        if args.list_rules:
            sys.stdout.write(
                reports.render_catalogue(REGISTRY, "json" if args.format == "json" else "text")
            )
            return 0
        if not args.paths:
            raise UsageError("name at least one file or directory (or use --list-rules)")
        config = _config(args)
        context = _context(args, config)
        extra = asyncio.run(_store_certificates(config)) if config is not None else []
        declared = _intermediates(args.intermediate or [])
        if declared:
            extra = [*extra, *declared]
            context = dataclasses.replace(
                context, intermediates=frozenset(key_id(c.public_key()) for c in declared)
            )
        try:
            report = lint_paths(args.paths, context, extra, _rules(args.rule))
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from exc
        return _finish(args, report)
    except UsageError as exc:
        print(f"jitsuin lint: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_conformance(args: argparse.Namespace) -> int:
    from jitsuin.server import conformance_live as live
    from jitsuin.server import conformance_live_acme as live_acme

    try:
        if not args.est and not args.acme:
            raise UsageError("give --est BASE_URL and/or --acme DIRECTORY_URL")
        config = _config(args)
        context = _context(args, config)
        report = Report(rules=list(REGISTRY))
        notes: list[str] = []
        password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV)
        if args.est:
            options = live.ESTOptions(
                base_url=args.est,
                ca_bundle=args.ca_bundle,
                user=args.user,
                password=password,
                cert=args.cert,
                key=args.key,
                reenroll=args.reenroll,
                key_type=KeyType.parse(args.key_type),
                wait=args.wait,
                out=args.out,
            )
            server, got = asyncio.run(live.run_est(options, context))
            _judge(report, server, got, context)
            notes += got.notes
        if args.acme:
            acme_options = live_acme.ACMEOptions(
                directory_url=args.acme,
                ca_bundle=args.ca_bundle,
                identifier=args.identifier,
                identifier_type=args.identifier_type,
                eab_kid=args.eab_kid,
                eab_key=args.eab_key,
            )
            server, got = asyncio.run(live_acme.run_acme(acme_options, context))
            _judge(report, server, got, context)
            notes += got.notes
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        return _finish(args, report)
    except UsageError as exc:
        print(f"jitsuin conformance: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _judge(report: Report, server: object, got: object, context: LintContext) -> None:
    from jitsuin.conformance.findings import DocumentResult

    rules = [r for r in REGISTRY if server.kind in r.kinds]  # type: ignore[attr-defined]
    outcomes = run_rules(server, rules, context)
    report.documents.append(
        DocumentResult(server.label, server.kind.value, server.description, tuple(outcomes))  # type: ignore[attr-defined]
    )
    corpus, unreadable = load_corpus(got.objects, context)  # type: ignore[attr-defined]
    report.extend(lint_corpus(corpus, unreadable=unreadable))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=reports.FORMATS, default="text", help="report format")
    p.add_argument("--output", "-o", help="write the report here (the summary goes to stderr)")
    p.add_argument(
        "--config",
        dest="lint_config",
        metavar="FILE",
        help="a jitsuin configuration: check its exact values (CP OIDs, groups, URLs, "
        "cut-off margin) and honour its [ca.lint_suppress]",
    )
    p.add_argument(
        "--profile",
        help="judge end-entity certificates as this profile (jitsuin's, or the profile file's)",
    )
    p.add_argument("--at", help="judge validity at this ISO 8601 time (never the clock otherwise)")
    p.add_argument(
        "--suppress",
        action="append",
        metavar="CODE=REASON",
        help="suppress a finding code or rule id, with the reason (repeatable)",
    )
    p.add_argument(
        "--fail-on",
        default="error",
        choices=[s.name.lower() for s in Severity],
        help="exit 1 when a finding is at this severity or above (default error)",
    )
    p.add_argument("--no-pkilint", action="store_true", help="skip the pkilint delegate rules")
    p.add_argument("--verbose", "-v", action="store_true", help="show notes and node paths")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "lint",
        help="check certificates, CRLs and OCSP responses against the conformance rules",
        description="Lint certificates, CRLs and OCSP responses (DER or PEM; directories are "
        "walked for .pem .crt .cer .der .crl .ocsp .p7b .p7c .b64). All files of one run are "
        "judged together, so a directory holding a CA set gets the cross-object rules.",
    )
    p.add_argument("paths", nargs="*", help="files and directories")
    p.add_argument("--list-rules", action="store_true", help="print the rule catalogue")
    p.add_argument("--rule", action="append", metavar="ID", help="run only these rules (X-01, S-*)")
    p.add_argument(
        "--intermediate",
        action="append",
        metavar="FILE",
        help="a subordinate CA certificate of this CA (PEM or DER; C-13 accepts it)",
    )
    p.add_argument(
        "--profile-file",
        metavar="FILE",
        help="the CA's profile description (TOML, docs/conformance.md): check its exact values "
        "(EKU, subject, SAN, keys, validity, policy OIDs, URL templates, OCSP signer)",
    )
    _common(p)
    p.set_defaults(handler=cmd_lint)

    p = sub.add_parser(
        "conformance",
        help="probe a live EST and/or ACME server and lint what it returns",
        description="Check a live server's protocol behaviour (RFC 7030 EST, RFC 8555 ACME), "
        "enroll where the credentials allow, and lint every certificate, CRL and OCSP response "
        "obtained. Use --format junit for CI.",
    )
    p.add_argument("--est", metavar="BASE_URL", help="e.g. https://host:8443/.well-known/est")
    p.add_argument("--acme", metavar="DIRECTORY_URL", help="the ACME directory URL")
    p.add_argument("--ca-bundle", help="CA certificates (PEM) that verify the server's TLS")
    p.add_argument("--user", help="EST: the enrollment ID (HTTP Basic user)")
    p.add_argument("--password", help=f"EST: the PIN (or ${PASSWORD_ENV})")
    p.add_argument("--cert", help="EST: client certificate (PEM) for simplereenroll")
    p.add_argument("--key", help="EST: its private key (PEM)")
    p.add_argument(
        "--reenroll",
        action="store_true",
        help="EST: re-enroll with the certificate this run enrolled",
    )
    p.add_argument(
        "--key-type",
        default=KeyType.ECDSA_P256.value,
        choices=[k.value for k in KeyType],
        help="EST: key type to enroll",
    )
    p.add_argument("--wait", type=int, default=0, help="EST: seconds to wait out 202 Retry-After")
    p.add_argument("--out", help="EST: write the enrolled key and certificate to this directory")
    p.add_argument(
        "--identifier", default="conformance.example.org", help="ACME: the identifier to order"
    )
    p.add_argument(
        "--identifier-type",
        default="dns",
        choices=["dns", "email", "ip"],
        help="ACME: the identifier's type (email: RFC 8823, ip: RFC 8738)",
    )
    p.add_argument("--eab-kid", help="ACME: External Account Binding key id")
    p.add_argument(
        "--eab-key",
        help="ACME: External Account Binding HMAC key (base64url; write --eab-key=KEY when it "
        "starts with -)",
    )
    _common(p)
    p.set_defaults(handler=cmd_conformance)

"""``jitsuin ra …`` and ``jitsuin audit …``: the operator workflow without hand-written HTTP.

Commands act as the operator whose API token is in ``$JITSUIN_OPERATOR_TOKEN`` (the same roles
and two-person rule as the API apply). ``ra operator-add``, ``operator-bind-cert``,
``operator-unbind-cert``, ``operator-disable``, ``operator-enable`` and ``operator-token`` need no
token: whoever can read the CA's data directory and keys is its administrator, trusted like root.
The action is audited as ``cli:<user>``, and a token or certificate binding it makes stays known
to ``cli:<user>`` for the two-person rule until the operator replaces it (``ra own-token``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from jitsuin.ca.clock import SystemClock
from jitsuin.server import checkpoints
from jitsuin.server.authority import Authority
from jitsuin.server.cli_errors import CLIError
from jitsuin.server.config import Config
from jitsuin.server.ra.credentials import Keyring
from jitsuin.server.ra.errors import RAError
from jitsuin.server.ra.mailer import Mailer
from jitsuin.server.ra.service import REVOCATION_REASONS, RAService, application_json
from jitsuin.server.ra.workflow import Event, State
from jitsuin.server.storage import ApplicationRecord, AuditChainBroken, Operator, open_store

TOKEN_ENV = "JITSUIN_OPERATOR_TOKEN"  # noqa: S105 (a variable name)
_TAKE_OVER = (
    "{name} should replace it with a token of their own before approving anything "
    "(JITSUIN_OPERATOR_TOKEN=<this token> jitsuin ra own-token, or POST "
    "/ra/operators/{name}/token): "
    "until then the two-person rule counts whoever ran this command as acting too"
)

Loader = Callable[[argparse.Namespace], Config]


@asynccontextmanager
async def _service(config: Config) -> AsyncIterator[RAService]:
    authority = await Authority.open(config, SystemClock(), create=False)
    try:
        yield RAService(authority, config, Keyring(config.ra_secret()))
    finally:
        await authority.close()


async def _operator(service: RAService) -> Operator:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise CLIError(f"set {TOKEN_ENV} to your operator API token")
    return await service.authenticate(token)


def _json_file(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CLIError(f"{path}: not JSON: {exc}") from exc


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# What the operator does for an applicant who lost the key (README, "An applicant who lost the
# key"): the CA never had it and the PIN is spent, so nothing can be sent again.
LOST_KEY = (
    "If the subscriber lost the key (.p12 never saved, deleted, passphrase forgotten): "
    "jitsuin ra revoke {id} --reason keyCompromise (the file may be in other hands) or "
    "--reason superseded (it is gone), then enter their new application form with "
    "jitsuin ra create (a new letter and PIN follow); nothing can be re-sent"
)


# Commands that act as an operator: (service, operator, args) -> an application or a document.
Action = Callable[[RAService, Operator, argparse.Namespace], Awaitable[Any]]
ACTIONS: dict[str, Action] = {
    "create": lambda ra, op, a: ra.create(op, _json_file(a.file)),
    "show": lambda ra, op, a: ra.read(op, a.id),
    "review": lambda ra, op, a: ra.review(op, a.id, _json_file(a.file)),
    "resubmit": lambda ra, op, a: ra.resubmit(op, a.id),
    "letter": lambda ra, op, a: ra.record_letter(
        op, a.id, {"signed": a.signed, "sealed": a.sealed, "selfInking": a.self_inking}
    ),
    "payment": lambda ra, op, a: ra.record_payment(
        op, a.id, {"invoiceNumber": a.invoice, "amount": a.amount}
    ),
    "approve": lambda ra, op, a: ra.approve(op, a.id),
    "reissue-pin": lambda ra, op, a: ra.reissue_pin(op, a.id),
    "reject": lambda ra, op, a: ra.close(op, a.id, Event.REJECT, {"reason": a.reason}),
    "abandon": lambda ra, op, a: ra.close(op, a.id, Event.ABANDON, {"reason": a.reason}),
    "revoke": lambda ra, op, a: ra.revoke(op, a.id, {"reason": a.reason}),
    "disclose": lambda ra, op, a: ra.disclose(op, a.id),
}


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with _service(config) as ra:
        command = args.ra_command
        if command == "operator-add":
            token = await ra.add_operator(f"cli:{getpass.getuser()}", args.name, args.role)
            print(f"operator {args.name} ({args.role}) created; API token (shown once):")
            print(_TAKE_OVER.format(name=args.name), file=sys.stderr)
            print(token)
        elif command == "operators":
            for op in await ra.store.operators():
                bound = (
                    f"\tcertificate sha256:{op.certificate_sha256}" if op.certificate_sha256 else ""
                )
                disabled = f"\tdisabled {op.disabled_at.isoformat()}" if op.disabled_at else ""
                print(f"{op.name}\t{op.role}\t{op.created_at.isoformat()}{bound}{disabled}")
        elif command == "operator-bind-cert":
            try:
                data = Path(args.cert).read_bytes()
            except OSError as exc:
                raise CLIError(f"cannot read {args.cert}: {exc.strerror}") from exc
            binding = await ra.bind_certificate(f"cli:{getpass.getuser()}", args.name, data)
            print(f"operator {args.name} may now authenticate with the TLS client certificate")
            _print(binding)
        elif command == "operator-unbind-cert":
            await ra.unbind_certificate(f"cli:{getpass.getuser()}", args.name)
            print(f"operator {args.name}: certificate binding removed (the API token still works)")
        elif command == "operator-disable":
            await ra.disable_operator(f"cli:{getpass.getuser()}", args.name)
            print(f"operator {args.name} disabled: its token and certificate no longer work")
        elif command == "operator-enable":
            await ra.enable_operator(f"cli:{getpass.getuser()}", args.name)
            print(f"operator {args.name} enabled: its token and certificate work again")
        elif command == "operator-token":
            token = await ra.rotate_operator_token(f"cli:{getpass.getuser()}", args.name)
            print(f"operator {args.name}: new API token (shown once; the old one no longer works):")
            print(_TAKE_OVER.format(name=args.name), file=sys.stderr)
            print(token)
        elif command == "own-token":
            operator = await _operator(ra)
            token = await ra.rotate_operator_token(operator, operator.name)
            print(
                f"operator {operator.name}: your new API token (shown once; the old one no longer"
            )
            print("works; nobody else has seen this one):")
            print(token)
        elif command == "send-mail":
            print(f"{await Mailer(ra, config.mail).send_due()} mail(s) delivered")
        elif command == "list":
            for a in await ra.list(await _operator(ra), args.state, args.limit, 0):
                print(f"{a.id}\t{a.state}\t{a.profile}\t{a.family_name} {a.given_name}\t{a.email}")
        elif command == "inquiry":
            body = {"trackingNumber": args.tracking}
            # Opened before the dispatch: the access code exists only in this letter, so a path
            # that cannot be written must fail before the code is made. Mode 0600: it holds it.
            try:
                fd = os.open(args.letter, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            except OSError as exc:
                raise CLIError(f"cannot write the letter {args.letter}: {exc.strerror}") from exc
            letter = Path(args.letter)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                try:
                    sent = await ra.dispatch_inquiry(await _operator(ra), args.id, body)
                except BaseException:
                    letter.unlink()
                    raise
                handle.write(sent.letter_html)
            letter.chmod(0o600)  # an existing file keeps its mode through O_TRUNC
            print(f"enrollment ID {sent.enrollment_id}; print the letter {letter}")
            print("(the access code is in the letter only; it is not stored)")
        else:
            result = await ACTIONS[command](ra, await _operator(ra), args)
            _print(application_json(result) if isinstance(result, ApplicationRecord) else result)
            if command == "show" and result.state == State.ISSUED:
                print(LOST_KEY.format(id=result.id), file=sys.stderr)
    return 0


def run_ra(args: argparse.Namespace, load: Loader) -> Any:
    async def go() -> int:
        try:
            return await _run(args, load(args))
        except RAError as exc:
            print(f"jitsuin: {exc.kind.value}: {exc.message}", file=sys.stderr)
            return 1

    return go()


def run_audit_verify(args: argparse.Namespace, load: Loader) -> Any:
    """Walk the hash chain; name the first entry that was changed, removed or reordered. Then
    account for the CA key's signatures: every recorded certificate must have an intent settled
    as issued (exit 1 otherwise), and the intents never settled, serials signed or maybe signed
    with no certificate record (a crash between signature and commit), are listed."""

    async def go() -> int:
        config = load(args)
        store = await open_store(config)
        try:
            count = await store.verify_audit_chain()
            checkpoint = await checkpoints.check(config.home, store)
            unaccounted = await store.certificates_without_intent()
            open_intents = await store.intents("reserved")
            discarded = await store.intents("discarded")
        except AuditChainBroken as exc:
            print(f"audit log BROKEN: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()
        print(f"audit log OK: {count} entries, hash chain intact")
        if checkpoint is not None:
            print(
                f"checkpoint: entry {checkpoint.seq} of {checkpoint.at.isoformat()}, signed with "
                f"{checkpoints.KEY}, is in the log"
            )
        print(
            f"signing intents: {len(open_intents)} never completed, "
            f"{len(discarded)} discarded (signed, never handed out)"
        )
        for intent in open_intents:
            print(
                f"  never completed: generation {intent.generation} serial {intent.serial:x} "
                f"profile {intent.profile} for {intent.target} by {intent.requester} "
                f"reserved {intent.reserved_at.isoformat()} (signed or maybe signed, "
                "no certificate recorded)"
            )
        if unaccounted:
            for generation, serial in unaccounted:
                print(
                    f"certificate without a signing intent: generation {generation} "
                    f"serial {serial:x}",
                    file=sys.stderr,
                )
            print(
                f"signatures UNACCOUNTED: {len(unaccounted)} certificates have no signing intent",
                file=sys.stderr,
            )
            return 1
        print("certificates: every one has its signing intent")
        return 0

    return go()


_SCHEMA = (
    "The file is the body of {route}; its schema, every field and its limits, is in\n"
    "the server's /ra/openapi.json (e.g. curl --cacert ca.pem https://localhost:8443/ra/openapi.json)."
)
_CREATE_EXAMPLE = """An example (profile general or document-manager; qualificationGroup and
qualificationNumber as the CA's [ca.groups.<id>] define; billing.addressee self or company):

  {"profile": "document-manager", "familyName": "Yamada", "givenName": "Hanako",
   "email": "hanako@example.jp", "qualificationGroup": "document-information-manager",
   "qualificationNumber": "20231234",
   "postalAddress": "1-2-3 Kasumigaseki, Chiyoda-ku, Tokyo", "dateOfBirth": "1985-04-01",
   "billing": {"addressee": "company", "company": "Example KK"}}

""" + _SCHEMA.format(route="POST /ra/applications")
_REVIEW_EXAMPLE = """An example: the day the documents arrived, and each check of the resident
record (SEED-R6...R9) and of the seal, yes or no. showsIndividualNumber records only whether the
record showed one; the number itself is never entered (SEED-R8):

  {"receivedOn": "2026-11-24",
   "residentRecord": {"issuedOn": "2026-11-01", "original": true,
                      "showsIndividualNumber": false, "nameMatches": true,
                      "addressMatches": true, "dateOfBirthMatches": true},
   "seal": {"selfInking": false}}

""" + _SCHEMA.format(route="POST /ra/applications/{id}/review")


def add_parsers(sub: argparse._SubParsersAction, load: Loader) -> None:  # type: ignore[type-arg]
    ra = sub.add_parser(
        "ra", help="RA workflow (acts as the operator of $JITSUIN_OPERATOR_TOKEN)"
    ).add_subparsers(dest="ra_command", required=True)

    def command(
        name: str, help_text: str, *, with_id: bool = True, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        p = ra.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if with_id:
            p.add_argument("id", help="application ID (APP-…)")
        p.set_defaults(handler=lambda a: run_ra(a, load))
        return p

    p = command("operator-add", "create an operator and print its API token", with_id=False)
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=["reviewer", "approver", "admin"])
    p = command(
        "operator-bind-cert",
        "let an operator authenticate with a TLS client certificate issued by this CA",
        with_id=False,
    )
    p.add_argument("name")
    p.add_argument("--cert", required=True, help="the certificate (PEM or DER)")
    p = command(
        "operator-unbind-cert", "remove an operator's TLS client certificate", with_id=False
    )
    p.add_argument("name")
    p = command(
        "operator-disable",
        "cut an operator off at once (its token and certificate stop working)",
        with_id=False,
    )
    p.add_argument("name")
    p = command("operator-enable", "let a disabled operator in again", with_id=False)
    p.add_argument("name")
    p = command(
        "operator-token", "give an operator a new API token (the old one dies)", with_id=False
    )
    p.add_argument("name")
    command(
        "own-token",
        "replace your own API token ($JITSUIN_OPERATOR_TOKEN) with one nobody else has seen",
        with_id=False,
    )
    command("operators", "list operators", with_id=False)
    command("send-mail", "deliver queued PIN e-mails now", with_id=False)
    p = command("list", "list applications", with_id=False)
    p.add_argument("--state")
    p.add_argument("--limit", type=int, default=100)
    p = command(
        "create",
        "enter an application from a JSON file (step 1)",
        with_id=False,
        epilog=_CREATE_EXAMPLE,
    )
    p.add_argument("file", help="the application (JSON, UTF-8); see below")
    command("show", "show one application")
    p = command(
        "review", "record the document review from a JSON file (step 2)", epilog=_REVIEW_EXAMPLE
    )
    p.add_argument("file", help="the review (JSON, UTF-8); see below")
    command("resubmit", "new documents arrived: review again")
    p = command("inquiry", "dispatch the inquiry letter (step 3)")
    p.add_argument("--tracking", required=True, help="restricted-delivery tracking number")
    p.add_argument("--letter", required=True, help="write the printable letter (HTML) here")
    p = command("letter", "the letter came back (step 4)")
    p.add_argument("--signed", action="store_true")
    p.add_argument("--sealed", action="store_true")
    p.add_argument("--self-inking", action="store_true", help="the seal is a self-inking stamp")
    p = command("payment", "record the payment (step 5)")
    p.add_argument("--invoice", required=True)
    p.add_argument("--amount", required=True, type=int)
    command("approve", "approve and e-mail the download PIN (steps 7-9)")
    command("reissue-pin", "e-mail a new PIN; the old one dies")
    for name in ("reject", "abandon"):
        p = command(name, f"{name} the application")
        p.add_argument("--reason", required=True)
    p = ra.add_parser(
        "revoke",
        help="revoke the application's certificate (also for a subscriber who lost the key)",
        description="Revoke the certificate of an issued application; CRL and OCSP show it at "
        "once. " + LOST_KEY.format(id="APP-…") + ".",
    )
    p.add_argument("id", help="application ID (APP-…)")
    p.add_argument(
        "--reason",
        required=True,
        help="RFC 5280 §5.3.1 reason (S/MIME BR 7.2.2): " + ", ".join(REVOCATION_REASONS),
    )
    p.set_defaults(handler=lambda a: run_ra(a, load))
    command("disclose", "export the person's personal data (SEED-R18)")

    audit = sub.add_parser("audit", help="audit log").add_subparsers(
        dest="audit_command", required=True
    )
    p = audit.add_parser(
        "verify",
        help="check the audit hash chain and that every certificate has its signing intent",
    )
    p.set_defaults(handler=lambda a: run_audit_verify(a, load))

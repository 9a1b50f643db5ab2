"""One application in the console: everything vetted and its history, and the forms of each step
(review, SEED-R6...R9; inquiry and its letter; returned letter and payment; approval under the
two-person rule; PIN reissue, reject, withdraw, revoke)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from jitsuin.ca.errors import CAError
from jitsuin.server.console.page import (
    BASE,
    CONSOLE_HEADERS,
    Page,
    app_id_of,
    console_page,
    details_cell,
    done_redirect,
    esc,
    form_flag,
    html_checkbox,
    html_field,
    html_select,
    html_table,
    notice,
    posted,
    render,
)
from jitsuin.server.http_problems import STATUS
from jitsuin.server.keys import AUTHORITY
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.letters import (
    JAPAN,
    ca_fingerprints,
    configured_letter,
    letter_style,
    split_postcode,
)
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.ra.service import REVOCATION_REASONS
from jitsuin.server.ra.workflow import OPEN_STATES, TRANSITIONS, Event, State
from jitsuin.server.storage import ApplicationRecord, Operator
from jitsuin.server.web.pages import PAGE_HEADERS

routes = web.RouteTableDef()


# -- one application ----------------------------------------------------------------------------
def _facts(page: Page, app: ApplicationRecord) -> str:
    t = page.t
    postcode, address = split_postcode(app.postal_address)
    review = app.review or {}
    deficiencies = review.get("deficiencies") or []
    review_text = t["not_yet"]
    if review:
        review_text = t["deficient"] if deficiencies else t["accepted"]
    items = [
        (t["col_state"], page.state(app.state)),
        (t["profile"], esc(app.profile)),
        (t["col_name"], page.name(app)),
        (t["email"], esc(app.email)),
        (t["group"], page.group(app.qualification_group)),
        (t["number"], esc(app.qualification_number)),
        (t["postcode"], esc(postcode or t["not_yet"])),
        (t["address"], esc(address)),
        (t["date_of_birth"], esc(app.date_of_birth)),
        (t["billing"], esc(app.billing_company or t["billing_self"])),
        (t["created_by"], f"{esc(app.created_by)} · {page.when(app.created_at)}"),
        (t["reviewed_by"], esc(app.reviewed_by or t["not_yet"])),
        (t["review_result"], esc(review_text)),
        (t["tracking"], esc(app.tracking_number or t["not_yet"])),
        (
            t["invoice"],
            esc(f"{app.invoice_number} · {app.invoice_amount:,} 円")
            if app.invoice_number
            else esc(t["not_yet"]),
        ),
        (t["enrollment_id"], esc(app.enrollment_id or t["not_yet"])),
        (t["letter_returned"], page.when(app.letter_returned_at)),
        (t["paid"], page.when(app.paid_at)),
        (t["online_input"], page.when(app.online_input_at)),
        (t["approved_by"], esc(app.approved_by or t["not_yet"])),
        (t["pin_expires"], page.when(app.pin_expires_at)),
        (
            t["certificate"],
            esc(f"#{app.certificate_generation} {app.certificate_serial}")
            if app.certificate_serial
            else esc(t["not_yet"]),
        ),
    ]
    if app.closed_reason:
        items.append((t["closed_reason"], esc(app.closed_reason)))
    facts = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items)
    told = ""
    if deficiencies:
        reasons = "".join(f"<li>{esc(t.get('def_' + d, d))}</li>" for d in deficiencies)
        told = f'<h3>{esc(t["deficiency_told"])}</h3><ul class="deficiencies">{reasons}</ul>'
    return (
        f'<section aria-labelledby="facts"><h2 id="facts">{esc(t["facts"])}</h2>'
        f'<dl class="facts">{facts}</dl>{told}</section>'
    )


def _review_form(page: Page, app: ApplicationRecord) -> str:
    t = page.t
    today = page.ra.clock.now().astimezone(JAPAN).date().isoformat()
    body = (
        html_field(t["received_on"], "receivedOn", kind="date", value=today, required="")
        + html_field(t["issued_on"], "issuedOn", kind="date", required="", hint=t["rule_r7_date"])
        + html_checkbox(t["check_original"], "original", t["rule_r7_original"])
        + html_checkbox(t["check_mynumber"], "showsIndividualNumber", t["rule_r8"])
        + html_checkbox(t["check_name"], "nameMatches", t["rule_r6"])
        + html_checkbox(t["check_address"], "addressMatches", t["rule_r6"])
        + html_checkbox(t["check_dob"], "dateOfBirthMatches", t["rule_r6"])
        + html_checkbox(t["check_self_inking"], "selfInking", t["rule_r9"])
    )
    return (
        f'<section aria-labelledby="review"><h2 id="review">{esc(t["review_title"])}</h2>'
        f"<p>{esc(t['review_intro'])}</p>"
        + page.form(
            f"{BASE}/applications/{app.id}/review",
            f"review:{app.id}",
            body,
            button=t["record_review"],
        )
        + "</section>"
    )


def _inquiry_form(page: Page, app: ApplicationRecord) -> str:
    t = page.t
    body = html_field(t["tracking"], "trackingNumber", value="", required="", autocomplete="off")
    preview = page.href(f"{BASE}/applications/{app.id}/letter-preview")
    return (
        f'<section aria-labelledby="inquiry"><h2 id="inquiry">{esc(t["inquiry_title"])}</h2>'
        f"<p>{esc(t['inquiry_intro'])}</p>"
        f'<p><a href="{esc(preview)}">{esc(t["preview"])}</a></p>'
        + page.form(
            f"{BASE}/applications/{app.id}/inquiry", f"inquiry:{app.id}", body, button=t["dispatch"]
        )
        + "</section>"
    )


def _returned_forms(page: Page, app: ApplicationRecord) -> str:
    t = page.t
    parts = [
        f'<section aria-labelledby="returned"><h2 id="returned">{esc(t["returned_title"])}</h2>'
        f"<p>{esc(t['returned_intro'])}</p>"
    ]
    if app.letter_returned_at is None:
        letter = (
            html_checkbox(t["letter_signed"], "signed", "SEED-R10")
            + html_checkbox(t["letter_sealed"], "sealed", "SEED-R10")
            + html_checkbox(t["letter_self_inking"], "selfInking", t["rule_r9"])
        )
        parts.append(
            page.form(
                f"{BASE}/applications/{app.id}/letter",
                f"letter:{app.id}",
                letter,
                button=t["record_letter"],
            )
        )
    if app.paid_at is None:
        payment = html_field(
            t["invoice_number"], "invoiceNumber", value=app.invoice_number or "", required=""
        ) + html_field(
            t["amount"],
            "amount",
            kind="number",
            value=str(app.invoice_amount or ""),
            required="",
            min="0",
            inputmode="numeric",
        )
        parts.append(
            page.form(
                f"{BASE}/applications/{app.id}/payment",
                f"payment:{app.id}",
                payment,
                button=t["record_payment"],
            )
        )
    parts.append("</section>")
    return "".join(parts)


def _approve_form(page: Page, app: ApplicationRecord, vetters: set[str]) -> str:
    """The two-person rule before the button: who entered, who reviewed, and whether the
    operator looking is one of them (the service refuses, and audits, such an approval)."""
    assert page.operator is not None
    t = page.t
    persons = {page.operator.name, *page.operator.credential_set_by}
    facts = (
        f'<dl class="facts"><dt>{esc(t["created_by"])}</dt><dd>{esc(app.created_by)}</dd>'
        f"<dt>{esc(t['reviewed_by'])}</dt><dd>{esc(app.reviewed_by or t['not_yet'])}</dd>"
        f"<dt>{esc(t['you'])}</dt><dd>{esc(page.operator.name)}</dd></dl>"
    )
    warning = ""
    if persons & {v.removeprefix("cli:") for v in vetters}:
        warning = f'<p class="warning" id="two-person-warning">{esc(t["you_vetted"])}</p>'
    return (
        f'<section aria-labelledby="approve"><h2 id="approve">{esc(t["approve_title"])}</h2>'
        f"<p>{esc(t['two_person'])}</p>{facts}{warning}"
        + page.form(
            f"{BASE}/applications/{app.id}/approve", f"approve:{app.id}", "", button=t["approve"]
        )
        + "</section>"
    )


def _closing_forms(page: Page, app: ApplicationRecord) -> str:
    t = page.t
    parts = []
    if app.state in (State.APPROVED, State.PIN_SENT):
        parts.append(
            page.form(
                f"{BASE}/applications/{app.id}/reissue-pin",
                f"reissue-pin:{app.id}",
                "",
                button=t["reissue_pin"],
            )
        )
    if app.state in OPEN_STATES:
        for event in ("reject", "abandon"):
            body = (
                f'<div class="field"><label for="f-{event}-reason">{esc(t["reason"])}</label>'
                f'<input type="text" id="f-{event}-reason" name="reason" required maxlength="512">'
                "</div>"
            )
            parts.append(
                page.form(
                    f"{BASE}/applications/{app.id}/{event}",
                    f"{event}:{app.id}",
                    body,
                    button=t[event],
                    css="danger",
                )
            )
    if app.state == State.ISSUED:
        body = html_select(
            t["revocation_reason"], "reason", [(r, r) for r in REVOCATION_REASONS]
        ) + html_checkbox(t["confirm_action"], "confirm", "RFC 5280 §5.3.1")
        parts.append(
            page.form(
                f"{BASE}/applications/{app.id}/revoke",
                f"revoke:{app.id}",
                body,
                button=t["revoke"],
                css="danger",
            )
        )
    if not parts:
        return ""
    return (
        f'<section aria-labelledby="closing"><h2 id="closing">{esc(t["close_title"])}</h2>'
        f"{''.join(parts)}</section>"
    )


async def _history(page: Page, app_id: str) -> str:
    t = page.t
    entries = await page.ra.store.audit_entries(target=f"application/{app_id}", limit=50)
    rows = [
        [
            page.when(e.event.at),
            esc(e.event.actor),
            esc(e.event.action),
            details_cell(e.event.details),
        ]
        for e in entries
        if e.event.action != "application.read"
    ]
    link = page.href(f"{BASE}/audit", target=f"application/{app_id}")
    return (
        f'<section aria-labelledby="history"><h2 id="history">{esc(t["history"])}</h2>'
        + html_table(
            t["history_entries"],
            (t["col_time"], t["col_actor"], t["col_action"], t["col_details"]),
            rows,
        )
        + f'<p><a href="{esc(link)}">{esc(t["nav_audit"])}</a></p></section>'
    )


async def application_page(
    page: Page, app_id: str, *, status: int = 200, message: str = ""
) -> web.Response:
    assert page.operator is not None
    t = page.t
    app = await page.ra.read(page.operator, app_id)
    done = page.request.query.get("done")
    if done and not message:
        message = notice("success", t["done"].format(what=t.get(done, done)))
    sections = [_facts(page, app)]
    state = State(app.state)
    if state is State.RECEIVED:
        sections.append(_review_form(page, app))
    if state is State.DOCUMENTS_DEFICIENT:
        sections.append(
            page.form(
                f"{BASE}/applications/{app.id}/resubmit",
                f"resubmit:{app.id}",
                "",
                button=t["resubmit"],
            )
        )
    if Event.DISPATCH_INQUIRY in TRANSITIONS[state] and app.access_used_at is None:
        sections.append(_inquiry_form(page, app))
    if state in (State.INQUIRY_SENT, State.IDENTITY_CONFIRMED, State.PAID):
        sections.append(_returned_forms(page, app))
    if state is State.ONLINE_INPUT_RECEIVED:
        vetters = await page.ra.store.audit_persons(
            f"application/{app.id}",
            frozenset(
                {"application.create", "application.accept_documents", "application.find_deficient"}
            ),
        )
        vetters |= {n for n in (app.created_by, app.reviewed_by) if n}
        sections.append(_approve_form(page, app, vetters))
    sections.append(_closing_forms(page, app))
    sections.append(await _history(page, app.id))
    return render(
        page,
        t["application_title"].format(id=app.id),
        "".join(sections),
        status=status,
        message=message,
    )


@routes.get(BASE + "/applications/{id}")
@console_page
async def application(page: Page) -> web.StreamResponse:
    """Everything vetted, the forms the application's state allows, and its history."""
    return await application_page(page, app_id_of(page))


async def _act(
    page: Page,
    action: str,
    call: Callable[[Operator, str, Mapping[str, str]], Awaitable[object]],
) -> web.StreamResponse:
    """One POSTed action on an application: the guard, the service call, then the page again
    (with the refusal, in the API's status, when the service refused)."""
    app_id = app_id_of(page)
    form = await posted(page, f"{action}:{app_id}")
    assert page.operator is not None
    try:
        await call(page.operator, app_id, form)
    except RAError as exc:
        if exc.kind in (RAKind.UNAUTHORIZED, RAKind.NOT_FOUND):
            raise
        detail = "; ".join(exc.extensions.get("errors", [])) or exc.message
        message = notice("error", page.t["error"].format(detail=detail))
        return await application_page(page, app_id, status=STATUS[exc.kind][0], message=message)
    except CAError as exc:
        message = notice("error", page.t["error"].format(detail=exc.message))
        return await application_page(page, app_id, status=400, message=message)
    return done_redirect(page, f"{BASE}/applications/{app_id}", action)


@routes.post(
    BASE + "/applications/{id}/{action:review|resubmit|letter|payment|approve|reissue-pin|reject|"
    "abandon|revoke}"
)
@console_page
async def application_action(page: Page) -> web.StreamResponse:
    ra = page.ra
    action = page.request.match_info["action"]

    async def review(op: Operator, app_id: str, form: Mapping[str, str]) -> object:
        body = {
            "receivedOn": form.get("receivedOn", ""),
            "residentRecord": {
                "issuedOn": form.get("issuedOn", ""),
                "original": form_flag(form, "original"),
                "showsIndividualNumber": form_flag(form, "showsIndividualNumber"),
                "nameMatches": form_flag(form, "nameMatches"),
                "addressMatches": form_flag(form, "addressMatches"),
                "dateOfBirthMatches": form_flag(form, "dateOfBirthMatches"),
            },
            "seal": {"selfInking": form_flag(form, "selfInking")},
        }
        return await ra.review(op, app_id, body)

    async def letter(op: Operator, app_id: str, form: Mapping[str, str]) -> object:
        body = {
            "signed": form_flag(form, "signed"),
            "sealed": form_flag(form, "sealed"),
            "selfInking": form_flag(form, "selfInking"),
        }
        return await ra.record_letter(op, app_id, body)

    async def payment(op: Operator, app_id: str, form: Mapping[str, str]) -> object:
        amount = form.get("amount", "").strip()
        body = {
            "invoiceNumber": form.get("invoiceNumber", "").strip(),
            "amount": int(amount) if amount.isdigit() and len(amount) < 10 else amount,
        }
        return await ra.record_payment(op, app_id, body)

    async def close(op: Operator, app_id: str, form: Mapping[str, str]) -> object:
        event = Event.REJECT if action == "reject" else Event.ABANDON
        return await ra.close(op, app_id, event, {"reason": form.get("reason", "")})

    async def revoke(op: Operator, app_id: str, form: Mapping[str, str]) -> object:
        if not form_flag(form, "confirm"):
            raise RAError(RAKind.INVALID, page.t["confirm_required"])
        return await ra.revoke(op, app_id, {"reason": form.get("reason", "")})

    calls: dict[str, Callable[[Operator, str, Mapping[str, str]], Awaitable[object]]] = {
        "review": review,
        "resubmit": lambda op, app_id, form: ra.resubmit(op, app_id),
        "letter": letter,
        "payment": payment,
        "approve": lambda op, app_id, form: ra.approve(op, app_id),
        "reissue-pin": lambda op, app_id, form: ra.reissue_pin(op, app_id),
        "reject": close,
        "abandon": close,
        "revoke": revoke,
    }
    return await _act(page, action, calls[action])


# -- the inquiry letter (step 3) ----------------------------------------------------------------
def _letter_response(page: Page, letter_html: str) -> web.Response:
    """The letter as it prints, under the console's policy plus its own inline style sheet,
    allowed by its hash (CSP Level 3 §8.3): nothing else inline runs."""
    digest = base64.b64encode(hashlib.sha256(letter_style().encode()).digest()).decode()
    policy = PAGE_HEADERS["Content-Security-Policy"].replace(
        "style-src 'self'", f"style-src 'self' 'sha256-{digest}'"
    )
    headers = {**CONSOLE_HEADERS, "Content-Security-Policy": policy}
    return web.Response(
        text=letter_html, content_type="text/html", charset="utf-8", headers=headers
    )


@routes.get(BASE + "/applications/{id}/letter-preview")
@console_page
async def letter_preview(page: Page) -> web.StreamResponse:
    """The letter with a specimen credential: nothing is recorded and no code exists."""
    assert page.operator is not None
    page.ra.allow(page.operator, Permission.DISPATCH)
    app = await page.ra.read(page.operator, app_id_of(page))
    letter = configured_letter(
        page.ra.config,
        app,
        app.enrollment_id or "XXXXX-XXXXX",
        "X" * 26,
        page.ra.clock.now().astimezone(JAPAN).date(),
        ca_fingerprints(page.request.app[AUTHORITY]),
    )
    return _letter_response(page, letter)


@routes.post(BASE + "/applications/{id}/inquiry")
@console_page
async def inquiry(page: Page) -> web.StreamResponse:
    """Record the dispatch with its tracking number; the answer is the letter to print, the
    only place its access code ever appears (SEED-R12)."""
    app_id = app_id_of(page)
    form = await posted(page, f"inquiry:{app_id}")
    assert page.operator is not None
    try:
        sent = await page.ra.dispatch_inquiry(
            page.operator, app_id, {"trackingNumber": form.get("trackingNumber", "").strip()}
        )
    except RAError as exc:
        if exc.kind in (RAKind.UNAUTHORIZED, RAKind.NOT_FOUND):
            raise
        detail = "; ".join(exc.extensions.get("errors", [])) or exc.message
        message = notice("error", page.t["error"].format(detail=detail))
        return await application_page(page, app_id, status=STATUS[exc.kind][0], message=message)
    letter = sent.letter_html
    return _letter_response(page, letter)

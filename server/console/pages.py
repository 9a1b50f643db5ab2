"""The RA console's pages and forms under /ra/console/ (HTTPS listener only).

Every page is rendered on the server, in Japanese (default) or English (``?lang=en``), under the
applicant pages' Content-Security-Policy (SEED-R18): no script at all, no inline style, nothing
from elsewhere. The operator is whoever the TLS client certificate bound to an operator account
names (no password, no cookie). Every action is the RA service call the operator API makes, so
roles, the two-person rule and the audit entries are the API's; every state-changing form is
checked against cross-site requests (``guard``)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib import resources
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from jitsuin.ca.errors import CAError
from jitsuin.ca.profiles import PERSONAL_PROFILES
from jitsuin.server.acme.service import AcmeService
from jitsuin.server.console import guard
from jitsuin.server.console.strings import DEFAULT_LANGUAGE, LANGUAGES, text
from jitsuin.server.fingerprint import fingerprint_rows
from jitsuin.server.http_problems import STATUS
from jitsuin.server.keys import ACME, AUTHORITY, RA
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.letters import (
    JAPAN,
    ca_fingerprints,
    configured_letter,
    display_name,
    letter_style,
    split_postcode,
)
from jitsuin.server.ra.oversight import MAIL_STATUSES
from jitsuin.server.ra.permissions import ROLES, Permission
from jitsuin.server.ra.service import REVOCATION_REASONS, RAService
from jitsuin.server.ra.workflow import OPEN_STATES, TRANSITIONS, Event, State
from jitsuin.server.storage import ApplicationRecord, AuditChainBroken, NotFound, Operator
from jitsuin.server.web.pages import PAGE_HEADERS

routes = web.RouteTableDef()
BASE = "/ra/console"
# The applicant pages' headers, but the referrer policy "same-origin": under "no-referrer"
# Chromium sends "Origin: null" with a form post, and the guard could not tell the console's own
# forms from another site's (no referrer still leaves for any other origin).
CONSOLE_HEADERS = {**PAGE_HEADERS, "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}
PAGE_SIZE = 25
_APPLICATION_ID = re.compile(r"APP-[0-9A-Z]{8}")
_OPERATOR_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
_KID = re.compile(r"kid-[A-Za-z0-9_-]{1,64}")
Text = Mapping[str, str]


def _static() -> dict[str, bytes]:
    folder = resources.files("jitsuin.server.console").joinpath("static")
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.name.endswith(".css")}


STATIC = _static()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# -- request context -----------------------------------------------------------------------------
class Page:
    """One request to the console: the operator, the language and the page's words."""

    def __init__(self, request: web.Request, operator: Operator | None) -> None:
        self.request = request
        self.operator = operator
        lang = request.query.get("lang", DEFAULT_LANGUAGE)
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self.t = text(self.lang)
        self.ra: RAService = request.app[RA]

    def href(self, path: str, **query: object) -> str:
        params = {k: str(v) for k, v in query.items() if v not in (None, "")}
        if self.lang != DEFAULT_LANGUAGE:
            params["lang"] = self.lang
        return path + ("?" + urllib.parse.urlencode(params) if params else "")

    def when(self, moment: dt.datetime | None) -> str:
        """A time as the page's reader reads it: Japan time in Japanese, UTC in English."""
        if moment is None:
            return _e(self.t["not_yet"])
        shown = moment.astimezone(JAPAN) if self.lang == "ja" else moment.astimezone(dt.UTC)
        zone = "JST" if self.lang == "ja" else "UTC"
        return f'<time datetime="{moment.isoformat()}">{shown:%Y-%m-%d %H:%M} {zone}</time>'

    def state(self, state: str) -> str:
        return _e(self.t.get(f"state_{state}", state))

    def group(self, group_id: str) -> str:
        configured = self.ra.config.ca.groups.get(group_id)
        return _e(self.t.get(f"group_{group_id}", configured.title if configured else group_id))

    def name(self, app: ApplicationRecord) -> str:
        return _e(display_name(app, self.ra.config.ca.name_order))

    def form(self, path: str, action: str, body: str, *, button: str, css: str = "") -> str:
        """A POST form to ``path`` with its cross-site token for (operator, ``action``)."""
        assert self.operator is not None
        token = guard.form_token(self.ra.keyring, self.operator.name, action, self.ra.clock.now())
        klass = f' class="{css}"' if css else ""
        return (
            f'<form method="post" action="{_e(self.href(path))}"{klass}>'
            f'<input type="hidden" name="token" value="{_e(token)}">{body}'
            f'<p class="actions"><button type="submit">{_e(button)}</button></p></form>'
        )


def _nav(page: Page) -> str:
    items = [
        (f"{BASE}/", "nav_queue"),
        (f"{BASE}/new", "nav_new"),
        (f"{BASE}/mail", "nav_mail"),
        (f"{BASE}/audit", "nav_audit"),
        (f"{BASE}/ca", "nav_ca"),
        (f"{BASE}/operators", "nav_operators"),
        (f"{BASE}/acme", "nav_acme"),
    ]
    path = page.request.path
    return "".join(
        f'<li><a href="{_e(page.href(target))}"'
        + (' aria-current="page"' if path == target else "")
        + f">{_e(page.t[key])}</a></li>"
        for target, key in items
    )


def render(
    page: Page, title: str, body: str, *, status: int = 200, message: str = ""
) -> web.Response:
    t = page.t
    other = "en" if page.lang == "ja" else "ja"
    query = {k: v for k, v in page.request.query.items() if k != "lang"}
    if other != DEFAULT_LANGUAGE:
        query["lang"] = other
    switch = page.request.path + ("?" + urllib.parse.urlencode(query) if query else "")
    who = ""
    nav = ""
    if page.operator is not None:
        role = t.get(f"role_{page.operator.role}", page.operator.role)
        signed_in = t["signed_in"].format(name=page.operator.name, role=role)
        who = f'<p class="operator">{_e(signed_in)}</p>'
        nav = f'<nav aria-label="{_e(t["nav"])}"><ul>{_nav(page)}</ul></nav>'
    document = f"""<!doctype html>
<html lang="{page.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} — {_e(t["site"])}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
<link rel="stylesheet" href="{BASE}/static/console.css">
</head>
<body class="console">
<a class="skip" href="#main">{_e(t["skip"])}</a>
<header>
<p class="brand"><a href="{_e(page.href(BASE + "/"))}">{_e(t["site"])}</a></p>
{nav}
{who}
<p class="language"><a href="{_e(switch)}" hreflang="{other}" lang="{other}">
{_e(t["switch_language"])}</a></p>
</header>
<main id="main" tabindex="-1">
<h1>{_e(title)}</h1>
{message}
{body}
</main>
</body>
</html>
"""
    headers = {**CONSOLE_HEADERS, "Content-Language": page.lang}
    return web.Response(
        text=document, status=status, content_type="text/html", charset="utf-8", headers=headers
    )


def _message(kind: str, words: str) -> str:
    role = "alert" if kind == "error" else "status"
    return f'<div class="message {kind}" role="{role}"><p>{_e(words)}</p></div>'


# -- authentication and the guard ----------------------------------------------------------------
def _peer_certificate(request: web.Request) -> bytes | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True) or None


async def _operator(request: web.Request) -> Operator:
    """The operator whose bound TLS client certificate the browser presented. There is no other
    way in: no password, no cookie, and no bearer token (the API and CLI keep those)."""
    peer = _peer_certificate(request)
    if peer is None:
        raise RAError(RAKind.UNAUTHORIZED, "no TLS client certificate was presented")
    return await request.app[RA].authenticate_certificate(peer)


Handler = Callable[[Page], Awaitable[web.StreamResponse]]


def console_page(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Sign the operator in, and turn a refusal into a page in the reader's language."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        page = Page(request, None)
        try:
            page.operator = await _operator(request)
        except RAError as exc:
            body = f"<p>{_e(page.t['unauthorized_text'])}</p>" + _message(
                "error", page.t["unauthorized_detail"].format(reason=exc.message)
            )
            return render(page, page.t["unauthorized_title"], body, status=401)
        try:
            return await handler(page)
        except guard.CrossSite as exc:
            body = f"<p>{_e(page.t['cross_site_text'])}</p>" + _message("error", str(exc))
            return render(page, page.t["cross_site_title"], body, status=403)
        except RAError as exc:
            status = STATUS[exc.kind][0]
            title = page.t["not_found_title" if status == 404 else "forbidden_title"]
            return render(page, title, _message("error", exc.message), status=status)
        except CAError as exc:  # the CA refused (a rollover, say): its message, never a 500
            return render(
                page, page.t["forbidden_title"], _message("error", exc.message), status=400
            )

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def posted(page: Page, action: str) -> Mapping[str, str]:
    """The form of a POST that passed both cross-site checks, for ``action``."""
    assert page.operator is not None
    request = page.request
    guard.check_same_origin(request, page.ra.config.server.public_https_url)
    form = await request.post()
    token = form.get("token")
    guard.check_token(
        page.ra.keyring,
        page.operator.name,
        action,
        token if isinstance(token, str) else "",
        page.ra.clock.now(),
    )
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _done(page: Page, path: str, what: str) -> web.Response:
    """POST/redirect/GET: the page again, saying what was recorded."""
    raise web.HTTPSeeOther(page.href(path, done=what))


def _app_id(page: Page) -> str:
    raw = page.request.match_info["id"]
    if not _APPLICATION_ID.fullmatch(raw):
        raise RAError(RAKind.NOT_FOUND, f"there is no application {raw[:40]!r}")
    return raw


def _duration(page: Page, since: dt.datetime) -> str:
    seconds = max(int((page.ra.clock.now() - since).total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    if days:
        return page.t["duration_days"].format(d=days, h=hours)
    return page.t["duration_hours"].format(h=hours, m=minutes)


def _field(
    label: str, name: str, *, kind: str = "text", value: str = "", hint: str = "", **attrs: str
) -> str:
    ident = f"f-{name.replace('.', '-')}"
    extra = "".join(f' {k.replace("_", "-")}="{_e(v)}"' for k, v in attrs.items())
    hint_html = f'<p class="hint" id="{ident}-hint">{_e(hint)}</p>' if hint else ""
    described = f' aria-describedby="{ident}-hint"' if hint else ""
    return (
        f'<div class="field"><label for="{ident}">{_e(label)}</label>{hint_html}'
        f'<input type="{kind}" id="{ident}" name="{_e(name)}" value="{_e(value)}"'
        f"{described}{extra}></div>"
    )


def _check(label: str, name: str, rule: str, *, checked: bool = False) -> str:
    ident = f"f-{name}"
    return (
        f'<div class="choice rule"><input type="checkbox" id="{ident}" name="{name}" value="yes"'
        f'{" checked" if checked else ""} aria-describedby="{ident}-rule">'
        f'<label for="{ident}">{_e(label)}</label>'
        f'<span class="rule-cite" id="{ident}-rule">{_e(rule)}</span></div>'
    )


def _select(label: str, name: str, options: Iterable[tuple[str, str]], selected: str = "") -> str:
    ident = f"f-{name}"
    choices = "".join(
        f'<option value="{_e(v)}"{" selected" if v == selected else ""}>{_e(words)}</option>'
        for v, words in options
    )
    return (
        f'<div class="field"><label for="{ident}">{_e(label)}</label>'
        f'<select id="{ident}" name="{name}">{choices}</select></div>'
    )


def _table(caption: str, heads: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="table-scroll" role="region" aria-label="{_e(caption)}" tabindex="0">'
        f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


# -- queue ---------------------------------------------------------------------------------------
@routes.get(BASE)
async def console_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(
        f"{BASE}/" + (f"?{request.query_string}" if request.query_string else "")
    )


@routes.get(BASE + "/")
@console_page
async def queue(page: Page) -> web.StreamResponse:
    """Applications by state, the time each has spent in it, searched and paged on the server."""
    assert page.operator is not None
    t, ra, query = page.t, page.ra, page.request.query
    state = query.get("state", "")
    if state and state not in State.__members__.values():
        state = ""
    search = query.get("q", "").strip()[:256]
    offset_text = query.get("offset", "0")
    digits = offset_text.isascii() and offset_text.isdigit() and len(offset_text) < 10
    offset = int(offset_text) if digits else 0
    more = False
    if search:
        apps: list[ApplicationRecord] = []
        if _APPLICATION_ID.fullmatch(search.upper()):
            try:
                apps = [await ra.read(page.operator, search.upper())]
            except RAError as exc:
                if exc.kind is not RAKind.NOT_FOUND:
                    raise
        else:
            # A whole e-mail address, or a part of the name (family or given, as stored):
            # names and addresses are personal data, so the read is audited (SEED-R18).
            ra.allow(page.operator, Permission.READ)
            if "@" in search:
                apps = await ra.store.applications_by_email(search.lower())
            else:
                apps = await ra.store.applications_by_name(search, PAGE_SIZE + 1, offset)
                more = len(apps) > PAGE_SIZE
                apps = apps[:PAGE_SIZE]
            await ra.audit_read(
                page.operator, "application.search", "applications", [a.id for a in apps]
            )
    else:
        apps = await ra.list(page.operator, state or None, PAGE_SIZE + 1, offset)
        more = len(apps) > PAGE_SIZE
        apps = apps[:PAGE_SIZE]
    states = [("", t["all_states"])] + [(s.value, t[f"state_{s.value}"]) for s in State]
    filters = f"""<form method="get" action="{BASE}/" class="filters" role="search">
{'<input type="hidden" name="lang" value="en">' if page.lang == "en" else ""}
{_select(t["state"], "state", states, state)}
{_field(t["search"], "q", kind="search", value=search, hint=t["search_hint"])}
<p class="actions"><button type="submit">{_e(t["search_button"])}</button></p>
</form>"""
    rows = [
        [
            f'<a href="{_e(page.href(f"{BASE}/applications/{a.id}"))}">{_e(a.id)}</a>',
            page.name(a),
            page.state(a.state),
            _e(_duration(page, a.updated_at)),
            page.when(a.created_at),
        ]
        for a in apps
    ]
    listing = (
        _table(
            t["queue_title"],
            (t["col_id"], t["col_name"], t["col_state"], t["col_in_state"], t["col_created"]),
            rows,
        )
        if rows
        else f"<p>{_e(t['none_found'])}</p>"
    )
    links = []
    if offset > 0:
        back = max(offset - PAGE_SIZE, 0)
        links.append(
            f'<a href="{_e(page.href(BASE + "/", state=state, q=search, offset=back))}"'
            ' rel="prev">'
            f"{_e(t['previous'])}</a>"
        )
    if more:
        forward = offset + PAGE_SIZE
        links.append(
            f'<a href="{_e(page.href(BASE + "/", state=state, q=search, offset=forward))}"'
            f' rel="next">{_e(t["next"])}</a>'
        )
    paging = ""
    if rows and (more or offset > 0 or not search):
        span = t["page_of"].format(first=offset + 1, last=offset + len(rows))
        paging = (
            f'<nav aria-label="{_e(t["paging"])}" class="paging">'
            f"<p>{_e(span)} {' '.join(links)}</p></nav>"
        )
    return render(page, t["queue_title"], filters + listing + paging)


# -- receive (step 1) ---------------------------------------------------------------------------
def _new_form(page: Page, values: Mapping[str, str]) -> str:
    t = page.t
    groups = [(g, page.group(g)) for g in page.ra.config.ca.groups]
    billing = values.get("billing", "self")
    radios = "".join(
        f'<div class="choice"><input type="radio" name="billing" id="f-billing-{v}" value="{v}"'
        f'{" checked" if billing == v else ""}><label for="f-billing-{v}">'
        f"{_e(t['billing_' + v])}</label></div>"
        for v in ("self", "company")
    )
    body = (
        _select(
            t["profile"], "profile", [(p, p) for p in PERSONAL_PROFILES], values.get("profile", "")
        )
        + _field(
            t["family_name"],
            "familyName",
            value=values.get("familyName", ""),
            required="",
            autocomplete="off",
        )
        + _field(
            t["given_name"],
            "givenName",
            value=values.get("givenName", ""),
            required="",
            autocomplete="off",
        )
        + _field(
            t["email"],
            "email",
            kind="email",
            value=values.get("email", ""),
            required="",
            autocomplete="off",
        )
        + _select(t["group"], "qualificationGroup", groups, values.get("qualificationGroup", ""))
        + _field(
            t["number"],
            "qualificationNumber",
            value=values.get("qualificationNumber", ""),
            required="",
        )
        + _field(
            t["postcode"],
            "postcode",
            value=values.get("postcode", ""),
            hint=t["postcode_hint"],
            inputmode="numeric",
            pattern="[0-9]{3}-?[0-9]{4}",
        )
        + _field(t["address"], "postalAddress", value=values.get("postalAddress", ""), required="")
        + _field(
            t["date_of_birth"],
            "dateOfBirth",
            kind="date",
            value=values.get("dateOfBirth", ""),
            required="",
        )
        + f"<fieldset><legend>{_e(t['billing'])}</legend>{radios}</fieldset>"
        + _field(t["company"], "company", value=values.get("company", ""))
    )
    return f"<p>{_e(t['new_intro'])}</p>" + page.form(
        f"{BASE}/new", "create", body, button=t["create"]
    )


@routes.get(BASE + "/new")
@console_page
async def new_application(page: Page) -> web.StreamResponse:
    page.ra.allow(page.operator, Permission.CREATE)
    return render(page, page.t["new_title"], _new_form(page, {}))


@routes.post(BASE + "/new")
@console_page
async def create_application(page: Page) -> web.StreamResponse:
    form = await posted(page, "create")
    assert page.operator is not None
    postcode = form.get("postcode", "").strip()
    address = form.get("postalAddress", "").strip()
    if postcode:
        # The postcode travels at the head of the address, where the letter finds it.
        address = f"〒{postcode} {address}"
    company = form.get("company", "").strip()
    billing: dict[str, Any] = {"addressee": form.get("billing", "self")}
    if billing["addressee"] == "company":
        billing["company"] = company
    data = {
        "profile": form.get("profile", ""),
        "familyName": form.get("familyName", "").strip(),
        "givenName": form.get("givenName", "").strip(),
        "email": form.get("email", "").strip(),
        "qualificationGroup": form.get("qualificationGroup", ""),
        "qualificationNumber": form.get("qualificationNumber", "").strip(),
        "postalAddress": address,
        "dateOfBirth": form.get("dateOfBirth", ""),
        "billing": billing,
    }
    try:
        app = await page.ra.create(page.operator, data)
    except RAError as exc:
        if exc.kind is not RAKind.INVALID and exc.kind is not RAKind.MALFORMED:
            raise
        detail = "; ".join(exc.extensions.get("errors", [])) or exc.message
        message = _message("error", page.t["error"].format(detail=detail))
        return render(page, page.t["new_title"], _new_form(page, form), status=422, message=message)
    return _done(page, f"{BASE}/applications/{app.id}", "create")


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
        (t["profile"], _e(app.profile)),
        (t["col_name"], page.name(app)),
        (t["email"], _e(app.email)),
        (t["group"], page.group(app.qualification_group)),
        (t["number"], _e(app.qualification_number)),
        (t["postcode"], _e(postcode or t["not_yet"])),
        (t["address"], _e(address)),
        (t["date_of_birth"], _e(app.date_of_birth)),
        (t["billing"], _e(app.billing_company or t["billing_self"])),
        (t["created_by"], f"{_e(app.created_by)} · {page.when(app.created_at)}"),
        (t["reviewed_by"], _e(app.reviewed_by or t["not_yet"])),
        (t["review_result"], _e(review_text)),
        (t["tracking"], _e(app.tracking_number or t["not_yet"])),
        (
            t["invoice"],
            _e(f"{app.invoice_number} · {app.invoice_amount:,} 円")
            if app.invoice_number
            else _e(t["not_yet"]),
        ),
        (t["enrollment_id"], _e(app.enrollment_id or t["not_yet"])),
        (t["letter_returned"], page.when(app.letter_returned_at)),
        (t["paid"], page.when(app.paid_at)),
        (t["online_input"], page.when(app.online_input_at)),
        (t["approved_by"], _e(app.approved_by or t["not_yet"])),
        (t["pin_expires"], page.when(app.pin_expires_at)),
        (
            t["certificate"],
            _e(f"#{app.certificate_generation} {app.certificate_serial}")
            if app.certificate_serial
            else _e(t["not_yet"]),
        ),
    ]
    if app.closed_reason:
        items.append((t["closed_reason"], _e(app.closed_reason)))
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items)
    told = ""
    if deficiencies:
        reasons = "".join(f"<li>{_e(t.get('def_' + d, d))}</li>" for d in deficiencies)
        told = f'<h3>{_e(t["deficiency_told"])}</h3><ul class="deficiencies">{reasons}</ul>'
    return (
        f'<section aria-labelledby="facts"><h2 id="facts">{_e(t["facts"])}</h2>'
        f'<dl class="facts">{facts}</dl>{told}</section>'
    )


def _review_form(page: Page, app: ApplicationRecord) -> str:
    t = page.t
    today = page.ra.clock.now().astimezone(JAPAN).date().isoformat()
    body = (
        _field(t["received_on"], "receivedOn", kind="date", value=today, required="")
        + _field(t["issued_on"], "issuedOn", kind="date", required="", hint=t["rule_r7_date"])
        + _check(t["check_original"], "original", t["rule_r7_original"])
        + _check(t["check_mynumber"], "showsIndividualNumber", t["rule_r8"])
        + _check(t["check_name"], "nameMatches", t["rule_r6"])
        + _check(t["check_address"], "addressMatches", t["rule_r6"])
        + _check(t["check_dob"], "dateOfBirthMatches", t["rule_r6"])
        + _check(t["check_self_inking"], "selfInking", t["rule_r9"])
    )
    return (
        f'<section aria-labelledby="review"><h2 id="review">{_e(t["review_title"])}</h2>'
        f"<p>{_e(t['review_intro'])}</p>"
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
    body = _field(t["tracking"], "trackingNumber", value="", required="", autocomplete="off")
    preview = page.href(f"{BASE}/applications/{app.id}/letter-preview")
    return (
        f'<section aria-labelledby="inquiry"><h2 id="inquiry">{_e(t["inquiry_title"])}</h2>'
        f"<p>{_e(t['inquiry_intro'])}</p>"
        f'<p><a href="{_e(preview)}">{_e(t["preview"])}</a></p>'
        + page.form(
            f"{BASE}/applications/{app.id}/inquiry", f"inquiry:{app.id}", body, button=t["dispatch"]
        )
        + "</section>"
    )


def _returned_forms(page: Page, app: ApplicationRecord) -> str:
    t = page.t
    parts = [
        f'<section aria-labelledby="returned"><h2 id="returned">{_e(t["returned_title"])}</h2>'
        f"<p>{_e(t['returned_intro'])}</p>"
    ]
    if app.letter_returned_at is None:
        letter = (
            _check(t["letter_signed"], "signed", "SEED-R10")
            + _check(t["letter_sealed"], "sealed", "SEED-R10")
            + _check(t["letter_self_inking"], "selfInking", t["rule_r9"])
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
        payment = _field(
            t["invoice_number"], "invoiceNumber", value=app.invoice_number or "", required=""
        ) + _field(
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
        f'<dl class="facts"><dt>{_e(t["created_by"])}</dt><dd>{_e(app.created_by)}</dd>'
        f"<dt>{_e(t['reviewed_by'])}</dt><dd>{_e(app.reviewed_by or t['not_yet'])}</dd>"
        f"<dt>{_e(t['you'])}</dt><dd>{_e(page.operator.name)}</dd></dl>"
    )
    warning = ""
    if persons & {v.removeprefix("cli:") for v in vetters}:
        warning = f'<p class="warning" id="two-person-warning">{_e(t["you_vetted"])}</p>'
    return (
        f'<section aria-labelledby="approve"><h2 id="approve">{_e(t["approve_title"])}</h2>'
        f"<p>{_e(t['two_person'])}</p>{facts}{warning}"
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
                f'<div class="field"><label for="f-{event}-reason">{_e(t["reason"])}</label>'
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
        body = _select(
            t["revocation_reason"], "reason", [(r, r) for r in REVOCATION_REASONS]
        ) + _check(t["confirm_action"], "confirm", "RFC 5280 §5.3.1")
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
        f'<section aria-labelledby="closing"><h2 id="closing">{_e(t["close_title"])}</h2>'
        f"{''.join(parts)}</section>"
    )


async def _history(page: Page, app_id: str) -> str:
    t = page.t
    entries = await page.ra.store.audit_entries(target=f"application/{app_id}", limit=50)
    rows = [
        [page.when(e.event.at), _e(e.event.actor), _e(e.event.action), _details(e.event.details)]
        for e in entries
        if e.event.action != "application.read"
    ]
    link = page.href(f"{BASE}/audit", target=f"application/{app_id}")
    return (
        f'<section aria-labelledby="history"><h2 id="history">{_e(t["history"])}</h2>'
        + _table(
            t["history_entries"],
            (t["col_time"], t["col_actor"], t["col_action"], t["col_details"]),
            rows,
        )
        + f'<p><a href="{_e(link)}">{_e(t["nav_audit"])}</a></p></section>'
    )


def _details(details: Mapping[str, Any]) -> str:
    shown = {
        k: v
        for k, v in details.items()
        if k not in ("credential", "credentialSetBy") and v not in (None, [], {})
    }
    return "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in shown.items())


async def application_page(
    page: Page, app_id: str, *, status: int = 200, message: str = ""
) -> web.Response:
    assert page.operator is not None
    t = page.t
    app = await page.ra.read(page.operator, app_id)
    done = page.request.query.get("done")
    if done and not message:
        message = _message("success", t["done"].format(what=t.get(done, done)))
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
    return await application_page(page, _app_id(page))


def _flag(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) == "yes"


async def _act(
    page: Page,
    action: str,
    call: Callable[[Operator, str, Mapping[str, str]], Awaitable[object]],
) -> web.StreamResponse:
    """One POSTed action on an application: the guard, the service call, then the page again
    (with the refusal, in the API's status, when the service refused)."""
    app_id = _app_id(page)
    form = await posted(page, f"{action}:{app_id}")
    assert page.operator is not None
    try:
        await call(page.operator, app_id, form)
    except RAError as exc:
        if exc.kind in (RAKind.UNAUTHORIZED, RAKind.NOT_FOUND):
            raise
        detail = "; ".join(exc.extensions.get("errors", [])) or exc.message
        message = _message("error", page.t["error"].format(detail=detail))
        return await application_page(page, app_id, status=STATUS[exc.kind][0], message=message)
    except CAError as exc:
        message = _message("error", page.t["error"].format(detail=exc.message))
        return await application_page(page, app_id, status=400, message=message)
    return _done(page, f"{BASE}/applications/{app_id}", action)


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
                "original": _flag(form, "original"),
                "showsIndividualNumber": _flag(form, "showsIndividualNumber"),
                "nameMatches": _flag(form, "nameMatches"),
                "addressMatches": _flag(form, "addressMatches"),
                "dateOfBirthMatches": _flag(form, "dateOfBirthMatches"),
            },
            "seal": {"selfInking": _flag(form, "selfInking")},
        }
        return await ra.review(op, app_id, body)

    async def letter(op: Operator, app_id: str, form: Mapping[str, str]) -> object:
        body = {
            "signed": _flag(form, "signed"),
            "sealed": _flag(form, "sealed"),
            "selfInking": _flag(form, "selfInking"),
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
        if not _flag(form, "confirm"):
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
    app = await page.ra.read(page.operator, _app_id(page))
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
    app_id = _app_id(page)
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
        message = _message("error", page.t["error"].format(detail=detail))
        return await application_page(page, app_id, status=STATUS[exc.kind][0], message=message)
    letter = sent.letter_html
    return _letter_response(page, letter)


# -- mail queue ---------------------------------------------------------------------------------
@routes.get(BASE + "/mail")
@console_page
async def mail(page: Page) -> web.StreamResponse:
    """The outbox as ``GET /ra/mail`` gives it: failures, retries, and a retry button."""
    assert page.operator is not None
    ra, t = page.ra, page.t
    status = page.request.query.get("status", "")
    if status not in MAIL_STATUSES:
        status = ""
    records = await ra.mail(page.operator, status or None, 100)
    rows = []
    for m in records:
        retry = ""
        if m.status == "failed":
            retry = page.form(
                f"{BASE}/mail/{m.id}/retry", f"mail-retry:{m.id}", "", button=t["retry"]
            )
        app_link = page.href(f"{BASE}/applications/{m.application_id}")
        rows.append(
            [
                f'<a href="{_e(app_link)}">{_e(m.application_id)}</a>',
                _e(m.recipient),
                _e(t.get(f"mail_{m.status}", m.status)),
                str(m.attempts),
                _e(m.last_error or ""),
                page.when(m.next_attempt_at),
                retry,
            ]
        )
    options = [("", t["all_states"])] + [
        (s, t[f"mail_{s}"]) for s in ("pending", "sent", "failed", "superseded")
    ]
    filters = f"""<form method="get" action="{BASE}/mail" class="filters">
{'<input type="hidden" name="lang" value="en">' if page.lang == "en" else ""}
{_select(t["mail_status"], "status", options, status)}
<p class="actions"><button type="submit">{_e(t["search_button"])}</button></p></form>"""
    heads = (
        t["col_id"],
        t["col_recipient"],
        t["mail_status"],
        t["col_attempts"],
        t["col_error"],
        t["col_next"],
        t["col_actions"],
    )
    listing = _table(t["mail_title"], heads, rows) if rows else f"<p>{_e(t['none_found'])}</p>"
    return render(page, t["mail_title"], filters + listing)


@routes.post(BASE + "/mail/{id:[0-9]{1,18}}/retry")
@console_page
async def mail_retry(page: Page) -> web.StreamResponse:
    mail_id = int(page.request.match_info["id"])
    await posted(page, f"mail-retry:{mail_id}")
    assert page.operator is not None
    await page.ra.retry_mail(page.operator, mail_id)
    return _done(page, f"{BASE}/mail", "retry")


# -- audit log ----------------------------------------------------------------------------------
@routes.get(BASE + "/audit")
@console_page
async def audit(page: Page) -> web.StreamResponse:
    """The audit log, newest first, by application or operator, paged by sequence number; the
    verify button runs the check ``jitsuin audit verify`` runs."""
    assert page.operator is not None
    ra, t, query = page.ra, page.t, page.request.query
    ra.allow(page.operator, Permission.AUDIT_READ)
    target = query.get("target", "").strip()[:200] or None
    actor = query.get("actor", "").strip()[:200] or None
    before_text = query.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 15 else None
    message = ""
    if query.get("verify") == "1":
        try:
            count = await ra.verify_audit(page.operator)
            message = _message("success", t["verify_ok"].format(n=count))
        except AuditChainBroken as exc:
            message = _message("error", t["verify_broken"].format(error=exc))
    entries = await ra.store.audit_entries(target, actor, before, PAGE_SIZE)
    rows = [
        [
            str(e.seq),
            page.when(e.event.at),
            _e(e.event.actor),
            _e(e.event.action),
            _e(e.event.target),
            _details(e.event.details),
        ]
        for e in entries
    ]
    filters = f"""<form method="get" action="{BASE}/audit" class="filters">
{'<input type="hidden" name="lang" value="en">' if page.lang == "en" else ""}
{_field(t["audit_target"], "target", value=target or "")}
{_field(t["audit_actor"], "actor", value=actor or "")}
<p class="actions"><button type="submit">{_e(t["search_button"])}</button>
<button type="submit" name="verify" value="1" class="secondary">{_e(t["verify"])}</button></p>
</form>"""
    heads = (
        "#",
        t["col_time"],
        t["col_actor"],
        t["col_action"],
        t["audit_target"],
        t["col_details"],
    )
    listing = _table(t["audit_title"], heads, rows) if rows else f"<p>{_e(t['none_found'])}</p>"
    older = ""
    if len(entries) == PAGE_SIZE:
        link = page.href(f"{BASE}/audit", target=target, actor=actor, before=entries[-1].seq)
        older = f'<p><a href="{_e(link)}" rel="next">{_e(t["older"])}</a></p>'
    return render(page, t["audit_title"], filters + listing + older, message=message)


# -- CA -----------------------------------------------------------------------------------------
def _fingerprint(certificate: x509.Certificate) -> str:
    rows = fingerprint_rows(certificate.fingerprint(hashes.SHA256()).hex())
    return "".join(
        f"<span>{row}{':' if i < len(rows) - 1 else ''}</span>" for i, row in enumerate(rows)
    )


@routes.get(BASE + "/ca")
@console_page
async def ca(page: Page) -> web.StreamResponse:
    """Generations, the issuance cut-off and the rollover warning, link certificates, CRL
    status (SEED-R15...R17), and the rollover for an admin."""
    assert page.operator is not None
    t, ra = page.t, page.ra
    ra.allow(page.operator, Permission.READ)
    authority = page.request.app[AUTHORITY]
    config = ra.config
    now = ra.clock.now()
    cards = []
    for g in reversed(authority.generations):
        cert = g.certificate
        cutoff = g.issuance_cutoff(config.ca.cutoff_margin)
        crl = x509.load_der_x509_crl(await authority.crl(g.number))
        badge = (
            f' <span class="badge">{_e(t["current"])}</span>'
            if g.number == authority.current.number
            else ""
        )
        warning = ""
        if g.number == authority.current.number and cutoff - now <= config.ca.rollover_warning:
            days = max((cutoff - now).days, 0)
            warning = f'<p class="warning">{_e(t["rollover_warning"].format(days=days))}</p>'
        crl_text = t["crl_status"].format(
            this=page.when(crl.last_update_utc), next=page.when(crl.next_update_utc)
        )
        cards.append(
            f"""<section class="certificate" aria-labelledby="gen-{g.number}">
<h2 id="gen-{g.number}">{_e(t["generation"].format(n=g.number))}{badge}</h2>{warning}
<dl class="facts">
<dt>{_e(t["validity"])}</dt>
<dd>{page.when(cert.not_valid_before_utc)} – {page.when(cert.not_valid_after_utc)}</dd>
<dt>{_e(t["cutoff"])}</dt><dd>{page.when(cutoff)}</dd>
<dt>{_e(t["fingerprint"])}</dt><dd><code class="fingerprint">{_fingerprint(cert)}</code></dd>
<dt>{_e(t["crl"])}</dt><dd>{crl_text}</dd>
</dl></section>"""
        )
    links = "".join(
        f"<li>{link.old} → {link.new}: "
        f'<a href="/ca/links/{link.old}-{link.new}/old-with-new.pem">old-with-new</a> · '
        f'<a href="/ca/links/{link.old}-{link.new}/new-with-old.pem">new-with-old</a></li>'
        for link in authority.links
    )
    links_html = f"<h2>{_e(t['links'])}</h2>" + (
        f"<ul>{links}</ul>" if links else f"<p>{_e(t['no_links'])}</p>"
    )
    rollover = ""
    if page.operator.role == "admin":
        body = _check(t["confirm_action"], "confirm", "SEED-R15")
        rollover = (
            f'<section aria-labelledby="rollover"><h2 id="rollover">{_e(t["rollover"])}</h2>'
            f"<p>{_e(t['rollover_intro'])}</p>"
            + page.form(
                f"{BASE}/ca/rollover", "rollover", body, button=t["rollover_button"], css="danger"
            )
            + "</section>"
        )
    done = page.request.query.get("done")
    message = _message("success", t["done"].format(what=t.get(done, done))) if done else ""
    return render(page, t["ca_title"], "".join(cards) + links_html + rollover, message=message)


@routes.post(BASE + "/ca/rollover")
@console_page
async def rollover(page: Page) -> web.StreamResponse:
    form = await posted(page, "rollover")
    assert page.operator is not None
    page.ra.allow(page.operator, Permission.CA_ROLLOVER)
    if not _flag(form, "confirm"):
        raise RAError(RAKind.INVALID, page.t["confirm_required"])
    await page.ra.rollover(page.operator)
    return _done(page, f"{BASE}/ca", "rollover")


# -- operators (admin) --------------------------------------------------------------------------
@routes.get(BASE + "/operators")
@console_page
async def operators(page: Page) -> web.StreamResponse:
    """The operators, with disable / enable, a new API token and unbinding (admin only)."""
    return await _operators_page(page)


async def _operators_page(page: Page, message: str = "") -> web.Response:
    assert page.operator is not None
    t, ra = page.t, page.ra
    ra.allow(page.operator, Permission.OPERATORS)
    rows = []
    for o in await ra.store.operators():
        forms = []
        if o.name != page.operator.name:
            verb = "enable" if o.disabled_at else "disable"
            forms.append(
                page.form(
                    f"{BASE}/operators/{o.name}/{verb}", f"{verb}:{o.name}", "", button=t[verb]
                )
            )
        forms.append(
            page.form(f"{BASE}/operators/{o.name}/token", f"token:{o.name}", "", button=t["rotate"])
        )
        if o.certificate_sha256:
            forms.append(
                page.form(
                    f"{BASE}/operators/{o.name}/unbind", f"unbind:{o.name}", "", button=t["unbind"]
                )
            )
        cert = (
            f"<code>{_e(o.certificate_sha256[:16])}…</code>"
            if o.certificate_sha256
            else _e(t["no_certificate"])
        )
        rows.append(
            [
                _e(o.name),
                _e(t.get(f"role_{o.role}", o.role)),
                cert,
                _e(t["disabled"] if o.disabled_at else t["enabled"]),
                "".join(forms),
            ]
        )
    heads = (t["col_actor"], t["col_role"], t["col_certificate"], t["col_status"], t["col_actions"])
    done = page.request.query.get("done")
    if done and not message:
        message = _message("success", t["done"].format(what=t.get(done, done)))
    add = f'<p><a href="{_e(page.href(f"{BASE}/operators/new"))}">{_e(t["add_operator"])}</a></p>'
    body = _table(t["operators_title"], heads, rows) + add
    return render(page, t["operators_title"], body, message=message)


def _add_operator_form(page: Page, name: str = "", role: str = "reviewer") -> str:
    t = page.t
    roles = [(r, t[f"role_{r}"]) for r in ROLES]
    body = _field(
        t["operator_name"],
        "name",
        value=name,
        hint=t["operator_name_hint"],
        required="required",
        maxlength="64",
        autocomplete="off",
    ) + _select(t["col_role"], "role", roles, role)
    return f"<p>{_e(t['add_operator_text'])}</p>" + page.form(
        f"{BASE}/operators/new", "operator-add", body, button=t["add_operator"]
    )


@routes.get(BASE + "/operators/new")
@console_page
async def new_operator(page: Page) -> web.StreamResponse:
    """The form to add an operator (admin only), as ``jitsuin ra operator-add`` does."""
    assert page.operator is not None
    page.ra.allow(page.operator, Permission.OPERATORS)
    return render(page, page.t["add_operator"], _add_operator_form(page))


@routes.post(BASE + "/operators/new")
@console_page
async def add_operator(page: Page) -> web.StreamResponse:
    """Add an operator through the service's call (admin only): its first API token is shown
    this once, and the admin is recorded as knowing it (two-person rule, server/ra/approval.py)
    until the new operator replaces it."""
    assert page.operator is not None
    t, ra = page.t, page.ra
    form = await posted(page, "operator-add")
    ra.allow(page.operator, Permission.OPERATORS)
    name, role = form.get("name", "").strip()[:64], form.get("role", "")
    try:
        token = await ra.add_operator(page.operator, name, role)
    except RAError as exc:
        if exc.kind not in (RAKind.INVALID, RAKind.CONFLICT):
            raise
        return render(
            page,
            t["add_operator"],
            _add_operator_form(page, name, role),
            message=_message("error", exc.message),
            status=STATUS[exc.kind][0],
        )
    said = t["new_operator_token"].format(name=name)
    shown = (
        f'<div class="message success" role="status"><p>{_e(said)}'
        f"<code>{_e(token)}</code></p></div>"
    )
    return await _operators_page(page, shown)


@routes.post(BASE + "/operators/{name}/{verb:disable|enable|token|unbind}")
@console_page
async def operator_action(page: Page) -> web.StreamResponse:
    """Disable, enable, a new API token, unbind the certificate: the API's calls, admin only,
    under the rules the API keeps (an admin cannot disable themself; the two-person rule counts
    whoever set a credential)."""
    name, verb = page.request.match_info["name"], page.request.match_info["verb"]
    if not _OPERATOR_NAME.fullmatch(name):
        raise RAError(RAKind.NOT_FOUND, f"there is no operator {name[:40]!r}")
    await posted(page, f"{verb}:{name}")
    operator = page.operator
    assert operator is not None
    ra = page.ra
    ra.allow(operator, Permission.OPERATORS)
    if verb == "disable":
        await ra.disable_operator(operator, name)
    elif verb == "enable":
        await ra.enable_operator(operator, name)
    elif verb == "unbind":
        await ra.unbind_certificate(operator, name)
    else:
        token = await ra.rotate_operator_token(operator, name)
        said = page.t["new_token"].format(name=name)
        shown = (
            f'<div class="message success" role="status"><p>{_e(said)}'
            f"<code>{_e(token)}</code></p></div>"
        )
        return await _operators_page(page, shown)
    return _done(page, f"{BASE}/operators", verb)


# -- ACME EAB keys ------------------------------------------------------------------------------
def _eab_form(page: Page) -> str:
    t = page.t
    body = (
        f'<div class="field"><label for="f-allowed">{_e(t["allowed"])}</label>'
        '<textarea id="f-allowed" name="allowed" rows="3" required></textarea></div>'
        + _field(
            t["lifetime_days"],
            "certificateLifetimeDays",
            kind="number",
            value=str(page.ra.config.acme.tls_server_lifetime_days),
            min="1",
            max="396",
        )
        + _field(t["max_certificates"], "maxCertificates", kind="number", min="1")
        + _field(t["expires_days"], "expiresInDays", kind="number", min="1")
        + _field(t["note"], "note", maxlength="256")
    )
    return page.form(f"{BASE}/acme", "eab-create", body, button=t["create_eab"])


async def _acme_page(page: Page, message: str = "", status: int = 200) -> web.Response:
    assert page.operator is not None
    t = page.t
    acme: AcmeService = page.request.app[ACME]
    rows = []
    for k in await acme.eab.keys(page.operator):
        disable = ""
        if k.disabled_at is None:
            disable = page.form(
                f"{BASE}/acme/{k.kid}/disable", f"eab-disable:{k.kid}", "", button=t["disable"]
            )
        rows.append(
            [
                f"<code>{_e(k.kid)}</code>",
                "<br>".join(_e(a) for a in k.allowed),
                str(k.lifetime_days),
                _e(k.max_certificates if k.max_certificates is not None else t["unlimited"]),
                page.when(k.expires_at) if k.expires_at else _e(t["never"]),
                page.when(k.used_at),
                _e(t["disabled"] if k.disabled_at else t["enabled"]),
                _e(k.note or ""),
                disable,
            ]
        )
    heads = (
        t["col_kid"],
        t["col_allowed"],
        t["col_lifetime"],
        t["col_max"],
        t["col_expires"],
        t["col_used"],
        t["col_status"],
        t["note"],
        t["col_actions"],
    )
    listing = _table(t["acme_title"], heads, rows) if rows else f"<p>{_e(t['none_found'])}</p>"
    done = page.request.query.get("done")
    if done and not message:
        message = _message("success", t["done"].format(what=t.get(done, done)))
    return render(page, t["acme_title"], listing + _eab_form(page), message=message, status=status)


@routes.get(BASE + "/acme")
@console_page
async def acme_keys(page: Page) -> web.StreamResponse:
    """EAB keys for the tls-server profile with their policies; the MAC key shows once."""
    return await _acme_page(page)


@routes.post(BASE + "/acme")
@console_page
async def acme_create(page: Page) -> web.StreamResponse:
    form = await posted(page, "eab-create")
    assert page.operator is not None
    data: dict[str, Any] = {
        "allowed": [a.strip() for a in form.get("allowed", "").splitlines() if a.strip()]
    }
    for key in ("certificateLifetimeDays", "maxCertificates", "expiresInDays"):
        value = form.get(key, "").strip()
        if value:
            data[key] = int(value) if value.isdigit() and len(value) < 10 else value
    if form.get("note", "").strip():
        data["note"] = form["note"].strip()
    try:
        record, mac = await page.request.app[ACME].eab.create_key(page.operator, data)
    except RAError as exc:
        if exc.kind in (RAKind.UNAUTHORIZED, RAKind.FORBIDDEN):
            raise
        detail = "; ".join(exc.extensions.get("errors", [])) or exc.message
        return await _acme_page(
            page, _message("error", page.t["error"].format(detail=detail)), STATUS[exc.kind][0]
        )
    shown = (
        f'<div class="message success" role="status"><p>{_e(page.t["new_eab"])}'
        f"<code>{_e(record.kid)}</code> / <code>{_e(mac)}</code></p></div>"
    )
    return await _acme_page(page, shown)


@routes.post(BASE + "/acme/{kid}/disable")
@console_page
async def acme_disable(page: Page) -> web.StreamResponse:
    kid = page.request.match_info["kid"]
    if not _KID.fullmatch(kid):
        raise RAError(RAKind.NOT_FOUND, "there is no such EAB key")
    await posted(page, f"eab-disable:{kid}")
    assert page.operator is not None
    try:
        await page.request.app[ACME].eab.disable_key(page.operator, kid)
    except NotFound:
        raise RAError(RAKind.NOT_FOUND, "there is no such EAB key") from None
    return _done(page, f"{BASE}/acme", "disable")


# -- style --------------------------------------------------------------------------------------
@routes.get(BASE + "/static/{name}")
async def static(request: web.Request) -> web.Response:
    body = STATIC.get(request.match_info["name"])
    if body is None:
        raise web.HTTPNotFound(text="no such file")
    return web.Response(
        body=body, headers={"Content-Type": "text/css; charset=utf-8", "Cache-Control": "no-cache"}
    )

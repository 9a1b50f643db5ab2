"""The RA console's pages and forms under /ra/console/ (HTTPS listener only).

Every page is rendered on the server, in Japanese (default) or English (``?lang=en``), under the
applicant pages' Content-Security-Policy (SEED-R18): no script at all, no inline style, nothing
from elsewhere. The operator is whoever the TLS client certificate bound to an operator account
names (no password, no cookie). Every action is the RA service call the operator API makes, so
roles, the two-person rule and the audit entries are the API's; every state-changing form is
checked against cross-site requests (``guard``).

This module holds what every page shares: the request context, rendering, sign-in by certificate
and the guard, and the form helpers. The pages are in queue.py, applications.py and admin.py."""

from __future__ import annotations

import datetime as dt
import html
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib import resources
from typing import Any

from aiohttp import web

from jitsuin.ca.errors import CAError
from jitsuin.server.console import guard
from jitsuin.server.console.strings import DEFAULT_LANGUAGE, LANGUAGES, text
from jitsuin.server.http_problems import STATUS
from jitsuin.server.keys import RA
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.letters import (
    JAPAN,
    display_name,
)
from jitsuin.server.ra.service import RAService
from jitsuin.server.storage import ApplicationRecord, Operator
from jitsuin.server.web.pages import PAGE_HEADERS

routes = web.RouteTableDef()
BASE = "/ra/console"
# The applicant pages' headers, but the referrer policy "same-origin": under "no-referrer"
# Chromium sends "Origin: null" with a form post, and the guard could not tell the console's own
# forms from another site's (no referrer still leaves for any other origin).
CONSOLE_HEADERS = {**PAGE_HEADERS, "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}
PAGE_SIZE = 25
APPLICATION_ID = re.compile(r"APP-[0-9A-Z]{8}")
OPERATOR_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")
KID = re.compile(r"kid-[A-Za-z0-9_-]{1,64}")
Text = Mapping[str, str]


def _static() -> dict[str, bytes]:
    folder = resources.files("jitsuin.server.console").joinpath("static")
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.name.endswith(".css")}


STATIC = _static()


def esc(value: object) -> str:
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
            return esc(self.t["not_yet"])
        shown = moment.astimezone(JAPAN) if self.lang == "ja" else moment.astimezone(dt.UTC)
        zone = "JST" if self.lang == "ja" else "UTC"
        return f'<time datetime="{moment.isoformat()}">{shown:%Y-%m-%d %H:%M} {zone}</time>'

    def state(self, state: str) -> str:
        return esc(self.t.get(f"state_{state}", state))

    def group(self, group_id: str) -> str:
        configured = self.ra.config.ca.groups.get(group_id)
        return esc(self.t.get(f"group_{group_id}", configured.title if configured else group_id))

    def name(self, app: ApplicationRecord) -> str:
        return esc(display_name(app, self.ra.config.ca.name_order))

    def form(self, path: str, action: str, body: str, *, button: str, css: str = "") -> str:
        """A POST form to ``path`` with its cross-site token for (operator, ``action``)."""
        assert self.operator is not None
        token = guard.form_token(self.ra.keyring, self.operator.name, action, self.ra.clock.now())
        klass = f' class="{css}"' if css else ""
        return (
            f'<form method="post" action="{esc(self.href(path))}"{klass}>'
            f'<input type="hidden" name="token" value="{esc(token)}">{body}'
            f'<p class="actions"><button type="submit">{esc(button)}</button></p></form>'
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
        f'<li><a href="{esc(page.href(target))}"'
        + (' aria-current="page"' if path == target else "")
        + f">{esc(page.t[key])}</a></li>"
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
        who = f'<p class="operator">{esc(signed_in)}</p>'
        nav = f'<nav aria-label="{esc(t["nav"])}"><ul>{_nav(page)}</ul></nav>'
    document = f"""<!doctype html>
<html lang="{page.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} — {esc(t["site"])}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
<link rel="stylesheet" href="{BASE}/static/console.css">
</head>
<body class="console">
<a class="skip" href="#main">{esc(t["skip"])}</a>
<header>
<p class="brand"><a href="{esc(page.href(BASE + "/"))}">{esc(t["site"])}</a></p>
{nav}
{who}
<p class="language"><a href="{esc(switch)}" hreflang="{other}" lang="{other}">
{esc(t["switch_language"])}</a></p>
</header>
<main id="main" tabindex="-1">
<h1>{esc(title)}</h1>
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


def notice(kind: str, words: str) -> str:
    role = "alert" if kind == "error" else "status"
    return f'<div class="message {kind}" role="{role}"><p>{esc(words)}</p></div>'


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
            body = f"<p>{esc(page.t['unauthorized_text'])}</p>" + notice(
                "error", page.t["unauthorized_detail"].format(reason=exc.message)
            )
            return render(page, page.t["unauthorized_title"], body, status=401)
        try:
            return await handler(page)
        except guard.CrossSite as exc:
            body = f"<p>{esc(page.t['cross_site_text'])}</p>" + notice("error", str(exc))
            return render(page, page.t["cross_site_title"], body, status=403)
        except RAError as exc:
            status = STATUS[exc.kind][0]
            title = page.t["not_found_title" if status == 404 else "forbidden_title"]
            return render(page, title, notice("error", exc.message), status=status)
        except CAError as exc:  # the CA refused (a rollover, say): its message, never a 500
            return render(page, page.t["forbidden_title"], notice("error", exc.message), status=400)

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


def done_redirect(page: Page, path: str, what: str) -> web.Response:
    """POST/redirect/GET: the page again, saying what was recorded."""
    raise web.HTTPSeeOther(page.href(path, done=what))


def app_id_of(page: Page) -> str:
    raw = page.request.match_info["id"]
    if not APPLICATION_ID.fullmatch(raw):
        raise RAError(RAKind.NOT_FOUND, f"there is no application {raw[:40]!r}")
    return raw


def time_in_state(page: Page, since: dt.datetime) -> str:
    seconds = max(int((page.ra.clock.now() - since).total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    if days:
        return page.t["duration_days"].format(d=days, h=hours)
    return page.t["duration_hours"].format(h=hours, m=minutes)


def html_field(
    label: str, name: str, *, kind: str = "text", value: str = "", hint: str = "", **attrs: str
) -> str:
    ident = f"f-{name.replace('.', '-')}"
    extra = "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    hint_html = f'<p class="hint" id="{ident}-hint">{esc(hint)}</p>' if hint else ""
    described = f' aria-describedby="{ident}-hint"' if hint else ""
    return (
        f'<div class="field"><label for="{ident}">{esc(label)}</label>{hint_html}'
        f'<input type="{kind}" id="{ident}" name="{esc(name)}" value="{esc(value)}"'
        f"{described}{extra}></div>"
    )


def html_checkbox(label: str, name: str, rule: str, *, checked: bool = False) -> str:
    ident = f"f-{name}"
    return (
        f'<div class="choice rule"><input type="checkbox" id="{ident}" name="{name}" value="yes"'
        f'{" checked" if checked else ""} aria-describedby="{ident}-rule">'
        f'<label for="{ident}">{esc(label)}</label>'
        f'<span class="rule-cite" id="{ident}-rule">{esc(rule)}</span></div>'
    )


def html_select(
    label: str, name: str, options: Iterable[tuple[str, str]], selected: str = ""
) -> str:
    ident = f"f-{name}"
    choices = "".join(
        f'<option value="{esc(v)}"{" selected" if v == selected else ""}>{esc(words)}</option>'
        for v, words in options
    )
    return (
        f'<div class="field"><label for="{ident}">{esc(label)}</label>'
        f'<select id="{ident}" name="{name}">{choices}</select></div>'
    )


def html_table(caption: str, heads: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="table-scroll" role="region" aria-label="{esc(caption)}" tabindex="0">'
        f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def details_cell(details: Mapping[str, Any]) -> str:
    shown = {
        k: v
        for k, v in details.items()
        if k not in ("credential", "credentialSetBy") and v not in (None, [], {})
    }
    return "<br>".join(f"{esc(k)}: {esc(v)}" for k, v in shown.items())


def form_flag(form: Mapping[str, str], name: str) -> bool:
    return form.get(name) == "yes"


# -- style --------------------------------------------------------------------------------------
@routes.get(BASE + "/static/{name}")
async def static(request: web.Request) -> web.Response:
    body = STATIC.get(request.match_info["name"])
    if body is None:
        raise web.HTTPNotFound(text="no such file")
    return web.Response(
        body=body, headers={"Content-Type": "text/css; charset=utf-8", "Cache-Control": "no-cache"}
    )

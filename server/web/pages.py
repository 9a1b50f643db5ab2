"""The subscriber's browser pages on the HTTPS listener (seed steps 6, 10, 11 and 12, and the
application status): server-rendered HTML in Japanese (default) or English (``?lang=en``), with
the page logic in small ES modules under ``static/``. No cookies, no third-party resources, a
strict Content-Security-Policy (SEED-R18), and ``Cache-Control: no-store`` where a page takes a
secret. The pages are clients of the same endpoints as every other client: the applicant API
(``/applicant/...``) and EST ``simpleenroll`` (docs/protocols.md §5.2)."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from jitsuin.ca.profiles import PERSONAL_PROFILES, PROFILES
from jitsuin.server import pki_http
from jitsuin.server.authority import Authority
from jitsuin.server.keys import AUTHORITY
from jitsuin.server.ra.letters import fingerprint_rows
from jitsuin.server.web.strings import DEFAULT_LANGUAGE, LANGUAGES, client_text, page_text

routes = web.RouteTableDef()

# No inline script or style, nothing from another origin, no framing (SEED-R18).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
NO_STORE = "no-store"  # pages that take a credential, a PIN or a passphrase
REVALIDATE = "no-cache"

STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _static_files() -> dict[str, bytes]:
    folder = resources.files("jitsuin.server.web").joinpath("static")
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(s) for s in STATIC_TYPES)
    }


STATIC = _static_files()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def language(request: web.Request) -> str:
    lang = request.query.get("lang", DEFAULT_LANGUAGE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def href(path: str, lang: str) -> str:
    return path if lang == DEFAULT_LANGUAGE else f"{path}?lang={lang}"


@dataclass(frozen=True, slots=True)
class Nav:
    path: str
    key: str


NAV = (
    Nav("/online-input", "nav_online_input"),
    Nav("/status", "nav_status"),
    Nav("/pickup", "nav_pickup"),
    Nav("/ca-certificates", "nav_ca"),
    Nav("/check", "nav_check"),
)


def render(
    request: web.Request,
    *,
    title_key: str,
    body: Callable[[Mapping[str, str], str], str],
    script: str | None = None,
    data: Mapping[str, Any] | None = None,
    cache: str = REVALIDATE,
) -> web.Response:
    """One page: the shared frame around ``body(text, lang)``; ``data`` and the client strings
    travel to the page's module as a JSON data block (not executed, so CSP allows it)."""
    lang = language(request)
    text = page_text(lang)
    other = "en" if lang == "ja" else "ja"
    path = request.path
    nav = "".join(
        f'<li><a href="{_e(href(item.path, lang))}"'
        + (' aria-current="page"' if item.path == path else "")
        + f">{_e(text[item.key])}</a></li>"
        for item in NAV
    )
    payload = {"lang": lang, "strings": client_text(lang), **(data or {})}
    # "<" escaped so that no "</script>" can end the data block early.
    json_block = json.dumps(payload, ensure_ascii=False).replace("<", "\\u003c")
    module = f'<script type="module" src="/static/{_e(script)}"></script>\n' if script else ""
    noscript = (
        f'<noscript><p class="message">{_e(text["needs_script"])}</p></noscript>' if script else ""
    )
    document = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(text[title_key])} — {_e(text["site"])}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/style.css">
{module}</head>
<body>
<a class="skip" href="#main">{_e(text["skip"])}</a>
<header>
<p class="brand"><a href="{_e(href("/", lang))}">{_e(text["site"])}</a></p>
<nav aria-label="{_e(text["nav"])}"><ul>{nav}</ul></nav>
<p class="language"><a href="{_e(href(path, other))}" hreflang="{other}" lang="{other}"
 id="language-switch">{_e(text["switch_language"])}</a></p>
</header>
<main id="main" tabindex="-1">
<h1>{_e(text[title_key])}</h1>
{noscript}
{body(text, lang)}
</main>
<footer><p>{_e(text["privacy"])}</p></footer>
<script type="application/json" id="page-data">{json_block}</script>
</body>
</html>
"""
    headers = {**PAGE_HEADERS, "Cache-Control": cache, "Content-Language": lang}
    return web.Response(text=document, content_type="text/html", charset="utf-8", headers=headers)


def _field(
    text: Mapping[str, str],
    ident: str,
    label_key: str,
    hint_key: str | None = None,
    **attributes: str,
) -> str:
    attrs = " ".join(
        f'{name.replace("_", "-")}="{_e(value)}"' for name, value in attributes.items()
    )
    described = f"{ident}-error" + (f" {ident}-hint" if hint_key else "")
    hint = f'<p class="hint" id="{ident}-hint">{_e(text[hint_key])}</p>' if hint_key else ""
    return f"""<div class="field">
<label for="{ident}">{_e(text[label_key])}
 <span class="required">({_e(text["required"])})</span></label>
{hint}
<p class="field-error" id="{ident}-error"></p>
<input id="{ident}" aria-describedby="{described}" required {attrs}>
</div>"""


def _live_regions() -> str:
    return (
        '<div class="message error" id="message" role="alert"></div>\n'
        '<p class="progress" id="progress" role="status" aria-live="polite"></p>'
    )


# -- home -----------------------------------------------------------------------------------------
def _home(text: Mapping[str, str], lang: str) -> str:
    items = (
        ("/online-input", "online_input_title", "home_online_input"),
        ("/status", "status_title", "home_status"),
        ("/pickup", "pickup_title", "home_pickup"),
        ("/ca-certificates", "ca_title", "home_ca"),
        ("/check", "check_title", "home_check"),
    )
    steps = "".join(
        f'<li><a href="{_e(href(path, lang))}">{_e(text[title])}</a><p>{_e(text[what])}</p></li>'
        for path, title, what in items
    )
    return f'<p>{_e(text["home_intro"])}</p>\n<ul class="steps-overview">{steps}</ul>'


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    """A person's browser gets the HTML landing page; other clients keep the JSON index."""
    if "text/html" not in request.headers.get("Accept", ""):
        return await pki_http.index(request)
    return render(request, title_key="home_title", body=_home)


# -- step 6: online input -------------------------------------------------------------------------
def _online_input(text: Mapping[str, str], lang: str) -> str:
    enrollment = _field(
        text,
        "enrollment-id",
        "enrollment_id",
        "enrollment_id_hint",
        name="enrollmentId",
        autocomplete="off",
        autocapitalize="characters",
        spellcheck="false",
    )
    code = _field(
        text,
        "access-code",
        "access_code",
        "access_code_hint",
        name="accessCode",
        autocomplete="off",
        autocapitalize="characters",
        spellcheck="false",
    )
    return f"""<p>{_e(text["online_input_intro"])}</p>
{_live_regions()}
<form id="credential-form" novalidate>
{enrollment}
{code}
<button type="submit">{_e(text["show_data"])}</button>
</form>
<section id="review" hidden aria-labelledby="review-heading">
<h2 id="review-heading" tabindex="-1">{_e(text["review_heading"])}</h2>
<p>{_e(text["review_intro"])}</p>
<dl id="vetted" class="facts"></dl>
<p class="actions"><button type="button" id="confirm">{_e(text["confirm"])}</button>
<button type="button" id="cancel" class="secondary">{_e(text["cancel"])}</button></p>
</section>
<section id="done" hidden aria-labelledby="done-heading">
<h2 id="done-heading" tabindex="-1">{_e(text["received_heading"])}</h2>
<p>{_e(text["received_text"])}</p>
<p><a href="{_e(href("/status", lang))}">{_e(text["see_status"])}</a></p>
</section>"""


@routes.get("/online-input")
async def online_input(request: web.Request) -> web.Response:
    config = request.app[AUTHORITY].config
    return render(
        request,
        title_key="online_input_title",
        body=_online_input,
        script="online-input.js",
        data={
            "groups": {g.id: g.title for g in config.ca.groups.values()},
            "maxAttempts": config.ra.max_attempts,
            "nameOrder": config.ca.name_order.value,
        },
        cache=NO_STORE,
    )


# -- status ---------------------------------------------------------------------------------------
def _status(text: Mapping[str, str], lang: str) -> str:
    enrollment = _field(
        text,
        "enrollment-id",
        "enrollment_id",
        "enrollment_id_hint",
        name="enrollmentId",
        autocomplete="off",
        autocapitalize="characters",
        spellcheck="false",
    )
    return f"""<p>{_e(text["status_intro"])}</p>
{_live_regions()}
<form id="status-form" novalidate>
{enrollment}
<button type="submit">{_e(text["show_status"])}</button>
</form>
<section id="result" hidden aria-labelledby="result-heading">
<h2 id="result-heading" tabindex="-1">{_e(text["status_heading"])}</h2>
<p id="state-text" class="state"></p>
<p id="state-extra"></p>
<ol id="stages" class="stages"></ol>
</section>"""


@routes.get("/status")
async def status(request: web.Request) -> web.Response:
    lang = language(request)
    links = {"onlineInput": href("/online-input", lang), "pickup": href("/pickup", lang)}
    return render(
        request,
        title_key="status_title",
        body=_status,
        script="status.js",
        data={"links": links},
        cache=NO_STORE,
    )


# -- step 10: pickup ------------------------------------------------------------------------------
def _pickup(text: Mapping[str, str], lang: str, max_attempts: int) -> str:
    enrollment = _field(
        text,
        "enrollment-id",
        "enrollment_id",
        "enrollment_id_hint",
        name="enrollmentId",
        autocomplete="username",
        autocapitalize="characters",
        spellcheck="false",
    )
    pin = _field(
        {**text, "pin_hint": text["pin_hint"].format(max=max_attempts)},
        "pin",
        "pin",
        "pin_hint",
        name="pin",
        type="password",
        inputmode="numeric",
        autocomplete="one-time-code",
    )
    key_types = "".join(
        f'<div class="choice"><input type="radio" name="keyType" id="key-{value}" value="{value}"'
        + (" checked" if value == "ecdsa-p256" else "")
        + f'><label for="key-{value}">{_e(text["key_" + value.replace("-", "_")])}</label></div>'
        for value in ("ecdsa-p256", "rsa-2048", "rsa-3072")
    )
    passphrase = _field(
        text,
        "passphrase",
        "passphrase",
        "passphrase_hint",
        type="password",
        autocomplete="new-password",
        minlength="8",
    )
    again = _field(
        text,
        "passphrase-again",
        "passphrase_again",
        None,
        type="password",
        autocomplete="new-password",
        minlength="8",
    )
    return f"""<p>{_e(text["pickup_intro"])}</p>
{_live_regions()}
<form id="pickup-form" novalidate>
{enrollment}
{pin}
<fieldset aria-describedby="key-type-hint"><legend>{_e(text["key_type"])}</legend>
<p class="hint" id="key-type-hint">{_e(text["key_type_hint"])}</p>
{key_types}
</fieldset>
<button type="submit">{_e(text["get_certificate"])}</button>
</form>
<section id="passphrase-step" hidden aria-labelledby="passphrase-heading">
<h2 id="passphrase-heading" tabindex="-1">{_e(text["passphrase_heading"])}</h2>
<p>{_e(text["passphrase_intro"])}</p>
<dl class="facts"><dt>{_e(text["issued_to"])}</dt><dd id="issued-to"></dd>
<dt>{_e(text["valid_until"])}</dt><dd id="issued-until"></dd></dl>
<form id="passphrase-form" novalidate>
<input type="text" id="passphrase-username" autocomplete="username" hidden readonly>
{passphrase}
{again}
<button type="submit">{_e(text["create_file"])}</button>
</form>
</section>
<section id="success" hidden aria-labelledby="success-heading">
<h2 id="success-heading" tabindex="-1" class="success">{_e(text["success_heading"])}</h2>
<p id="save-state" class="warning" role="status">{_e(text["not_saved_yet"])}</p>
<p class="actions"><a id="download-p12" class="button" download>{_e(text["download_p12"])}</a>
<a id="download-cert" class="button secondary" download>{_e(text["download_cert"])}</a></p>
<p>{_e(text["keep_file"])}</p>
<h3>{_e(text["next_steps"])}</h3>
<ol>
<li>{_e(text["next_import"])}</li>
<li><a href="{_e(href("/ca-certificates", lang))}">{_e(text["next_ca"])}</a></li>
<li><a href="{_e(href("/check", lang))}">{_e(text["next_check"])}</a></li>
</ol>
</section>"""


def _ca_certificates(authority: Authority) -> list[dict[str, Any]]:
    return [
        {
            "generation": g.number,
            "der": g.certificate.public_bytes(serialization.Encoding.DER).hex(),
        }
        for g in authority.generations
    ]


@routes.get("/pickup")
async def pickup(request: web.Request) -> web.Response:
    authority = request.app[AUTHORITY]
    max_attempts = authority.config.ra.max_attempts
    data = {
        # Without a label, simpleenroll uses the profile the application was approved for.
        "enroll": "/.well-known/est/simpleenroll",
        "caCertificates": _ca_certificates(authority),
        "maxAttempts": max_attempts,
    }
    return render(
        request,
        title_key="pickup_title",
        body=lambda text, lang: _pickup(text, lang, max_attempts),
        script="pickup.js",
        data=data,
        cache=NO_STORE,
    )


# -- step 11: CA and link certificates ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Published:
    """One downloadable CA or link certificate."""

    label: str
    path: str  # without the .crt / .pem suffix
    certificate: x509.Certificate
    current: bool = False


def _fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 fingerprint as the letter prints it (``fingerprint_rows``), in its rows of
    eight bytes; each row a span that never breaks, so that a narrow screen shows whole rows."""
    rows = fingerprint_rows(certificate.fingerprint(hashes.SHA256()).hex())
    return "".join(
        f"<span>{row}{':' if i < len(rows) - 1 else ''}</span>" for i, row in enumerate(rows)
    )


def published_generations(authority: Authority, text: Mapping[str, str]) -> list[Published]:
    current = authority.current.number
    return [
        Published(
            text["generation"].format(n=g.number),
            f"/ca/{g.number}",
            g.certificate,
            g.number == current,
        )
        for g in authority.generations
    ]


def published_links(authority: Authority, text: Mapping[str, str]) -> list[Published]:
    """The rollover link certificates, at the paths pki_http serves them."""
    out = []
    for link in authority.links:
        base = f"/ca/links/{link.old}-{link.new}"
        out.append(
            Published(
                text["old_with_new"].format(old=link.old, new=link.new),
                f"{base}/old-with-new",
                link.old_with_new,
            )
        )
        out.append(
            Published(
                text["new_with_old"].format(old=link.old, new=link.new),
                f"{base}/new-with-old",
                link.new_with_old,
            )
        )
    return out


def _time(moment: dt.datetime) -> str:
    return f'<time datetime="{moment.isoformat()}">{moment:%Y-%m-%d %H:%M}</time>'


def _certificate_cards(entries: Iterable[Published], text: Mapping[str, str]) -> str:
    cards = []
    for entry in entries:
        cert = entry.certificate
        current = f' <span class="badge">{_e(text["current"])}</span>' if entry.current else ""
        slug = entry.path.strip("/").replace("/", "-")
        cards.append(
            f"""<section class="certificate" aria-labelledby="{slug}">
<h3 id="{slug}">{_e(entry.label)}{current}</h3>
<dl class="facts">
<dt>{_e(text["subject"])}</dt><dd>{_e(cert.subject.rfc4514_string())}</dd>
<dt>{_e(text["validity"])}</dt><dd>{_time(cert.not_valid_before_utc)} –
 {_time(cert.not_valid_after_utc)} UTC</dd>
<dt>{_e(text["fingerprint"])}</dt><dd><code class="fingerprint">{_fingerprint(cert)}</code></dd>
<dt>{_e(text["download"])}</dt>
<dd><a href="{_e(entry.path)}.crt" download>{_e(text["der_file"])}</a> ·
 <a href="{_e(entry.path)}.pem" download>{_e(text["pem_file"])}</a></dd>
</dl>
</section>"""
        )
    return "\n".join(cards)


@routes.get("/ca-certificates")
async def ca_certificates(request: web.Request) -> web.Response:
    authority = request.app[AUTHORITY]

    def body(text: Mapping[str, str], lang: str) -> str:
        links = published_links(authority, text)
        link_cards = _certificate_cards(links, text) if links else f"<p>{_e(text['no_links'])}</p>"
        return f"""<p>{_e(text["ca_intro"])}</p>
<h2>{_e(text["generations_heading"])}</h2>
{_certificate_cards(reversed(published_generations(authority, text)), text)}
<h2>{_e(text["links_heading"])}</h2>
<p>{_e(text["links_intro"])}</p>
{link_cards}
<h2>{_e(text["install_heading"])}</h2>
<ul>
<li>{_e(text["install_windows"])}</li>
<li>{_e(text["install_macos"])}</li>
<li>{_e(text["install_mozilla"])}</li>
</ul>"""

    return render(request, title_key="ca_title", body=body)


# -- step 12: check -------------------------------------------------------------------------------
def _check(text: Mapping[str, str], lang: str) -> str:
    kinds = "".join(
        f'<div class="choice"><input type="radio" name="kind" id="kind-{value}" value="{value}"'
        + (" checked" if value == "certificate" else "")
        + f'><label for="kind-{value}">{_e(text["kind_" + value])}</label></div>'
        for value in ("certificate", "p12")
    )
    return f"""<p>{_e(text["check_intro"])}</p>
{_live_regions()}
<form id="check-form" novalidate>
<fieldset><legend>{_e(text["file_kind"])}</legend>
{kinds}
</fieldset>
<div class="field">
<label for="file">{_e(text["file"])}
 <span class="required">({_e(text["required"])})</span></label>
<p class="field-error" id="file-error"></p>
<input type="file" id="file" aria-describedby="file-error" required
 accept=".crt,.cer,.pem,.der,.p12,.pfx">
</div>
<div class="field" id="p12-passphrase-field">
<label for="p12-passphrase">{_e(text["p12_passphrase"])}</label>
<p class="field-error" id="p12-passphrase-error"></p>
<input type="password" id="p12-passphrase" aria-describedby="p12-passphrase-error"
 autocomplete="current-password">
</div>
<button type="submit">{_e(text["check"])}</button>
</form>
<section id="result" hidden aria-labelledby="result-heading">
<h2 id="result-heading" tabindex="-1">{_e(text["result_heading"])}</h2>
<p id="verdict" class="verdict"></p>
<ul id="reasons" class="reasons"></ul>
<dl id="details" class="facts"></dl>
</section>"""


def profile_policies(authority: Authority) -> dict[str, str]:
    """Certificate-policy OID -> profile name, so that the page can name the profile."""
    policy = authority.config.policy()
    return {policy.cp_oid(PROFILES[name]).dotted_string: name for name in PERSONAL_PROFILES}


@routes.get("/check")
async def check(request: web.Request) -> web.Response:
    authority = request.app[AUTHORITY]
    data = {
        "caCertificates": _ca_certificates(authority),
        "profiles": profile_policies(authority),
        # The revocation status comes from this origin's OCSP responder (RFC 6960), as a
        # relying party would ask it; the request carries the serial only.
        "ocsp": "/ocsp",
    }
    return render(
        request,
        title_key="check_title",
        body=_check,
        script="check.js",
        data=data,
        cache=NO_STORE,
    )


# -- static modules and style ---------------------------------------------------------------------
@routes.get("/static/{name}")
async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = STATIC.get(name)
    if body is None:
        raise web.HTTPNotFound(text=f"there is no /static/{name}")
    suffix = name[name.rfind(".") :]
    return web.Response(
        body=body,
        headers={"Content-Type": STATIC_TYPES[suffix], "Cache-Control": REVALIDATE},
    )

"""The console's oversight and administration pages: the mail queue, the audit log and its
verification, the CA (generations, rollover), operators and ACME EAB keys."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from jitsuin.server.acme.service import AcmeService
from jitsuin.server.console.page import (
    BASE,
    KID,
    OPERATOR_NAME,
    PAGE_SIZE,
    Page,
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
from jitsuin.server.fingerprint import fingerprint_rows
from jitsuin.server.http_problems import STATUS
from jitsuin.server.keys import ACME, AUTHORITY
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.oversight import MAIL_STATUSES
from jitsuin.server.ra.permissions import ROLES, Permission
from jitsuin.server.storage import AuditChainBroken, NotFound

routes = web.RouteTableDef()


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
                f'<a href="{esc(app_link)}">{esc(m.application_id)}</a>',
                esc(m.recipient),
                esc(t.get(f"mail_{m.status}", m.status)),
                str(m.attempts),
                esc(m.last_error or ""),
                page.when(m.next_attempt_at),
                retry,
            ]
        )
    options = [("", t["all_states"])] + [
        (s, t[f"mail_{s}"]) for s in ("pending", "sent", "failed", "superseded")
    ]
    filters = f"""<form method="get" action="{BASE}/mail" class="filters">
{'<input type="hidden" name="lang" value="en">' if page.lang == "en" else ""}
{html_select(t["mail_status"], "status", options, status)}
<p class="actions"><button type="submit">{esc(t["search_button"])}</button></p></form>"""
    heads = (
        t["col_id"],
        t["col_recipient"],
        t["mail_status"],
        t["col_attempts"],
        t["col_error"],
        t["col_next"],
        t["col_actions"],
    )
    listing = html_table(t["mail_title"], heads, rows) if rows else f"<p>{esc(t['none_found'])}</p>"
    return render(page, t["mail_title"], filters + listing)


@routes.post(BASE + "/mail/{id:[0-9]{1,18}}/retry")
@console_page
async def mail_retry(page: Page) -> web.StreamResponse:
    mail_id = int(page.request.match_info["id"])
    await posted(page, f"mail-retry:{mail_id}")
    assert page.operator is not None
    await page.ra.retry_mail(page.operator, mail_id)
    return done_redirect(page, f"{BASE}/mail", "retry")


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
            message = notice("success", t["verify_ok"].format(n=count))
        except AuditChainBroken as exc:
            message = notice("error", t["verify_broken"].format(error=exc))
    entries = await ra.store.audit_entries(target, actor, before, PAGE_SIZE)
    rows = [
        [
            str(e.seq),
            page.when(e.event.at),
            esc(e.event.actor),
            esc(e.event.action),
            esc(e.event.target),
            details_cell(e.event.details),
        ]
        for e in entries
    ]
    filters = f"""<form method="get" action="{BASE}/audit" class="filters">
{'<input type="hidden" name="lang" value="en">' if page.lang == "en" else ""}
{html_field(t["audit_target"], "target", value=target or "")}
{html_field(t["audit_actor"], "actor", value=actor or "")}
<p class="actions"><button type="submit">{esc(t["search_button"])}</button>
<button type="submit" name="verify" value="1" class="secondary">{esc(t["verify"])}</button></p>
</form>"""
    heads = (
        "#",
        t["col_time"],
        t["col_actor"],
        t["col_action"],
        t["audit_target"],
        t["col_details"],
    )
    listing = (
        html_table(t["audit_title"], heads, rows) if rows else f"<p>{esc(t['none_found'])}</p>"
    )
    older = ""
    if len(entries) == PAGE_SIZE:
        link = page.href(f"{BASE}/audit", target=target, actor=actor, before=entries[-1].seq)
        older = f'<p><a href="{esc(link)}" rel="next">{esc(t["older"])}</a></p>'
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
            f' <span class="badge">{esc(t["current"])}</span>'
            if g.number == authority.current.number
            else ""
        )
        warning = ""
        if g.number == authority.current.number and cutoff - now <= config.ca.rollover_warning:
            days = max((cutoff - now).days, 0)
            warning = f'<p class="warning">{esc(t["rollover_warning"].format(days=days))}</p>'
        crl_text = t["crl_status"].format(
            this=page.when(crl.last_update_utc), next=page.when(crl.next_update_utc)
        )
        cards.append(
            f"""<section class="certificate" aria-labelledby="gen-{g.number}">
<h2 id="gen-{g.number}">{esc(t["generation"].format(n=g.number))}{badge}</h2>{warning}
<dl class="facts">
<dt>{esc(t["validity"])}</dt>
<dd>{page.when(cert.not_valid_before_utc)} – {page.when(cert.not_valid_after_utc)}</dd>
<dt>{esc(t["cutoff"])}</dt><dd>{page.when(cutoff)}</dd>
<dt>{esc(t["fingerprint"])}</dt><dd><code class="fingerprint">{_fingerprint(cert)}</code></dd>
<dt>{esc(t["crl"])}</dt><dd>{crl_text}</dd>
</dl></section>"""
        )
    links = "".join(
        f"<li>{link.old} → {link.new}: "
        f'<a href="/ca/links/{link.old}-{link.new}/old-with-new.pem">old-with-new</a> · '
        f'<a href="/ca/links/{link.old}-{link.new}/new-with-old.pem">new-with-old</a></li>'
        for link in authority.links
    )
    links_html = f"<h2>{esc(t['links'])}</h2>" + (
        f"<ul>{links}</ul>" if links else f"<p>{esc(t['no_links'])}</p>"
    )
    rollover = ""
    if page.operator.role == "admin":
        body = html_checkbox(t["confirm_action"], "confirm", "SEED-R15")
        rollover = (
            f'<section aria-labelledby="rollover"><h2 id="rollover">{esc(t["rollover"])}</h2>'
            f"<p>{esc(t['rollover_intro'])}</p>"
            + page.form(
                f"{BASE}/ca/rollover", "rollover", body, button=t["rollover_button"], css="danger"
            )
            + "</section>"
        )
    done = page.request.query.get("done")
    message = notice("success", t["done"].format(what=t.get(done, done))) if done else ""
    return render(page, t["ca_title"], "".join(cards) + links_html + rollover, message=message)


@routes.post(BASE + "/ca/rollover")
@console_page
async def rollover(page: Page) -> web.StreamResponse:
    form = await posted(page, "rollover")
    assert page.operator is not None
    page.ra.allow(page.operator, Permission.CA_ROLLOVER)
    if not form_flag(form, "confirm"):
        raise RAError(RAKind.INVALID, page.t["confirm_required"])
    await page.ra.rollover(page.operator)
    return done_redirect(page, f"{BASE}/ca", "rollover")


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
            f"<code>{esc(o.certificate_sha256[:16])}…</code>"
            if o.certificate_sha256
            else esc(t["no_certificate"])
        )
        rows.append(
            [
                esc(o.name),
                esc(t.get(f"role_{o.role}", o.role)),
                cert,
                esc(t["disabled"] if o.disabled_at else t["enabled"]),
                "".join(forms),
            ]
        )
    heads = (t["col_actor"], t["col_role"], t["col_certificate"], t["col_status"], t["col_actions"])
    done = page.request.query.get("done")
    if done and not message:
        message = notice("success", t["done"].format(what=t.get(done, done)))
    add = f'<p><a href="{esc(page.href(f"{BASE}/operators/new"))}">{esc(t["add_operator"])}</a></p>'
    body = html_table(t["operators_title"], heads, rows) + add
    return render(page, t["operators_title"], body, message=message)


def _add_operator_form(page: Page, name: str = "", role: str = "reviewer") -> str:
    t = page.t
    roles = [(r, t[f"role_{r}"]) for r in ROLES]
    body = html_field(
        t["operator_name"],
        "name",
        value=name,
        hint=t["operator_name_hint"],
        required="required",
        maxlength="64",
        autocomplete="off",
    ) + html_select(t["col_role"], "role", roles, role)
    return f"<p>{esc(t['add_operator_text'])}</p>" + page.form(
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
            message=notice("error", exc.message),
            status=STATUS[exc.kind][0],
        )
    said = t["new_operator_token"].format(name=name)
    shown = (
        f'<div class="message success" role="status"><p>{esc(said)}'
        f"<code>{esc(token)}</code></p></div>"
    )
    return await _operators_page(page, shown)


@routes.post(BASE + "/operators/{name}/{verb:disable|enable|token|unbind}")
@console_page
async def operator_action(page: Page) -> web.StreamResponse:
    """Disable, enable, a new API token, unbind the certificate: the API's calls, admin only,
    under the rules the API keeps (an admin cannot disable themself; the two-person rule counts
    whoever set a credential)."""
    name, verb = page.request.match_info["name"], page.request.match_info["verb"]
    if not OPERATOR_NAME.fullmatch(name):
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
            f'<div class="message success" role="status"><p>{esc(said)}'
            f"<code>{esc(token)}</code></p></div>"
        )
        return await _operators_page(page, shown)
    return done_redirect(page, f"{BASE}/operators", verb)


# -- ACME EAB keys ------------------------------------------------------------------------------
def _eab_form(page: Page) -> str:
    t = page.t
    body = (
        f'<div class="field"><label for="f-allowed">{esc(t["allowed"])}</label>'
        '<textarea id="f-allowed" name="allowed" rows="3" required></textarea></div>'
        + html_field(
            t["lifetime_days"],
            "certificateLifetimeDays",
            kind="number",
            value=str(page.ra.config.acme.tls_server_lifetime_days),
            min="1",
            max="396",
        )
        + html_field(t["max_certificates"], "maxCertificates", kind="number", min="1")
        + html_field(t["expires_days"], "expiresInDays", kind="number", min="1")
        + html_field(t["note"], "note", maxlength="256")
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
                f"<code>{esc(k.kid)}</code>",
                "<br>".join(esc(a) for a in k.allowed),
                str(k.lifetime_days),
                esc(k.max_certificates if k.max_certificates is not None else t["unlimited"]),
                page.when(k.expires_at) if k.expires_at else esc(t["never"]),
                page.when(k.used_at),
                esc(t["disabled"] if k.disabled_at else t["enabled"]),
                esc(k.note or ""),
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
    listing = html_table(t["acme_title"], heads, rows) if rows else f"<p>{esc(t['none_found'])}</p>"
    done = page.request.query.get("done")
    if done and not message:
        message = notice("success", t["done"].format(what=t.get(done, done)))
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
            page, notice("error", page.t["error"].format(detail=detail)), STATUS[exc.kind][0]
        )
    shown = (
        f'<div class="message success" role="status"><p>{esc(page.t["new_eab"])}'
        f"<code>{esc(record.kid)}</code> / <code>{esc(mac)}</code></p></div>"
    )
    return await _acme_page(page, shown)


@routes.post(BASE + "/acme/{kid}/disable")
@console_page
async def acme_disable(page: Page) -> web.StreamResponse:
    kid = page.request.match_info["kid"]
    if not KID.fullmatch(kid):
        raise RAError(RAKind.NOT_FOUND, "there is no such EAB key")
    await posted(page, f"eab-disable:{kid}")
    assert page.operator is not None
    try:
        await page.request.app[ACME].eab.disable_key(page.operator, kid)
    except NotFound:
        raise RAError(RAKind.NOT_FOUND, "there is no such EAB key") from None
    return done_redirect(page, f"{BASE}/acme", "disable")

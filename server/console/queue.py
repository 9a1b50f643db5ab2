"""The console's queue (applications by state, time in each, search by ID, name or e-mail, paged
on the server) and the receive form (seed step 1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from jitsuin.ca.profiles import PERSONAL_PROFILES
from jitsuin.server.console.page import (
    APPLICATION_ID,
    BASE,
    PAGE_SIZE,
    Page,
    console_page,
    done_redirect,
    esc,
    html_field,
    html_select,
    html_table,
    notice,
    posted,
    render,
    time_in_state,
)
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.ra.permissions import Permission
from jitsuin.server.ra.workflow import State
from jitsuin.server.storage import ApplicationRecord

routes = web.RouteTableDef()


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
        if APPLICATION_ID.fullmatch(search.upper()):
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
{html_select(t["state"], "state", states, state)}
{html_field(t["search"], "q", kind="search", value=search, hint=t["search_hint"])}
<p class="actions"><button type="submit">{esc(t["search_button"])}</button></p>
</form>"""
    rows = [
        [
            f'<a href="{esc(page.href(f"{BASE}/applications/{a.id}"))}">{esc(a.id)}</a>',
            page.name(a),
            page.state(a.state),
            esc(time_in_state(page, a.updated_at)),
            page.when(a.created_at),
        ]
        for a in apps
    ]
    listing = (
        html_table(
            t["queue_title"],
            (t["col_id"], t["col_name"], t["col_state"], t["col_in_state"], t["col_created"]),
            rows,
        )
        if rows
        else f"<p>{esc(t['none_found'])}</p>"
    )
    links = []
    if offset > 0:
        back = max(offset - PAGE_SIZE, 0)
        links.append(
            f'<a href="{esc(page.href(BASE + "/", state=state, q=search, offset=back))}"'
            ' rel="prev">'
            f"{esc(t['previous'])}</a>"
        )
    if more:
        forward = offset + PAGE_SIZE
        links.append(
            f'<a href="{esc(page.href(BASE + "/", state=state, q=search, offset=forward))}"'
            f' rel="next">{esc(t["next"])}</a>'
        )
    paging = ""
    if rows and (more or offset > 0 or not search):
        span = t["page_of"].format(first=offset + 1, last=offset + len(rows))
        paging = (
            f'<nav aria-label="{esc(t["paging"])}" class="paging">'
            f"<p>{esc(span)} {' '.join(links)}</p></nav>"
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
        f"{esc(t['billing_' + v])}</label></div>"
        for v in ("self", "company")
    )
    body = (
        html_select(
            t["profile"], "profile", [(p, p) for p in PERSONAL_PROFILES], values.get("profile", "")
        )
        + html_field(
            t["family_name"],
            "familyName",
            value=values.get("familyName", ""),
            required="",
            autocomplete="off",
        )
        + html_field(
            t["given_name"],
            "givenName",
            value=values.get("givenName", ""),
            required="",
            autocomplete="off",
        )
        + html_field(
            t["email"],
            "email",
            kind="email",
            value=values.get("email", ""),
            required="",
            autocomplete="off",
        )
        + html_select(
            t["group"], "qualificationGroup", groups, values.get("qualificationGroup", "")
        )
        + html_field(
            t["number"],
            "qualificationNumber",
            value=values.get("qualificationNumber", ""),
            required="",
        )
        + html_field(
            t["postcode"],
            "postcode",
            value=values.get("postcode", ""),
            hint=t["postcode_hint"],
            inputmode="numeric",
            pattern="[0-9]{3}-?[0-9]{4}",
        )
        + html_field(
            t["address"], "postalAddress", value=values.get("postalAddress", ""), required=""
        )
        + html_field(
            t["date_of_birth"],
            "dateOfBirth",
            kind="date",
            value=values.get("dateOfBirth", ""),
            required="",
        )
        + f"<fieldset><legend>{esc(t['billing'])}</legend>{radios}</fieldset>"
        + html_field(t["company"], "company", value=values.get("company", ""))
    )
    return f"<p>{esc(t['new_intro'])}</p>" + page.form(
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
        message = notice("error", page.t["error"].format(detail=detail))
        return render(page, page.t["new_title"], _new_form(page, form), status=422, message=message)
    return done_redirect(page, f"{BASE}/applications/{app.id}", "create")

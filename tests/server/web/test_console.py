"""The RA console (/ra/console/) driven in Debian's Chromium by two operators who sign in with
their TLS client certificates: a whole application from receipt to revocation, the two-person
rule at the approve button, a cross-site form post refused, axe-core on every page in both
languages, a 375 px wide screen and the keyboard.

The certificates are personal certificates picked up through EST after the real RA flow, and
each operator binds their own (so that nobody else is counted as knowing it, docs/operators.md).
axe-core comes from the npm registry (installed into test-artifacts/ on first use)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, BrowserContext, Page
from pypdf import PdfReader

from jitsuin.server.fingerprint import fingerprint_rows

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "docs" / "images"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE_DIR = ROOT / "test-artifacts" / "axe"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
CONSOLE = "/ra/console"


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core from the npm registry, installed once into test-artifacts/."""
    if not AXE.exists():
        npm = shutil.which("npm")
        assert npm, "npm is missing: ./scripts/test installs it"
        subprocess.run(
            [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR),
             "axe-core@4"],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return AXE.read_text()


class Operator:
    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.cert = folder / "cert.pem"
        self.key = folder / "key.pem"


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any, letter_toml: str
) -> Iterator[Any]:
    """A server with the CA's [letter] settings, and alice (admin: she may approve, so that the
    two-person rule is what stops her), bob (approver) and root (admin) each holding a personal
    certificate of this CA bound to their operator account."""
    home = tmp_path_factory.mktemp("console")
    operators = (("alice", "admin"), ("bob", "approver"), ("root", "admin"))
    with live_jitsuin.server(
        home, operators=operators, toml=letter_toml, attempt_backoff_seconds=0
    ) as server:
        server.operators = {}
        for name in ("alice", "bob", "root"):
            folder = home / f"cert-{name}"
            _, _, cert_pem, key_pem = server.enrolled(folder)
            # The operator binds it themself, presenting it in the handshake.
            reply = requests.put(
                f"{server.https}/ra/operators/{name}/certificate",
                json={"certificate": cert_pem.read_text()},
                headers={"Authorization": f"Bearer {server.tokens[name]}"},
                cert=(str(cert_pem), str(key_pem)),
                verify=str(server.ca_pem),
                timeout=30,
            )
            assert reply.status_code == 200, reply.text
            server.operators[name] = Operator(name, folder)
        yield server


def signed_in(browser: Browser, server: Any, name: str, width: int = 1024) -> BrowserContext:
    """A browser profile with ``name``'s client certificate (as docs/operators.md installs it)."""
    operator = server.operators[name]
    context = browser.new_context(
        ignore_https_errors=True,
        client_certificates=[
            {"origin": server.https, "certPath": str(operator.cert), "keyPath": str(operator.key)}
        ],
        viewport={"width": width, "height": 900},
        locale="ja-JP",
    )
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    return context


def open_page(context: BrowserContext, server: Any, path: str, status: int = 200) -> Page:
    page = context.new_page()
    page.set_default_timeout(20_000)
    reply = page.goto(server.https + path)
    assert reply is not None and reply.status == status, (path, reply and reply.status)
    return page


def axe_violations(page: Page, source: str) -> list[str]:
    """axe-core's violations on the page (the source is evaluated through the DevTools
    protocol, which the page's Content-Security-Policy does not govern)."""
    page.evaluate(source + "\n;0")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
        for v in result["violations"]
    ]


def state_of(server: Any, app_id: str) -> str:
    return server.ok("GET", f"/ra/applications/{app_id}", "bob")["state"]


def submit(page: Page, button: str) -> int:
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button).click()
    response = navigation.value
    assert response is not None
    return response.status


def test_a_whole_application_through_the_console(browser, console, axe_source):
    server = console
    alice = signed_in(browser, server, "alice")
    bob = signed_in(browser, server, "bob")
    pages: list[tuple[BrowserContext, str]] = []  # every page visited, for axe below

    # Step 1: alice receives the application (English pages, ?lang=en).
    page = open_page(alice, server, f"{CONSOLE}/new?lang=en")
    assert "Operator: alice (admin)" in page.inner_text("header")
    unique = os.urandom(4).hex()  # (twelve digits in a row would look like an Individual Number)
    page.select_option("#f-profile", "general")
    page.fill("#f-familyName", "Yamada")
    page.fill("#f-givenName", "Hanako")
    page.fill("#f-email", f"hanako.{unique}@example.com")
    page.select_option("#f-qualificationGroup", "member")
    page.fill("#f-qualificationNumber", f"AB-{unique.upper()}")
    page.fill("#f-postcode", "100-0013")
    page.fill("#f-postalAddress", "東京都千代田区霞が関1-2-3")
    page.fill("#f-dateOfBirth", "1985-04-01")
    assert submit(page, "Receive") == 200, page.inner_text("main")
    app_id = re.search(r"/applications/(APP-[0-9A-Z]{8})", page.url)[1]
    assert state_of(server, app_id) == "received"
    assert "Hanako Yamada" in page.inner_text("main")  # [ca] name_order, as the certificate
    pages.append((alice, f"{CONSOLE}/new"))

    # Step 2: the review form, each check beside its rule; first a deficient outcome.
    application = f"{CONSOLE}/applications/{app_id}"
    page.goto(server.https + application)  # Japanese
    pages.append((alice, application))
    for rule in ("SEED-R6", "SEED-R7", "SEED-R8", "SEED-R9"):
        assert rule in page.inner_text("#review ~ form, section[aria-labelledby=review]")
    today = dt.datetime.now(dt.UTC).date()
    page.fill("#f-issuedOn", (today - dt.timedelta(days=200)).isoformat())
    page.check("#f-original")
    page.check("#f-showsIndividualNumber")
    for box in ("#f-nameMatches", "#f-addressMatches", "#f-dateOfBirthMatches"):
        page.check(box)
    screenshot(page, "console-review-form")
    assert submit(page, "審査結果を記録") == 200
    told = page.inner_text(".deficiencies")
    assert "3か月" in told and "個人番号" in told
    assert state_of(server, app_id) == "documents_deficient"
    assert submit(page, "再提出を受け付ける") == 200
    page.fill("#f-issuedOn", today.isoformat())
    for box in ("#f-original", "#f-nameMatches", "#f-addressMatches", "#f-dateOfBirthMatches"):
        page.check(box)
    assert submit(page, "審査結果を記録") == 200
    assert state_of(server, app_id) == "documents_accepted"

    # Step 3: preview, then the dispatch with its tracking number prints the letter.
    with page.expect_navigation():
        page.get_by_role("link", name="照会書の見本を表示").click()
    assert "XXXXX-XXXXX" in page.content()
    pages.append((alice, f"{application}/letter-preview"))
    page.go_back()
    page.fill("#f-trackingNumber", "RD123456785JP")
    assert submit(page, "送付を記録して照会書を印刷") == 200
    letter_html = page.content()
    enrollment_id = re.search(r"Enrollment ID: <span class=\"code\">([^<]+)<", letter_html)[1]
    access_code = re.search(r"Access code: <span class=\"code\">([^<]+)<", letter_html)[1]
    pdf = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) <= 2, f"the letter prints on {len(reader.pages)} pages"
    flat = re.sub(r"\s+", "", "".join(p.extract_text() for p in reader.pages))
    for certificate in server.ca_certificates():
        whole = ":".join(fingerprint_rows(certificate.fingerprint(hashes.SHA256()).hex()))
        assert whole in flat
    assert "ExampleTrust認証局" in flat and "〒100-0013東京都千代田区霞が関1-2-3" in flat
    page.emulate_media(media="print")
    screenshot(page, "console-printed-letter")
    page.emulate_media(media="screen")
    assert state_of(server, app_id) == "inquiry_sent"

    # Steps 4 and 5: the returned letter, then the payment (by keyboard alone).
    page.goto(server.https + application)
    page.check("#f-signed")
    page.check("#f-sealed")
    assert submit(page, "返送を記録") == 200
    assert state_of(server, app_id) == "identity_confirmed"
    page.focus("body")
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "amount":
            break
    else:
        raise AssertionError("the payment's amount field is not reachable by Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert state_of(server, app_id) == "awaiting_online_input"

    # Step 6: the applicant's online input with the printed credential.
    server.ok(
        "POST",
        "/applicant/online-input",
        None,
        {"enrollmentId": enrollment_id, "accessCode": access_code, "confirm": True},
    )
    assert state_of(server, app_id) == "online_input_received"

    # Step 7: the two-person rule is shown before the button, and alice's approval refused.
    page.goto(server.https + application + "?lang=en")
    approve = page.inner_text("section[aria-labelledby=approve]")
    assert "Entered by" in approve and "alice" in approve
    assert page.is_visible("#two-person-warning")
    assert submit(page, "Approve and mail the PIN") == 403
    assert "two-person rule" in page.inner_text("[role=alert]")
    assert state_of(server, app_id) == "online_input_received"
    pages.append((alice, application + "?lang=en"))

    # A cross-site form post is refused, even with a good token and alice's certificate.
    token = page.get_attribute("section[aria-labelledby=closing] form input[name=token]", "value")
    other = alice.new_page()
    other.goto(server.http + "/")  # a page of another origin (the plain-HTTP listener)
    with other.expect_navigation() as navigation:
        other.evaluate(
            """([url, token]) => { const f = document.createElement('form'); f.method = 'post';
            f.action = url; for (const [k, v] of [['token', token], ['reason', 'forged']]) {
            const i = document.createElement('input'); i.name = k; i.value = v; f.append(i); }
            document.body.append(f); f.submit(); }""",
            [f"{server.https}{application}/reject", token],
        )
    assert navigation.value.status == 403
    assert state_of(server, app_id) == "online_input_received"

    # bob approves; the PIN goes out by e-mail (aiosmtpd), with its expiry in Japan time.
    before = len(server.inbox.messages)
    page = open_page(bob, server, application)
    assert not page.is_visible("#two-person-warning")
    assert submit(page, "承認してPINを送信") == 200
    pin = server.inbox.pin_for(enrollment_id, after=before)
    assert "（日本時間）" in server.inbox.mail_for(enrollment_id, after=before)
    server.wait_state(app_id, "pin_sent")

    # Step 10: pickup over EST with the mailed PIN.
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    der = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    status, body = server.simpleenroll(enrollment_id, pin, der)
    assert status == 200, body
    assert state_of(server, app_id) == "issued"

    # Revocation with a reason and a confirmation.
    page.goto(server.https + application)
    pages.append((bob, application))
    page.select_option("#f-reason", "keyCompromise")
    page.check("#f-confirm")
    assert submit(page, "失効させる") == 200
    assert state_of(server, app_id) == "revoked"
    history = page.inner_text("section[aria-labelledby=history]")
    assert "application.approve.refused" in history and "alice" in history

    # The queue: by state, with the time in the state, and searched by ID and e-mail.
    page = open_page(alice, server, f"{CONSOLE}/?state=revoked")
    assert app_id in page.inner_text("main")
    page = open_page(alice, server, f"{CONSOLE}/?q={app_id}")
    assert app_id in page.inner_text("table")
    page = open_page(alice, server, f"{CONSOLE}/")
    screenshot(page, "console-queue")
    pages.append((alice, f"{CONSOLE}/"))

    # axe-core: 0 violations on every console page in both languages; 375 px wide.
    root = signed_in(browser, server, "root")
    admin_pages = [f"{CONSOLE}/mail", f"{CONSOLE}/audit?verify=1", f"{CONSOLE}/ca",
                   f"{CONSOLE}/operators", f"{CONSOLE}/acme"]  # fmt: skip
    narrow = signed_in(browser, server, "root", width=375)
    problems = []
    for context, path in [*pages, *((root, p) for p in admin_pages)]:
        base = path.split("?")[0]
        query = path.partition("?")[2].replace("lang=en", "").strip("&")
        for lang in ("ja", "en"):
            url = base + "?" + "&".join(q for q in (query, "lang=en" if lang == "en" else "") if q)
            seen = open_page(context, server, url.rstrip("?"))
            problems += [f"{url}: {v}" for v in axe_violations(seen, axe_source)]
            problems += [f"{url}: CSP {v}" for v in seen.evaluate("window.__csp")]
            seen.close()
        # The same page on a 375 px wide screen (root, an admin, may see every page).
        wide = open_page(narrow, server, path)
        overflow = wide.evaluate("document.documentElement.scrollWidth")
        if overflow > 375:
            problems.append(f"{path}: {overflow} px wide at 375 px")
        wide.close()
    assert problems == [], "\n".join(problems)
    page = open_page(root, server, f"{CONSOLE}/audit?verify=1")
    assert "監査ログは完全です" in page.inner_text("[role=status]")
    for context in (alice, bob, root, narrow):
        context.close()


def screenshot(page: Page, name: str) -> None:
    """Into test-artifacts/screenshots/ on every run; with JITSUIN_UPDATE_DOCS_IMAGES=1 also into
    docs/images/, the pictures docs/operators.md shows (so a plain run leaves the tree clean)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)
    if os.environ.get("JITSUIN_UPDATE_DOCS_IMAGES") == "1":
        page.screenshot(path=str(IMAGES / f"{name}.png"), full_page=True)


def test_without_a_bound_certificate_the_console_explains(browser, console):
    context = browser.new_context(ignore_https_errors=True)
    page = open_page(context, console, f"{CONSOLE}/", status=401)
    assert "クライアント証明書" in page.inner_text("main")
    context.close()


def test_a_post_without_origin_or_token_is_refused(console):
    operator = console.operators["alice"]
    for headers in ({}, {"Origin": console.https, "Sec-Fetch-Site": "same-origin"}):
        reply = requests.post(
            f"{console.https}{CONSOLE}/new",
            data={"familyName": "X", **({"token": "1.abc"} if headers else {})},
            headers=headers,
            cert=(str(operator.cert), str(operator.key)),
            verify=str(console.ca_pem),
            timeout=30,
        )
        assert reply.status_code == 403, reply.text
        assert json.dumps(reply.text) and "フォーム" in reply.text


def test_hostile_input_never_reaches_a_500(console):
    operator = console.operators["alice"]
    same = {"Origin": console.https, "Sec-Fetch-Site": "same-origin"}
    requests_to_make = [
        ("GET", f"{CONSOLE}/?offset=-1&state=%3Cscript%3E&q=" + "%00" * 300, {}),
        ("GET", f"{CONSOLE}/?q=APP-ZZZZZZZZ", {}),
        ("GET", f"{CONSOLE}/?q=nobody%40example.com&lang=xx", {}),
        ("GET", f"{CONSOLE}/?q=%25%5F%5C&offset=%C2%B2", {}),  # wildcards, escape, "²"
        ("GET", f"{CONSOLE}/?q=ya%00ma&offset=25", {}),
        ("GET", f"{CONSOLE}/?q=" + "%E5%B1%B1" * 800, {}),  # 800 characters
        ("GET", f"{CONSOLE}/applications/APP-%00", {}),
        ("GET", f"{CONSOLE}/applications/APP-ZZZZZZZZ", {}),
        ("GET", f"{CONSOLE}/audit?before=99999999999999999999&target=%00", {}),
        ("GET", f"{CONSOLE}/mail?status=%FF", {}),
        ("POST", f"{CONSOLE}/applications/APP-ZZZZZZZZ/approve", same),
        ("POST", f"{CONSOLE}/mail/999999999999999999/retry", same),
        ("POST", f"{CONSOLE}/acme/kid-%00/disable", same),
        ("POST", f"{CONSOLE}/operators/%00/disable", same),
        ("POST", f"{CONSOLE}/operators/new", same),
    ]
    for method, path, headers in requests_to_make:
        reply = requests.request(
            method,
            console.https + path,
            data={"token": "1.x", "amount": "x" * 100},
            headers=headers,
            cert=(str(operator.cert), str(operator.key)),
            verify=str(console.ca_pem),
            timeout=30,
        )
        assert reply.status_code < 500, (path, reply.status_code, reply.text[:300])
        assert reply.headers["Content-Type"].startswith("text/"), path


def test_the_queue_searches_by_name_pages_and_audits_the_read(console):
    """A part of the name, in either order and case, pages on the server (25 a page) and each
    page's read is audited with the applications it showed."""
    operator = console.operators["alice"]
    family = "Kensaku" + os.urandom(4).hex().translate(str.maketrans("0123456789", "ghijklmnop"))
    ids = []
    for n in range(26):
        given = "Hanako" if n == 0 else "Taro"
        unique = os.urandom(4).hex()
        created = console.ok(
            "POST",
            "/ra/applications",
            "alice",
            {
                "profile": "general",
                "familyName": family,
                "givenName": given,
                "email": f"kensaku.{unique}@example.com",
                "qualificationGroup": "member",
                "qualificationNumber": f"AB-{unique.upper()}",
                "postalAddress": "1-2-3 Kasumigaseki, Tokyo",
                "dateOfBirth": "1985-04-01",
                "billing": {"addressee": "self"},
            },
        )
        ids.append(created["id"])

    def shown(query: str) -> str:
        reply = requests.get(
            f"{console.https}{CONSOLE}/",
            params={"q": query, "lang": "en"},
            cert=(str(operator.cert), str(operator.key)),
            verify=str(console.ca_pem),
            timeout=30,
        )
        assert reply.status_code == 200, reply.text[:300]
        return reply.text

    def shown_ids(html: str) -> list[str]:
        return re.findall(r">(APP-[0-9A-Z]{8})</a>", html)

    assert shown_ids(shown(f"hanako {family.upper()}")) == [ids[0]]
    first = shown(family[:-2].lower())  # a part of the family name, in lower case
    on_first = shown_ids(first)
    assert len(on_first) == 25 and set(on_first) < set(ids)
    following = re.search(r'href="([^"]+)" rel="next"', first)
    assert following is not None and "q=" in following[1]
    reply = requests.get(
        console.https + following[1].replace("&amp;", "&"),
        cert=(str(operator.cert), str(operator.key)),
        verify=str(console.ca_pem),
        timeout=30,
    )
    on_second = shown_ids(reply.text)
    assert sorted(on_first + on_second) == sorted(ids)
    assert 'rel="next"' not in reply.text
    searches = [
        e["details"]["subjects"]
        for e in console.ok("GET", "/ra/audit?limit=1000", "root")["entries"]
        if e["action"] == "application.search" and e["actor"] == "alice"
    ]
    assert searches[-3:] == [[ids[0]], on_first, on_second]


def test_an_admin_adds_an_operator_whose_token_is_shown_once(browser, console, axe_source):
    """The console's form calls the service's add_operator: the first API token shown once, the
    admin recorded as knowing it (two-person rule), the audit entry; admins only."""
    bob = signed_in(browser, console, "bob")  # an approver
    open_page(bob, console, f"{CONSOLE}/operators/new", status=403)
    root = signed_in(browser, console, "root")
    problems = []
    for query in ("", "?lang=en"):
        seen = open_page(root, console, f"{CONSOLE}/operators/new{query}")
        problems += [f"{query}: {v}" for v in axe_violations(seen, axe_source)]
        problems += [f"{query}: CSP {v}" for v in seen.evaluate("window.__csp")]
        seen.close()
    assert problems == [], "\n".join(problems)

    name = f"carol-{os.urandom(3).hex()}"
    page = open_page(root, console, f"{CONSOLE}/operators?lang=en")
    with page.expect_navigation():
        page.get_by_role("link", name="Add operator").click()
    page.fill("#f-name", name)
    page.select_option("#f-role", "reviewer")
    assert submit(page, "Add operator") == 200
    said = page.inner_text("[role=status]")
    token = page.inner_text("[role=status] code")
    assert name in said and len(token) >= 32 and name in page.inner_text("table")
    # The token works for the API, as the CLI's would.
    reply = requests.get(
        f"{console.https}/ra/applications",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(console.ca_pem),
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    # Shown once: the operators page shows it no more.
    page = open_page(root, console, f"{CONSOLE}/operators?lang=en")
    assert token not in page.content()
    entries = console.ok("GET", "/ra/audit?limit=1000", "root")["entries"]
    [added] = [e for e in entries if e["target"] == f"operator/{name}"]
    assert (added["action"], added["actor"]) == ("operator.add", "root")
    assert added["details"] == {
        "role": "reviewer",
        "setBy": ["root"],  # the admin may know the first token (two-person rule)
        "credential": "certificate",
        "credentialSetBy": [],  # root bound their own certificate
    }
    # The same name again is refused on the form, which keeps what was typed.
    page = open_page(root, console, f"{CONSOLE}/operators/new?lang=en")
    page.fill("#f-name", name)
    assert submit(page, "Add operator") == 409
    assert page.input_value("#f-name") == name and "exists" in page.inner_text("[role=alert]")
    bob.close()
    root.close()


def test_the_rollover_is_for_an_admin_and_asks_for_confirmation(browser, console):
    """Last in this module: it changes the CA the other tests use."""
    bob = signed_in(browser, console, "bob")
    page = open_page(bob, console, f"{CONSOLE}/ca?lang=en")
    assert page.get_by_role("button", name="Roll over to the next generation").count() == 0
    root = signed_in(browser, console, "root")
    page = open_page(root, console, f"{CONSOLE}/ca?lang=en")
    assert "Generation 1" in page.inner_text("main")
    assert submit(page, "Roll over to the next generation") == 422  # not confirmed
    assert len(console.ca_certificates()) == 1
    page = open_page(root, console, f"{CONSOLE}/ca?lang=en")
    page.check("#f-confirm")
    assert submit(page, "Roll over to the next generation") == 200
    text = page.inner_text("main")
    assert "Generation 2" in text and "1 → 2" in text
    assert len(console.ca_certificates()) == 2
    bob.close()
    root.close()

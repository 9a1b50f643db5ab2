"""The pages as served: Japanese by default and English by choice, a strict Content-Security-
Policy with no inline script or style and nothing from another origin, no cookies, no-store
where a secret is typed, labelled fields and a keyboard path; the static modules and their
packaging; the applicant status endpoint and the EST refusal hints the pages rely on."""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jitsuin.server.web.pages import CONTENT_SECURITY_POLICY
from jitsuin.server.web.strings import CLIENT, PAGE

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "server" / "web" / "static"
# path -> takes a credential, PIN or passphrase (Cache-Control: no-store)
PAGES = {
    "/": False,
    "/online-input": True,
    "/status": True,
    "/pickup": True,
    "/ca-certificates": False,
    "/check": True,
}
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")


class Markup(HTMLParser):
    """What a page is made of, for the checks below."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.html_lang: str | None = None
        self.scripts: list[dict[str, str | None]] = []
        self.data_blocks: list[str] = []
        self.styles = 0
        self.inline: list[str] = []  # style= or on*= attributes
        self.references: list[str] = []  # src, href, action
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.h1 = 0
        self.main_ids: list[str | None] = []
        self.nav_labels: list[str | None] = []
        self.text: list[tuple[str, str]] = []  # (language in force, text)
        self._stack: list[tuple[str, str]] = []  # (tag, language)
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        lang = a.get("lang") or (self._stack[-1][1] if self._stack else "")
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "script":
            self.scripts.append(a)
            self._in_script = a
        if tag == "style":
            self.styles += 1
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}={value!r}>")
            if name in ("src", "href", "action") and value is not None:
                self.references.append(value)
        if tag == "input":
            self.inputs.append(a)
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"] or "")
        if tag == "h1":
            self.h1 += 1
        if tag == "main":
            self.main_ids.append(a.get("id"))
        if tag == "nav":
            self.nav_labels.append(a.get("aria-label"))
        if tag not in ("input", "meta", "link", "br"):
            self._stack.append((tag, lang))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            if data.strip():
                self.data_blocks.append(data)
            return
        if data.strip():
            self.text.append((self._stack[-1][1] if self._stack else "", data.strip()))


def get(server, path: str, accept: str = "text/html") -> tuple[int, dict[str, str], bytes]:
    return server.fetch(path, headers={"Accept": accept})


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("path", PAGES)
def test_page_headers_and_markup(server, path, lang):
    status, headers, body = get(server, path + ("?lang=en" if lang == "en" else ""))
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    # SEED-R18: no cookies; a strict CSP; nothing leaks through the Referer.
    assert "Set-Cookie" not in headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Language"] == lang
    assert (headers["Cache-Control"] == "no-store") is PAGES[path]

    page = Markup()
    page.feed(body.decode())
    assert page.html_lang == lang
    # No inline script or style; every script is a module from this origin or a data block.
    assert page.styles == 0 and page.inline == []
    for script in page.scripts:
        if script.get("type") == "application/json":
            continue
        assert script.get("type") == "module" and (script.get("src") or "").startswith("/static/")
    assert len(page.data_blocks) == 1
    data = json.loads(page.data_blocks[0])
    assert data["lang"] == lang and set(data["strings"]) == set(CLIENT)
    for reference in page.references:
        assert reference.startswith(("/", "#")), f"{reference} is not on this origin"
    # Structure and labels.
    assert page.h1 == 1 and page.main_ids == ["main"] and all(page.nav_labels)
    for field in page.inputs:
        if "hidden" in field or field.get("type") == "hidden":
            continue
        assert field.get("id") in page.label_for, f"input {field} has no label"
    # The language: English pages hold no Japanese outside the element marked lang="ja" (the
    # language switch), and Japanese pages are Japanese.
    if lang == "en":
        leaks = [t for where, t in page.text if where != "ja" and JAPANESE.search(t)]
        assert leaks == []
    else:
        assert sum(1 for _, t in page.text if JAPANESE.search(t)) >= 3


def test_default_language_is_japanese_and_english_is_a_link_away(server):
    status, _, body = get(server, "/pickup?lang=fr")
    assert status == 200 and b'<html lang="ja">' in body
    assert b'href="/pickup?lang=en" hreflang="en" lang="en"' in body
    _, _, english = get(server, "/pickup?lang=en")
    assert b'href="/pickup" hreflang="ja" lang="ja"' in english
    assert b'href="/ca-certificates?lang=en"' in english  # the choice follows every link


def test_landing_page_for_browsers_json_index_for_the_rest(server):
    status, headers, body = get(server, "/", accept="application/json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["generations"][0]["number"] == 1
    status, headers, body = get(server, "/")
    assert headers["Content-Type"].startswith("text/html") and b"/pickup" in body
    # The plain-HTTP listener keeps only the PKI routes: no pages there.
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(
        urllib.request.Request(server.http + "/", headers={"Accept": "text/html"})
    ) as reply:
        assert reply.headers["Content-Type"].startswith("application/json")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(server.http + "/pickup")
    assert missing.value.code == 404


def test_static_modules(server):
    files = sorted(p.name for p in STATIC.iterdir())
    assert {"der.js", "pkcs10.js", "pkcs7.js", "pkcs12.js", "x509.js", "pickup.js"} <= set(files)
    for name in files:
        status, headers, body = get(server, f"/static/{name}", accept="*/*")
        assert status == 200, name
        assert body == (STATIC / name).read_bytes()
        expected = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        assert headers["Content-Type"].startswith(expected[Path(name).suffix])
        text = body.decode().replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name only
        # No third-party resources and no code from strings (CSP would refuse it anyway).
        assert "http://" not in text and "https://" not in text, name
        assert "eval(" not in text and "new Function" not in text, name
        if name.endswith(".js"):
            for module in re.findall(r'^import .*? from "([^"]+)";', text, re.M | re.S):
                assert module.startswith("./") and (STATIC / module[2:]).exists(), module
    assert get(server, "/static/nothing.js")[0] == 404
    assert get(server, "/static/..%2Fpages.py")[0] == 404


def test_static_files_are_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    assert setuptools["package-dir"]["jitsuin.server.web"] == "server/web"
    patterns = setuptools["package-data"]["jitsuin.server.web"]
    for file in STATIC.iterdir():
        rel = file.relative_to(STATIC.parent).as_posix()
        assert any(fnmatch(rel, p) for p in patterns), f"{rel} would be left out of the wheel"


def test_strings_are_complete():
    for table in (PAGE, CLIENT):
        for key, (ja, en) in table.items():
            assert ja.strip() and en.strip(), key
            assert set(re.findall(r"\{(\w+)\}", ja)) == set(re.findall(r"\{(\w+)\}", en)), key
    used = "\n".join(p.read_text() for p in STATIC.glob("*.js"))
    for key in re.findall(r'\bt\("([a-z0-9_-]+)"', used):
        assert key in CLIENT, f"the page asks for the missing string {key!r}"


def test_applicant_status_shows_no_personal_data(server):
    applicant = server.application()
    status, reply = server.api(
        "POST", "/applicant/status", None, {"enrollmentId": applicant["enrollment_id"]}
    )
    assert status == 200
    assert set(reply) == {"state", "pin"} and reply["state"] == "pin_sent"
    assert set(reply["pin"]) == {"expiresAt", "expired", "locked"}
    assert reply["pin"]["expired"] is False and reply["pin"]["locked"] is False
    flat = json.dumps(reply)
    for personal in (applicant["email"], "Yamada", "Hanako", applicant["qualification_number"]):
        assert personal not in flat
    status, problem = server.api("POST", "/applicant/status", None, {"enrollmentId": "00000-00000"})
    assert status == 401 and problem["type"] == "urn:jitsuin:problem:unauthorized"
    status, problem = server.api("POST", "/applicant/status", None, {"id": "x"})
    assert status == 422


def test_est_refusals_carry_a_machine_readable_reason(server):
    applicant = server.application()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    der = csr.public_bytes(serialization.Encoding.DER)
    wrong = str((int(applicant["pin"]) + 1) % 10**8).zfill(8)
    import base64

    token = base64.b64encode(f"{applicant['enrollment_id']}:{wrong}".encode()).decode()
    status, headers, body = server.fetch(
        "/.well-known/est/simpleenroll",
        data=base64.b64encode(der),
        headers={"Content-Type": "application/pkcs10", "Authorization": f"Basic {token}"},
    )
    assert status == 401 and body.startswith(b"unknown enrollment ID or wrong PIN")
    assert headers["Jitsuin-Error"] == "unauthorized" and headers["Jitsuin-Attempts-Left"] == "4"
    assert server.simpleenroll(applicant["enrollment_id"], applicant["pin"], der)[0] == 200
    other = ec.generate_private_key(ec.SECP256R1())
    again = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(other, hashes.SHA256())
    )
    token = base64.b64encode(f"{applicant['enrollment_id']}:{applicant['pin']}".encode()).decode()
    status, headers, _ = server.fetch(
        "/.well-known/est/simpleenroll",
        data=base64.b64encode(again.public_bytes(serialization.Encoding.DER)),
        headers={"Content-Type": "application/pkcs10", "Authorization": f"Basic {token}"},
    )
    assert status == 401 and headers["Jitsuin-Error"] == "pin_used"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_keyboard_and_labels_in_the_browser(server, visit, lang):
    tab = visit(lang)
    page = tab.page
    for path in PAGES:
        tab.goto(path)
        # The first Tab reaches the skip link; Enter moves to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        unlabelled = page.evaluate(
            """[...document.querySelectorAll("input, select, textarea, button")]
                .filter((e) => e.offsetParent !== null)
                .filter((e) => e.tagName === "BUTTON"
                  ? !e.textContent.trim() : e.labels.length === 0)
                .map((e) => e.outerHTML)"""
        )
        assert unlabelled == [], path
        name = {"/": "00-home", "/status": "status-form", "/check": "12-check"}.get(path)
        if name:
            tab.screenshot(name)

"""The browser pages as a subscriber meets them: a running jitsuin server (a real process on
loopback), a real SMTP server that receives the PIN e-mails, an RA flow driven through the
operator API (the ``live_jitsuin`` machinery of tests/conftest.py), and Debian's headless
Chromium driven by Playwright.

Nothing is mocked. Screenshots go to test-artifacts/screenshots/ (ignored by git).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# docs/protocols.md §5.3: the flags Debian's Chromium needs here.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RETRY_AFTER_SECONDS = 1  # what the server tells a waiting EST client (the 202 test waits for it)
Server = Any  # tests/conftest.py's LiveServer (a conftest cannot import another)


# What a CA would write in its [letter] table.
LETTER_TOML = """
[letter]
ca_name = "Example Trust 認証局"
postcode = "100-0013"
address = "東京都千代田区霞が関1-2-3 Example Bldg. 5F"
phone = "03-1234-5678"
email = "ra@example.jp"
return_days = 21
payment_days = 30
payment_method = "銀行振込 / Bank transfer"
payment_account = "Example Bank Kasumigaseki 123 Ordinary 7654321 Example Trust"
registration_number = "T1234567890123"
"""


@pytest.fixture(scope="session")
def letter_toml() -> str:
    """The [letter] table of the letter and console tests."""
    return LETTER_TOML


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any) -> Iterator[Server]:
    """The server the browser tests share (each test makes its own applications). An address
    does not wait after a wrong try here, so that a test can show each refusal in turn
    (test_refusals.py shows the wait on a server of its own)."""
    with live_jitsuin.server(
        tmp_path_factory.mktemp("web-home"),
        retry_after_seconds=RETRY_AFTER_SECONDS,
        attempt_backoff_seconds=0,
    ) as started:
        yield started


@pytest.fixture
def start_server(
    tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any
) -> Iterator[Callable[..., Server]]:
    """``start_server(**options)``: a server of the test's own, for tests that change the CA or
    its configuration (the options of tests/conftest.py's ``write_config``)."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(
            live_jitsuin.server(
                tmp_path_factory.mktemp("web-own"),
                retry_after_seconds=RETRY_AFTER_SECONDS,
                **options,
            )
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module: sync Playwright keeps an event loop running while it is
    open, which would break the asyncio.run() of any test that runs after it in the session."""
    assert CHROMIUM.exists(), "Debian's chromium is missing: ./scripts/test installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


# Every securitypolicyviolation event (a script or style the CSP blocked) is kept for the checks.
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@dataclass
class Visit:
    """One browser tab on the server, with everything it sent and every script error."""

    page: Page
    server: Server
    lang: str
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        separator = "&" if "?" in path else "?"
        suffix = f"{separator}lang=en" if self.lang == "en" else ""
        fragment = ""
        if "#" in path:
            path, fragment = path.split("#", 1)
            fragment = "#" + fragment
        reply = self.page.goto(self.server.https + path + suffix + fragment)
        assert reply is not None and reply.status == 200, path
        assert self.page.evaluate("document.documentElement.lang") == self.lang

    def csp_violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations || []")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{self.lang}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def visit(browser: Browser, server: Server) -> Iterator[Callable[..., Visit]]:
    """``visit(lang, on=server)``: a fresh browser context (no shared state) in ``lang``. At
    the end, no page may have thrown or hit the Content-Security-Policy."""
    opened: list[tuple[Any, Visit]] = []

    def open_visit(lang: str = "ja", on: Server = server) -> Visit:
        context = browser.new_context(
            ignore_https_errors=True,  # the server's TLS certificate comes from the test CA
            locale="ja-JP" if lang == "ja" else "en-US",
            accept_downloads=True,
            viewport={"width": 1024, "height": 800},
        )
        context.add_init_script(_CSP_LISTENER)
        page = context.new_page()
        page.set_default_timeout(20_000)
        current = Visit(page, on, lang)
        page.on("request", lambda request: current.requests.append(request))
        page.on("pageerror", lambda exc: current.errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                current.errors.append(f"console: {msg.text}")
                if "Content Security Policy" in msg.text
                else None
            ),
        )
        opened.append((context, current))
        return current

    yield open_visit
    problems = []
    for context, current in opened:
        if not current.page.is_closed():
            problems += [f"CSP violation: {v}" for v in current.csp_violations()]
        problems += current.errors
        context.close()
    assert problems == [], problems

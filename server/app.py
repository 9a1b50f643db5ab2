"""The aiohttp application factory (docs/architecture.md, house habit 8)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from jitsuin.server import pki_http
from jitsuin.server.acme import handlers as acme_handlers
from jitsuin.server.acme import operator as acme_operator
from jitsuin.server.acme.service import AcmeService
from jitsuin.server.authority import Authority
from jitsuin.server.console import admin as console_admin
from jitsuin.server.console import applications as console_applications
from jitsuin.server.console import page as console_page
from jitsuin.server.console import queue as console_queue
from jitsuin.server.est import handlers as est_handlers
from jitsuin.server.est.service import Reenrollment
from jitsuin.server.keys import ACME, AUTHORITY, RA, REENROLLMENT
from jitsuin.server.middlewares import (
    observe,
    problems,
    quiet_malformed_http,
    request_body_deadline,
)
from jitsuin.server.ra import handlers as ra_handlers
from jitsuin.server.ra.credentials import Keyring
from jitsuin.server.ra.mailer import Mailer
from jitsuin.server.ra.service import RAService
from jitsuin.server.web import pages as web_pages


def create_public_app(authority: Authority) -> web.Application:
    """The plain-HTTP listener: only what must be http (CA certificates for AIA caIssuers, and
    later CRL and OCSP) and health. Operator, applicant and enrollment routes are HTTPS only."""
    app = _application(authority, log_access=False)
    app.add_routes(pki_http.routes)
    return app


def create_app(authority: Authority, *, send_mail: bool = True) -> web.Application:
    """The HTTPS listener: everything."""
    app = _application(authority, log_access=True)
    config = authority.config
    app[RA] = RAService(authority, config, Keyring(config.ra_secret()))
    # The browser pages; their landing page takes "/" here (the JSON index for non-browsers).
    app.add_routes(web_pages.routes)
    app.add_routes([r for r in pki_http.routes if getattr(r, "path", None) != "/"])
    app.add_routes(ra_handlers.routes)
    # The operators' console in the browser, signed in by their TLS client certificates.
    for console in (console_page, console_queue, console_applications, console_admin):
        app.add_routes(console.routes)
    app[REENROLLMENT] = Reenrollment(authority, config.est.reenroll_approval)
    app.add_routes(est_handlers.routes)
    # ACME (RFC 8555) at /acme/, and its operator endpoints under /ra/acme/.
    app[ACME] = AcmeService(
        authority, app[RA], app[REENROLLMENT], config.acme, config.ra.retry_after_seconds
    )
    app.add_routes(acme_operator.routes)
    if config.acme.enabled:
        app.add_routes(acme_handlers.routes)
    app.on_cleanup.append(acme_handlers.close)
    if send_mail:
        app.cleanup_ctx.append(_mail_worker)
    return app


def _application(authority: Authority, *, log_access: bool) -> web.Application:
    quiet_malformed_http()
    http = authority.config.http
    app = web.Application(
        middlewares=[
            observe(log_access=log_access),
            problems,
            request_body_deadline(http.request_body_timeout),
        ],
        client_max_size=64 * 1024,
    )
    app[AUTHORITY] = authority
    hsts = f"max-age={http.hsts_max_age}"

    async def strict_transport_security(request: web.Request, response: web.StreamResponse) -> None:
        # RFC 6797 §7.1: on every response over TLS; §7.2: never over plain HTTP, where it
        # would mean nothing and could be injected. No includeSubDomains: names under the CA's
        # host are not jitsuin's, and CRL, OCSP and CA certificate URLs must stay plain HTTP
        # (RFC 5280 §4.2.1.13, RFC 6960 Appendix A.1) wherever an operator puts them.
        if request.secure:
            response.headers["Strict-Transport-Security"] = hsts

    app.on_response_prepare.append(strict_transport_security)
    return app


async def _mail_worker(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(Mailer(app[RA], app[AUTHORITY].config.mail).run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

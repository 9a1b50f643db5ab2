"""The aiohttp application factory (house habit 8)."""

from __future__ import annotations

from aiohttp import web

from jitsuin.server import pki_http
from jitsuin.server.authority import Authority
from jitsuin.server.keys import AUTHORITY
from jitsuin.server.middlewares import problems


def create_app(authority: Authority) -> web.Application:
    app = web.Application(middlewares=[problems], client_max_size=64 * 1024)
    app[AUTHORITY] = authority
    app.add_routes(pki_http.routes)
    return app

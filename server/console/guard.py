"""Cross-site request protection for the console's forms. A browser presents the operator's TLS
client certificate on every request to the origin, whoever made the page that sent it, so a
state-changing form is taken only when (1) the request says it comes from this origin
(``Sec-Fetch-Site: same-origin`` and/or an ``Origin`` of this server; Fetch Metadata, and
RFC 6454 §7) and (2) it carries a token made for this operator and this action, with an expiry,
keyed with the RA secret (an HMAC; compared in constant time)."""

from __future__ import annotations

import datetime as dt
import urllib.parse

from aiohttp import web

from jitsuin.server.ra.credentials import Keyring

TOKEN_LIFETIME = dt.timedelta(hours=2)
_PURPOSE = "console-form"


class CrossSite(Exception):
    """The form post did not come from a console page of this server for this operator."""


def form_token(keyring: Keyring, operator: str, action: str, now: dt.datetime) -> str:
    expires = int((now + TOKEN_LIFETIME).timestamp())
    return f"{expires}.{keyring.digest(_PURPOSE, _bound(operator, action, str(expires)))}"


def _bound(operator: str, action: str, expires: str) -> str:
    return "\0".join((operator, action, expires))


def check_token(keyring: Keyring, operator: str, action: str, token: str, now: dt.datetime) -> None:
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        raise CrossSite("the form has no valid token")
    if int(expires_text) < now.timestamp():
        raise CrossSite("the form has expired: load the page again")
    if not keyring.matches(_PURPOSE, _bound(operator, action, expires_text), mac):
        raise CrossSite("the form's token is not for this operator and action")


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(request: web.Request, public_https_url: str) -> None:
    """Refuse a request that a page of another origin made. Browsers send ``Sec-Fetch-Site``
    and, on a POST, ``Origin``; a request with neither is refused too (a console form always
    comes from a browser)."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is None and origin is None:
        raise CrossSite("the request does not say where it comes from")
    if site is not None and site != "same-origin":
        raise CrossSite(f"a cross-site request ({site}) is refused")
    if origin is not None:
        own = {_origin(public_https_url), f"{request.scheme}://{request.host}".lower()}
        if origin.lower() not in own:
            raise CrossSite(f"a request from another origin ({origin[:100]}) is refused")

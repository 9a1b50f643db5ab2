"""Every ACME path is declared once (server/acme/paths.py): the routes, the directory and the
URLs in responses all come from the same table."""

from __future__ import annotations

from aiohttp import web

from jitsuin.server.acme import handlers
from jitsuin.server.acme.paths import Path, Urls

BASE = "https://ca.example.jp/acme"


def test_every_path_is_routed_and_every_route_is_a_path() -> None:
    routed = {r.path for r in handlers.routes if isinstance(r, web.RouteDef)}
    # RFC 9773 §4.1: renewalInfo is the prefix a certificate id is appended to; only that is served
    assert routed == {p.route for p in Path} - {Path.RENEWAL_INFO.route}


def test_the_directory_names_the_entry_points() -> None:
    urls = Urls(BASE + "/")
    assert urls.directory() == {
        "newNonce": f"{BASE}/new-nonce",
        "newAccount": f"{BASE}/new-account",
        "newOrder": f"{BASE}/new-order",
        "newAuthz": f"{BASE}/new-authz",
        "revokeCert": f"{BASE}/revoke-cert",
        "keyChange": f"{BASE}/key-change",
        "renewalInfo": f"{BASE}/renewal-info",  # RFC 9773 §4
    }


def test_resource_urls_fill_the_templates() -> None:
    urls = Urls(BASE)
    assert urls.account_orders("abcdefgh") == f"{BASE}/acct/abcdefgh/orders"
    assert urls.finalize("o1234567") == f"{BASE}/order/o1234567/finalize"
    assert urls.certificate("o1234567") == f"{BASE}/cert/o1234567"
    assert urls.certificate("o1234567", 2) == f"{BASE}/cert/o1234567/2"
    assert urls.account_prefix() == f"{BASE}/acct/"
    assert urls.external("/acme/order/x%2Fy") == f"{BASE}/order/x%2Fy"
    assert urls.help() == "https://ca.example.jp/docs/acme"
    assert Urls(BASE, "https://example.jp/acme-help").help() == "https://example.jp/acme-help"

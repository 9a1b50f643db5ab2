"""Operator endpoints for ACME under /ra/acme/: EAB keys for the tls-server profile, each with a
policy (allowed DNS suffixes and IP networks, certificate lifetime, certificate count, expiry).
The MAC key is shown once, in the creation response, and kept only sealed."""

from __future__ import annotations

from aiohttp import web

from jitsuin.server.acme.eab import eab_key_json
from jitsuin.server.http_json import json_body
from jitsuin.server.http_problems import NO_STORE, errors_as_problems
from jitsuin.server.keys import ACME
from jitsuin.server.operator_auth import operator_of

routes = web.RouteTableDef()


@routes.post("/ra/acme/eab-keys")
@errors_as_problems
async def create_eab_key(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    record, mac = await request.app[ACME].eab.create_key(operator, await json_body(request))
    body = {**eab_key_json(record), "hmacKey": mac}
    return web.json_response(
        body, status=201, headers={**NO_STORE, "Location": f"/ra/acme/eab-keys/{record.kid}"}
    )


@routes.get("/ra/acme/eab-keys")
@errors_as_problems
async def list_eab_keys(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    keys = await request.app[ACME].eab.keys(operator)
    return web.json_response({"keys": [eab_key_json(k) for k in keys]}, headers=NO_STORE)


@routes.get("/ra/acme/eab-keys/{kid:kid-[A-Za-z0-9_-]{1,64}}")
@errors_as_problems
async def read_eab_key(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    key = await request.app[ACME].eab.key(operator, request.match_info["kid"])
    return web.json_response(eab_key_json(key), headers=NO_STORE)


@routes.post("/ra/acme/eab-keys/{kid:kid-[A-Za-z0-9_-]{1,64}}/disable")
@errors_as_problems
async def disable_eab_key(request: web.Request) -> web.Response:
    operator = await operator_of(request)
    key = await request.app[ACME].eab.disable_key(operator, request.match_info["kid"])
    return web.json_response(eab_key_json(key), headers=NO_STORE)

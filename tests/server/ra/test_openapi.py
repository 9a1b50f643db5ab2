"""GET /ra/openapi.json describes exactly the routes the running app serves under /ra/ (but
the console's pages) and /applicant/: nothing undocumented, nothing documented that is not
there."""

from __future__ import annotations

import itertools
import json
import re

from aiohttp import web

PREFIXES = ("/ra/", "/applicant/")
CONSOLE = "/ra/console"  # the operators' HTML pages (docs/operators.md), not an API operation
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_VARIABLE = re.compile(r"\(\?P<(?P<name>\w+)>(?P<regex>[^()]*)\)")
_LITERALS = re.compile(r"[A-Za-z0-9_.~-]+(\|[A-Za-z0-9_.~-]+)*")


def normalise(path: str) -> str:
    """Path parameters compared by position only: /a/{id}/b -> /a/{}/b."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def expand(resource: web.AbstractResource) -> list[str]:
    """The concrete paths of a resource: a variable restricted to an alternation of literals
    ({decision:approve|reject}) stands for each of them."""
    info = resource.get_info()
    if "path" in info:
        return [info["path"]]
    formatter: str = info["formatter"]
    choices: dict[str, list[str]] = {}
    for match in _VARIABLE.finditer(info["pattern"].pattern):
        if _LITERALS.fullmatch(match["regex"]):
            choices[match["name"]] = match["regex"].split("|")
    names = list(choices)
    paths = []
    for values in itertools.product(*(choices[n] for n in names)):
        path = formatter
        for name, value in zip(names, values, strict=True):
            path = path.replace("{" + name + "}", value)
        paths.append(path)
    return paths


def served(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.resource is None:
            continue
        for path in expand(route.resource):
            if path.startswith(PREFIXES) and not path.startswith(CONSOLE):
                routes.add((normalise(path), route.method.lower()))
    # aiohttp answers HEAD for every GET route by itself; that is not an operation of its own.
    return {(p, m) for p, m in routes if not (m == "head" and (p, "get") in routes)}


async def test_openapi_matches_the_routes(server):
    reply = await server.call("GET", "/ra/openapi.json")
    document = reply.expect(200).json
    assert reply.content_type == "application/json"
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    assert document["info"]["title"] and document["info"]["version"]

    documented = set()
    for path, item in document["paths"].items():
        assert path.startswith(PREFIXES), path
        operations = set(item) & METHODS
        assert operations, f"{path} has no operation"
        documented |= {(normalise(path), method) for method in operations}
        for method in operations:
            assert item[method].get("responses"), f"{method.upper()} {path} has no responses"
    routes = served(server.app)
    assert len(routes) > 15, routes

    undocumented = routes - documented
    missing = documented - routes
    assert undocumented == set(), f"served but not in openapi.json: {sorted(undocumented)}"
    assert missing == set(), f"in openapi.json but not served: {sorted(missing)}"


async def test_openapi_references_resolve(server):
    document = (await server.call("GET", "/ra/openapi.json")).expect(200).json
    refs = set(re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(document)))
    assert refs
    for ref in refs:
        node = document
        for part in ref.split("/"):
            assert part in node, f"#/{ref} does not resolve"
            node = node[part]
    # The operator API says how to authenticate.
    schemes = document["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["operatorToken"].items()
    # The applicant's endpoint needs no operator token.
    assert document["paths"]["/applicant/online-input"]["post"].get("security") == []

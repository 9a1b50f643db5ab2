"""Golden cases of conformance/rules/acme.py: a live ACME server (A-01..A-17), judged on made-up
exchanges; the real runs are in tests/conformance/test_live.py.

Each case builds a document, judges it with one rule and says whether the rule must fail (with which
severity) or pass (docs/architecture.md, house habit 7; tests/conformance/golden.py).
"""

from __future__ import annotations

import pytest

from jitsuin.conformance.findings import Severity
from jitsuin.conformance.registry import REGISTRY
from tests.conformance.golden import (
    ACME_BASE,
    Case,
    _ex,
    _run,
    case,
    case_id,
    cases_in,
    check,
    f_der,
)

PROBLEM = (("Content-Type", "application/problem+json"),)


INDEX = ("Link", f'<{ACME_BASE}/dir>;rel="index"')


def _problem(name, status, kind, *, extra=None, headers=()):
    import json

    body = {
        "type": f"urn:ietf:params:acme:error:{kind}",
        "detail": f"{kind} (made up)",
        **(extra or {}),
    }
    return _ex(
        name,
        status,
        base=ACME_BASE,
        path=f"/{name}",
        headers=[*PROBLEM, INDEX, *headers],
        body=json.dumps(body).encode(),
    )


def _json(name, status, value, *, method="POST", headers=()):
    import json

    return _ex(
        name,
        status,
        method=method,
        base=ACME_BASE,
        path=f"/{name}",
        headers=[
            ("Content-Type", "application/json"),
            ("Replay-Nonce", f"n-{name}"),
            INDEX,
            *headers,
        ],
        body=json.dumps(value).encode(),
    )


def _acme_doc(f, **replace):
    from cryptography.hazmat.primitives import serialization

    from jitsuin.conformance.live import acme_server

    directory = {
        k: f"{ACME_BASE}/{k}"
        for k in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange")
    }
    account = ("Location", f"{ACME_BASE}/acct/1")
    order = {
        "status": "pending",
        "authorizations": [f"{ACME_BASE}/authz/1"],
        "finalize": f"{ACME_BASE}/fin/1",
    }
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (f.leaf(), f.ca().cert))
    nonce = [("Replay-Nonce", "abc_DEF-123"), ("Cache-Control", "no-store"), INDEX]
    algorithms = {"algorithms": ["ES256", "RS256"]}
    exchanges = {
        "directory": _json("directory", 200, {**directory, "meta": {}}, method="GET"),
        "nonce-head": _ex(
            "nonce-head", 200, method="HEAD", base=ACME_BASE, path="/newNonce", headers=nonce
        ),
        "nonce-get": _ex(
            "nonce-get",
            204,
            method="GET",
            base=ACME_BASE,
            path="/newNonce",
            headers=[("Replay-Nonce", "xyz_987"), *nonce[1:]],
        ),
        "bad-content-type": _problem("bad-content-type", 415, "malformed"),
        "bad-nonce": _problem("bad-nonce", 400, "badNonce", headers=[("Replay-Nonce", "fresh1")]),
        "jws-general": _problem("jws-general", 400, "malformed"),
        "jws-unprotected-header": _problem("jws-unprotected-header", 400, "malformed"),
        "jws-jwk-and-kid": _problem("jws-jwk-and-kid", 400, "malformed"),
        "jws-alg-none": _problem("jws-alg-none", 400, "badSignatureAlgorithm", extra=algorithms),
        "jws-alg-hs256": _problem("jws-alg-hs256", 400, "badSignatureAlgorithm", extra=algorithms),
        "url-mismatch": _problem("url-mismatch", 403, "unauthorized"),
        "new-account": _json("new-account", 201, {"status": "valid"}, headers=[account]),
        "existing-account": _json("existing-account", 200, {"status": "valid"}, headers=[account]),
        "new-order": _json("new-order", 201, order, headers=[("Location", f"{ACME_BASE}/order/1")]),
        "finalize-not-ready": _problem("finalize-not-ready", 403, "orderNotReady"),
        "get-order": _ex("get-order", 405, method="GET", base=ACME_BASE, path="/order/1"),
        "authz": _json("authz", 200, {"status": "pending"}),
        "challenge": _json(
            "challenge",
            200,
            {"status": "processing"},
            headers=[("Link", f'<{ACME_BASE}/authz/1>;rel="up"')],
        ),
        "finalize-bad-csr": _problem("finalize-bad-csr", 400, "badCSR"),
        "finalize": _json(
            "finalize", 200, {"status": "valid", "certificate": f"{ACME_BASE}/cert/1"}
        ),
        "certificate": _ex(
            "certificate",
            200,
            base=ACME_BASE,
            path="/cert/1",
            body=pem,
            headers=[
                ("Content-Type", "application/pem-certificate-chain"),
                ("Replay-Nonce", "c1"),
                INDEX,
            ],
        ),
        "revoke-bad-reason": _problem("revoke-bad-reason", 400, "badRevocationReason"),
        "revoke": _ex(
            "revoke", 200, base=ACME_BASE, path="/revoke", headers=[("Replay-Nonce", "r1"), INDEX]
        ),
        "revoke-again": _problem("revoke-again", 400, "alreadyRevoked"),
    }
    exchanges.update(replace)
    facts = {"authz_url": f"{ACME_BASE}/authz/1", "bad_nonce_sent": "stale"}
    return acme_server(f"{ACME_BASE}/dir", [e for e in exchanges.values() if e is not None], facts)


for _rule in [r.id for r in REGISTRY if r.id.startswith("A-")]:
    case(_rule, "pass")(lambda f, _r=_rule: _run(_r, _acme_doc(f)))


@case("A-01")
def directory_without_key_change(f):
    return _run(
        "A-01", _acme_doc(f, directory=_json("directory", 200, {"newNonce": "x"}, method="GET"))
    )


@case("A-02")
def nonce_cacheable(f):
    head = _ex(
        "nonce-head",
        200,
        method="HEAD",
        base=ACME_BASE,
        path="/newNonce",
        headers=[("Replay-Nonce", "abc"), INDEX],
    )
    return _run("A-02", _acme_doc(f, **{"nonce-head": head}))


@case("A-02", severity=Severity.WARNING)
def head_nonce_answers_204(f):
    """RFC 8555 §7.2: HEAD newNonce SHOULD have status 200."""
    head = _ex(
        "nonce-head",
        204,
        method="HEAD",
        base=ACME_BASE,
        path="/newNonce",
        headers=[("Replay-Nonce", "abc"), ("Cache-Control", "no-store"), INDEX],
    )
    return _run("A-02", _acme_doc(f, **{"nonce-head": head}))


@case("A-04", "pass")
def problem_type_outside_the_acme_namespace(f):
    """RFC 8555 §6.7: a type URI outside urn:ietf:params:acme:error: is allowed."""
    import json

    body = json.dumps({"type": "https://example.com/problems/x", "detail": "x"}).encode()
    other = _ex(
        "jws-general",
        400,
        base=ACME_BASE,
        path="/jws-general",
        headers=[("Content-Type", "application/problem+json"), ("Replay-Nonce", "n"), INDEX],
        body=body,
    )
    return _run("A-04", _acme_doc(f, **{"jws-general": other}))


@case("A-03")
def bad_nonce_without_fresh_nonce(f):
    return _run("A-03", _acme_doc(f, **{"bad-nonce": _problem("bad-nonce", 400, "badNonce")}))


@case("A-04", severity=Severity.WARNING)
def error_as_plain_json(f):
    plain = _json("jws-general", 400, {"type": "urn:ietf:params:acme:error:malformed"})
    return _run("A-04", _acme_doc(f, **{"jws-general": plain}))


@case("A-04")
def unregistered_error_type(f):
    return _run("A-04", _acme_doc(f, **{"jws-general": _problem("jws-general", 400, "oops")}))


@case("A-05")
def json_content_type_malformed(f):
    return _run(
        "A-05", _acme_doc(f, **{"bad-content-type": _problem("bad-content-type", 400, "malformed")})
    )


@case("A-06")
def general_serialization_accepted(f):
    return _run("A-06", _acme_doc(f, **{"jws-general": _json("jws-general", 201, {})}))


@case("A-07")
def alg_none_without_algorithms(f):
    return _run(
        "A-07",
        _acme_doc(f, **{"jws-alg-none": _problem("jws-alg-none", 400, "badSignatureAlgorithm")}),
    )


@case("A-08")
def url_mismatch_malformed(f):
    return _run(
        "A-08", _acme_doc(f, **{"url-mismatch": _problem("url-mismatch", 400, "malformed")})
    )


@case("A-09")
def new_account_without_location(f):
    return _run("A-09", _acme_doc(f, **{"new-account": _json("new-account", 200, {})}))


@case("A-10")
def post_without_replay_nonce(f):
    bare = _ex("revoke", 200, base=ACME_BASE, path="/revoke", headers=[INDEX])
    return _run("A-10", _acme_doc(f, revoke=bare))


@case("A-11")
def order_not_pending(f):
    odd = _json(
        "new-order", 201, {"status": "valid"}, headers=[("Location", f"{ACME_BASE}/order/1")]
    )
    return _run("A-11", _acme_doc(f, **{"new-order": odd}))


@case("A-12")
def finalize_before_ready_malformed(f):
    return _run(
        "A-12",
        _acme_doc(f, **{"finalize-not-ready": _problem("finalize-not-ready", 400, "malformed")}),
    )


@case("A-13", severity=Severity.WARNING)
def get_allowed_on_orders(f):
    return _run("A-13", _acme_doc(f, **{"get-order": _json("get-order", 200, {}, method="GET")}))


@case("A-14", severity=Severity.WARNING)
def challenge_without_up_link(f):
    return _run("A-14", _acme_doc(f, challenge=_json("challenge", 200, {"status": "processing"})))


@case("A-14")
def challenge_without_status(f):
    """RFC 8555 §7.1.5: status is REQUIRED in a challenge object."""
    return _run("A-14", _acme_doc(f, challenge=_json("challenge", 200, {"type": "http-01"})))


@case("A-15")
def wrong_csr_accepted(f):
    return _run("A-15", _acme_doc(f, **{"finalize-bad-csr": _json("finalize-bad-csr", 200, {})}))


@case("A-15", severity=Severity.WARNING)
def csr_refused_as_unauthorized(f):
    """Pebble's answer: refused (the MUST holds), but 403 unauthorized where RFC 8555 §7.4 says
    the server SHOULD use badCSR."""
    bad = _problem("finalize-bad-csr", 403, "unauthorized")
    return _run("A-15", _acme_doc(f, **{"finalize-bad-csr": bad}))


@case("A-16")
def certificate_as_der(f):
    der = _ex(
        "certificate",
        200,
        base=ACME_BASE,
        path="/cert/1",
        body=f.leaf().public_bytes(f_der()),
        headers=[("Content-Type", "application/pkix-cert"), ("Replay-Nonce", "c"), INDEX],
    )
    return _run("A-16", _acme_doc(f, certificate=der))


@case("A-17")
def reason_7_accepted(f):
    return _run("A-17", _acme_doc(f, **{"revoke-bad-reason": _json("revoke-bad-reason", 200, {})}))


@pytest.mark.parametrize("c", cases_in(__name__), ids=case_id)
def test_case(c: Case, factory) -> None:
    check(c, factory)

"""Golden cases of conformance/rules/acme.py: a live ACME server (A-01..A-17), judged on made-up
exchanges; the real runs are in tests/conformance/test_live.py.

Each case builds a document, judges it with one rule and says whether the rule must fail (with which
severity) or pass (docs/architecture.md, house habit 7; tests/conformance/golden.py).
"""

from __future__ import annotations

import pytest

from jitsuin.conformance.exchanges import AcmeExchange
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
        AcmeExchange.DIRECTORY: _json(
            AcmeExchange.DIRECTORY, 200, {**directory, "meta": {}}, method="GET"
        ),
        AcmeExchange.NONCE_HEAD: _ex(
            AcmeExchange.NONCE_HEAD,
            200,
            method="HEAD",
            base=ACME_BASE,
            path="/newNonce",
            headers=nonce,
        ),
        AcmeExchange.NONCE_GET: _ex(
            AcmeExchange.NONCE_GET,
            204,
            method="GET",
            base=ACME_BASE,
            path="/newNonce",
            headers=[("Replay-Nonce", "xyz_987"), *nonce[1:]],
        ),
        AcmeExchange.BAD_CONTENT_TYPE: _problem(AcmeExchange.BAD_CONTENT_TYPE, 415, "malformed"),
        AcmeExchange.BAD_NONCE: _problem(
            AcmeExchange.BAD_NONCE, 400, "badNonce", headers=[("Replay-Nonce", "fresh1")]
        ),
        AcmeExchange.JWS_GENERAL: _problem(AcmeExchange.JWS_GENERAL, 400, "malformed"),
        AcmeExchange.JWS_UNPROTECTED_HEADER: _problem(
            AcmeExchange.JWS_UNPROTECTED_HEADER, 400, "malformed"
        ),
        AcmeExchange.JWS_JWK_AND_KID: _problem(AcmeExchange.JWS_JWK_AND_KID, 400, "malformed"),
        AcmeExchange.JWS_ALG_NONE: _problem(
            AcmeExchange.JWS_ALG_NONE, 400, "badSignatureAlgorithm", extra=algorithms
        ),
        AcmeExchange.JWS_ALG_HS256: _problem(
            AcmeExchange.JWS_ALG_HS256, 400, "badSignatureAlgorithm", extra=algorithms
        ),
        AcmeExchange.URL_MISMATCH: _problem(AcmeExchange.URL_MISMATCH, 403, "unauthorized"),
        AcmeExchange.NEW_ACCOUNT: _json(
            AcmeExchange.NEW_ACCOUNT, 201, {"status": "valid"}, headers=[account]
        ),
        AcmeExchange.EXISTING_ACCOUNT: _json(
            AcmeExchange.EXISTING_ACCOUNT, 200, {"status": "valid"}, headers=[account]
        ),
        AcmeExchange.NEW_ORDER: _json(
            AcmeExchange.NEW_ORDER, 201, order, headers=[("Location", f"{ACME_BASE}/order/1")]
        ),
        AcmeExchange.FINALIZE_NOT_READY: _problem(
            AcmeExchange.FINALIZE_NOT_READY, 403, "orderNotReady"
        ),
        AcmeExchange.GET_ORDER: _ex(
            AcmeExchange.GET_ORDER, 405, method="GET", base=ACME_BASE, path="/order/1"
        ),
        AcmeExchange.AUTHZ: _json(AcmeExchange.AUTHZ, 200, {"status": "pending"}),
        AcmeExchange.CHALLENGE: _json(
            AcmeExchange.CHALLENGE,
            200,
            {"status": "processing"},
            headers=[("Link", f'<{ACME_BASE}/authz/1>;rel="up"')],
        ),
        AcmeExchange.FINALIZE_BAD_CSR: _problem(AcmeExchange.FINALIZE_BAD_CSR, 400, "badCSR"),
        AcmeExchange.FINALIZE: _json(
            AcmeExchange.FINALIZE, 200, {"status": "valid", "certificate": f"{ACME_BASE}/cert/1"}
        ),
        AcmeExchange.CERTIFICATE: _ex(
            AcmeExchange.CERTIFICATE,
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
        AcmeExchange.REVOKE_BAD_REASON: _problem(
            AcmeExchange.REVOKE_BAD_REASON, 400, "badRevocationReason"
        ),
        AcmeExchange.REVOKE: _ex(
            AcmeExchange.REVOKE,
            200,
            base=ACME_BASE,
            path="/revoke",
            headers=[("Replay-Nonce", "r1"), INDEX],
        ),
        AcmeExchange.REVOKE_AGAIN: _problem(AcmeExchange.REVOKE_AGAIN, 400, "alreadyRevoked"),
    }
    exchanges.update(replace)
    facts = {"authz_url": f"{ACME_BASE}/authz/1", "bad_nonce_sent": "stale"}
    return acme_server(f"{ACME_BASE}/dir", [e for e in exchanges.values() if e is not None], facts)


for _rule in [r.id for r in REGISTRY if r.id.startswith("A-")]:
    case(_rule, "pass")(lambda f, _r=_rule: _run(_r, _acme_doc(f)))


@case("A-01")
def directory_without_key_change(f):
    return _run(
        "A-01",
        _acme_doc(
            f,
            **{
                AcmeExchange.DIRECTORY: _json(
                    AcmeExchange.DIRECTORY, 200, {"newNonce": "x"}, method="GET"
                )
            },
        ),
    )


@case("A-02")
def nonce_cacheable(f):
    head = _ex(
        AcmeExchange.NONCE_HEAD,
        200,
        method="HEAD",
        base=ACME_BASE,
        path="/newNonce",
        headers=[("Replay-Nonce", "abc"), INDEX],
    )
    return _run("A-02", _acme_doc(f, **{AcmeExchange.NONCE_HEAD: head}))


@case("A-02", severity=Severity.WARNING)
def head_nonce_answers_204(f):
    """RFC 8555 §7.2: HEAD newNonce SHOULD have status 200."""
    head = _ex(
        AcmeExchange.NONCE_HEAD,
        204,
        method="HEAD",
        base=ACME_BASE,
        path="/newNonce",
        headers=[("Replay-Nonce", "abc"), ("Cache-Control", "no-store"), INDEX],
    )
    return _run("A-02", _acme_doc(f, **{AcmeExchange.NONCE_HEAD: head}))


@case("A-04", "pass")
def problem_type_outside_the_acme_namespace(f):
    """RFC 8555 §6.7: a type URI outside urn:ietf:params:acme:error: is allowed."""
    import json

    body = json.dumps({"type": "https://example.com/problems/x", "detail": "x"}).encode()
    other = _ex(
        AcmeExchange.JWS_GENERAL,
        400,
        base=ACME_BASE,
        path="/jws-general",
        headers=[("Content-Type", "application/problem+json"), ("Replay-Nonce", "n"), INDEX],
        body=body,
    )
    return _run("A-04", _acme_doc(f, **{AcmeExchange.JWS_GENERAL: other}))


@case("A-03")
def bad_nonce_without_fresh_nonce(f):
    return _run(
        "A-03",
        _acme_doc(f, **{AcmeExchange.BAD_NONCE: _problem(AcmeExchange.BAD_NONCE, 400, "badNonce")}),
    )


@case("A-04", severity=Severity.WARNING)
def error_as_plain_json(f):
    plain = _json(AcmeExchange.JWS_GENERAL, 400, {"type": "urn:ietf:params:acme:error:malformed"})
    return _run("A-04", _acme_doc(f, **{AcmeExchange.JWS_GENERAL: plain}))


@case("A-04")
def unregistered_error_type(f):
    return _run(
        "A-04",
        _acme_doc(f, **{AcmeExchange.JWS_GENERAL: _problem(AcmeExchange.JWS_GENERAL, 400, "oops")}),
    )


@case("A-05")
def json_content_type_malformed(f):
    return _run(
        "A-05",
        _acme_doc(
            f,
            **{
                AcmeExchange.BAD_CONTENT_TYPE: _problem(
                    AcmeExchange.BAD_CONTENT_TYPE, 400, "malformed"
                )
            },
        ),
    )


@case("A-06")
def general_serialization_accepted(f):
    return _run(
        "A-06", _acme_doc(f, **{AcmeExchange.JWS_GENERAL: _json(AcmeExchange.JWS_GENERAL, 201, {})})
    )


@case("A-07")
def alg_none_without_algorithms(f):
    return _run(
        "A-07",
        _acme_doc(
            f,
            **{
                AcmeExchange.JWS_ALG_NONE: _problem(
                    AcmeExchange.JWS_ALG_NONE, 400, "badSignatureAlgorithm"
                )
            },
        ),
    )


@case("A-08")
def url_mismatch_malformed(f):
    return _run(
        "A-08",
        _acme_doc(
            f, **{AcmeExchange.URL_MISMATCH: _problem(AcmeExchange.URL_MISMATCH, 400, "malformed")}
        ),
    )


@case("A-09")
def new_account_without_location(f):
    return _run(
        "A-09", _acme_doc(f, **{AcmeExchange.NEW_ACCOUNT: _json(AcmeExchange.NEW_ACCOUNT, 200, {})})
    )


@case("A-10")
def post_without_replay_nonce(f):
    bare = _ex(AcmeExchange.REVOKE, 200, base=ACME_BASE, path="/revoke", headers=[INDEX])
    return _run("A-10", _acme_doc(f, **{AcmeExchange.REVOKE: bare}))


@case("A-11")
def order_not_pending(f):
    odd = _json(
        AcmeExchange.NEW_ORDER,
        201,
        {"status": "valid"},
        headers=[("Location", f"{ACME_BASE}/order/1")],
    )
    return _run("A-11", _acme_doc(f, **{AcmeExchange.NEW_ORDER: odd}))


@case("A-12")
def finalize_before_ready_malformed(f):
    return _run(
        "A-12",
        _acme_doc(
            f,
            **{
                AcmeExchange.FINALIZE_NOT_READY: _problem(
                    AcmeExchange.FINALIZE_NOT_READY, 400, "malformed"
                )
            },
        ),
    )


@case("A-13", severity=Severity.WARNING)
def get_allowed_on_orders(f):
    return _run(
        "A-13",
        _acme_doc(
            f, **{AcmeExchange.GET_ORDER: _json(AcmeExchange.GET_ORDER, 200, {}, method="GET")}
        ),
    )


@case("A-14", severity=Severity.WARNING)
def challenge_without_up_link(f):
    return _run(
        "A-14",
        _acme_doc(
            f,
            **{
                AcmeExchange.CHALLENGE: _json(AcmeExchange.CHALLENGE, 200, {"status": "processing"})
            },
        ),
    )


@case("A-14")
def challenge_without_status(f):
    """RFC 8555 §7.1.5: status is REQUIRED in a challenge object."""
    return _run(
        "A-14",
        _acme_doc(
            f, **{AcmeExchange.CHALLENGE: _json(AcmeExchange.CHALLENGE, 200, {"type": "http-01"})}
        ),
    )


@case("A-15")
def wrong_csr_accepted(f):
    return _run(
        "A-15",
        _acme_doc(
            f, **{AcmeExchange.FINALIZE_BAD_CSR: _json(AcmeExchange.FINALIZE_BAD_CSR, 200, {})}
        ),
    )


@case("A-15", severity=Severity.WARNING)
def csr_refused_as_unauthorized(f):
    """Pebble's answer: refused (the MUST holds), but 403 unauthorized where RFC 8555 §7.4 says
    the server SHOULD use badCSR."""
    bad = _problem(AcmeExchange.FINALIZE_BAD_CSR, 403, "unauthorized")
    return _run("A-15", _acme_doc(f, **{AcmeExchange.FINALIZE_BAD_CSR: bad}))


@case("A-16")
def certificate_as_der(f):
    der = _ex(
        AcmeExchange.CERTIFICATE,
        200,
        base=ACME_BASE,
        path="/cert/1",
        body=f.leaf().public_bytes(f_der()),
        headers=[("Content-Type", "application/pkix-cert"), ("Replay-Nonce", "c"), INDEX],
    )
    return _run("A-16", _acme_doc(f, **{AcmeExchange.CERTIFICATE: der}))


@case("A-17")
def reason_7_accepted(f):
    return _run(
        "A-17",
        _acme_doc(
            f, **{AcmeExchange.REVOKE_BAD_REASON: _json(AcmeExchange.REVOKE_BAD_REASON, 200, {})}
        ),
    )


@pytest.mark.parametrize("c", cases_in(__name__), ids=case_id)
def test_case(c: Case, factory) -> None:
    check(c, factory)

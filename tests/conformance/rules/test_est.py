"""Golden cases of conformance/rules/est.py: a live EST server (E-01..E-11), judged on made-up
exchanges; the real runs are in tests/conformance/test_live.py.

Each case builds a document, judges it with one rule and says whether the rule must fail (with which
severity) or pass (docs/architecture.md, house habit 7; tests/conformance/golden.py).
"""

from __future__ import annotations

import pytest

from jitsuin.conformance.findings import Severity
from tests.conformance.golden import (
    EST_BASE,
    Case,
    _ex,
    _run,
    case,
    case_id,
    cases_in,
    check,
)

TEXT = (("Content-Type", "text/plain; charset=utf-8"),)


CHALLENGE = (("WWW-Authenticate", 'Basic realm="est"'), *TEXT)


def _certs_only(*certs):
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    return base64.encodebytes(pkcs7.serialize_certificates(list(certs), Encoding.DER))


def _est_doc(f, **replace):
    from cryptography.hazmat.primitives import serialization

    from jitsuin.conformance.live import est_server

    ca, leaf = f.ca(), f.leaf()
    pkcs7 = (("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),)
    exchanges = {
        "cacerts": _ex(
            "cacerts",
            200,
            method="GET",
            path="/cacerts",
            headers=[("Content-Type", "application/pkcs7-mime")],
            body=_certs_only(ca.cert),
        ),
        "enroll-no-auth": _ex("enroll-no-auth", 401, headers=CHALLENGE, body=b"authenticate"),
        "enroll-bad-auth": _ex("enroll-bad-auth", 401, headers=CHALLENGE, body=b"wrong PIN"),
        "enroll-wrong-type": _ex("enroll-wrong-type", 415, headers=TEXT, body=b"send pkcs10"),
        "enroll-garbage": _ex("enroll-garbage", 400, headers=TEXT, body=b"not base64"),
        "enroll-bad-csr-auth": _ex("enroll-bad-csr-auth", 400, headers=TEXT, body=b"bad CSR"),
        "enroll": _ex("enroll", 200, headers=pkcs7, body=_certs_only(leaf)),
        "enroll-retry": _ex("enroll-retry", 200, headers=pkcs7, body=_certs_only(leaf)),
        "reenroll-no-cert": _ex("reenroll-no-cert", 401, path="/simplereenroll", headers=CHALLENGE),
        "reenroll-other-subject": _ex(
            "reenroll-other-subject", 403, path="/simplereenroll", headers=TEXT
        ),
        "reenroll": _ex(
            "reenroll", 202, path="/simplereenroll", headers=[("Retry-After", "60"), *TEXT]
        ),
        "csrattrs": _ex(
            "csrattrs",
            200,
            method="GET",
            path="/csrattrs",
            headers=[("Content-Type", "application/csrattrs")],
            body=b"MAA=\n",
        ),
        "fullcmc": _ex("fullcmc", 501, path="/fullcmc", headers=TEXT, body=b"not offered"),
    }
    exchanges.update(replace)
    spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    facts = {"legacy_tls_accepted": False, "tls_version": "TLSv1.3", "enroll_spki": spki}
    return est_server(EST_BASE, [e for e in exchanges.values() if e is not None], facts)


for _rule in (
    "E-01",
    "E-02",
    "E-03",
    "E-04",
    "E-05",
    "E-06",
    "E-07",
    "E-08",
    "E-09",
    "E-10",
    "E-11",
):
    case(_rule, "pass")(lambda f, _r=_rule: _run(_r, _est_doc(f)))


@case("E-01")
def est_over_tls_1_1(f):
    doc = _est_doc(f)
    doc.facts["legacy_tls_accepted"] = True
    doc.facts["tls_version"] = "TLSv1.1"
    return _run("E-01", doc)


@case("E-02")
def cacerts_wrong_type_and_body(f):
    bad = _ex(
        "cacerts",
        200,
        method="GET",
        path="/cacerts",
        headers=[("Content-Type", "application/x-pem-file")],
        body=b"-----BEGIN",
    )
    return _run("E-02", _est_doc(f, cacerts=bad))


@case("E-02", severity=Severity.WARNING)
def cacerts_requires_authentication(f):
    """RFC 7030 §4.1.1: /cacerts SHOULD NOT require client authentication."""
    refused = _ex(
        "cacerts",
        401,
        method="GET",
        path="/cacerts",
        headers=[("Content-Type", "text/plain"), ("WWW-Authenticate", 'Basic realm="est"')],
        body=b"authenticate",
    )
    return _run("E-02", _est_doc(f, cacerts=refused))


@case("E-02")
def cacerts_with_a_leaf(f):
    bad = _ex(
        "cacerts",
        200,
        method="GET",
        path="/cacerts",
        headers=[("Content-Type", "application/pkcs7-mime")],
        body=_certs_only(f.leaf()),
    )
    return _run("E-02", _est_doc(f, cacerts=bad))


@case("E-03")
def unauthorized_without_challenge(f):
    return _run("E-03", _est_doc(f, **{"enroll-no-auth": _ex("enroll-no-auth", 401, headers=TEXT)}))


@case("E-03")
def bad_pin_forbidden(f):
    return _run(
        "E-03", _est_doc(f, **{"enroll-bad-auth": _ex("enroll-bad-auth", 403, headers=TEXT)})
    )


@case("E-04")
def json_body_bad_request(f):
    return _run(
        "E-04", _est_doc(f, **{"enroll-wrong-type": _ex("enroll-wrong-type", 400, headers=TEXT)})
    )


@case("E-04")
def json_body_with_credentials(f):
    doc = _est_doc(
        f,
        **{
            "enroll-wrong-type": _ex("enroll-wrong-type", 401, headers=CHALLENGE),
            "enroll-wrong-type-auth": _ex("enroll-wrong-type-auth", 500, headers=TEXT),
        },
    )
    return _run("E-04", doc)


@case("E-05")
def garbage_is_a_server_error(f):
    return _run("E-05", _est_doc(f, **{"enroll-garbage": _ex("enroll-garbage", 500, headers=TEXT)}))


@case("E-05")
def broken_csr_accepted(f):
    return _run("E-05", _est_doc(f, **{"enroll-bad-csr-auth": _ex("enroll-bad-csr-auth", 200)}))


@case("E-06")
def failure_answered_200(f):
    return _run("E-06", _est_doc(f, fullcmc=_ex("fullcmc", 200, path="/fullcmc", headers=TEXT)))


@case("E-06", severity=Severity.WARNING)
def error_in_html(f):
    html = (("Content-Type", "text/html"),)
    return _run("E-06", _est_doc(f, fullcmc=_ex("fullcmc", 501, path="/fullcmc", headers=html)))


@case("E-07")
def enrollment_returns_the_chain(f):
    pkcs7 = (("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),)
    bad = _ex("enroll", 200, headers=pkcs7, body=_certs_only(f.leaf(), f.ca().cert))
    return _run("E-07", _est_doc(f, enroll=bad, **{"enroll-retry": None}))


@case("E-07")
def enrollment_certifies_another_key(f):
    pkcs7 = (("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),)
    bad = _ex("enroll", 200, headers=pkcs7, body=_certs_only(f.leaf(n=1)))
    return _run("E-07", _est_doc(f, enroll=bad, **{"enroll-retry": None}))


@case("E-08")
def pending_without_retry_after(f):
    return _run(
        "E-08", _est_doc(f, reenroll=_ex("reenroll", 202, path="/simplereenroll", headers=TEXT))
    )


@case("E-08")
def retry_issues_twice(f):
    pkcs7 = (("Content-Type", "application/pkcs7-mime; smime-type=certs-only"),)
    again = _ex("enroll-retry", 200, headers=pkcs7, body=_certs_only(f.leaf(n=1)))
    return _run("E-08", _est_doc(f, **{"enroll-retry": again}))


@case("E-09")
def reenroll_for_another_subject_served(f):
    served = _ex("reenroll-other-subject", 200, path="/simplereenroll")
    return _run("E-09", _est_doc(f, **{"reenroll-other-subject": served}))


@case("E-10")
def csrattrs_untyped(f):
    bad = _ex("csrattrs", 200, method="GET", path="/csrattrs", headers=TEXT, body=b"%%%")
    return _run("E-10", _est_doc(f, csrattrs=bad))


@case("E-11")
def fullcmc_accepts_garbage(f):
    return _run("E-11", _est_doc(f, fullcmc=_ex("fullcmc", 200, path="/fullcmc", headers=TEXT)))


@pytest.mark.parametrize("c", cases_in(__name__), ids=case_id)
def test_case(c: Case, factory) -> None:
    check(c, factory)

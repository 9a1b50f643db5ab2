"""Publication over plain HTTP (and HTTPS): CA and link certificates (SEED-R14), CRLs, OCSP,
the generation index and health."""

from __future__ import annotations

import base64
import binascii
import urllib.parse

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from jitsuin.ca.generations import CAGeneration
from jitsuin.ca.revocation import unsuccessful
from jitsuin.server.keys import AUTHORITY

DER = "application/pkix-cert"  # RFC 2585 §4.1
PEM = "application/x-pem-file"
CRL = "application/pkix-crl"  # RFC 2585 §4.2
OCSP_REQUEST = "application/ocsp-request"  # RFC 6960 App. C
OCSP_RESPONSE = "application/ocsp-response"

routes = web.RouteTableDef()


async def _generation(request: web.Request) -> CAGeneration:
    authority = request.app[AUTHORITY]
    number = request.match_info.get("number")
    if number is None:
        return authority.current
    found = authority.generation(int(number))
    if found is None and await authority.refresh():
        # Rolled over by another process or host a moment ago: an index.json or a certificate
        # served elsewhere already names it (docs/operations.md, "Several hosts").
        found = authority.generation(int(number))
    if found is None:
        raise web.HTTPNotFound(text=f"there is no CA generation {number}")
    return found


def _certificate(certificate: x509.Certificate, form: str) -> web.Response:
    if form == "crt":
        return web.Response(
            body=certificate.public_bytes(serialization.Encoding.DER), content_type=DER
        )
    return web.Response(body=certificate.public_bytes(serialization.Encoding.PEM), content_type=PEM)


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


@routes.get("/ca.{form:crt|pem}")
@routes.get("/ca/{number:[0-9]{1,9}}.{form:crt|pem}")
async def ca_certificate(request: web.Request) -> web.Response:
    return _certificate((await _generation(request)).certificate, request.match_info["form"])


@routes.get(
    "/ca/links/{old:[0-9]{1,9}}-{new:[0-9]{1,9}}/{kind:old-with-new|new-with-old}.{form:crt|pem}"
)
async def link_certificate(request: web.Request) -> web.Response:
    """The link certificates of a rollover (SEED-R14, R16, R17; RFC 9810 §4.4)."""
    old, new = int(request.match_info["old"]), int(request.match_info["new"])
    authority = request.app[AUTHORITY]
    for _ in range(2):  # again after loading a rollover made by another process or host
        for link in authority.links:
            if (link.old, link.new) == (old, new):
                kind = request.match_info["kind"]
                cert = link.old_with_new if kind == "old-with-new" else link.new_with_old
                return _certificate(cert, request.match_info["form"])
        if not await authority.refresh():
            break
    raise web.HTTPNotFound(text=f"there is no rollover from generation {old} to {new}")


@routes.get("/ca/index.json")
async def generation_index(request: web.Request) -> web.Response:
    """Every generation and link certificate with its validity and SHA-256 fingerprint, for
    comparing with the printed letter (seed step 11) and for relying parties."""
    authority = request.app[AUTHORITY]
    base = authority.config.server.public_http_url

    def describe(cert: x509.Certificate, url: str) -> dict[str, str]:
        return {
            "url": url,
            "sha256": _fingerprint(cert),
            "notBefore": cert.not_valid_before_utc.isoformat(),
            "notAfter": cert.not_valid_after_utc.isoformat(),
        }

    links = []
    for link in authority.links:
        path = f"{base}/ca/links/{link.old}-{link.new}"
        links.append(
            {
                "old": link.old,
                "new": link.new,
                "oldWithNew": describe(link.old_with_new, f"{path}/old-with-new.crt"),
                "newWithOld": describe(link.new_with_old, f"{path}/new-with-old.crt"),
            }
        )
    return web.json_response(
        {
            "current": authority.current.number,
            "generations": [
                {
                    "number": g.number,
                    "keyIdentifier": g.key_identifier.hex(),
                    "crl": f"{base}/crl/{g.number}.crl",
                    **describe(g.certificate, f"{base}/ca/{g.number}.crt"),
                }
                for g in authority.generations
            ],
            "links": links,
        }
    )


@routes.get("/chain.pem")
async def chain(request: web.Request) -> web.Response:
    """The current CA certificate (a trust anchor; never sent as a leaf's intermediate)."""
    return _certificate(request.app[AUTHORITY].current.certificate, "pem")


@routes.get("/crl/{number:[0-9]{1,9}}.crl")
async def crl(request: web.Request) -> web.Response:
    """The generation's CRL over plain HTTP (S/MIME BR 7.1.2.3b), DER."""
    generation = await _generation(request)
    der = await request.app[AUTHORITY].crl(generation.number)
    return web.Response(body=der, content_type=CRL, headers={"Cache-Control": "max-age=3600"})


@routes.post("/ocsp")
async def ocsp_post(request: web.Request) -> web.Response:
    """RFC 6960 App. A.1: the DER request in the body."""
    if request.content_type != OCSP_REQUEST:
        raise web.HTTPUnsupportedMediaType(text=f"send the request as {OCSP_REQUEST}")
    der = await request.app[AUTHORITY].ocsp(await request.read())
    return web.Response(body=der, content_type=OCSP_RESPONSE)


@routes.get("/ocsp/{request:.+}")
async def ocsp_get(request: web.Request) -> web.Response:
    """RFC 6960 App. A.1: the base64 DER request, URL-encoded, in the path (NSS and browsers
    use GET). Responses may be cached by HTTP caches (RFC 5019 §6)."""
    encoded = urllib.parse.unquote(request.match_info["request"])
    try:
        der = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        # RFC 6960 §2.3: a request the responder cannot read is answered malformedRequest, in
        # OCSP's own format (an unsigned OCSPResponse), like an undecodable POST body.
        return web.Response(body=unsuccessful("malformed_request"), content_type=OCSP_RESPONSE)
    body = await request.app[AUTHORITY].ocsp(der)
    return web.Response(
        body=body, content_type=OCSP_RESPONSE, headers={"Cache-Control": "max-age=3600"}
    )


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    authority = request.app[AUTHORITY]
    current = authority.current
    now = authority.clock.now()
    await authority.store.count_certificates()  # the store answers
    test_mode = authority.config.test_mode_warning()
    warnings = [w for w in (authority.rollover_warning(), test_mode) if w]
    return web.json_response(
        {
            "status": "warning" if warnings else "ok",
            "warnings": warnings,
            # [acme.test] knobs, allowed by $JITSUIN_ALLOW_TEST_MODE=1: the CA misbehaves.
            "testMode": {
                "active": test_mode is not None,
                "knobs": authority.config.acme.test.knobs,
            },
            "time": now.isoformat(),
            "ca": {
                "generation": current.number,
                "notBefore": current.not_before.isoformat(),
                "notAfter": current.not_after.isoformat(),
                "issuanceCutoff": authority.rollover_due().isoformat(),
                "sha256": _fingerprint(current.certificate),
            },
            # This process's refusals that were logged, not audited (server/refusals.py).
            "refusals": dict(sorted(authority.refusals.counts.items())),
        }
    )


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    authority = request.app[AUTHORITY]
    base = authority.config.server.public_http_url
    return web.json_response(
        {
            "name": "jitsuin",
            "caCertificate": f"{base}/ca.crt",
            "caCertificatePem": f"{base}/ca.pem",
            "generations": [
                {
                    "number": g.number,
                    "certificate": f"{base}/ca/{g.number}.crt",
                    "sha256": _fingerprint(g.certificate),
                }
                for g in authority.generations
            ],
            "index": f"{base}/ca/index.json",
            "ocsp": f"{base}/ocsp",
            "health": f"{base}/health",
        }
    )

"""Publication over plain HTTP and HTTPS: CA certificates (SEED-R14), chain and health."""

from __future__ import annotations

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization

from jitsuin.ca.generations import CAGeneration
from jitsuin.server.keys import AUTHORITY

DER = "application/pkix-cert"  # RFC 2585 §4.1
PEM = "application/x-pem-file"

routes = web.RouteTableDef()


def _generation(request: web.Request) -> CAGeneration:
    authority = request.app[AUTHORITY]
    number = request.match_info.get("number")
    if number is None:
        return authority.current
    for generation in authority.generations:
        if str(generation.number) == number:
            return generation
    raise web.HTTPNotFound(text=f"there is no CA generation {number}")


def _certificate(generation: CAGeneration, form: str) -> web.Response:
    if form == "crt":
        return web.Response(body=generation.der, content_type=DER)
    pem = generation.certificate.public_bytes(serialization.Encoding.PEM)
    return web.Response(body=pem, content_type=PEM)


@routes.get("/ca.{form:crt|pem}")
@routes.get("/ca/{number:[0-9]+}.{form:crt|pem}")
async def ca_certificate(request: web.Request) -> web.Response:
    return _certificate(_generation(request), request.match_info["form"])


@routes.get("/chain.pem")
async def chain(request: web.Request) -> web.Response:
    """The certificates a relying party needs to validate a current leaf: the current CA."""
    generation = request.app[AUTHORITY].current
    return _certificate(generation, "pem")


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    authority = request.app[AUTHORITY]
    current = authority.current
    now = authority.clock.now()
    cutoff = current.issuance_cutoff(authority.config.ca.cutoff_margin)
    await authority.store.count_certificates()  # the store answers
    return web.json_response(
        {
            "status": "ok",
            "time": now.isoformat(),
            "ca": {
                "generation": current.number,
                "notBefore": current.not_before.isoformat(),
                "notAfter": current.not_after.isoformat(),
                "issuanceCutoff": cutoff.isoformat(),
                "sha256": current.certificate.fingerprint(hashes.SHA256()).hex(),
            },
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
                    "sha256": g.certificate.fingerprint(hashes.SHA256()).hex(),
                }
                for g in authority.generations
            ],
            "health": f"{base}/health",
        }
    )

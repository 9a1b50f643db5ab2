"""Who sent a request: its source address, and the operator behind it (an API token, or a TLS
client certificate bound to the operator); what an operator's audit entry says about the
credential used."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jitsuin.server import logging_json
from jitsuin.server.keys import RA
from jitsuin.server.ra.errors import RAError, RAKind
from jitsuin.server.storage import Operator


def source_of(request: web.Request) -> str:
    """The address that a wrong credential's wait is kept for: the TCP peer. Behind a reverse
    proxy that is the proxy (X-Forwarded-For is not trusted), and every applicant then shares
    the proxy's wait; the hard limit of wrong tries holds either way."""
    return request.remote or "unknown"


def peer_certificate(request: web.Request) -> bytes | None:
    """The DER of the TLS client certificate, if the peer presented one. The HTTPS listener asks
    for one (ssl.CERT_OPTIONAL) and accepts only chains to a generation of this CA (RFC 8446
    §4.4.2.4: the handshake fails otherwise); plain HTTP has none."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True) or None


async def operator_of(request: web.Request) -> Operator:
    """The operator making the request: by the API token (RFC 6750 §2.1 'Authorization: Bearer')
    or, when the request has no Authorization header at all, by the TLS client certificate bound
    to the operator (``jitsuin ra operator-bind-cert``). If both are present the token decides:
    a bad token is refused even with a good certificate."""
    header = request.headers.get("Authorization")
    if header is None:
        peer = peer_certificate(request)
        if peer is not None:
            return logging_json.acting(await request.app[RA].authenticate_certificate(peer))
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RAError(
            RAKind.UNAUTHORIZED,
            "send the operator API token as 'Authorization: Bearer', or a bound TLS client "
            "certificate",
        )
    if not token.strip().isascii():
        # Tokens are ASCII (jto_ + base64url); aiohttp hands other header bytes on as lone
        # surrogates, which no hash can take.
        raise RAError(RAKind.UNAUTHORIZED, "unknown or disabled operator token")
    return logging_json.acting(await request.app[RA].authenticate(token.strip()))


def credential_details(actor: Operator | str) -> dict[str, Any]:
    """What an operator's audit entry says about the credential the action was made with: the
    kind and who else may know it (empty: the operator's own)."""
    if isinstance(actor, str) or actor.credential is None:
        return {}
    return {"credential": actor.credential, "credentialSetBy": list(actor.credential_set_by)}

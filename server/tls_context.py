"""The HTTPS listener's TLS context: the server's certificate from the CA, TLS 1.2 or newer with
AEAD suites only, and client certificates asked for (EST re-enrollment, operators) and accepted
only when they chain to a generation of this CA. It follows rollovers and renewals with no
restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Coroutine
from typing import Any

from cryptography.hazmat.primitives import serialization

from jitsuin.server.authority import Authority

# How often a serving process checks its HTTPS certificate between rollovers: it is reissued
# TLS_RENEW_BEFORE_DAYS before expiry, so an hour is far inside that margin.
TLS_CHECK_SECONDS = 3600.0


async def https_context(
    authority: Authority,
) -> tuple[ssl.SSLContext, Coroutine[Any, Any, None]]:
    """The context, and the task that keeps its certificate current (the caller runs it for as
    long as the listener serves)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8996; RFC 7030 §3.3
    # TLS 1.2: ECDHE with an AEAD cipher only (RFC 9325 §4.2), no CBC suites; the
    # TLS 1.3 suites are set apart by OpenSSL and are all AEAD.
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    loaded = await authority.load_tls(context)
    # EST re-enrollment authenticates with the subscriber's certificate (RFC 7030
    # §3.3.2): ask for one, and accept only chains to a generation of this CA.
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(
        cadata="".join(
            g.certificate.public_bytes(serialization.Encoding.PEM).decode()
            for g in authority.generations
        )
    )
    authority.rollover_listeners.append(
        lambda generation: context.load_verify_locations(
            cadata=generation.certificate.public_bytes(serialization.Encoding.PEM).decode()
        )
    )
    # After a rollover, here or seen by the refresh, the listener presents a certificate
    # of the new generation on new connections, with no restart.
    rolled = asyncio.Event()
    authority.rollover_listeners.append(lambda _generation: rolled.set())
    return context, _follow_tls(authority, context, rolled, loaded)


async def _follow_tls(
    authority: Authority, context: ssl.SSLContext, rolled: asyncio.Event, loaded: bytes
) -> None:
    """Run forever: after each rollover, and every ``TLS_CHECK_SECONDS`` for expiry and for the
    end of the NewWithOld link's validity, reissue the server's TLS certificate if it is no
    longer current (once per data directory: ``Authority.load_tls`` locks ``tls/``) and load it
    into the listener's live context; handshakes from then on present it."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rolled.wait(), TLS_CHECK_SECONDS)
        rolled.clear()
        try:
            chain = await authority.load_tls(context)
        except Exception:  # the listener keeps its certificate; the next round tries again
            logging.getLogger("jitsuin.ca").exception("reloading the TLS certificate failed")
            continue
        if chain != loaded:
            loaded = chain
            logging.getLogger("jitsuin.ca").info(
                "HTTPS listener: certificate of generation %d", authority.current.number
            )

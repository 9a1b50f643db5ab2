"""The names of the exchanges the live harness records against an ACME server and the A-xx
rules judge, declared once (``server/conformance_live_acme.py`` records them,
``conformance/rules/acme.py`` reads them)."""

from __future__ import annotations

import enum


class AcmeExchange(enum.StrEnum):
    DIRECTORY = "directory"
    NONCE_HEAD = "nonce-head"  # HEAD newNonce (RFC 8555 §7.2)
    NONCE_GET = "nonce-get"  # GET newNonce
    NONCE_REFILL = "nonce-refill"  # a nonce the client fetched for itself (not judged)
    BAD_CONTENT_TYPE = "bad-content-type"  # §6.2: not application/jose+json
    BAD_NONCE = "bad-nonce"  # §6.5: a nonce the server never gave
    JWS_GENERAL = "jws-general"  # §6.2: general serialization
    JWS_UNPROTECTED_HEADER = "jws-unprotected-header"
    JWS_JWK_AND_KID = "jws-jwk-and-kid"
    JWS_ALG_NONE = "jws-alg-none"
    JWS_ALG_HS256 = "jws-alg-hs256"
    URL_MISMATCH = "url-mismatch"  # §6.4
    NEW_ACCOUNT = "new-account"
    EXISTING_ACCOUNT = "existing-account"  # onlyReturnExisting (§7.3.1)
    NEW_ORDER = "new-order"
    FINALIZE_NOT_READY = "finalize-not-ready"  # §7.4: finalize of a pending order
    GET_ORDER = "get-order"  # §6.3: a GET where POST-as-GET is required
    AUTHZ = "authz"
    CHALLENGE = "challenge"
    AUTHZ_POLL = "authz-poll"
    ORDER_READY = "order-ready"
    FINALIZE_BAD_CSR = "finalize-bad-csr"  # a CSR naming another identifier
    FINALIZE = "finalize"
    ORDER_POLL = "order-poll"
    CERTIFICATE = "certificate"
    REVOKE_BAD_REASON = "revoke-bad-reason"
    REVOKE = "revoke"
    REVOKE_AGAIN = "revoke-again"

"""The live-server harness's ACME drive (``jitsuin conformance --acme``): a deliberately small
ACME client (RFC 8555) that sends the probes the A-xx rules judge, then orders, validates,
finalizes, downloads and revokes, recording every exchange under its ``AcmeExchange`` name. The
shared parts (``Prober``, ``Obtained``) are in ``server/conformance_live.py``."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from jitsuin.ca.keys import KeyType, PrivateKey, generate_private_key
from jitsuin.conformance import jws
from jitsuin.conformance.documents import LintContext
from jitsuin.conformance.exchanges import AcmeExchange
from jitsuin.conformance.live import Exchange, ServerDoc, acme_server
from jitsuin.server.conformance_live import TIMEOUT, Obtained, Prober, tls_context

JOSE = {"Content-Type": "application/jose+json"}


@dataclass
class ACMEOptions:
    directory_url: str
    ca_bundle: str | None = None
    identifier: str = "conformance.example.org"  # a dns identifier to order
    identifier_type: str = "dns"
    eab_kid: str | None = None
    eab_key: str | None = None  # base64url HMAC key
    poll_seconds: float = 30.0  # how long to wait for authorizations and orders


class ACMEClient:
    """A deliberately small ACME client: enough to drive the probes and an issuance."""

    def __init__(self, probe: Prober, doc: ServerDoc, directory: dict[str, Any]) -> None:
        self.probe = probe
        self.doc = doc
        self.directory = directory
        self.key = jws.AccountKey.generate()
        self.account: str | None = None
        self.nonce: str | None = None

    async def fresh_nonce(self) -> str:
        if self.nonce:
            nonce, self.nonce = self.nonce, None
            return nonce
        e = await self.probe.call(AcmeExchange.NONCE_REFILL, "HEAD", self.directory["newNonce"])
        return e.header("Replay-Nonce") or ""

    def _remember(self, e: Exchange) -> None:
        self.nonce = e.header("Replay-Nonce") or self.nonce

    async def post(
        self,
        name: AcmeExchange,
        url: str,
        payload: Any,
        *,
        use_jwk: bool = False,
        protected: dict[str, Any] | None = None,
        alg: str = "ES256",
        shape: Any = None,
        headers: Mapping[str, str] | None = None,
        record: bool = True,
        retry_bad_nonce: bool = True,
    ) -> Exchange:
        header: dict[str, Any] = {"nonce": await self.fresh_nonce(), "url": url}
        if use_jwk or self.account is None:
            header["jwk"] = self.key.jwk()
        else:
            header["kid"] = self.account
        header.update(protected or {})
        signed = jws.flattened(self.key, header, payload, alg=alg, mac_key=b"k" * 32)
        if shape is not None:
            signed = shape(signed)
        e = await self.probe.call(
            name, "POST", url, headers=dict(headers or JOSE), body=jws.body(signed)
        )
        self._remember(e)
        bad_nonce = (e.json() or {}).get("type", "") if isinstance(e.json(), dict) else ""
        if retry_bad_nonce and e.status == 400 and bad_nonce.endswith(":badNonce"):
            return await self.post(
                name,
                url,
                payload,
                use_jwk=use_jwk,
                protected=protected,
                alg=alg,
                shape=shape,
                headers=headers,
                record=record,
                retry_bad_nonce=False,
            )
        return self.doc.add(e) if record else e


def _general(signed: dict[str, Any]) -> dict[str, Any]:
    """RFC 7515 §7.2.1 general serialization: a signatures array instead of flattened."""
    return {
        "payload": signed["payload"],
        "signatures": [{"protected": signed["protected"], "signature": signed["signature"]}],
    }


def _with_unprotected(signed: dict[str, Any]) -> dict[str, Any]:
    return {**signed, "header": {"kid": "unprotected"}}


async def run_acme(
    options: ACMEOptions, context: LintContext | None = None
) -> tuple[ServerDoc, Obtained]:
    doc = acme_server(options.directory_url, context=context)
    got = Obtained()
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        probe = Prober(session, tls_context(options.ca_bundle))
        e = doc.add(await probe.call(AcmeExchange.DIRECTORY, "GET", options.directory_url))
        directory = e.json() if e.status == 200 else None
        if not isinstance(directory, dict) or "newNonce" not in directory:
            got.notes.append("no usable directory: nothing else probed")
            return doc, got
        doc.add(await probe.call(AcmeExchange.NONCE_HEAD, "HEAD", directory["newNonce"]))
        doc.add(await probe.call(AcmeExchange.NONCE_GET, "GET", directory["newNonce"]))
        client = ACMEClient(probe, doc, directory)
        new_account = directory.get("newAccount", "")
        account_payload: dict[str, Any] = {"termsOfServiceAgreed": True}
        if options.eab_kid and options.eab_key:
            account_payload["externalAccountBinding"] = jws.eab(
                client.key, options.eab_kid, jws.b64url_decode(options.eab_key), new_account
            )

        # JWS refusals, all against newAccount before the account exists (RFC 8555 §6.2-6.5).
        await client.post(
            AcmeExchange.BAD_CONTENT_TYPE,
            new_account,
            account_payload,
            headers={"Content-Type": "application/json"},
        )
        stale = jws.b64url(secrets.token_bytes(16))
        doc.facts["bad_nonce_sent"] = stale
        await client.post(
            AcmeExchange.BAD_NONCE,
            new_account,
            account_payload,
            protected={"nonce": stale},
            retry_bad_nonce=False,
        )
        await client.post(AcmeExchange.JWS_GENERAL, new_account, account_payload, shape=_general)
        await client.post(
            AcmeExchange.JWS_UNPROTECTED_HEADER,
            new_account,
            account_payload,
            shape=_with_unprotected,
        )
        await client.post(
            AcmeExchange.JWS_JWK_AND_KID,
            new_account,
            account_payload,
            protected={"kid": f"{new_account}/1"},
        )
        await client.post(AcmeExchange.JWS_ALG_NONE, new_account, account_payload, alg="none")
        await client.post(AcmeExchange.JWS_ALG_HS256, new_account, account_payload, alg="HS256")
        await client.post(
            AcmeExchange.URL_MISMATCH,
            new_account,
            account_payload,
            protected={"url": directory.get("newOrder", new_account + "/other")},
        )

        created = await client.post(
            AcmeExchange.NEW_ACCOUNT, new_account, account_payload, use_jwk=True
        )
        if created.status not in (200, 201) or not created.header("Location"):
            got.notes.append(f"no account: {created.status} {created.text[:200]}")
            return doc, got
        client.account = created.header("Location")
        await client.post(
            AcmeExchange.EXISTING_ACCOUNT, new_account, {"onlyReturnExisting": True}, use_jwk=True
        )
        await _order_and_issue(client, options, doc, got)
    return doc, got


async def _poll(
    client: ACMEClient, name: AcmeExchange, url: str, done: tuple[str, ...], seconds: float
) -> Exchange:
    deadline = time.monotonic() + seconds
    while True:
        e = await client.post(name, url, None, record=False)
        body = e.json()
        status = body.get("status") if isinstance(body, dict) else None
        if status in done or status == "invalid" or time.monotonic() > deadline or e.status != 200:
            return client.doc.add(e)
        raw = (e.header("Retry-After") or "1").strip()
        await asyncio.sleep(min(float(raw) if raw.isdigit() else 1.0, 5.0))


def _acme_csr(key: PrivateKey, kind: str, names: list[str]) -> str:
    """A CSR naming exactly ``names`` in subjectAltName (RFC 8555 §7.4): dNSName for dns,
    rfc822Name for email (RFC 8823), iPAddress for ip (RFC 8738)."""
    general: list[x509.GeneralName] = []
    for name in names:
        if kind == "email":
            general.append(x509.RFC822Name(name))
        elif kind == "ip":
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        else:
            general.append(x509.DNSName(name))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return jws.b64url(der)


_OTHER = {
    "dns": "not-in-the-order.example.net",
    "email": "not-in-the-order@example.net",
    "ip": "192.0.2.77",
}


async def _order_and_issue(
    client: ACMEClient, options: ACMEOptions, doc: ServerDoc, got: Obtained
) -> None:
    directory = client.directory
    identifiers = [{"type": options.identifier_type, "value": options.identifier}]
    order = await client.post(
        AcmeExchange.NEW_ORDER, directory["newOrder"], {"identifiers": identifiers}
    )
    order_url = order.header("Location")
    body = order.json()
    if order.status != 201 or not order_url or not isinstance(body, dict):
        got.notes.append(f"no order: {order.status} {order.text[:200]}")
        return
    key = generate_private_key(KeyType.ECDSA_P256)
    csr = _acme_csr(key, options.identifier_type, [options.identifier])
    if body.get("status") == "pending":
        await client.post(AcmeExchange.FINALIZE_NOT_READY, body["finalize"], {"csr": csr})
    doc.add(await client.probe.call(AcmeExchange.GET_ORDER, "GET", order_url))
    for authz_url in body.get("authorizations", []):
        authz = await client.post(AcmeExchange.AUTHZ, authz_url, None)
        authz_body = authz.json() if isinstance(authz.json(), dict) else {}
        if authz_body.get("status") == "valid":  # pre-authorized (e.g. an RA-vetted identifier)
            continue
        challenges = authz_body.get("challenges", [])
        chosen = next(
            (c for c in challenges if c.get("type") == "http-01"),
            challenges[0] if challenges else None,
        )
        if chosen is None:
            got.notes.append(f"authorization {authz_url} offers no challenge")
            return
        doc.facts["authz_url"] = authz_url
        await client.post(AcmeExchange.CHALLENGE, chosen["url"], {})
        await _poll(client, AcmeExchange.AUTHZ_POLL, authz_url, ("valid",), options.poll_seconds)
    ready = await _poll(
        client, AcmeExchange.ORDER_READY, order_url, ("ready", "valid"), options.poll_seconds
    )
    if (ready.json() or {}).get("status") != "ready":
        got.notes.append(f"the order did not become ready: {ready.text[:200]}")
        return
    other_key = generate_private_key(KeyType.ECDSA_P256)
    other = _acme_csr(other_key, options.identifier_type, [_OTHER[options.identifier_type]])
    await client.post(AcmeExchange.FINALIZE_BAD_CSR, body["finalize"], {"csr": other})
    await client.post(AcmeExchange.FINALIZE, body["finalize"], {"csr": csr})
    final = await _poll(
        client, AcmeExchange.ORDER_POLL, order_url, ("valid",), options.poll_seconds
    )
    certificate_url = (
        (final.json() or {}).get("certificate") if isinstance(final.json(), dict) else None
    )
    if not certificate_url:
        got.notes.append(f"the order did not become valid: {final.text[:200]}")
        return
    cert = await client.post(
        AcmeExchange.CERTIFICATE,
        certificate_url,
        None,
        headers={**JOSE, "Accept": "application/pem-certificate-chain"},
    )
    try:
        chain = x509.load_pem_x509_certificates(cert.body)
    except ValueError:
        return
    for i, c in enumerate(chain, 1):
        got.add(f"{certificate_url}#{i}", c.public_bytes(serialization.Encoding.DER))
    leaf = jws.b64url(chain[0].public_bytes(serialization.Encoding.DER))
    revoke = directory.get("revokeCert")
    if revoke:
        await client.post(
            AcmeExchange.REVOKE_BAD_REASON, revoke, {"certificate": leaf, "reason": 7}
        )
        await client.post(AcmeExchange.REVOKE, revoke, {"certificate": leaf, "reason": 4})
        await client.post(AcmeExchange.REVOKE_AGAIN, revoke, {"certificate": leaf, "reason": 4})

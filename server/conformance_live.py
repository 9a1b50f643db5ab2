"""The live-server harness (``jitsuin conformance``): probes an EST or ACME server over HTTP,
records every exchange in a ``ServerDoc`` for the registry's E-xx and A-xx rules to judge, enrolls
where it can, and returns every certificate, chain, CRL and OCSP response it obtained so that the
certificate rules lint them too. Works against servers other than jitsuin (shown against Pebble).

Only this layer talks HTTP (docs/architecture.md: only server imports aiohttp); the checks
themselves are in ``jitsuin.conformance.rules.est`` and ``.acme``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import ssl
import time
import urllib.parse
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from jitsuin.ca.keys import KeyType, PrivateKey, generate_private_key
from jitsuin.conformance import jws
from jitsuin.conformance.documents import LintContext
from jitsuin.conformance.live import Exchange, ServerDoc, acme_server, est_server
from jitsuin.conformance.rules.est import certs_only

PROBE_USER = "jitsuin-conformance-probe"  # an enrollment ID no server should know
TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass
class Obtained:
    """What a run brought back, for the certificate rules: (label, DER) pairs."""

    objects: list[tuple[str, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, der: bytes) -> None:
        self.objects.append((label, der))


class Prober:
    """Makes requests and records them as exchanges (never raises for HTTP or network errors)."""

    def __init__(self, session: aiohttp.ClientSession, context: ssl.SSLContext | None) -> None:
        self.session = session
        self.context = context

    async def call(
        self,
        name: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Exchange:
        sent = dict(headers or {})
        if auth is not None:  # HTTP Basic (RFC 7617), as EST clients send it (RFC 7030 §3.2.3)
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            sent["Authorization"] = f"Basic {token}"
        kwargs: dict[str, Any] = {"headers": sent, "data": body, "allow_redirects": False}
        if url.startswith("https://"):
            kwargs["ssl"] = context or self.context or True
        try:
            async with self.session.request(method, url, **kwargs) as response:
                data = await response.read()
                return Exchange(
                    name,
                    method,
                    url,
                    response.status,
                    tuple((k, v) for k, v in response.headers.items()),
                    data,
                    tuple(sent.items()),
                    body,
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Exchange(
                name,
                method,
                url,
                request_headers=tuple(sent.items()),
                request_body=body,
                error=f"{type(exc).__name__}: {exc}",
            )


def tls_context(
    ca_bundle: str | None, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle)
    if cert and key:
        context.load_cert_chain(cert, key)
    return context


async def _handshake(url: str, context: ssl.SSLContext) -> str:
    """The TLS version one handshake with ``url``'s host negotiates (raises on failure)."""
    parts = urllib.parse.urlsplit(url)
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(
            parts.hostname, parts.port or 443, ssl=context, server_hostname=parts.hostname
        ),
        timeout=10,
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.version() if ssl_object is not None else "none"
    finally:
        writer.close()


async def negotiated_tls(url: str, context: ssl.SSLContext) -> str | None:
    """The version the harness's own requests negotiate (aiohttp does not expose it)."""
    try:
        return await _handshake(url, context)
    except (TimeoutError, ssl.SSLError, OSError):
        return None


async def legacy_tls_accepted(url: str) -> bool | None:
    """RFC 8996 / RFC 7030 §3.3.1: does the server complete a handshake offering at most TLS
    1.1? None when this machine's OpenSSL cannot offer TLS 1.1 at all."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # offering TLS 1.0/1.1 is the point of the probe
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return None
    try:
        await _handshake(url, context)
    except ssl.SSLError as exc:
        text = str(exc).upper()
        if "NO_PROTOCOLS_AVAILABLE" in text or "NO PROTOCOLS" in text:
            return None
        return False
    except (TimeoutError, OSError):
        return False
    return True


# -- EST
def _csr(key: PrivateKey, subject: x509.Name, emails: tuple[str, ...] = ()) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if emails:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(e) for e in emails]), critical=False
        )
    return builder.sign(key, KeyType.of(key).signature_hash).public_bytes(
        serialization.Encoding.DER
    )


def _b64(der: bytes) -> bytes:
    encoded = base64.b64encode(der)
    return b"\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64)) + b"\n"


def _spki(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class ESTOptions:
    base_url: str  # https://host:port/.well-known/est (or …/est/<label>)
    ca_bundle: str | None = None
    user: str | None = None  # enrollment ID
    password: str | None = None  # download PIN
    cert: str | None = None  # client certificate for simplereenroll (PEM)
    key: str | None = None
    reenroll: bool = False  # re-enroll with the certificate this run enrolled
    key_type: KeyType = KeyType.ECDSA_P256
    wait: int = 0  # seconds to wait out 202 + Retry-After
    fetch_revocation: bool = True  # fetch the CRL and OCSP response of enrolled certificates
    out: str | None = None  # write the enrolled key and certificate here


PKCS10 = {"Content-Type": "application/pkcs10"}


async def _enroll_loop(
    probe: Prober, name: str, url: str, csr: bytes, doc: ServerDoc, wait: int, **kwargs: Any
) -> Exchange:
    waited = 0
    while True:
        e = await probe.call(name, "POST", url, headers=PKCS10, body=_b64(csr), **kwargs)
        if e.status != 202:
            return doc.add(e)
        doc.add(
            Exchange(
                f"{name}-pending",
                e.method,
                e.url,
                e.status,
                e.headers,
                e.body,
                e.request_headers,
                e.request_body,
                e.tls_version,
            )
        )
        raw = (e.header("Retry-After") or "").strip()
        delay = int(raw) if raw.isdigit() else 60
        if waited + delay > wait:
            return doc.add(e)
        await asyncio.sleep(delay)
        waited += delay


async def run_est(
    options: ESTOptions, context: LintContext | None = None
) -> tuple[ServerDoc, Obtained]:
    base = options.base_url.rstrip("/")
    doc = est_server(base, context=context)
    got = Obtained()
    tls = tls_context(options.ca_bundle)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        probe = Prober(session, tls)
        cacerts = doc.add(await probe.call("cacerts", "GET", f"{base}/cacerts"))
        if cacerts.status == 200:
            try:
                for i, cert in enumerate(certs_only(cacerts.body), 1):
                    got.add(f"{base}/cacerts#{i}", cert.public_bytes(serialization.Encoding.DER))
            except ValueError as exc:
                got.notes.append(f"cacerts: {exc}")
        if base.startswith("https://"):
            doc.facts["tls_version"] = await negotiated_tls(base, tls)
            doc.facts["legacy_tls_accepted"] = await legacy_tls_accepted(base)

        enroll = f"{base}/simpleenroll"
        probe_key = generate_private_key(KeyType.ECDSA_P256)
        probe_csr = _csr(probe_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe")]))
        bogus = (PROBE_USER, "00000000")
        doc.add(
            await probe.call("enroll-no-auth", "POST", enroll, headers=PKCS10, body=_b64(probe_csr))
        )
        doc.add(
            await probe.call(
                "enroll-bad-auth", "POST", enroll, headers=PKCS10, body=_b64(probe_csr), auth=bogus
            )
        )
        json_type = {"Content-Type": "application/json"}
        doc.add(
            await probe.call(
                "enroll-wrong-type", "POST", enroll, headers=json_type, body=b"{}", auth=bogus
            )
        )
        garbage = b"!!! this is not base64 !!!"
        doc.add(
            await probe.call(
                "enroll-garbage", "POST", enroll, headers=PKCS10, body=garbage, auth=bogus
            )
        )

        enrolled: tuple[x509.Certificate, PrivateKey] | None = None
        if options.user and options.password is not None:
            auth = (options.user, options.password)
            doc.add(
                await probe.call(
                    "enroll-wrong-type-auth",
                    "POST",
                    enroll,
                    headers=json_type,
                    body=b"{}",
                    auth=auth,
                )
            )
            doc.add(
                await probe.call(
                    "enroll-garbage-auth", "POST", enroll, headers=PKCS10, body=garbage, auth=auth
                )
            )
            broken = bytearray(probe_csr)
            broken[-3] ^= 0x5A  # inside the signature: the CSR no longer verifies
            doc.add(
                await probe.call(
                    "enroll-bad-csr-auth",
                    "POST",
                    enroll,
                    headers=PKCS10,
                    body=_b64(bytes(broken)),
                    auth=auth,
                )
            )
            key = generate_private_key(options.key_type)
            csr = _csr(key, x509.Name([]))
            doc.facts["enroll_spki"] = _spki(key.public_key())
            e = await _enroll_loop(probe, "enroll", enroll, csr, doc, options.wait, auth=auth)
            if e.status == 200:
                doc.add(
                    await probe.call(
                        "enroll-retry", "POST", enroll, headers=PKCS10, body=_b64(csr), auth=auth
                    )
                )
                try:
                    (cert, *_) = certs_only(e.body)
                except ValueError as exc:
                    got.notes.append(f"enroll: {exc}")
                else:
                    enrolled = (cert, key)
                    got.add(f"{enroll} (enrolled)", cert.public_bytes(serialization.Encoding.DER))

        reenroll = f"{base}/simplereenroll"
        doc.add(
            await probe.call(
                "reenroll-no-cert", "POST", reenroll, headers=PKCS10, body=_b64(probe_csr)
            )
        )
        client = _client_credentials(options, enrolled)
        if client is not None:
            current, client_context = client
            other = _csr(
                generate_private_key(KeyType.ECDSA_P256),
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Somebody Else")]),
            )
            doc.add(
                await probe.call(
                    "reenroll-other-subject",
                    "POST",
                    reenroll,
                    headers=PKCS10,
                    body=_b64(other),
                    context=client_context,
                )
            )
            new_key = generate_private_key(options.key_type)
            emails = _emails(current)
            doc.facts["reenroll_spki"] = _spki(new_key.public_key())
            doc.facts["reenroll_subject"] = current.subject.public_bytes()
            e = await _enroll_loop(
                probe,
                "reenroll",
                reenroll,
                _csr(new_key, current.subject, emails),
                doc,
                options.wait,
                context=client_context,
            )
            if e.status == 200:
                try:
                    for cert in certs_only(e.body):
                        got.add(
                            f"{reenroll} (re-enrolled)",
                            cert.public_bytes(serialization.Encoding.DER),
                        )
                except ValueError as exc:
                    got.notes.append(f"reenroll: {exc}")

        doc.add(await probe.call("csrattrs", "GET", f"{base}/csrattrs"))
        doc.add(
            await probe.call(
                "fullcmc",
                "POST",
                f"{base}/fullcmc",
                headers={"Content-Type": "application/pkcs7-mime"},
                body=garbage,
            )
        )
        if enrolled is not None and options.fetch_revocation:
            issuers = [
                x509.load_der_x509_certificate(d) for label, d in got.objects if "#" in label
            ]
            await fetch_revocation(probe, enrolled[0], issuers, got)
    if enrolled is not None and options.out:
        _save(options.out, *enrolled)
    return doc, got


def _emails(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.RFC822Name))


def _client_credentials(
    options: ESTOptions, enrolled: tuple[x509.Certificate, PrivateKey] | None
) -> tuple[x509.Certificate, ssl.SSLContext] | None:
    """The certificate to re-enroll with: --cert/--key, or (with --reenroll) the one just
    enrolled, written to a temporary file because ssl loads chains from files only."""
    if options.cert and options.key:
        with open(options.cert, "rb") as handle:
            current = x509.load_pem_x509_certificates(handle.read())[0]
        return current, tls_context(options.ca_bundle, options.cert, options.key)
    if not options.reenroll or enrolled is None:
        return None
    import tempfile

    cert, key = enrolled
    with tempfile.TemporaryDirectory() as directory:
        cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
        _save_files(cert_path, key_path, cert, key)
        return cert, tls_context(options.ca_bundle, cert_path, key_path)


def _save_files(cert_path: str, key_path: str, cert: x509.Certificate, key: PrivateKey) -> None:
    import os

    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _save(directory: str, cert: x509.Certificate, key: PrivateKey) -> None:
    import pathlib

    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    _save_files(str(path / "enrolled.pem"), str(path / "enrolled.key"), cert, key)


async def fetch_revocation(
    probe: Prober, cert: x509.Certificate, issuers: list[x509.Certificate], got: Obtained
) -> None:
    """Fetch the certificate's CRL (cRLDistributionPoints) and OCSP response (AIA), so that the
    CRL and OCSP rules judge what the server publishes."""
    try:
        dps = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        urls = [
            n.value
            for dp in dps
            for n in dp.full_name or []
            if isinstance(n, x509.UniformResourceIdentifier)
        ]
    except x509.ExtensionNotFound:
        urls = []
    for url in urls[:1]:
        e = await probe.call("crl", "GET", url)
        if e.status == 200 and e.body:
            got.add(url, e.body)
        else:
            got.notes.append(f"CRL {url}: {e.status or e.error}")
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ocsp_urls = [
            d.access_location.value
            for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
        ]
    except x509.ExtensionNotFound:
        ocsp_urls = []
    issuer = next((i for i in issuers if i.subject == cert.issuer and _signed(cert, i)), None)
    if not ocsp_urls or issuer is None:
        return
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 (RFC 6960 CertID, as clients send)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    e = await probe.call(
        "ocsp",
        "POST",
        ocsp_urls[0],
        headers={"Content-Type": "application/ocsp-request"},
        body=request,
    )
    if e.status == 200 and e.body:
        got.add(f"{ocsp_urls[0]} (OCSP for {cert.serial_number:x})", e.body)
    else:
        got.notes.append(f"OCSP {ocsp_urls[0]}: {e.status or e.error}")


def _signed(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):  # InvalidSignature and friends
        return False
    return True


# -- ACME
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
        e = await self.probe.call("nonce-refill", "HEAD", self.directory["newNonce"])
        return e.header("Replay-Nonce") or ""

    def _remember(self, e: Exchange) -> None:
        self.nonce = e.header("Replay-Nonce") or self.nonce

    async def post(
        self,
        name: str,
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
        e = doc.add(await probe.call("directory", "GET", options.directory_url))
        directory = e.json() if e.status == 200 else None
        if not isinstance(directory, dict) or "newNonce" not in directory:
            got.notes.append("no usable directory: nothing else probed")
            return doc, got
        doc.add(await probe.call("nonce-head", "HEAD", directory["newNonce"]))
        doc.add(await probe.call("nonce-get", "GET", directory["newNonce"]))
        client = ACMEClient(probe, doc, directory)
        new_account = directory.get("newAccount", "")
        account_payload: dict[str, Any] = {"termsOfServiceAgreed": True}
        if options.eab_kid and options.eab_key:
            account_payload["externalAccountBinding"] = jws.eab(
                client.key, options.eab_kid, jws.b64url_decode(options.eab_key), new_account
            )

        # JWS refusals, all against newAccount before the account exists (RFC 8555 §6.2-6.5).
        await client.post(
            "bad-content-type",
            new_account,
            account_payload,
            headers={"Content-Type": "application/json"},
        )
        stale = jws.b64url(secrets.token_bytes(16))
        doc.facts["bad_nonce_sent"] = stale
        await client.post(
            "bad-nonce",
            new_account,
            account_payload,
            protected={"nonce": stale},
            retry_bad_nonce=False,
        )
        await client.post("jws-general", new_account, account_payload, shape=_general)
        await client.post(
            "jws-unprotected-header", new_account, account_payload, shape=_with_unprotected
        )
        await client.post(
            "jws-jwk-and-kid", new_account, account_payload, protected={"kid": f"{new_account}/1"}
        )
        await client.post("jws-alg-none", new_account, account_payload, alg="none")
        await client.post("jws-alg-hs256", new_account, account_payload, alg="HS256")
        await client.post(
            "url-mismatch",
            new_account,
            account_payload,
            protected={"url": directory.get("newOrder", new_account + "/other")},
        )

        created = await client.post("new-account", new_account, account_payload, use_jwk=True)
        if created.status not in (200, 201) or not created.header("Location"):
            got.notes.append(f"no account: {created.status} {created.text[:200]}")
            return doc, got
        client.account = created.header("Location")
        await client.post(
            "existing-account", new_account, {"onlyReturnExisting": True}, use_jwk=True
        )
        await _order_and_issue(client, options, doc, got)
    return doc, got


async def _poll(
    client: ACMEClient, name: str, url: str, done: tuple[str, ...], seconds: float
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
    order = await client.post("new-order", directory["newOrder"], {"identifiers": identifiers})
    order_url = order.header("Location")
    body = order.json()
    if order.status != 201 or not order_url or not isinstance(body, dict):
        got.notes.append(f"no order: {order.status} {order.text[:200]}")
        return
    key = generate_private_key(KeyType.ECDSA_P256)
    csr = _acme_csr(key, options.identifier_type, [options.identifier])
    if body.get("status") == "pending":
        await client.post("finalize-not-ready", body["finalize"], {"csr": csr})
    doc.add(await client.probe.call("get-order", "GET", order_url))
    for authz_url in body.get("authorizations", []):
        authz = await client.post("authz", authz_url, None)
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
        await client.post("challenge", chosen["url"], {})
        await _poll(client, "authz-poll", authz_url, ("valid",), options.poll_seconds)
    ready = await _poll(client, "order-ready", order_url, ("ready", "valid"), options.poll_seconds)
    if (ready.json() or {}).get("status") != "ready":
        got.notes.append(f"the order did not become ready: {ready.text[:200]}")
        return
    other_key = generate_private_key(KeyType.ECDSA_P256)
    other = _acme_csr(other_key, options.identifier_type, [_OTHER[options.identifier_type]])
    await client.post("finalize-bad-csr", body["finalize"], {"csr": other})
    await client.post("finalize", body["finalize"], {"csr": csr})
    final = await _poll(client, "order-poll", order_url, ("valid",), options.poll_seconds)
    certificate_url = (
        (final.json() or {}).get("certificate") if isinstance(final.json(), dict) else None
    )
    if not certificate_url:
        got.notes.append(f"the order did not become valid: {final.text[:200]}")
        return
    cert = await client.post(
        "certificate",
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
        await client.post("revoke-bad-reason", revoke, {"certificate": leaf, "reason": 7})
        await client.post("revoke", revoke, {"certificate": leaf, "reason": 4})
        await client.post("revoke-again", revoke, {"certificate": leaf, "reason": 4})

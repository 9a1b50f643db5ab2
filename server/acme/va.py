"""The validation authority: http-01 (RFC 8555 §8.3), dns-01 (§8.4), tls-alpn-01 (RFC 8737) and
the CAA check (RFC 8659, with the accounturi and validationmethods parameters of RFC 8657).
Names are resolved through the configured DNS server ([acme] resolver, so that tests and closed
networks can point it at their own), or the system's.

http-01 follows redirects (§8.3) within limits Let's Encrypt also keeps: see ``_dereference``.

Each failure is an ``AcmeError`` with the type §6.7 names for it (connection, dns, tls,
unauthorized, incorrectResponse, caa); the service stores it in the challenge. dnspython is
imported on the first lookup (a server that validates nothing does not carry it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from typing import TYPE_CHECKING

import aiohttp
from cryptography import x509
from yarl import URL

from jitsuin.protocol.acme import caa, challenges
from jitsuin.protocol.acme.messages import Identifier
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.server.config import AcmeConfig

if TYPE_CHECKING:
    import dns.asyncresolver

TIMEOUT = 10.0
MAX_BODY = 8192
MAX_REDIRECTS = 10  # RFC 8555 §8.3 sets no limit; Let's Encrypt's
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# §8.3: redirects are followed to these schemes only, each on the port validation uses for it.
_PORTS = {"http": "http01_port", "https": "tlsalpn01_port"}
# RFC 8659 §4: property tags this CA knows; a critical unknown tag forbids issuance.
_KNOWN_CAA_TAGS = frozenset(
    {"issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail"}
)


class ValidationAuthority:
    def __init__(self, config: AcmeConfig) -> None:
        self.config = config
        self._resolver: dns.asyncresolver.Resolver | None = None

    def resolver(self) -> dns.asyncresolver.Resolver:
        import dns.asyncresolver
        import dns.resolver

        if self._resolver is None:
            if self.config.resolver:
                host, _, port = self.config.resolver.rpartition(":")
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [host.strip("[]")]
                resolver.port = int(port)
            else:
                try:
                    resolver = dns.asyncresolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    resolver = dns.asyncresolver.Resolver(configure=False)
                    resolver.nameservers = ["127.0.0.1"]
            resolver.timeout = 3.0
            resolver.lifetime = 6.0
            self._resolver = resolver
        return self._resolver

    async def _query(self, name: str, rdtype: str) -> list[object]:
        """The answer's records; [] for NXDOMAIN or no data; AcmeError(dns) when the lookup
        itself fails (§6.7: "There was a problem with a DNS query")."""
        import dns.exception
        import dns.resolver

        try:
            answer = await self.resolver().resolve(name, rdtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.DNSException, OSError) as exc:
            raise AcmeError(ErrorType.DNS, f"DNS {rdtype} lookup of {name} failed: {exc}") from None
        return list(answer.rrset or [])

    async def addresses(self, identifier: Identifier) -> list[str]:
        if identifier.type == "ip":
            return [identifier.value]
        name = identifier.value
        if self.config.resolver is None:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise AcmeError(ErrorType.DNS, f"cannot resolve {name}: {exc}") from None
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        else:
            found = [str(r) for r in await self._query(name, "AAAA")]
            found += [str(r) for r in await self._query(name, "A")]
        if not found:
            raise AcmeError(ErrorType.DNS, f"no A or AAAA record for {name}")
        return found

    async def validate(
        self, kind: str, identifier: Identifier, token: str, key_authorization: str
    ) -> None:
        if kind == "http-01":
            await self.http01(identifier, token, key_authorization)
        elif kind == "dns-01":
            await self.dns01(identifier, key_authorization)
        elif kind == "tls-alpn-01":
            await self.tls_alpn01(identifier, key_authorization)
        else:
            raise AcmeError(ErrorType.MALFORMED, f"unknown challenge type {kind}")

    # -- http-01 (§8.3) ----------------------------------------------------------------------
    async def http01(self, identifier: Identifier, token: str, key_authorization: str) -> None:
        url = URL.build(
            scheme="http",
            host=identifier.value,
            port=self.config.http01_port,
            path=challenges.HTTP01_PATH + token,
        )
        body, final = await self._dereference(url)
        # §8.3: the body is the key authorization; trailing whitespace is tolerated.
        if body.rstrip() != key_authorization.encode():
            where = str(url) if final == url else f"{final} (redirected from {url})"
            raise AcmeError(
                ErrorType.INCORRECT_RESPONSE,
                f"{where} did not answer with the key authorization",
            )

    async def _dereference(self, url: URL) -> tuple[bytes, URL]:
        """GET ``url`` and the redirects it leads to: (the body of the 200, the URL that gave
        it). §8.3: "The server SHOULD follow redirects when dereferencing the URL"; as Let's
        Encrypt does, at most MAX_REDIRECTS of them, only to http and https URLs on the ports
        validation uses (the configured http01_port, and tlsalpn01_port as the https port:
        80 and 443 unless configured), each target resolved like the identifier, and never
        twice to one URL. Every refusal is a ``connection`` problem naming its reason."""
        visited = [url]
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(
            timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as session:
            while True:
                status, location, body = await self._get(session, url)
                if status not in _REDIRECTS:
                    if status != 200:
                        raise AcmeError(
                            ErrorType.UNAUTHORIZED, f"{url} answered HTTP {status}, not 200"
                        )
                    return body, url
                target = self._redirect_target(url, location)
                if target in visited:
                    raise AcmeError(
                        ErrorType.CONNECTION,
                        f"redirect loop: {url} redirects to {target}, which was visited before",
                    )
                if len(visited) > MAX_REDIRECTS:
                    raise AcmeError(
                        ErrorType.CONNECTION,
                        f"too many redirects: {visited[0]} led to more than {MAX_REDIRECTS}",
                    )
                visited.append(target)
                url = target

    def _redirect_target(self, url: URL, location: str | None) -> URL:
        if not location:
            raise AcmeError(ErrorType.CONNECTION, f"{url} redirects without a Location")
        try:
            target = url.join(URL(location))
        except ValueError:
            raise AcmeError(
                ErrorType.CONNECTION, f"{url} redirects to an unusable URL {location!r}"
            ) from None
        if target.scheme not in _PORTS:
            raise AcmeError(
                ErrorType.CONNECTION,
                f"{url} redirects to {location!r} (scheme {target.scheme or 'none'}): only "
                "http and https redirects are followed (RFC 8555 §8.3)",
            )
        if not target.host:
            raise AcmeError(ErrorType.CONNECTION, f"{url} redirects to {location!r}, no host")
        allowed = getattr(self.config, _PORTS[target.scheme])
        if target.port != allowed:
            raise AcmeError(
                ErrorType.CONNECTION,
                f"{url} redirects to {target}: {target.scheme} redirects are followed only to "
                f"port {allowed}",
            )
        # Credentials in a Location are never sent, and a fragment never leaves the client.
        return target.with_user(None).with_fragment(None)

    async def _get(self, session: aiohttp.ClientSession, url: URL) -> tuple[int, str | None, bytes]:
        """(status, Location, body up to MAX_BODY) of one GET of ``url``, connecting to the
        addresses its host resolves to (the resolver validation uses), first that answers; an
        https URL without certificate verification (§8.3 allows it for a redirect target)."""
        assert url.host is not None
        try:
            ipaddress.ip_address(url.host)
            addresses = [url.host]
        except ValueError:
            addresses = await self.addresses(Identifier("dns", url.host.rstrip(".").lower()))
        https = url.scheme == "https"
        host = f"[{url.host}]" if ":" in url.host else url.host  # RFC 9110 §7.2: uri-host
        problems = []
        for address in addresses:
            direct = url.with_host(address)
            try:
                async with session.get(
                    direct,
                    headers={"Host": host},
                    allow_redirects=False,
                    ssl=False,  # an https target: no certificate verification (§8.3)
                    server_hostname=url.host if https and address != url.host else None,
                ) as reply:
                    if reply.status in _REDIRECTS:
                        return reply.status, reply.headers.get("Location"), b""
                    return reply.status, None, await reply.content.read(MAX_BODY)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                problems.append(
                    AcmeError(ErrorType.CONNECTION, f"cannot fetch {url} from {address}: {exc}")
                )
        raise problems[0]

    # -- dns-01 (§8.4) -----------------------------------------------------------------------
    async def dns01(self, identifier: Identifier, key_authorization: str) -> None:
        name = challenges.DNS01_PREFIX + identifier.value
        expected = challenges.dns01_txt(key_authorization)
        records = await self._query(name, "TXT")
        values = [b"".join(r.strings).decode("ascii", "replace") for r in records]  # type: ignore[attr-defined]
        if expected in values:
            return
        if not values:
            raise AcmeError(ErrorType.UNAUTHORIZED, f"no TXT record at {name}")
        raise AcmeError(
            ErrorType.INCORRECT_RESPONSE, f"no TXT record at {name} holds the expected digest"
        )

    # -- tls-alpn-01 (RFC 8737) -----------------------------------------------------------------
    async def tls_alpn01(self, identifier: Identifier, key_authorization: str) -> None:
        port = self.config.tlsalpn01_port
        sni = (
            challenges.reverse_dns_name(identifier.value)
            if identifier.type == "ip"
            else identifier.value
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # RFC 8737 §3: the certificate is self-signed
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols([challenges.ACME_TLS_ALPN])
        problems = []
        for address in await self.addresses(identifier):
            try:
                der, alpn = await self._handshake(address, port, context, sni)
            except AcmeError as exc:
                problems.append(exc)
                continue
            if alpn != challenges.ACME_TLS_ALPN:
                raise AcmeError(ErrorType.TLS, f"{address}:{port} did not negotiate acme-tls/1")
            check_alpn_certificate(der, identifier, key_authorization)
            return
        raise problems[0]

    async def _handshake(
        self, address: str, port: int, context: ssl.SSLContext, sni: str
    ) -> tuple[bytes, str | None]:
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port, ssl=context, server_hostname=sni),
                TIMEOUT,
            )
        except ssl.SSLError as exc:
            raise AcmeError(ErrorType.TLS, f"TLS with {address}:{port} failed: {exc}") from None
        except (OSError, TimeoutError) as exc:
            raise AcmeError(
                ErrorType.CONNECTION, f"cannot connect to {address}:{port}: {exc}"
            ) from None
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True)
            return der, ssl_object.selected_alpn_protocol()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # -- CAA (RFC 8659, RFC 8657) --------------------------------------------------------------
    async def check_caa(
        self,
        name: str,
        wildcard: bool,
        *,
        account_uri: str | None = None,
        method: str | None = None,
    ) -> None:
        """RFC 8659 §3: the relevant RRset is the closest one climbing from the name towards the
        root. ``account_uri`` (the requesting ACME account's URL) and ``method`` (the challenge
        type that validated the authorization) are what RFC 8657's ``accounturi`` and
        ``validationmethods`` parameters are compared with; a caller without them is still
        authorized by every record for this CA that carries neither parameter, and by none
        that does (RFC 8657 §3: no account URI available → such a property does not authorize)."""
        labels = name.split(".")
        for start in range(len(labels)):
            candidate = ".".join(labels[start:])
            records = await self._query(candidate, "CAA")
            if records:
                self._caa_permits(candidate, records, wildcard, account_uri, method)
                return

    def _caa_permits(
        self,
        name: str,
        records: list[object],
        wildcard: bool,
        account_uri: str | None = None,
        method: str | None = None,
    ) -> None:
        props = [
            (
                int(r.flags),  # type: ignore[attr-defined]
                r.tag.decode("ascii", "replace").lower(),  # type: ignore[attr-defined]
                r.value.decode("utf-8", "replace"),  # type: ignore[attr-defined]
            )
            for r in records
        ]
        for flags, tag, _ in props:
            if flags & 0x80 and tag not in _KNOWN_CAA_TAGS:
                raise AcmeError(
                    ErrorType.CAA, f"CAA at {name} has a critical unknown property {tag!r}"
                )
        # RFC 8659 §4.3: for a wildcard, issuewild properties (if any) replace issue ones.
        tag = "issuewild" if wildcard and any(t == "issuewild" for _, t, _ in props) else "issue"
        relevant = [value for _, t, value in props if t == tag]
        if not relevant:
            return  # §4.2: no issue property restricts issuance
        # The records are alternatives: one that names this CA and whose parameters allow this
        # request authorizes it (RFC 8657 §3: "unless at least one of the specified account
        # URIs identifies the account").
        refusals = []
        for text in relevant:
            record = f'{tag} "{text}"'
            try:
                value = caa.parse_issue_value(text)
            except ValueError as exc:
                # A value outside the RFC 8659 §4.2 grammar authorizes nobody (as Let's Encrypt
                # treats it); it is named only if it might have been meant for this CA.
                if any(identity in text.lower() for identity in self.config.caa_identities):
                    refusals.append(f"{record} is malformed: {exc}")
                continue
            domain = (value.issuer_domain_name or "").lower()
            if domain not in self.config.caa_identities:
                continue
            why = caa.parameter_refusal(value, account_uri, method)
            if why is None:
                return
            refusals.append(f"{record} does not authorize this request: {why}")
        if refusals:
            raise AcmeError(ErrorType.CAA, f"CAA at {name}: " + "; ".join(refusals))
        names = ", ".join(self.config.caa_identities) or "(none configured)"
        raise AcmeError(
            ErrorType.CAA, f"the CAA records at {name} do not name this CA ({names}) for {tag}"
        )


def check_alpn_certificate(der: bytes, identifier: Identifier, key_authorization: str) -> None:
    """RFC 8737 §3: one subjectAltName, the identifier; a critical acmeIdentifier extension whose
    value is the OCTET STRING SHA-256(key authorization)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        extension = cert.extensions.get_extension_for_oid(challenges.ACME_IDENTIFIER_OID)
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise AcmeError(
            ErrorType.UNAUTHORIZED, f"the validation certificate is unusable: {exc}"
        ) from None
    if identifier.type == "ip":
        expected: list[object] = [x509.IPAddress(ipaddress.ip_address(identifier.value))]
    else:
        expected = [x509.DNSName(identifier.value)]
    if list(names) != expected:
        raise AcmeError(
            ErrorType.UNAUTHORIZED, "the validation certificate must name only the identifier"
        )
    value = getattr(extension.value, "value", b"")
    digest = challenges.tls_alpn01_digest(key_authorization)
    if not extension.critical or value != b"\x04\x20" + digest:
        raise AcmeError(
            ErrorType.INCORRECT_RESPONSE,
            "the acmeIdentifier extension is not critical or does not hold the digest",
        )

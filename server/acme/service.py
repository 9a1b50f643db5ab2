"""The ACME server's decisions (RFC 8555), over the store, the RA and the CA: the parts, wired
together. The handlers are a thin aiohttp layer over them; the wire formats live in
``jitsuin.protocol``.

Two kinds of account, told apart by their External Account Binding (§7.3.4):
- ``personal``: kid = an application's enrollment ID, MAC key = the one e-mailed with the
  download PIN (docs/flow.md). Its only identifier is
  ``{"type": "email", "value": <vetted address>}`` (RFC 8823 identifier type), valid because the
  RA vetted it; finalize redeems the application
  through the RA's own transaction (consuming the PIN too). Later orders are renewals, which go
  through the RA's re-enrollment policy and may wait for an operator (``processing``).
- ``tls-server``: kid and MAC key made by an operator with a policy (allowed DNS suffixes and IP
  networks, certificate lifetime, how many certificates); dns and ip identifiers validated by
  http-01, dns-01 or tls-alpn-01, with CAA checked (RFC 8659).

The parts, one module each: ``nonces``, ``requests`` (JWS verification and the account key
cache), ``accounts``, ``eab`` (bindings and operators' EAB keys), ``orders``,
``authorizations`` (with challenges and validation), ``issuance`` (finalize, issue, download)
and ``revocation`` (with ARI). Status changes go through ``transitions``; every path is declared
in ``paths``.
"""

from __future__ import annotations

from typing import Any

from jitsuin.protocol.acme.messages import Directory
from jitsuin.server.acme.accounts import Accounts
from jitsuin.server.acme.authorizations import Authorizations
from jitsuin.server.acme.eab import ExternalAccounts
from jitsuin.server.acme.issuance import Issuance
from jitsuin.server.acme.nonces import Nonces
from jitsuin.server.acme.orders import PROFILE_DESCRIPTIONS, Orders
from jitsuin.server.acme.paths import Urls
from jitsuin.server.acme.requests import RequestVerifier
from jitsuin.server.acme.revocation import Revocation
from jitsuin.server.authority import Authority
from jitsuin.server.config import AcmeConfig
from jitsuin.server.est.service import Reenrollment
from jitsuin.server.ra.service import RAService


class AcmeService:
    def __init__(
        self,
        authority: Authority,
        ra: RAService,
        reenrollment: Reenrollment,
        config: AcmeConfig,
        retry_after_approval: int,
    ) -> None:
        store, clock = authority.store, authority.clock
        self.config = config
        self.urls = Urls(config.base_url, config.website)
        self.nonces = Nonces(store, clock, config)
        self.requests = RequestVerifier(store, self.nonces, self.urls)
        self.eab = ExternalAccounts(store, clock, config, self.urls, ra)
        self.accounts = Accounts(store, clock, config, self.urls, self.eab, self.requests)
        self.authorizations = Authorizations(store, clock, config, self.urls, self.requests)
        self.orders = Orders(
            authority,
            clock,
            config,
            self.urls,
            self.authorizations,
            lambda order: self.issuance.complete(order),
            retry_after_approval,
        )
        self.issuance = Issuance(authority, ra, reenrollment, self.requests, self.orders)
        self.revocation = Revocation(authority)

    async def close(self) -> None:
        self.nonces.close()
        await self.authorizations.close()

    def directory(self) -> dict[str, Any]:
        """§7.1.1, with the profiles of draft-ietf-acme-profiles."""
        return Directory(
            urls=self.urls.directory(),
            terms_of_service=self.config.terms_of_service,
            website=self.config.website,
            caa_identities=self.config.caa_identities,
            external_account_required=True,
            profiles=PROFILE_DESCRIPTIONS,
        ).to_json()

"""What an account may order (RFC 8555 §7.4, §7.4.1): a personal account exactly its vetted e-mail
address, a tls-server account the names and networks of its operator's EAB key policy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from jitsuin.protocol.acme.messages import Identifier
from jitsuin.protocol.acme.problems import AcmeError, ErrorType, Subproblem
from jitsuin.server.acme.common import unauthorized
from jitsuin.server.storage import (
    AcmeAccountRecord,
    AcmeEABKeyRecord,
    ApplicationRecord,
    Store,
)


async def application(store: Store, account: AcmeAccountRecord) -> ApplicationRecord:
    """The RA application a personal account was bound to."""
    assert account.application_id is not None
    return await store.application(account.application_id)


async def eab_policy(store: Store, account: AcmeAccountRecord) -> AcmeEABKeyRecord:
    """The operator's EAB key a tls-server account was bound with, which is its policy."""
    key = await store.acme_eab_key(account.eab_kid)
    if key.disabled_at is not None:
        raise unauthorized("the operator disabled this account's external account binding")
    return key


def personal_identifiers(identifiers: Sequence[Identifier], vetted: Identifier) -> None:
    refused = [
        Subproblem(
            ErrorType.REJECTED_IDENTIFIER,
            f"this account may only order {vetted.value} (its vetted e-mail address)",
            i.to_json(),
        )
        for i in identifiers
        if i != vetted
    ]
    if refused:
        raise AcmeError(
            ErrorType.REJECTED_IDENTIFIER,
            "a personal account orders exactly its vetted e-mail address "
            f'({{"type": "email", "value": "{vetted.value}"}})',
            subproblems=refused,
        )


def policy_identifiers(policy: AcmeEABKeyRecord, identifiers: Sequence[Identifier]) -> None:
    refused = []
    for identifier in identifiers:
        if identifier.type == "email":
            detail = "e-mail identifiers need a personal account (the RA's vetting)"
        elif not allowed_by(policy.allowed, identifier):
            detail = (
                f"{identifier.value} is outside this account's policy ({', '.join(policy.allowed)})"
            )
        else:
            continue
        refused.append(Subproblem(ErrorType.REJECTED_IDENTIFIER, detail, identifier.to_json()))
    if refused:
        raise AcmeError(
            ErrorType.REJECTED_IDENTIFIER,
            f"{len(refused)} identifier(s) refused by policy; see subproblems",
            subproblems=refused,
        )


def allowed_by(allowed: Sequence[str], identifier: Identifier) -> bool:
    """An operator EAB key's policy: DNS suffixes (the name itself or any name below it) and IP
    networks."""
    for entry in allowed:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            network = None
        if network is not None:
            if identifier.type == "ip" and ipaddress.ip_address(identifier.value) in network:
                return True
            continue
        name = identifier.base.value
        if identifier.type == "dns" and (name == entry or name.endswith("." + entry)):
            return True
    return False

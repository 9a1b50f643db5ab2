"""Every ACME path, declared once: the routes in ``handlers.py``, the directory (RFC 8555 §7.1.1)
and every URL the service writes into a response are derived from this table."""

from __future__ import annotations

import enum

MOUNT = "/acme"  # where the routes are served; the configured base_url names it externally
HELP_URL_PATH = "/docs/acme"  # rateLimited carries Link rel="help" (§6.6)


class Path(enum.Enum):
    """(template under the mount, the directory field that announces it, if any)."""

    DIRECTORY = ("directory", None)
    NEW_NONCE = ("new-nonce", "newNonce")
    NEW_ACCOUNT = ("new-account", "newAccount")
    NEW_ORDER = ("new-order", "newOrder")
    NEW_AUTHZ = ("new-authz", "newAuthz")
    REVOKE_CERT = ("revoke-cert", "revokeCert")
    KEY_CHANGE = ("key-change", "keyChange")
    RENEWAL_INFO = ("renewal-info", "renewalInfo")  # RFC 9773 §4.1: a prefix, not routed itself
    RENEWAL_INFO_CERT = ("renewal-info/{cert_id}", None)
    ACCOUNT = ("acct/{id}", None)
    ACCOUNT_ORDERS = ("acct/{id}/orders", None)
    ORDER = ("order/{id}", None)
    FINALIZE = ("order/{id}/finalize", None)
    AUTHZ = ("authz/{id}", None)
    CHALLENGE = ("chall/{id}", None)
    CERTIFICATE = ("cert/{id}", None)
    CERTIFICATE_ALTERNATE = ("cert/{id}/{alternate:[0-9]{1,3}}", None)

    def __init__(self, template: str, directory_field: str | None) -> None:
        self.template = template
        self.directory_field = directory_field

    @property
    def route(self) -> str:
        """The aiohttp route of this path."""
        return f"{MOUNT}/{self.template}"


class Urls:
    """The URLs of this server as a client sees them: the configured external base + a path."""

    def __init__(self, base_url: str, website: str | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.website = website

    def of(self, path: Path, *ids: str) -> str:
        """``path`` with its ``{...}`` placeholders filled in order by ``ids``."""
        parts = path.template.split("/")
        filled = iter(ids)
        return "/".join((self.base, *(next(filled) if p.startswith("{") else p for p in parts)))

    def directory(self) -> dict[str, str]:
        return {p.directory_field: self.of(p) for p in Path if p.directory_field is not None}

    def account(self, account_id: str) -> str:
        return self.of(Path.ACCOUNT, account_id)

    def account_orders(self, account_id: str) -> str:
        return self.of(Path.ACCOUNT_ORDERS, account_id)

    def order(self, order_id: str) -> str:
        return self.of(Path.ORDER, order_id)

    def finalize(self, order_id: str) -> str:
        return self.of(Path.FINALIZE, order_id)

    def authz(self, authz_id: str) -> str:
        return self.of(Path.AUTHZ, authz_id)

    def challenge(self, challenge_id: str) -> str:
        return self.of(Path.CHALLENGE, challenge_id)

    def certificate(self, order_id: str, alternate: int = 0) -> str:
        if alternate:
            return self.of(Path.CERTIFICATE_ALTERNATE, order_id, str(alternate))
        return self.of(Path.CERTIFICATE, order_id)

    def account_prefix(self) -> str:
        """What every account URL (a kid, §6.2) starts with."""
        return self.of(Path.ACCOUNT, "")

    def help(self) -> str:
        """Where the limits are explained (§6.6: Link rel="help" on rateLimited)."""
        return self.website or self.base.rsplit(MOUNT, 1)[0] + HELP_URL_PATH

    def external(self, raw_path: str) -> str:
        """The URL a request was sent to as the client sees it: the configured external base,
        then the path after the mount exactly as received (§6.4: no re-encoding)."""
        return self.base + raw_path.removeprefix(MOUNT)

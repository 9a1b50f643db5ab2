"""Configuration: one TOML file -> frozen dataclasses. Every error is collected and reported at
once (``jitsuin check-config``). Secrets are referenced by file path or environment variable,
never written inline. Each default is written once, in its dataclass: ``load`` falls back to it
and ``write_default`` writes it out.

Longer than 600 lines on purpose: it is the whole schema of the file, each table's dataclass with
its defaults, its reading and checks, and the commented file ``jitsuin init`` writes. Kept in one
module, a setting's default, check and documentation change together."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import secrets
import stat
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from jitsuin.ca.issuance import CAPolicy
from jitsuin.ca.keys import CA_KEY_TYPES, KeyType
from jitsuin.ca.profiles import (
    DEFAULT_GROUPS,
    PERSONAL_PROFILES,
    PROFILES,
    NameOrder,
    QualificationGroup,
)
from jitsuin.server.pkcs11_signer import TokenConfig

CONFIG_NAME = "jitsuin.toml"
DEFAULT_HOME = "jitsuin-data"
DEFAULT_SUBJECT = "CN=jitsuin Personal CA,O=jitsuin,C=JP"
PASSPHRASE_ENV = "JITSUIN_CA_PASSPHRASE"  # noqa: S105 (a variable name)


class ConfigError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


DEFAULT_HTTP = Listen("127.0.0.1", 8080)
DEFAULT_HTTPS = Listen("127.0.0.1", 8443)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    http: Listen = DEFAULT_HTTP
    https: Listen | None = DEFAULT_HTTPS
    public_http_url: str = f"http://{DEFAULT_HTTP}"
    public_https_url: str = f"https://localhost:{DEFAULT_HTTPS.port}"
    tls_names: tuple[str, ...] = ("localhost", "127.0.0.1")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # How long the OCSP responder trusts a certificate status it read from the store: a
    # revocation made through another process shows within this time (through this one, at once).
    ocsp_status_ttl: dt.timedelta = dt.timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class HTTPConfig:
    """What one server process allows its clients on each listener (server/connections.py)."""

    # From a connection's accept, and from each response on a kept-alive connection, to a complete
    # request head: a slow or idle client is closed after this (the idle keep-alive timeout too).
    request_head_timeout: float = 10.0
    # From a complete request head to the whole body (at most 64 KiB): 408 and closed after this.
    request_body_timeout: float = 30.0
    # From accept to a finished TLS handshake on the HTTPS listener.
    tls_handshake_timeout: float = 10.0
    # Open connections per listener; more are closed at accept.
    max_connections: int = 1000
    # Open connections per listener from one IPv4 address or IPv6 /64; more are closed at accept.
    max_connections_per_address: int = 100
    # RFC 6797 Strict-Transport-Security max-age on every HTTPS response (0 tells browsers to
    # forget the policy).
    hsts_max_age: int = 63_072_000


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """``jitsuin init --pkcs11-*``: the token a new CA keeps its keys in."""

    library: Path  # the token's PKCS#11 module
    token: str  # the token's label
    pin_file: Path  # the user PIN, one line


@dataclass(frozen=True, slots=True)
class CAConfig:
    subject: x509.Name = field(
        default_factory=lambda: x509.Name.from_rfc4514_string(DEFAULT_SUBJECT)
    )
    key_type: KeyType = KeyType.ECDSA_P384
    passphrase_file: Path | None = None
    passphrase_env: str = PASSPHRASE_ENV
    key_store: str = "file"  # "file" (encrypted PKCS#8) or "pkcs11" (an HSM token)
    pkcs11_library: Path | None = None
    pkcs11_token: str = ""
    pkcs11_pin_file: Path | None = None
    policy_arc: str = ""
    name_order: NameOrder = NameOrder.GIVEN_FAMILY
    cutoff_margin: dt.timedelta = dt.timedelta(days=30)
    rollover_warning: dt.timedelta = dt.timedelta(days=180)  # warn this long before the cut-off
    groups: dict[str, QualificationGroup] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    # pkilint codes suppressed at pre-issuance, each with its reason.
    lint_suppress: dict[str, str] = field(default_factory=dict)
    # Processes that lint drafts beside the server's own (0: lint in the issuing thread).
    lint_processes: int = 0
    # "incremental": pkilint judges a draft's shape once (conformance/shapes.py); "full": whole.
    lint: str = "incremental"


@dataclass(frozen=True, slots=True)
class OCSPConfig:
    """Who signs OCSP responses (RFC 6960 §4.2.2.2): "ca", each generation's own CA key, or
    "delegated", a responder key per generation with a short-lived certificate from that CA key
    (id-kp-OCSPSigning, id-pkix-ocsp-nocheck), renewed by the server before it expires."""

    responder: str = "ca"


@dataclass(frozen=True, slots=True)
class RAConfig:
    secret_file: Path | None = None  # 32+ random bytes: keyed hashes and sealing (0600)
    two_person_rule: bool = True  # who entered or reviewed an application cannot approve it
    max_attempts: int = 5  # wrong access codes / PINs before the credential locks
    # After each wrong try, its source address waits this long (doubled per wrong try of that
    # source) before a try of the credential is compared again: no burst spends max_attempts.
    attempt_backoff: dt.timedelta = dt.timedelta(seconds=15)
    pin_ttl: dt.timedelta = dt.timedelta(days=14)
    invoice_amount: int = 11000  # the issuance fee, in yen
    retry_after_seconds: int = 3600  # what a waiting enrollment client is told


@dataclass(frozen=True, slots=True)
class MailConfig:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    sender: str = "jitsuin CA <ca@localhost>"
    starttls: bool = False
    username: str | None = None
    password_file: Path | None = None
    max_attempts: int = 8
    retry_seconds: int = 60  # first retry; doubles after each failure
    poll_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class ESTConfig:
    # Profiles whose re-enrollment waits for an operator (202 + Retry-After until approved).
    reenroll_approval: frozenset[str] = frozenset()


# Test-mode knobs are refused unless the environment of the jitsuin process says so: a
# configuration file alone (copied into production, or edited by someone who may write it but
# not start the server) cannot make the VA accept every challenge.
ALLOW_TEST_MODE_ENV = "JITSUIN_ALLOW_TEST_MODE"


@dataclass(frozen=True, slots=True)
class AcmeTestMode:
    """Knobs like Pebble's, so that ACME clients can be tested for robustness against jitsuin.
    Never for production: refused at load unless $JITSUIN_ALLOW_TEST_MODE is 1, and then
    ``serve`` and /health say that the CA is in test mode."""

    reject_nonce_share: float = 0.0  # share of valid nonces answered with badNonce (0..1)
    validation_always_succeeds: bool = False  # the VA accepts every challenge without looking
    validation_delay_seconds: float = 0.0  # the VA waits this long before each validation

    @property
    def active(self) -> bool:
        return bool(self.knobs)

    @property
    def knobs(self) -> list[str]:
        """The knobs that are on, as written in the file."""
        return [
            f"{name} = {str(value).lower() if isinstance(value, bool) else value}"
            for name, value in (
                ("reject_nonce_share", self.reject_nonce_share),
                ("validation_always_succeeds", self.validation_always_succeeds),
                ("validation_delay_seconds", self.validation_delay_seconds),
            )
            if value
        ]


@dataclass(frozen=True, slots=True)
class AcmeConfig:
    """The ACME server (RFC 8555) under /acme on the HTTPS listener."""

    enabled: bool = True
    # The external URL of /acme as clients see it (behind a proxy: the proxy's). Every JWS "url"
    # is compared with it exactly (RFC 8555 §6.4). Empty: public_https_url + "/acme".
    base_url: str = ""
    terms_of_service: str | None = None  # when set, newAccount needs termsOfServiceAgreed
    website: str | None = None
    caa_identities: tuple[str, ...] = ()  # RFC 8659 issuer domain names of this CA
    check_caa: bool = True
    resolver: str | None = None  # "host:port" of the DNS server the VA asks; None: the system's
    http01_port: int = 80  # RFC 8555 §8.3 says 80; tests point it at a loopback port
    tlsalpn01_port: int = 443  # RFC 8737 §3 says 443
    nonce_lifetime: dt.timedelta = dt.timedelta(hours=1)
    order_lifetime: dt.timedelta = dt.timedelta(days=7)
    authorization_lifetime: dt.timedelta = dt.timedelta(days=30)  # how long a valid one is reused
    orders_per_hour: int = 300  # per account; more get rateLimited
    retry_after_seconds: int = 3  # what clients polling a challenge or an order are told
    # How long a challenge response waits for its validation: one that ends sooner is answered
    # with its outcome, sparing the client a poll; a slower one with "processing" (§7.5.1).
    challenge_wait_seconds: float = 1.0
    orders_page_size: int = 50  # orders per page of an account's orders list (§7.1.2.1)
    tls_server_lifetime_days: int = 90  # certificate validity under an operator EAB key, default
    test: AcmeTestMode = AcmeTestMode()


# -- [letter]: the inquiry letter and its invoice (seed steps 3 and 5) --------------------------
@dataclass(frozen=True, slots=True)
class LetterConfig:
    """Who sends the inquiry letter, where it goes back to and how the invoice is paid. The
    defaults print as visibly unset ("未設定"), so that a letter never looks finished before
    the CA has filled them in."""

    ca_name: str = "jitsuin CA"
    postcode: str = "000-0000"  # 郵便番号 of the CA's office (return address)
    address: str = "住所未設定 / address not set ([letter] address)"
    phone: str = ""
    email: str = "ca@localhost"
    return_days: int = 14  # the signed and sealed letter must be back within this many days
    payment_days: int = 30  # the invoice falls due this many days after the letter
    payment_method: str = "銀行振込 / Bank transfer"
    payment_account: str = "口座未設定 / account not set ([letter] payment_account)"
    # 適格請求書発行事業者登録番号: "T" and 13 digits (消費税法第57条の4); "" prints as unset.
    registration_number: str = ""
    tax_rate_percent: int = 10  # the fee ([ra] invoice_amount) includes the tax at this rate


_REGISTRATION_NUMBER = re.compile(r"T[0-9]{13}")
_POSTCODE = re.compile(r"[0-9]{3}-[0-9]{4}")


def _letter(table: Any, errors: list[str]) -> LetterConfig:
    """The [letter] table: the sender, the return deadline and the invoice's payment details."""
    letter = _Reader(table, "letter", errors)
    defaults = LetterConfig()
    texts = {
        key: letter.get(key, str, getattr(defaults, key)).strip()
        for key in (
            "ca_name",
            "postcode",
            "address",
            "phone",
            "email",
            "payment_method",
            "payment_account",
            "registration_number",
        )
    }
    for key in ("ca_name", "address", "payment_method", "payment_account"):
        if not texts[key]:
            errors.append(f"letter.{key}: must not be empty")
    if not _POSTCODE.fullmatch(texts["postcode"]):
        errors.append(f"letter.postcode: write it as 123-4567, not {texts['postcode']!r}")
    number = texts["registration_number"]
    if number and not _REGISTRATION_NUMBER.fullmatch(number):
        errors.append(f"letter.registration_number: 'T' and 13 digits, not {number!r}")
    config = LetterConfig(
        **texts,
        return_days=_positive(letter, "return_days", defaults.return_days),
        payment_days=_positive(letter, "payment_days", defaults.payment_days),
        tax_rate_percent=_not_negative(letter, "tax_rate_percent", defaults.tax_rate_percent),
    )
    if config.tax_rate_percent > 100:
        errors.append("letter.tax_rate_percent: at most 100")
    letter.finish()
    return config


# -- operations: [metrics] and [log] ------------------------------------------------------------
DEFAULT_METRICS_LISTEN = Listen("127.0.0.1", 9464)
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """[metrics]: the Prometheus listener, a listener of its own and never the public ones
    (server/metrics.py). ``listen = ""`` turns it off."""

    listen: Listen | None = DEFAULT_METRICS_LISTEN


@dataclass(frozen=True, slots=True)
class LogConfig:
    """[log]: ``format = "text"`` (one line a record) or ``"json"`` (one JSON object a line,
    server/logging_json.py)."""

    format: str = "text"


def _operations(top: _Reader, errors: list[str]) -> dict[str, Any]:
    """The [metrics] and [log] tables, as keyword arguments of ``Config``."""
    metrics = _Reader(top.get("metrics", dict, {}), "metrics", errors)
    value = metrics.get("listen", str, str(DEFAULT_METRICS_LISTEN))
    listen = _listen(value, "metrics.listen", errors) if value else None
    metrics.finish()
    log = _Reader(top.get("log", dict, {}), "log", errors)
    form = log.get("format", str, "text")
    if form not in LOG_FORMATS:
        errors.append(f"log.format: use 'text' or 'json', not {form!r}")
    log.finish()
    return {"metrics": MetricsConfig(listen), "log": LogConfig(form)}


@dataclass(frozen=True, slots=True)
class Config:
    home: Path
    source: Path | None  # the TOML file, if any
    database_url: str
    server: ServerConfig
    ca: CAConfig
    ra: RAConfig = RAConfig()
    mail: MailConfig = MailConfig()
    est: ESTConfig = ESTConfig()
    acme: AcmeConfig = AcmeConfig()
    http: HTTPConfig = HTTPConfig()
    ocsp: OCSPConfig = OCSPConfig()
    letter: LetterConfig = LetterConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()

    def test_mode_warning(self) -> str | None:
        """What ``serve`` and /health say when [acme.test] knobs are on (allowed by
        $JITSUIN_ALLOW_TEST_MODE=1, else ``load`` refused them)."""
        knobs = self.acme.test.knobs
        if not knobs:
            return None
        return (
            f"TEST MODE ({ALLOW_TEST_MODE_ENV}=1): [acme.test] {', '.join(knobs)}: the ACME "
            "server misbehaves on purpose; nothing this CA issues may be trusted"
        )

    def warnings(self) -> list[str]:
        """Settings that weaken the CA on purpose, said at every start and by check-config."""
        found = [w for w in (self.test_mode_warning(),) if w]
        if not self.ra.two_person_rule:
            found.append(
                "[ra] two_person_rule = false: one person may enter, review and approve an "
                "application; for a test setup with a single operator only"
            )
        return found

    def ra_secret(self) -> bytes:
        path = self.ra.secret_file or self.home / "secrets" / "ra.key"
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            raise ConfigError([f"ra.secret_file: {path} does not exist"]) from None
        except ValueError:
            raise ConfigError([f"ra.secret_file: {path} does not hold hex"]) from None

    @property
    def database_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def database_dialect(self) -> str:
        """'sqlite' (one file, one server process) or 'postgresql' (shared by several)."""
        return "sqlite" if self.database_url.startswith("sqlite:///") else "postgresql"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    def policy(self) -> CAPolicy:
        return CAPolicy(
            policy_arc=self.ca.policy_arc,
            pki_base_url=self.server.public_http_url,
            name_order=self.ca.name_order,
            cutoff_margin=self.ca.cutoff_margin,
            groups=self.ca.groups,
        )

    def token(self) -> TokenConfig:
        """The PKCS#11 token that holds new CA keys (key_store = "pkcs11")."""
        if self.ca.pkcs11_library is None or self.ca.pkcs11_pin_file is None:
            raise ConfigError(["ca: pkcs11_library and pkcs11_pin_file are required for pkcs11"])
        pin = self.ca.pkcs11_pin_file.read_text().strip()
        return TokenConfig(self.ca.pkcs11_library, self.ca.pkcs11_token, pin)

    def needs_passphrase(self) -> bool:
        """A passphrase protects the CA keys kept as files: with ``key_store = "file"``, or when
        generations from before a move to a token still have their keys in the data directory.
        A CA whose every key is in a token needs none (its PIN file opens the token)."""
        return self.ca.key_store == "file" or any(self.keys_dir.glob("ca-*.key.pem"))

    def passphrase(self) -> bytes:
        """The CA key passphrase, from the configured file or the environment."""
        if self.ca.passphrase_file is not None:
            return self.ca.passphrase_file.read_bytes().strip()
        value = os.environ.get(self.ca.passphrase_env)
        if value:
            return value.encode()
        raise ConfigError(
            [
                "no CA key passphrase: set [ca] passphrase_file or the environment variable "
                f"{self.ca.passphrase_env}"
            ]
        )


# The defaults of every table, read by ``load`` and ``write_default``.
_SERVER = ServerConfig()
_HTTP = HTTPConfig()
_CA = CAConfig()
_OCSP = OCSPConfig()
_RA = RAConfig()
_MAIL = MailConfig()
_ACME = AcmeConfig()
_ACME_TEST = AcmeTestMode()
_SECOND = dt.timedelta(seconds=1)
_DAY = dt.timedelta(days=1)
# A setting's key names the unit it is counted in.
_UNITS = {
    "_seconds": _SECOND,
    "_minutes": dt.timedelta(minutes=1),
    "_hours": dt.timedelta(hours=1),
    "_days": _DAY,
}
# acme.tls_server_lifetime_days: at most the tls-server profile's validity.
_TLS_SERVER_MAX_DAYS = PROFILES["tls-server"].validity // _DAY


def _listen(value: Any, where: str, errors: list[str]) -> Listen | None:
    if not isinstance(value, str) or ":" not in value:
        errors.append(f"{where}: expected 'host:port', got {value!r}")
        return None
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not 0 < int(port) < 65536:
        errors.append(f"{where}: port {port!r} is not a number from 1 to 65535")
        return None
    return Listen(host, int(port))


def parse_listen(value: str) -> Listen:
    """``host:port`` (``[v6]:port``) as given on the command line; ValueError says why not."""
    errors: list[str] = []
    listen = _listen(value, "listen", errors)
    if listen is None:
        raise ValueError(errors[0].removeprefix("listen: "))
    return listen


class _Reader:
    """Reads one TOML table, recording every error instead of stopping at the first."""

    def __init__(self, table: Any, where: str, errors: list[str]) -> None:
        self.where = where
        self.errors = errors
        if not isinstance(table, dict):
            errors.append(f"[{where}] must be a table")
            table = {}
        self.table: dict[str, Any] = table
        self.seen: set[str] = set()

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.seen.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.errors.append(f"{self.where}.{key}: expected {names}, got {value!r}")
            return default
        return value

    def finish(self) -> None:
        for key in self.table:
            if key not in self.seen:
                self.errors.append(f"{self.where}: unknown setting {key!r}")


def _path(value: str | None, base: Path) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _http_url(value: str, where: str, errors: list[str], scheme: str) -> str:
    if not value.startswith(f"{scheme}://") or len(value) <= len(scheme) + 3:
        errors.append(f"{where}: expected a {scheme}:// URL, got {value!r}")
    return value.rstrip("/")


def load(path: Path | None, home: Path) -> Config:
    """Load ``path`` (or the defaults, when None) and raise ``ConfigError`` listing every error."""
    errors: list[str] = []
    data: dict[str, Any] = {}
    base = home
    if path is not None:
        base = path.parent
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{path}: no such file"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    top = _Reader(data, "config", errors)
    home_value = top.get("home", str)
    home = _path(home_value, base) if home_value else home
    assert home is not None
    database_url = top.get("database_url", str, f"sqlite:///{home / 'jitsuin.db'}")
    if database_url.startswith(("postgresql://", "postgres://")):
        errors += _postgresql_url_errors(database_url)
    elif not database_url.startswith("sqlite:///"):
        errors.append(
            "database_url: use sqlite:///PATH or postgresql://USER@HOST[:PORT]/DATABASE"
            f"[?schema=NAME], got {database_url!r}"
        )
    elif not Path(database_url.removeprefix("sqlite:///")).is_absolute():
        database_url = f"sqlite:///{base / database_url.removeprefix('sqlite:///')}"

    srv = _Reader(top.get("server", dict, {}), "server", errors)
    http = _listen(srv.get("http_listen", str, str(_SERVER.http)), "server.http_listen", errors)
    https_value = srv.get("https_listen", str, str(_SERVER.https))
    https = _listen(https_value, "server.https_listen", errors) if https_value else None
    http = http or _SERVER.http
    public_http = _http_url(
        srv.get("public_http_url", str, f"http://{http}"), "server.public_http_url", errors, "http"
    )
    default_https = f"https://localhost:{https.port}" if https else ""
    public_https = srv.get("public_https_url", str, default_https)
    if https:
        public_https = _http_url(public_https, "server.public_https_url", errors, "https")
    tls_names = srv.get("tls_names", list, list(_SERVER.tls_names))
    if not all(isinstance(n, str) and n for n in tls_names):
        errors.append("server.tls_names: expected a list of host names and IP addresses")
        tls_names = ["localhost"]
    tls_cert = _path(srv.get("tls_cert_file", str), base)
    tls_key = _path(srv.get("tls_key_file", str), base)
    if (tls_cert is None) != (tls_key is None):
        errors.append("server: set both tls_cert_file and tls_key_file, or neither")
    for label, file in (("tls_cert_file", tls_cert), ("tls_key_file", tls_key)):
        if file is not None and not file.is_file():
            errors.append(f"server.{label}: {file} does not exist")
    ocsp_ttl = srv.get("ocsp_status_ttl_seconds", int, _SERVER.ocsp_status_ttl // _SECOND)
    if ocsp_ttl < 0:
        errors.append("server.ocsp_status_ttl_seconds: must not be negative")
    srv.finish()

    ca = _Reader(top.get("ca", dict, {}), "ca", errors)
    subject_text = ca.get("subject", str, DEFAULT_SUBJECT)
    try:
        subject = x509.Name.from_rfc4514_string(subject_text)
        if not subject.rdns:
            raise ValueError("empty")
    except ValueError:
        errors.append(f"ca.subject: {subject_text!r} is not an RFC 4514 distinguished name")
        subject = x509.Name.from_rfc4514_string(DEFAULT_SUBJECT)
    key_type = _CA.key_type
    key_name = ca.get("key_type", str, _CA.key_type.value)
    try:
        key_type = KeyType.parse(key_name)
        if key_type not in CA_KEY_TYPES:
            allowed = ", ".join(k.value for k in CA_KEY_TYPES)
            errors.append(f"ca.key_type: {key_name} is not allowed for a CA key; use {allowed}")
    except ValueError as exc:
        errors.append(f"ca.key_type: {exc}")
    passphrase_file = _path(ca.get("passphrase_file", str), base)
    if passphrase_file is not None:
        _check_secret_file(passphrase_file, "ca.passphrase_file", errors)
    passphrase_env = ca.get("passphrase_env", str, PASSPHRASE_ENV)
    key_store = ca.get("key_store", str, _CA.key_store)
    pkcs11_library = _path(ca.get("pkcs11_library", str), base)
    pkcs11_token = ca.get("pkcs11_token", str, _CA.pkcs11_token)
    pkcs11_pin_file = _path(ca.get("pkcs11_pin_file", str), base)
    if key_store not in ("file", "pkcs11"):
        errors.append(f"ca.key_store: use 'file' or 'pkcs11', not {key_store!r}")
    elif key_store == "pkcs11":
        if pkcs11_library is None or not pkcs11_library.is_file():
            errors.append(f"ca.pkcs11_library: {pkcs11_library} is not a PKCS#11 library file")
        if not pkcs11_token:
            errors.append("ca.pkcs11_token: the token label is required")
        if pkcs11_pin_file is None:
            errors.append("ca.pkcs11_pin_file: the file holding the token's user PIN is required")
        else:
            _check_secret_file(pkcs11_pin_file, "ca.pkcs11_pin_file", errors)
    policy_arc = ca.get("policy_arc", str, "")
    if not policy_arc:
        errors.append("ca.policy_arc: required (the CA's own OID arc; `jitsuin init` makes one)")
    else:
        errors += [
            "ca." + problem.replace(" ", ": ", 1)
            for problem in CAPolicy(policy_arc, "http://x").problems()
            if problem.startswith("policy_arc")
        ]
    order_name = ca.get("name_order", str, _CA.name_order.value)
    try:
        name_order = NameOrder(order_name)
    except ValueError:
        errors.append(f"ca.name_order: use 'given-family' or 'family-given', not {order_name!r}")
        name_order = _CA.name_order
    warning_days = ca.get("rollover_warning_days", int, _CA.rollover_warning // _DAY)
    if warning_days < 0:
        errors.append("ca.rollover_warning_days: must not be negative")
    lint_processes = ca.get("lint_processes", int, _CA.lint_processes)
    if lint_processes < 0:
        errors.append("ca.lint_processes: must not be negative (0 lints in the server process)")
    lint_mode = ca.get("lint", str, _CA.lint)
    if lint_mode not in ("incremental", "full"):
        errors.append(f"ca.lint: use 'incremental' or 'full', not {lint_mode!r}")
    margin_days = ca.get("cutoff_margin_days", int, _CA.cutoff_margin // _DAY)
    if margin_days < 0:
        errors.append("ca.cutoff_margin_days: must not be negative")
    groups = dict(_CA.groups)
    for gid, spec in ca.get("groups", dict, {}).items():
        g = _Reader(spec, f"ca.groups.{gid}", errors)
        title = g.get("title", str, "")
        pattern = g.get("number_pattern", str, "")
        g.finish()
        if not title or not pattern:
            errors.append(f"ca.groups.{gid}: title and number_pattern are required")
            continue
        groups[gid] = QualificationGroup(gid, title, pattern)
    suppress = ca.get("lint_suppress", dict, {})
    for code, reason in suppress.items():
        if not isinstance(reason, str) or not reason.strip():
            errors.append(f"ca.lint_suppress.{code}: give the reason as a string")
    ca.finish()

    ra = _Reader(top.get("ra", dict, {}), "ra", errors)
    ra_secret = _path(ra.get("secret_file", str), base)
    if ra_secret is not None:
        _check_secret_file(ra_secret, "ra.secret_file", errors)
    ra_config = RAConfig(
        secret_file=ra_secret,
        two_person_rule=ra.get("two_person_rule", bool, _RA.two_person_rule),
        max_attempts=_positive(ra, "max_attempts", _RA.max_attempts),
        attempt_backoff=_span(ra, "attempt_backoff_seconds", _RA.attempt_backoff, zero=True),
        pin_ttl=_span(ra, "pin_ttl_hours", _RA.pin_ttl),
        invoice_amount=_positive(ra, "invoice_amount", _RA.invoice_amount),
        retry_after_seconds=_positive(ra, "retry_after_seconds", _RA.retry_after_seconds),
    )
    ra.finish()

    mail = _Reader(top.get("mail", dict, {}), "mail", errors)
    password_file = _path(mail.get("password_file", str), base)
    if password_file is not None:
        _check_secret_file(password_file, "mail.password_file", errors)
    mail_config = MailConfig(
        smtp_host=mail.get("smtp_host", str, _MAIL.smtp_host),
        smtp_port=_positive(mail, "smtp_port", _MAIL.smtp_port),
        sender=mail.get("sender", str, _MAIL.sender),
        starttls=mail.get("starttls", bool, _MAIL.starttls),
        username=mail.get("username", str),
        password_file=password_file,
        max_attempts=_positive(mail, "max_attempts", _MAIL.max_attempts),
        retry_seconds=_positive(mail, "retry_seconds", _MAIL.retry_seconds),
        poll_seconds=float(mail.get("poll_seconds", (int, float), _MAIL.poll_seconds)),
    )
    if mail_config.smtp_port > 65535:
        errors.append("mail.smtp_port: not a port number")
    if "@" not in mail_config.sender:
        errors.append(f"mail.sender: {mail_config.sender!r} is not an e-mail address")
    mail.finish()

    est = _Reader(top.get("est", dict, {}), "est", errors)
    approval = est.get("reenroll_approval", list, [])
    unknown = [p for p in approval if p not in PERSONAL_PROFILES]
    if unknown:
        errors.append(f"est.reenroll_approval: unknown profiles {unknown}")
    est.finish()
    acme_config = _acme(top.get("acme", dict, {}), public_https, errors)
    http_config = _http(top.get("http", dict, {}), errors)
    ocsp_table = _Reader(top.get("ocsp", dict, {}), "ocsp", errors)
    responder = ocsp_table.get("responder", str, _OCSP.responder)
    if responder not in ("ca", "delegated"):
        errors.append(f"ocsp.responder: use 'ca' or 'delegated', not {responder!r}")
    ocsp_table.finish()
    letter_config = _letter(top.get("letter", dict, {}), errors)
    operations = _operations(top, errors)
    top.finish()
    if errors:
        raise ConfigError(errors)
    return Config(
        home=home,
        source=path,
        database_url=database_url,
        server=ServerConfig(
            http=http,
            https=https,
            public_http_url=public_http,
            public_https_url=public_https,
            tls_names=tuple(tls_names),
            tls_cert_file=tls_cert,
            tls_key_file=tls_key,
            ocsp_status_ttl=dt.timedelta(seconds=max(ocsp_ttl, 0)),
        ),
        ca=CAConfig(
            subject=subject,
            key_type=key_type,
            passphrase_file=passphrase_file,
            passphrase_env=passphrase_env,
            key_store=key_store,
            pkcs11_library=pkcs11_library,
            pkcs11_token=pkcs11_token,
            pkcs11_pin_file=pkcs11_pin_file,
            policy_arc=policy_arc,
            name_order=name_order,
            cutoff_margin=dt.timedelta(days=max(margin_days, 0)),
            rollover_warning=dt.timedelta(days=max(warning_days, 0)),
            groups=groups,
            lint_suppress=dict(suppress),
            lint_processes=max(lint_processes, 0),
            lint=lint_mode,
        ),
        ra=ra_config,
        mail=mail_config,
        est=ESTConfig(reenroll_approval=frozenset(p for p in approval if isinstance(p, str))),
        acme=acme_config,
        http=http_config,
        ocsp=OCSPConfig(responder=responder),
        letter=letter_config,
        **operations,
    )


def _http(table: Any, errors: list[str]) -> HTTPConfig:
    """The [http] table: timeouts and connection limits of the listeners, and HSTS."""
    http = _Reader(table, "http", errors)
    defaults = _HTTP
    timeouts = {}
    for key, default in (
        ("request_head_timeout_seconds", defaults.request_head_timeout),
        ("request_body_timeout_seconds", defaults.request_body_timeout),
        ("tls_handshake_timeout_seconds", defaults.tls_handshake_timeout),
    ):
        timeouts[key] = float(http.get(key, (int, float), default))
        if not 0 < timeouts[key] <= 3600:
            errors.append(f"http.{key}: from more than 0 to 3600 seconds")
            timeouts[key] = default
    hsts = http.get("hsts_max_age_seconds", int, defaults.hsts_max_age)
    if hsts < 0:
        errors.append("http.hsts_max_age_seconds: must not be negative (0 clears the policy)")
        hsts = defaults.hsts_max_age
    config = HTTPConfig(
        request_head_timeout=timeouts["request_head_timeout_seconds"],
        request_body_timeout=timeouts["request_body_timeout_seconds"],
        tls_handshake_timeout=timeouts["tls_handshake_timeout_seconds"],
        max_connections=_positive(http, "max_connections", defaults.max_connections),
        max_connections_per_address=_positive(
            http, "max_connections_per_address", defaults.max_connections_per_address
        ),
        hsts_max_age=hsts,
    )
    http.finish()
    return config


def _postgresql_url_errors(url: str) -> list[str]:
    """A libpq URL for the PostgreSQL store; the password stays out of the file (PGPASSWORD,
    ~/.pgpass or ?passfile=PATH), like every other secret."""
    parts = urllib.parse.urlsplit(url)
    errors = []
    if parts.password:
        errors.append(
            "database_url: do not write the password inline; use ?passfile=PATH (.pgpass "
            "format), ~/.pgpass or the PGPASSWORD environment variable"
        )
    if not parts.path.strip("/"):
        errors.append(f"database_url: name the database, as in postgresql://HOST/DATABASE: {url!r}")
    schema = dict(urllib.parse.parse_qsl(parts.query)).get("schema")
    if schema is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        errors.append(f"database_url: schema {schema!r}: use lower-case letters, digits and _")
    return errors


def _acme(table: Any, public_https: str, errors: list[str]) -> AcmeConfig:
    """The [acme] table and its [acme.test] knobs (RFC 8555 server)."""
    acme = _Reader(table, "acme", errors)
    enabled = acme.get("enabled", bool, _ACME.enabled)
    base_url = acme.get("base_url", str, _ACME.base_url)
    if base_url:
        base_url = _http_url(base_url, "acme.base_url", errors, "https")
    elif public_https:
        base_url = public_https.rstrip("/") + "/acme"
    terms = acme.get("terms_of_service", str)
    website = acme.get("website", str)
    caa = acme.get("caa_identities", list, list(_ACME.caa_identities))
    if not all(isinstance(c, str) and c and c == c.lower() for c in caa):
        errors.append("acme.caa_identities: expected a list of lower-case domain names")
        caa = []
    resolver = acme.get("resolver", str)
    if resolver is not None:
        _listen(resolver, "acme.resolver", errors)
    ports = {}
    for key, default in (
        ("http01_port", _ACME.http01_port),
        ("tlsalpn01_port", _ACME.tlsalpn01_port),
    ):
        ports[key] = _positive(acme, key, default)
        if ports[key] > 65535:
            errors.append(f"acme.{key}: not a port number")
    challenge_wait = float(
        acme.get("challenge_wait_seconds", (int, float), _ACME.challenge_wait_seconds)
    )
    if not 0.0 <= challenge_wait <= 10.0:
        errors.append("acme.challenge_wait_seconds: from 0 (answer at once) to 10")
        challenge_wait = _ACME.challenge_wait_seconds
    config = AcmeConfig(
        enabled=enabled,
        base_url=base_url,
        terms_of_service=terms,
        website=website,
        caa_identities=tuple(caa),
        check_caa=acme.get("check_caa", bool, _ACME.check_caa),
        resolver=resolver,
        http01_port=ports["http01_port"],
        tlsalpn01_port=ports["tlsalpn01_port"],
        nonce_lifetime=_span(acme, "nonce_lifetime_minutes", _ACME.nonce_lifetime),
        order_lifetime=_span(acme, "order_lifetime_hours", _ACME.order_lifetime),
        authorization_lifetime=_span(
            acme, "authorization_lifetime_hours", _ACME.authorization_lifetime
        ),
        orders_per_hour=_positive(acme, "orders_per_hour", _ACME.orders_per_hour),
        retry_after_seconds=_positive(acme, "retry_after_seconds", _ACME.retry_after_seconds),
        challenge_wait_seconds=challenge_wait,
        orders_page_size=_positive(acme, "orders_page_size", _ACME.orders_page_size),
        tls_server_lifetime_days=_positive(
            acme, "tls_server_lifetime_days", _ACME.tls_server_lifetime_days
        ),
        test=_acme_test(acme.get("test", dict, {}), errors),
    )
    if config.tls_server_lifetime_days > _TLS_SERVER_MAX_DAYS:
        errors.append(
            f"acme.tls_server_lifetime_days: at most {_TLS_SERVER_MAX_DAYS} "
            "(the tls-server profile)"
        )
    acme.finish()
    return config


def _acme_test(table: Any, errors: list[str]) -> AcmeTestMode:
    test = _Reader(table, "acme.test", errors)
    share = float(test.get("reject_nonce_share", (int, float), _ACME_TEST.reject_nonce_share))
    if not 0.0 <= share <= 1.0:
        errors.append("acme.test.reject_nonce_share: must be from 0 to 1")
        share = _ACME_TEST.reject_nonce_share
    delay = float(
        test.get("validation_delay_seconds", (int, float), _ACME_TEST.validation_delay_seconds)
    )
    if delay < 0:
        errors.append("acme.test.validation_delay_seconds: must not be negative")
        delay = _ACME_TEST.validation_delay_seconds
    mode = AcmeTestMode(
        reject_nonce_share=share,
        validation_always_succeeds=test.get(
            "validation_always_succeeds", bool, _ACME_TEST.validation_always_succeeds
        ),
        validation_delay_seconds=delay,
    )
    test.finish()
    if mode.active and os.environ.get(ALLOW_TEST_MODE_ENV) != "1":
        errors.append(
            f"acme.test: test-mode knobs ({', '.join(mode.knobs)}) are refused unless "
            f"{ALLOW_TEST_MODE_ENV}=1 is set in the environment of jitsuin: they make the ACME "
            "server misbehave on purpose (validation_always_succeeds issues for any name without "
            "looking); never in production"
        )
    return mode


# The largest number a setting takes: as days, seconds after now stays within the calendar
# (and a timedelta's range), and it fits every integer column.
_MAX_SETTING = 1_000_000


def _positive(reader: _Reader, key: str, default: int) -> int:
    value = reader.get(key, int, default)
    if not 0 < value <= _MAX_SETTING:
        reader.errors.append(f"{reader.where}.{key}: must be a number 1..{_MAX_SETTING}")
        return default
    return int(value)


def _not_negative(reader: _Reader, key: str, default: int) -> int:
    value = reader.get(key, int, default)
    if value < 0:
        reader.errors.append(f"{reader.where}.{key}: must be 0 or more")
        return default
    return int(value)


def _span(reader: _Reader, key: str, default: dt.timedelta, *, zero: bool = False) -> dt.timedelta:
    """A duration counted in the unit its key ends with; 0 allowed only with ``zero``."""
    unit = next(u for suffix, u in _UNITS.items() if key.endswith(suffix))
    count = (_not_negative if zero else _positive)(reader, key, default // unit)
    return unit * count


def _check_secret_file(path: Path, where: str, errors: list[str]) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        errors.append(f"{where}: {path} does not exist")
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        errors.append(f"{where}: {path} is readable by others; chmod 600 it")


def is_loopback_url(url: str) -> bool:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _toml_string(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key_store(token: TokenSettings | None) -> str:
    """The [ca] lines that say where the CA keys are."""
    if token is not None:
        return f"""# CA keys are made in this PKCS#11 token and never leave it (docs/operations.md)
key_store = "pkcs11"
pkcs11_library = {_toml_string(token.library)}   # the token's PKCS#11 module
pkcs11_token = {_toml_string(token.token)}   # the token's label
pkcs11_pin_file = {_toml_string(token.pin_file)}   # its user PIN, one line, mode 0600"""
    return """# For production keep the passphrase off this disk: use passphrase_env instead.
passphrase_file = "secrets/ca-passphrase"
# key_store = "pkcs11" makes new CA keys in a PKCS#11 token (an HSM) instead of encrypted files
# here; the next `jitsuin ca rollover` makes its key there (docs/operations.md):
# pkcs11_library = "/usr/lib/softhsm/libsofthsm2.so"   # the token's PKCS#11 module
# pkcs11_token = "jitsuin-ca"                          # the token's label
# pkcs11_pin_file = "secrets/pkcs11-pin"               # its user PIN, one line, mode 0600
# (SoftHSM2 finds its tokens through the environment variable SOFTHSM2_CONF.)"""


def _aligned(column: int, lines: list[tuple[str, str | None]]) -> str:
    """Settings with their comments starting at ``column``, as the written file aligns them."""
    return "\n".join(
        setting if comment is None else f"{setting:<{column}}# {comment}"
        for setting, comment in lines
    )


# The [http] and [ra] settings ``write_default`` writes, with their defaults.
_HTTP_TABLE = _aligned(
    35,
    [
        (
            f"request_head_timeout_seconds = {_HTTP.request_head_timeout:g}",
            "accept (or the last response) to a whole request head",
        ),
        (
            f"request_body_timeout_seconds = {_HTTP.request_body_timeout:g}",
            "a whole request head to its whole body (at most 64 KiB)",
        ),
        (f"tls_handshake_timeout_seconds = {_HTTP.tls_handshake_timeout:g}", None),
        (
            f"max_connections = {_HTTP.max_connections}",
            "open connections; more are closed at accept",
        ),
        (
            f"max_connections_per_address = {_HTTP.max_connections_per_address}",
            "from one IPv4 address or IPv6 /64 (a NAT shares one)",
        ),
        (
            f"hsts_max_age_seconds = {_HTTP.hsts_max_age}",
            "Strict-Transport-Security on HTTPS (2 years; 0 clears it)",
        ),
    ],
)
_RA_TABLE = _aligned(
    34,
    [
        (
            'secret_file = "secrets/ra.key"',
            "keyed hashes of PINs and access codes; keep it with the CA key",
        ),
        (
            f"two_person_rule = {str(_RA.two_person_rule).lower()}",
            "false: one person may vet and approve (test setups only)",
        ),
        (
            f"max_attempts = {_RA.max_attempts}",
            "wrong tries lock an access code or PIN until a new one is sent",
        ),
        (
            f"attempt_backoff_seconds = {_RA.attempt_backoff // _SECOND}",
            "an address waits after a wrong try, doubled per try (0: none)",
        ),
        (f"pin_ttl_hours = {_RA.pin_ttl // dt.timedelta(hours=1)}", None),
        (f"invoice_amount = {_RA.invoice_amount}", None),
    ],
)


def write_default(
    home: Path,
    key_type: KeyType,
    subject: str,
    http: Listen = DEFAULT_HTTP,
    https: Listen = DEFAULT_HTTPS,
    smtp: Listen = Listen(_MAIL.smtp_host, _MAIL.smtp_port),
    token: TokenSettings | None = None,
) -> Path:
    """The embedded default: a config with a fresh policy arc and a generated passphrase file
    (mode 0600) in ``home``, listening on ``http`` and ``https`` and mailing through ``smtp``;
    with ``token``, the CA keys are made in that PKCS#11 token and no passphrase is written.
    Returns the config path."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    secrets_dir = home / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    passphrase = secrets_dir / "ca-passphrase"
    if token is None and not passphrase.exists():
        fd = os.open(passphrase, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    ra_key = secrets_dir / "ra.key"
    if not ra_key.exists():
        fd = os.open(ra_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    # RFC 5612 reserves enterprise number 32473 for documentation and examples: right for a
    # development CA, to be replaced by the operator's own arc (1.3.6.1.4.1.<PEN>). A 2.25.<UUID>
    # arc would be unique, but its 128-bit arc breaks common decoders (pkilint included).
    arc = f"1.3.6.1.4.1.32473.{secrets.randbelow(2**24) + 1}"
    config = home / CONFIG_NAME
    subject_toml = subject.replace("\\", "\\\\").replace('"', '\\"')
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(
            f"""# jitsuin configuration, written by `jitsuin init`. Paths are relative to this file.
# Check it with `jitsuin check-config {config}`.
database_url = "sqlite:///jitsuin.db"

[server]
http_listen = "{http}"    # CRL, OCSP, CA certificates (must be plain http)
https_listen = "{https}"   # enrollment (TLS >= 1.2)
public_http_url = "http://{http}"
tls_names = [{", ".join(_toml_string(n) for n in _SERVER.tls_names)}]

[http]                             # per listener and per server process (serve --workers N: each)
{_HTTP_TABLE}

[ca]
subject = "{subject_toml}"
key_type = "{key_type.value}"
{_key_store(token)}
policy_arc = "{arc}"   # an example arc (RFC 5612): use your own PEN
name_order = "{_CA.name_order.value}"
cutoff_margin_days = {_CA.cutoff_margin // _DAY}
# lint = "full"        # pkilint on the whole of every draft; "incremental" (the default) gives
#                      # the same findings, judging once what a draft shares with earlier ones
# lint_processes = 1   # lint drafts in that many processes of their own (an issuance's CPU
#                      # on more cores: on two cores bench/run.py issued 1.2-1.9 times faster,
#                      # for about 85 MB more memory per process)

[ocsp]
# Who signs OCSP responses: "ca" (each CA generation's own key) or "delegated" (a responder key
# per generation in keys/ocsp-N.key.pem, mode 0600, or with key_store = "pkcs11" in the token,
# a new one at each renewal; with a 7-day certificate carrying id-kp-OCSPSigning and
# id-pkix-ocsp-nocheck, renewed by the server every 3 days with the CA key; RFC 6960 §4.2.2.2).
responder = "{_OCSP.responder}"

[ra]
{_RA_TABLE}

[mail]                             # the relay that delivers download PINs (SEED-R13)
smtp_host = "{smtp.host}"
smtp_port = {smtp.port}
sender = {_toml_string(_MAIL.sender)}

[ca.lint_suppress]
"cabf.internal_domain_name" = "development CA: CRL, OCSP and CA certificate URLs are on loopback"
"pkix.invalid_domain_name_syntax" = "development TLS certificate: the server is named localhost"
"""
        )
    return config

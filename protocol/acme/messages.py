"""ACME request payloads and resource objects (RFC 8555 §7.1, §7.3-§7.6) as frozen dataclasses.

Requests are read strictly but, as §7.3 asks, fields a server does not recognise are ignored.
Resource objects are built by the server from its stored records and serialised here; the wire
form (camelCase, RFC 3339 times) lives only in this module (docs/architecture.md, house habit 2).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import idna
from cryptography import x509
from cryptography.x509.oid import NameOID

from jitsuin.protocol.acme.problems import AcmeError, ErrorType, Subproblem
from jitsuin.protocol.jose import JOSEError, b64u_decode, b64u_encode

MAX_IDENTIFIERS = 100
MAX_CONTACTS = 10


def malformed(detail: str) -> AcmeError:
    return AcmeError(ErrorType.MALFORMED, detail)


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: Any, name: str) -> dt.datetime:
    if not isinstance(value, str):
        raise malformed(f"{name} must be an RFC 3339 date-time string")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise malformed(f"{name} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise malformed(f"{name} needs a time zone offset (RFC 3339)")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the first UTC instant Python has
        raise malformed(f"{name} is outside the years 1-9999 in UTC") from None


# -- identifiers (§7.1.4, §9.7.7; RFC 8738 ip; RFC 8823 email) ------------------------------------
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


@dataclass(frozen=True, slots=True, order=True)
class Identifier:
    type: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}

    @property
    def wildcard(self) -> bool:
        return self.type == "dns" and self.value.startswith("*.")

    @property
    def base(self) -> Identifier:
        """The identifier an authorization is for: a wildcard's authz names the base domain
        (§7.1.4: the "*." is dropped and "wildcard": true is set)."""
        if self.wildcard:
            return Identifier("dns", self.value[2:])
        return self


def dns_problem(value: str) -> str | None:
    """Why ``value`` is not a lower-case A-label DNS name (§7.1.4), or None. Wildcards are
    accepted only as a whole leftmost label."""
    name = value[2:] if value.startswith("*.") else value
    if not name or len(name) > 253:
        return "the name is empty or longer than 253 characters"
    if name.endswith("."):
        return "the name must not end with a dot"
    if not name.isascii():
        return "use the A-label (xn--) form, not a U-label"
    if name != name.lower():
        return "DNS names are sent in lower case"
    labels = name.split(".")
    if len(labels) < 2:
        return "the name must have at least two labels"
    for label in labels:
        if not _LABEL.fullmatch(label):
            return f"label {label!r} is not a valid LDH label"
        if label[2:4] == "--" and not label.startswith("xn--"):
            return f"label {label!r} has hyphens in the third and fourth places"
        if label.startswith("xn--"):
            try:
                unicode = idna.decode(label)
                round_trip = idna.encode(unicode).decode("ascii")
            except (idna.IDNAError, UnicodeError, ValueError):
                return f"label {label!r} is not a valid IDNA A-label"
            if round_trip != label:
                return f"label {label!r} does not round-trip through IDNA"
    if labels[-1].isdigit():
        return "the top-level label must not be all digits"
    return None


def parse_identifier(value: Any) -> Identifier:
    """One identifier object; a syntax error is ``malformed`` (§7.4), an unknown type
    ``unsupportedIdentifier``; policy refusals come later as ``rejectedIdentifier``."""
    if not isinstance(value, dict):
        raise malformed("an identifier must be an object with type and value")
    kind, text = value.get("type"), value.get("value")
    if not isinstance(kind, str) or not isinstance(text, str):
        raise malformed("an identifier must have string members type and value")
    if kind == "dns":
        problem = dns_problem(text)
        if problem:
            raise malformed(f"dns identifier {text!r}: {problem}")
        return Identifier("dns", text)
    if kind == "ip":
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise malformed(f"ip identifier {text!r} is not an IP address") from None
        if str(address) != text:  # RFC 8738 §3: RFC 5952 text for IPv6, dotted quad for IPv4
            raise malformed(f"ip identifier {text!r}: write it as {address}")
        return Identifier("ip", text)
    if kind == "email":
        # RFC 8823 §3: an email identifier is an addr-spec; jitsuin compares in lower case, as
        # the RA vets addresses (SEED-R6).
        if not _EMAIL.fullmatch(text) or len(text) > 254:
            raise malformed(f"email identifier {text!r} is not an e-mail address")
        if text != text.lower():
            raise malformed(f"email identifier {text!r}: e-mail addresses are vetted in lower case")
        return Identifier("email", text)
    raise AcmeError(ErrorType.UNSUPPORTED_IDENTIFIER, f"identifier type {kind!r} is not supported")


def parse_identifiers(value: Any) -> tuple[Identifier, ...]:
    if not isinstance(value, list) or not value:
        raise malformed("identifiers must be a non-empty array")
    if len(value) > MAX_IDENTIFIERS:
        raise malformed(f"at most {MAX_IDENTIFIERS} identifiers per order")
    found: list[Identifier] = []
    problems: list[Subproblem] = []
    for item in value:
        try:
            identifier = parse_identifier(item)
        except AcmeError as exc:
            shown = item if isinstance(item, dict) else {"value": str(item)}
            problems.append(
                Subproblem(
                    exc.type,
                    exc.detail,
                    {k: str(v) for k, v in shown.items() if k in ("type", "value")},
                )
            )
            continue
        if identifier not in found:
            found.append(identifier)
    if problems:
        if len(problems) == 1 and len(value) == 1:
            raise AcmeError(problems[0].type, problems[0].detail, subproblems=problems)
        raise AcmeError(
            ErrorType.MALFORMED
            if any(p.type is ErrorType.MALFORMED for p in problems)
            else ErrorType.UNSUPPORTED_IDENTIFIER,
            f"{len(problems)} of the identifiers cannot be accepted; see subproblems",
            subproblems=problems,
        )
    return tuple(sorted(found))


# -- request payloads -----------------------------------------------------------------------------
def _object(payload: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise malformed(f"the {what} payload must be a JSON object")
    return payload


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise malformed(f"{key} must be true or false")
    return value


def parse_contacts(value: Any) -> tuple[str, ...]:
    """§7.3: contact URLs. jitsuin takes mailto: only (unsupportedContact otherwise), one plain
    address per URL without header fields (invalidContact otherwise)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise malformed("contact must be an array of URL strings")
    if len(value) > MAX_CONTACTS:
        raise AcmeError(ErrorType.INVALID_CONTACT, f"at most {MAX_CONTACTS} contacts")
    out: list[str] = []
    for contact in value:
        scheme, _, address = contact.partition(":")
        if scheme.lower() != "mailto":
            raise AcmeError(
                ErrorType.UNSUPPORTED_CONTACT,
                f"contact {contact!r}: only mailto: URLs are supported",
            )
        if "?" in address or "," in address or "%" in address:
            raise AcmeError(
                ErrorType.INVALID_CONTACT,
                f"contact {contact!r}: one address without header fields (RFC 6068 hfields)",
            )
        if not _EMAIL.fullmatch(address):
            raise AcmeError(ErrorType.INVALID_CONTACT, f"contact {contact!r} is not an address")
        normalised = "mailto:" + address
        if normalised not in out:
            out.append(normalised)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class NewAccount:
    contact: tuple[str, ...] | None
    terms_of_service_agreed: bool
    only_return_existing: bool
    external_account_binding: Any


def parse_new_account(payload: Any) -> NewAccount:
    data = _object(payload, "newAccount")
    return NewAccount(
        contact=parse_contacts(data["contact"]) if "contact" in data else None,
        terms_of_service_agreed=_bool(data, "termsOfServiceAgreed"),
        only_return_existing=_bool(data, "onlyReturnExisting"),
        external_account_binding=data.get("externalAccountBinding"),
    )


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    contact: tuple[str, ...] | None
    deactivate: bool
    terms_of_service_agreed: bool


def parse_account_update(payload: Any) -> AccountUpdate:
    """§7.3.2 (contact), §7.3.6 (status "deactivated"; no other status may be asked for)."""
    data = _object(payload, "account")
    status = data.get("status")
    if status is not None and status != "deactivated":
        raise malformed('the only status a client may set is "deactivated" (§7.3.6)')
    return AccountUpdate(
        contact=parse_contacts(data["contact"]) if "contact" in data else None,
        deactivate=status == "deactivated",
        terms_of_service_agreed=_bool(data, "termsOfServiceAgreed"),
    )


@dataclass(frozen=True, slots=True)
class NewOrder:
    identifiers: tuple[Identifier, ...]
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    profile: str | None
    replaces: str | None


def parse_new_order(payload: Any) -> NewOrder:
    data = _object(payload, "newOrder")
    profile = data.get("profile")
    if profile is not None and (not isinstance(profile, str) or not profile):
        raise malformed("profile must be a non-empty string")
    replaces = data.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        raise malformed("replaces must be a string (RFC 9773 §5)")
    return NewOrder(
        identifiers=parse_identifiers(data.get("identifiers")),
        not_before=parse_rfc3339(data["notBefore"], "notBefore") if "notBefore" in data else None,
        not_after=parse_rfc3339(data["notAfter"], "notAfter") if "notAfter" in data else None,
        profile=profile,
        replaces=replaces,
    )


def parse_new_authz(payload: Any) -> Identifier:
    data = _object(payload, "newAuthz")
    identifier = parse_identifier(data.get("identifier"))
    if identifier.wildcard:
        # §7.4.1: "a server MUST NOT ... issue a pre-authorization for a wildcard"
        raise malformed("wildcard identifiers cannot be pre-authorized (§7.4.1)")
    return identifier


def parse_finalize(payload: Any) -> bytes:
    data = _object(payload, "finalize")
    try:
        return b64u_decode(data.get("csr"), "csr")
    except JOSEError as exc:
        raise malformed(f"{exc.message} (§7.4: base64url of the DER CSR)") from None


@dataclass(frozen=True, slots=True)
class Revocation:
    certificate_der: bytes
    reason: int | None


def parse_revocation(payload: Any) -> Revocation:
    data = _object(payload, "revokeCert")
    try:
        der = b64u_decode(data.get("certificate"), "certificate")
    except JOSEError as exc:
        raise malformed(exc.message) from None
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, int) or isinstance(reason, bool)):
        raise AcmeError(ErrorType.BAD_REVOCATION_REASON, "reason must be an integer code")
    return Revocation(der, reason)


# -- resource objects -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AccountObject:
    status: str
    contact: Sequence[str]
    orders_url: str
    terms_of_service_agreed: bool = False
    external_account_binding: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.status,
            "contact": list(self.contact),
            "orders": self.orders_url,
        }
        if self.terms_of_service_agreed:
            body["termsOfServiceAgreed"] = True
        if self.external_account_binding is not None:
            body["externalAccountBinding"] = dict(self.external_account_binding)
        return body


@dataclass(frozen=True, slots=True)
class ChallengeObject:
    type: str
    url: str
    status: str
    token: str
    validated: dt.datetime | None = None
    error: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "url": self.url,
            "status": self.status,
            "token": self.token,
        }
        if self.validated is not None:
            body["validated"] = rfc3339(self.validated)
        if self.error is not None:
            body["error"] = dict(self.error)
        return body


@dataclass(frozen=True, slots=True)
class AuthorizationObject:
    identifier: Identifier
    status: str
    expires: dt.datetime
    challenges: Sequence[ChallengeObject]
    wildcard: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "identifier": self.identifier.to_json(),
            "status": self.status,
            "expires": rfc3339(self.expires),
            "challenges": [c.to_json() for c in self.challenges],
        }
        if self.wildcard:
            body["wildcard"] = True
        return body


@dataclass(frozen=True, slots=True)
class OrderObject:
    status: str
    expires: dt.datetime
    identifiers: Sequence[Identifier]
    authorizations: Sequence[str]
    finalize: str
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    error: Mapping[str, Any] | None = None
    certificate: str | None = None
    profile: str | None = None
    replaces: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.status,
            "expires": rfc3339(self.expires),
            "identifiers": [i.to_json() for i in self.identifiers],
            "authorizations": list(self.authorizations),
            "finalize": self.finalize,
        }
        if self.not_before is not None:
            body["notBefore"] = rfc3339(self.not_before)
        if self.not_after is not None:
            body["notAfter"] = rfc3339(self.not_after)
        if self.error is not None:
            body["error"] = dict(self.error)
        if self.certificate is not None:
            body["certificate"] = self.certificate
        if self.profile is not None:
            body["profile"] = self.profile
        if self.replaces is not None:
            body["replaces"] = self.replaces
        return body


@dataclass(frozen=True, slots=True)
class Directory:
    """§7.1.1, with RFC 9773 renewalInfo and draft-ietf-acme-profiles meta.profiles."""

    urls: Mapping[str, str]
    terms_of_service: str | None = None
    website: str | None = None
    caa_identities: Sequence[str] = ()
    external_account_required: bool = True
    profiles: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"externalAccountRequired": self.external_account_required}
        if self.terms_of_service:
            meta["termsOfService"] = self.terms_of_service
        if self.website:
            meta["website"] = self.website
        if self.caa_identities:
            meta["caaIdentities"] = list(self.caa_identities)
        if self.profiles:
            meta["profiles"] = dict(self.profiles)
        return {**self.urls, "meta": meta}


# -- CSR identifiers (§7.4: the CSR must name exactly the order's identifiers) --------------------
def csr_identifiers(csr: x509.CertificateSigningRequest) -> tuple[set[Identifier], list[str]]:
    """The identifiers a CSR asks for (subjectAltName dNSName, iPAddress, rfc822Name), and its
    common names (which must be among them)."""
    found: set[Identifier] = set()
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError as exc:
        raise AcmeError(ErrorType.BAD_CSR, f"the CSR extensions cannot be parsed: {exc}") from None
    if san is not None:
        for name in san:
            if isinstance(name, x509.DNSName):
                found.add(Identifier("dns", name.value.lower()))
            elif isinstance(name, x509.IPAddress):
                found.add(Identifier("ip", str(name.value)))
            elif isinstance(name, x509.RFC822Name):
                found.add(Identifier("email", name.value.lower()))
            else:
                raise AcmeError(
                    ErrorType.BAD_CSR, f"the CSR asks for a {type(name).__name__}, not accepted"
                )
    names = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return found, names


# -- ARI certificate identifiers (RFC 9773 §4.1) --------------------------------------------------
def ari_cert_id(certificate: x509.Certificate) -> str:
    """base64url(AKI keyIdentifier) "." base64url(serial number DER content octets)."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    if aki.key_identifier is None:
        raise ValueError("the certificate has no authority key identifier")
    serial = serial_octets(certificate.serial_number)
    return f"{b64u_encode(aki.key_identifier)}.{b64u_encode(serial)}"


def serial_octets(serial: int) -> bytes:
    """The content octets of the DER INTEGER (a leading 0x00 keeps it positive)."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def parse_ari_cert_id(value: str) -> tuple[bytes, int]:
    key_id_b64, dot, serial_b64 = value.partition(".")
    if not dot:
        raise malformed("a certificate identifier is keyIdentifier.serial (RFC 9773 §4.1)")
    try:
        key_id = b64u_decode(key_id_b64, "the keyIdentifier")
        serial_der = b64u_decode(serial_b64, "the serial")
    except JOSEError as exc:
        raise malformed(exc.message) from None
    if len(serial_der) > 20:  # RFC 5280 §4.1.2.2: no serial is longer than 20 octets
        raise malformed("the serial is longer than 20 octets (RFC 5280 §4.1.2.2)")
    if not key_id or not serial_der or serial_der[0] & 0x80:
        raise malformed("the certificate identifier is not keyIdentifier.serial")
    if len(serial_der) > 1 and serial_der[0] == 0 and not serial_der[1] & 0x80:
        raise malformed("the serial is not minimally encoded (DER)")
    return key_id, int.from_bytes(serial_der, "big")

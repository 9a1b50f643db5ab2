"""A CA's profile description (docs/conformance.md "Describing another CA: the profile file"):
what the config-dependent rules check exact values against. Any CA writes one in TOML
(``jitsuin lint --profile-file FILE``, schema conformance/schemas/profile.schema.json); jitsuin's
own configuration is translated into the same structure (``from_policy``), so the rules have one
code path and never read jitsuin.toml."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from jitsuin.ca.issuance import CAPolicy
from jitsuin.ca.keys import KeyType
from jitsuin.ca.profiles import (
    PROFILES,
    SUBSCRIBER_VALIDITY,
    NameOrder,
    Profile,
    QualificationGroup,
)

ANY_HTTP = "any-http"
SBR_MAX_VALIDITY_DAYS = 825  # SBR 6.3.2
GENERATION = "{generation}"

# Names the profile file may use for purposes; anything else is a dotted OID.
EKU_NAMES = {
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,
    "documentSigning": "1.3.6.1.5.5.7.3.36",  # RFC 9336
    "msDocumentSigning": "1.3.6.1.4.1.311.10.3.12",
    "adobeAuthenticDocumentsTrust": "1.2.840.113583.1.1.5",
}
# RFC 5280 Appendix A / X.520 attribute types the profile file may name.
ATTRIBUTE_OIDS = {
    "commonName": "2.5.4.3",
    "surname": "2.5.4.4",
    "serialNumber": "2.5.4.5",
    "countryName": "2.5.4.6",
    "localityName": "2.5.4.7",
    "stateOrProvinceName": "2.5.4.8",
    "streetAddress": "2.5.4.9",
    "organizationName": "2.5.4.10",
    "organizationalUnitName": "2.5.4.11",
    "title": "2.5.4.12",
    "postalCode": "2.5.4.17",
    "givenName": "2.5.4.42",
    "pseudonym": "2.5.4.65",
    "organizationIdentifier": "2.5.4.97",
    "emailAddress": "1.2.840.113549.1.9.1",
}
# SAN entry kinds (SBR 7.1.2.3h): what S-07 allows at most.
SAN_KINDS = ("rfc822Name", "smtpUTF8Mailbox", "directoryName")
# SEED-R4 and docs/conformance.md's subscriber table: CN, givenName, surname, title,
# serialNumber, C.
_SEED_SUBJECT = ("commonName", "givenName", "surname", "title", "serialNumber", "countryName")


class ProfileFileError(ValueError):
    """The profile file cannot be read or breaks its schema."""


@dataclass(frozen=True, slots=True)
class UrlRule:
    """Where a URL must point: a template whose ``{generation}`` stands for a CA generation
    number (decimal), or ``any-http`` (any http:// URL, SBR 7.1.2.3b,c)."""

    template: str

    @property
    def any_http(self) -> bool:
        return self.template == ANY_HTTP

    def match(self, url: str) -> str | None:
        """The generation the URL names ("" for a template without one), None when it does not
        follow the template."""
        if self.any_http:
            return "" if url.startswith("http://") else None
        head, sep, tail = self.template.partition(GENERATION)
        pattern = re.escape(head) + ("([0-9]+)" + re.escape(tail) if sep else "")
        found = re.fullmatch(pattern, url)
        if found is None:
            return None
        return found.group(1) if sep else ""


@dataclass(frozen=True, slots=True)
class SubscriberProfile:
    """One certificate profile of the CA, as the S rules judge it."""

    name: str
    policy_oids: tuple[str, ...]  # the CA's own CP OIDs that identify the profile (S-04)
    eku: frozenset[str]  # dotted purposes (S-05)
    eku_exact: bool = True  # exactly ``eku``; else any non-empty subset of it
    key_types: frozenset[str] = frozenset()  # KeyType values, e.g. "rsa-2048" (S-03)
    max_validity: dt.timedelta = SUBSCRIBER_VALIDITY  # S-01
    exact_validity: bool = False  # exactly max_validity (SEED-R1)
    personal: bool = True
    groups: tuple[str, ...] | None = None  # accepted qualification groups; None: all (S-12)
    # S-09: the attributes (dotted OIDs) that must be present, and those allowed with a value
    # pattern (a full-match regex; None: any value).
    subject_required: frozenset[str] = frozenset()
    subject_allowed: Mapping[str, str | None] = field(default_factory=dict)
    san_allowed: frozenset[str] = frozenset(SAN_KINDS)  # S-07
    san_rfc822_required: bool = True
    romanized_names: bool = True  # S-10: givenName and surname in Latin letters (SEED-R4)

    def accepts_group(self, group_id: str) -> bool:
        return self.groups is None or group_id in self.groups


@dataclass(frozen=True, slots=True)
class CAProfile:
    """The whole description: the CA's profiles and what is common to them."""

    profiles: Mapping[str, SubscriberProfile]
    crl: UrlRule = UrlRule(ANY_HTTP)
    ocsp: UrlRule = UrlRule(ANY_HTTP)
    ca_issuers: UrlRule = UrlRule(ANY_HTTP)
    ca_signs_ocsp: bool = True  # RFC 6960 §4.2.2.2: the CA key, or a delegated responder
    policy_arc: str | None = None  # private extensions sit under it (S-14)
    name_order: NameOrder | None = None  # None: either order (S-11)
    groups: Mapping[str, QualificationGroup] = field(default_factory=dict)
    cutoff_margin: dt.timedelta = dt.timedelta(0)


def _jitsuin_profile(profile: Profile, policy_arc: str | None) -> SubscriberProfile:
    return SubscriberProfile(
        name=profile.name,
        policy_oids=(f"{policy_arc}.{profile.cp_oid_suffix}",) if policy_arc else (),
        eku=frozenset(o.dotted_string for o in profile.eku),
        key_types=frozenset(k.value for k in profile.key_types),
        max_validity=profile.validity,
        exact_validity=True,
        personal=profile.personal,
        groups=profile.groups,
        subject_allowed={ATTRIBUTE_OIDS[n]: None for n in _SEED_SUBJECT},
    )


def jitsuin_profiles(policy_arc: str | None = None) -> dict[str, SubscriberProfile]:
    """jitsuin's built-in profiles (ca/profiles.py), with CP OIDs when the arc is known."""
    return {name: _jitsuin_profile(p, policy_arc) for name, p in PROFILES.items()}


def from_policy(policy: CAPolicy, *, ca_signs_ocsp: bool = True) -> CAProfile:
    """jitsuin.toml's CA policy in the profile structure: URLs under pki_base_url
    (BASE/crl/N.crl, BASE/ca/N.crt, BASE/ocsp), CP OIDs under policy_arc."""
    base = policy.pki_base_url.rstrip("/")
    return CAProfile(
        profiles=jitsuin_profiles(policy.policy_arc),
        crl=UrlRule(f"{base}/crl/{GENERATION}.crl"),
        ocsp=UrlRule(policy.ocsp_url()),
        ca_issuers=UrlRule(f"{base}/ca/{GENERATION}.crt"),
        ca_signs_ocsp=ca_signs_ocsp,
        policy_arc=policy.policy_arc,
        name_order=policy.name_order,
        groups=dict(policy.groups),
        cutoff_margin=policy.cutoff_margin,
    )


_TOP = {"name", "policy_arc", "name_order", "cutoff_margin_days", "urls", "ocsp", "groups"}
_PROFILE = {
    "policy_oids", "eku", "eku_match", "key_types", "max_validity_days", "exact_validity",
    "groups", "subject", "san", "romanized_names",
}  # fmt: skip
_ALLOWED_KEYS = {
    "": _TOP | {"profiles"},
    "urls": {"crl", "ocsp", "ca_issuers"},
    "ocsp": {"responder"},
    "subject": {"required", "allowed"},
    "san": {"rfc822_required", "allowed"},
}
_CHOICES = {
    "eku_match": ("exact", "subset"),
    "responder": ("ca", "delegated"),
    "name_order": ("any", *(o.value for o in NameOrder)),
}


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """The closed tables of conformance/schemas/profile.schema.json: an unknown key is a typo
    that would otherwise silently weaken a rule."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ProfileFileError(f"{where or '(top)'}: unknown key(s) {unknown}")
    for key, choices in _CHOICES.items():
        if key in table and table[key] not in choices:
            raise ProfileFileError(f"{where}{'.' if where else ''}{key}: one of {list(choices)}")


def _oids(names: Iterable[str], table: Mapping[str, str], what: str) -> list[str]:
    out = []
    for name in names:
        dotted = table.get(name, name)
        try:
            ObjectIdentifier(dotted)
        except ValueError:
            raise ProfileFileError(f"{what} {name!r} is neither a known name nor an OID") from None
        out.append(dotted)
    return out


def _pattern(value: str, where: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ProfileFileError(f"{where}: not a regular expression: {exc}") from None
    return value


def _subscriber(name: str, raw: Mapping[str, Any]) -> SubscriberProfile:
    where = f"profiles.{name}"
    _check_keys(raw, _PROFILE, where)
    missing = sorted({"policy_oids", "eku", "key_types", "max_validity_days"} - set(raw))
    if missing:
        raise ProfileFileError(f"{where}: missing {missing}")
    subject = raw.get("subject", {})
    san = raw.get("san", {})
    _check_keys(subject, _ALLOWED_KEYS["subject"], f"{where}.subject")
    _check_keys(san, _ALLOWED_KEYS["san"], f"{where}.san")
    if set(san.get("allowed", ())) - set(SAN_KINDS):
        raise ProfileFileError(f"{where}.san.allowed: only {list(SAN_KINDS)}")
    if not raw["eku"]:
        raise ProfileFileError(f"{where}.eku: at least one purpose")
    unknown_keys = sorted(set(raw["key_types"]) - {k.value for k in KeyType})
    if unknown_keys or not raw["key_types"]:
        raise ProfileFileError(f"{where}.key_types: unknown {unknown_keys} or empty")
    days = raw["max_validity_days"]
    if not isinstance(days, int) or not 1 <= days <= SBR_MAX_VALIDITY_DAYS:
        raise ProfileFileError(f"{where}.max_validity_days: 1 to {SBR_MAX_VALIDITY_DAYS}")
    allowed = {
        _oids([attr], ATTRIBUTE_OIDS, "subject attribute")[0]: (
            _pattern(p, f"profiles.{name}.subject.allowed.{attr}") if p else None
        )
        for attr, p in subject.get("allowed", {}).items()
    }
    required = frozenset(_oids(subject.get("required", []), ATTRIBUTE_OIDS, "subject attribute"))
    if not required <= allowed.keys():
        raise ProfileFileError(f"{where}.subject: a required attribute is not allowed")
    return SubscriberProfile(
        name=name,
        policy_oids=tuple(_oids(raw["policy_oids"], {}, "policy")),
        eku=frozenset(_oids(raw["eku"], EKU_NAMES, "purpose")),
        eku_exact=raw.get("eku_match", "exact") == "exact",
        key_types=frozenset(raw["key_types"]),
        max_validity=dt.timedelta(days=raw["max_validity_days"]),
        exact_validity=raw.get("exact_validity", False),
        groups=tuple(raw["groups"]) if "groups" in raw else None,
        subject_required=required,
        subject_allowed=allowed,
        san_allowed=frozenset(san.get("allowed", SAN_KINDS)),
        san_rfc822_required=san.get("rfc822_required", True),
        romanized_names=raw.get("romanized_names", False),
    )


def parse(document: Mapping[str, Any]) -> CAProfile:
    """A profile description from its TOML form (conformance/schemas/profile.schema.json)."""
    _check_keys(document, _ALLOWED_KEYS[""], "")
    if not document.get("profiles"):
        raise ProfileFileError("profiles: at least one profile")
    urls = document.get("urls", {})
    _check_keys(urls, _ALLOWED_KEYS["urls"], "urls")
    _check_keys(document.get("ocsp", {}), _ALLOWED_KEYS["ocsp"], "ocsp")
    for key, url in urls.items():
        if url != ANY_HTTP and not url.startswith("http://"):
            # SBR 7.1.2.3b,c: CRL DP and AIA URLs are http:// (not https).
            raise ProfileFileError(f"urls.{key}: an http:// template or {ANY_HTTP!r}")
    groups = {
        g["id"]: QualificationGroup(g["id"], g["title"], _pattern(g["number_pattern"], g["id"]))
        for g in document.get("groups", [])
    }
    profiles = {n: _subscriber(n, raw) for n, raw in document["profiles"].items()}
    for p in profiles.values():
        unknown = set(p.groups or ()) - groups.keys()
        if unknown:
            raise ProfileFileError(f"profiles.{p.name}.groups: unknown {sorted(unknown)}")
    order = document.get("name_order", "any")
    return CAProfile(
        profiles=profiles,
        crl=UrlRule(urls.get("crl", ANY_HTTP)),
        ocsp=UrlRule(urls.get("ocsp", ANY_HTTP)),
        ca_issuers=UrlRule(urls.get("ca_issuers", ANY_HTTP)),
        ca_signs_ocsp=document.get("ocsp", {}).get("responder", "ca") == "ca",
        policy_arc=document.get("policy_arc"),
        name_order=None if order == "any" else NameOrder(order),
        groups=groups,
        cutoff_margin=dt.timedelta(days=document.get("cutoff_margin_days", 0)),
    )


def load(path: Path) -> CAProfile:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileFileError(f"{path}: {exc}") from None
    try:
        return parse(document)
    except ProfileFileError as exc:
        raise ProfileFileError(f"{path}: {exc}") from None

"""The differential test of the incremental gate (docs/conformance.md, "Incremental lint"): drafts
made by jitsuin's issuer, then randomized and mutated in every value slot (serial, validity,
subject attribute values and string types, subjectAltName entries and types, key, key
identifier), in their encodings, and now and then in their shape; each is linted whole and
incrementally, and the findings must be the same.

Used by tests/conformance/test_incremental.py (a small count) and ``bench/run.py lint-diff``
(10,000 and more). Loaded by path: bench/ is not a package.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import string
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from jitsuin.ca.clock import UTC, FixedClock
from jitsuin.ca.csr import verify_csr
from jitsuin.ca.generations import CAGeneration, create_generation
from jitsuin.ca.issuance import CAPolicy, Issuer
from jitsuin.ca.keys import KeyType, SoftwareSigner, generate_private_key
from jitsuin.ca.profiles import Profile
from jitsuin.ca.signing import draft_key
from jitsuin.ca.subject import VettedSubject
from jitsuin.conformance.documents import CertificateDoc, Expectations, LintContext
from jitsuin.conformance.findings import Finding, Severity
from jitsuin.conformance.gate import _blocking, _lint_one
from jitsuin.conformance.shapes import ShapeCache

DER = serialization.Encoding.DER
NOW = dt.datetime(2026, 11, 2, 9, 30, 15, tzinfo=UTC)
CA_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Jitsuin Lint Diff"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Jitsuin Lint Diff CA"),
    ]
)
# The development CA's suppressions: the verdict is compared with them applied, as the gate does.
SUPPRESSED = {"cabf.internal_domain_name": "loopback URLs"}


def _tuple(f: Finding) -> tuple[str, ...]:
    return (f.rule, f.severity.name, f.code, f.message, str(f.node_path), str(f.counts))


@dataclass
class Lab:
    """A CA, its policy and expectations, and the lint both ways."""

    generation: CAGeneration
    policy: CAPolicy
    expectations: Expectations
    shapes: ShapeCache = field(default_factory=ShapeCache)

    @classmethod
    def create(cls, key_type: KeyType = KeyType.ECDSA_P384) -> Lab:
        policy = CAPolicy(policy_arc="1.3.6.1.4.1.32473.78", pki_base_url="http://pki.example.com")
        signer = SoftwareSigner(generate_private_key(key_type))
        generation = create_generation(1, signer, CA_SUBJECT, FixedClock(NOW - dt.timedelta(30)))
        return cls(generation, policy, Expectations.from_policy(policy, CA_SUBJECT))

    def findings(self, der: bytes, profile: str | None, shapes: ShapeCache | None) -> list[Finding]:
        context = LintContext(
            expectations=self.expectations,
            profile=profile,
            suppress=dict(SUPPRESSED),
            draft=True,
            shapes=shapes,
        )
        return _lint_one(CertificateDoc(der, "draft"), [self.generation.certificate], context)


@dataclass
class Difference:
    der: bytes
    profile: str | None
    full: list[Finding]
    incremental: list[Finding]

    def __str__(self) -> str:
        whole = {_tuple(f) for f in self.full}
        part = {_tuple(f) for f in self.incremental}
        return (
            f"profile {self.profile}: only whole {sorted(whole - part)}; "
            f"only incremental {sorted(part - whole)}; DER {self.der.hex()}"
        )


# -- drafts


class _Capture:
    """A lint that keeps the draft instead of judging it."""

    def __init__(self) -> None:
        self.drafts: list[tuple[x509.Certificate, Profile]] = []

    def __call__(self, draft: x509.Certificate, profile: Profile) -> Sequence[str]:
        self.drafts.append((draft, profile))
        return []


LETTERS = string.ascii_letters + " .'-"
ODD = ["", " ", "  Taro", "Taro ", "-", ".", "&amp;", "<b>", "a@b.example", "漢字", "Ünïcode",
       "x" * 65, "x" * 200, "\t", "Robert'); DROP", "0", "JP"]  # fmt: skip
STRING_TYPES = [
    _ASN1Type.UTF8String,
    _ASN1Type.PrintableString,
    _ASN1Type.BMPString,
    _ASN1Type.T61String,
    _ASN1Type.VisibleString,
    _ASN1Type.IA5String,
    _ASN1Type.UniversalString,
]
DOMAINS = [
    *("example.com", "example.jp", "localhost", "internal", "a.b.c.example.org", "EXAMPLE.COM"),
    *("bad_name.example", "-x.example.com", "x" * 64 + ".example", "*.example.com"),
    *("example.com.", "xn--r8jz45g.jp", "", "1.2.3.4", "例え.jp", "a" * 250 + ".com", "x.onion"),
]
IPS = ["192.0.2.1", "10.0.0.1", "127.0.0.1", "2001:db8::1", "::1", "169.254.1.1", "8.8.8.8"]


class Generator:
    """Seeded drafts: jitsuin's own (random vetted subjects, names, keys, times), then mutated."""

    def __init__(self, lab: Lab, seed: int) -> None:
        self.lab = lab
        self.rng = random.Random(seed)
        self.ec_keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(6)]
        self.ec_keys += [ec.generate_private_key(ec.SECP384R1()) for _ in range(3)]
        self.ec_keys += [ec.generate_private_key(ec.SECP521R1())]
        self.rsa_keys = [rsa.generate_private_key(65537, bits) for bits in (2048, 2048, 3072)]
        self.rsa_keys += [rsa.generate_private_key(3, 2048), rsa.generate_private_key(65537, 1024)]  # noqa: S505 (a refused key)
        self.other_keys = [ed25519.Ed25519PrivateKey.generate()]
        self.csrs = {}
        for key in self.ec_keys[:9] + self.rsa_keys[:3]:
            csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
            alg = hashes.SHA256()
            self.csrs[id(key)] = verify_csr(csr.sign(key, alg).public_bytes(DER))

    # -- jitsuin's own drafts
    def issued(self) -> tuple[x509.Certificate, str]:
        rng = self.rng
        capture = _Capture()
        when = NOW + dt.timedelta(seconds=rng.randrange(0, 400 * 86400))
        issuer = Issuer(self.lab.generation, self.lab.policy, FixedClock(when), lint=capture)
        key = rng.choice(self.ec_keys[:9] + self.rsa_keys[:3])
        if rng.random() < 0.4:
            names = [self._domain() for _ in range(rng.randint(1, 3))]
            ips = [ipaddress.ip_address(rng.choice(IPS)) for _ in range(rng.randint(0, 1))]
            validity = dt.timedelta(days=rng.randint(1, 90))
            try:
                issuer.issue_tls_server(key.public_key(), names, ips, validity)
            except Exception:
                issuer.issue_tls_server(key.public_key(), ["www.example.com"], [], validity)
        else:
            profile = rng.choice(["general", "document-manager"])
            group, number = (
                ("member", f"AB-{rng.randint(1, 99999)}")
                if profile == "general"
                else ("document-information-manager", f"{rng.randint(100000, 999999)}")
            )
            subject = VettedSubject(
                subscriber_id=f"s{rng.randint(1, 10**6)}",
                family_name=self._word(),
                given_name=self._word(),
                email=f"{self._word().lower().replace(' ', '.')}@{rng.choice(DOMAINS[:5])}",
                qualification_group=group,
                qualification_number=number,
                country=rng.choice([None, "JP", "US"]),
            )
            try:
                issuer.issue(self.csrs[id(key)], subject, profile)
            except Exception:
                plain = VettedSubject("s1", "Yamada", "Taro", "taro@example.com", group, number)
                issuer.issue(self.csrs[id(key)], plain, profile)
        draft, profile_used = capture.drafts[-1]
        return draft, profile_used.name

    def _word(self) -> str:
        rng = self.rng
        word = "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(1, 12)))
        return word[0].upper() + word[1:].lower()

    def _domain(self) -> str:
        rng = self.rng
        if rng.random() < 0.7:
            return f"{self._word().lower()}.{rng.choice(['example.com', 'example.jp', 'test'])}"
        return rng.choice(DOMAINS)

    def _value(self) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return self._word()
        return rng.choice(ODD)

    # -- mutations of one slot (or of the encoding, or the shape)
    def mutate(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        mutations: list[Callable[[x509.Certificate], bytes]] = [
            self._serial,
            self._validity,
            self._subject_values,
            self._subject_types,
            self._san,
            self._key,
            self._ski,
            self._tampered_serial,
            self._tampered_time,
            self._shape,
        ]
        return rng.choice(mutations)(draft)

    def _rebuild(
        self,
        draft: x509.Certificate,
        *,
        subject: x509.Name | None = None,
        serial: int | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        public_key: Any = None,
        replace: dict[ObjectIdentifier, tuple[x509.ExtensionType, bool] | None] | None = None,
    ) -> bytes:
        replace = dict(replace or {})
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject if subject is not None else draft.subject)
            .issuer_name(draft.issuer)
            .serial_number(serial if serial is not None else draft.serial_number)
            .not_valid_before(not_before or draft.not_valid_before_utc)
            .not_valid_after(not_after or draft.not_valid_after_utc)
            .public_key(public_key or draft.public_key())
        )
        for ext in draft.extensions:
            if ext.oid in replace:
                swapped = replace.pop(ext.oid)
                if swapped is not None:
                    builder = builder.add_extension(*swapped)
            else:
                builder = builder.add_extension(ext.value, ext.critical)
        for extra in replace.values():
            if extra is not None:
                builder = builder.add_extension(*extra)
        signer = self.lab.generation.signer
        return builder.sign(
            draft_key(signer.key_type), signer.key_type.signature_hash
        ).public_bytes(DER)

    def _serial(self, draft: x509.Certificate) -> bytes:
        bits = self.rng.choice([1, 8, 63, 64, 65, 100, 158, 159])
        return self._rebuild(draft, serial=self.rng.getrandbits(bits) | 1)

    def _validity(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        start = NOW + dt.timedelta(days=rng.randint(-30000, 30000))
        span = dt.timedelta(
            days=rng.choice([-1, 0, 1, 90, 395, 396, 397, 824, 825, 826, 5000]),
            seconds=rng.choice([-1, 0, 1]),
        )
        start = max(start, dt.datetime(1950, 1, 2, tzinfo=UTC))
        end = min(start + span, dt.datetime(9999, 1, 1, tzinfo=UTC))
        return self._rebuild(draft, not_before=start, not_after=end)

    def _subject_values(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        attributes = []
        for attribute in draft.subject:
            value = attribute.value
            if rng.random() < 0.5:
                value = self._value()
                if attribute.oid == NameOID.COUNTRY_NAME:
                    value = rng.choice(["JP", "US", "XX", "jp", "J", "JPN", "ZZ", "UK"])
                if attribute.oid == NameOID.COMMON_NAME and rng.random() < 0.5:
                    parts = [a.value for a in draft.subject if a.oid != NameOID.COMMON_NAME]
                    value = " ".join(str(p) for p in rng.sample(parts, k=min(2, len(parts))))
            attributes.append(self._attribute(attribute.oid, str(value), attribute._type))
        if not attributes:
            return self._san(draft)
        return self._rebuild(draft, subject=x509.Name(attributes))

    def _attribute(self, oid: ObjectIdentifier, value: str, kind: Any) -> x509.NameAttribute:
        try:
            return x509.NameAttribute(oid, value, kind)
        except ValueError:  # cryptography refuses e.g. a country of other than 2 characters
            return x509.NameAttribute(oid, "Taro", _ASN1Type.UTF8String)

    def _subject_types(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        attributes = [
            self._attribute(
                a.oid,
                str(a.value),
                rng.choice(STRING_TYPES) if a.oid != NameOID.COUNTRY_NAME else a._type,
            )
            for a in draft.subject
        ]
        if rng.random() < 0.3:
            extra = rng.choice(
                [NameOID.EMAIL_ADDRESS, NameOID.PSEUDONYM, NameOID.ORGANIZATION_NAME]
            )
            attributes.append(self._attribute(extra, self._value() or "x", _ASN1Type.UTF8String))
        return self._rebuild(draft, subject=x509.Name(attributes))

    def _san(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        names: list[x509.GeneralName] = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            try:
                if kind < 0.35:
                    local = rng.choice(["taro", "Taro", "a.b", "", "x" * 70, "tarō", "a b"])
                    names.append(x509.RFC822Name(f"{local}@{self._domain()}"))
                elif kind < 0.7:
                    names.append(x509.DNSName(self._domain()))
                elif kind < 0.85:
                    names.append(x509.IPAddress(ipaddress.ip_address(rng.choice(IPS))))
                elif kind < 0.95:
                    names.append(x509.UniformResourceIdentifier(f"http://{self._domain()}/x"))
                else:
                    names.append(x509.RFC822Name(self._value() or "@"))
            except ValueError:
                names.append(x509.DNSName("www.example.com"))
        try:
            critical = draft.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).critical
        except x509.ExtensionNotFound:
            critical = False
        san = x509.SubjectAlternativeName(names)
        return self._rebuild(draft, replace={san.oid: (san, critical)})

    def _key(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        key = rng.choice(self.ec_keys + self.rsa_keys + self.other_keys)
        public = key.public_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(public)
        return self._rebuild(draft, public_key=public, replace={ski.oid: (ski, False)})

    def _ski(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        digest = rng.randbytes(rng.choice([1, 8, 20, 20, 32]))
        if rng.random() < 0.3:  # RFC 7093 method 1: SHA-256 of the key, leftmost 160 bits
            spki = draft.public_key().public_bytes(
                DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            digest = hashes.Hash(hashes.SHA256())
            digest.update(spki)
            digest = digest.finalize()[:20]
        ski = x509.SubjectKeyIdentifier(digest)
        return self._rebuild(draft, replace={ski.oid: (ski, False)})

    def _tamper(self, draft: x509.Certificate, edit: Callable[[Any], None]) -> bytes:
        parsed = asn1_x509.Certificate.load(draft.public_bytes(DER))
        tbs = parsed["tbs_certificate"]
        edit(tbs)
        tbs_der = tbs.dump(force=True)
        return asn1_x509.Certificate(
            {
                "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
                "signature_algorithm": parsed["signature_algorithm"],
                "signature_value": parsed["signature_value"].native,
            }
        ).dump()

    def _tampered_serial(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        choice = rng.random()
        if choice < 0.5:
            value = rng.choice([0, -1, -(2**64), 2**159, 2**160, 2**167 - 1, 1])

            def edit(tbs: Any) -> None:
                tbs["serial_number"] = value

            return self._tamper(draft, edit)
        # A non-minimal INTEGER (leading 00 bytes): BER, not DER.
        der = draft.public_bytes(DER)
        serial = asn1_core.Integer(draft.serial_number).dump()
        padded = bytes((0x02, serial[1] + 1, 0)) + serial[2:]
        return _relength(der, serial, padded)

    def _tampered_time(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        pick = rng.randrange(4)
        when = draft.not_valid_before_utc
        if pick == 0:  # GeneralizedTime before 2050 (RFC 5280 §4.1.2.5 wants UTCTime)
            value = asn1_x509.Time(name="general_time", value=asn1_core.GeneralizedTime(when))

            def edit(tbs: Any) -> None:
                tbs["validity"]["not_before"] = value

            return self._tamper(draft, edit)
        der = draft.public_bytes(DER)
        stamp = when.strftime("%y%m%d%H%M%S").encode()
        old = bytes((0x17, 13)) + stamp + b"Z"
        if old not in der:
            return der
        new = {
            1: bytes((0x17, 11)) + stamp[:10] + b"Z",  # no seconds
            2: bytes((0x17, 17)) + stamp + b"+0900",  # a local offset
            3: bytes((0x18, 15)) + when.strftime("%Y%m%d%H%M%S").encode() + b"Z",
        }[pick]
        return _relength(der, old, new)

    def _shape(self, draft: x509.Certificate) -> bytes:
        rng = self.rng
        extensions = list(draft.extensions)
        ext = rng.choice(extensions)
        if rng.random() < 0.5:
            return self._rebuild(draft, replace={ext.oid: (ext.value, not ext.critical)})
        return self._rebuild(draft, replace={ext.oid: None})

    def drafts(self, count: int, mutated: float = 0.8) -> Iterator[tuple[bytes, str]]:
        """``count`` (DER, profile): jitsuin's own drafts and, with probability ``mutated``,
        one to three mutations of one (each a rebuild of the previous)."""
        for _ in range(count):
            draft, profile = self.issued()
            der = draft.public_bytes(DER)
            if self.rng.random() < mutated:
                for _ in range(self.rng.randint(1, 3)):
                    try:
                        der = self.mutate(x509.load_der_x509_certificate(der))
                    except ValueError:  # not loadable any more: keep what we have
                        break
            yield der, profile


def _relength(der: bytes, old: bytes, new: bytes) -> bytes:
    """``der`` with the TLV ``old`` (inside the TBS) replaced by ``new``, the lengths of the
    TBS and the certificate fixed (both use two-byte long-form lengths here)."""
    if der[1] != 0x82 or der[5] != 0x82:
        return der
    grow = len(new) - len(old)
    at = der.index(old)
    body = der[:at] + new + der[at + len(old) :]
    # certificate: 30 82 LL LL; TBS: 30 82 LL LL at offset 4
    outer = int.from_bytes(body[2:4], "big") + grow
    inner = int.from_bytes(body[6:8], "big") + grow
    return body[:2] + outer.to_bytes(2, "big") + body[4:6] + inner.to_bytes(2, "big") + body[8:]


@dataclass
class Tally:
    drafts: int = 0
    unreadable: int = 0
    blocked: int = 0
    differences: list[Difference] = field(default_factory=list)
    full_seconds: float = 0.0
    incremental_seconds: float = 0.0


def run(lab: Lab, drafts: Iterable[tuple[bytes, str | None]]) -> Tally:
    """Lint each draft both ways; a draft neither way can read is counted, not compared."""
    tally = Tally()
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)  # serials of 0, on purpose
    for der, profile in drafts:
        try:
            started = time.perf_counter()
            full = lab.findings(der, profile, None)
            middle = time.perf_counter()
            incremental = lab.findings(der, profile, lab.shapes)
            tally.incremental_seconds += time.perf_counter() - middle
            tally.full_seconds += middle - started
        except ValueError:
            tally.unreadable += 1
            continue
        tally.drafts += 1
        if _blocking(full, Severity.ERROR):
            tally.blocked += 1
        if sorted(map(_tuple, full)) != sorted(map(_tuple, incremental)):
            tally.differences.append(Difference(der, profile, full, incremental))
    return tally

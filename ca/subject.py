"""The vetted subject record: every subject field of a certificate comes from here, never from
the CSR (docs/flow.md, step 10). ``subject_name`` and ``vetted_from_subject`` are the one matched
pair between the record and a certificate's subject; ``csr_contradiction`` checks what a CSR
asks for against the same mapping."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from jitsuin.ca.profiles import NameOrder, QualificationGroup

# docs/conformance.md S-10: romanized personal names; X-11: upper bounds of RFC 5280 Appendix A.
_ROMANIZED = re.compile(r"[A-Za-z][A-Za-z .'-]*")
_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"
)
_COUNTRY = re.compile(r"[A-Z]{2}")
UB_NAME = 64  # ub-common-name, ub-title, ub-serial-number (RFC 5280 App. A; X.520)
UB_EMAIL = 255  # ub-emailaddress-length


@dataclass(frozen=True, slots=True)
class VettedSubject:
    subscriber_id: str  # the person (application / enrollment ID): keys are never reused per id
    family_name: str
    given_name: str
    email: str
    qualification_group: str
    qualification_number: str
    country: str | None = None

    def problems(self) -> list[str]:
        """Every reason this record cannot go into a certificate, in field order."""
        out: list[str] = []
        if not self.subscriber_id:
            out.append("subscriber_id is empty")
        for label, value in (("family_name", self.family_name), ("given_name", self.given_name)):
            if not _ROMANIZED.fullmatch(value):
                out.append(
                    f"{label} {value!r} is not a romanized name (letters, space, . ' - only)"
                )
            elif len(value) > UB_NAME:
                out.append(f"{label} is longer than {UB_NAME} characters")
        if len(f"{self.given_name} {self.family_name}") > UB_NAME:
            out.append(f"the common name would be longer than {UB_NAME} characters")
        # SEED-R6: the e-mail address is written in lower case.
        if self.email != self.email.lower():
            out.append(f"email {self.email!r} is not lower-case (SEED-R6)")
        elif not _EMAIL.fullmatch(self.email):
            out.append(f"email {self.email!r} is not a valid address")
        elif len(self.email) > UB_EMAIL:
            out.append(f"email is longer than {UB_EMAIL} characters")
        if not self.qualification_number:
            out.append("qualification_number is empty")
        elif len(self.qualification_number) > UB_NAME:
            out.append(f"qualification_number is longer than {UB_NAME} characters")
        if self.country is not None and not _COUNTRY.fullmatch(self.country):
            out.append(f"country {self.country!r} is not an ISO 3166 two-letter code")
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> VettedSubject:
        """Build from JSON; ``ValueError`` lists every missing, unknown or mistyped field."""
        names = [f.name for f in fields(cls)]
        errors = [f"unknown field {k!r}" for k in data if k not in names]
        values: dict[str, str | None] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if value is None:
                if f.name != "country":
                    errors.append(f"missing field {f.name!r}")
                values[f.name] = None
            elif not isinstance(value, str):
                errors.append(f"field {f.name!r} must be a string")
            else:
                values[f.name] = value
        if errors:
            raise ValueError("; ".join(errors))
        return cls(**values)  # type: ignore[arg-type]


# Which subject attribute carries which field of the record (SEED-R4; S/MIME BR 7.1.4.2.2):
# CN, givenName, surname, title (qualification info 1: the group's title), serialNumber
# (qualification info 2), optional C. No O, OU or organizationIdentifier.
_NAMED_FIELDS = (
    (NameOID.SURNAME, "family_name"),
    (NameOID.GIVEN_NAME, "given_name"),
)


def subject_name(subject: VettedSubject, group: QualificationGroup, order: NameOrder) -> x509.Name:
    """The certificate subject made from the vetted record; ``vetted_from_subject`` reads it
    back."""
    attributes = (
        [x509.NameAttribute(NameOID.COUNTRY_NAME, subject.country)] if subject.country else []
    )
    attributes += [x509.NameAttribute(oid, getattr(subject, key)) for oid, key in _NAMED_FIELDS]
    attributes += [
        x509.NameAttribute(NameOID.TITLE, group.title),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, subject.qualification_number),
        x509.NameAttribute(
            NameOID.COMMON_NAME, order.common_name(subject.given_name, subject.family_name)
        ),
    ]
    return x509.Name(attributes)


def vetted_from_subject(
    name: x509.Name, email: str, groups: Iterable[QualificationGroup]
) -> VettedSubject:
    """The vetted record a subject made by ``subject_name`` was made from. The person is known by
    the vetted e-mail address (the certificate's subjectAltName); the group by its title, or the
    title itself when no configured group has it any more."""

    def one(oid: x509.ObjectIdentifier) -> str:
        values = name.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    title = one(NameOID.TITLE)
    matching = [g.id for g in groups if g.title == title]
    return VettedSubject(
        subscriber_id=email,
        email=email,
        qualification_group=matching[0] if matching else title,
        qualification_number=one(NameOID.SERIAL_NUMBER),
        country=one(NameOID.COUNTRY_NAME) or None,
        **{key: one(oid) for oid, key in _NAMED_FIELDS},
    )


def csr_contradiction(
    requested: x509.Name, emails: Iterable[str], subject: VettedSubject
) -> str | None:
    """What a CSR says about the person must agree with the vetted record; it may say nothing
    (RFC 7030 §4.2.1 lets the CA fill in the subject; it must not silently contradict it). The
    common name is accepted in either name order, since the CSR's author cannot know the CA's."""
    for email in emails:
        if email.lower() != subject.email:
            return f"the CSR asks for e-mail {email!r}, but the vetted address is {subject.email!r}"
    expected: dict[x509.ObjectIdentifier, set[str]] = {
        NameOID.EMAIL_ADDRESS: {subject.email},
        **{oid: {getattr(subject, key)} for oid, key in _NAMED_FIELDS},
        NameOID.COMMON_NAME: {
            order.common_name(subject.given_name, subject.family_name) for order in NameOrder
        },
    }
    for attribute in requested:
        allowed = expected.get(attribute.oid)
        value = str(attribute.value)
        if allowed is not None and value not in allowed and value.lower() not in allowed:
            return f"the CSR subject {attribute.oid._name} {value!r} contradicts the vetted record"
    return None

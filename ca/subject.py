"""The vetted subject record: every subject field of a certificate comes from here, never from
the CSR (docs/flow.md, step 10)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

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

"""The one mapping between the vetted record and a certificate subject (ca/subject.py): what
``subject_name`` writes, ``vetted_from_subject`` reads back, in either name order, and a CSR is
held to the same fields."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from jitsuin.ca.profiles import DEFAULT_GROUPS, NameOrder
from jitsuin.ca.subject import (
    VettedSubject,
    csr_contradiction,
    subject_name,
    vetted_from_subject,
)

MEMBER = DEFAULT_GROUPS["member"]
RECORD = VettedSubject(
    subscriber_id="hanako.yamada@example.jp",
    family_name="Yamada",
    given_name="Hanako",
    email="hanako.yamada@example.jp",
    qualification_group="member",
    qualification_number="M-12345",
)


@pytest.mark.parametrize("order", list(NameOrder))
@pytest.mark.parametrize("country", [None, "JP"])
def test_the_subject_reads_back_as_the_record(order, country):
    record = VettedSubject(**{**_fields(RECORD), "country": country})
    name = subject_name(record, MEMBER, order)
    assert vetted_from_subject(name, record.email, DEFAULT_GROUPS.values()) == record
    common_name = name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == order.common_name("Hanako", "Yamada")
    # SEED-R4: the group goes in as its title, the number as serialNumber.
    assert name.get_attributes_for_oid(NameOID.TITLE)[0].value == "Registered Member"
    assert name.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "M-12345"


def test_a_title_no_group_has_any_more_is_kept_as_the_group():
    name = subject_name(RECORD, MEMBER, NameOrder.GIVEN_FAMILY)
    assert vetted_from_subject(name, RECORD.email, []).qualification_group == "Registered Member"


def _fields(subject: VettedSubject) -> dict[str, object]:
    return {f: getattr(subject, f) for f in subject.__slots__}


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


@pytest.mark.parametrize(
    "requested",
    [
        _name(),
        _name((NameOID.COMMON_NAME, "Hanako Yamada")),
        _name((NameOID.COMMON_NAME, "Yamada Hanako")),  # either order: the CSR cannot know
        _name((NameOID.SURNAME, "Yamada"), (NameOID.GIVEN_NAME, "Hanako")),
        _name((NameOID.EMAIL_ADDRESS, "Hanako.Yamada@example.jp")),  # an address: any case
        _name((NameOID.ORGANIZATION_NAME, "anything")),  # not about the person: ignored
    ],
)
def test_a_csr_that_agrees_or_says_nothing(requested):
    assert csr_contradiction(requested, ["Hanako.Yamada@example.jp"], RECORD) is None


@pytest.mark.parametrize(
    ("requested", "emails", "words"),
    [
        (_name((NameOID.SURNAME, "Tanaka")), [], "surname 'Tanaka'"),
        (_name((NameOID.GIVEN_NAME, "Taro")), [], "givenName 'Taro'"),
        (_name((NameOID.COMMON_NAME, "Taro Tanaka")), [], "commonName 'Taro Tanaka'"),
        (_name((NameOID.SURNAME, "YAMADA")), [], "surname 'YAMADA'"),  # names: as vetted
        (_name(), ["other@example.jp"], "e-mail 'other@example.jp'"),
    ],
)
def test_a_csr_that_contradicts_the_record(requested, emails, words):
    assert words in (csr_contradiction(requested, emails, RECORD) or "")

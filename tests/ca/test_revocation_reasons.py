"""RFC 5280 §5.3.1 revocation reasons, said once (ca/revocation.py ``Reason``): who may give
which, and what a CRL entry or OCSP answer carries."""

from __future__ import annotations

from collections.abc import Callable

from cryptography import x509

from jitsuin.ca.revocation import Reason


def names(predicate: Callable[[Reason], bool]) -> set[str]:
    return {r.value for r in Reason if predicate(r)}


def test_the_codes_and_names_are_rfc_5280s():
    assert [(r.code, r.value) for r in Reason] == [
        (0, "unspecified"),
        (1, "keyCompromise"),
        (2, "cACompromise"),
        (3, "affiliationChanged"),
        (4, "superseded"),
        (5, "cessationOfOperation"),
        (6, "certificateHold"),
        (8, "removeFromCRL"),
        (9, "privilegeWithdrawn"),
        (10, "aACompromise"),
    ]
    assert all(r.flag is x509.ReasonFlags(r.value) for r in Reason)
    assert Reason.named("superseded") is Reason.SUPERSEDED
    assert Reason.named("onHold") is None and Reason.named(None) is None


def test_who_may_give_which_reason():
    operator = {
        "keyCompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "privilegeWithdrawn",
    }
    # RFC 8555 §7.6: an ACME subscriber may also give none (unspecified), never cACompromise.
    assert names(lambda r: r.subscriber_may_give) == operator | {"unspecified"}
    # S/MIME BR 7.2.2: an RA operator names the reason.
    assert names(lambda r: r.operator_may_give) == operator
    # The CA records those and cACompromise; never certificateHold (S/MIME BR 4.9.13).
    assert names(lambda r: r.recorded) == operator | {"unspecified", "cACompromise"}


def test_what_a_crl_entry_carries():
    # unspecified is published without a reasonCode (docs/conformance.md, R-03).
    assert Reason.UNSPECIFIED.reason_code is None
    assert Reason.CERTIFICATE_HOLD.reason_code is None
    assert Reason.PRIVILEGE_WITHDRAWN.reason_code == 9
    assert names(lambda r: r.allowed_on_crl(ca_certificates=False)) == {
        "keyCompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "privilegeWithdrawn",
    }
    assert names(lambda r: r.allowed_on_crl(ca_certificates=True)) == {
        "keyCompromise",
        "cACompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
    }

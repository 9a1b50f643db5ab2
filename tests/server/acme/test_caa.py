"""CAA without a server: the issue-value parser (RFC 8659 §4.2), the RFC 8657 parameter check
(jitsuin.protocol.acme.caa) and the validation authority's decision over a record set, fed
dnspython rdata as a lookup returns it. The same rules against the running server are in
test_tls_server.py (CAA section)."""

from __future__ import annotations

import dns.rdata
import pytest

from jitsuin.protocol.acme.caa import IssueValue, parameter_refusal, parse_issue_value
from jitsuin.protocol.acme.problems import AcmeError, ErrorType
from jitsuin.server.acme.va import ValidationAuthority
from jitsuin.server.config import AcmeConfig

ME = "https://ca.example/acme/acct/1"


# -- the parser (RFC 8659 §4.2) -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "domain", "parameters"),
    [
        ("ca.example", "ca.example", ()),  # no parameters, no ";"
        ("ca.example;", "ca.example", ()),  # ";" with no parameters after it
        (" \tca.example \t; \t", "ca.example", ()),  # *WSP everywhere the grammar has it
        (";", None, ()),  # names no issuer: authorizes nobody
        ("", None, ()),
        ("; accounturi=x", None, (("accounturi", "x"),)),
        ("ca.example; a=b", "ca.example", (("a", "b"),)),
        ("ca.example;a=b;c=d", "ca.example", (("a", "b"), ("c", "d"))),
        ("ca.example ;\ta = b \t;  c=d  ", "ca.example", (("a", "b"), ("c", "d"))),
        ("ca.example; accounturi=", "ca.example", (("accounturi", ""),)),  # empty value
        ("ca.example; k=a=b,c:d", "ca.example", (("k", "a=b,c:d"),)),  # "=" in a value
        ("ca-1.example; x--y=1", "ca-1.example", (("x--y", "1"),)),
        (
            "ca.example; accounturi=https://ca.example/acme/acct/1; validationmethods=dns-01",
            "ca.example",
            (("accounturi", ME), ("validationmethods", "dns-01")),
        ),
    ],
)
def test_parse_issue_value(text, domain, parameters):
    assert parse_issue_value(text) == IssueValue(domain, parameters)


@pytest.mark.parametrize(
    "text",
    [
        "ca example",  # WSP inside the issuer-domain-name
        "ca.example.",  # a trailing dot is no label
        "-ca.example",
        "ca_x.example",
        "ca.example; a",  # no "="
        "ca.example; =b",  # no tag
        "ca.example; -a=b",
        "ca.example; a=b c",  # WSP inside a value
        "ca.example; a=b;",  # ";" with nothing after it, after a parameter
        "ca.example; a=b;;c=d",
        "ca.example; a=é",  # outside %x21-7E
    ],
)
def test_parse_issue_value_refuses_what_the_grammar_does_not_allow(text):
    with pytest.raises(ValueError):
        parse_issue_value(text)


def test_parameter_tags_are_matched_without_case():
    assert parse_issue_value("ca.example; AccountURI=x").values("accounturi") == ["x"]


# -- the parameters (RFC 8657) --------------------------------------------------------------------
def refusal(text: str, account: str | None = ME, method: str | None = "http-01") -> str | None:
    return parameter_refusal(parse_issue_value(text), account, method)


def test_no_parameters_and_unknown_ones_authorize():
    assert refusal("ca.example") is None
    assert refusal("ca.example; policy=ev; x-y=") is None  # RFC 8659 §4.2: unknown ignored
    assert refusal("ca.example", account=None, method=None) is None


def test_accounturi():
    assert refusal(f"ca.example; accounturi={ME}") is None
    other = refusal("ca.example; accounturi=https://ca.example/acme/acct/2")
    assert other is not None and "accounturi=https://ca.example/acme/acct/2" in other
    assert ME in other and "RFC 8657 §3" in other
    assert refusal(f"ca.example; accounturi={ME}/") is not None  # compared exactly
    assert refusal("ca.example; accounturi=") is not None  # empty: identifies no account
    assert refusal(f"ca.example; accounturi={ME}", account=None) is not None  # §3: no account
    twice = refusal(f"ca.example; accounturi={ME}; accounturi={ME}")  # §3: unsatisfiable
    assert twice is not None and "more than one accounturi" in twice
    assert refusal(f"ca.example; ACCOUNTURI={ME}x") is not None


def test_validationmethods():
    assert refusal("ca.example; validationmethods=http-01") is None
    assert refusal("ca.example; validationmethods=dns-01,http-01,xyz-01") is None
    wrong = refusal("ca.example; validationmethods=dns-01")
    assert wrong is not None and "validationmethods=dns-01" in wrong and "http-01" in wrong
    assert refusal("ca.example; validationmethods=dns-01", method="dns-01") is None
    assert refusal("ca.example; validationmethods=") is not None  # an empty list allows none
    assert refusal("ca.example; validationmethods=http-01,,dns-01") is not None  # malformed
    assert refusal("ca.example; validationmethods=http_01") is not None
    assert refusal("ca.example; validationmethods=http-01", method=None) is not None
    twice = refusal("ca.example; validationmethods=http-01; validationmethods=http-01")
    assert twice is not None and "more than one validationmethods" in twice


def test_both_parameters_must_allow():
    both = f"ca.example; accounturi={ME}; validationmethods=dns-01"
    assert refusal(both, method="dns-01") is None
    assert "validationmethods" in refusal(both, method="http-01")
    assert "accounturi" in refusal(both, account=ME + "0", method="dns-01")


# -- the validation authority's decision over a record set ----------------------------------------
def va() -> ValidationAuthority:
    return ValidationAuthority(AcmeConfig(caa_identities=("ca.example",)))


def records(*texts: str) -> list[object]:
    return [dns.rdata.from_text("IN", "CAA", text) for text in texts]


def decide(*texts: str, wildcard: bool = False, account=ME, method="http-01") -> None:
    va()._caa_permits("example.org", records(*texts), wildcard, account, method)


def refused(*texts: str, **kw) -> str:
    with pytest.raises(AcmeError) as caught:
        decide(*texts, **kw)
    assert caught.value.type == ErrorType.CAA
    return caught.value.detail


def test_records_are_alternatives():
    decide(
        '0 issue "ca.example; accounturi=https://ca.example/acme/acct/2"',
        f'0 issue "ca.example; accounturi={ME}"',
    )
    decide('0 issue "ca.example; validationmethods=dns-01"', '0 issue "ca.example"')


def test_the_refusal_names_each_record_and_parameter():
    detail = refused(
        '0 issue "other.example"',
        '0 issue "ca.example; accounturi=https://ca.example/acme/acct/2"',
        '0 issue "ca.example; validationmethods=dns-01,tls-alpn-01"',
    )
    assert detail.startswith("CAA at example.org: ")
    assert 'issue "ca.example; accounturi=https://ca.example/acme/acct/2"' in detail
    assert 'issue "ca.example; validationmethods=dns-01,tls-alpn-01"' in detail
    assert "does not include http-01" in detail
    assert "other.example" not in detail  # another CA's record is no concern of this one


def test_parameters_of_another_cas_record_do_not_matter():
    detail = refused(f'0 issue "other.example; accounturi={ME}"')
    assert "do not name this CA" in detail


def test_issuewild_parameters_for_a_wildcard():
    wild = ('0 issue "ca.example"', '0 issuewild "ca.example; validationmethods=dns-01"')
    decide(*wild, wildcard=True, method="dns-01")
    assert "issuewild" in refused(*wild, wildcard=True, method="http-01")
    decide(*wild, wildcard=False, method="http-01")  # RFC 8659 §4.3: issue for the base name


def test_a_malformed_record_for_this_ca_authorizes_nothing():
    detail = refused('0 issue "ca.example; accounturi"')
    assert 'issue "ca.example; accounturi" is malformed' in detail


def test_a_caller_without_account_or_method():
    va()._caa_permits("example.org", records('0 issue "ca.example"'), False)
    with pytest.raises(AcmeError):
        va()._caa_permits("example.org", records(f'0 issue "ca.example; accounturi={ME}"'), False)

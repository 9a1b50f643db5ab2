"""CAA ``issue``/``issuewild`` property values (RFC 8659 §4.2) and the parameters RFC 8657 defines
for ACME CAs (``accounturi`` §3, ``validationmethods`` §4), sans-IO: the DNS lookup and the
choice of the relevant RRset stay with the validation authority.

dnspython's CAA rdata carries flags, tag and the value as bytes only; the value's inner
structure (issuer-domain-name, then ``;``-separated ``tag=value`` parameters) is parsed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACCOUNTURI = "accounturi"  # RFC 8657 §3
VALIDATIONMETHODS = "validationmethods"  # RFC 8657 §4

# RFC 8659 §4.2 (with erratum 7139, which allows WSP around "="):
#   issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
#   issuer-domain-name = label *("." label)
#   label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
#   parameters = (parameter *WSP ";" *WSP parameters) / parameter
#   parameter = parameter-tag *WSP "=" *WSP parameter-value
#   parameter-tag = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
#   parameter-value = *(%x21-3A / %x3C-7E)
# WSP is SP / HTAB (RFC 5234). No production but the separator holds ";", so splitting on it
# first and matching each piece is exact.
_WSP = " \t"
_LABEL = r"[A-Za-z0-9](?:-*[A-Za-z0-9])*"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PARAMETER = re.compile(rf"[ \t]*({_LABEL})[ \t]*=[ \t]*([\x21-\x3a\x3c-\x7e]*)[ \t]*")
# RFC 8657 §4: value = [*(label ",") label]; label = 1*(ALPHA / DIGIT / "-")
_METHODS = re.compile(r"(?:[A-Za-z0-9-]+(?:,[A-Za-z0-9-]+)*)?")


@dataclass(frozen=True, slots=True)
class IssueValue:
    """A parsed issue/issuewild value. ``issuer_domain_name`` is None for a value that names no
    issuer (``";"``, RFC 8659 §4.2: authorizes no Issuer); ``parameters`` keep the order and
    the case they were written in."""

    issuer_domain_name: str | None
    parameters: tuple[tuple[str, str], ...] = ()

    def values(self, tag: str) -> list[str]:
        """Every value of the parameter ``tag``. RFC 8659 leaves the case of parameter tags
        open; they are matched without regard to case so that ``AccountURI=`` restricts as
        ``accounturi=`` does rather than being ignored as unknown."""
        return [value for name, value in self.parameters if name.lower() == tag]


def parse_issue_value(text: str) -> IssueValue:
    """Parse an issue/issuewild value (RFC 8659 §4.2); ValueError saying what does not follow
    the grammar."""
    domain_part, separator, rest = text.partition(";")
    domain = domain_part.strip(_WSP)
    if domain and not _DOMAIN.fullmatch(domain):
        raise ValueError(f"{domain!r} is not an issuer-domain-name")
    if not separator or not rest.strip(_WSP):
        return IssueValue(domain or None)  # no parameters ("ca.example" or "ca.example;")
    parameters = []
    for piece in rest.split(";"):
        match = _PARAMETER.fullmatch(piece)
        if match is None:
            if not piece.strip(_WSP):
                raise ValueError("a ';' is followed by no parameter")
            raise ValueError(f"{piece.strip(_WSP)!r} is not a parameter (tag=value)")
        parameters.append((match.group(1), match.group(2)))
    return IssueValue(domain or None, tuple(parameters))


def parameter_refusal(value: IssueValue, account_uri: str | None, method: str | None) -> str | None:
    """Why the RFC 8657 parameters of a record naming this CA keep it from authorizing a request
    by the account ``account_uri`` validated with the challenge type ``method``; None when they
    let it authorize. Any other parameter is ignored (RFC 8659 §4.2 leaves parameters to each
    Issuer; this one defines only RFC 8657's)."""
    # RFC 8657 §3: a property without accounturi matches any account; one with several is
    # unsatisfiable; otherwise it authorizes only the account the URI identifies, and nothing
    # when the request has no account URI.
    uris = value.values(ACCOUNTURI)
    if len(uris) > 1:
        return "it has more than one accounturi parameter (RFC 8657 §3: unsatisfiable)"
    if uris:
        if account_uri is None:
            return "accounturi restricts it to an ACME account and this request has none"
        if uris[0] != account_uri:
            return (
                f"accounturi={uris[0]} is not the requesting account ({account_uri}) (RFC 8657 §3)"
            )
    # RFC 8657 §4: authorizes only if the validation method is listed. A malformed list, or
    # more than one validationmethods parameter, is unsatisfiable (as Let's Encrypt treats it).
    lists = value.values(VALIDATIONMETHODS)
    if len(lists) > 1:
        return "it has more than one validationmethods parameter (RFC 8657 §4: unsatisfiable)"
    if lists:
        if not _METHODS.fullmatch(lists[0]):
            return f"validationmethods={lists[0]} is not a comma-separated list of methods"
        methods = lists[0].split(",") if lists[0] else []
        if method is None:
            return "validationmethods restricts it to validation methods and none was used"
        if method not in methods:
            return (
                f"validationmethods={lists[0]} does not include {method}, the challenge type "
                "used to validate (RFC 8657 §4)"
            )
    return None

"""Untrusted input, read one way everywhere: JSON request bodies (ACME JWS and payloads, the RA
and applicant APIs) and decimal numbers in query strings and paths. Sans-IO: text in, Python
values or one typed error (``InputError``) out; each edge maps that error to its protocol's own
refusal (RFC 8555 ``malformed`` for ACME, an RFC 9457 problem for the RA and applicant APIs).

The library ``json`` module does the parsing. What it lacks is done around it:
- the size is checked before anything is read;
- the nesting depth is counted without recursion before parsing, so a body of 60,000 ``[`` is
  refused in one linear scan instead of reaching the parser's recursion limit (RecursionError
  near 1,000 levels, in the parser or in any recursive walk of its result);
- integers are handed to ``parse_int`` as their digit string, so a long one is refused before
  ``int()`` spends quadratic time on it (or raises ValueError past Python's 4300-digit limit);
- ``NaN``, ``Infinity`` and numbers that overflow a float are refused (RFC 8259 §6 has none);
- duplicate member names are refused (RFC 7493 §2.3; RFC 7515 §5.2 for JOSE headers);
- every string, member names included, is checked for length, for unpaired surrogates (RFC 7493
  §2.1: they cannot be encoded as UTF-8, so no store or hash could take them) and for U+0000
  (which PostgreSQL text cannot hold).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A string literal, its closing quote optional so that an unterminated one ends the scan in
# linear time (the parser refuses it afterwards).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_ASCII_DECIMAL = re.compile(r"[0-9]+")


class InputError(ValueError):
    """Untrusted input that is refused; ``message`` says why, in words fit for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    """What one JSON document may hold. The defaults fit every body jitsuin takes: the deepest
    (an ACME newOrder, an RA review) nests 3 levels, the longest string is a PEM certificate."""

    max_bytes: int = 64 * 1024
    max_depth: int = 10
    # 18 digits: every integer read fits a signed 64-bit column (|n| < 10**18 < 2**63).
    max_integer_digits: int = 18
    max_string: int = 64 * 1024  # characters, member names included


DEFAULT_LIMITS = Limits()

JSON_TYPES: Mapping[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
}


def _depth(text: str, limit: int) -> None:
    """Refuse nesting deeper than ``limit``, by counting brackets outside strings (no
    recursion, linear in the text). An unbalanced or broken text is left for the parser."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                raise InputError(f"the JSON nests deeper than {limit} levels")
        else:
            depth -= 1


def _no_constants(name: str) -> Any:
    raise InputError(f"{name} is not a JSON number (RFC 8259 §6)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise InputError(f"member {_quoted(name)} appears twice (RFC 7493 §2.3)")
            seen.add(name)
    return found


def _quoted(text: str, limit: int = 40) -> str:
    """A client's string, safe to put in a message: escaped, and cut to ``limit`` characters."""
    shown = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    return repr(shown) + ("..." if len(text) > limit else "")


def _check_strings(value: Any, limits: Limits) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            strings = list(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            strings = []
            stack.extend(item)
        elif isinstance(item, str):
            strings = [item]
        else:
            continue
        for text in strings:
            if len(text) > limits.max_string:
                raise InputError(f"a string is longer than {limits.max_string} characters")
            if _BAD_CHARACTER.search(text):
                raise InputError("a string holds U+0000 or an unpaired surrogate (RFC 7493 §2.1)")


def read_json(data: bytes | str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """One JSON text (RFC 8259) within ``limits``, as Python values; InputError otherwise.
    Bytes must be UTF-8 (RFC 8259 §8.1), without a byte order mark."""
    if len(data) > limits.max_bytes:
        raise InputError(f"the JSON is larger than {limits.max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("the JSON is not UTF-8 (RFC 8259 §8.1)") from None
    else:
        text = data
    _depth(text, limits.max_depth)

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > limits.max_integer_digits:
            raise InputError(f"an integer has more than {limits.max_integer_digits} digits")
        return int(digits)

    def parse_float(literal: str) -> float:
        if len(literal) > limits.max_integer_digits + 16:
            raise InputError("a number is written with too many digits")
        value = float(literal)
        if not math.isfinite(value):
            raise InputError(f"the number {_quoted(literal)} is out of range")
        return value

    try:
        value = json.loads(
            text,
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=_no_constants,
            object_pairs_hook=_no_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    _check_strings(value, limits)
    return value


def kind_of(value: Any) -> str:
    """The JSON type of ``value`` in words ("an array"), for messages."""
    if value is None:
        return "null"
    return JSON_TYPES.get(type(value), type(value).__name__)


def member(data: Mapping[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    """``data[name]`` if it is of JSON type ``kind`` (bool is not an integer); None if it is
    absent and not ``required``; InputError otherwise."""
    if name not in data:
        if required:
            raise InputError(f"member {name!r} is missing")
        return None
    value = data[name]
    if type(value) is not kind and not (kind is float and type(value) is int):
        raise InputError(f"member {name!r} must be {JSON_TYPES[kind]}, not {kind_of(value)}")
    return value


def decimal(text: str, name: str, maximum: int) -> int:
    """A non-negative integer written in ASCII digits only (``int()`` also takes other Unicode
    digits, and str.isdigit() even superscripts, which int() then refuses), at most
    ``maximum``; InputError otherwise. For query parameters and path segments."""
    significant = text.lstrip("0") or "0"  # leading zeros are allowed and cost nothing
    if not _ASCII_DECIMAL.fullmatch(text) or len(significant) > len(str(maximum)):
        raise InputError(f"{name} must be a number 0..{maximum} in ASCII digits")
    value = int(significant)
    if value > maximum:
        raise InputError(f"{name} must be a number 0..{maximum} in ASCII digits")
    return value

"""Refuse the Individual Number (My Number) wherever it appears (SEED-R8).

The number is 11 digits plus a check digit (Ministerial Ordinance on the Individual Number Act,
Art. 5): with P(n) the n-th digit counted from the right of the first 11 and Q(n) = n + 1 for
n <= 6 and n - 5 for n >= 7, the check digit is 0 when sum(P(n) Q(n)) mod 11 <= 1 and
11 - (sum mod 11) otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u30fc\uff0d]")
_TWELVE_DIGITS = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def check_digit(first_eleven: str) -> int:
    total = 0
    for n, digit in enumerate(reversed(first_eleven), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(digit) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_individual_number(digits: str) -> bool:
    return len(digits) == 12 and digits.isdigit() and check_digit(digits[:11]) == int(digits[11])


def contains_individual_number(text: str) -> bool:
    compact = _SEPARATORS.sub("", text.translate(_FULLWIDTH))
    return any(is_individual_number(m) for m in _TWELVE_DIGITS.findall(compact))


def fields_with_individual_number(data: Any, path: str = "") -> list[str]:
    """The JSON paths of every string value that holds a valid Individual Number."""
    found: list[str] = []
    items: Iterable[tuple[str, Any]]
    if isinstance(data, Mapping):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in data.items())
    elif isinstance(data, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(data))
    else:
        if isinstance(data, str | int) and contains_individual_number(str(data)):
            found.append(path or "(value)")
        return found
    for sub_path, value in items:
        found.extend(fields_with_individual_number(value, sub_path))
    return found

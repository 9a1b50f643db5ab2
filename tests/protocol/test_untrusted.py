"""The one reader of untrusted JSON and numbers (jitsuin.protocol.untrusted), sans-IO: every limit
refuses with InputError, never with RecursionError, a bare ValueError or a slow parse."""

from __future__ import annotations

import json

import pytest

from jitsuin.protocol.untrusted import (
    DEFAULT_LIMITS,
    InputError,
    Limits,
    decimal,
    member,
    read_json,
)

BIG = Limits(max_bytes=10_000_000)


def test_ordinary_json_is_read() -> None:
    text = '{"a": [1, -2, 3.5, true, null, "日本語 😀"], "b": {"c": {}}}'
    assert read_json(text.encode()) == json.loads(text)


@pytest.mark.parametrize("count", [1_000, 100_000, 1_000_000])
def test_deep_nesting_is_refused_without_recursion(count: int) -> None:
    # Python's json raises RecursionError near 1,000 levels; the scan refuses first.
    for opener in (b"[", b'{"a":'):
        with pytest.raises(InputError, match="deeper than"):
            read_json(opener * count, BIG)


def test_the_depth_limit_is_exact_and_ignores_brackets_in_strings() -> None:
    depth = DEFAULT_LIMITS.max_depth
    assert read_json("[" * depth + "]" * depth) is not None
    with pytest.raises(InputError, match="deeper than"):
        read_json("[" * (depth + 1) + "]" * (depth + 1))
    assert read_json(json.dumps({"a": "[" * 1000, "b": '\\"{{{{'})) == {
        "a": "[" * 1000,
        "b": '\\"{{{{',
    }


def test_an_unterminated_string_of_escaped_quotes_is_refused_quickly() -> None:
    # Each quote could start a string literal; the scan stays linear.
    with pytest.raises(InputError, match="not JSON"):
        read_json(b'"' + b'\\"' * 30_000)


@pytest.mark.parametrize("digits", [19, 4_301, 50_000])
def test_long_integers_are_refused_before_int(digits: int) -> None:
    for sign in ("", "-"):
        with pytest.raises(InputError, match="more than 18 digits"):
            read_json(f'{{"n": {sign}{"9" * digits}}}', BIG)
    assert read_json("-" + "9" * 18) == -(10**18 - 1)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"x": -Infinity}', "1e400", "-1e999"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        read_json(text)


def test_duplicate_members_are_refused() -> None:
    with pytest.raises(InputError, match="'alg' appears twice"):
        read_json('{"alg": "ES256", "x": 1, "alg": "none"}')


@pytest.mark.parametrize(
    "text", ['"\\ud800"', '{"\\udfff": 1}', '["ok", "a\\u0000b"]', '{"k\\u0000": 1}']
)
def test_unpaired_surrogates_and_nul_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="U\\+0000 or an unpaired surrogate"):
        read_json(text)


def test_strings_and_the_whole_text_are_bounded() -> None:
    limits = Limits(max_string=10)
    assert read_json('["0123456789"]', limits) == ["0123456789"]
    with pytest.raises(InputError, match="longer than 10"):
        read_json('["01234567890"]', limits)
    with pytest.raises(InputError, match="longer than 10"):
        read_json('{"01234567890": 1}', limits)
    with pytest.raises(InputError, match="larger than"):
        read_json(b" " * (DEFAULT_LIMITS.max_bytes + 1))


@pytest.mark.parametrize(
    "data", [b"\xff", "{}".encode("utf-16"), b"", b"{", b"[1,]", b"{'a': 1}", b"1 2"]
)
def test_what_is_not_utf8_json_is_an_input_error(data: bytes) -> None:
    with pytest.raises(InputError):
        read_json(data)


def test_member_checks_the_json_type() -> None:
    data = {"s": "x", "n": 3, "b": True, "l": [], "o": {}}
    assert member(data, "s", str) == "x"
    assert member(data, "n", int) == 3
    assert member(data, "n", float) == 3
    assert member(data, "missing", str, required=False) is None
    with pytest.raises(InputError, match="'b' must be an integer, not true or false"):
        member(data, "b", int)
    with pytest.raises(InputError, match="'l' must be a string, not an array"):
        member(data, "l", str)
    with pytest.raises(InputError, match="'missing' is missing"):
        member(data, "missing", dict)


@pytest.mark.parametrize("text", ["²", "١٢", "𝟏", "٣", "-1", "+1", " 1", "1.0", "", "0x1", "1001"])
def test_decimal_takes_ascii_digits_within_bounds_only(text: str) -> None:
    with pytest.raises(InputError, match="ASCII digits"):
        decimal(text, "limit", 1000)


def test_decimal_reads_ascii_digits() -> None:
    assert decimal("0", "limit", 1000) == 0
    assert decimal("1000", "limit", 1000) == 1000
    assert decimal("0007", "limit", 1000) == 7
    assert decimal("0" * 5000 + "12", "limit", 1000) == 12
    with pytest.raises(InputError):
        decimal("9" * 5000, "limit", 1000)

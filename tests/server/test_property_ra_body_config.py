"""Property-based tests of two server-side readers: the RA's ``Body`` (every RA and applicant
request body goes through it after the JSON reader) and the configuration file.

``Body`` reads any JSON object member by member and refuses with one RAError (an RFC 9457
problem at the edge), never another exception, whatever the members hold. The configuration
reader turns any edit of ``jitsuin.toml`` (a value of the wrong type or range, a line dropped,
junk appended) into a Config or one ConfigError listing what is wrong, never a traceback.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jitsuin.ca.keys import KeyType
from jitsuin.server import config as configuration
from jitsuin.server.http_json import Body
from jitsuin.server.ra.errors import RAError

BOUNDED = settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a failure is never chance
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

UNICODE_DIGITS = st.sampled_from(["²", "٣", "५", "１２", "𝟗", "Ⅻ"])
DATES = st.sampled_from(
    [
        "0001-01-01",
        "9999-12-31",
        "1899-12-31",
        "1900-01-01",
        "2024-02-30",
        "+10000-01-01",
        "２０２４-０１-０１",
        "2024-01-01T00:00:00",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    UNICODE_DIGITS,
    DATES,
    st.just("x" * 300),
    st.just("123456789018"),  # the shape of an Individual Number (SEED-R8)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
KEYS = ["familyName", "receivedOn", "issuedOn", "amount", "billing", "confirm", "x"]
READS = st.lists(
    st.tuples(st.sampled_from(["text", "flag", "date", "obj", "integer"]), st.sampled_from(KEYS)),
    max_size=6,
)


@BOUNDED
@given(
    data=st.one_of(JSON, st.fixed_dictionaries({}, optional={k: JSON for k in KEYS})),
    reads=READS,
)
def test_body_reads_any_object_or_refuses_with_one_ra_error(data: Any, reads: list[Any]) -> None:
    try:
        body = Body(data)
        for method, key in reads:
            getattr(body, method)(key)
        body.done()
    except RAError:
        pass


# -- the configuration file -----------------------------------------------------------------------
@dataclass(frozen=True)
class Written:
    """The configuration ``jitsuin init`` writes, in a home of its own."""

    home: Path
    lines: list[str]
    settings: list[int]  # the lines that set a value


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    home = tmp_path_factory.mktemp("config")
    text = configuration.write_default(home, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    lines = text.read_text(encoding="utf-8").splitlines()
    return Written(
        home, lines, [n for n, line in enumerate(lines) if re.match(r"[a-z_]+ = ", line)]
    )


TOML_VALUES = st.sampled_from(
    [
        "[]",
        "{}",
        "-1",
        "0",
        "1e400",
        "nan",
        "inf",
        '"²"',
        "99999999999999999999",
        "true",
        '"0.0.0.0:99999"',
        '"127.0.0.1:-1"',
        "1979-05-27T07:32:00Z",
        '""',
        '"sqlite:///"',
        '"postgresql://"',
        '["a", 1]',
        "{ a = 1 }",
        '"\\u0000"',
        "0.0001",
        '"../../etc"',
    ]
)
APPENDED = st.sampled_from(
    [
        "[ra]\n",
        "x = \n",
        "[acme.test]\nvalidation_always_succeeds = true\n",
        "\x00",
        "[[server]]\n",
        "unknown = 1\n",
    ]
)


def edited(draw: st.DrawFn, written: Written) -> str:
    lines = list(written.lines)
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.sampled_from(written.settings))
        key = lines[n].split(" = ", 1)[0]
        if draw(st.booleans()):
            lines[n] = f"{key} = {draw(TOML_VALUES)}"
        else:
            lines[n] = ""
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 4)) == 0:
        text += draw(APPENDED)
    return text


@BOUNDED
@given(data=st.data())
def test_any_edited_configuration_loads_or_lists_its_errors(
    written: Written, data: st.DataObject
) -> None:
    path = written.home / "edited.toml"
    path.write_text(edited(data.draw, written), encoding="utf-8")
    with contextlib.suppress(configuration.ConfigError):
        configuration.load(path, written.home)


def test_a_number_too_large_for_a_setting_is_a_config_error(written: Written) -> None:
    """Found by the property above: a setting read as a count of hours, past what a timedelta
    holds, is an operator's typo to report, not a traceback."""
    text = "\n".join(written.lines).replace("pin_ttl_hours = 336", "pin_ttl_hours = " + "9" * 20)
    assert text != "\n".join(written.lines)
    path = written.home / "huge.toml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(configuration.ConfigError):
        configuration.load(path, written.home)

"""A running jitsuin server (a real process on loopback), a real SMTP server that receives the
PIN e-mails, and an RA flow driven through the operator API, for the EST tests: the
``live_jitsuin`` machinery of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, live_jitsuin: Any) -> Iterator[Any]:
    # document-manager re-enrollment waits for an operator (the 202 flow); general does not.
    with live_jitsuin.server(
        tmp_path_factory.mktemp("est-home"), reenroll_approval=["document-manager"]
    ) as running:
        yield running


@pytest.fixture(scope="session")
def cli(live_jitsuin: Any) -> str:
    return live_jitsuin.cli()

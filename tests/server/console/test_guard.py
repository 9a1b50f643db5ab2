"""The console's form token: bound to the operator and the action, and expiring."""

from __future__ import annotations

import datetime as dt

import pytest

from jitsuin.server.console.guard import TOKEN_LIFETIME, CrossSite, check_token, form_token
from jitsuin.server.ra.credentials import Keyring

NOW = dt.datetime(2026, 12, 6, 6, 0, tzinfo=dt.UTC)


def test_a_token_is_for_one_operator_and_one_action():
    keyring = Keyring(bytes(range(32)))
    token = form_token(keyring, "bob", "approve:APP-0000TEST", NOW)
    check_token(keyring, "bob", "approve:APP-0000TEST", token, NOW)
    for operator, action in (("alice", "approve:APP-0000TEST"), ("bob", "approve:APP-1111TEST")):
        with pytest.raises(CrossSite):
            check_token(keyring, operator, action, token, NOW)
    with pytest.raises(CrossSite, match="expired"):
        check_token(keyring, "bob", "approve:APP-0000TEST", token, NOW + TOKEN_LIFETIME * 2)
    with pytest.raises(CrossSite):  # another server's secret
        check_token(Keyring(bytes(32)), "bob", "approve:APP-0000TEST", token, NOW)
    for forged in ("", "x", "99999999999999.abc", token.split(".")[0] + ".", "1." + "0" * 64):
        with pytest.raises(CrossSite):
            check_token(keyring, "bob", "approve:APP-0000TEST", forged, NOW)

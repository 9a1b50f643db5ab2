"""The server's log in both ``[log] format``s: a full application flow (entered, reviewed,
inquiry letter, online input, approval with the PIN e-mail, EST pickup, an operator's token
rotation) leaves no personal data in the log, neither the applicant's names, address, date of
birth, e-mail address or qualification number nor the access code, PIN or any operator
token; and each request leaves one access record with its request ID, actor and outcome."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("form", ["text", "json"])
def test_the_log_has_no_personal_data(live_jitsuin, tmp_path, form):
    home = tmp_path / "ca"
    with live_jitsuin.server(home, toml=f'\n[log]\nformat = "{form}"\n') as server:
        app, _, _, _ = server.enrolled(tmp_path / "subscriber")
        # A wrong PIN and an unknown enrollment ID: refusals are logged, their secrets not.
        status, _ = server.simpleenroll(app["enrollment_id"], "87654321", b"not a CSR")
        assert status >= 400
        secrets = [*server.tokens.values()]
        server.tokens["bob"] = server.ok("POST", "/ra/operators/bob/token", "bob")["token"]
        secrets.append(server.tokens["bob"])
        server.ok("GET", f"/ra/applications/{app['id']}", "bob")
    text = (home / "server.log").read_text()
    personal = [
        "Yamada",
        "Hanako",
        "Kasumigaseki",
        "1985-04-01",
        app["email"],
        app["email"].partition("@")[0],
        app["qualification_number"],
        app["access_code"],
        app["pin"],
        "87654321",
        *secrets,
    ]
    for value in personal:
        assert value not in text, f"{value!r} is in the {form} log"
    lines = [line for line in text.splitlines() if line.strip()]
    if form == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        # Everything the server logged once it was configured is JSON (serve's own stdout
        # lines, "data directory: ..." and the URLs, are not log records).
        logged = [line for line in lines if " INFO " in line or " WARNING " in line]
        assert not logged, logged[:3]
        access = [r for r in records if r["logger"] == "jitsuin.access"]
        for record in access:
            assert record["request_id"] and record["outcome"] in ("ok", "refused", "error")
        assert {"bob", "alice"} <= {r.get("actor") for r in access}
        est = [r for r in access if r["route"] == "/.well-known/est/simpleenroll"]
        assert {r["outcome"] for r in est} == {"ok", "refused"}
        assert any(r.get("actor", "").startswith("applicant:") for r in est)
    else:
        access = [line for line in lines if " jitsuin.access " in line]
        assert access and all("request_id=" in line and "outcome=" in line for line in access)
        assert any("actor=bob " in line for line in access)

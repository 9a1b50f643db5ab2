"""No secret is kept in clear or logged: after a full flow, the raw bytes of the SQLite database
(main file, WAL, shared memory) and every log record of the server hold none of the PINs, access
codes, EAB keys, operator tokens, nor the Individual Number that was sent and refused."""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3

import pytest

from jitsuin.server.mynumber import check_digit
from jitsuin.server.ra.credentials import grouped
from jitsuin.server.ra.errors import RAError, RAKind

LETTER_CODE = re.compile(r"アクセスコード / Access code: <span class=\"code\">([^<]+)</span>")


def forms(secret: str) -> set[str]:
    """The ways a secret could be written down."""
    out = {secret, secret.lower(), secret.upper()}
    if "-" in secret:
        out.add(secret.replace("-", ""))
    elif secret.isalnum() and len(secret) > 12:
        out.add(grouped(secret))
    return out


def database_bytes(server) -> dict[str, bytes]:
    files = {}
    for path in sorted(server.database.parent.glob(server.database.name + "*")):
        files[path.name] = path.read_bytes()
    assert server.database.name in files
    return files


def log_text(caplog) -> str:
    lines = []
    for record in caplog.records:
        if record.name.startswith("mail.log"):
            continue  # aiosmtpd: the recipient's mail server, not ours
        lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")
    return "\n".join(lines)


async def test_no_secret_in_database_or_logs(ra_server, caplog):
    caplog.set_level(logging.DEBUG)  # every logger: jitsuin.*, aiohttp.access, aiosqlite, ...
    server = await ra_server()
    secrets: dict[str, str] = {f"token of {n}": t for n, t in server.tokens.items()}
    for name, token in list(secrets.items()):
        secrets[name + " without prefix"] = token.removeprefix("jto_")

    # An Individual Number sent and refused.
    first = "98765432109"
    number = first + str(check_digit(first))
    secrets["Individual Number"] = number
    secrets["Individual Number, hyphenated"] = f"{number[:4]}-{number[4:8]}-{number[8:]}"
    body = server.application_body(
        postalAddress=f"2-2 Minato {number[:4]}-{number[4:8]}-{number[8:]}"
    )
    (await server.call("POST", "/ra/applications", "alice", body=body)).problem(422)
    body = server.application_body(remarks=number)
    (await server.call("POST", "/ra/applications", "alice", body=body)).problem(422)

    # The packet, sent twice (JSON, then the printed letter): two access codes.
    flow = await server.prepare("inquiry_sent")
    secrets["access code 1"] = flow.access_code
    reply = await server.call(
        "POST",
        f"/ra/applications/{flow.id}/inquiry",
        "alice",
        body={"trackingNumber": "RD123456785JP"},
        headers={"Accept": "text/html"},
    )
    (printed,) = LETTER_CODE.findall(reply.expect(200).text)
    secrets["access code 2"] = printed
    await server.letter(flow)
    await server.pay(flow)
    (await server.online_input(flow.enrollment_id, "0" * 26, confirm=True)).problem(401)
    server.clock.advance(dt.timedelta(seconds=15))  # this address waits after a wrong try
    (await server.online_input(flow.enrollment_id, printed, confirm=False)).expect(200)
    (await server.online_input(flow.enrollment_id, printed, confirm=True)).expect(200)

    # Approval, two wrong PINs, a new PIN, the pickup.
    mail = await server.approve(flow, "bob")
    secrets["PIN 1"], secrets["EAB key 1"] = mail.pin, mail.eab_key
    _, csr = server.csr()
    for n, wrong in enumerate(sorted({"00000000", "99999999"} - {mail.pin})):
        with pytest.raises(RAError) as refused:  # from two addresses: neither waits
            await server.ra.redeem(flow.enrollment_id, wrong, csr, "test", f"192.0.2.{n}")
        assert refused.value.kind is RAKind.UNAUTHORIZED
    before = len(server.mailbox.messages_to(flow.email))
    (await server.call("POST", f"/ra/applications/{flow.id}/reissue-pin", "bob")).expect(200)
    mail = await server.next_pin_mail(flow, before)
    secrets["PIN 2"], secrets["EAB key 2"] = mail.pin, mail.eab_key
    await server.ra.redeem(flow.enrollment_id, mail.pin, csr, "test", "192.0.2.1")

    # A second application left waiting with its PIN and EAB key alive (sealed, not wiped).
    waiting = await server.prepare("pin_sent")
    secrets["access code 3"] = waiting.access_code
    secrets["PIN 3"] = waiting.pin
    secrets["EAB key 3"] = waiting.pin_mail.eab_key

    # What operators read back holds no secret either.
    responses = [
        await server.call("GET", "/ra/applications", "root"),
        await server.call("GET", f"/ra/applications/{flow.id}", "root"),
        await server.call("GET", f"/ra/applications/{waiting.id}", "root"),
        await server.call("GET", f"/ra/applications/{flow.id}/disclosure", "root"),
        await server.call("GET", "/ra/audit?limit=1000", "root"),
        await server.call("GET", "/ra/mail", "root"),
    ]
    for reply in responses:
        reply.expect(200)

    running = database_bytes(server)
    with sqlite3.connect(server.database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    checkpointed = database_bytes(server)
    logs = log_text(caplog)

    # The scan looks at the real data: the vetted address and the enrollment ID are there.
    main = checkpointed[server.database.name]
    assert flow.email.encode() in main and flow.enrollment_id.encode() in main
    assert any(r.name == "aiohttp.access" for r in caplog.records), "no access log captured"
    assert "/applicant/online-input" in logs
    # DEBUG reached the store's driver too: aiosqlite logs each call it runs (with the parameters
    # of a query; a transaction runs as one call, and index-bounded reads are not its).
    assert any(r.name == "aiosqlite" and "executing" in r.getMessage() for r in caplog.records)

    leaks = []
    for what, secret in secrets.items():
        for form in forms(secret):
            needle = form.encode()
            for label, files in (("running", running), ("checkpointed", checkpointed)):
                leaks += [
                    f"{what} ({form}) in {label} {n}" for n, b in files.items() if needle in b
                ]
            if form in logs:
                leaks.append(f"{what} ({form}) in the logs")
            for reply in responses:
                if needle in reply.raw:
                    leaks.append(f"{what} ({form}) in a response: {reply.raw[:120]!r}")
    assert leaks == []

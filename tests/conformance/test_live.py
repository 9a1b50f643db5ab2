"""The live harness (``jitsuin conformance``) against real servers: a running jitsuin over EST
(enrollment with an enrollment ID + PIN, re-enrollment with the certificate just obtained, the 202
flow) and Pebble over ACME. For jitsuin every applicable rule passes; for Pebble the test pins
what Pebble does differently, so a change on either side shows up here and in
docs/conformance.md."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from jitsuin.server.__main__ import main


def _run(argv, capsys, tmp_path, name="report.json"):
    out = tmp_path / name
    code = main([*argv, "--format", "json", "--output", str(out)])
    capsys.readouterr()
    return code, json.loads(out.read_text())


def _failures(report):
    return {
        (f["path"], x["rule"], x["severity"], x["message"])
        for f in report["files"]
        for x in f["findings"]
        if "suppressed" not in x and x["severity"] in ("WARNING", "ERROR", "FATAL")
    }


def _statuses(report, kind):
    (server,) = [f for f in report["files"] if f["kind"] == kind]
    return {r["rule"]: r["status"] for r in server["results"]}


def test_est_against_jitsuin(jitsuin_server, capsys, tmp_path):
    app = jitsuin_server.application("general")
    code, report = _run(
        [
            "conformance",
            "--est",
            f"{jitsuin_server.https}/.well-known/est/general",
            "--ca-bundle",
            str(jitsuin_server.ca_pem),
            "--user",
            app["enrollment_id"],
            "--password",
            app["pin"],
            "--reenroll",
            "--config",
            str(jitsuin_server.config),
        ],
        capsys,
        tmp_path,
    )
    assert _failures(report) == set()
    assert code == 0
    statuses = _statuses(report, "est-server")
    assert {rule for rule, status in statuses.items() if status != "pass"} == set(), statuses
    kinds = [f["kind"] for f in report["files"]]
    # cacerts (the CA), the enrolled and the re-enrolled certificate, the CRL and an OCSP answer.
    assert kinds.count("certificate") == 3
    assert kinds.count("crl") == 1 and kinds.count("ocsp-response") == 1


def test_est_reenroll_with_a_client_certificate(jitsuin_server, capsys, tmp_path):
    """--out keeps the enrolled key and certificate; --cert/--key re-enroll with them."""
    app = jitsuin_server.application("general")
    common = ["--ca-bundle", str(jitsuin_server.ca_pem), "--config", str(jitsuin_server.config)]
    base = f"{jitsuin_server.https}/.well-known/est/general"
    code, _ = _run(
        [
            "conformance",
            "--est",
            base,
            "--user",
            app["enrollment_id"],
            "--password",
            app["pin"],
            "--out",
            str(tmp_path / "kept"),
            *common,
        ],
        capsys,
        tmp_path,
    )
    assert code == 0
    code, report = _run(
        [
            "conformance",
            "--est",
            base,
            "--cert",
            str(tmp_path / "kept" / "enrolled.pem"),
            "--key",
            str(tmp_path / "kept" / "enrolled.key"),
            *common,
        ],
        capsys,
        tmp_path,
        "second.json",
    )
    assert _failures(report) == set()
    assert code == 0
    statuses = _statuses(report, "est-server")
    assert statuses["E-09"] == "pass" and statuses["E-07"] == "pass"  # re-enrolled
    assert statuses["E-04"] == "pass"  # no credentials: the 415 probe was anonymous


def _pending_run(jitsuin_server, tmp_path):
    """An application not approved yet: pickup answers 202 + Retry-After (E-08)."""
    app = jitsuin_server.application("document-manager", approve=False)
    out = tmp_path / "est.xml"
    code = main(
        [
            "conformance",
            "--est",
            f"{jitsuin_server.https}/.well-known/est/document-manager",
            "--ca-bundle",
            str(jitsuin_server.ca_pem),
            "--user",
            app["enrollment_id"],
            "--password",
            "12345678",
            "--config",
            str(jitsuin_server.config),
            "--format",
            "junit",
            "--output",
            str(out),
        ]
    )
    root = ET.parse(out).getroot()  # noqa: S314 (our own report)
    return code, {c.get("name").split()[0]: c for c in root.iter("testcase")}


def test_est_202_flow_and_junit(jitsuin_server, capsys, tmp_path):
    code, cases = _pending_run(jitsuin_server, tmp_path)
    capsys.readouterr()
    e08 = cases["E-08"]
    assert e08.find("skipped") is None and e08.find("failure") is None  # ran and passed
    assert cases["E-07"].find("skipped") is not None  # nothing was issued
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == set()  # a broken CSR is refused with 400 even while approval is pending
    assert code == 0


def test_est_pending_application_refuses_a_broken_csr(jitsuin_server, capsys, tmp_path):
    code, cases = _pending_run(jitsuin_server, tmp_path)
    capsys.readouterr()
    assert cases["E-05"].find("failure") is None
    assert code == 0


def test_est_harness_flags_a_server_that_is_not_est(jitsuin_server, capsys, tmp_path):
    """Pointed at the plain-HTTP listener, the harness reports failures, not a crash."""
    code, report = _run(
        ["conformance", "--est", f"{jitsuin_server.http}/.well-known/est"], capsys, tmp_path
    )
    assert code == 1
    rules = {rule for _, rule, _, _ in _failures(report)}
    assert {"E-01", "E-02"} <= rules


def test_acme_against_jitsuin(jitsuin_server, capsys, tmp_path):
    """A personal account (EAB kid = enrollment ID, key from the PIN e-mail) orders its vetted
    e-mail address (RFC 8823 identifier) and finalizes."""
    app = jitsuin_server.application("general")
    code, report = _run(
        [
            "conformance",
            "--acme",
            f"{jitsuin_server.https}/acme/directory",
            "--ca-bundle",
            str(jitsuin_server.ca_pem),
            "--identifier-type",
            "email",
            "--identifier",
            app["email"],
            "--eab-kid",
            app["enrollment_id"],
            f"--eab-key={jitsuin_server.inbox.eab_for(app['enrollment_id'])}",  # may start with -
            "--config",
            str(jitsuin_server.config),
        ],
        capsys,
        tmp_path,
    )
    statuses = _statuses(report, "acme-server")
    # Pre-authorized (the RA vetted the address): no pending order, no challenge to answer.
    assert {rule for rule, status in statuses.items() if status == "na"} == {"A-12", "A-14"}
    assert statuses["A-16"] == "pass" and statuses["A-17"] == "pass"  # issued, then revoked
    found = {(rule, severity) for _, rule, severity, _ in _failures(report)}
    assert found == set()
    assert code == 0
    assert [f["kind"] for f in report["files"]].count("certificate") >= 2  # leaf + CA


# What Pebble (Debian 2.4.0) does differently from RFC 8555 / docs/protocols.md, and how its test
# certificates differ from jitsuin's profile. docs/conformance.md explains each.
PEBBLE_DIFFERENCES = {
    ("A-02", "ERROR"),  # newNonce without Cache-Control: no-store (RFC 8555 §7.2)
    ("A-07", "ERROR"),  # alg none / HS256 -> malformed, not badSignatureAlgorithm (§6.2)
    ("A-08", "ERROR"),  # url mismatch -> malformed, not unauthorized (§6.4)
    ("A-15", "WARNING"),  # CSR for other names -> 403 unauthorized, not badCSR (§7.4 SHOULD)
    ("A-16", "WARNING"),  # a processing order without Retry-After (§7.4)
    ("X-02", "WARNING"),  # serial numbers of 60-63 bits (rand.Int below 2^63 - 1)
    ("X-13", "ERROR"),  # keyEncipherment on an EC leaf (pkilint)
    ("C-02", "ERROR"),  # a 30-year intermediate (jitsuin's C-02 allows 10)
    ("C-03", "WARNING"),  # an RSA-2048 intermediate used past 2030
}


def test_acme_against_pebble(pebble, capsys, tmp_path):
    code, report = _run(
        ["conformance", "--acme", pebble.directory, "--ca-bundle", str(pebble.ca_bundle)],
        capsys,
        tmp_path,
    )
    assert code == 1
    statuses = _statuses(report, "acme-server")
    # Every ACME rule ran: Pebble issued, so the whole flow up to revocation was exercised.
    assert {rule for rule, status in statuses.items() if status in ("na", "ne")} == set(), statuses
    failures = _failures(report)
    # Pebble draws serials below 2^63 - 1: once in 256 one lands below 2^55, which X-02 rates an
    # ERROR (fewer than 8 octets, BR 7.1). Judge each X-02 finding by the serial it reports.
    for _, rule, severity, message in failures:
        if rule == "X-02":
            bits = int(re.search(r"has (\d+) bits", message).group(1))
            assert severity == ("ERROR" if bits < 56 else "WARNING"), message
    found = {(r, "WARNING" if r == "X-02" else s) for _, r, s, _ in failures}
    assert found == PEBBLE_DIFFERENCES, sorted(found ^ PEBBLE_DIFFERENCES)
    assert [f["kind"] for f in report["files"]].count("certificate") >= 2  # leaf + intermediate

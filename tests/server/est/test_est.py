"""EST end to end against a running server: the docs/protocols.md curl + openssl recipe, the
packaged `jitsuin est` client, and the refusals of RFC 7030 (status codes, text/plain reasons)."""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID


def run(
    *argv: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    if check:
        assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


def curl(server, *args: str | Path) -> tuple[int, dict[str, str], bytes]:
    """curl with the server's CA; returns (status, headers, body) of the final response."""
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(server.ca_pem), "-D", "-", *map(str, args)],
        capture_output=True,
    )
    assert out.returncode == 0, out.stderr
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def new_csr_b64(tmp: Path, name: str, subject: str = "/CN=Hanako Yamada") -> Path:
    """openssl makes the key and CSR (docs/protocols.md recipe); returns the base64 body file."""
    run(
        "openssl",
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        tmp / f"{name}.key",
        "-subj",
        subject,
        "-outform",
        "DER",
        "-out",
        tmp / f"{name}.der",
    )
    b64 = tmp / f"{name}.b64"
    b64.write_text(run("base64", "-w", "64", tmp / f"{name}.der").stdout)
    return b64


def pkcs7_to_pem(tmp: Path, body: bytes, name: str) -> Path:
    (tmp / f"{name}.b64").write_bytes(body)
    der = run_bytes("base64", "-d", tmp / f"{name}.b64")  # coreutils, not openssl base64
    (tmp / f"{name}.p7").write_bytes(der)
    pem = tmp / f"{name}.pem"
    run(
        "openssl", "pkcs7", "-inform", "DER", "-in", tmp / f"{name}.p7", "-print_certs", "-out", pem
    )
    return pem


def run_bytes(*argv: str | Path) -> bytes:
    out = subprocess.run([str(a) for a in argv], capture_output=True, check=True)
    return out.stdout


def verify(server, tmp: Path, cert_pem: Path) -> None:
    cacerts = tmp / "cacerts.pem"
    if not cacerts.exists():
        status, _, body = curl(server, f"{server.https}/.well-known/est/cacerts")
        assert status == 200
        pkcs7_to_pem(tmp, body, "cacerts")
    out = run("openssl", "verify", "-purpose", "smimesign", "-CAfile", cacerts, cert_pem)
    assert out.stdout.strip().endswith("OK"), out.stdout


def est(server, label: str = "general") -> str:
    return f"{server.https}/.well-known/est/{label}"


# -- the docs/protocols.md recipe with curl + openssl
# --------------------------------------------------
def test_curl_openssl_recipe(server, tmp_path: Path) -> None:
    app = server.application("general")
    base = est(server)
    status, headers, body = curl(server, f"{base}/cacerts")
    assert status == 200 and headers["content-type"].startswith("application/pkcs7-mime")
    cacerts = pkcs7_to_pem(tmp_path, body, "cacerts")
    assert cacerts.read_text().count("BEGIN CERTIFICATE") == 1
    assert (
        x509.load_pem_x509_certificate(cacerts.read_bytes()).subject
        == x509.load_pem_x509_certificate(server.ca_pem.read_bytes()).subject
    )

    req = new_csr_b64(tmp_path, "req")
    status, headers, body = curl(
        server,
        "-u",
        f"{app['enrollment_id']}:{app['pin']}",
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        f"@{req}",
        f"{base}/simpleenroll",
    )
    assert status == 200, body
    assert headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    cert_pem = pkcs7_to_pem(tmp_path, body, "cert")
    verify(server, tmp_path, cert_pem)
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [app["email"]]  # from the vetted record

    # re-enroll over mutual TLS with the issued certificate: a new key (SEED-R2)
    req2 = new_csr_b64(tmp_path, "req2", subject="/")
    status, _, body = curl(
        server,
        "--cert",
        cert_pem,
        "--key",
        tmp_path / "req.key",
        "-H",
        "Content-Type: application/pkcs10",
        "--data-binary",
        f"@{req2}",
        f"{base}/simplereenroll",
    )
    assert status == 200, body
    renewed_pem = pkcs7_to_pem(tmp_path, body, "renewed")
    verify(server, tmp_path, renewed_pem)
    renewed = x509.load_pem_x509_certificate(renewed_pem.read_bytes())
    assert renewed.subject == cert.subject
    assert renewed.public_key() != cert.public_key()

    # CSR attributes
    status, headers, body = curl(server, f"{base}/csrattrs")
    assert status == 200 and headers["content-type"] == "application/csrattrs"
    parsed = run(
        "openssl",
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        _write(tmp_path / "attrs.der", base64.b64decode(body)),
    ).stdout
    assert "id-ecPublicKey" in parsed and "prime256v1" in parsed and "rsaEncryption" in parsed


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- the packaged client ------------------------------------------------------------------
def test_jitsuin_est_client(server, cli: str, tmp_path: Path) -> None:
    app = server.application("general")
    base, bundle = est(server), str(server.ca_pem)
    out = run(cli, "est", "cacerts", "--url", base, "--ca-bundle", bundle, cwd=tmp_path)
    assert "CN=jitsuin Personal CA" in out.stdout
    (tmp_path / "pass").write_text("correct horse\n")
    # --url as the PIN e-mail gives it: the .../simpleenroll URL, not the base.
    out = run(
        cli,
        "est",
        "enroll",
        "--url",
        f"{base}/simpleenroll",
        "--ca-bundle",
        bundle,
        "--user",
        app["enrollment_id"],
        "--key-type",
        "ecdsa-p384",
        "--p12",
        "me.p12",
        "--p12-passphrase-file",
        "pass",
        cwd=tmp_path,
        env={"JITSUIN_EST_PASSWORD": app["pin"]},
    )
    assert "certificate: est-cert.pem" in out.stdout
    assert (tmp_path / "est-key.pem").stat().st_mode & 0o777 == 0o600
    verify(server, tmp_path, tmp_path / "est-cert.pem")
    cert = x509.load_pem_x509_certificate((tmp_path / "est-cert.pem").read_bytes())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp384r1"
    # the PKCS#12 opens with openssl and holds the same certificate (PBES2 / AES-256 / SHA-256)
    info = run(
        "openssl",
        "pkcs12",
        "-in",
        tmp_path / "me.p12",
        "-passin",
        "pass:correct horse",
        "-nokeys",
        "-info",
    )
    assert "PBES2" in info.stderr and "AES-256-CBC" in info.stderr
    assert "sha256" in info.stderr.lower()
    # re-enroll with the client: a new key, the same subject
    out = run(
        cli,
        "est",
        "reenroll",
        "--url",
        base,
        "--ca-bundle",
        bundle,
        "--cert",
        "est-cert.pem",
        "--key",
        "est-key.pem",
        "--key-out",
        "new-key.pem",
        "--csr-out",
        "new-req.der",
        "--out",
        "new-cert.pem",
        cwd=tmp_path,
    )
    verify(server, tmp_path, tmp_path / "new-cert.pem")
    renewed = x509.load_pem_x509_certificate((tmp_path / "new-cert.pem").read_bytes())
    assert renewed.subject == cert.subject and renewed.serial_number != cert.serial_number
    out = run(cli, "est", "csrattrs", "--url", base, "--ca-bundle", bundle)
    assert "1.2.840.10045.2.1" in out.stdout


def test_client_waits_out_202_and_reports_pending(server, cli: str, tmp_path: Path) -> None:
    app = server.application("general", approve=False)
    out = run(
        cli,
        "est",
        "enroll",
        "--url",
        est(server),
        "--ca-bundle",
        str(server.ca_pem),
        "--user",
        app["enrollment_id"],
        cwd=tmp_path,
        check=False,
        env={"JITSUIN_EST_PASSWORD": "00000000"},
    )
    assert out.returncode == 3, out.stderr
    assert "retry in 3600 s" in out.stderr


# -- refusals ------------------------------------------------------------------------------
def post(
    server,
    path: str,
    body: bytes | str,
    content_type: str = "application/pkcs10",
    user: tuple[str, str] | None = None,
    label: str = "general",
    extra: tuple[str, ...] = (),
) -> tuple[int, dict[str, str], bytes]:
    args: list[str | Path] = ["-H", f"Content-Type: {content_type}", "--data-binary", "@-"]
    if user:
        args += ["-u", f"{user[0]}:{user[1]}"]
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(server.ca_pem),
            "-D",
            "-",
            *map(str, args),
            *extra,
            f"{est(server, label)}/{path}",
        ],
        input=body.encode() if isinstance(body, str) else body,
        capture_output=True,
    )
    assert out.returncode == 0, out.stderr
    head, _, rest = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def csr_b64(key: ec.EllipticCurvePrivateKey | None = None, subject: x509.Name | None = None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject or x509.Name([]))
    der = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    return base64.encodebytes(der).decode()


def test_wrong_media_type_is_415(server) -> None:
    app = server.application("general")
    status, headers, body = post(
        server, "simpleenroll", csr_b64(), "application/json", (app["enrollment_id"], app["pin"])
    )
    assert status == 415 and headers["content-type"].startswith("text/plain"), body
    assert b"application/pkcs10" in body


@pytest.mark.parametrize(
    "body",
    [b"!!! not base64 !!!", b"", None],
    ids=["garbage", "empty", "truncated"],
)
def test_bad_base64_is_400(server, body: bytes | None) -> None:
    app = server.application("general")
    if body is None:  # a valid CSR cut in half: base64 may still parse, the DER does not
        body = csr_b64().replace("\n", "")[:200].encode()
    status, headers, text = post(
        server, "simpleenroll", body, user=(app["enrollment_id"], app["pin"])
    )
    assert status == 400 and headers["content-type"].startswith("text/plain"), text
    # the PIN is not consumed by a malformed request: a good CSR still works
    status, _, _ = post(server, "simpleenroll", csr_b64(), user=(app["enrollment_id"], app["pin"]))
    assert status == 200


def test_bad_csr_signature_is_400(server) -> None:
    app = server.application("general")
    der = bytearray(base64.decodebytes(csr_b64().encode()))
    der[-5] ^= 0xFF  # inside the signature value
    status, _, text = post(
        server,
        "simpleenroll",
        base64.encodebytes(bytes(der)),
        user=(app["enrollment_id"], app["pin"]),
    )
    assert status == 400, text
    assert b"signature" in text


def test_wrong_pin_is_401_and_counts(server) -> None:
    app = server.application("general")
    wrong = "12345678" if app["pin"] != "12345678" else "87654321"
    status, headers, text = post(
        server, "simpleenroll", csr_b64(), user=(app["enrollment_id"], wrong)
    )
    assert status == 401, text
    assert headers["www-authenticate"].startswith("Basic")
    status, _, text = post(server, "simpleenroll", csr_b64())  # no credentials at all
    assert status == 401, text
    _, record = server.api("GET", f"/ra/applications/{app['id']}", "bob")
    assert record["pin"]["attempts"] == 1


def test_used_pin_is_401_for_another_key_and_same_cert_for_the_same_csr(server) -> None:
    app = server.application("general")
    body = csr_b64()
    status, _, first = post(server, "simpleenroll", body, user=(app["enrollment_id"], app["pin"]))
    assert status == 200
    # double submission of the same CSR (a lost response): the same certificate, not a second
    status, _, again = post(server, "simpleenroll", body, user=(app["enrollment_id"], app["pin"]))
    assert status == 200 and again == first
    status, headers, text = post(
        server, "simpleenroll", csr_b64(), user=(app["enrollment_id"], app["pin"])
    )
    assert status == 401 and "www-authenticate" in headers, text
    assert b"used" in text


def test_not_yet_approved_is_202_with_retry_after(server) -> None:
    app = server.application("general", approve=False)
    status, headers, text = post(
        server, "simpleenroll", csr_b64(), user=(app["enrollment_id"], "x")
    )
    assert status == 202, text
    assert headers["retry-after"] == "3600"


def test_wrong_label_is_400(server) -> None:
    app = server.application("general")
    status, _, text = post(
        server,
        "simpleenroll",
        csr_b64(),
        label="document-manager",
        user=(app["enrollment_id"], app["pin"]),
    )
    assert status == 400 and b"general" in text


def test_csr_contradicting_the_vetted_record_is_400(server) -> None:
    app = server.application("general")
    other = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "someone.else@example.com")])
    status, _, text = post(
        server, "simpleenroll", csr_b64(subject=other), user=(app["enrollment_id"], app["pin"])
    )
    assert status == 400 and b"contradicts" in text


def _enrolled(server, tmp: Path, profile: str = "general") -> tuple[dict[str, str], Path, Path]:
    """A personal certificate picked up through EST, as files: what re-enrollment presents."""
    app, _, cert_pem, key_pem = server.enrolled(tmp / profile, profile)
    return app, cert_pem, key_pem


def test_reenroll_with_the_same_key_is_refused(server, tmp_path: Path) -> None:
    _, cert_pem, key_pem = _enrolled(server, tmp_path)
    key = serialization.load_pem_private_key(key_pem.read_bytes(), None)
    status, _, text = post(
        server,
        "simplereenroll",
        csr_b64(key),  # type: ignore[arg-type]
        extra=("--cert", str(cert_pem), "--key", str(key_pem)),
    )
    assert status == 400 and b"SEED-R2" in text


def test_reenroll_under_another_profiles_label_is_400(server, tmp_path: Path) -> None:
    """A general certificate renewed under the document-manager label is refused, as
    simpleenroll refuses a label that is not the application's; nothing is queued."""
    _, cert_pem, key_pem = _enrolled(server, tmp_path)
    tls = ("--cert", str(cert_pem), "--key", str(key_pem))
    status, headers, text = post(
        server, "simplereenroll", csr_b64(), label="document-manager", extra=tls
    )
    assert status == 400, text
    assert headers["content-type"].startswith("text/plain")
    assert b"general certificate" in text and b"general label" in text
    serial = format(x509.load_pem_x509_certificate(cert_pem.read_bytes()).serial_number, "x")
    requests = server.ok("GET", "/ra/reenrollments", "bob")["reenrollments"]
    assert [r for r in requests if r["previousSerial"] == serial] == []
    # Under its own label the same certificate is renewed.
    status, _, text = post(server, "simplereenroll", csr_b64(), label="general", extra=tls)
    assert status == 200, text


def test_reenroll_without_a_client_certificate_is_401(server) -> None:
    status, _, text = post(server, "simplereenroll", csr_b64())
    assert status == 401, text


def test_reenroll_with_a_revoked_certificate_is_refused(server, tmp_path: Path) -> None:
    app, cert_pem, key_pem = _enrolled(server, tmp_path)
    server.ok("POST", f"/ra/applications/{app['id']}/revoke", "bob", {"reason": "keyCompromise"})
    status, _, text = post(
        server, "simplereenroll", csr_b64(), extra=("--cert", str(cert_pem), "--key", str(key_pem))
    )
    assert status == 403 and b"revoked" in text


def test_reenroll_waiting_for_an_operator_202_then_200(server, tmp_path: Path) -> None:
    """document-manager re-enrollment needs approval: 202 + Retry-After, the operator approves,
    the retry of the same CSR gets the certificate, and a third submission gets the same one."""
    _, cert_pem, key_pem = _enrolled(server, tmp_path, "document-manager")
    body = csr_b64()
    tls = ("--cert", str(cert_pem), "--key", str(key_pem))
    status, headers, text = post(
        server, "simplereenroll", body, label="document-manager", extra=tls
    )
    assert status == 202 and headers["retry-after"] == "3600", text
    status, _, _ = post(server, "simplereenroll", body, label="document-manager", extra=tls)
    assert status == 202  # recognised as the same request, still waiting
    waiting = server.ok("GET", "/ra/reenrollments?status=pending", "bob")["reenrollments"]
    (request,) = [
        r
        for r in waiting
        if r["previousSerial"]
        == format(x509.load_pem_x509_certificate(cert_pem.read_bytes()).serial_number, "x")
    ]
    server.ok("POST", f"/ra/reenrollments/{request['id']}/approve", "bob")
    status, _, first = post(server, "simplereenroll", body, label="document-manager", extra=tls)
    assert status == 200, first
    status, _, second = post(server, "simplereenroll", body, label="document-manager", extra=tls)
    assert status == 200 and second == first  # one certificate for one request
    # The intent to sign was recorded before the CA key signed, and settled by the commit.
    (cert,) = pkcs7.load_der_pkcs7_certificates(base64.b64decode(first))
    db = sqlite3.connect(f"file:{server.home / 'jitsuin.db'}?mode=ro", uri=True)
    try:
        intent = db.execute(
            "SELECT profile, tbs_sha256, target, state FROM signing_intents WHERE serial = ?",
            (format(cert.serial_number, "x"),),
        ).fetchone()
    finally:
        db.close()
    assert intent == (
        "document-manager",
        hashlib.sha256(cert.tbs_certificate_bytes).hexdigest(),
        f"reenrollment/{request['id']}",
        "issued",
    )


def test_serverkeygen_and_fullcmc_are_not_offered(server) -> None:
    for path in ("serverkeygen", "fullcmc"):
        status, _, text = post(server, path, csr_b64())
        assert status == 404 and b"is not offered" in text, text


def test_est_is_not_served_over_plain_http(server) -> None:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"{server.http}/.well-known/est/cacerts",
        ],
        capture_output=True,
        text=True,
    )
    assert out.stdout == "404"


def _audit_after(server, seq: int) -> list[dict]:
    """The audit entries after ``seq``, but for the reads of the log by root (audited too)."""
    entries = server.ok("GET", f"/ra/audit?after={seq}&limit=1000", "root")["entries"]
    return [e for e in entries if e["actor"] != "root"]


def _last_seq(server) -> int:
    seq = 0
    while entries := server.ok("GET", f"/ra/audit?after={seq}&limit=1000", "root")["entries"]:
        seq = entries[-1]["seq"]
    return seq


def test_strangers_refusals_are_counted_and_logged_not_audited(server) -> None:
    """500 enrollments with unknown enrollment IDs add no audit entry and a line or
    two to the log (one per kind per minute, with the count left out); /health counts them."""
    seq = _last_seq(server)
    log = server.home / "server.log"
    logged = log.stat().st_size
    before = json.loads(server.fetch("/health")[2])["refusals"].get("unknown_enrollment_id", 0)
    csr = base64.b64encode(base64.b64decode(csr_b64()))

    async def burst() -> collections.Counter[int]:
        limit = asyncio.Semaphore(16)
        connector = aiohttp.TCPConnector(ssl=server.tls(), limit=16)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(n: int) -> int:
                auth = base64.b64encode(f"ZZZZZ-{n:05d}:12345678".encode()).decode()
                headers = {"Content-Type": "application/pkcs10", "Authorization": f"Basic {auth}"}
                async with (
                    limit,
                    session.post(f"{est(server)}/simpleenroll", data=csr, headers=headers) as reply,
                ):
                    return reply.status

            return collections.Counter(await asyncio.gather(*(one(n) for n in range(500))))

    assert asyncio.run(burst()) == {401: 500}
    post(server, "simpleenroll", csr_b64(), "text/plain", ("nobody", "nothing"))  # 415
    assert _audit_after(server, seq) == []
    with log.open("rb") as handle:
        handle.seek(logged)
        lines = [ln for ln in handle.read().decode().splitlines() if "refused (" in ln]
    assert 1 <= len(lines) <= 4, lines
    after = json.loads(server.fetch("/health")[2])["refusals"]
    assert after["unknown_enrollment_id"] - before == 500

    # Against a known application: a wrong PIN adds one entry, counted with the try; a refusal
    # after the right PIN (the wrong label) is audited with the application as its target.
    app = server.application("general")
    seq = _last_seq(server)
    wrong = "12345678" if app["pin"] != "12345678" else "87654321"
    assert post(server, "simpleenroll", csr_b64(), user=(app["enrollment_id"], wrong))[0] == 401
    (entry,) = _audit_after(server, seq)
    assert entry["action"] == "redeem.wrong_pin"
    assert entry["target"] == f"application/{app['id']}"
    assert entry["details"]["source"] == "127.0.0.1"
    # The right PIN from the same address at once: it waits (429), uncompared, not audited.
    status, headers, _ = post(
        server, "simpleenroll", csr_b64(), user=(app["enrollment_id"], app["pin"])
    )
    assert status == 429 and headers["jitsuin-error"] == "throttled", headers
    assert 1 <= int(headers["retry-after"]) <= 15
    assert _audit_after(server, entry["seq"]) == []
    other = server.application("general")
    seq = _last_seq(server)
    user = (other["enrollment_id"], other["pin"])
    assert post(server, "simpleenroll", csr_b64(), user=user, label="document-manager")[0] == 400
    (entry,) = _audit_after(server, seq)
    assert (entry["action"], entry["target"]) == (
        "est.simpleenroll.refused",
        f"application/{other['id']}",
    )


def _lint_processes(pid: int) -> set[int]:
    """The server's lint processes: its children started by multiprocessing's spawn (not its
    resource tracker). Each thread lists the children it started, so every thread is read."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    found = set()
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command:
            found.add(child)
    return found


def test_a_killed_lint_process_is_replaced(tmp_path: Path, live_jitsuin) -> None:
    """With ``[ca] lint_processes = 1``: the lint process killed (as the OOM killer would), the
    next enrollment is linted by a new one and issued; the server says what happened."""
    with live_jitsuin.server(tmp_path / "home", lint_processes=1) as server:
        assert server.process is not None
        first = server.application("general")
        der = base64.decodebytes(csr_b64().encode())
        assert server.simpleenroll(first["enrollment_id"], first["pin"], der)[0] == 200
        killed = _lint_processes(server.process.pid)
        assert len(killed) == 1  # the server's own TLS certificate and the first enrollment
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        second = server.application("general")
        der = base64.decodebytes(csr_b64().encode())
        status, body = server.simpleenroll(second["enrollment_id"], second["pin"], der)
        assert status == 200, body
        now = _lint_processes(server.process.pid)
        assert len(now) == 1 and now.isdisjoint(killed)
        assert "a lint process died" in (server.home / "server.log").read_text()


def test_enroll_refuses_before_the_pin_is_spent(server, cli: str, tmp_path: Path) -> None:
    """What can be known before the PIN is spent is checked first: the PKCS#12 passphrase (no
    terminal, no file) and the output directories. The PIN then still works."""
    app = server.application("general")
    base, bundle = est(server), str(server.ca_pem)
    enroll = [cli, "est", "enroll", "--url", base, "--ca-bundle", bundle, "--user"]
    pin = {"JITSUIN_EST_PASSWORD": app["pin"]}
    no_terminal = subprocess.run(
        [*enroll, app["enrollment_id"], "--p12", "me.p12"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **pin},
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no controlling terminal
    )
    assert no_terminal.returncode == 2, no_terminal.stderr
    assert "no terminal to ask for the PKCS#12 passphrase" in no_terminal.stderr
    assert "Traceback" not in no_terminal.stderr
    (tmp_path / "pass").write_text("correct horse\n")
    p12 = ["--p12-passphrase-file", "pass", "--p12"]
    missing = run(
        *enroll, app["enrollment_id"], *p12, "gone/me.p12", cwd=tmp_path, env=pin, check=False
    )
    assert missing.returncode == 2
    assert "--p12 gone/me.p12: no such directory; nothing was sent" in missing.stderr
    assert not (tmp_path / "est-cert.pem").exists()
    # The PIN was not spent: the same command with a writable path gets the certificate.
    out = run(*enroll, app["enrollment_id"], *p12, "me.p12", cwd=tmp_path, env=pin)
    assert "PKCS#12: me.p12" in out.stdout

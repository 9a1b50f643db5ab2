"""CA keys in a PKCS#11 token: SoftHSM2 from Debian (installed by ./scripts/test). The key pair is
generated in the token and never leaves it; certificates, CRLs and OCSP responses signed through
it verify with OpenSSL and cryptography."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

LIBRARY = Path("/usr/lib/softhsm/libsofthsm2.so")
JITSUIN = str(Path(sys.executable).parent / "jitsuin")
PIN = "246810"


def _new_token(root: Path) -> dict[str, str]:
    """A fresh SoftHSM2 token labelled jitsuin-test in ``root`` (its own SOFTHSM2_CONF): the
    environment that finds it."""
    assert LIBRARY.exists(), "SoftHSM2 is not installed: ./scripts/test installs softhsm2"
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "jitsuin-test",
            "--pin",
            PIN,
            "--so-pin",
            "13579",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    return env


@pytest.fixture(scope="module")
def token(tmp_path_factory) -> dict[str, str]:
    return _new_token(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture
def own_token(tmp_path) -> tuple[dict[str, str], Path]:
    """A token of this test's own (its CA makes keys ca-1, ca-2, ...) and its user PIN file."""
    root = tmp_path / "softhsm"
    root.mkdir()
    pin_file = root / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return _new_token(root), pin_file


def _token_objects(env: dict[str, str]) -> list[str]:
    """The labels of the private keys in the token (read in a process of its own)."""
    out = _python(
        env,
        f"""
import pkcs11
from pkcs11 import ObjectClass
token = pkcs11.lib({str(LIBRARY)!r}).get_token(token_label="jitsuin-test")
with token.open(user_pin={PIN!r}) as session:
    print(sorted(k.label for k in session.get_objects({{
        pkcs11.Attribute.CLASS: ObjectClass.PRIVATE_KEY}})))
""",
    )
    return json.loads(out.replace("'", '"'))


def _python(token_env: dict[str, str], code: str) -> str:
    """Run ``code`` in a fresh interpreter (SoftHSM2 reads its config once per process)."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=token_env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("key_type", ["ecdsa-p384", "ecdsa-p256", "rsa-3072"])
def test_key_is_made_in_the_token_and_signs(token, key_type):
    out = _python(
        token,
        f"""
import base64, json
from pkcs11 import Attribute, ObjectClass
from jitsuin.ca.keys import KeyType
from jitsuin.server.pkcs11_signer import Pkcs11Signer, TokenConfig
from cryptography.hazmat.primitives import serialization
cfg = TokenConfig({str(LIBRARY)!r}, "jitsuin-test", {PIN!r})
signer = Pkcs11Signer.generate(cfg, "k-{key_type}", KeyType({key_type!r}))
private = signer._private
print(json.dumps({{
    "sensitive": private[Attribute.SENSITIVE],
    "extractable": private[Attribute.EXTRACTABLE],
    "public": base64.b64encode(signer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode(),
    "signature": base64.b64encode(signer.sign(b"to be signed")).decode(),
}}))
try:
    private[Attribute.VALUE]
    print("EXTRACTED")
except Exception as exc:
    print("refused", type(exc).__name__)
""",
    )
    lines = out.splitlines()
    facts = json.loads(lines[0])
    assert facts["sensitive"] is True and facts["extractable"] is False
    assert lines[1].startswith("refused")  # the token will not hand out the private value
    import base64

    from cryptography.hazmat.primitives.serialization import load_der_public_key

    public = load_der_public_key(base64.b64decode(facts["public"]))
    signature = base64.b64decode(facts["signature"])
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, b"to be signed", padding.PKCS1v15(), hashes.SHA256())
    else:
        algorithm = hashes.SHA384() if public.curve.name == "secp384r1" else hashes.SHA256()
        public.verify(signature, b"to be signed", ec.ECDSA(algorithm))


def test_a_ca_in_the_token_issues_rolls_over_and_publishes(
    token, tmp_path, make_csr, subject_record
):
    home = tmp_path / "home"
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN)
    pin_file.chmod(0o600)
    subprocess.run(
        [JITSUIN, "--home", str(home), "init"], check=True, capture_output=True, env=token
    )
    # move the CA to the token: new keys are made there from now on
    config = home / "jitsuin.toml"
    text = config.read_text().replace(
        'passphrase_file = "secrets/ca-passphrase"',
        'passphrase_file = "secrets/ca-passphrase"\nkey_store = "pkcs11"\n'
        f'pkcs11_library = "{LIBRARY}"\npkcs11_token = "jitsuin-test"\n'
        f'pkcs11_pin_file = "{pin_file}"',
    )
    config.write_text(text)
    rolled = subprocess.run(
        [JITSUIN, "--home", str(home), "ca", "rollover"], capture_output=True, text=True, env=token
    )
    assert rolled.returncode == 0, rolled.stderr
    assert not (home / "keys" / "ca-2.key.pem").exists()  # generation 2's key is in the token
    csr = tmp_path / "req.pem"
    csr.write_bytes(make_csr(ec.generate_private_key(ec.SECP256R1())))
    record = tmp_path / "subject.json"
    record.write_text(json.dumps(subject_record()))
    issued = subprocess.run(
        [
            JITSUIN,
            "--home",
            str(home),
            "issue",
            "--csr",
            str(csr),
            "--subject",
            str(record),
            "--profile",
            "general",
            "--out",
            str(tmp_path / "cert.pem"),
        ],
        capture_output=True,
        text=True,
        env=token,
    )
    assert issued.returncode == 0, issued.stderr
    out = _python(
        token,
        f"""
import asyncio, datetime as dt
from pathlib import Path
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography import x509
from jitsuin.ca.clock import SystemClock
from jitsuin.server import config as c
from jitsuin.server.authority import Authority
async def main():
    cfg = c.load(Path({str(config)!r}), Path({str(home)!r}))
    authority = await Authority.open(cfg, SystemClock(), create=False)
    Path({str(tmp_path / "g2.pem")!r}).write_bytes(
        authority.current.certificate.public_bytes(serialization.Encoding.PEM))
    Path({str(tmp_path / "g2.crl")!r}).write_bytes(await authority.crl(2))
    cert = x509.load_pem_x509_certificate(Path({str(tmp_path / "cert.pem")!r}).read_bytes())
    from cryptography.x509 import ocsp
    from cryptography.hazmat.primitives import hashes
    request = ocsp.OCSPRequestBuilder().add_certificate(
        cert, authority.current.certificate, hashes.SHA1()).build()
    Path({str(tmp_path / "resp.der")!r}).write_bytes(
        await authority.ocsp(request.public_bytes(serialization.Encoding.DER)))
    print(type(authority.current.signer).__name__)
    await authority.close()
asyncio.run(main())
""",
    )
    assert out.strip() == "Pkcs11Signer"
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "g2.pem"), str(tmp_path / "cert.pem")],
        capture_output=True,
        text=True,
    )
    assert verify.stdout.strip().endswith("OK"), verify.stderr
    g2 = x509.load_pem_x509_certificate((tmp_path / "g2.pem").read_bytes())
    assert x509.load_der_x509_crl((tmp_path / "g2.crl").read_bytes()).is_signature_valid(
        g2.public_key()
    )
    response = ocsp.load_der_ocsp_response((tmp_path / "resp.der").read_bytes())
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    g2.public_key().verify(
        response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA384())
    )
    assert response.next_update_utc - response.this_update_utc >= dt.timedelta(hours=8)


def _jitsuin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JITSUIN, *args], capture_output=True, text=True, env=env)


def test_init_in_the_token_from_nothing_then_three_rollovers(own_token, tmp_path):
    """A CA made in the token by `jitsuin init`: one login serves the new key and loading it
    (UserAlreadyLoggedIn before), no passphrase anywhere, and each rollover's key in the token
    too (the second one failed before: two signers, two logins)."""
    env, pin_file = own_token
    home = tmp_path / "home"
    made = _jitsuin(
        env,
        "init",
        "--home",
        str(home),
        "--pkcs11-library",
        str(LIBRARY),
        "--pkcs11-token",
        "jitsuin-test",
        "--pkcs11-pin-file",
        str(pin_file),
    )
    assert made.returncode == 0, made.stderr
    assert "CA generation 1" in made.stdout
    assert not (home / "secrets" / "ca-passphrase").exists()
    assert not list(home.glob("keys/*"))  # no key file
    checked = _jitsuin(env, "check-config", "--home", str(home))
    assert checked.returncode == 0, checked.stderr
    for number in (2, 3, 4):
        rolled = _jitsuin(env, "ca", "rollover", "--home", str(home))
        assert rolled.returncode == 0, rolled.stderr
        assert f"generation {number}" in rolled.stdout
    assert _token_objects(env) == ["ca-1", "ca-2", "ca-3", "ca-4"]
    shown = _jitsuin(env, "ca", "show", "--home", str(home))
    assert shown.returncode == 0, shown.stderr
    assert "generation 4" in shown.stdout
    # a second init finds the CA and makes nothing
    again = _jitsuin(env, "init", "--home", str(home))
    assert again.returncode == 0, again.stderr
    assert "CA generation 4" in again.stdout
    assert _token_objects(env) == ["ca-1", "ca-2", "ca-3", "ca-4"]


def _get(url: str, data: bytes | None = None, content_type: str = "") -> bytes:
    request = urllib.request.Request(url, data=data)
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.read()


def _ocsp_and_crl(cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    """Ask the certificate's own OCSP responder and CRL distribution point; both answers must
    be signed by ``issuer``'s key (in the token). Returns the OCSP response."""
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    responder = next(
        d.access_location.value
        for d in aia
        if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP
    )
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    response = ocsp.load_der_ocsp_response(
        _get(
            responder,
            request.public_bytes(serialization.Encoding.DER),
            "application/ocsp-request",
        )
    )
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    issuer.public_key().verify(
        response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm)
    )
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    crl = x509.load_der_x509_crl(_get(points[0].full_name[0].value))
    assert crl.is_signature_valid(issuer.public_key())
    return response


def test_serve_issues_rolls_over_and_answers_with_the_token_key(own_token, tmp_path, live_jitsuin):
    """A live `jitsuin serve` whose CA is made in the token at its first start: EST issuance,
    OCSP and CRL signed there; POST /ra/ca/rollover twice (a 500 before: a second login) and a
    `jitsuin ca rollover` from another process, which the server follows."""
    env, pin_file = own_token
    token_toml = (
        f'key_store = "pkcs11"\npkcs11_library = "{LIBRARY}"\n'
        f'pkcs11_token = "jitsuin-test"\npkcs11_pin_file = "{pin_file}"'
    )
    home = tmp_path / "home"
    conf = {"SOFTHSM2_CONF": env["SOFTHSM2_CONF"]}
    with live_jitsuin.server(home, env=conf, ca_toml=token_toml) as server:
        # No CA key is a file (the audit checkpoint key is not a CA key: server/checkpoints.py).
        assert not list((home / "keys").glob("ca-*.key.pem"))
        _, first, _, _ = server.enrolled(tmp_path / "first")
        (g1,) = server.ca_certificates()
        first.verify_directly_issued_by(g1)
        assert _ocsp_and_crl(first, g1).certificate_status == ocsp.OCSPCertStatus.GOOD

        server.ok("POST", "/ra/ca/rollover", "root")
        server.ok("POST", "/ra/ca/rollover", "root")
        server.cli("ca", "rollover")
        for _ in range(300):  # the server follows a rollover made elsewhere within seconds
            if len(server.ca_certificates()) == 4:
                break
            time.sleep(0.1)
        generations = server.ca_certificates()
        assert len(generations) == 4
        server.trust_current_ca()
        _, last, _, _ = server.enrolled(tmp_path / "last")
        last.verify_directly_issued_by(generations[-1])
        assert _ocsp_and_crl(last, generations[-1]).certificate_status == (ocsp.OCSPCertStatus.GOOD)
        assert _ocsp_and_crl(first, g1).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert _token_objects(env) == ["ca-1", "ca-2", "ca-3", "ca-4"]


def test_signers_of_one_token_share_one_login_and_sign_from_many_threads(token):
    """Two generations' signers and a key generation in one process (one login), 8 threads
    signing at once through the one session: every signature verifies with its own key."""
    out = _python(
        token,
        f"""
import base64, json
from concurrent.futures import ThreadPoolExecutor
from cryptography.hazmat.primitives import serialization
from jitsuin.ca.keys import KeyType
from jitsuin.server.pkcs11_signer import Pkcs11Signer, TokenConfig
cfg = TokenConfig({str(LIBRARY)!r}, "jitsuin-test", {PIN!r})
signers = [Pkcs11Signer.generate(cfg, f"threads-{{n}}", KeyType("ecdsa-p256")) for n in (1, 2)]
signers.append(Pkcs11Signer(cfg, "threads-1"))  # loaded again: the same login, no second one
def sign(i):
    signer = signers[i % 3]
    data = f"message {{i}}".encode()
    return i % 3, data, signer.sign(data)
with ThreadPoolExecutor(8) as pool:
    results = list(pool.map(sign, range(96)))
public = [base64.b64encode(s.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    for s in signers]
print(json.dumps({{"public": public, "signed": [
    [n, base64.b64encode(d).decode(), base64.b64encode(s).decode()] for n, d, s in results]}}))
""",
    )
    import base64

    from cryptography.hazmat.primitives.serialization import load_der_public_key

    facts = json.loads(out)
    keys = [load_der_public_key(base64.b64decode(k)) for k in facts["public"]]
    assert facts["public"][0] == facts["public"][2] != facts["public"][1]
    assert len(facts["signed"]) == 96
    for n, data, signature in facts["signed"]:
        keys[n].verify(
            base64.b64decode(signature), base64.b64decode(data), ec.ECDSA(hashes.SHA256())
        )


def _openssl_ocsp(server, cert_pem: Path, out: Path) -> ocsp.OCSPResponse:
    """`openssl ocsp` asks the live server about ``cert_pem`` with nothing but the CA
    certificate as trust anchor; the answer must verify and say good."""
    ca_pem = server.home / "ca.pem"
    result = subprocess.run(
        [
            *("openssl", "ocsp", "-issuer", ca_pem, "-CAfile", ca_pem, "-resp_text"),
            *("-url", f"{server.http}/ocsp", "-cert", cert_pem, "-respout", out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr, result.stderr
    assert f"{cert_pem}: good" in result.stdout, result.stdout
    return ocsp.load_der_ocsp_response(out.read_bytes())


def test_the_delegated_responder_key_is_made_in_the_token(own_token, tmp_path, live_jitsuin):
    """``[ocsp] responder = "delegated"`` with a CA in the token: the responder key is made in
    the token too (``ocsp-1-<time>-<random>``, not the CA key, no key file), its certificate
    comes from the CA key, and `openssl ocsp` trusts the answers it signs through the token
    (RFC 6960 §4.2.2.2). A restart finds the key again by the stored certificate and makes
    none; a renewal makes a new key in the token."""
    env, pin_file = own_token
    token_toml = (
        f'key_store = "pkcs11"\npkcs11_library = "{LIBRARY}"\n'
        f'pkcs11_token = "jitsuin-test"\npkcs11_pin_file = "{pin_file}"'
    )
    home = tmp_path / "home"
    conf = {"SOFTHSM2_CONF": env["SOFTHSM2_CONF"]}
    with live_jitsuin.server(home, env=conf, ca_toml=token_toml) as server:
        _, _, leaf_pem, _ = server.enrolled(tmp_path / "leaf")
        server.stop()
        config = home / "jitsuin.toml"
        text = config.read_text()
        assert 'responder = "ca"' in text
        config.write_text(text.replace('responder = "ca"', 'responder = "delegated"'))
        server.start()
        (ca,) = server.ca_certificates()
        response = _openssl_ocsp(server, leaf_pem, tmp_path / "first.der")
        [responder] = response.certificates
        responder.verify_directly_issued_by(ca)
        assert responder.public_key() != ca.public_key()
        assert response.responder_key_hash == (
            x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
        )
        responder.public_key().verify(
            response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256())
        )
        ca_key, responder_key = _token_objects(env)
        assert ca_key == "ca-1"
        assert re.fullmatch(r"ocsp-1-\d{8}T\d{6}Z-[0-9a-f]{8}", responder_key), responder_key
        assert not list((home / "keys").glob("ocsp-*"))  # no responder key file
        assert not list(home.rglob("*ocsp*.key*"))

        server.stop()
        server.start()
        again = _openssl_ocsp(server, leaf_pem, tmp_path / "again.der")
        assert again.certificates == [responder]  # the same key and certificate after a restart
    assert _token_objects(env) == ["ca-1", responder_key]

    # Renewal (less than 4 days left, by a clock moved 4 days on) makes a new key in the token.
    out = tmp_path / "renewed.der"
    _python(
        env,
        f"""
import asyncio, datetime as dt
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from jitsuin.ca.clock import FixedClock
from jitsuin.server import config as c
from jitsuin.server.authority import Authority
async def main():
    home = Path({str(home)!r})
    clock = FixedClock(dt.datetime.now(dt.UTC) + dt.timedelta(days=4))
    authority = await Authority.open(c.load(home / "jitsuin.toml", home), clock, create=False)
    leaf = x509.load_pem_x509_certificate(Path({str(leaf_pem)!r}).read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(
        leaf, authority.current.certificate, hashes.SHA256()).build()
    Path({str(out)!r}).write_bytes(
        await authority.ocsp(request.public_bytes(serialization.Encoding.DER)))
    await authority.close()
asyncio.run(main())
""",
    )
    renewed = ocsp.load_der_ocsp_response(out.read_bytes())
    assert renewed.certificate_status == ocsp.OCSPCertStatus.GOOD
    [second] = renewed.certificates
    second.verify_directly_issued_by(ca)
    assert second.public_key() not in (responder.public_key(), ca.public_key())
    second.public_key().verify(
        renewed.signature, renewed.tbs_response_bytes, ec.ECDSA(hashes.SHA256())
    )
    ca_key, first_key, second_key = _token_objects(env)
    assert (ca_key, first_key) == ("ca-1", responder_key)
    assert re.fullmatch(r"ocsp-1-\d{8}T\d{6}Z-[0-9a-f]{8}", second_key), second_key
    assert not list(home.rglob("*ocsp*.key*"))

"""The page's ES modules (DER, SHA-256, PKCS#10, PKCS#7, X.509, PKCS#12, OCSP) run in Chromium,
loaded from the server the way the pages load them, and judged by independent implementations:
asn1crypto and hashlib, cryptography, jitsuin's own CSR checks, and openssl."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jitsuin.ca.csr import verify_csr
from jitsuin.protocol import est


@pytest.fixture(scope="module")
def js(browser, server):
    """``js(body, arg)``: run ``body`` (an async function body with ``der``, ``sha``, ``p10``,
    ``p7``, ``p12``, ``x509`` and ``arg`` in scope) in a page of the server; returns its value."""
    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    page.goto(server.https + "/ca-certificates")

    def run(body: str, arg: Any = None) -> Any:
        # Evaluated by the DevTools protocol: the page's CSP (no eval) still holds for the page.
        return page.evaluate(
            """async (arg) => {
                const [der, sha, p10, p7, p12, x509] = await Promise.all(
                  ["der", "sha256", "pkcs10", "pkcs7", "pkcs12", "x509"].map(
                    (m) => import(`/static/${m}.js`)));
            """
            + body
            + "\n}",
            arg,
        )

    yield run
    context.close()


# -- DER ----------------------------------------------------------------------------------------
INTEGERS = [0, 1, 127, 128, 255, 256, 32767, 32768, 65535, 2**31, 2**64 + 1, 2**200 - 3]
OIDS = [
    "1.2.840.113549.1.1.11",
    "2.5.4.3",
    "1.3.6.1.4.1.32473.16777215.1.1",
    "2.999.3",
    "0.9.2342.19200300.100.1.1",
    "1.2.840.10045.4.3.2",
]
OCTET_LENGTHS = [0, 1, 127, 128, 255, 256, 300, 65535, 70000]


def test_der_encoding_matches_asn1crypto(js):
    out = js(
        """
        const h = (b) => der.hex(b);
        return {
          integers: arg.integers.map((n) => h(der.integer(BigInt(n)))),
          oids: arg.oids.map((o) => h(der.oid(o))),
          octets: arg.lengths.map((n) => h(der.octetString(new Uint8Array(n).fill(7)))),
          bmp: h(der.bmpString("日本語 Ω 𝄞")),
          utf8: h(der.utf8String("Hanako 花子")),
          nested: h(der.sequence(
            der.integer(3n),
            der.sequence(der.nullValue(), der.bitString(new Uint8Array([1, 2]))),
            der.explicit(0, der.oid("2.5.4.3")))),
          set: h(der.setOf(
            der.integer(300n), der.integer(2n), der.octetString(new Uint8Array([0])))),
        };""",
        {"integers": [str(n) for n in INTEGERS], "oids": OIDS, "lengths": OCTET_LENGTHS},
    )
    assert out["integers"] == [core.Integer(n).dump().hex().upper() for n in INTEGERS]
    assert out["oids"] == [core.ObjectIdentifier(o).dump().hex().upper() for o in OIDS]
    assert out["octets"] == [
        core.OctetString(b"\x07" * n).dump().hex().upper() for n in OCTET_LENGTHS
    ]
    assert out["bmp"] == core.BMPString("日本語 Ω 𝄞").dump().hex().upper()
    assert out["utf8"] == core.UTF8String("Hanako 花子").dump().hex().upper()

    class Inner(core.Sequence):
        _fields = [("n", core.Null), ("b", core.OctetBitString)]  # noqa: RUF012

    class Outer(core.Sequence):
        _fields = [  # noqa: RUF012
            ("v", core.Integer),
            ("inner", Inner),
            ("tagged", core.ObjectIdentifier, {"explicit": 0}),
        ]

    expected = Outer({"v": 3, "inner": {"n": None, "b": b"\x01\x02"}, "tagged": "2.5.4.3"})
    assert out["nested"] == expected.dump().hex().upper()
    # DER SET OF: the elements sorted by their encodings (X.690 §11.6).
    parts = sorted(
        [core.Integer(300).dump(), core.Integer(2).dump(), core.OctetString(b"\0").dump()]
    )
    assert out["set"] == (b"\x31" + bytes([sum(map(len, parts))]) + b"".join(parts)).hex().upper()


def test_der_decoding_reads_what_asn1crypto_writes(js):
    encoded = {
        "integers": [core.Integer(n).dump().hex() for n in [*INTEGERS, -1, -129]],
        "oids": [core.ObjectIdentifier(o).dump().hex() for o in OIDS],
        "bmp": core.BMPString("日本語 Ω").dump().hex(),
        "printable": core.PrintableString("Tokyo 1").dump().hex(),
        "utc": core.UTCTime(dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)).dump().hex(),
        "utc_old": core.UTCTime(dt.datetime(1999, 1, 2, 3, 4, 5, tzinfo=dt.UTC)).dump().hex(),
        "gen": core.GeneralizedTime(dt.datetime(2050, 1, 1, tzinfo=dt.UTC)).dump().hex(),
        "long": core.OctetString(os.urandom(70000)).dump().hex(),
    }
    out = js(
        """
        const d = (x) => der.decode(der.fromHex(x));
        return {
          integers: arg.integers.map((x) => d(x).bigint().toString()),
          oids: arg.oids.map((x) => d(x).oid()),
          bmp: d(arg.bmp).string(),
          printable: d(arg.printable).string(),
          dates: [arg.utc, arg.utc_old, arg.gen].map((x) => d(x).date().toISOString()),
          long: der.hex(d(arg.long).octets()),
          indefinite: der.hex(
            der.decode(der.fromHex("3080040201020403030405 0000")).children[1].octets()),
          constructed: der.hex(der.decode(der.fromHex("2480040201020401030000")).octets()),
        };""",
        encoded,
    )
    assert out["integers"] == [str(n) for n in [*INTEGERS, -1, -129]]
    assert out["oids"] == OIDS
    assert out["bmp"] == "日本語 Ω" and out["printable"] == "Tokyo 1"
    assert out["dates"] == [
        "2049-12-31T23:59:59.000Z",
        "1999-01-02T03:04:05.000Z",
        "2050-01-01T00:00:00.000Z",
    ]
    assert out["long"] == encoded["long"][10:].upper()  # after 04 83 01 11 70
    assert out["indefinite"] == "030405"  # BER indefinite length (X.690 §8.1.3.6)
    assert out["constructed"] == "010203"  # BER constructed OCTET STRING (§8.7.3)


@pytest.mark.parametrize(
    "bad",
    ["", "30", "3004020101", "300302010100", "0481", "1f0100", "04850100000000", "3003020201"],
)
def test_der_refuses_broken_encodings(js, bad):
    error = js(
        """try { der.decode(der.fromHex(arg)).children; return null; }
           catch (e) { return e instanceof der.DERError ? "DERError" : String(e); }""",
        bad,
    )
    assert error == "DERError"


# -- SHA-256 and the PKCS#12 key derivation ------------------------------------------------------
def test_sha256_matches_hashlib(js):
    messages = [os.urandom(n) for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_000)]
    out = js(
        """return {
             plain: arg.messages.map((m) => der.hex(sha.sha256(der.fromHex(m)))),
             iterated: der.hex(sha.sha256Iterated(der.fromHex(arg.messages[3]), 1000)),
           };""",
        {"messages": [m.hex() for m in messages]},
    )
    assert out["plain"] == [hashlib.sha256(m).hexdigest().upper() for m in messages]
    digest = messages[3]
    for _ in range(1000):
        digest = hashlib.sha256(digest).digest()
    assert out["iterated"] == digest.hex().upper()


def reference_kdf(
    name: str, id_: int, password: str, salt: bytes, iterations: int, n: int
) -> bytes:
    """RFC 7292 Appendix B.2, written from the RFC independently of the page's code."""
    u, v = hashlib.new(name).digest_size, hashlib.new(name).block_size
    bmp = password.encode("utf-16-be") + b"\0\0"

    def stretch(b: bytes) -> bytes:
        return bytes(b[i % len(b)] for i in range(v * math.ceil(len(b) / v))) if b else b""

    d, i_ = bytes([id_]) * v, bytearray(stretch(salt) + stretch(bmp))
    out = b""
    for _ in range(math.ceil(n / u)):
        a = d + bytes(i_)
        for _ in range(iterations):
            a = hashlib.new(name, a).digest()
        out += a
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for j in range(0, len(i_), v):
            block = (int.from_bytes(i_[j : j + v], "big") + b + 1) % (1 << (8 * v))
            i_[j : j + v] = block.to_bytes(v, "big")
    return out[:n]


def test_pkcs12_kdf(js):
    # The published vector (RFC 7292 B.2 with SHA-1: password "smeg", as in OpenSSL's and
    # Bouncy Castle's test suites), then the independent reference for SHA-256.
    salt = bytes.fromhex("0A58CF64530D823F")
    assert reference_kdf("sha1", 1, "smeg", salt, 1, 24).hex().upper() == (
        "8AAAE6297B6CB04642AB5B077851284EB7128F1A2A7FBCA3"
    )
    cases = [
        ("SHA-1", "sha1", 1, "smeg", salt.hex(), 1, 24),
        ("SHA-1", "sha1", 3, "パスワード", "00112233", 2048, 20),
        ("SHA-256", "sha256", 3, "correct horse 馬", os.urandom(16).hex(), 5000, 32),
        ("SHA-256", "sha256", 1, "x", os.urandom(8).hex(), 3, 80),  # several blocks
    ]
    out = js(
        """const results = [];
           for (const [hash, , id, password, salt, iterations, n] of arg) {
             const key = await p12.pkcs12KDF(
               hash, id, p12.bmpPassword(password), der.fromHex(salt), iterations, n);
             results.push(der.hex(key));
           }
           return results;""",
        cases,
    )
    for got, (_, name, id_, password, salt_hex, iterations, n) in zip(out, cases, strict=True):
        assert (
            got
            == reference_kdf(name, id_, password, bytes.fromhex(salt_hex), iterations, n)
            .hex()
            .upper()
        )


# -- PKCS#10 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key_type", "kind", "size", "hash_name"),
    [
        ("ecdsa-p256", ec.EllipticCurvePublicKey, 256, "sha256"),
        ("ecdsa-p384", ec.EllipticCurvePublicKey, 384, "sha384"),
        ("rsa-2048", rsa.RSAPublicKey, 2048, "sha256"),
        ("rsa-3072", rsa.RSAPublicKey, 3072, "sha256"),
    ],
)
def test_csr_made_in_the_page(js, key_type, kind, size, hash_name):
    out = js(
        """const keys = await p10.generateKeyPair(arg);
           const csr = await p10.createCSR(keys, arg);
           const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
           return { csr: der.toBase64(csr), spki: der.toBase64(spki) };""",
        key_type,
    )
    der = base64.b64decode(out["csr"])
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    assert isinstance(csr.public_key(), kind) and csr.public_key().key_size == size
    assert (
        csr.signature_hash_algorithm is not None and csr.signature_hash_algorithm.name == hash_name
    )
    assert len(csr.subject) == 0 and len(csr.extensions) == 0
    spki = csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki == base64.b64decode(out["spki"])
    assert csr.public_bytes(serialization.Encoding.DER) == der  # canonical DER
    verify_csr(der)  # and jitsuin's own checks (SEED-R3) accept it
    # openssl agrees that the self-signature verifies.
    checked = subprocess.run(
        ["openssl", "req", "-inform", "DER", "-verify", "-noout"],
        input=der, capture_output=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0 and b"verify OK" in checked.stdout + checked.stderr


def test_csr_with_a_broken_signature_is_refused_by_cryptography(js):
    """The check above can fail: flip one bit of the page's signature."""
    out = js(
        """const keys = await p10.generateKeyPair("ecdsa-p256");
           const csr = await p10.createCSR(keys, "ecdsa-p256");
           csr[csr.length - 5] ^= 1;
           return der.toBase64(csr);"""
    )
    assert not x509.load_der_x509_csr(base64.b64decode(out)).is_signature_valid


# -- certificates for the X.509, PKCS#7 and PKCS#12 tests ---------------------------------------
def make_ca(key: Any, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(
            key, hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) else hashes.SHA256()
        )
    )


def make_leaf(public_key: Any, ca_key: Any, ca: x509.Certificate, email: str) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Hanako Yamada"),
                ]
            )
        )
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=396))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier("1.3.6.1.4.1.32473.9.1.1"), None)]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(
            ca_key,
            hashes.SHA384() if isinstance(ca_key, ec.EllipticCurvePrivateKey) else hashes.SHA256(),
        )
    )


def der_of(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.DER).hex()


def test_x509_parse_and_signature_checks(js):
    ec_ca_key = ec.generate_private_key(ec.SECP384R1())
    ec_ca = make_ca(ec_ca_key, "EC CA")
    rsa_ca_key = rsa.generate_private_key(65537, 2048)
    rsa_ca = make_ca(rsa_ca_key, "RSA CA")
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ec_leaf = make_leaf(leaf_key.public_key(), ec_ca_key, ec_ca, "a@example.jp")
    rsa_leaf = make_leaf(leaf_key.public_key(), rsa_ca_key, rsa_ca, "b@example.jp")
    out = js(
        """const [ecCa, rsaCa, ecLeaf, rsaLeaf] = arg.map(
             (h) => x509.parseCertificate(der.fromHex(h)));
           const tampered = x509.parseCertificate(der.fromHex(arg[2]));
           tampered.tbs = tampered.tbs.slice(); tampered.tbs[tampered.tbs.length - 3] ^= 1;
           return {
             subject: ecLeaf.subject.text, issuer: ecLeaf.issuer.text, emails: ecLeaf.emails,
             eku: ecLeaf.eku, policies: ecLeaf.policies, ca: [ecCa.ca, ecLeaf.ca],
             notAfter: ecLeaf.notAfter.toISOString(), serial: ecLeaf.serial,
             akiIsSki: der.equal(ecLeaf.aki, ecCa.ski),
             fingerprint: await x509.sha256Fingerprint(ecLeaf.der),
             verdicts: [
               await x509.signedBy(ecLeaf, ecCa), await x509.signedBy(rsaLeaf, rsaCa),
               await x509.signedBy(ecLeaf, rsaCa).catch(() => "refused"),
               await x509.signedBy(tampered, ecCa),
             ],
             pem: x509.certificatesFromFile(new TextEncoder().encode(
               der.toPEM("CERTIFICATE", ecLeaf.der) + der.toPEM("CERTIFICATE", ecCa.der))).length,
           };""",
        [der_of(c) for c in (ec_ca, rsa_ca, ec_leaf, rsa_leaf)],
    )
    assert out["subject"] == "CN=Hanako Yamada, C=JP" and out["issuer"] == "CN=EC CA"
    assert out["emails"] == ["a@example.jp"]
    assert out["eku"] == [ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string]
    assert out["policies"] == ["1.3.6.1.4.1.32473.9.1.1"]
    assert out["ca"] == [True, False]
    assert out["notAfter"] == ec_leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert out["serial"] == format(ec_leaf.serial_number, "X").zfill(len(out["serial"]))
    assert out["akiIsSki"] is True
    assert out["fingerprint"] == ec_leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    assert out["verdicts"] == [True, True, "refused", False]
    assert out["pem"] == 2


def test_ocsp_request_and_response(js):
    """ocsp.js against cryptography: the request reads as one CertID (SHA-256) with the nonce;
    a response is believed only when the issuer signed it, it echoes the nonce and answers this
    CertID; the revocation time and reason are read."""
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = make_ca(ca_key, "EC CA")
    other_key = ec.generate_private_key(ec.SECP384R1())
    leaf = make_leaf(ec.generate_private_key(ec.SECP256R1()).public_key(), ca_key, ca, "a@x.jp")
    other_leaf = make_leaf(other_key.public_key(), ca_key, ca, "b@x.jp")
    nonce = os.urandom(16)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    revoked_at = now - dt.timedelta(days=2)

    def response(
        status: ocsp.OCSPCertStatus,
        *,
        key: Any = ca_key,
        for_cert: x509.Certificate = leaf,
        echo: bytes = nonce,
    ) -> str:
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=for_cert,
                issuer=ca,
                algorithm=hashes.SHA256(),
                cert_status=status,
                this_update=now,
                next_update=now + dt.timedelta(days=1),
                revocation_time=revoked_at if status == ocsp.OCSPCertStatus.REVOKED else None,
                revocation_reason=(
                    x509.ReasonFlags.key_compromise
                    if status == ocsp.OCSPCertStatus.REVOKED
                    else None
                ),
            )
            # A forger signs as a CA of the same name with a key of its own.
            .responder_id(
                ocsp.OCSPResponderEncoding.HASH, ca if key is ca_key else make_ca(key, "EC CA")
            )
            .add_extension(x509.OCSPNonce(echo), critical=False)
        )
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER).hex()

    cases = {
        "good": response(ocsp.OCSPCertStatus.GOOD),
        "revoked": response(ocsp.OCSPCertStatus.REVOKED),
        "unknown": response(ocsp.OCSPCertStatus.UNKNOWN),
        "forged": response(ocsp.OCSPCertStatus.GOOD, key=other_key),
        "replayed": response(ocsp.OCSPCertStatus.GOOD, echo=os.urandom(16)),
        "another": response(ocsp.OCSPCertStatus.GOOD, for_cert=other_leaf),
        "unsuccessful": ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.UNAUTHORIZED
        )
        .public_bytes(serialization.Encoding.DER)
        .hex(),
        "garbage": "3003020101",
    }
    out = js(
        """const ocsp = await import("/static/ocsp.js");
           const [ca, leaf] = [arg.ca, arg.leaf].map((h) => x509.parseCertificate(der.fromHex(h)));
           const nonce = der.fromHex(arg.nonce);
           const id = await ocsp.certID(leaf, ca);
           const answers = {};
           for (const [name, hex] of Object.entries(arg.cases)) {
             try {
               const r = await ocsp.readResponse(der.fromHex(hex), id, nonce, ca);
               answers[name] = [r.status, r.revokedAt?.toISOString() ?? null, r.reason ?? null];
             } catch (error) {
               answers[name] = [error instanceof ocsp.OCSPError ? "refused" : String(error)];
             }
           }
           return { request: der.hex(ocsp.buildRequest(id, nonce)), answers };""",
        {"ca": der_of(ca), "leaf": der_of(leaf), "nonce": nonce.hex(), "cases": cases},
    )
    request = ocsp.load_der_ocsp_request(bytes.fromhex(out["request"]))
    expected = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, hashes.SHA256()).build()
    assert request.serial_number == leaf.serial_number
    assert request.issuer_name_hash == expected.issuer_name_hash
    assert request.issuer_key_hash == expected.issuer_key_hash
    assert isinstance(request.hash_algorithm, hashes.SHA256)
    assert request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    when = revoked_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert out["answers"] == {
        "good": ["good", None, None],
        "revoked": ["revoked", when, "keyCompromise"],
        "unknown": ["unknown", None, None],
        "forged": ["refused"],
        "replayed": ["refused"],
        "another": ["refused"],
        "unsuccessful": ["refused"],
        "garbage": ["refused"],
    }


def test_certs_only_pkcs7(js):
    key = ec.generate_private_key(ec.SECP256R1())
    ca = make_ca(key, "CA")
    leaf = make_leaf(ec.generate_private_key(ec.SECP256R1()).public_key(), key, ca, "c@example.jp")
    body = est.certs_only([leaf, ca]).decode()  # base64 in 64-character lines, as EST sends it
    out = js("return p7.certificatesFromESTBody(arg).map((c) => der.hex(c));", body)
    # A DER SET OF: in the order of the encodings, not the order given.
    assert sorted(out) == sorted([der_of(leaf).upper(), der_of(ca).upper()])


# -- PKCS#12 ------------------------------------------------------------------------------------
def openssl_info(path: Path, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "pkcs12", "-in", str(path), "-info", "-nodes", "-passin", "env:PASS"],
        capture_output=True, text=True, errors="replace", env={"PASS": password}, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-2048"])
def test_pkcs12_made_in_the_page(js, tmp_path: Path, key_type):
    csr_b64 = js(
        """window.__keys = await p10.generateKeyPair(arg);
           return der.toBase64(await p10.createCSR(window.__keys, arg));""",
        key_type,
    )
    csr = x509.load_der_x509_csr(base64.b64decode(csr_b64))
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = make_ca(ca_key, "Test CA")
    leaf = make_leaf(csr.public_key(), ca_key, ca, "p12@example.jp")
    password = "pass phrase 印鑑"
    out = js(
        """const pfx = await p12.createPFX({
             privateKey: window.__keys.privateKey, certificate: der.fromHex(arg.leaf),
             chain: [der.fromHex(arg.ca)], friendlyName: "花子", password: arg.password,
             iterations: 2048 });
           const back = await p12.parsePFX(pfx, arg.password);
           const leaf = x509.parseCertificate(back.certificates[0].der);
           let wrong = null;
           try { await p12.parsePFX(pfx, "wrong"); } catch (e) { wrong = e.code; }
           return {
             pfx: der.toBase64(pfx), mac: back.mac,
             certificates: back.certificates.map((c) => der.hex(c.der)),
             names: back.certificates.map((c) => c.friendlyName ?? null),
             linked: back.certificates[0].localKeyId === back.keys[0].localKeyId,
             matches: await p12.keyMatches(back.keys[0].pkcs8, leaf),
             otherMatches: await p12.keyMatches(
               back.keys[0].pkcs8, x509.parseCertificate(der.fromHex(arg.ca))),
             wrong,
           };""",
        {"leaf": der_of(leaf), "ca": der_of(ca), "password": password},
    )
    data = base64.b64decode(out["pfx"])
    key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode())
    assert cert == leaf and extra == [ca]
    assert key is not None and key.public_key() == leaf.public_key()
    loaded = pkcs12.load_pkcs12(data, password.encode())
    assert loaded.cert is not None and loaded.cert.friendly_name == "花子".encode()
    path = tmp_path / "page.p12"
    path.write_bytes(data)
    info = openssl_info(path, password)
    assert info.returncode == 0, info.stderr
    assert "MAC: sha256, Iteration 2048" in info.stderr
    assert "PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256" in info.stderr
    # The page reads its own file back, and refuses the wrong passphrase.
    assert out["mac"] == "verified"
    assert out["certificates"] == [der_of(leaf).upper(), der_of(ca).upper()]
    assert out["names"] == ["花子", None]
    assert out["linked"] is True and out["matches"] is True and out["otherMatches"] is False
    assert out["wrong"] == "wrong-password"


def test_pkcs12_from_other_software(js, tmp_path: Path):
    """The check page reads what cryptography and openssl write (PBES2, SHA-256 and SHA-1 MACs)
    and says plainly when a file uses the legacy schemes browsers cannot decrypt."""
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = make_ca(ca_key, "Other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_leaf(key.public_key(), ca_key, ca, "other@example.jp")
    password = "s3cret-pass"
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(5000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    files = {
        "cryptography": pkcs12.serialize_key_and_certificates(b"x", key, leaf, [ca], encryption)
    }
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    for name, extra in (
        ("openssl-default", []),
        ("openssl-sha1-mac", ["-macalg", "sha1"]),
        (
            "openssl-3des",
            ["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"],
        ),
    ):
        made = subprocess.run(
            ["openssl", "pkcs12", "-export", "-inkey", str(tmp_path / "key.pem"),
             "-in", str(tmp_path / "cert.pem"), "-passout", f"pass:{password}", *extra],
            capture_output=True, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        files[name] = made.stdout
    out = js(
        """const results = {};
           for (const [name, b64] of Object.entries(arg.files)) {
             try {
               const back = await p12.parsePFX(der.fromBase64(b64), arg.password);
               const leaf = x509.parseCertificate(back.certificates.find((c) => c.localKeyId).der);
               const matches = await p12.keyMatches(back.keys[0].pkcs8, leaf);
               results[name] = { mac: back.mac, leaf: der.hex(leaf.der), matches };
             } catch (e) { results[name] = { error: e.code ?? String(e) }; }
           }
           return results;""",
        {
            "files": {k: base64.b64encode(v).decode() for k, v in files.items()},
            "password": password,
        },
    )
    for name in ("cryptography", "openssl-default", "openssl-sha1-mac"):
        assert out[name] == {"mac": "verified", "leaf": der_of(leaf).upper(), "matches": True}, name
    assert out["openssl-3des"] == {"error": "unsupported"}

"""``jitsuin lint --profile-file``: a CA that is not jitsuin, described by the profile file
tests/conformance/data/other-ca.toml (docs/conformance.md, "Describing another CA: the profile
file"). Its root, its delegated OCSP responder, its subscriber certificates, its CRL and an OCSP
response are made here with cryptography, not by jitsuin's issuer: the CRL, OCSP and caIssuers
URLs are on other hosts and paths, OCSP is signed by a delegated responder, and the purposes are
emailProtection + documentSigning without clientAuth. The good documents lint clean; each
defect (one per rule that reads the profile) is caught by its rule and no other.

The CLI runs in-process (``jitsuin.server.__main__.main``), as in test_cli.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from jitsuin.ca.issuance import CAPolicy
from jitsuin.ca.keys import KeyType
from jitsuin.conformance import profile as profile_description
from jitsuin.conformance.documents import Expectations
from jitsuin.conformance.profile import ProfileFileError
from jitsuin.conformance.report import schema as report_schema
from jitsuin.server import config as configuration
from jitsuin.server.__main__ import main

PROFILE_FILE = Path(__file__).parent / "data" / "other-ca.toml"
SCHEMA = Path(__file__).parents[2] / "conformance" / "schemas" / "profile.schema.json"
UTC = dt.UTC
# cryptography stamps an OCSP response's producedAt with the clock, and R-06 wants it inside the
# responder certificate's validity: the documents are dated around today, judged --at now.
AT = dt.datetime.now(UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)
DER = serialization.Encoding.DER

CRL_URL = "http://crl.example.org/repository/ca1-full.crl"
OCSP_URL = "http://status.example.net/ocsp-check"
CA_URL = "http://aia.example.com/certs/ca1.der"
CP_OID = "1.3.6.1.4.1.32473.7.1.1.1"
SMIME_IV_MULTIPURPOSE = "2.23.140.1.5.4.2"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Engineering Society"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Example Engineering Society Root CA"),
    ]
)
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _ski(key: Any) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key)


def _ku(**on: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


@dataclass
class OtherCA:
    key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    responder_key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, *, root_days: int = 3000) -> OtherCA:
        key = ec.generate_private_key(ec.SECP384R1())
        root = (
            x509.CertificateBuilder()
            .subject_name(ROOT_NAME)
            .issuer_name(ROOT_NAME)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(AT - 400 * DAY)
            .not_valid_after(AT + root_days * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            # OCSP is delegated: the root key signs certificates and CRLs only (no
            # digitalSignature), which jitsuin's own layout would call a defect (C-01).
            .add_extension(_ku(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(_ski(key.public_key()), critical=False)
            .sign(key, hashes.SHA384())
        )
        return cls(key, root, ec.generate_private_key(ec.SECP256R1()))

    def _issued(self, subject: x509.Name, public_key: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ROOT_NAME)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .add_extension(_ski(public_key), critical=False)
        )

    def responder(self, *, nocheck: bool = True) -> x509.Certificate:
        """RFC 6960 §4.2.2.2: id-kp-OCSPSigning, issued by the CA key, short-lived."""
        builder = (
            self._issued(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                        x509.NameAttribute(
                            NameOID.ORGANIZATION_NAME, "Example Engineering Society"
                        ),
                        x509.NameAttribute(NameOID.COMMON_NAME, "Engineering Society OCSP"),
                    ]
                ),
                self.responder_key.public_key(),
            )
            .not_valid_before(AT - 2 * DAY)
            .not_valid_after(AT + 5 * DAY)
            .add_extension(_ku(digital_signature=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
            )
        )
        if nocheck:
            builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
        return builder.sign(self.key, hashes.SHA384())

    def leaf(self, change: Callable[[dict[str, Any]], None] | None = None) -> x509.Certificate:
        """A subscriber certificate of the profile ``engineer``; ``change`` edits the parts."""
        parts: dict[str, Any] = {
            "key": ec.generate_private_key(ec.SECP256R1()),
            "subject": [
                (NameOID.COUNTRY_NAME, "JP"),
                (NameOID.SURNAME, "Suzuki"),
                (NameOID.GIVEN_NAME, "Taro"),
                (NameOID.TITLE, "Licensed Engineer"),
                (NameOID.SERIAL_NUMBER, "E-123456"),
                (NameOID.COMMON_NAME, "Suzuki Taro"),  # family-given
            ],
            "san": [x509.RFC822Name("taro.suzuki@example.org")],
            "eku": [ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING],
            "policies": [SMIME_IV_MULTIPURPOSE, CP_OID],
            "crl": CRL_URL,
            "ocsp": OCSP_URL,
            "ca_issuers": CA_URL,
            "days": 365,
            "extra": [],
            "ca": False,
        }
        if change is not None:
            change(parts)
        key = parts["key"]
        public = key.public_key()
        ca_bits = {"key_cert_sign": True, "crl_sign": True} if parts["ca"] else {}
        ku = (
            _ku(digital_signature=True, content_commitment=True, key_encipherment=True, **ca_bits)
            if isinstance(key, rsa.RSAPrivateKey)
            else _ku(digital_signature=True, content_commitment=True, key_agreement=True, **ca_bits)
        )
        start = AT - 50 * DAY
        builder = (
            self._issued(x509.Name([x509.NameAttribute(o, v) for o, v in parts["subject"]]), public)
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=parts["days"], seconds=-1))
            .add_extension(x509.BasicConstraints(ca=parts["ca"], path_length=None), critical=True)
            .add_extension(ku, critical=True)
            .add_extension(x509.ExtendedKeyUsage(parts["eku"]), critical=False)
            .add_extension(x509.SubjectAlternativeName(parts["san"]), critical=False)
            .add_extension(
                x509.CertificatePolicies(
                    [
                        x509.PolicyInformation(x509.ObjectIdentifier(o), None)
                        for o in parts["policies"]
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier(parts["crl"])], None, None, None
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(parts["ocsp"]),
                        ),
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(parts["ca_issuers"]),
                        ),
                    ]
                ),
                critical=False,
            )
        )
        for extension in parts["extra"]:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(self.key, hashes.SHA384())

    def crl(self, revoked: x509.Certificate) -> x509.CertificateRevocationList:
        this = AT - DAY
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(revoked.serial_number)
            .revocation_date(AT - 9 * DAY)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        return (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ROOT_NAME)
            .last_update(this)
            .next_update(this + dt.timedelta(days=7))
            .add_revoked_certificate(entry)
            .add_extension(x509.CRLNumber(17), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA384())
        )

    def ocsp(self, cert: x509.Certificate, responder: x509.Certificate) -> ocsp.OCSPResponse:
        """A response signed by the delegated responder, its certificate included."""
        this = AT - DAY
        return (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=cert,
                issuer=self.root,
                algorithm=hashes.SHA1(),  # noqa: S303 (RFC 5019 §2.1.1 CertID)
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=this,
                next_update=this + dt.timedelta(days=3),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
            .certificates([responder])
            .sign(self.responder_key, hashes.SHA256())
        )


def _write(folder: Path, name: str, der: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(der)


def _lint(tmp: Path, folder: Path, *extra: str) -> dict[str, Any]:
    out = tmp / f"{folder.name}.json"
    code = main(
        ["lint", "--at", AT.isoformat(), "--format", "json", "-o", str(out), *extra, str(folder)]
    )
    report = json.loads(out.read_text())
    jsonschema.validate(report, report_schema("lint-report"))
    assert code == (1 if report["errors_present"] or report["fatals_present"] else 0)
    return report


def _failed(report: dict[str, Any]) -> dict[str, set[str]]:
    """File name -> the rules with a finding at WARNING or above."""
    out: dict[str, set[str]] = {}
    for f in report["files"]:
        name = Path(f["path"]).name
        out.setdefault(name, set())
        out[name] |= {
            x["rule"]
            for x in f["findings"]
            if x["severity"] in ("WARNING", "ERROR", "FATAL") and not x.get("suppressed")
        }
    return out


@pytest.fixture(scope="module")
def other_ca() -> OtherCA:
    return OtherCA.make()


@pytest.fixture(scope="module")
def good(other_ca: OtherCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("other-ca") / "good"
    ca = other_ca
    rsa_leaf = ca.leaf(lambda p: p.update(key=rsa.generate_private_key(65537, 3072)))
    ec_leaf = ca.leaf()
    revoked = ca.leaf(
        lambda p: (
            p.update(san=[x509.RFC822Name("hanako.sato@example.org")])
            or p.update(
                subject=[
                    (NameOID.COUNTRY_NAME, "DE"),
                    (NameOID.SURNAME, "Sato"),
                    (NameOID.GIVEN_NAME, "Hanako"),
                    (NameOID.TITLE, "Licensed Engineer"),
                    (NameOID.SERIAL_NUMBER, "E-654321"),
                    (NameOID.COMMON_NAME, "Sato Hanako"),
                ]
            )
        )
    )
    responder = ca.responder()
    _write(folder, "root.der", ca.root.public_bytes(DER))
    _write(folder, "responder.der", responder.public_bytes(DER))
    _write(folder, "leaf-rsa.der", rsa_leaf.public_bytes(DER))
    _write(folder, "leaf-ec.der", ec_leaf.public_bytes(DER))
    _write(folder, "revoked.der", revoked.public_bytes(DER))
    _write(folder, "ca1-full.crl", ca.crl(revoked).public_bytes(DER))
    _write(folder, "leaf-ec.ocsp", ca.ocsp(ec_leaf, responder).public_bytes(DER))
    return folder


def test_profile_file_matches_its_schema() -> None:
    """The test data, read as TOML, is an instance of the published schema, and the schema
    refuses what the loader refuses (an unknown key, an https URL)."""
    import tomllib

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = tomllib.loads(PROFILE_FILE.read_text())
    jsonschema.validate(document, schema)
    # The schema and the loader know the same names.
    profile = schema["$defs"]["profile"]["properties"]
    assert set(profile["key_types"]["items"]["enum"]) == {k.value for k in KeyType}
    assert set(schema["$defs"]["attribute"]["enum"]) == set(profile_description.ATTRIBUTE_OIDS)
    assert set(profile["san"]["properties"]["allowed"]["items"]["enum"]) == set(
        profile_description.SAN_KINDS
    )
    for broken in (
        {**document, "colour": "blue"},
        {**document, "urls": {"crl": "https://crl.example.org/x.crl"}},
        {**document, "ocsp": {"responder": "hsm"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
        with pytest.raises(ProfileFileError):
            profile_description.parse(broken)


def test_good_documents_are_clean(good: Path, tmp_path: Path) -> None:
    report = _lint(tmp_path, good, "--profile-file", str(PROFILE_FILE))
    assert _failed(report) == {
        "root.der": set(),
        "responder.der": set(),
        "leaf-rsa.der": set(),
        "leaf-ec.der": set(),
        "revoked.der": set(),
        "ca1-full.crl": set(),
        "leaf-ec.ocsp": set(),
    }, json.dumps(report["files"], indent=1)
    assert report["summary"]["documents"] == 7
    # The leaves were judged as the file's profile, with its exact values.
    leaf = next(f for f in report["files"] if f["path"].endswith("leaf-ec.der"))
    passed = {r["rule"] for r in leaf["results"] if r["status"] == "pass"}
    assert {"S-01", "S-03", "S-04", "S-05", "S-07", "S-09", "S-12", "S-13", "S-15"} <= passed


def test_jitsuins_layout_would_flag_the_same_ca(good: Path) -> None:
    """Judged as jitsuin's own configuration (its profiles, URL layout and CA-signed OCSP),
    the other CA's good certificates fail S-05/S-15 and its root C-01: what the profile
    file is for. The same rules, reading a different profile structure."""
    from jitsuin.conformance.documents import LintContext
    from jitsuin.conformance.runner import lint_paths

    # jitsuin's profile "general" has the CP OID policy_arc + ".1.1": the other CA's, here.
    policy = CAPolicy(policy_arc="1.3.6.1.4.1.32473.7.1", pki_base_url="http://pki.example.jp")
    context = LintContext(expectations=Expectations.from_policy(policy), at=AT, pkilint=False)
    report = lint_paths([good], context)
    failed = {
        Path(d.label).name: {f.rule for f in d.findings if f.counts and f.severity.name == "ERROR"}
        for d in report.documents
    }
    assert {"S-05", "S-15"} <= failed["leaf-ec.der"]
    assert "C-01" in failed["root.der"]


def _change_subject(**values: str) -> Callable[[dict[str, Any]], None]:
    oids = {
        "country": NameOID.COUNTRY_NAME,
        "title": NameOID.TITLE,
        "serial": NameOID.SERIAL_NUMBER,
        "cn": NameOID.COMMON_NAME,
    }

    def change(parts: dict[str, Any]) -> None:
        wanted = {oids[k]: v for k, v in values.items()}
        parts["subject"] = [(o, wanted.get(o, v)) for o, v in parts["subject"]]

    return change


# One defect per rule that reads the profile: the change, the rule, what its message says.
DEFECTS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "s01-validity": (lambda p: p.update(days=800), "S-01", "more than 730 days"),
    "s03-key": (
        lambda p: p.update(key=rsa.generate_private_key(65537, 2048)),
        "S-03",
        "does not accept rsa-2048",
    ),
    "s04-policy": (
        lambda p: p.update(policies=[SMIME_IV_MULTIPURPOSE, "1.3.6.1.4.1.32473.7.9.9"]),
        "S-04",
        "no CP OID of this CA's profiles",
    ),
    "s05-client-auth": (
        lambda p: p["eku"].append(ExtendedKeyUsageOID.CLIENT_AUTH),
        "S-05",
        "profile engineer has",
    ),
    "s07-directory-name": (
        lambda p: p["san"].append(
            x509.DirectoryName(x509.Name([x509.NameAttribute(o, v) for o, v in p["subject"]]))
        ),
        "S-07",
        "directoryName, which the profile does not allow",
    ),
    "s09-country": (_change_subject(country="US"), "S-09", "does not match"),
    "s11-name-order": (_change_subject(cn="Taro Suzuki"), "S-11", "is not 'Suzuki Taro'"),
    "s12-title": (_change_subject(title="Registered Member"), "S-12", "not a qualification"),
    "s13-number": (_change_subject(serial="AB-0001"), "S-13", "does not match the syntax"),
    "s14-private-extension": (
        lambda p: p["extra"].append(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
        ),
        "S-14",
        "not under the CA's arc",
    ),
    "s15-crl-jitsuin-layout": (
        lambda p: p.update(crl="http://crl.example.org/crl/1.crl"),
        "S-15",
        "CRL URL 'http://crl.example.org/crl/1.crl' does not follow",
    ),
    "s15-ocsp-path": (
        lambda p: p.update(ocsp="http://status.example.net/ocsp"),
        "S-15",
        "OCSP URL",
    ),
    "s15-ca-issuers-generation": (
        lambda p: p.update(ca_issuers="http://aia.example.com/certs/ca2.der"),
        "S-15",
        "different generations",
    ),
}


def test_one_defect_per_rule_is_caught(other_ca: OtherCA, good: Path, tmp_path: Path) -> None:
    folder = tmp_path / "defects"
    _write(folder, "root.der", (good / "root.der").read_bytes())
    for name, (change, _rule, _text) in DEFECTS.items():
        _write(folder, f"{name}.der", other_ca.leaf(change).public_bytes(DER))
    # R-06 (delegated arrangement): a responder certificate without id-pkix-ocsp-nocheck.
    leaf = x509.load_der_x509_certificate((good / "leaf-ec.der").read_bytes())
    _write(folder, "leaf-ec.der", leaf.public_bytes(DER))
    no_nocheck = other_ca.responder(nocheck=False)
    _write(folder, "r06-no-nocheck.ocsp", other_ca.ocsp(leaf, no_nocheck).public_bytes(DER))

    report = _lint(tmp_path, folder, "--profile-file", str(PROFILE_FILE))
    failed = _failed(report)
    messages = {
        Path(f["path"]).name: " | ".join(x["message"] for x in f["findings"])
        for f in report["files"]
    }
    assert failed.pop("root.der") == set()
    assert failed.pop("leaf-ec.der") == set()
    assert failed.pop("r06-no-nocheck.ocsp") == {"R-06"}, messages["r06-no-nocheck.ocsp"]
    for name, (_change, rule, text) in DEFECTS.items():
        assert failed[f"{name}.der"] == {rule}, (name, messages[f"{name}.der"])
        assert text in messages[f"{name}.der"], (name, messages[f"{name}.der"])


def test_a_subscriber_certificate_with_ca_true_is_an_error(
    other_ca: OtherCA, good: Path, tmp_path: Path
) -> None:
    """The good leaf re-signed with cA TRUE, keyCertSign and cRLSign keeps the profile's policy,
    a personal subject and its EKU: C-12 names each mark, C-13 finds it is neither a generation,
    a link nor a declared intermediate, and the S rules still judge it (S-06: keyUsage)."""
    folder = tmp_path / "ca-true"
    _write(folder, "root.der", (good / "root.der").read_bytes())
    _write(folder, "leaf.der", other_ca.leaf(lambda p: p.update(ca=True)).public_bytes(DER))
    report = _lint(tmp_path, folder, "--profile-file", str(PROFILE_FILE))
    leaf = next(f for f in report["files"] if f["path"].endswith("leaf.der"))
    assert leaf["description"].startswith("certificate with cA TRUE")
    c12 = [x["message"] for x in leaf["findings"] if x["rule"] == "C-12"]
    assert any("the subscriber policy " + CP_OID in m for m in c12), c12
    assert any("subject givenName" in m for m in c12), c12
    assert {"C-12", "C-13", "S-06"} <= _failed(report)["leaf.der"]
    ran = {r["rule"] for r in leaf["results"] if r["status"] in ("pass", "fail")}
    assert {"S-04", "S-05", "S-15", "S-18"} <= ran


def test_the_cut_off_leaves_room_for_the_profiles_validity(tmp_path: Path) -> None:
    """S-17: a key stops issuing when what it issues could outlive it. The other CA's profile
    allows 730 days: a leaf from a root that ends in 500 days is past that key's cut-off, though
    jitsuin's 396 days would still fit."""
    ca = OtherCA.make(root_days=500)
    folder = tmp_path / "late"
    _write(folder, "root.der", ca.root.public_bytes(DER))
    _write(folder, "leaf.der", ca.leaf().public_bytes(DER))
    report = _lint(tmp_path, folder, "--profile-file", str(PROFILE_FILE))
    leaf = next(f for f in report["files"] if f["path"].endswith("leaf.der"))
    assert _failed(report)["leaf.der"] == {"S-17"}, leaf["findings"]
    assert "after the issuing key's cut-off" in leaf["findings"][0]["message"]


def test_names_need_not_be_romanized(other_ca: OtherCA, tmp_path: Path) -> None:
    """S-10: the file says romanized_names = false, so "Müller" is a name like any other (with
    jitsuin's profiles, true, it is an error)."""
    folder = tmp_path / "names"
    _write(folder, "root.der", other_ca.root.public_bytes(DER))
    change = _change_subject(cn="Müller Jörg")

    def umlauts(parts: dict[str, Any]) -> None:
        change(parts)
        names = {NameOID.SURNAME: "Müller", NameOID.GIVEN_NAME: "Jörg", NameOID.COUNTRY_NAME: "DE"}
        parts["subject"] = [(o, names.get(o, v)) for o, v in parts["subject"]]

    _write(folder, "leaf.der", other_ca.leaf(umlauts).public_bytes(DER))
    report = _lint(tmp_path, folder, "--profile-file", str(PROFILE_FILE), "--rule", "S-")
    assert _failed(report)["leaf.der"] == set()
    strict = tmp_path / "romanized.toml"
    strict.write_text(
        PROFILE_FILE.read_text().replace("romanized_names = false", "romanized_names = true")
    )
    report = _lint(tmp_path, folder, "--profile-file", str(strict), "--rule", "S-")
    assert _failed(report)["leaf.der"] == {"S-10"}


def test_the_ocsp_arrangement_comes_from_the_file(good: Path, tmp_path: Path) -> None:
    """C-01 reads the profile's OCSP arrangement: the same root is clean with ``responder =
    "delegated"`` and lacks digitalSignature with ``responder = "ca"``."""
    text = PROFILE_FILE.read_text()
    ca_signed = tmp_path / "ca-signed.toml"
    ca_signed.write_text(re.sub(r'responder = "delegated"', 'responder = "ca"', text))
    report = _lint(tmp_path, good, "--profile-file", str(ca_signed), "--rule", "C-01")
    root = next(f for f in report["files"] if f["path"].endswith("root.der"))
    assert [x["message"] for x in root["findings"]] == [
        "keyUsage lacks digitalSignature, but the CA key signs OCSP responses"
    ]


def test_profile_file_and_config_exclude_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = configuration.write_default(
        tmp_path, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT
    )
    argv = ["lint", "--config", str(config), "--profile-file", str(PROFILE_FILE), str(tmp_path)]
    assert main(argv) == 2
    assert "give --config or --profile-file, not both" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "\ncolour = 'blue'\n", "unknown key(s) ['colour']"),
        (lambda t: t.replace('eku_match = "exact"', 'eku_match = "most"'), "eku_match"),
        (lambda t: t.replace('"rsa-3072", ', '"rsa-1024", '), "key_types"),
        (lambda t: t.replace("max_validity_days = 730", "max_validity_days = 900"), "1 to 825"),
        (lambda t: t.replace("http://status", "https://status"), "urls.ocsp"),
        (lambda t: t.replace('groups = ["engineer"]', 'groups = ["pilot"]'), "unknown ['pilot']"),
        (lambda t: t.replace('"documentSigning"', '"teleportation"'), "teleportation"),
        (lambda t: t.replace('= "E-[0-9]{6}"', '= "E-[0-9"'), "regular expression"),
        (lambda t: t + "[broken", ""),
    ],
)
def test_a_bad_profile_file_is_a_usage_error(
    edit: Callable[[str], str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(PROFILE_FILE.read_text()))
    (tmp_path / "empty").mkdir()
    assert main(["lint", "--profile-file", str(bad), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "--profile-file" in err and message in err, err


SARIF_LEVELS = {"none", "note", "warning", "error"}  # SARIF 2.1.0 §3.27.10


def test_the_ci_recipe_writes_sarif_2_1_0(other_ca: OtherCA, good: Path, tmp_path: Path) -> None:
    """The command of docs/conformance.md's CI job, on the good folder plus one defect: a SARIF
    2.1.0 log with the parts code-scanning uploads need (§3.13 sarifLog, §3.14 run, §3.19 tool,
    §3.27 result), checked structurally."""
    folder = tmp_path / "issued"
    for name in ("root.der", "leaf-ec.der", "ca1-full.crl", "leaf-ec.ocsp", "responder.der"):
        _write(folder, name, (good / name).read_bytes())
    change, rule, _text = DEFECTS["s05-client-auth"]
    _write(folder, "bad.der", other_ca.leaf(change).public_bytes(DER))
    out = tmp_path / "pki-lint.sarif"
    argv = ["lint", "--profile-file", str(PROFILE_FILE), "--at", AT.isoformat()]
    assert main([*argv, "--format", "sarif", "--output", str(out), str(folder)]) == 1
    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] and driver["version"]
    ids = [r["id"] for r in driver["rules"]]
    assert len(ids) == len(set(ids))
    for r in driver["rules"]:
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"]
        assert r["defaultConfiguration"]["level"] in SARIF_LEVELS
    results = run["results"]
    assert results, "the defect must be reported"
    for result in results:
        assert result["level"] in SARIF_LEVELS
        assert result["message"]["text"]
        assert ids[result["ruleIndex"]] == result["ruleId"]  # §3.27.6
        (location,) = result["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        assert Path(uri).parent == folder
    flagged = {(Path(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]).name,
                r["ruleId"], r["level"]) for r in results}  # fmt: skip
    assert flagged == {("bad.der", rule, "error")}

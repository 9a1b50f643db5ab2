"""The rule catalogue as a whole: every rule has golden cases (they live beside each rule module's
name in tests/conformance/rules/), jitsuin's own objects pass every rule, the verdicts agree with
pkilint where both judge the same requirement, and docs/conformance.md lists every rule.
"""

from __future__ import annotations

from jitsuin.conformance.findings import Severity, Status
from jitsuin.conformance.registry import REGISTRY
from tests.conformance.golden import CASES, OFFLINE
from tests.conformance.rules import (
    test_acme,
    test_ca,
    test_est,
    test_revocation,
    test_rfc5280,
    test_smime,
)

# Importing the case modules registers their cases in CASES.
CASE_MODULES = (test_rfc5280, test_smime, test_ca, test_revocation, test_est, test_acme)


def test_good_corpus_passes_every_offline_rule(factory) -> None:
    """The passing case of every rule the corpus of jitsuin's own objects exercises: each rule
    passes somewhere and fails nowhere."""
    report = factory.lint(factory.good, factory.configured())
    passed = {o.rule for d in report.documents for o in d.outcomes if o.status is Status.PASS}
    failed = {o.rule for d in report.documents for o in d.outcomes if o.status is Status.FAIL}
    assert not failed
    explicit = {c.rule for c in CASES if c.expect == "pass"}
    offline = {r.id for r in REGISTRY if set(r.kinds) & set(OFFLINE)}
    assert offline - passed - explicit == set()
    PASSED_ON_CORPUS.update(passed)


PASSED_ON_CORPUS: set[str] = set()


def test_every_rule_has_cases(factory) -> None:
    """Every registered rule has a failing case and a passing case (docs/architecture.md, house
    habit 7)."""
    if not PASSED_ON_CORPUS:
        report = factory.lint(factory.good, factory.configured())
        PASSED_ON_CORPUS.update(
            o.rule for d in report.documents for o in d.outcomes if o.status is Status.PASS
        )
    failing = {c.rule for c in CASES if c.expect == "fail"}
    passing = {c.rule for c in CASES if c.expect == "pass"} | PASSED_ON_CORPUS
    unknown = {c.rule for c in CASES} - {r.id for r in REGISTRY}
    assert not unknown, f"cases for rules that do not exist: {sorted(unknown)}"
    ids = [r.id for r in REGISTRY]
    assert [i for i in ids if i not in failing] == [], "rules without a failing case"
    assert [i for i in ids if i not in passing] == [], "rules without a passing case"


# For each rule that pkilint also implements, the pkilint codes that judge the same requirement.
SHARED = {
    # pkilint's loader refuses input that is not DER outright ("(raised)").
    "X-01": {"pkix.certificate_version_is_not_v3", "itu.invalid_asn1_syntax", "(raised)"},
    "X-02": {"pkix.certificate_serial_number_out_of_range"},
    "X-03": {"pkix.certificate_signature_algorithm_mismatch", "pkix.signature_verification_failed"},
    "X-04": {"pkix.issuer_and_subject_dn_not_binary_equal"},
    "X-05": {
        "pkix.wrong_time_useful_type",
        "pkix.utctime_incorrect_syntax",
        "pkix.generalizedtime_incorrect_syntax",
        "pkix.certificate_negative_validity_period",
    },
    "X-06": {"pkix.duplicate_extension"},
    "X-07": {
        "pkix.authority_key_identifier_missing",
        "pkix.authority_key_id_extension_missing",
        "pkix.authority_key_identifier_keyid_missing",
        "pkix.authority_key_id_keyid_field_missing",
        "pkix.authority_key_identifier_extension_absent",
        "pkix.authority_key_identifier_critical",
        "cabf.authority_key_identifier_has_issuer_cert",
        "pkix.issuer_and_subject_key_identifier_not_equal",
    },
    "X-08": {
        "pkix.certificate_skid_ca_missing",
        "pkix.certificate_skid_end_entity_missing",
        "pkix.certificate_skid_extension_critical",
    },
    "X-09": {
        "pkix.basic_constraints_extension_not_critical",
        "pkix.basic_constraints_has_pathlen_for_non_ca",
    },
    "X-10": {
        "pkix.key_usage_extension_not_critical",
        "pkix.ee_certificate_keycertsign_keyusage_set",
        "pkix.ca_certificate_keycertsign_keyusage_not_set",
        "pkix.ca_certificate_no_ku_extension",
        "cabf.smime.ku_extension_not_critical",
    },
    "X-12": {"pkix.issuer_unique_id_present", "pkix.subject_unique_id_present"},
    "S-01": {"cabf.smime.certificate_validity_period_exceeds_825_days"},
    "S-02": {"cabf.smime.prohibited_signature_algorithm_encoding"},
    "S-03": {
        "cabf.rsa_exponent_prohibited_value",
        "cabf.rsa_modulus_invalid_length",
        "cabf.rsa_exponent_not_in_recommended_range",
        "cabf.smime.unsupported_public_key_type",
        "cabf.smime.prohibited_spki_algorithm_encoding",
    },
    "S-04": {
        "cabf.smime.anypolicy_present",
        "cabf.smime.multiple_reserved_policy_oids",
        "cabf.smime.no_required_reserved_policy_oid",
        "cabf.critical_certificate_policies_extension",
        "cabf.smime.certificate_policies_extension_missing",
    },
    "S-05": {
        "cabf.smime.prohibited_eku_present",
        "cabf.smime.emailprotection_eku_missing",
        "cabf.smime.extended_key_usage_extension_missing",
    },
    "S-06": {
        "cabf.smime.prohibited_ku_present",
        "cabf.smime.key_usage_extension_missing",
        "cabf.smime.ku_extension_not_critical",
        "cabf.smime.unknown_certificate_key_usage_type",
    },
    "S-07": {
        "cabf.smime.san_extension_missing",
        "cabf.smime.prohibited_generalname_type_present",
        "cabf.smime.san_does_not_contain_email_address",
        "pkix.san_extension_is_critical_non_empty_subject",
    },
    "S-08": {
        "cabf.smime.email_address_in_attribute_not_in_san",
        "pkix.subject_email_address_not_in_san",
    },
    "S-09": {"cabf.smime.prohibited_attribute", "pkix.rdn_contains_duplicate_attribute_types"},
    "S-10": {
        "cabf.smime.missing_required_attribute",
        "cabf.smime.mixed_name_and_pseudonym_attributes",
        "cabf.insignificant_attribute_value_present",
    },
    "S-11": {"cabf.smime.common_name_value_unknown_source"},
    "S-14": {"cabf.smime.subject_directory_attributes_extension_prohibited"},
    "S-15": {
        "cabf.smime.crldp_extension_missing",
        "cabf.smime.crldp_fullname_prohibited_uri_scheme",
        "cabf.no_http_crldp_uri",
        "cabf.aia_extension_missing",
        "cabf.aia_ocsp_has_no_http_uri",
        "cabf.aia_ca_issuers_missing",
        "cabf.aia_ca_issuers_has_no_http_uri",
        "cabf.critical_crldp_extension",
        "pkix.certificate_crldp_extension_critical",
        "pkix.authority_information_access_extension_critical",
        "cabf.smime.aia_prohibited_uri_scheme",
    },
    "R-01": {
        "pkix.crl_version_is_not_v2",
        "pkix.crl_version_missing",
        "pkix.crl_number_missing",
        "pkix.crl_number_extension_critical",
        "pkix.crl_signature_algorithm_match",
    },
    "R-02": {"cabf.crl_invalid_validity_period", "cabf.arl_invalid_validity_period"},
    "R-03": {"pkix.crl_reason_code_extension_critical", "cabf.crl_prohibited_reason_code"},
    "R-04": {"pkix.crl_revoked_certificates_empty"},
}


# Where the verdicts differ, and why (docs/conformance.md, "Cross-check with pkilint").
DISAGREEMENTS = {
    (
        "X-02",
        "serial_short",
    ): "pkilint has no 64-bit entropy check (SBR 7.1 cannot be seen in one serial)",
    ("X-02", "serial_31_bits"): "pkilint has no 64-bit entropy check",
    ("X-02", "serial_seven_octets"): "pkilint has no 64-bit entropy check",
    ("X-02", "serial_eight_octets_below_2_63"): "pkilint has no 64-bit entropy check (a warning "
    "here)",
    ("X-02", "serial_reused"): "uniqueness needs the other certificates; pkilint lints one",
    ("X-06", "unknown_critical_extension"): "pkilint does not judge unknown critical extensions",
    ("S-01", "valid_400_days"): "the seed's 396 days (SEED-R1) is narrower than the SBR's 825",
    ("S-01", "valid_395_days_with_configuration"): "SEED-R1 says exactly 396 days",
    ("S-02", "rsa_issuer_signs_with_sha384"): "the SBR allow sha384WithRSAEncryption; the seed "
    "profile pins the hash to the issuer key (SEED-R3)",
    (
        "S-02",
        "p384_issuer_signs_with_sha256",
    ): "pkilint does not tie the hash to the issuer's curve",
    ("S-04", "strict_policy_oid"): "pkilint lints the type the OID names (IV strict) and finds it "
    "fine; the seed profile requires multipurpose",
    (
        "S-04",
        "wrong_profile_cp_oid",
    ): "configuration-dependent: pkilint cannot know the CA's CP OIDs",
    ("S-05", "purposes_differ_from_the_profile"): "configuration-dependent (the profile's EKU set)",
    ("S-06", "signing_only_with_configuration"): "configuration-dependent: SEED-R5 wants dual use",
    ("S-09", "locality_with_configuration"): "configuration-dependent: SEED-R4's attribute set",
    ("S-10", "name_not_romanized_with_configuration"): "romanized names are a seed rule",
    ("S-11", "common_name_is_not_the_name"): "pkilint accepts any CN that is a given/surname/"
    "pseudonym/e-mail value or a combination it recognises",
    ("S-11", "common_name_in_the_other_order"): "configuration-dependent name order",
    ("S-15", "other_hosts_urls_with_configuration"): "configuration-dependent URLs",
    ("R-02", "next_crl_nine_days_later"): "the 7-day reissue interval needs the next CRL",
    ("R-01", "crl_number_goes_back"): "CRL numbers across keys need the other CRLs",
    ("R-01", "crl_signed_by_another_key"): "pkilint does not verify a CRL's signature",
    ("R-04", "entry_dropped_while_the_certificate_is_valid"): "needs the earlier CRL and the "
    "certificate's expiry",
    ("X-04", "issuer_name_encoded_differently"): "pkilint's chain linter reports a byte-unequal "
    "issuer DN as NOTICE (RFC 5280 §7.1 compares normalized names); SBR 7.1.4.1 requires "
    "byte-for-byte",
    ("S-14", "private_extension_outside_the_arc"): "configuration-dependent: the CA's OID arc",
    ("X-09", "leaf_with_path_length"): "pkilint's DER decoder (pyasn1-fasder 0.1.3) refuses "
    "SEQUENCE { INTEGER 0 } as an 'explicitly encoded default value' (itu.invalid_asn1_syntax) "
    "instead of reporting pkix.basic_constraints_has_pathlen_for_non_ca",
    ("S-15", "no_ocsp_url"): "SBR 7.1.2.3c makes the OCSP URL optional; the seed profile "
    "requires it (the CA runs a responder)",
}


def _pkilint_codes(doc) -> set[str]:
    """pkilint's findings at WARNING or above on the judged document, codes without namespace;
    "(raised)" when one of its linters raised instead of reporting."""
    from jitsuin.conformance import pkilint_delegate as delegate
    from jitsuin.conformance.documents import CertificateDoc, CRLDoc

    runs: list = []
    if isinstance(doc, CertificateDoc):
        runs.append(lambda: delegate.lint_pkix_certificate(doc.der))
        if doc.is_smime_subscriber:
            runs.append(lambda: delegate.lint_smime_certificate(doc.der)[1])
        issuer = doc.corpus.issuer_of(doc) or next(
            (c for c in doc.corpus.certificates if c is not doc and c.is_ca), None
        )
        if issuer is not None and issuer is not doc:
            runs.append(lambda: delegate.lint_issuer_subject(issuer.der, doc.der))
    elif isinstance(doc, CRLDoc):
        runs.append(lambda: delegate.lint_crl(doc.der, ca_crl=doc.is_ca_crl))
    codes: set[str] = set()
    for run in runs:
        try:
            found = run()
        except Exception:
            codes.add("(raised)")
            continue
        codes |= {f.code.removeprefix("pkilint:") for f in found if f.severity >= Severity.WARNING}
    return codes


def test_verdicts_agree_with_pkilint(factory) -> None:
    """For every rule pkilint also implements, jitsuin's verdict and pkilint's agree on the
    corpus (every case above and the good corpus), except the listed disagreements."""
    disagreements = {}
    compared = 0
    for c in CASES:
        if c.rule not in SHARED:
            continue
        outcome = c.build(factory)
        doc = factory.last_judged
        if doc is None or doc.kind not in OFFLINE:
            continue
        ours = outcome.status is Status.FAIL
        theirs = bool(_pkilint_codes(doc) & SHARED[c.rule])
        compared += 1
        if ours != theirs:
            disagreements[(c.rule, c.name)] = (ours, sorted(_pkilint_codes(doc)))
    report = factory.lint(factory.good, factory.configured())
    corpus_docs = {d.label: d for d in factory.corpus(factory.good[0], factory.good[1:]).documents}
    for result in report.documents:
        codes = _pkilint_codes(corpus_docs[result.label])
        for outcome in result.outcomes:
            if outcome.rule in SHARED and outcome.status in (Status.PASS, Status.FAIL):
                compared += 1
                if (outcome.status is Status.FAIL) != bool(codes & SHARED[outcome.rule]):
                    disagreements[(outcome.rule, result.label)] = (outcome.status, codes)
    assert compared > 100
    unexplained = {k: v for k, v in disagreements.items() if k not in DISAGREEMENTS}
    assert not unexplained, "\n".join(f"{k}: {v}" for k, v in unexplained.items())
    stale = set(DISAGREEMENTS) - set(disagreements)
    assert not stale, f"listed disagreements that no longer occur: {sorted(stale)}"


def test_docs_list_every_rule_and_disagreement() -> None:
    """docs/conformance.md carries the catalogue and the pkilint disagreements."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "conformance.md").read_text()
    missing = [r.id for r in REGISTRY if f"| {r.id} |" not in text]
    assert not missing, f"rules missing from docs/conformance.md: {missing}"
    assert f"**{len(REGISTRY)} rules**" in text
    undocumented = [k for k in DISAGREEMENTS if f"| {k[0]} | `{k[1]}` |" not in text]
    assert not undocumented, undocumented

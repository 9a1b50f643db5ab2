"""The published JSON Schemas (``jitsuin/conformance/schemas/``) describe what the command prints:
``jitsuin lint --format json`` and ``--list-rules --format json``, checked on real output (the
corpus of everything jitsuin issues, a defective certificate, a suppressed finding, a file with
nothing readable, and the catalogue of every registered rule)."""

from __future__ import annotations

import json

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization

from jitsuin.conformance import report as reports
from jitsuin.conformance.registry import REGISTRY
from jitsuin.server.__main__ import main


def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = reports.schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # the schema itself is valid JSON Schema 2020-12
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_rule_catalogue_matches_its_schema(capsys) -> None:
    capsys.readouterr()
    assert main(["lint", "--list-rules", "--format", "json"]) == 0
    catalogue = json.loads(capsys.readouterr().out)
    _validator("rule-catalogue").validate(catalogue)
    assert [r["id"] for r in catalogue["rules"]] == [r.id for r in REGISTRY]
    a15 = next(r for r in catalogue["rules"] if r["id"] == "A-15")
    assert a15["keyword"] == "MUST; SHOULD" and a15["applies_to"] == ["acme-server"]
    s04 = next(r for r in catalogue["rules"] if r["id"] == "S-04")
    assert s04["effective"] == "2023-09-01" and s04["config_dependent"] is True


def test_lint_report_matches_its_schema(factory, capsys, tmp_path) -> None:
    validator = _validator("lint-report")
    # The corpus of everything jitsuin issues, with the configuration: findings, notes, NA, NE.
    good = reports.to_json(factory.lint(factory.good, factory.configured()))
    validator.validate(json.loads(json.dumps(good)))
    assert {r["status"] for f in good["files"] for r in f["results"]} >= {"pass", "na"}
    # Through the command: a defective certificate, a suppressed finding, an unreadable file.
    ca = factory.ca()
    bad = factory.variant(factory.leaf(), ca.key, serial=0x1234)
    (tmp_path / "bad.pem").write_bytes(bad.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "junk.pem").write_text("not a certificate")
    capsys.readouterr()
    main(["lint", "--format", "json", "--suppress", "X-02=made up", "--verbose", str(tmp_path)])
    out = json.loads(capsys.readouterr().out)
    validator.validate(out)
    kinds = {f["kind"] for f in out["files"]}
    assert {"certificate", "unreadable"} <= kinds
    findings = [x for f in out["files"] for x in f["findings"]]
    (x02,) = [x for x in findings if x["rule"] == "X-02"]
    assert x02["severity"] == "ERROR" and x02["suppressed"] == "made up"


def test_the_schema_refuses_what_it_does_not_describe() -> None:
    """The schema is strict enough to notice a change of shape (so a new field is a schema
    change, made on purpose)."""
    validator = _validator("lint-report")
    bad = {
        "tool": {"name": "jitsuin", "version": "0", "pkilint": "0"},
        "fatals_present": False,
        "errors_present": False,
        "warnings_present": False,
        "notices_present": False,
        "summary": {"FATAL": 0, "ERROR": 0, "WARNING": 0, "NOTICE": 0, "INFO": 0, "documents": 1},
        "files": [
            {
                "path": "x.pem",
                "kind": "certificate",
                "description": "d",
                "findings": [{"rule": "X-02", "severity": "BAD", "code": "X-02", "message": "m"}],
                "results": [],
            }
        ],
    }
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)

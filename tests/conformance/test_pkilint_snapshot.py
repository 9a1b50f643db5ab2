"""The codes each in-process pkilint linter can report, checked in (tests/conformance/
pkilint_validations.json) so that a pkilint upgrade that adds, renames or drops codes shows up in
review, next to the suppression lists and the cross-check mapping that name codes.

The snapshot is the union over the linters: pkilint attaches some shared validators to whichever
container is assembled first, so the per-linter lists depend on the order they are built in.

Refresh after reviewing an upgrade:
    .venv/bin/python -c "import json; from jitsuin.conformance import pkilint_delegate as p; \
json.dump(sorted({c for v in p.validations().values() for c in v}), \
open('tests/conformance/pkilint_validations.json', 'w'), indent=1)"
"""

from __future__ import annotations

import json
from pathlib import Path

from jitsuin.conformance import pkilint_delegate
from jitsuin.server import config as configuration

SNAPSHOT = Path(__file__).with_name("pkilint_validations.json")


def test_pkilint_codes_match_the_snapshot():
    current = {code for codes in pkilint_delegate.validations().values() for code in codes}
    recorded = set(json.loads(SNAPSHOT.read_text()))
    added, removed = sorted(current - recorded), sorted(recorded - current)
    assert not added and not removed, (
        f"pkilint's codes changed; review and refresh the snapshot: added {added}, "
        f"removed {removed}"
    )


def test_the_default_suppressions_name_real_codes(tmp_path):
    """The codes `jitsuin init` suppresses exist in the linters that run."""
    from jitsuin.ca.keys import KeyType

    path = configuration.write_default(tmp_path, KeyType.ECDSA_P256, configuration.DEFAULT_SUBJECT)
    suppressed = configuration.load(path, tmp_path).ca.lint_suppress
    known = {code for codes in pkilint_delegate.validations().values() for code in codes}
    assert suppressed and set(suppressed) <= known

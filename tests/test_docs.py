"""The documents are in the repository and say what the code does: every document a comment or
page cites exists here, every SEED-R id cited is defined in docs/seed.md, every file the pages name
exists, and the state diagrams of docs/flow.md are the ones scripts/diagrams.py draws from the
transition tables."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT = (".py", ".js", ".md", ".sql", ".toml", ".html", ".css", ".sh", ".json", ".txt", ".cfg")

# A document by file name: ``docs/flow.md``, ``README.md``, ``flow.md`` inside docs/.
DOCUMENT = re.compile(r"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b")
# Design notes by their old bare names ("CONFORMANCE C-04"); the *.md names are caught as missing.
OLD_NAME = re.compile(r"(?<![\w/.-])(CONFORMANCE|ARCHITECTURE)\b(?![_.])")
OUTSIDE = re.compile(r"\.\./shared|/work/shared|\bshared/(design|seed)\b")
# The page may end one line and the habit start the next, inside a comment.
HABIT = re.compile(
    r"(?:(docs/architecture\.md,(?:\s|#|//|--)+)|\b)house habits? (\d+)(?: and (\d+))?"
)
# SEED-R12, SEED-R6.2; a range "SEED-R15...R17" / "SEED-R6…R9" / "SEED-R1..R20" names both ends.
SEED_ID = re.compile(r"SEED-R(\d+(?:\.\d+)*)(?:\s*(?:\.\.\.?|…|-|–)\s*R(\d+(?:\.\d+)*))?")
PATH = re.compile(r"`((?:ca|protocol|conformance|server|tests|scripts|docs|bench)/[\w./-]+)`")


@cache
def _files() -> tuple[Path, ...]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return tuple(ROOT / name for name in listed if name.endswith(TEXT) and (ROOT / name).is_file())


def _lines() -> list[tuple[str, int, str]]:
    found = []
    for path in _files():
        if path == Path(__file__):
            continue  # this module spells out the patterns it forbids
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            found.append((path.relative_to(ROOT).as_posix(), number, line))
    return found


def _seed_ids() -> set[str]:
    text = (ROOT / "docs" / "seed.md").read_text()
    return set(re.findall(r"^### SEED-R(\d+(?:\.\d+)*)$", text, re.MULTILINE))


def _habits() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## House habits", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^(\d+)\. \*\*", section, re.MULTILINE))


def test_cited_documents_exist() -> None:
    """A cited ``*.md`` exists: from the repository root, beside the citing file, or in docs/."""
    missing = []
    for name, number, line in _lines():
        for cited in DOCUMENT.findall(line):
            if cited.startswith(("http", "//")) or "://" in line.split(cited)[0][-12:]:
                continue
            here = (ROOT / name).parent
            if not any((base / cited).is_file() for base in (ROOT, here, ROOT / "docs")):
                missing.append(f"{name}:{number}: {cited}")
    assert not missing, "documents cited but not in the repository:\n" + "\n".join(missing)


def test_no_citation_of_documents_outside_the_repository() -> None:
    bad = []
    for name, number, line in _lines():
        if OUTSIDE.search(line) or OLD_NAME.search(line):
            bad.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not bad, "cite docs/*.md instead:\n" + "\n".join(bad)


def test_house_habits_are_cited_with_their_page_and_exist() -> None:
    habits = _habits()
    assert habits == {str(n) for n in range(1, 11)}, habits
    bad = []
    for path in _files():
        name = path.relative_to(ROOT).as_posix()
        if name == "docs/architecture.md" or path == Path(__file__):
            continue
        text = path.read_text(errors="replace")
        for match in HABIT.finditer(text):
            numbers = {n for n in match.groups()[1:] if n}
            if not match.group(1) or not numbers <= habits:
                number = text.count("\n", 0, match.start()) + 1
                bad.append(f"{name}:{number}: {match.group(0)}")
    assert not bad, 'write "docs/architecture.md, house habit N":\n' + "\n".join(bad)


def test_every_seed_id_cited_is_defined() -> None:
    defined = _seed_ids()
    assert {str(n) for n in range(1, 21)} <= defined
    undefined = []
    for name, number, line in _lines():
        for match in SEED_ID.finditer(line):
            for cited in filter(None, match.groups()):
                if cited not in defined:
                    undefined.append(f"{name}:{number}: SEED-R{cited}")
    assert not undefined, "SEED-R ids not defined in docs/seed.md:\n" + "\n".join(undefined)


@pytest.mark.parametrize(
    "page", ["architecture.md", "flow.md", "protocols.md", "seed.md", "conformance.md"]
)
def test_files_named_in_the_pages_exist(page: str) -> None:
    text = (ROOT / "docs" / page).read_text()
    named = {p.rstrip(".") for p in PATH.findall(text) if not re.search(r"[<*]|NNNN", p)}
    assert named, f"docs/{page} names no file"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"docs/{page} names files that do not exist: {missing}"


def _diagrams():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("diagrams", ROOT / "scripts" / "diagrams.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flow_diagrams_are_drawn_from_the_tables() -> None:
    diagrams = _diagrams()
    text = (ROOT / "docs" / "flow.md").read_text()
    assert diagrams.current(text) == diagrams.render(), "run: .venv/bin/python scripts/diagrams.py"


def test_the_diagrams_follow_a_changed_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drawing reads the table: an edge added to it appears in the diagram."""
    from jitsuin.protocol.acme import status

    diagrams = _diagrams()
    assert "valid --> invalid: fail" not in diagrams.render()
    monkeypatch.setitem(
        status.ORDER, status.OrderStatus.VALID, {status.Event.FAIL: status.OrderStatus.INVALID}
    )
    assert "    valid --> invalid: fail" in diagrams.render()

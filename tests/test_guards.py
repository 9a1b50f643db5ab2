"""Repository guards: layer contracts, packaging drift, lint and format."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FOLDERS = {"server": "jitsuin.server", "protocol": "jitsuin.protocol", "ca": "jitsuin.ca",
           "conformance": "jitsuin.conformance"}  # fmt: skip


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run ./scripts/test, which installs it"
    return found


def _code_packages() -> dict[str, str]:
    """Every folder under the four code folders that holds Python modules -> dotted name."""
    found = {}
    for folder, dotted in FOLDERS.items():
        for directory, _, files in os.walk(ROOT / folder):
            if "__pycache__" in directory or not any(f.endswith(".py") for f in files):
                continue
            rel = Path(directory).relative_to(ROOT / folder)
            found[".".join([dotted, *rel.parts])] = str(Path(folder, rel).as_posix()).rstrip("/.")
    return found


def test_import_layers() -> None:
    # docs/architecture.md: server -> conformance -> ca -> protocol; only server imports I/O
    # libraries.
    result = subprocess.run(
        [_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_every_subpackage_is_packaged() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    packages = _code_packages()
    assert sorted(setuptools["packages"]) == sorted(packages)
    for dotted, folder in packages.items():
        assert setuptools["package-dir"].get(dotted) == folder, dotted
        assert (ROOT / folder / "__init__.py").exists(), f"{folder} has no __init__.py"
        assert (ROOT / folder / "py.typed").exists(), f"{folder} has no py.typed"


def test_wheel_carries_every_module_and_migration(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("jitsuin-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for dotted, folder in _code_packages().items():
        for file in (ROOT / folder).iterdir():
            if file.suffix in (".py", ".typed", ".sql") or file.name == "py.typed":
                expected.add("/".join([*dotted.split("."), file.name]))
    # Data files come from package-data alone (include-package-data = false): a new kind of
    # static file needs its pattern there.
    for static in (ROOT / "server" / "web" / "static").iterdir():
        expected.add(f"jitsuin/server/web/static/{static.name}")
    for published in (ROOT / "conformance" / "schemas").iterdir():
        expected.add(f"jitsuin/conformance/schemas/{published.name}")
    migrations = ROOT / "server" / "storage" / "migrations"
    for sql in migrations.rglob("*.sql"):
        expected.add(
            "jitsuin/server/storage/" + sql.relative_to(ROOT / "server/storage").as_posix()
        )
    missing = sorted(expected - names)
    assert not missing, f"left out of the wheel: {missing}"


def test_ruff_lint_and_format() -> None:
    ruff = _tool("ruff")
    lint = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run([ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr

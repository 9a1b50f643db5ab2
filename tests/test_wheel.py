"""The wheel works without the source tree: ``python -m build`` makes an sdist and, from it, a
wheel; the wheel holds every data file of the packages (migrations, static files, schemas); in a
new venv, ``pip install`` of the wheel, then ``jitsuin init`` and ``jitsuin serve`` from a
directory with no repository serve a page, a static file and /health."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "ca", "conformance", "protocol")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env() -> dict[str, str]:
    """The environment without anything that points into the repository or its venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO))
    )
    return env


def test_the_wheel_installs_and_serves_outside_the_source_tree(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("jitsuin-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {n.removeprefix("jitsuin/") for n in archive.namelist()}
    data = {
        p.relative_to(REPO).as_posix()
        for package in PACKAGES
        for p in (REPO / package).rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert data - packaged == set(), "data files left out of the wheel"
    assert any(n.startswith("server/storage/migrations/0001") for n in packaged)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = _clean_env()
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        env=env,
    )
    where = tmp_path / "elsewhere"  # no repository here or above it
    where.mkdir()
    located = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import jitsuin.server; print(jitsuin.server.__file__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=where,
        env=env,
    ).stdout
    assert located.startswith(str(venv)), located

    http, https, metrics = _port(), _port(), _port()
    jitsuin = str(venv / "bin" / "jitsuin")
    init = [jitsuin, "--home", "data", "init", "--http", f"127.0.0.1:{http}"]
    subprocess.run([*init, "--https", f"127.0.0.1:{https}"], check=True, cwd=where, env=env)
    config = where / "data" / "jitsuin.toml"
    config.write_text(config.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{metrics}"\n')
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [jitsuin, "--home", "data", "serve"], cwd=where, env=env, stdout=log, stderr=log
    )
    try:
        ca_pem = b""
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/ca.pem", timeout=2) as r:
                    ca_pem = r.read()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=10) as reply:
            assert reply.status == 200
        context = ssl.create_default_context(cadata=ca_pem.decode())
        page = urllib.request.Request(
            f"https://localhost:{https}/pickup", headers={"Accept": "text/html"}
        )
        with urllib.request.urlopen(page, context=context, timeout=10) as reply:
            assert reply.status == 200 and b"<html" in reply.read()
        style = f"https://localhost:{https}/static/style.css"
        with urllib.request.urlopen(style, context=context, timeout=10) as reply:
            assert reply.headers["Content-Type"].startswith("text/css")
            assert reply.read() == (REPO / "server/web/static/style.css").read_bytes()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as reply:
            assert b"jitsuin_http_requests_total" in reply.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

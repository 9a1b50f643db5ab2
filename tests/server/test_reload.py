"""SIGHUP (server/reload.py): a serving ``jitsuin serve`` takes a new ``[log] format`` and
``[metrics] listen`` from its edited configuration, says which other changed settings wait for
a restart, and keeps serving; a configuration that no longer loads changes nothing."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request


def _metrics(port: int) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return reply.read()
    except OSError:
        return None


def _until(condition, what: str) -> None:
    for _ in range(300):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not seen after SIGHUP: {what}")


def test_sighup_reloads_the_log_format_and_the_metrics_listener(live_jitsuin, tmp_path):
    first, second = live_jitsuin.free_port(), live_jitsuin.free_port()
    home = tmp_path / "ca"
    toml = f'\n[metrics]\nlisten = "127.0.0.1:{first}"\n'
    with live_jitsuin.server(home, toml=toml) as server:
        assert _metrics(first) is not None
        log = home / "server.log"
        config = server.config
        text = config.read_text()
        edited = text.replace(f"127.0.0.1:{first}", f"127.0.0.1:{second}")
        edited = edited.replace("max_attempts = 5 ", "max_attempts = 3 ")
        config.write_text(edited + '\n[log]\nformat = "json"\n')
        server.process.send_signal(signal.SIGHUP)
        _until(lambda: _metrics(second) is not None, "metrics on the new port")
        assert _metrics(first) is None
        _until(lambda: "need a restart" in log.read_text(), "the restart warning")
        assert server.fetch("/health")[0] == 200  # still serving, now logging JSON
        records = [
            json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")
        ]
        warning = next(r for r in records if "need a restart" in r["message"])
        assert warning["message"].endswith(": ra"), warning
        assert any(r["logger"] == "jitsuin.access" for r in records)

        config.write_text(edited + "\n[log]\nformat = 'xml'\n")
        server.process.send_signal(signal.SIGHUP)
        _until(lambda: "does not load" in log.read_text(), "the refusal of a bad configuration")
        assert _metrics(second) is not None
        assert server.fetch("/health")[0] == 200

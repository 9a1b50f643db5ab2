"""Every ``jitsuin`` subcommand, given bad arguments, files that do not exist, or no terminal to
ask a secret on, answers with a message and a non-zero exit status, never a traceback.

The subcommands come from walking the argparse tree, so a new one is covered when it is added.
The invocations run in one real process of their own, started in a new session (no controlling
terminal) with standard input from /dev/null, calling ``main()`` one after another: a process
per invocation would cost a second of start-up each."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jitsuin.server.__main__ import build_parser, subcommands

COMMANDS = subcommands(build_parser())
# A port nobody listens on: a URL argument must fail on its own, not hang.
NOWHERE = "https://127.0.0.1:9/.well-known/est"
# Subcommands that would otherwise succeed (create a CA, start serving) with the arguments made
# up below: what makes them fail instead.
REFUSE = {
    # A subject that is no DN (a new configuration), a port the existing one does not say.
    "init": ["--subject", "no DN", "--http", "127.0.0.1:9"],
    "serve": ["--workers", "2"],  # refused on a SQLite store
}

DRIVER = r"""
import contextlib, io, json, os, sys, traceback
from jitsuin.server.__main__ import main

def call(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = "escaped"
    return code, out.getvalue(), err.getvalue()

plan = json.load(open(sys.argv[1]))
code, out, err = call(["--home", plan["home"], "init"])
assert code == 0, err
code, out, err = call(["--home", plan["home"], "ra", "operator-add", "ann", "--role", "admin"])
assert code == 0, err
token = out.strip().splitlines()[-1]
results = []
for case in plan["cases"]:
    os.environ.pop("JITSUIN_OPERATOR_TOKEN", None)
    os.environ.pop("JITSUIN_EST_PASSWORD", None)
    if case["token"]:
        os.environ["JITSUIN_OPERATOR_TOKEN"] = token
    os.environ.update(case["env"])
    code, out, err = call(case["argv"])
    results.append({"argv": case["argv"], "code": code, "stdout": out, "stderr": err})
json.dump(results, open(sys.argv[2], "w"))
"""


def _made_up(action: argparse.Action, missing: Path) -> list[str]:
    """A value for an argument: a choice, a number, an unreachable URL, else a missing file."""
    if action.choices:
        value = sorted(action.choices)[0]
    elif action.type is int or action.dest in ("wait", "amount", "limit", "generation"):
        value = "1"
    elif action.dest in ("url", "est", "acme"):
        value = NOWHERE
    elif action.dest == "serial":
        value = "1F"
    else:
        value = str(missing / action.dest)
    return [value] if not action.option_strings else [action.option_strings[0], value]


def _inputs(parser: argparse.ArgumentParser, missing: Path) -> list[str]:
    """The required options and every positional, made up."""
    argv: list[str] = []
    for action in parser._actions:
        positional = not action.option_strings and not isinstance(
            action, argparse._SubParsersAction
        )
        if positional or action.required:
            argv += _made_up(action, missing)
    return argv


def _cases(tmp: Path, home: Path) -> list[dict]:
    missing = tmp / "missing"  # never created: every file under it is missing
    cases = []
    for n, (words, parser) in enumerate(COMMANDS):
        command = words.split()
        inputs = _inputs(parser, missing) + REFUSE.get(words, [])
        # An option no subcommand has.
        cases.append({"words": words, "kind": "bad option", "argv": [*command, "--no-such"]})
        # Every argument a file that does not exist, and a data directory that does not exist.
        cases.append(
            {
                "words": words,
                "kind": "no data directory",
                "argv": ["--home", str(tmp / f"nowhere-{n}"), *command, *inputs],
            }
        )
        # The same against a real CA, as an operator with a valid token: the command gets as far
        # as the files. Commands that take no input would succeed there, so they are left out, and
        # so is `backup`, whose only argument is the folder it makes.
        if inputs and words != "backup":
            cases.append(
                {
                    "words": words,
                    "kind": "missing files",
                    "argv": ["--home", str(home), *command, *inputs],
                    "token": True,
                }
            )
    # The four cases a newcomer hit first, by name.
    enroll = ["--home", str(home), "est", "enroll", "--url", NOWHERE, "--user", "X"]
    pin = {"JITSUIN_EST_PASSWORD": "12345678"}
    cases += [
        {
            "words": "est enroll",
            "kind": "--p12 with no terminal and no passphrase file",
            "argv": [*enroll, "--p12", str(tmp / "me.p12"), "--key-out", str(tmp / "k1.pem")],
            "env": pin,
            "expect": "no terminal to ask for the PKCS#12 passphrase",
        },
        {
            "words": "est enroll",
            "kind": "no PIN in the environment and no terminal",
            "argv": [*enroll, "--key-out", str(tmp / "k2.pem")],
            "expect": "no terminal to ask for the download PIN: set $JITSUIN_EST_PASSWORD",
        },
        {
            "words": "est enroll",
            "kind": "--ca-bundle names a missing file",
            "argv": [*enroll, "--ca-bundle", str(missing / "ca.pem")],
            "env": pin,
            "expect": "--ca-bundle",
        },
        {
            "words": "ca revoke",
            "kind": "a serial that is not hex",
            "argv": ["--home", str(home), "ca", "revoke", "ZZZ", "--reason", "keyCompromise"],
            "expect": "not a hexadecimal serial number: 'ZZZ'",
        },
    ]
    for case in cases:
        case.setdefault("token", False)
        case.setdefault("env", {})
    return cases


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> list[tuple[dict, dict]]:
    tmp = tmp_path_factory.mktemp("cli-errors")
    cases = _cases(tmp, tmp / "home")
    (tmp / "plan.json").write_text(json.dumps({"home": str(tmp / "home"), "cases": cases}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JITSUIN_")}
    subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp / "plan.json"), str(tmp / "results.json")],
        cwd=tmp,  # no ./jitsuin-data here
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no controlling terminal: getpass cannot open /dev/tty
        check=True,
        timeout=300,
    )
    results = json.loads((tmp / "results.json").read_text())
    return list(zip(cases, results, strict=True))


def test_every_subcommand_is_walked() -> None:
    words = {w for w, _ in COMMANDS}
    assert {"serve", "ca revoke", "ra create", "est enroll", "lint", "audit verify"} <= words


@pytest.mark.parametrize("words", [w for w, _ in COMMANDS])
def test_a_subcommand_fails_with_a_message_not_a_traceback(outcomes, words) -> None:
    mine = [(case, result) for case, result in outcomes if case["words"] == words]
    assert len(mine) >= 2
    for case, result in mine:
        what = f"jitsuin {' '.join(result['argv'])} ({case['kind']})"
        assert "Traceback" not in result["stderr"], what + "\n" + result["stderr"]
        # Bad input is an expected error: a message of its own, not "internal error" (a bug).
        assert "internal error" not in result["stderr"], what + "\n" + result["stderr"]
        assert result["code"] not in (0, None, "escaped"), what + "\n" + result["stderr"]
        assert isinstance(result["code"], int), what
        assert result["stderr"].strip(), what + ": no message"


def test_the_four_tracebacks_of_the_issue_are_messages(outcomes) -> None:
    named = [(case, result) for case, result in outcomes if "expect" in case]
    assert len(named) == 4
    for case, result in named:
        what = f"jitsuin {' '.join(result['argv'])} ({case['kind']})"
        assert "Traceback" not in result["stderr"], what + "\n" + result["stderr"]
        assert result["code"] not in (0, "escaped"), what
        assert case["expect"] in result["stderr"], what + "\n" + result["stderr"]
        # One line, prefixed (argparse adds its usage lines before its own one-line error).
        last = result["stderr"].strip().splitlines()[-1]
        assert last.startswith(("jitsuin: ", "jitsuin ca revoke: error: ")), last
    # The PKCS#12 passphrase is asked before anything is sent: no key was even made.
    p12 = next(c for c, _ in named if c["kind"].startswith("--p12"))
    assert not Path(p12["argv"][p12["argv"].index("--key-out") + 1]).exists()

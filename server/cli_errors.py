"""What every ``jitsuin`` subcommand shares: the error ``main()`` prints as one line with its exit
status (never a traceback), and secrets asked on the terminal."""

from __future__ import annotations

import getpass
import warnings
from collections.abc import Sequence
from pathlib import Path

EXIT_REFUSED = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A message for the operator, printed by ``main()`` as one line, without a traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def ask_secret(prompt: str, instead: str) -> str:
    """Ask on the terminal without echo. With no terminal, refuse (naming ``instead``, the way to
    give the secret without one) rather than read it from standard input, where it would echo."""
    with warnings.catch_warnings():
        # getpass warns, then reads stdin with echo, when it cannot open the terminal.
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(prompt)
        except (getpass.GetPassWarning, EOFError):
            raise CLIError(f"no terminal to ask for the {prompt.rstrip(': ')}: {instead}") from None


def bullets(lines: Sequence[str]) -> str:
    """Several problems, one a line, as every subcommand lists them."""
    return "\n".join(f"  - {line}" for line in lines)


def read_input(path: str, what: str) -> bytes:
    """A file the operator named (a CSR, a certificate, a CRL), or a CLIError saying why not."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read the {what} {path}: {exc.strerror}") from exc

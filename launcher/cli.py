"""Small `key=value` argument parsing for the non-Hydra commands (predict, runs).

They take the same `key=value` shape as Hydra overrides so a user types one style everywhere,
without creating a run directory for a read-only command.
"""
from __future__ import annotations

import logging
import sys
from typing import Callable

from launcher.errors import LauncherError

TRUE = ("1", "true", "yes", "on")


def parse(argv: list[str], allowed: dict[str, str], required: tuple[str, ...], usage: str) -> dict[str, str]:
    if any(a in ("-h", "--help", "help") for a in argv):
        print(usage)
        raise SystemExit(0)
    out: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in allowed:
            raise LauncherError(f"unexpected argument {arg!r}; expected key=value with key one of: "
                                f"{', '.join(allowed)}\n{usage}")
        out[key] = value
    missing = [k for k in required if not out.get(k)]
    if missing:
        raise LauncherError(f"missing {', '.join(k + '=...' for k in missing)}\n{usage}")
    return out


def run(main: Callable[[list[str]], int]) -> None:
    """Run a command: LauncherError -> one line on stderr and a non-zero exit."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        code = main(sys.argv[1:])
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    sys.exit(code)

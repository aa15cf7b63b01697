"""The argument style of every `python -m launcher.*` tool that is not a Hydra app.

Hydra apps (train, the robot) take `key=value` overrides, so the small tools do too:

    python -m launcher.predict run=outputs/... input=new.csv output=pred.csv proba=true
    python -m launcher.runs sort=best limit=10
    python -m launcher.runs compare outputs/a outputs/b          # a command, then its operands
    python -m launcher.frameworks check=true

`-h`/`--help` prints the tool's usage. A bad argument is one `error: ...` line naming what was
accepted, and exit code 2; the tool's own errors (LauncherError) are one line too.
"""
from __future__ import annotations

import io
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from launcher.core.errors import ConfigError, LauncherError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


@dataclass
class Arguments:
    command: str | None = None
    operands: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.values.get(key)
        if value is None:
            return default
        if value.lower() in TRUE:
            return True
        if value.lower() in FALSE:
            return False
        raise ConfigError(f"{key}={value!r} is invalid; expected true or false")

    def integer(self, key: str, default: int | None = None) -> int | None:
        value = self.values.get(key)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{key}={value!r} is invalid; expected an integer") from None


def parse(argv: Sequence[str], options: Mapping[str, str], usage: str, required: Sequence[str] = (),
          commands: Mapping[str, str] | None = None) -> Arguments:
    """key=value options (keys from `options`), optionally after a command word and operands."""
    if any(a in ("-h", "--help", "help") for a in argv):
        print(usage)
        raise SystemExit(0)
    args = Arguments()
    rest = _dashed(argv, options, commands or {})
    if commands:
        words = [a for a in rest if "=" not in a]
        if words:  # the first bare word is the command, wherever it stands
            if words[0] not in commands:
                raise ConfigError(f"unknown command {words[0]!r}; expected one of: {', '.join(commands)}\n{usage}")
            args.command = words[0]
            rest.remove(words[0])
        else:
            args.command = next(iter(commands))
    for arg in rest:
        key, sep, value = arg.partition("=")
        if sep and key in options:
            args.values[key] = value
        elif not sep and args.command is not None:
            args.operands.append(arg)
        else:
            raise ConfigError(f"unexpected argument {arg!r}; expected key=value with key one of: "
                              f"{', '.join(options)}\n{usage}")
    missing = [k for k in required if not args.values.get(k)]
    if missing:
        raise ConfigError(f"missing {', '.join(k + '=...' for k in missing)}\n{usage}")
    return args


def _dashed(argv: Sequence[str], options: Mapping[str, str], commands: Mapping[str, str]) -> list[str]:
    """`--keep-best 2`, `--keep-best=2` and `--dry-run` as people type them, read as
    keep_best=2 and dry_run=true (an unknown --option is left as typed, for the error)."""
    out, args = [], list(argv)
    while args:
        arg = args.pop(0)
        key, sep, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not arg.startswith("--") or key not in options:
            out.append(arg)
            continue
        if not sep:
            value = "true"
            if args and not args[0].startswith("-") and "=" not in args[0] and args[0] not in commands:
                value = args.pop(0)
        out.append(f"{key}={value}")
    return out


def usage_text(synopsis: str, options: Mapping[str, str], commands: Mapping[str, str] | None = None) -> str:
    lines = [synopsis, ""]
    if commands:
        lines.append("commands:")
        lines += [f"  {name:<12} {text}" for name, text in commands.items()]
        lines.append("")
    lines.append("options (key=value):")
    lines += [f"  {name:<12} {text}" for name, text in options.items()]
    return "\n".join(lines)


def run(main: Callable[[list[str]], int]) -> None:
    """Run a tool: a LauncherError is one line on stderr and a non-zero exit, no traceback."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        code = main(sys.argv[1:])
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # the output was piped into a command that stopped reading (head)
        sys.stderr.close()
        code = 0
    sys.exit(code)


def run_hydra_app(main: Callable[[], object]) -> None:
    """Run a Hydra app (python -m launcher, the robot) with a composition error (an unknown
    option or key) shown as one line and exit status 2, like every other bad input. What Hydra
    writes to stderr while it composes is held back until the run starts (launcher.callbacks
    releases it) or the command ends."""
    hold_stderr()
    try:
        main()
    except SystemExit as exc:
        message = held_message()
        if message is not None and exc.code not in (0, None):
            message = hint(message, sys.argv[1:])
            print(f"error: {message or 'the configuration could not be composed'}", file=sys.stderr)
            raise SystemExit(2) from None
        raise
    finally:
        release_stderr()


def hint(message: str, argv: Sequence[str]) -> str:
    """Hydra's message where it misleads, replaced by the fix: `+group=` for a group that has a
    default (experiment, since it became `experiment: null` as in lightning-hydra-template) is
    reported by Hydra as "Multiple values for ...", which suggests an `override` in a file."""
    for arg in argv:
        key, sep, value = arg.partition("=")
        group = key[1:]
        if sep and key.startswith("+") and not key.startswith("++") and "." not in group \
                and message.startswith(f"Multiple values for {group}"):
            return (f"{group} is chosen without '+': {group}={value} ({arg} is the old form, from when {group} "
                    "had no default)")
    return message


# -- stderr while a Hydra app composes its config --------------------------------------------
class _Held:
    """What Hydra writes to stderr before a run starts (while it composes the config) is held,
    so that a composition error can be folded into one `error:` line."""

    def __init__(self) -> None:
        self.real: io.TextIOBase | None = None
        self.buffer = io.StringIO()


_held = _Held()


def hold_stderr() -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":  # Hydra shows the full trace then: leave it be
        return
    _held.real, _held.buffer = sys.stderr, io.StringIO()
    sys.stderr = _held.buffer


def release_stderr() -> None:
    """Pass on anything held and leave stderr alone from now on (the run has started)."""
    if _held.real is not None:
        sys.stderr, real = _held.real, _held.real
        _held.real = None
        real.write(_held.buffer.getvalue())


def held_message() -> str | None:
    """The held text folded into one line (None when nothing is held): Hydra's option lists
    and hints joined, its search path and HYDRA_FULL_ERROR advice dropped."""
    if _held.real is None:
        return None
    sys.stderr, _held.real = _held.real, None
    lines: list[str] = []
    skip = False
    for raw in _held.buffer.getvalue().splitlines():
        line = raw.strip()
        if line.startswith(("Config search path", "Set the environment variable HYDRA_FULL")):
            skip = line.startswith("Config search path")
            continue
        if skip and line.startswith("provider="):
            continue
        skip = False
        if not line or line.startswith(("full_key:", "object_type=", "reference_type=")):
            continue
        if raw.startswith("\t") and lines and lines[-1].endswith((":", ",")):
            lines[-1] = f"{lines[-1]} {line},"
            continue
        lines.append(line)
    parts = [p.rstrip(",") for p in lines]
    text = " ".join(p + ("" if p.endswith((".", ";", ":")) else ";") for p in parts).rstrip(";")
    return re.sub(r"\s+", " ", text)

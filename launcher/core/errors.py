"""The one exception type a user sees: what was wrong and what would be right.

Everything that can be blamed on input (a config, a CSV, an artifact on disk) raises
`LauncherError`; the entry points print its message without a traceback and exit non-zero.
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class LauncherError(Exception):
    """A problem with the user's input, reported as one clear message."""

    exit_code = 2


class ConfigError(LauncherError):
    """The composed configuration asks for something that cannot work."""


class DataError(LauncherError):
    """The dataset is missing, malformed, or unfit for the task."""


class ArtifactError(LauncherError):
    """A saved model is missing, incomplete, or does not match its checksums."""


class Interrupted(LauncherError):
    """The user stopped the run (Ctrl-C); the message says what was kept and how to resume."""

    exit_code = 130


def one_of(values) -> str:
    """Render a list of valid choices for an error message."""
    return ", ".join(sorted(str(v) for v in values))

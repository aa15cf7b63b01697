"""What every tracking writer is: its settings checked, its server checked, its events.

A writer receives the run's events in order (start, epoch..., final, artifacts, finish) and
does nothing else; the methods here are the no-op defaults a writer overrides.
"""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from launcher.core.errors import ConfigError, one_of


class Writer:
    name = ""
    # The settings a writer takes and their defaults; any other key is refused.
    defaults: dict[str, Any] = {}

    def __init__(self, settings: Mapping[str, Any] | None, out: Path) -> None:
        self.settings = settings_of(self.name, settings, self.defaults)
        self.out = out

    def start(self, params: dict[str, str], tags: dict[str, str]) -> None: ...

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None: ...

    def final(self, metrics: dict[str, float], step: int) -> None: ...

    def artifacts(self, files: list[Path], model_dir: Path | None) -> None: ...

    def finish(self, status: str) -> None: ...


def settings_of(name: str, given: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"logger.{name}.{unknown[0]} is not a setting of the {name} logger; expected one of: "
                          f"{one_of(defaults) if defaults else '(none)'}")
    return {**defaults, **given}


def public(uri: str) -> str:
    """A URI as it may be shown: without a user name or password in it."""
    parts = urllib.parse.urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return uri


def check_reachable(uri: str, probe: str, setting: str, timeout: float = 5.0) -> None:
    """An HTTP(S) server must answer at `uri` + `probe` before any training: a run that could
    not record its results fails in a second, naming the server, instead of after an hour."""
    if urllib.parse.urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + probe, timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answered (an error status is still a server there)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"cannot reach the tracking server at {public(uri)} ({reason}); start it, or point "
                          f"{setting} at a running one") from None

"""Where a study lives, and how a job reaches it without a password travelling in its config.

A storage is given as ``hydra.sweeper.storage`` (a URL), ``hydra.sweeper.storage_env`` (the name
of an environment variable holding the URL), or neither (SQLite ``optuna.db`` in the sweep
directory). Jobs get a *reference* instead of the URL:

    sqlite:////abs/path/optuna.db   a URL without a password, as is
    env:NAME                        read the URL from the job's environment

A URL with a password written into the config or onto the command line is refused: it would be
saved in every run's .hydra/ files.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.core.errors import ConfigError

DEFAULT_FILE = "optuna.db"
_ENV_INTERPOLATION = re.compile(r"^\$\{oc\.env:\s*([A-Za-z_][A-Za-z0-9_]*)\s*(,.*)?\}$")


@dataclass(frozen=True)
class StorageLocation:
    url: str  # may hold a password: never log it or write it anywhere
    reference: str  # what jobs get (see the module docstring)
    display: str  # the URL with its password hidden, for logs and results


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _has_password(url: str) -> bool:
    try:
        from sqlalchemy.engine import make_url

        return bool(make_url(url).password)
    except Exception:
        return "@" in url


def locate(
    storage: str | None, storage_env: str | None, sweep_dir: str | Path, raw_storage: Any = None
) -> StorageLocation:
    """Resolve the configured storage. raw_storage is the config value before interpolation,
    which tells a URL taken from ``${oc.env:VAR}`` from one written into the config."""
    if storage_env:
        url = os.environ.get(storage_env)
        if not url:
            raise ConfigError(
                f"hydra.sweeper.storage_env is {storage_env!r}, but that environment variable "
                "is not set; export it with the storage URL (e.g. postgresql://user:pw@host/db)"
            )
        return StorageLocation(url, f"env:{storage_env}", redact(url))
    if storage:
        url = str(storage)
        if not _has_password(url):
            return StorageLocation(url, url, redact(url))
        match = _ENV_INTERPOLATION.match(str(raw_storage or ""))
        if not match:
            raise ConfigError(
                f"hydra.sweeper.storage holds a password ({redact(url)}); a password must not sit "
                "in a config or on the command line: export the URL in an environment variable "
                "and set hydra.sweeper.storage_env=<its name>"
            )
        return StorageLocation(url, f"env:{match.group(1)}", redact(url))
    path = Path(sweep_dir).absolute() / DEFAULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    return StorageLocation(url, url, url)


def url_from_reference(reference: str) -> str:
    """The storage URL a job's trial link points to (see pruning.py)."""
    if reference.startswith("env:"):
        name = reference[4:]
        url = os.environ.get(name)
        if not url:
            raise ConfigError(f"the study's storage URL is read from ${name}, which is not set here")
        return url
    return reference


def open_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    on_stale_trial: Any = None,
) -> Any:
    """An Optuna RDBStorage; SQLite waits for locks instead of failing under parallel writers.

    Processes that open a new database at once race to create its tables (measured: about
    half of four processes opening a fresh SQLite file at once fail with "table ... already
    exists" or a UNIQUE error on alembic_version); the loser retries, through tenacity."""
    import warnings

    import optuna
    import sqlalchemy.exc
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 120}
    else:
        engine_kwargs["pool_pre_ping"] = True
    kwargs: dict[str, Any] = {}
    if heartbeat_interval:
        kwargs["heartbeat_interval"] = int(heartbeat_interval)
        kwargs["grace_period"] = int(grace_period) if grace_period else None
        if on_stale_trial is not None:
            kwargs["heartbeat_stale_trial_callback"] = on_stale_trial

    @retry(
        retry=retry_if_exception_type((sqlalchemy.exc.OperationalError,
                                       sqlalchemy.exc.IntegrityError,
                                       sqlalchemy.exc.ProgrammingError)),
        wait=wait_random_exponential(multiplier=0.2, max=3),
        stop=stop_after_attempt(10),
        reraise=True,
    )
    def connect() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)

    return connect()

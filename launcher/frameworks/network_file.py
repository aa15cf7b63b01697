"""network.json: what a saved neural network is, beside its weights (the same for every neural
adapter). It names the file format, the portable spec and the data schema the network was built
for, so loading rebuilds the network from JSON and only then reads the weights into it.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.specs import parse_spec
from launcher.core.types import DataSchema

NETWORK = "network.json"


def write(directory: Path, fmt: str, model: Any, **extra: Any) -> None:
    """`model` has .spec and .schema; `extra` adds what the adapter needs (versions, the API)."""
    info = {"format": fmt, "spec": asdict(model.spec), "schema": model.schema.to_dict(), **extra}
    (Path(directory) / NETWORK).write_text(json.dumps(info, indent=2, default=str))


def read(directory: Path, fmt: str, weights: str, framework: str,
         more: Callable[[dict[str, Any], Any], Any] | None = None) -> tuple[Any, DataSchema, Any]:
    """(spec, schema, more(info, spec)) of a saved model, or an ArtifactError naming what is
    missing or unreadable."""
    directory = Path(directory)
    for name in (weights, NETWORK):
        if not (directory / name).is_file():
            raise ArtifactError(f"{directory} is not a saved {framework} model: {name} is missing")
    try:
        info = json.loads((directory / NETWORK).read_text())
        if info.get("format") != fmt:
            raise ValueError(f"format {info.get('format')!r}, expected {fmt!r} (saved by another version "
                             "of launcher: retrain)")
        spec, schema = parse_spec(info["spec"]), DataSchema.from_dict(info["schema"])
        extra = more(info, spec) if more is not None else None
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
        raise ArtifactError(f"{directory / NETWORK} is unreadable: {exc}") from None
    return spec, schema, extra

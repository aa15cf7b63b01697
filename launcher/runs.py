"""Past runs and sweeps, with their scores; and runs side by side.

    python -m launcher.runs                          # runs and sweeps under ./outputs, newest first
    python -m launcher.runs sort=best limit=10       # best first (score in each objective's direction)
    python -m launcher.runs root=/path/to/project    # another project (or any folder of runs)
    python -m launcher.runs json=true                # machine-readable
    python -m launcher.runs compare DIR1 DIR2 ...    # metrics and differing config keys side by side

A run is a directory with metrics.json (written by launcher.train). A sweep is a directory with
optimization_results.yaml (the Optuna sweeper) or multirun.yaml (any Hydra multirun); its score is
its best trial's. Only light imports here: the standard library and PyYAML.
"""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from launcher.core import cli
from launcher.core.errors import LauncherError
from launcher.io import format_table

SWEEP_MARKERS = ("optimization_results.yaml", "multirun.yaml")
# Written into a run directory by python -m launcher when the run fails: error, type, overrides.
FAILED = "failed.json"


@dataclass
class Entry:
    kind: str  # "run" | "sweep"
    path: str
    time: float  # seconds since the epoch
    objective: str | None = None
    value: float | None = None
    direction: str | None = None
    model: str | None = None
    framework: str | None = None
    data: str | None = None
    trials: dict[str, int] = field(default_factory=dict)
    best_run: str | None = None
    status: str = "ok"  # ok | failed
    error: str | None = None

    def score(self) -> float:
        """Higher is better whatever the direction; entries without a value sort last."""
        if self.value is None or not math.isfinite(self.value):
            return -math.inf
        return -self.value if self.direction == "minimize" else self.value


def read_run(directory: Path) -> Entry | None:
    metrics = _json(directory / "metrics.json")
    if metrics is None:
        return read_failed(directory)
    objective = metrics.get("objective") or {}
    return Entry(
        kind="run", path=str(directory), time=(directory / "metrics.json").stat().st_mtime,
        objective=objective.get("name"), value=_number(objective.get("value")),
        direction=objective.get("direction"), model=_name(metrics.get("model")),
        framework=_name(metrics.get("framework")), data=_name(metrics.get("data")),
    )


def read_failed(directory: Path) -> Entry | None:
    """A run that stopped with an error (failed.json), with the choices it was made of."""
    failure = _json(directory / FAILED)
    if failure is None:
        return None
    config = _yaml(directory / ".hydra" / "config.yaml") or {}
    return Entry(kind="run", path=str(directory), time=(directory / FAILED).stat().st_mtime,
                 model=_name(config.get("model")), framework=_name(config.get("framework")),
                 data=_name(config.get("data")), status="failed", error=str(failure.get("error")))


def read_sweep(directory: Path) -> Entry | None:
    marker = next((directory / m for m in SWEEP_MARKERS if (directory / m).is_file()), None)
    if marker is None:
        return None
    runs = [r for r in (read_run(d) for d in _children(directory)) if r is not None]
    entry = Entry(kind="sweep", path=str(directory), time=marker.stat().st_mtime)
    results = _yaml(directory / "optimization_results.yaml") or {}
    if results:
        entry.trials = dict(results.get("trials") or {})
        directions = results.get("directions") or []
        entry.direction = directions[0] if len(directions) == 1 else None
        entry.value = _number(results.get("best_value"))
        entry.best_run = results.get("best_run_dir")
    else:
        failed = sum(r.status == "failed" for r in runs)
        entry.trials = {"COMPLETE": len(runs) - failed, **({"FAIL": failed} if failed else {})}
    if runs and all(r.status == "failed" for r in runs):
        entry.status = "failed"
    runs = [r for r in runs if r.status == "ok"]
    best = _best_of(runs, entry.best_run)
    if best is not None:
        entry.objective = best.objective
        entry.direction = entry.direction or best.direction
        entry.value = entry.value if entry.value is not None else best.value
        entry.best_run = best.path
        entry.model, entry.framework, entry.data = best.model, best.framework, best.data
    return entry


def scan(root: Path) -> list[Entry]:
    """Runs and sweeps under root/outputs (single runs in outputs/<date>/<time>, multiruns in
    outputs/multirun/<date>/<time>), or under root itself when it has no outputs/."""
    bases = [root / "outputs"] if (root / "outputs").is_dir() else [root]
    entries: list[Entry] = []
    for base in bases:
        for directory, subdirs, files in os.walk(base):
            path = Path(directory)
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d != "model")
            if any(m in files for m in SWEEP_MARKERS):
                sweep = read_sweep(path)
                if sweep:
                    entries.append(sweep)
                subdirs[:] = []  # its runs are its trials
            elif "metrics.json" in files or FAILED in files:
                run = read_run(path)
                if run:
                    entries.append(run)
                subdirs[:] = []
    return entries


def ordered(entries: Iterable[Entry], sort: str = "newest", metric: str | None = None) -> list[Entry]:
    chosen = [e for e in entries if metric is None or e.objective == metric]
    if sort == "best":
        return sorted(chosen, key=lambda e: (e.score(), e.time), reverse=True)
    return sorted(chosen, key=lambda e: e.time, reverse=True)


def listing_table(entries: Sequence[Entry], root: Path) -> str:
    if not entries:
        return f"no runs or sweeps under {root}"
    header = ["when", "kind", "status", "objective", "value", "model", "framework", "data", "trials", "path"]
    rows = [header]
    failures = []
    for e in entries:
        trials = " ".join(f"{k.lower()}={v}" for k, v in sorted(e.trials.items())) if e.trials else ""
        rows.append([
            datetime.fromtimestamp(e.time).strftime("%Y-%m-%d %H:%M"), e.kind, e.status, e.objective or "-",
            _fmt(e.value), e.model or "-", e.framework or "-", e.data or "-", trials or "-",
            _relative(e.path, root),
        ])
        if e.error:
            failures.append(f"{_relative(e.path, root)}: {e.error}")
    table = format_table(rows)
    return table + ("\n\nfailed:\n" + "\n".join(f"  {line}" for line in failures) if failures else "")


def compare(directories: Sequence[Path]) -> str:
    """Objective, validation/test metrics and the config keys that differ, one column per run.
    A sweep directory stands for its best run."""
    runs: list[tuple[str, dict, dict]] = []
    for directory in directories:
        directory = Path(directory)
        if read_sweep(directory) is not None:
            best = read_sweep(directory).best_run
            if not best:
                raise LauncherError(f"{directory}: the sweep has no finished run to compare")
            directory = Path(best)
        metrics = _json(directory / "metrics.json")
        if metrics is None:
            raise LauncherError(f"{directory}: no metrics.json; give run or sweep directories of python -m launcher")
        config = _flatten(_yaml(directory / ".hydra" / "config.yaml") or {})
        runs.append((str(directory), metrics, config))
    rows = [["", *(_short(path) for path, _, _ in runs)]]
    objective = [m.get("objective") or {} for _, m, _ in runs]
    rows.append(["objective", *(f"{o.get('name', '-')} ({o.get('direction', '?')})" for o in objective)])
    rows.append(["value", *(_fmt(_number(o.get("value"))) for o in objective)])
    for split in ("val", "test", "cv"):
        keys = sorted({k for _, m, _ in runs for k in (m.get(split) or {})})
        for key in keys:
            rows.append([f"{split}/{key}", *(_fmt(_number((m.get(split) or {}).get(key))) for _, m, _ in runs)])
    for key in ("framework", "model", "data", "seconds", "epochs"):
        if any(key in m for _, m, _ in runs):
            rows.append([key, *(str(_name(m.get(key)) or "-") for _, m, _ in runs)])
    keys = sorted({k for _, _, c in runs for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k), default=str) for _, _, c in runs}) > 1]
    for key in differing:
        rows.append([key, *(_short_value(c[key]) if key in c else "-" for _, _, c in runs)])
    return format_table(rows)


OPTIONS = {"root": "the project folder whose outputs/ to read (default: here)",
           "sort": "newest (default) or best (each objective in its own direction)",
           "limit": "show at most this many entries", "metric": "only entries with this objective, e.g. val/accuracy",
           "json": "true: print JSON instead of a table"}
COMMANDS = {"list": "runs and sweeps, newest or best first (the default)",
            "compare": "two or more run or sweep directories side by side"}
USAGE = cli.usage_text("python -m launcher.runs [list|compare DIR DIR...] [key=value ...]", OPTIONS, COMMANDS)


def main(argv: Sequence[str]) -> int:
    args = cli.parse(argv, OPTIONS, USAGE, commands=COMMANDS)
    if args.command == "compare":
        if len(args.operands) < 2:
            raise LauncherError(f"compare needs two or more run or sweep directories\n{USAGE}")
        print(compare([Path(d) for d in args.operands]))
        return 0
    if args.operands:
        raise LauncherError(f"unexpected argument {args.operands[0]!r}\n{USAGE}")
    sort = args.get("sort", "newest")
    if sort not in ("newest", "best"):
        raise LauncherError(f"sort={sort!r} is unknown; expected newest or best")
    root = Path(args.get("root") or Path.cwd())
    entries = ordered(scan(root), sort, args.get("metric"))[: args.integer("limit")]
    if args.flag("json"):
        print(json.dumps([asdict(e) for e in entries], indent=2))
    else:
        print(listing_table(entries, root))
    return 0


# -- small helpers ---------------------------------------------------------------------------
def _children(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def _best_of(runs: list[Entry], preferred: str | None) -> Entry | None:
    for run in runs:
        if preferred and Path(run.path) == Path(preferred):
            return run
    return max(runs, key=lambda r: r.score()) if runs else None


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _yaml(path: Path) -> dict | None:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _name(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else value


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _short_value(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _short(path: str) -> str:
    parts = Path(path).parts
    return "/".join(parts[-3:])


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


if __name__ == "__main__":
    cli.run(main)

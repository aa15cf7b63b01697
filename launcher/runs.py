"""Past runs and sweeps, with their scores; and runs side by side.

    python -m launcher.runs                          # runs and sweeps under ./outputs, newest first
    python -m launcher.runs sort=best limit=10       # best first (score in each objective's direction)
    python -m launcher.runs root=/path/to/project    # another project (or any folder of runs)
    python -m launcher.runs json=true                # machine-readable
    python -m launcher.runs compare DIR1 DIR2 ...    # metrics and differing config keys side by side
    python -m launcher.runs show 1                   # one entry in full (its number in the listing, or its path)
    python -m launcher.runs clean keep_best=3        # lists the model files of all but the 3 best runs of
                                                     # each dataset; yes=true (or y at the prompt) deletes them

A run is a directory with metrics.json (written by launcher.train). A sweep is a directory with
optimization_results.yaml (the Optuna sweeper) or multirun.yaml (any Hydra multirun); its score is
its best trial's. A robot experiment is a directory with robot.json. Only light imports here: the
standard library and PyYAML.
"""
from __future__ import annotations

import json
import math
import os
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from launcher.core import cli
from launcher.core.errors import LauncherError
from launcher.io import format_table, write_json

SWEEP_MARKERS = ("optimization_results.yaml", "multirun.yaml")
ROBOT = "robot.json"
MODEL_FILES = ("model", "checkpoints")  # what `clean` removes from a run directory
# Written into a run directory by python -m launcher when the run fails: error, type, overrides.
FAILED = "failed.json"
# Left in a run directory whose model files `clean` deleted: when, by which command, why.
CLEANED = "cleaned.json"


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
    status: str = "ok"  # ok | failed; a robot experiment: done | running | interrupted | failed
    error: str | None = None
    task: str | None = None  # robot experiments: the task, the requirement met, the time used
    met: bool | None = None
    seconds: float | None = None

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


def read_robot(directory: Path) -> Entry | None:
    record = _json(directory / ROBOT)
    if record is None:
        return None
    return Entry(kind="robot", path=str(directory), time=(directory / ROBOT).stat().st_mtime,
                 objective=record.get("metric"), value=_number(record.get("best_score")),
                 direction="minimize" if record.get("metric") in ("rmse", "mae", "log_loss") else "maximize",
                 model=record.get("best_model"), data=None, status=str(record.get("status")),
                 task=record.get("task"), met=record.get("met"), seconds=_number(record.get("seconds")),
                 error=(record.get("state") or {}).get("error"))


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
            if ROBOT in files:
                robot = read_robot(path)
                if robot:
                    entries.append(robot)
                subdirs[:] = []  # its searches and final fits are its parts
            elif any(m in files for m in SWEEP_MARKERS):
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
    header = ["#", "when", "kind", "status", "objective", "value", "model", "framework", "data", "trials", "path"]
    rows = [header]
    failures = []
    for i, e in enumerate(entries, start=1):
        trials = " ".join(f"{k.lower()}={v}" for k, v in sorted(e.trials.items())) if e.trials else ""
        if e.kind == "robot":
            trials = {True: "met", False: "not met", None: "-"}[e.met] + (f", {e.seconds:.0f}s" if e.seconds else "")
        rows.append([
            str(i), datetime.fromtimestamp(e.time).strftime("%Y-%m-%d %H:%M"), e.kind, e.status, e.objective or "-",
            _fmt(e.value), e.model or "-", e.framework or "-", _short_value(e.task) if e.task else e.data or "-",
            trials or "-", _relative(e.path, root),
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
           "json": "true: print JSON instead of a table",
           "keep_best": "clean: how many of the best runs of each dataset, task and metric keep their model files",
           "yes": "clean: true: delete without asking (without it clean asks on a terminal, else deletes nothing)",
           "dry_run": "clean: true: list what would be deleted, delete nothing, do not ask"}
COMMANDS = {"list": "runs, sweeps and robot experiments, newest or best first (the default)",
            "compare": "two or more run or sweep directories side by side",
            "show": "one entry in full: its number in the listing (with the same sort) or its path",
            "clean": "list, then delete, the model files (model/, checkpoints/) of all but the keep_best best "
                     "runs, sweep trials and robot experiments of each dataset, task and metric (so a dataset's "
                     "last model stays), or of the directories named (clean DIR... : even a last model). "
                     "It deletes with yes=true, or after y at its prompt on a terminal; otherwise it only "
                     "lists. The records stay; predict on a cleaned run says clean deleted its model"}
USAGE = cli.usage_text("python -m launcher.runs [list|show N|compare DIR DIR...|clean keep_best=N|clean DIR...] "
                       "[key=value ...]\n(--key value and --key=value work too: clean --keep-best 2 --yes)",
                       OPTIONS, COMMANDS)


def main(argv: Sequence[str]) -> int:
    args = cli.parse(argv, OPTIONS, USAGE, commands=COMMANDS)
    if args.command == "compare":
        if len(args.operands) < 2:
            raise LauncherError(f"compare needs two or more run or sweep directories\n{USAGE}")
        print(compare([Path(d) for d in args.operands]))
        return 0
    sort = args.get("sort", "newest")
    if sort not in ("newest", "best"):
        raise LauncherError(f"sort={sort!r} is unknown; expected newest or best")
    root = Path(args.get("root") or Path.cwd())
    if args.command == "show":
        if len(args.operands) != 1:
            raise LauncherError(f"show needs one entry: its number in the listing or its path\n{USAGE}")
        print(show(pick(args.operands[0], ordered(scan(root), sort, args.get("metric")), root), root))
        return 0
    if args.command == "clean":
        keep = args.integer("keep_best")
        if (keep is None) == (not args.operands):
            raise LauncherError("clean needs either keep_best=N (how many of the best runs of each dataset keep "
                                "their model files) or the run directories whose models to delete")
        if keep is not None and keep < 1:
            raise LauncherError(f"keep_best={keep} would delete the last model of every dataset; give keep_best=1 "
                                "or more, or name the runs whose models to delete: clean DIR... yes=true")
        if args.operands:
            delete, kept = plan_named(root, args.operands), []
        else:
            delete, kept = plan_clean(root, keep)
        confirm = False if args.flag("dry_run") else (True if args.flag("yes") else None)
        command = " ".join(["python -m launcher.runs", *map(shlex.quote, argv)])
        print(clean(root, delete, kept, confirm, command))
        return 0
    if args.operands:
        raise LauncherError(f"unexpected argument {args.operands[0]!r}\n{USAGE}")
    entries = ordered(scan(root), sort, args.get("metric"))[: args.integer("limit")]
    if args.flag("json"):
        print(json.dumps([asdict(e) for e in entries], indent=2))
    else:
        print(listing_table(entries, root))
    return 0


def pick(which: str, entries: Sequence[Entry], root: Path) -> Entry:
    if which.isdigit():
        if not 1 <= int(which) <= len(entries):
            raise LauncherError(f"there is no entry {which}: the listing has {len(entries)}")
        return entries[int(which) - 1]
    path = Path(which)
    path = path if path.is_absolute() else root / path
    for reader in (read_robot, read_sweep, read_run):
        entry = reader(path) if path.is_dir() else None
        if entry is not None:
            return entry
    raise LauncherError(f"{which} is neither a number in the listing nor a run, sweep or robot directory")


def show(entry: Entry, root: Path) -> str:
    """One entry in full: a robot experiment's report, a sweep's results, a run's metrics."""
    path = Path(entry.path)
    head = f"{entry.kind} {_relative(entry.path, root)} ({entry.status})"
    if entry.kind == "robot" and (path / "report.md").is_file():
        return head + "\n\n" + (path / "report.md").read_text()
    if entry.kind == "sweep":
        results = _yaml(path / "optimization_results.yaml")
        return head + "\n\n" + (yaml.safe_dump(results, sort_keys=False) if results else "(no results yet)")
    if entry.status == "failed":
        return head + f"\n\nerror: {entry.error}"
    return head + "\n\n" + json.dumps(_json(path / "metrics.json"), indent=2)


# -- clean: delete the model files of runs that are not among the best of their dataset --------
@dataclass
class Saved:
    """A run, sweep trial or robot experiment that still holds model files."""

    entry: Entry
    folders: list[Path]
    group: tuple[str, str, str]  # (dataset, task, metric): what its score is comparable with


def saved_models(root: Path) -> list[Saved]:
    entries: list[Entry] = []
    for entry in scan(root):
        if entry.kind in ("run", "robot"):  # a robot experiment's final model is its model/
            entries.append(entry)
        elif entry.kind == "sweep":
            entries += [r for r in (read_run(d) for d in _children(Path(entry.path))) if r is not None]
    out = []
    for entry in entries:
        folders = [Path(entry.path) / name for name in MODEL_FILES if (Path(entry.path) / name).exists()]
        if folders:  # a run saved without a model (save_model=false) keeps nothing: it cannot be "the best kept"
            out.append(Saved(entry, folders, trained_on(Path(entry.path), entry, root)))
    return out


def trained_on(directory: Path, entry: Entry, root: Path) -> tuple[str, str, str]:
    """(dataset, task, metric) of a run or robot experiment. Scores are comparable only within
    one: a CSV file is known by its absolute path and target (two projects' train.csv are not
    the same data), a built-in dataset by its name, synthetic data by its shape. What cannot be
    told is a group of its own, so clean never weighs it against other runs."""
    if entry.kind == "robot":
        info = (_json(directory / "task.json") or {}).get("dataset") or {}
        data = {"csv": {"source": "csv", "path": info.get("path"), "target": info.get("target")},
                "builtin": {"name": info.get("name")},
                "shape": {"source": "synthetic", "size": info.get("size"), "features": info.get("features"),
                          "classes": info.get("classes")}}.get(info.get("kind"), {})
        task = (_json(directory / ROBOT) or {}).get("task_type")
    else:
        config = _yaml(directory / ".hydra" / "config.yaml") \
            or ((_json(directory / "model" / "metadata.json") or {}).get("config") or {})
        data = config.get("data") if isinstance(config.get("data"), dict) else {}
        task = (_json(directory / "metrics.json") or {}).get("task") or config.get("task")
    metric = re.sub(r"^(val|test|cv)/", "", entry.objective or "").removesuffix("_mean") or "-"
    return _dataset_name(directory, data, root) or f"unknown ({directory})", str(task or "-"), metric


def _dataset_name(directory: Path, data: dict, root: Path) -> str | None:
    if data.get("source") == "csv" or data.get("path"):
        if not data.get("path") or not data.get("target"):
            return None
        path = Path(str(data["path"])).expanduser()
        if not path.is_absolute():  # relative to where the command ran (Hydra records it)
            runtime = ((_yaml(directory / ".hydra" / "hydra.yaml") or {}).get("hydra") or {}).get("runtime") or {}
            path = Path(runtime.get("cwd") or root) / path
        return f"{os.path.normpath(path)} (target {data['target']})"
    if data.get("source") == "synthetic" or data.get("name") == "synthetic":
        return f"synthetic ({data.get('size')} rows, {data.get('features')} features, {data.get('classes')} classes)"
    return str(data["name"]) if data.get("name") else None


def plan_clean(root: Path, keep: int) -> tuple[list[tuple[Saved, str]], list[Saved]]:
    """(to delete with the reason, kept): the `keep` best of each (dataset, task, metric) keep
    their model files; so every dataset keeps at least one model."""
    groups: dict[tuple[str, str, str], list[Saved]] = {}
    for saved in saved_models(root):
        groups.setdefault(saved.group, []).append(saved)
    delete, kept = [], []
    for (dataset, task, metric), group in groups.items():
        group.sort(key=lambda s: (s.entry.score(), s.entry.time), reverse=True)
        kept += group[:keep]
        delete += [(s, f"not among the best {keep} by {metric} on {dataset} ({task})") for s in group[keep:]]
    return delete, kept


def plan_named(root: Path, names: Sequence[str]) -> list[tuple[Saved, str]]:
    """The model files of the runs, sweeps (all their trials) and robot experiments named."""
    chosen = []
    for name in names:
        path = Path(name) if Path(name).is_absolute() else root / name
        found = saved_models(path) if path.is_dir() else []
        if not found:
            raise LauncherError(f"{name} holds no model files to delete; give a run, sweep or robot directory "
                                "whose model/ is still there")
        chosen += [(s, "named on the command line") for s in found]
    return chosen


def clean(root: Path, delete: list[tuple[Saved, str]], kept: list[Saved], confirm: bool | None, command: str) -> str:
    """Say what will be deleted, then delete it if `confirm` (None: ask on a terminal, else
    delete nothing). A deleted run keeps its records and gets cleaned.json, so predict can say
    what happened to its model."""
    import shutil

    count = sum(len(s.folders) for s, _ in delete)
    lines = [f"{count} model folder(s) to delete" + (":" if delete else ""), *(
        f"  {_relative(str(f), root)}  ({_what(s)})" for s, _ in delete for f in s.folders)]
    if kept:
        lines += [f"{len(kept)} keep their model files:", *(f"  {_relative(s.entry.path, root)}  ({_what(s)})"
                                                           for s in kept)]
    print("\n".join(lines), flush=True)
    if not delete:
        return "nothing to delete"
    if confirm is False:
        return "nothing deleted (dry_run=true)"
    if confirm is None:
        if not sys.stdin.isatty():  # nobody to ask: a script deletes only with yes=true
            return "nothing deleted: add yes=true to delete them"
        answer = input(f"delete these {count} model folder(s)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return "nothing deleted"
    when = datetime.now().astimezone().isoformat(timespec="seconds")
    for saved, why in delete:
        # The note first: a run whose model is gone always says why, even if deleting stops halfway.
        write_json(Path(saved.entry.path) / CLEANED, {"deleted": [f.name for f in saved.folders], "when": when,
                                                       "command": command, "reason": why})
        for folder in saved.folders:
            shutil.rmtree(folder)
    return f"deleted {count} model folder(s); their records stay"


def cleaned_reason(run: Path) -> str | None:
    """Why a run has no model any more, if `clean` deleted it (one line), else None."""
    run = Path(run)
    note = _json(run / CLEANED) or (_json(run.parent / CLEANED) if run.name in MODEL_FILES else None)
    if note is None:
        return None
    return (f"the model of {run} was deleted by python -m launcher.runs clean on {note.get('when')} "
            f"({note.get('reason')}; command: {note.get('command')}); its records stay. Predict with a run "
            "that kept its model (python -m launcher.runs sort=best), or train this one again")


def _what(saved: Saved) -> str:
    dataset, task, metric = saved.group
    return f"{dataset}, {task}, {metric} {_fmt(saved.entry.value)}"


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

"""Every trial the robot ran, best first: read from the sweeps' own records (trials.csv, each
trial's metrics.json and .hydra/overrides.yaml), so the leaderboard is what the runs left, not
what the robot remembers."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from launcher.io import write_csv
from launcher.robot.space import ESTIMATORS, NETWORKS

INTEGER_KEYS = {k for table in (*ESTIMATORS.values(), *NETWORKS.values()) for k, b in table.items() if b.kind == "int"}

PARAM_PREFIX = "params_"
FINAL_STATES = ("COMPLETE", "PRUNED", "FAIL")  # Optuna's: nothing more is written for such a trial
# A trial still running when the robot stopped its search (at the deadline, or once the
# requirement was met): neither finished nor failed.
STOPPED = "STOPPED"


@dataclass
class Trial:
    sweep: str  # the search's slug
    number: int
    state: str
    score: float | None  # the objective (cross-validated mean), None when not finished
    model: str | None
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    run_dir: str | None = None
    cv_std: float | None = None
    error: str | None = None  # a failed trial's error line

    def fitted_model(self) -> Path | None:
        """The trial's own model when it was fitted on every row (the robot's baseline run is
        fitted so; search trials save none)."""
        model = Path(self.run_dir or "") / "model"
        return model if self.run_dir and (model / "metadata.json").is_file() else None

    def overrides(self) -> list[str]:
        """The trial's own overrides (its experiment and its parameters), from its run directory."""
        path = Path(self.run_dir or "") / ".hydra" / "overrides.yaml"
        items = yaml.safe_load(path.read_text()) if path.is_file() else []
        return [o for o in items if not o.startswith(("hparams_search=", "hydra."))]


@dataclass
class Leaderboard:
    metric: str
    direction: str  # maximize | minimize
    trials: list[Trial] = field(default_factory=list)
    stopped: set[str] = field(default_factory=set)  # searches the robot stopped

    def add_sweep(self, sweep_dir: Path, slug: str) -> None:
        """Read (again) what a search has left. The robot polls this while the search runs: a
        trial in a final state keeps what was read of it (its metrics.json does not change)."""
        final = {t.number: t for t in self.trials if t.sweep == slug and t.state in FINAL_STATES}
        read = read_sweep(sweep_dir, slug, self.metric, final)
        if slug in self.stopped:
            for t in read:
                t.state = STOPPED if t.state == "RUNNING" else t.state
        self.trials = [t for t in self.trials if t.sweep != slug] + read

    def stop(self, slug: str) -> None:
        """The robot stopped this search: its running trials are recorded as stopped."""
        self.stopped.add(slug)
        for t in self.trials:
            if t.sweep == slug and t.state == "RUNNING":
                t.state = STOPPED

    def add_run(self, run_dir: Path, name: str, params: dict[str, Any] | None = None) -> Trial:
        """A single launcher run (the robot's baseline) as a trial of its own: finished with
        its cross-validated objective, or failed with its error line."""
        run_dir = Path(run_dir)
        metrics = _json(run_dir / "metrics.json") or {}
        failed = _json(run_dir / "failed.json")
        objective = metrics.get("objective") or {}
        trial = Trial(sweep=name, number=0, state="COMPLETE" if metrics else "FAIL" if failed else "RUNNING",
                      score=_number(objective.get("value")), model=metrics.get("model"), params=dict(params or {}),
                      seconds=_number(metrics.get("seconds")), run_dir=str(run_dir),
                      cv_std=_number((metrics.get("cv") or {}).get(f"{self.metric}_std")),
                      error=(failed or {}).get("error"))
        self.trials = [t for t in self.trials if t.sweep != name] + [trial]
        return trial

    def failures(self) -> list[Trial]:
        return [t for t in self.trials if t.state == "FAIL"]

    @property
    def finished(self) -> list[Trial]:
        done = [t for t in self.trials if t.state == "COMPLETE" and t.score is not None and math.isfinite(t.score)]
        return sorted(done, key=lambda t: t.score, reverse=self.direction == "maximize")

    def best(self) -> Trial | None:
        return self.finished[0] if self.finished else None

    def best_model(self) -> str | None:
        best = self.best()
        return best.model if best else None

    def compact(self, most: int = 12) -> list[dict[str, Any]]:
        """The leaderboard as an LLM planner sees it: a few fields per trial, best first."""
        rows = []
        for t in self.finished[:most]:
            rows.append({"model": t.model, "score": round(t.score, 5), "cv_std": None if t.cv_std is None
                         else round(t.cv_std, 5), "seconds": None if t.seconds is None else round(t.seconds, 1),
                         "params": {k: v for k, v in t.params.items() if k != "model"}})
        return rows

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def write_csv(self, path: Path) -> Path:
        import pandas as pd

        finished = self.finished
        order = finished + [t for t in self.trials if t not in finished]
        rows = [{"rank": str(i + 1) if i < len(finished) else "", "sweep": t.sweep, "trial": t.number,
                 "state": t.state, self.metric: t.score, "cv_std": t.cv_std, "model": t.model,
                 "seconds": t.seconds, "params": json.dumps({k: v for k, v in t.params.items() if k != "model"}),
                 "run_dir": t.run_dir, "error": t.error or ""} for i, t in enumerate(order)]
        return write_csv(path, pd.DataFrame(rows))

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "trials": [asdict(t) for t in self.trials]}


def read_sweep(sweep_dir: Path, slug: str, metric: str, known: dict[int, Trial] | None = None) -> list[Trial]:
    """The search's trials from its trials.csv; `known` trials (by number) in the same state
    are taken as they are instead of being parsed again."""
    path = Path(sweep_dir) / "trials.csv"
    if not path.is_file():
        return []
    trials = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            same = (known or {}).get(int(row["number"]))
            if same is not None and same.state == row.get("state"):
                trials.append(same)
                continue
            params = {k[len(PARAM_PREFIX):]: _value(k[len(PARAM_PREFIX):], v) for k, v in row.items()
                      if k.startswith(PARAM_PREFIX) and v not in ("", None)}
            run_dir = row.get("user_attrs_run_dir") or row.get("run_dir") or None
            state = row.get("state", "")
            trial = Trial(sweep=slug, number=int(row["number"]), state=state,
                          score=_number(row.get("value")), model=params.get("model"), params=params,
                          seconds=_seconds(row.get("duration")), run_dir=run_dir,
                          error=(row.get("note") or None) if state == "FAIL" else None)
            metrics = _json(Path(run_dir) / "metrics.json") if run_dir else None
            if metrics:
                trial.cv_std = _number((metrics.get("cv") or {}).get(f"{metric}_std"))
                trial.model = trial.model or metrics.get("model")
            trials.append(trial)
    return trials


def _value(key: str, text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # trials.csv holds one column per key over all families, so pandas writes an integer key
    # that other families lack as a float (5.0): give it back its integer form.
    if isinstance(value, float) and value.is_integer() and key in INTEGER_KEYS:
        return int(value)
    return value


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _seconds(text: Any) -> float | None:
    """Optuna writes durations as pandas Timedeltas ('0 days 00:00:03.731571')."""
    if not text:
        return None
    try:
        import pandas as pd

        return float(pd.Timedelta(str(text)).total_seconds())
    except (ValueError, TypeError):
        return _number(text)


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

"""What a sweep leaves in its directory: optimization_results.yaml, trials.csv and PNG plots."""
from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from launcher.io import atomic_path, write_text

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"
TRIALS_FILE = "trials.csv"
HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"


def write_results(
    study: Any, sweep_dir: str | Path, overrides_of: Any, extra: Mapping[str, Any]
) -> Path:
    """optimization_results.yaml (hydra-optuna-sweeper's keys: name, best_params, best_value
    or solutions; then ours) and trials.csv. overrides_of(params) -> override strings."""
    from omegaconf import OmegaConf
    from optuna.trial import TrialState

    sweep_dir = Path(sweep_dir)
    trials = study.get_trials(deepcopy=False)
    states = {state.name: 0 for state in TrialState}
    for trial in trials:
        states[trial.state.name] += 1
    results: dict[str, Any] = {"name": "optuna"}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(study.directions) == 1:
        best = study.best_trial if complete else None
        results["best_params"] = dict(best.params) if best else None
        results["best_value"] = best.value if best else None
        results["best_trial"] = best.number if best else None
        results["best_run_dir"] = best.user_attrs.get("run_dir") if best else None
        results["best_overrides"] = overrides_of(best.params) if best else None
    else:
        results["solutions"] = [
            {"params": dict(t.params), "values": list(t.values), "trial": t.number,
             "run_dir": t.user_attrs.get("run_dir")}
            for t in (study.best_trials if complete else [])
        ]
    results["directions"] = [d.name.lower() for d in study.directions]
    results["study_name"] = study.study_name
    results["trials"] = {name: count for name, count in states.items() if count}
    results.update(extra)
    write_text(sweep_dir / RESULTS_FILE, OmegaConf.to_yaml(OmegaConf.create(results)))
    _write_trials_csv(study, trials, sweep_dir / TRIALS_FILE)
    return sweep_dir / RESULTS_FILE


def write_trials(study: Any, sweep_dir: str | Path) -> Path:
    """trials.csv alone: after trials start, so the file shows them RUNNING (a watcher, such
    as the robot, then knows which trial a stop cut short)."""
    path = Path(sweep_dir) / TRIALS_FILE
    _write_trials_csv(study, study.get_trials(deepcopy=False), path)
    return path


def _write_trials_csv(study: Any, trials: Sequence[Any], path: Path) -> None:
    """Optuna's own table (study.trials_dataframe(): number, value(s), times, params_*,
    user_attrs_*, state), plus a note: the failure, or the interruption and its re-run."""
    from launcher.sweeper.resume import interrupted_numbers

    attrs = ("number", "value", "datetime_start", "datetime_complete", "duration", "params",
             "user_attrs", "state")
    frame = study.trials_dataframe(attrs=attrs, multi_index=False)
    reruns = interrupted_numbers(trials)
    notes = {}
    for t in trials:
        note = [t.user_attrs.get("failure") or t.user_attrs.get("skipped") or ""]
        if t.number in reruns:
            note.append(f"interrupted; re-run as trial {reruns[t.number]}")
        history = t.system_attrs.get("retry_history")
        if history:
            note.append(f"re-run of trial {history[-1]}")
        notes[t.number] = "; ".join(n for n in note if n)
    if len(frame):
        frame["note"] = frame["number"].map(notes).fillna("")
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_plots(study: Any, sweep_dir: str | Path) -> list[Path]:
    """optimization_history.png and param_importances.png (matplotlib only); a plot that cannot
    be drawn yet (too few finished trials) is skipped with a log line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as optuna_plots

    sweep_dir = Path(sweep_dir)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    finite = [t for t in complete if all(math.isfinite(v) for v in t.values)]
    if not finite:
        log.info("no completed trial yet: no plots")
        return []
    targets: list[tuple[str, Any, str | None]] = []
    if len(study.directions) == 1:
        targets.append(("", None, None))
    else:
        for i in range(len(study.directions)):
            targets.append((f"_{i}", (lambda t, i=i: t.values[i]), f"objective {i}"))
    written: list[Path] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for suffix, target, target_name in targets:
            kwargs = {"target": target, "target_name": target_name} if target else {}
            jobs = [(HISTORY_PLOT, optuna_plots.plot_optimization_history)]
            if len(finite) >= 2 and study.best_trials[0].params:
                jobs.append((IMPORTANCE_PLOT, optuna_plots.plot_param_importances))
            for filename, plot in jobs:
                path = sweep_dir / filename.replace(".png", f"{suffix}.png")
                try:
                    ax = plot(study, **kwargs)
                    figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
                    figure.savefig(path, dpi=120, bbox_inches="tight")
                    plt.close(figure)
                    written.append(path)
                except (ValueError, RuntimeError, optuna.exceptions.OptunaError) as error:
                    log.info("%s not drawn: %s", filename, error)
    return written

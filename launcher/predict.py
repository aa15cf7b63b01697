"""python -m launcher.predict run=<run dir> input=<raw csv> output=<csv> [proba=true] [proba_output=<csv>]

Reloads a saved model with its preprocessing (checksums verified, no pickle) and writes one
prediction per input row, in order: class labels as in the training target, or values.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from launcher import cli
from launcher.errors import DataError

USAGE = __doc__.strip().splitlines()[0]
ARGS = {"run": "run directory (or its model/ folder)", "input": "CSV with the training columns",
        "output": "where to write predictions", "proba": "true: add one probability column per class",
        "proba_output": "also write class probabilities here, one column per class"}


def predict_frame(run: Path, frame):
    """(labels or values, probabilities or None, target name) for a raw DataFrame."""
    import numpy as np

    from launcher import artifacts
    from launcher.data import TargetEncoder
    from launcher.metrics import labels_from
    from launcher.preprocessing import Preprocessor

    model, meta = artifacts.load_model(run)
    prep = json.loads((artifacts.model_dir(run) / "preprocessing.json").read_text())
    pre = Preprocessor.from_dict(prep["features"])
    target = TargetEncoder.from_dict(prep["target"]) if prep["target"].get("task") != "clustering" else None
    frame.columns = [str(c).strip() for c in frame.columns]
    allow = (target.name,) if target is not None else ()
    pre.check_columns(frame, allow=allow)
    X = pre.transform(frame[pre.input_columns])
    from launcher.frameworks.manager import FrameworkManager

    adapter = FrameworkManager().get_framework(meta["framework"])
    output = adapter.predict(model, X)
    task = meta["task"]
    if task == "classification":
        return target.decode(labels_from(task, output)), np.asarray(output), target
    if task == "regression":
        return target.decode(output), None, target
    return np.asarray(output).reshape(-1), None, target


def _write_csv(frame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    args = cli.parse(argv, ARGS, ("run", "input", "output"), USAGE)
    import pandas as pd

    source = Path(args["input"])
    if not source.is_file():
        raise DataError(f"input CSV not found: {source}")
    try:
        frame = pd.read_csv(source, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"input CSV {source} is empty") from None
    values, proba, target = predict_frame(Path(args["run"]), frame)
    name = target.name if target is not None else "cluster"
    out = pd.DataFrame({name: values})
    if proba is not None:
        columns = {str(c): proba[:, i] for i, c in enumerate(target.classes)}
        if args.get("proba", "").lower() in cli.TRUE:
            for c, col in columns.items():
                out[f"proba_{c}"] = col
        if args.get("proba_output"):
            _write_csv(pd.DataFrame(columns), Path(args["proba_output"]))
    _write_csv(out, Path(args["output"]))
    print(f"wrote {len(out)} predictions to {args['output']}")
    return 0


if __name__ == "__main__":
    cli.run(main)

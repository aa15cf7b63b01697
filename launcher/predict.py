"""python -m launcher.predict run=<run dir> input=<table> output=<csv> [proba=true] [proba_output=<csv>]
[id_columns=a,b] [sep=...] [encoding=...] [decimal=...]

Reloads a saved model with its preprocessing (checksums verified, no pickle) and writes one
prediction per input row, in order: class labels as in the training target, or values. The
input is read as training files are (CSV, compressed CSV or Parquet; delimiter and encoding
detected). Identifier columns (the training run's data.drop and ID-like columns, and those
named by id_columns=) are copied next to the predictions, so results join back without relying
on row order.
"""
from __future__ import annotations

from pathlib import Path

from launcher.core import cli
from launcher.core.errors import ConfigError

OPTIONS = {"run": "run directory (or its model/ folder)",
           "input": "table with the training columns (CSV, .csv.gz/.zip, Parquet)",
           "output": "where to write the predictions (CSV)",
           "proba": "true: add one proba_<class> column per class (classification)",
           "proba_output": "also write the class probabilities to this CSV (ID columns, proba_<class>)",
           "id_columns": "comma-separated input columns to copy to the output (besides the run's own)",
           "sep": "the input's delimiter (default: detected)", "encoding": "the input's encoding (default: detected)",
           "decimal": "the input's decimal mark (default: detected)"}
USAGE = cli.usage_text(__doc__.strip().split("\n\n")[0], OPTIONS)


def main(argv: list[str]) -> int:
    args = cli.parse(argv, OPTIONS, USAGE, required=("run", "input", "output"))
    import pandas as pd

    from launcher.io import read_table
    from launcher.pipeline.predict import SavedRun

    outputs = {"output": args.get("output"), **({"proba_output": args.get("proba_output")}
                                                 if args.get("proba_output") else {})}
    for option, path in outputs.items():  # before the work, so that a bad path costs nothing
        writable(Path(path), option)
    run = SavedRun.load(Path(args.get("run")))
    wants_proba = args.flag("proba") or bool(args.get("proba_output"))
    if wants_proba and run.meta.get("task") != "classification":
        raise ConfigError(f"proba=true / proba_output= need a classification model; the model in {args.get('run')} "
                          f"does {run.meta.get('task')}")
    table = read_table(Path(args.get("input")), "input file", "input=", sep=args.get("sep"),
                       encoding=args.get("encoding"), decimal=args.get("decimal"), options="sep= / encoding=")
    frame = table.frame
    extra = tuple(c.strip() for c in (args.get("id_columns") or "").split(",") if c.strip())
    result = run.predict(frame, id_columns=extra)
    ids = run.id_columns(frame, extra)
    out = frame[ids].copy()
    out[result.name] = result.values
    if result.proba is not None:
        proba = pd.DataFrame({f"proba_{c}": result.proba[:, i] for i, c in enumerate(result.target.classes)},
                             index=frame.index)
        if args.flag("proba"):
            out = pd.concat([out, proba], axis=1)
        if args.get("proba_output"):
            _write(Path(args.get("proba_output")), "proba_output", pd.concat([frame[ids], proba], axis=1))
    _write(Path(args.get("output")), "output", out)
    print(f"wrote {len(out)} predictions to {args.get('output')}"
          + (f" (with {', '.join(ids)})" if ids else ""))
    return 0


def writable(path: Path, option: str) -> None:
    """Refuse an output path that cannot be written (its folder is a file, read-only, ...),
    tried for real by creating a file there: permission bits alone do not stop root."""
    import tempfile

    if path.is_dir():
        raise ConfigError(f"{option}={path} is a folder; give a file name, e.g. {option}={path / 'pred.csv'}")
    folder = path.absolute().parent
    while not folder.exists():  # the folders still to make are made when writing; nothing now
        folder = folder.parent
    try:
        if not folder.is_dir():
            raise NotADirectoryError(20, "a file, not a folder")
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"{option}={path} cannot be written ({folder}: {exc.strerror or exc}); give a path in "
                          "a folder you can write to") from None


def _write(path: Path, option: str, frame) -> None:
    from launcher.io import write_csv

    try:
        write_csv(path, frame)
    except OSError as exc:  # the folder changed since the check, or the disk is full
        raise ConfigError(f"{option}={path} could not be written ({exc.strerror or exc}); nothing was written "
                          "there; give a path in a folder you can write to") from None


if __name__ == "__main__":
    cli.run(main)

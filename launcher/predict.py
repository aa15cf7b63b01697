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

    from launcher.io import read_table, write_csv
    from launcher.pipeline.predict import SavedRun

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
            write_csv(Path(args.get("proba_output")), pd.concat([frame[ids], proba], axis=1))
    write_csv(Path(args.get("output")), out)
    print(f"wrote {len(out)} predictions to {args.get('output')}"
          + (f" (with {', '.join(ids)})" if ids else ""))
    return 0


if __name__ == "__main__":
    cli.run(main)

"""python -m launcher.predict run=<run dir> input=<raw csv> output=<csv> [proba=true] [proba_output=<csv>]

Reloads a saved model with its preprocessing (checksums verified, no pickle) and writes one
prediction per input row, in order: class labels as in the training target, or values.
"""
from __future__ import annotations

from pathlib import Path

from launcher.core import cli

OPTIONS = {"run": "run directory (or its model/ folder)", "input": "CSV with the training columns",
           "output": "where to write predictions (CSV)",
           "proba": "true: add one proba_<class> column per class to the output",
           "proba_output": "also write the class probabilities to this CSV, one proba_<class> column per class"}
USAGE = cli.usage_text(__doc__.strip().splitlines()[0], OPTIONS)


def main(argv: list[str]) -> int:
    args = cli.parse(argv, OPTIONS, USAGE, required=("run", "input", "output"))
    import pandas as pd

    from launcher.io import read_table, write_csv
    from launcher.pipeline.predict import SavedRun

    run = SavedRun.load(Path(args.get("run")))
    frame = read_table(Path(args.get("input")), "input CSV", "input=")
    result = run.predict(frame)
    out = pd.DataFrame({result.name: result.values})
    if result.proba is not None:
        columns = {f"proba_{c}": result.proba[:, i] for i, c in enumerate(result.target.classes)}
        if args.flag("proba"):
            for name, column in columns.items():
                out[name] = column
        if args.get("proba_output"):
            write_csv(Path(args.get("proba_output")), pd.DataFrame(columns))
    write_csv(Path(args.get("output")), out)
    print(f"wrote {len(out)} predictions to {args.get('output')}")
    return 0


if __name__ == "__main__":
    cli.run(main)

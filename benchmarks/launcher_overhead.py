"""Wall time of the default job, `python -m launcher` (a random forest on iris, saved), against
a plain Python script doing the same fit and evaluation, as a ratio.

    .venv/bin/python benchmarks/launcher_overhead.py [--repeats 7] [--overrides "model=svm ..."]

Each command is a fresh interpreter, as a user runs it; runs alternate so that machine noise
hits both sides alike, and the medians (and the median of the per-pair ratios) are compared.
A second baseline also saves the model with skops, since the launcher always saves one.

Measured on the 2-core development machine, shared with other work (load 2-4), medians of 5-7
alternating rounds: before scipy.special was imported ahead of Hydra 1.71-1.81x the plain script,
after 1.57-1.58x (skops' first import 0.74 -> 0.33 s). What is left: Hydra's import and its two
compositions of the config (about 0.35 s), pandas with pyarrow (0.2 s), skops' import and the
model's save (0.4 s; the plain script saves nothing, and plain+save, the same script with
skops.io imported as a user would, imports torch through scikit-learn's array-API scan: 0.6x).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = r'''
import json, sys
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn import metrics as m

X, y = load_iris(return_X_y=True)
X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=0.15 / 0.8, random_state=42, stratify=y_rest)
scaler = StandardScaler().fit(X_train)
model = RandomForestClassifier(n_estimators=100, max_features="sqrt", random_state=42).fit(scaler.transform(X_train), y_train)
out = {}
for name, Xs, ys in (("val", X_val, y_val), ("test", X_test, y_test)):
    proba = model.predict_proba(scaler.transform(Xs)); pred = proba.argmax(1)
    out[name] = {"accuracy": m.accuracy_score(ys, pred), "balanced_accuracy": m.balanced_accuracy_score(ys, pred),
                 "f1_macro": m.f1_score(ys, pred, average="macro"), "log_loss": m.log_loss(ys, proba),
                 "roc_auc": m.roc_auc_score(ys, proba, multi_class="ovr")}
json.dump(out, open("metrics.json", "w"))
if len(sys.argv) > 1:
    import skops.io as sio
    sio.dump(model, "model.skops")
'''


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--overrides", default="", help="appended to the launcher's command (default: none)")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "plain.py").write_text(PLAIN)
        cmds = {
            "launcher": [py, "-m", "launcher", *args.overrides.split()],
            "plain": [py, "plain.py"],
            "plain+save": [py, "plain.py", "save"],
        }
        for cmd in cmds.values():  # warm the file cache
            timed(cmd, cwd)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.repeats):
            for name, cmd in cmds.items():
                times[name].append(timed(cmd, cwd))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:11s} median {med[k]:.3f}s  min {min(v):.3f}s  max {max(v):.3f}s  (n={len(v)})")
    for base in ("plain", "plain+save"):
        pairs = statistics.median(a / b for a, b in zip(times["launcher"], times[base]))
        print(f"ratio launcher / {base:10s} = {med['launcher'] / med[base]:.2f} (medians), "
              f"{pairs:.2f} (median of the {len(times[base])} pairs' ratios)")


if __name__ == "__main__":
    main()

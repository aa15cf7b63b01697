"""logger=csv: the run's metrics as CSV files in its run directory.

    csv/epochs.csv   one row per epoch (epoch, train_loss, val_*, lr, seconds), appended and
                     flushed as each epoch ends, so a stopped run keeps the epochs it finished
    csv/final.csv    name,value: val/<metric>, test/<metric>, cv/<metric>_mean ...
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

from launcher.core.errors import ConfigError
from launcher.io import atomic_write
from launcher.tracking.writer import Writer


class CsvWriter(Writer):
    name = "csv"
    defaults = {"dir": "csv"}

    def __init__(self, settings: Any, out: Path) -> None:
        super().__init__(settings, out)
        folder = Path(str(self.settings["dir"]))
        if folder.is_absolute() or ".." in folder.parts:
            raise ConfigError(f"logger.csv.dir={self.settings['dir']!r} is invalid; expected a folder name "
                              "inside the run directory, such as csv")
        self.folder = out / folder
        self.file: IO[str] | None = None
        self.columns: list[str] = []

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.columns = ["epoch", *metrics]
            self.file = open(self.folder / "epochs.csv", "w", newline="")
            csv.writer(self.file).writerow(self.columns)
        # A loop's rows share their keys; one that lacked a value (no validation) leaves it empty.
        csv.writer(self.file).writerow([epoch, *(_cell(metrics.get(c)) for c in self.columns[1:])])
        self.file.flush()

    def final(self, metrics: dict[str, float], step: int) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["name", "value"])
                w.writerows([name, _cell(value)] for name, value in metrics.items())

        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.folder / "final.csv", write)

    def finish(self, status: str) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _cell(value: float | None) -> str:
    return "" if value is None else repr(float(value))

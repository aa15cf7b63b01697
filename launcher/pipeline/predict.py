"""Predictions from a saved run: the model, its preprocessing and its target encoding, reloaded
with checksums verified and nothing unpickled, applied to a raw table."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from launcher import artifacts
from launcher.core.errors import ArtifactError, DataError
from launcher.data import Preprocessor, TargetEncoder
from launcher.frameworks import registry
from launcher.metrics import labels_from
from launcher.runs import cleaned_reason


@dataclass
class Predictions:
    values: np.ndarray  # class labels as in the training target, values in its units, or cluster ids
    proba: np.ndarray | None  # (n, classes) for classification
    target: TargetEncoder | None
    task: str

    @property
    def name(self) -> str:
        return self.target.name if self.target is not None else "cluster"


@dataclass
class SavedRun:
    model: Any
    meta: dict[str, Any]
    preprocessor: Preprocessor
    target: TargetEncoder | None
    adapter: Any

    @classmethod
    def load(cls, run: Path) -> "SavedRun | SavedEnsemble":
        """The saved model of a run (or robot experiment) directory, or its model/ folder."""
        run = Path(run)
        directory = artifacts.model_dir(run)
        reason = cleaned_reason(run) if not (directory / artifacts.METADATA).is_file() else None
        if reason:  # `python -m launcher.runs clean` deleted it: say so, not "metadata.json is missing"
            raise ArtifactError(reason)
        if not run.exists():
            raise ArtifactError(f"run directory {run} does not exist; give a run directory under outputs/")
        meta = artifacts.read_metadata(directory)
        if meta.get("framework") == "ensemble":
            return SavedEnsemble.load(directory, meta)
        adapter = registry.instantiate(registry.framework_config(meta["framework"], "cpu"), check_enabled=False)
        model, meta = artifacts.load_model(directory, adapter)
        prep = json.loads((directory / "preprocessing.json").read_text())
        target = TargetEncoder.from_dict(prep["target"]) if prep["target"].get("task") != "clustering" else None
        return cls(model, meta, Preprocessor.from_dict(prep["features"]), target, adapter)

    @property
    def excluded(self) -> dict[str, str]:
        """Columns of the training file that are not features (data.drop, ID-like, constant...)."""
        return dict((self.meta.get("features") or {}).get("excluded") or {})

    def id_columns(self, frame, extra: tuple[str, ...] = ()) -> list[str]:
        """The input's columns to copy next to the predictions: the ones the training run set
        aside as identifiers (data.drop, ID-like) and those named by the caller, in input order."""
        keep = {c for c, why in self.excluded.items() if why == "data.drop" or why.startswith("ID-like")}
        keep |= set(extra)
        return [c for c in frame.columns if c in keep]

    def predict(self, frame, id_columns: tuple[str, ...] = ()) -> Predictions:
        """Predictions for a raw DataFrame with the training columns. The target, the columns
        the training run left out, and `id_columns` may be there too."""
        missing = [c for c in id_columns if c not in frame.columns]
        if missing:
            raise DataError(f"id_columns names columns the input does not have: {missing}")
        allow = ((self.target.name,) if self.target is not None else ()) + tuple(self.excluded) + tuple(id_columns)
        self.preprocessor.check_columns(frame, allow=allow, hint="list columns to pass through with id_columns=a,b")
        X = self.preprocessor.transform(frame[self.preprocessor.input_columns])
        output = self.adapter.predict(self.model, X)
        task = self.meta["task"]
        if task == "classification":
            return Predictions(self.target.decode(labels_from(task, output)), np.asarray(output), self.target, task)
        if task == "regression":
            return Predictions(self.target.decode(output), None, self.target, task)
        return Predictions(np.asarray(output).reshape(-1), None, None, task)


@dataclass
class SavedEnsemble:
    """A weighted average of saved models (the robot's ensembles): probabilities for
    classification, values for regression. Every member is a complete model directory of its
    own, verified when loaded."""

    members: list[tuple[SavedRun, float]]
    meta: dict[str, Any]

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> "SavedEnsemble":
        spec = json.loads((directory / artifacts.ENSEMBLE).read_text())
        members = []
        for entry in spec.get("members") or []:
            member = (directory / str(entry["dir"])).resolve()
            if directory.resolve() not in member.parents:  # a path in the file must stay inside
                raise ArtifactError(f"{directory / artifacts.ENSEMBLE} names a member outside the model directory")
            members.append((SavedRun.load(member), float(entry["weight"])))
        if not members:
            raise ArtifactError(f"{directory / artifacts.ENSEMBLE} lists no members")
        return cls(members, meta)

    @property
    def excluded(self) -> dict[str, str]:
        return self.members[0][0].excluded

    def id_columns(self, frame, extra: tuple[str, ...] = ()) -> list[str]:
        return self.members[0][0].id_columns(frame, extra)

    def predict(self, frame, id_columns: tuple[str, ...] = ()) -> Predictions:
        results = [(member.predict(frame, id_columns), weight) for member, weight in self.members]
        first = results[0][0]
        if first.task == "classification":
            proba = sum(r.proba * w for r, w in results)
            return Predictions(first.target.decode(labels_from(first.task, proba)), proba, first.target, first.task)
        values = sum(np.asarray(r.values, dtype=float) * w for r, w in results)
        return Predictions(values, None, first.target, first.task)

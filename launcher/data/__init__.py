"""Data: sources, the target and the task, splits, and feature preprocessing.

The flow every framework shares (driven by launcher.pipeline.train):

    dataset = load(cfg.data)                  # raw features + raw target, validated (sources, dataset)
    task = ... infer_task(dataset.y) ...      # classification | regression | clustering (target)
    target = TargetEncoder.fit(dataset.y, task)
    parts = split_indices(y, ...)             # seeded, stratified (splits)
    pre = Preprocessor().fit(X.iloc[parts.train])   # fitted on the training rows only

Nothing here knows about frameworks.
"""
from launcher.data.audit import Note
from launcher.data.preprocessing import Preprocessor
from launcher.data.dataset import Dataset
from launcher.data.sources import BUILTIN, load
from launcher.data.splits import Parts, cv_folds, make_splits, split_indices, synthetic_splits
from launcher.data.target import TargetEncoder, clean_target, drop_missing_target, infer_task, normalize_labels

__all__ = ["BUILTIN", "Dataset", "Note", "Parts", "Preprocessor", "TargetEncoder", "clean_target", "cv_folds",
           "drop_missing_target", "infer_task", "load", "make_splits", "normalize_labels", "split_indices",
           "synthetic_splits"]

"""Raw data to model inputs: typing, imputation, encoding, dates, targets, splits."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from launcher import data
from launcher.core.errors import DataError
from launcher.data import Preprocessor
from helpers import messy_frame


def test_preprocessing_types_columns_and_fits_on_train_only():
    frame = messy_frame().drop(columns=["churned"])
    train = frame.iloc[:80]
    pre = Preprocessor().fit(train)
    kinds = pre.describe()
    assert kinds["numeric"] == ["monthly income", "age"]
    assert kinds["categorical"] == ["plan type"]
    assert kinds["datetime"] == ["signup date"]
    X = pre.transform(frame)
    assert X.dtype == np.float32 and np.isfinite(X).all()
    assert X.shape == (len(frame), len(pre.feature_names))
    # standardised with the training rows' statistics, not the whole frame's
    income = X[:, pre.feature_names.index("monthly income")]
    assert abs(income[:80].mean()) < 1e-5 and abs(income[80:].mean()) > 1e-3
    # date features: the year is there and distinguishes 2021 from later rows
    year = X[:, pre.feature_names.index("signup date.year")]
    assert len(np.unique(year)) > 1
    # missing cells: imputed, flagged
    assert "age.missing" in pre.feature_names and "plan type.missing" in pre.feature_names


def test_preprocessing_state_round_trips_through_json():
    frame = messy_frame().drop(columns=["churned"])
    pre = Preprocessor().fit(frame)
    again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(pre.transform(frame), again.transform(frame))


def test_unseen_category_and_missing_columns():
    pre = Preprocessor().fit(pd.DataFrame({"c": ["a", "b", "a", "b"], "x": [1.0, 2, 3, 4]}))
    X = pre.transform(pd.DataFrame({"c": ["zzz"], "x": [1.0]}))
    assert X[0, pre.feature_names.index("c=a")] == 0 and X[0, pre.feature_names.index("c=b")] == 0
    with pytest.raises(DataError, match=r"missing columns \['x'\]"):
        pre.transform(pd.DataFrame({"c": ["a"]}))


def test_task_inference():
    assert data.infer_task(pd.Series(["yes", "no"] * 10, name="t"))[0] == "classification"
    task, why = data.infer_task(pd.Series([0, 1, 2] * 10, name="t"))
    assert task == "classification" and why.startswith("target 't' holds 3 distinct whole numbers")
    task, why = data.infer_task(pd.Series(np.linspace(0, 1, 30), name="t"))
    assert task == "regression" and why == "target 't' is numeric with 30 distinct values"


def test_target_encoding_keeps_original_labels():
    y = pd.Series([3, 1, 3, 2], name="t")
    enc = data.TargetEncoder.fit(y, "classification")
    assert enc.classes == [1, 2, 3]
    np.testing.assert_array_equal(enc.decode(enc.encode(y)), [3, 1, 3, 2])


@pytest.mark.parametrize("values,task,message", [
    (["a"] * 12, "classification", "only one class"),
    (["1.5", "abc", "2"] * 4, "regression", "non-numeric"),
])
def test_bad_targets_are_refused(values, task, message):
    with pytest.raises(DataError, match=message):
        data.TargetEncoder.fit(pd.Series(values, name="t"), task)


def test_splits_are_seeded_stratified_and_survive_rare_classes():
    y = np.array([0] * 60 + [1] * 38 + [2] * 2)
    a = data.split_indices(y, len(y), "classification", 0.2, 0.15, seed=7)
    b = data.split_indices(y, len(y), "classification", 0.2, 0.15, seed=7)
    np.testing.assert_array_equal(a.test, b.test)
    assert sorted(np.concatenate([a.train, a.val, a.test]).tolist()) == list(range(100))
    share = (y[a.test] == 1).mean()
    assert abs(share - 0.38) < 0.06  # stratified


def test_missing_and_empty_csv(tmp_path):
    cfg = OmegaConf.create({"source": "csv", "path": str(tmp_path / "nope.csv"), "target": "y", "task": "auto"})
    with pytest.raises(DataError, match="not found"):
        data.load(cfg)
    (tmp_path / "empty.csv").write_text("")
    cfg.path = str(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="empty"):
        data.load(cfg)


def test_missing_target_lists_columns(churn_csv):
    cfg = OmegaConf.create({"source": "csv", "path": str(churn_csv), "target": "churn", "task": "auto"})
    with pytest.raises(DataError, match="'churned'"):
        data.load(cfg)


def test_synthetic_data_has_the_asked_shape():
    cfg = OmegaConf.create({"source": "synthetic", "size": 500, "features": 25, "classes": 4, "task": "auto"})
    ds = data.load(cfg)
    assert ds.X.shape == (500, 25) and ds.y.nunique() == 4 and ds.task == "classification"


def test_repeated_column_names_are_told_from_a_column_really_named_like_a_copy(tmp_path):
    """pandas renames a repeat around a real 'x.1'; names equal only once stripped are repeats too."""
    from launcher.io import read_table

    path = tmp_path / "names.csv"
    path.write_text("x,x,x.1,y ,y\n1,2,3,4,5\n")
    table = read_table(path)
    assert list(table.frame.columns) == ["x", "x.2", "x.1", "y", "y.1"]
    assert table.duplicates == {"x": ["x", "x.2"], "y": ["y", "y.1"]}
    assert table.notes == ["duplicate column name 'x' appears 2 times: read as 'x', 'x.2'",
                           "duplicate column name 'y' appears 2 times: read as 'y', 'y.1'"]
    assert table.frame["x.1"].tolist() == [3]  # the real 'x.1' keeps its values

"""predict on a run whose model `python -m launcher.runs clean` deleted, and predict writing
where it cannot: one error line each, no traceback, nothing written."""
from __future__ import annotations

import pytest

from helpers import run_cli


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One saved run on iris, and an input table with its columns."""
    root = tmp_path_factory.mktemp("predict")
    res = run_cli("data=iris", "model=knn", "hydra.run.dir=outputs/day/run", cwd=root)
    assert res.returncode == 0, res.stderr
    from sklearn.datasets import load_iris

    load_iris(as_frame=True).data.head(5).to_csv(root / "new.csv", index=False)
    return root


def one_error(res) -> str:
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_output_under_a_file_is_one_error_line(project):
    # Under a regular file no folder can be made, even by root (chmod does not stop root).
    (project / "afile").write_text("not a folder\n")
    res = run_cli("run=outputs/day/run", "input=new.csv", "output=afile/pred.csv", cwd=project,
                  module="launcher.predict")
    line = one_error(res)
    assert "output=afile/pred.csv cannot be written" in line and "a file, not a folder" in line
    res = run_cli("run=outputs/day/run", "input=new.csv", "output=pred.csv", "proba_output=afile/sub/p.csv",
                  cwd=project, module="launcher.predict")
    assert "proba_output=afile/sub/p.csv cannot be written" in one_error(res)
    assert not (project / "pred.csv").exists()  # refused before anything was written


def test_output_that_is_a_folder_is_one_error_line(project):
    res = run_cli("run=outputs/day/run", "input=new.csv", "output=outputs", cwd=project, module="launcher.predict")
    assert "output=outputs is a folder" in one_error(res)


def test_predict_on_a_cleaned_run_names_clean(project):
    ok = run_cli("run=outputs/day/run", "input=new.csv", "output=pred.csv", cwd=project, module="launcher.predict")
    assert ok.returncode == 0, ok.stderr
    cleaned = run_cli("clean", "outputs/day/run", "yes=true", cwd=project, module="launcher.runs")
    assert cleaned.returncode == 0 and "deleted 1 model folder(s)" in cleaned.stdout, cleaned.stderr
    for run in ("outputs/day/run", "outputs/day/run/model"):
        res = run_cli(f"run={run}", "input=new.csv", "output=again.csv", cwd=project, module="launcher.predict")
        line = one_error(res)
        assert "was deleted by python -m launcher.runs clean" in line
        assert "command: python -m launcher.runs clean outputs/day/run yes=true" in line
        assert "metadata.json" not in line
    assert not (project / "again.csv").exists()

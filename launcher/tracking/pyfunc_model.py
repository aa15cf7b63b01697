"""The MLflow pyfunc model of a launcher run, logged with MLflow's models-from-code.

MLflow stores this file's text with the model and runs it when the model is loaded; nothing is
pickled. It loads the run's model directory (logged as the artifact "model") with launcher's own
loader, which verifies every checksum and refuses pickles, and predicts raw rows (a DataFrame
with the training columns, as `python -m launcher.predict` reads them from a CSV) through
launcher's predict path: class labels as in the training target, values in its units, or
cluster ids.

    model = mlflow.pyfunc.load_model("runs:/<run id>/model")
    model.predict(pandas.read_csv("new.csv"))

Launcher never imports this module; MLflow runs it (import-linter lets it reach the pipeline).
"""
from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from launcher.pipeline.predict import SavedRun


class LauncherModel(PythonModel):
    def load_context(self, context) -> None:
        self.run = SavedRun.load(context.artifacts["model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        predictions = self.run.predict(frame)
        return pd.Series(predictions.values, name=predictions.name, index=frame.index)


mlflow.models.set_model(LauncherModel())

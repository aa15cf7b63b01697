"""scikit-learn adapter: any scikit-learn-compatible estimator, and sklearn's own MLP.

Estimators come from the model config's `estimator._target_` (or the per-task default in
`targets`); the portable `model=mlp` becomes MLPClassifier/MLPRegressor with the same hidden
sizes. Models are saved with skops and loaded with an explicit trust list, so no pickle runs
on the load path. LightGBM, XGBoost and CatBoost come in through their scikit-learn APIs; what
they do differently (threads, native categories, early stopping, their own file formats) is in
launcher.frameworks.boosters.
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from launcher.core.adapter import Adapter
from launcher.core.errors import ArtifactError, ConfigError
from launcher.core.specs import parse_spec
from launcher.core.trainer import TrainerSettings
from launcher.core.types import DataSchema, History, Splits
from launcher.frameworks import boosters

log = logging.getLogger(__name__)

MLP_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}


@dataclass
class SklearnModel:
    """A fitted (or not yet fitted) estimator and the data schema it was built for."""

    estimator: Any
    schema: DataSchema
    booster: boosters.BoosterOptions | None = None  # LightGBM, XGBoost or CatBoost: how to fit it
    # The class indices of predict_proba's columns when the estimator's classes_ does not say
    # them (a booster's; see boosters.fit); None: estimator.classes_.
    classes: np.ndarray | None = None


def estimator_class(spec: dict[str, Any], task: str) -> str | None:
    """The class path a model config uses for `task`, or None if it has none."""
    explicit = (spec.get("estimator") or {}).get("_target_")
    return explicit or (spec.get("targets") or {}).get(task)


def estimator_tasks(spec: dict[str, Any]) -> tuple[str, ...]:
    """Tasks a model config can do in scikit-learn."""
    if spec.get("type") == "mlp":
        return ("classification", "regression")
    if (spec.get("estimator") or {}).get("_target_"):
        return ("classification", "regression", "clustering")  # the user named the class
    return tuple(spec.get("targets") or ())


class SklearnAdapter(Adapter):
    name = "sklearn"
    module = "sklearn"
    packages = ("scikit-learn", "skops")
    model_types = frozenset({"estimator", "mlp"})
    tasks = frozenset({"classification", "regression", "clustering"})

    def __init__(self, device: Any = None, enabled: bool = True, n_jobs: int | None = 1) -> None:
        super().__init__(device=device, enabled=enabled)
        if n_jobs is not None and (not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0):
            raise ConfigError(f"framework.n_jobs={n_jobs!r} is invalid; expected a positive integer, -1 for "
                              "all cores, or null")
        self.n_jobs = n_jobs

    def model_tasks(self, spec: dict[str, Any]) -> frozenset[str]:
        return frozenset(estimator_tasks(spec)) if self.supports(spec.get("type")) else frozenset()

    def check(self, spec: dict[str, Any], schema: DataSchema, settings: TrainerSettings) -> None:
        if settings.resume_from:
            # Refused, not ignored with a warning: the user expects the run to continue earlier
            # training, and a fresh fit reported as a success would hide that it did not.
            raise ConfigError(f"trainer.resume_from is for networks that train in epochs; framework=sklearn fits "
                              f"model={spec.get('name')} in one go, so there is nothing to resume: drop "
                              "trainer.resume_from (the same command with the same seed fits the same model)")
        if schema.task not in estimator_tasks(spec):
            raise ConfigError(f"model={spec.get('name')} has no scikit-learn estimator for {schema.task}; "
                              f"it supports: {', '.join(estimator_tasks(spec)) or 'nothing'}")
        if spec.get("type") == "mlp":
            self._mlp_activation(spec)
        if str(self.device.get("accelerator") or self.device.get("name")) in ("gpu", "cuda", "mps"):
            log.warning("scikit-learn runs on the CPU: device=%s does not apply to framework=sklearn",
                        self.device.get("name"))

    def health_check_spec(self) -> dict[str, Any]:
        return {"name": "logistic_regression", "type": "estimator",
                "targets": {"classification": "sklearn.linear_model.LogisticRegression"},
                "estimator": {"_target_": None}}

    # -- build -------------------------------------------------------------------------------
    def build(self, spec: dict[str, Any], schema: DataSchema) -> SklearnModel:
        if spec.get("type") == "mlp":
            return SklearnModel(self._build_mlp(spec, schema), schema)
        target = estimator_class(spec, schema.task)
        if not target:
            raise ConfigError(f"model={spec.get('name')} has no scikit-learn estimator for {schema.task}; "
                              f"it supports: {', '.join(estimator_tasks(spec)) or 'nothing'}")
        cls = _import(target)
        params = {k: v for k, v in (spec.get("estimator") or {}).items() if k != "_target_"}
        signature = inspect.signature(cls).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()):
            # a class that takes **kwargs (XGBoost's, LightGBM's) is given every argument
            dropped = sorted(k for k in params if k not in signature)
            if dropped:
                log.debug("%s does not take %s; ignored", cls.__name__, ", ".join(dropped))
            params = {k: v for k, v in params.items() if k in signature}
        library = boosters.library_of(cls)
        if library:
            options = boosters.options(library, spec, params)
            params = boosters.configure(library, params, schema, self.n_jobs)
            try:
                return SklearnModel(cls(**params), schema, options)
            except TypeError as exc:
                raise ConfigError(f"{cls.__name__} refused its arguments ({exc}); check model.estimator.*") from None
        accepted = set(signature)
        if "n_jobs" in accepted and "n_jobs" not in params and self.n_jobs is not None:
            params["n_jobs"] = self.n_jobs
        if "n_clusters" in accepted and params.get("n_clusters") is None:
            params["n_clusters"] = schema.n_classes or 8
        if "categorical_features" in accepted and schema.categorical_features and "categorical_features" not in params:
            # the preprocessing left these columns as category codes (model.categorical: native)
            params["categorical_features"] = list(schema.categorical_features)
        try:
            estimator = cls(**params)
        except TypeError as exc:
            raise ConfigError(f"{cls.__name__} refused its arguments ({exc}); check model.estimator.*") from None
        _validate(estimator, spec.get("name"))
        return SklearnModel(estimator, schema)

    @staticmethod
    def _mlp_activation(spec: dict[str, Any]) -> str:
        mlp = parse_spec(spec)
        if mlp.activation not in MLP_ACTIVATIONS:
            raise ConfigError(f"model.activation={mlp.activation!r} is not available in scikit-learn's MLP; "
                              f"expected one of: {', '.join(MLP_ACTIVATIONS)}")
        return MLP_ACTIVATIONS[mlp.activation]

    def _build_mlp(self, spec: dict[str, Any], schema: DataSchema):
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPClassifier if schema.task == "classification" else MLPRegressor
        return cls(hidden_layer_sizes=tuple(parse_spec(spec).hidden_sizes), activation=self._mlp_activation(spec))

    # -- fit / predict -----------------------------------------------------------------------
    def fit(self, model: SklearnModel, data: Splits, settings: TrainerSettings, *, workdir=None,
            report=None) -> History:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        est = model.estimator
        if model.booster is not None:
            with _threads(settings.num_threads):
                facts, model.classes = boosters.fit(est, model.booster, data.X_train, data.y_train, model.schema,
                                                    settings.seed, settings.num_threads)
            return History(device="cpu", extra={"booster": facts})
        params = est.get_params()
        if "random_state" in params and params["random_state"] is None:
            est.set_params(random_state=settings.seed)
        if isinstance(est, (MLPClassifier, MLPRegressor)):  # the trainer group drives sklearn's MLP too
            est.set_params(max_iter=settings.max_epochs,
                           batch_size=min(settings.batch_size, len(data.X_train)),
                           learning_rate_init=settings.lr,
                           alpha=settings.weight_decay or 1e-4,
                           solver="sgd" if settings.optimizer == "sgd" else "adam",
                           momentum=settings.momentum,
                           # sklearn's MLP stops on its own 10% hold-out of the training rows:
                           # on a few hundred rows that is too noisy to stop on.
                           early_stopping=settings.early_stopping and len(data.X_train) >= 500,
                           n_iter_no_change=settings.patience)
        y = data.y_train if model.schema.task != "clustering" else None
        with warnings.catch_warnings(record=True) as caught, _threads(settings.num_threads):
            warnings.simplefilter("always", ConvergenceWarning)
            est.fit(data.X_train, y) if y is not None else est.fit(data.X_train)
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                log.warning("%s did not converge; raise its iteration limit (trainer.max_epochs "
                            "for mlp, model.estimator.max_iter otherwise)", type(est).__name__)
                break
        epochs = [{"epoch": i + 1, "train_loss": float(v)} for i, v in enumerate(getattr(est, "loss_curve_", []))]
        return History(epochs=epochs, device="cpu")

    def predict(self, model: SklearnModel, X: np.ndarray) -> np.ndarray:
        est, schema = model.estimator, model.schema
        X = boosters.inputs(est, X, schema)
        if schema.task == "classification":
            if hasattr(est, "predict_proba"):
                proba = est.predict_proba(X)
                full = np.zeros((len(X), schema.n_classes), dtype=np.float64)
                classes = est.classes_ if model.classes is None else model.classes
                full[:, np.asarray(classes, dtype=int)] = proba  # classes absent from train get 0
                return full
            return np.eye(schema.n_classes)[np.asarray(est.predict(X), dtype=int)]
        if schema.task == "clustering" and not hasattr(est, "predict"):
            return est.fit_predict(X)
        return np.asarray(est.predict(X))

    # -- persistence -------------------------------------------------------------------------
    def save(self, model: SklearnModel, directory: Path) -> None:
        if boosters.library_of(model.estimator):
            boosters.save(model.estimator, model.classes, directory)  # its own format: skops does not know its types
        else:
            _skops_io().dump(model.estimator, Path(directory) / "model.skops")
        (Path(directory) / "schema.json").write_text(json.dumps(model.schema.to_dict()))

    def load(self, directory: Path) -> SklearnModel:
        if boosters.saved(directory):
            schema = DataSchema.from_dict(json.loads((Path(directory) / "schema.json").read_text()))
            estimator, classes = boosters.load(directory, schema)
            return SklearnModel(estimator, schema, classes=classes)
        sio = _skops_io()
        path = Path(directory) / "model.skops"
        untrusted = sio.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not _scikit_learns_own(t)]
        if refused:
            raise ArtifactError(f"{path} contains types that are not scikit-learn's own ({refused}); "
                                "they are not loaded automatically. Load it with skops.io.load and an "
                                "explicit trusted list if you trust this file")
        estimator = sio.load(path, trusted=untrusted)
        schema = DataSchema.from_dict(json.loads((Path(directory) / "schema.json").read_text()))
        return SklearnModel(estimator, schema)


def _threads(limit: int | None):
    """trainer.num_threads for scikit-learn: the OpenMP and BLAS pools its estimators use
    (histogram boosting, linear algebra) held to `limit` threads during the call."""
    from contextlib import nullcontext

    if not limit:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(limit))


class _Blocker:
    """A meta-path finder that refuses to import the given top-level packages."""

    def __init__(self, names: set[str]):
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names:
            raise ImportError(f"{fullname} is not imported while skops lists scikit-learn's estimators")
        return None


def _skops_io():
    """skops.io, imported without dragging other array libraries in.

    Importing skops.io walks every scikit-learn module to list trusted estimators, and that
    walk imports sklearn.externals.array_api_compat.torch (and .cupy, .dask, ...), i.e. all
    of torch, when it is installed: a second and a half, and a scikit-learn run that imports
    torch. Refusing those imports for the duration makes the walk skip them (it ignores
    ImportError); a package already imported is left alone.
    """
    import sys

    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    blocked = {m for m in ("torch", "jax", "cupy", "dask", "tensorflow", "mlx", "sparse") if m not in sys.modules}
    blocker = _Blocker(blocked)
    sys.meta_path.insert(0, blocker)
    try:
        import skops.io as sio
    finally:
        sys.meta_path.remove(blocker)
    return sio


def _scikit_learns_own(name: str) -> bool:
    """Trust, beyond skops' defaults, only what scikit-learn itself defines: its classes (the
    estimators' internals: Tree, TreePredictor, KDTree, optimisers) and its functions (a fitted
    HistGradientBoosting with categorical features holds partial(check_array, ...)), and
    functools.partial, whose function skops lists, and so checks, on its own. Anything from
    another package in a model file (os.system, a user's function) is refused."""
    if name == "functools.partial":
        return True
    if not name.startswith("sklearn."):
        return False
    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False
    return (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith("sklearn.")


def _validate(estimator: Any, model: str | None) -> None:
    """scikit-learn checks its estimators' arguments only when fitting; check them now, so
    model.estimator.n_estimators=abc fails before any work with what the class accepts."""
    from sklearn.utils._param_validation import InvalidParameterError  # private module, public error

    validate = getattr(estimator, "_validate_params", None)  # scikit-learn >= 1.2; absent on others
    if validate is None:
        return
    try:
        validate()
    except InvalidParameterError as exc:
        raise ConfigError(f"model={model}: {exc} (set it with model.estimator.<name>=...)") from None


def _import(path: str):
    module, _, name = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        library = module.partition(".")[0]
        if library in boosters.LIBRARIES:  # an extra: say how to get it
            raise ConfigError(f"{path} needs {library}, which is not installed here ({exc}): "
                              f"pip install \"launcher[boost]\" (or pip install {library})") from None
        raise ConfigError(f"estimator class {path!r} cannot be imported ({exc}); give a full class path "
                          "such as sklearn.ensemble.RandomForestClassifier") from None
    except (AttributeError, ValueError) as exc:
        raise ConfigError(f"estimator class {path!r} cannot be imported ({exc}); give a full class path "
                          "such as sklearn.ensemble.RandomForestClassifier") from None

"""The keys a plan may tune, per model, with the bounds nothing may leave: the registry a
blueprint is checked against, and the sweeper-side function that draws a trial from the
conditional space the robot writes (one model family per trial, then that family's keys).

A plan names a model option of the config tree and some of the keys below; the numbers it
gives must lie within the bounds, its choices among the listed values. Anything else (another
key, `_target_`, a `hydra.*` key, an interpolation, a path) is not in this table and is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class Bound:
    kind: str  # float | int | choice
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    log: bool = False  # searched on a log scale by default

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return _key(value) in {_key(c) for c in self.choices}
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and float(value) != int(value):
            return False
        return self.low <= value <= self.high


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


HIDDEN = ([32], [64], [128], [256], [64, 32], [128, 64], [256, 128], [128, 128], [256, 128, 64])
TRAINER = {
    "trainer.lr": Bound("float", 1e-5, 1.0, log=True),
    "trainer.weight_decay": Bound("float", 0.0, 0.1),
    "trainer.batch_size": Bound("choice", choices=(16, 32, 64, 128, 256, 512, 1024)),
    "trainer.max_epochs": Bound("int", 1, 500),
    "trainer.optimizer": Bound("choice", choices=("adam", "adamw", "sgd")),
    "trainer.scheduler": Bound("choice", choices=("none", "cosine", "step", "plateau")),
}
ESTIMATORS: dict[str, dict[str, Bound]] = {
    "hist_gradient_boosting": {
        "model.estimator.learning_rate": Bound("float", 1e-3, 1.0, log=True),
        "model.estimator.max_iter": Bound("int", 10, 3000),
        "model.estimator.max_leaf_nodes": Bound("int", 2, 512, log=True),
        "model.estimator.min_samples_leaf": Bound("int", 1, 500, log=True),
        "model.estimator.l2_regularization": Bound("float", 1e-10, 100.0, log=True),
        "model.estimator.max_features": Bound("float", 0.1, 1.0),
    },
    "random_forest": {
        "model.estimator.n_estimators": Bound("int", 10, 2000, log=True),
        "model.estimator.max_depth": Bound("choice", choices=(None, 4, 6, 8, 12, 16, 24, 32)),
        "model.estimator.min_samples_leaf": Bound("int", 1, 200, log=True),
        "model.estimator.max_features": Bound("choice", choices=("sqrt", "log2", 0.2, 0.33, 0.5, 0.7, 1.0)),
    },
    # The linear family by task: logistic regression classifies, ridge regresses (the config
    # option logistic_regression still builds Ridge for regression, for existing configs only).
    "logistic_regression": {
        "model.estimator.C": Bound("float", 1e-6, 1e6, log=True),
    },
    "ridge": {
        "model.estimator.alpha": Bound("float", 1e-6, 1e6, log=True),
    },
    "svm": {
        "model.estimator.C": Bound("float", 1e-5, 1e5, log=True),
        "model.estimator.gamma": Bound("choice", choices=("scale", "auto", 1e-4, 1e-3, 1e-2, 0.1, 1.0)),
    },
    "knn": {
        "model.estimator.n_neighbors": Bound("int", 1, 200, log=True),
        "model.estimator.weights": Bound("choice", choices=("uniform", "distance")),
    },
    "kmeans": {
        "model.estimator.n_clusters": Bound("int", 2, 100),
    },
}
ESTIMATORS["extra_trees"] = dict(ESTIMATORS["random_forest"])
# The gradient-boosting libraries (extras): the keys each one's own tuning guide names. A bound
# with low 0 and log=True is searched on a log scale when the plan's range starts above 0.
ESTIMATORS.update({
    # LightGBM, "Parameters Tuning" (lightgbm.readthedocs.io/en/stable/Parameters-Tuning.html):
    # num_leaves, min_data_in_leaf (min_child_samples) and max_depth first; a small learning_rate
    # with a large num_iterations for accuracy; bagging (subsample with subsample_freq),
    # feature_fraction (colsample_bytree), lambda_l1/lambda_l2 (reg_alpha/reg_lambda) against
    # over-fitting.
    "lightgbm": {
        "model.estimator.n_estimators": Bound("int", 10, 5000, log=True),
        "model.estimator.learning_rate": Bound("float", 1e-3, 1.0, log=True),
        "model.estimator.num_leaves": Bound("int", 2, 1024, log=True),
        "model.estimator.max_depth": Bound("choice", choices=(-1, 3, 4, 5, 6, 8, 10, 12, 16)),
        "model.estimator.min_child_samples": Bound("int", 1, 500, log=True),
        "model.estimator.subsample": Bound("float", 0.1, 1.0),
        "model.estimator.subsample_freq": Bound("int", 0, 10),
        "model.estimator.colsample_bytree": Bound("float", 0.1, 1.0),
        "model.estimator.reg_alpha": Bound("float", 0.0, 100.0, log=True),
        "model.estimator.reg_lambda": Bound("float", 0.0, 100.0, log=True),
    },
    # XGBoost, "Notes on Parameter Tuning" (xgboost.readthedocs.io/en/stable/tutorials/param_tuning.html):
    # max_depth, min_child_weight and gamma control complexity; subsample and colsample_bytree
    # add randomness; a lower eta (learning_rate) with more rounds. Its parameter reference
    # gives the domains: max_depth 0 (no limit) is left out, so every plan's trees are bounded.
    "xgboost": {
        "model.estimator.n_estimators": Bound("int", 10, 5000, log=True),
        "model.estimator.learning_rate": Bound("float", 1e-3, 1.0, log=True),
        "model.estimator.max_depth": Bound("int", 1, 16),
        "model.estimator.min_child_weight": Bound("float", 1e-3, 1000.0, log=True),
        "model.estimator.gamma": Bound("float", 0.0, 100.0, log=True),
        "model.estimator.subsample": Bound("float", 0.1, 1.0),
        "model.estimator.colsample_bytree": Bound("float", 0.1, 1.0),
        "model.estimator.reg_lambda": Bound("float", 0.0, 1000.0, log=True),
        "model.estimator.reg_alpha": Bound("float", 0.0, 1000.0, log=True),
    },
    # CatBoost, "Parameter tuning" (catboost.ai/docs/en/concepts/parameter-tuning): iterations
    # with the learning rate (which it sets itself when left out), depth ("in most cases, the
    # optimal depth ranges from 4 to 10"; at most 16), l2_leaf_reg, random_strength, the
    # bootstrap's subsample rate (bagging_temperature applies only to the Bayesian bootstrap, and
    # the CPU default is MVS, where it changes nothing), border_count, one_hot_max_size.
    "catboost": {
        "model.estimator.iterations": Bound("int", 10, 5000, log=True),
        "model.estimator.learning_rate": Bound("float", 1e-3, 1.0, log=True),
        "model.estimator.depth": Bound("int", 1, 12),
        "model.estimator.l2_leaf_reg": Bound("float", 0.0, 100.0, log=True),
        "model.estimator.random_strength": Bound("float", 0.0, 100.0),
        "model.estimator.subsample": Bound("float", 0.1, 1.0),
        "model.estimator.border_count": Bound("choice", choices=(32, 64, 128, 254)),
        "model.estimator.one_hot_max_size": Bound("int", 1, 255, log=True),
    },
})
NETWORKS: dict[str, dict[str, Bound]] = {
    "mlp": {"model.hidden_sizes": Bound("choice", choices=HIDDEN), "model.dropout": Bound("float", 0.0, 0.8),
            "model.norm": Bound("choice", choices=("none", "batch", "layer")), **TRAINER},
    "cnn": {"model.channels": Bound("choice", choices=([16, 32], [32, 64], [32, 64, 64], [64, 128])),
            "model.hidden_sizes": Bound("choice", choices=([], [64], [128], [256])),
            "model.dropout": Bound("float", 0.0, 0.8), **TRAINER},
    "rnn": {"model.cell": Bound("choice", choices=("lstm", "gru")), "model.hidden_size": Bound("int", 8, 512, log=True),
            "model.num_layers": Bound("int", 1, 4), "model.bidirectional": Bound("choice", choices=(False, True)),
            "model.dropout": Bound("float", 0.0, 0.8), **TRAINER},
    "transformer": {"model.d_model": Bound("choice", choices=(16, 32, 64, 128, 256)),
                    "model.heads": Bound("choice", choices=(1, 2, 4, 8)), "model.layers": Bound("int", 1, 8),
                    "model.dropout": Bound("float", 0.0, 0.8), **TRAINER},
}
# The sklearn MLP takes the trainer keys that map onto its estimator.
SKLEARN_MLP = {k: v for k, v in NETWORKS["mlp"].items()
               if k in ("model.hidden_sizes", "trainer.lr", "trainer.weight_decay", "trainer.batch_size",
                        "trainer.max_epochs")}
MAX_TRIALS = 500


def tunable(framework: str, model: str) -> dict[str, Bound]:
    """The keys a plan may tune for this framework and model option (empty: unknown model)."""
    if model in NETWORKS:
        return SKLEARN_MLP if framework == "sklearn" else NETWORKS[model]
    return ESTIMATORS.get(model, {})


# -- the sweeper side: a conditional space --------------------------------------------------
SEARCH_KEY = "robot_search"


def suggest(cfg: Any, trial: Any) -> None:
    """hydra.sweeper.custom_search_space for the robot's searches: draw a model option (one of
    the search's `robot_search` section), then that model's keys, written in the sweeper's
    grammar (interval, int(interval), tag(log, ...), choice)."""
    from omegaconf import OmegaConf

    from launcher.sweeper.search_space import parse_search_space

    families = OmegaConf.to_container(OmegaConf.select(cfg, SEARCH_KEY), resolve=True) or {}
    model = trial.suggest_categorical("model", sorted(families))
    space = parse_search_space(families[model] or {}, [])
    for key, dist in space.distributions.items():
        _suggest(trial, key, dist)


def _suggest(trial: Any, key: str, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, list(dist.choices))
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"{key}: unsupported distribution {dist!r}")


def render(value: Any) -> str:
    """A value as Hydra override text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(render(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def grammar(bound: Bound, low: float | None, high: float | None, log: bool | None,
            choices: Sequence[Any] | None) -> str:
    """A range within `bound` as the sweeper's grammar: choice(...), interval, int(...), tag(log, ...)."""
    if bound.kind == "choice":
        return "choice(" + ", ".join(render(c) for c in (choices or bound.choices)) + ")"
    low = bound.low if low is None else low
    high = bound.high if high is None else high
    log = bound.log if log is None else log
    if low == high:
        return render(int(low) if bound.kind == "int" else float(low))
    text = f"interval({render(int(low) if bound.kind == 'int' else float(low))}, " \
           f"{render(int(high) if bound.kind == 'int' else float(high))})"
    if bound.kind == "int":
        text = f"int({text})"
    return f"tag(log, {text})" if log and low > 0 else text


def as_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items()}

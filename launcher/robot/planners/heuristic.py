"""The offline planner: rules from the dataset's profile and the budget, no network, no key.

Each rule names where it comes from. The families and ranges it picks are the registry's keys
(launcher.robot.space); the starting point of each family is the library's own default, which
is a strong first trial (scikit-learn's defaults are tuned for general use, per its docs).
"""
from __future__ import annotations

import importlib.util
import math
from typing import Any

from launcher.robot.blueprint import Blueprint, Candidate, ParamRange, StartPoint, StartValue
from launcher.robot.profile import DatasetProfile
from launcher.robot.task import MLTask

# Rough seconds of one 5-fold cross-validated trial per 1,000 rows x 10 features on one core, for
# sizing n_trials from the budget; the sweep's timeout, not this estimate, bounds the time.
TRIAL_SECONDS = {"logistic_regression": 0.15, "ridge": 0.1, "hist_gradient_boosting": 1.2, "random_forest": 1.0,
                 "extra_trees": 0.8, "svm": 0.4, "knn": 0.1, "kmeans": 0.3, "mlp": 3.0, "cnn": 8.0,
                 # the boosters relative to histogram boosting, one default fit on one thread
                 # (4,000 rows, 12 columns, 2 of them text; CPU seconds: HGB 0.44, LightGBM 0.20,
                 # XGBoost 0.28, CatBoost 6.8 for its 1,000 iterations)
                 "lightgbm": 0.6, "xgboost": 0.8, "catboost": 15.0}
SMALL, LARGE = 2_000, 20_000  # rows
# CatBoost joins a plan for a table with text columns when one of its trials is expected to take
# at most this share of the budget: its 1,000 default iterations make it the slowest booster.
CATBOOST_SHARE = 0.1


def _range(low: float | None = None, high: float | None = None, log: bool | None = None,
           choices: list[Any] | None = None) -> ParamRange:
    return ParamRange(key="", low=low, high=high, log=log, choices=choices)


def candidate(model: str, params: dict[str, ParamRange], start: dict[str, Any], why: str,
              alternatives: list[dict[str, Any]] = ()) -> Candidate:
    return Candidate(model=model, params=[r.model_copy(update={"key": k}) for k, r in params.items()],
                     start=[StartValue(key=k, value=v) for k, v in start.items()], why=why,
                     alternatives=[StartPoint(values=[StartValue(key=k, value=v) for k, v in a.items()])
                                   for a in alternatives])


def linear(task: str) -> Candidate:
    # Regularised linear models are strong baselines on small tabular data (Hastie, Tibshirani &
    # Friedman, The Elements of Statistical Learning, ch. 3-4); the regularisation strength is
    # searched on a log scale over six decades: ridge's penalty for regression, logistic
    # regression's inverse penalty C for classification.
    model, key = ("ridge", "model.estimator.alpha") if task == "regression" else \
        ("logistic_regression", "model.estimator.C")
    return candidate(model=model, params={key: _range(1e-3, 1e3, True)}, start={key: 1.0},
                     alternatives=[{key: 0.1}, {key: 10.0}],
                     why=f"{model.replace('_', ' ')}: a regularised linear model, strong and fast on small "
                         "tabular data")


def boosting(profile: DatasetProfile) -> Candidate:
    # Histogram gradient boosting is scikit-learn's recommended boosting for more than ~10,000
    # rows (user guide, "Histogram-Based Gradient Boosting"), and gradient-boosted trees lead on
    # tabular benchmarks (Grinsztajn, Oyallon & Varoquaux, NeurIPS 2022). Start: the library's
    # defaults; ranges around them as in LightGBM's tuning guide (Ke et al., NeurIPS 2017).
    small = profile.rows < SMALL
    return candidate(
        model="hist_gradient_boosting",
        params={"model.estimator.learning_rate": _range(0.01, 0.3, True),
                "model.estimator.max_iter": _range(50, 600 if small else 1000, True),
                "model.estimator.max_leaf_nodes": _range(4, 64, True),
                "model.estimator.min_samples_leaf": _range(2 if small else 5, 80, True),
                "model.estimator.l2_regularization": _range(1e-6, 10.0, True)},
        start={"model.estimator.learning_rate": 0.1, "model.estimator.max_iter": 100,
               "model.estimator.max_leaf_nodes": 31, "model.estimator.min_samples_leaf": 20 if not small else 10,
               "model.estimator.l2_regularization": 1e-6},
        # Slower learning with smaller trees, the direction LightGBM's guide gives for small or
        # noisy data ("use small num_leaves", "use small learning_rate with large num_iterations").
        alternatives=[{"model.estimator.learning_rate": 0.05, "model.estimator.max_iter": 300,
                       "model.estimator.max_leaf_nodes": 8, "model.estimator.min_samples_leaf": 20,
                       "model.estimator.l2_regularization": 1e-6},
                      {"model.estimator.learning_rate": 0.03, "model.estimator.max_iter": 500,
                       "model.estimator.max_leaf_nodes": 4, "model.estimator.min_samples_leaf": 40,
                       "model.estimator.l2_regularization": 1.0}],
        why="histogram gradient boosting: the strongest general tabular learner in scikit-learn")


def installed(library: str) -> bool:
    """Whether a learner's library can be imported here, asked without importing it (planning
    stays fast, and a broken extra fails in its trial, with its error, not in the plan)."""
    return importlib.util.find_spec(library) is not None


def lightgbm(profile: DatasetProfile) -> Candidate:
    # LightGBM's "Parameters Tuning" guide: num_leaves and min_data_in_leaf (min_child_samples)
    # first, a smaller learning_rate with more trees, feature_fraction (colsample_bytree).
    # Start: LightGBM's defaults.
    small = profile.rows < SMALL
    return candidate(
        model="lightgbm",
        params={"model.estimator.learning_rate": _range(0.01, 0.3, True),
                "model.estimator.n_estimators": _range(50, 600 if small else 1000, True),
                "model.estimator.num_leaves": _range(4, 128, True),
                "model.estimator.min_child_samples": _range(2 if small else 5, 100, True),
                "model.estimator.colsample_bytree": _range(0.3, 1.0)},
        start={"model.estimator.learning_rate": 0.1, "model.estimator.n_estimators": 100,
               "model.estimator.num_leaves": 31, "model.estimator.min_child_samples": 20,
               "model.estimator.colsample_bytree": 1.0},
        # The guide's direction against over-fitting: fewer leaves, a smaller learning rate with
        # more trees, feature subsampling.
        alternatives=[{"model.estimator.learning_rate": 0.05, "model.estimator.n_estimators": 300,
                       "model.estimator.num_leaves": 15, "model.estimator.min_child_samples": 20,
                       "model.estimator.colsample_bytree": 0.7}],
        why="LightGBM: histogram gradient boosting with native categories and more to tune, fast on "
            "large tables")


def xgboost(profile: DatasetProfile) -> Candidate:
    # XGBoost's "Notes on Parameter Tuning": max_depth and min_child_weight for complexity,
    # subsample and colsample_bytree for randomness, a lower eta with more rounds. Start: its
    # defaults (eta 0.3, depth 6, 100 rounds).
    small = profile.rows < SMALL
    return candidate(
        model="xgboost",
        params={"model.estimator.learning_rate": _range(0.01, 0.3, True),
                "model.estimator.n_estimators": _range(50, 600 if small else 1000, True),
                "model.estimator.max_depth": _range(2, 10),
                "model.estimator.min_child_weight": _range(0.1, 20.0, True),
                "model.estimator.subsample": _range(0.5, 1.0),
                "model.estimator.colsample_bytree": _range(0.3, 1.0)},
        start={"model.estimator.learning_rate": 0.3, "model.estimator.n_estimators": 100,
               "model.estimator.max_depth": 6, "model.estimator.min_child_weight": 1.0,
               "model.estimator.subsample": 1.0, "model.estimator.colsample_bytree": 1.0},
        alternatives=[{"model.estimator.learning_rate": 0.05, "model.estimator.n_estimators": 400,
                       "model.estimator.max_depth": 4, "model.estimator.min_child_weight": 1.0,
                       "model.estimator.subsample": 0.8, "model.estimator.colsample_bytree": 0.8}],
        why="XGBoost: depth-wise gradient boosting, a different tree shape from the leaf-wise boosters")


def catboost(profile: DatasetProfile) -> Candidate:
    # CatBoost's "Parameter tuning" guide: depth (4 to 10), l2_leaf_reg, random_strength; the
    # learning rate left to CatBoost, which sets it from the data and the iterations. Start: its
    # defaults (1000 iterations, depth 6, l2_leaf_reg 3).
    return candidate(
        model="catboost",
        params={"model.estimator.iterations": _range(200, 1500, True),
                "model.estimator.depth": _range(4, 10),
                "model.estimator.l2_leaf_reg": _range(1.0, 30.0, True),
                "model.estimator.random_strength": _range(0.0, 10.0)},
        start={"model.estimator.iterations": 1000, "model.estimator.depth": 6,
               "model.estimator.l2_leaf_reg": 3.0, "model.estimator.random_strength": 1.0},
        why="CatBoost: ordered target statistics for the text columns (Prokhorenkova et al., NeurIPS 2018)")


def forest(profile: DatasetProfile) -> Candidate:
    # Random forests need little tuning and do well on small and wide data (Breiman 2001;
    # Probst, Wright & Boulesteix, "Hyperparameters and tuning strategies for random forest",
    # 2019: mtry and node size matter most).
    return candidate(
        model="random_forest",
        params={"model.estimator.n_estimators": _range(100, 500, True),
                "model.estimator.min_samples_leaf": _range(1, 20, True),
                "model.estimator.max_features": _range(choices=["sqrt", 0.33, 0.5, 1.0])},
        start={"model.estimator.n_estimators": 200, "model.estimator.min_samples_leaf": 1,
               "model.estimator.max_features": "sqrt"},
        alternatives=[{"model.estimator.n_estimators": 300, "model.estimator.min_samples_leaf": 5,
                       "model.estimator.max_features": 0.5}],
        why="a random forest: robust with little tuning, good on small and wide tables")


def cnn(profile: DatasetProfile) -> Candidate:
    # Convolutions for data with a spatial shape (LeCun et al. 1998); lr around Adam's default
    # (Kingma & Ba 2015).
    return candidate(
        model="cnn",
        params={"trainer.lr": _range(3e-4, 3e-3, True), "model.dropout": _range(0.0, 0.4),
                "model.channels": _range(choices=[[16, 32], [32, 64]])},
        start={"trainer.lr": 1e-3, "model.dropout": 0.1, "model.channels": [32, 64]},
        why="a small CNN: the data has an image shape")


def mlp(framework: str) -> Candidate:
    params = {"trainer.lr": _range(1e-4, 1e-2, True), "model.hidden_sizes": _range(choices=[[64], [128, 64], [256, 128]])}
    start: dict[str, Any] = {"trainer.lr": 1e-3, "model.hidden_sizes": [128, 64]}
    if framework != "sklearn":
        params["model.dropout"] = _range(0.0, 0.5)
        start["model.dropout"] = 0.1
    return candidate(model="mlp", params=params, start=start, why="a multilayer perceptron")


def kmeans(profile: DatasetProfile) -> Candidate:
    # k from the data's classes when it has labels, else around sqrt(n/2) (Mardia, Kent & Bibby,
    # Multivariate Analysis, 1979: the rule of thumb k ~ sqrt(n/2)).
    k = profile.classes or max(2, round(math.sqrt(profile.rows / 2)))
    high = max(3, min(50, 2 * k))
    return candidate(model="kmeans", params={"model.estimator.n_clusters": _range(2, high)},
                     start={"model.estimator.n_clusters": min(k, high)}, why="k-means")


def trial_seconds(candidate: str, profile: DatasetProfile, folds: int) -> float:
    scale = max(1.0, profile.rows / 1000) * max(1.0, profile.columns / 10)
    return TRIAL_SECONDS.get(candidate, 1.0) * scale * max(1, folds) / 5


class HeuristicPlanner:
    name = "heuristic"
    model = "rules"
    deadline = None  # answers at once: no deadline to keep

    def describe(self) -> str:
        return "heuristic (offline rules)"

    def propose(self, task: MLTask, profile: DatasetProfile, check: Any = None) -> tuple[Blueprint, str]:
        """(blueprint, the raw answer as text): here the raw answer is the rules' own summary.
        `check` raises BlueprintRejected for a blueprint that names what the project lacks."""
        kind = task.task_type
        framework = "sklearn"
        if kind == "clustering":
            candidates = [kmeans(profile)]
        elif profile.image_shape and len(profile.image_shape) >= 2 and _available("pytorch"):
            # A declared image shape: a CNN, with an MLP beside it (digits-sized images are
            # small enough for both, LeCun et al. 1998).
            framework = "pytorch"
            candidates = [cnn(profile), mlp(framework)]
        elif profile.rows >= LARGE:
            candidates = self._large(profile) + [linear(kind)]
        elif profile.columns > profile.rows:
            candidates = [linear(kind), forest(profile)]  # wide: regularisation first
        else:
            candidates = [linear(kind), boosting(profile), forest(profile)]
            if profile.categorical and installed("catboost") and \
                    trial_seconds("catboost", profile, 5) <= CATBOOST_SHARE * task.budget:
                candidates.append(catboost(profile))
        # Cross-validation where the data is small enough to afford it: selection by a single
        # small validation split picks the test-best model only about 6 times in 10 (measured on
        # the shared bench; Kohavi, IJCAI 1995: 10-fold or 5-fold CV for model selection).
        folds = 5 if profile.rows <= LARGE else None
        n_trials = self._trials(candidates, profile, task.budget, folds or 1)
        blueprint = Blueprint(task=kind, metric=task.metric, framework=framework, candidates=candidates,
                              n_trials=n_trials, cv_folds=folds,
                              rationale=f"{profile.summary()}; budget {task.budget:g}s: "
                                        + "; ".join(c.why for c in candidates))
        if check is not None:
            blueprint = check(blueprint)
        return blueprint, blueprint.rationale

    @staticmethod
    def _large(profile: DatasetProfile) -> list[Candidate]:
        """Boosting for large tables, from what is installed: LightGBM in place of scikit-learn's
        histogram boosting (the same algorithm, Ke et al. 2017, with native categories of any
        count its preprocessing keeps and more to tune), XGBoost beside it (level-wise trees, the
        learner FLAML most often picks); scikit-learn's alone when neither is there."""
        out = [lightgbm(profile)] if installed("lightgbm") else [boosting(profile)]
        return out + ([xgboost(profile)] if installed("xgboost") else [])

    @staticmethod
    def _trials(candidates: list[Candidate], profile: DatasetProfile, budget: float, folds: int) -> int:
        per_trial = sum(trial_seconds(c.model, profile, folds) for c in candidates) / len(candidates)
        # Two trials run at once on two cores; keep a quarter of the budget for the final fit.
        trials = int(0.75 * budget * 2 / max(per_trial, 0.05))
        return max(len(candidates), min(200, trials))

    def refine(self, task: MLTask, profile: DatasetProfile, blueprint: Blueprint, leaderboard: Any,
               check: Any = None) -> tuple[Blueprint, str]:
        """Widen the best family's ranges and drop the families far behind it."""
        from launcher.robot.space import tunable

        best = leaderboard.best_model() if leaderboard is not None else None
        keep = [c for c in blueprint.candidates if best is None or c.model == best] or blueprint.candidates
        widened = []
        for c in keep:
            keys = tunable(blueprint.framework, c.model)
            params = []
            for key, rng in c.ranges.items():
                bound = keys[key]
                if rng.choices is not None or bound.kind == "choice":
                    params.append(rng)
                    continue
                # Three times wider on each side on a log scale (within the registry's bounds);
                # an integer key keeps whole-number ends.
                wide = rng.log or (rng.log is None and bound.log)
                low = bound.low if rng.low is None else max(bound.low, rng.low / 3 if wide else rng.low)
                high = bound.high if rng.high is None else min(bound.high, rng.high * 3 if wide else rng.high)
                if bound.kind == "int":
                    low, high = int(math.floor(low)), int(math.ceil(high))
                params.append(ParamRange(key=key, low=low, high=high, log=rng.log))
            widened.append(c.model_copy(update={"params": params}))
        refined = blueprint.model_copy(update={"candidates": widened,
                                               "rationale": f"refined: kept {', '.join(c.model for c in widened)}, "
                                                            "ranges widened"})
        if check is not None:
            refined = check(refined)
        return refined, refined.rationale


def _available(framework: str) -> bool:
    from launcher.frameworks import registry

    status = registry.status(framework)
    return status.installed and status.enabled

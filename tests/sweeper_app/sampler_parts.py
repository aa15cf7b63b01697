"""A user's own module that a search config names in sampler keys taking objects or functions
(independent_sampler, mutation, crossover, constraints_func, source_trials). Each part records
that Optuna called it, so a test can tell that the key reached the sampler."""
import optuna
from optuna.samplers.nsgaii import PolynomialMutation, UniformCrossover

CALLS: list = []


class RecordingSampler(optuna.samplers.RandomSampler):
    def sample_independent(self, study, trial, param_name, param_distribution):
        CALLS.append("independent_sampler")
        return super().sample_independent(study, trial, param_name, param_distribution)


class RecordingCrossover(UniformCrossover):
    def crossover(self, *args, **kwargs):
        CALLS.append("crossover")
        return super().crossover(*args, **kwargs)


class RecordingMutation(PolynomialMutation):
    def mutation(self, *args, **kwargs):
        CALLS.append("mutation")
        return super().mutation(*args, **kwargs)


def constraints(trial):
    CALLS.append("constraints_func")
    return [0.0]


def source_trials():
    """Trials of an earlier study, to warm-start CMA-ES."""
    CALLS.append("source_trials")
    space = {"x": optuna.distributions.FloatDistribution(-4.0, 4.0),
             "y": optuna.distributions.IntDistribution(-3, 3)}
    points = [(x / 2, y) for x in range(-4, 5) for y in (-1, 1)]  # CMA-ES takes the best tenth
    return [optuna.trial.create_trial(params={"x": x, "y": y}, distributions=space, value=x * x + y * y)
            for x, y in points]

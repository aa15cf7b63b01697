"""This project's Hydra sweeper on current Optuna (``hydra/sweeper=optuna``).

config.py        the settings and sampler/pruner presets (hydra-optuna-sweeper's grammar + ours)
search_space.py  choice/range/interval/tag(log, ...) -> Optuna distributions
optuna_sweeper.py  the ask / launch / tell loop: budget, failures, resume, parallel slots
storage.py       where the study lives; keeps storage passwords out of configs and logs
pruning.py       the job side: ``reporter(cfg)`` reports per-epoch scores and prunes
results.py       optimization_results.yaml, trials.csv, PNG plots

Nothing here imports Optuna at import time.
"""

"""This project's Hydra sweeper on current Optuna (``hydra/sweeper=optuna``), a drop-in for
hydra-optuna-sweeper.

config.py          the settings and typed sampler/pruner presets (the official grammar and defaults + ours)
search_space.py    choice/range/interval/tag(log, ...) and the deprecated search_space -> Optuna distributions
optuna_sweeper.py  the ask / launch / tell loop: budget, failures, parallel slots
resume.py          exact resume: trial owners, orphaned trials failed and re-queued, resume seed
official.py        hydra-optuna-sweeper beside this one, its deprecated keys, the differences logged
storage.py         where the study lives; keeps storage passwords out of configs and logs
pruning.py         the job side: the trial link in the job's environment, ``reporter(cfg)``
results.py         optimization_results.yaml, trials.csv, PNG plots
compat.py          the private corners of Hydra and Optuna used, in one place

Nothing here imports Optuna at import time.
"""

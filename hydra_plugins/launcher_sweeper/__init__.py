"""Hydra plugin shim: registers this project's Optuna sweeper (launcher.sweeper) with Hydra."""

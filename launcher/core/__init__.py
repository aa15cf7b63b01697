"""The ground every other part of launcher stands on; it imports nothing else of launcher.

errors.py   the error family: one line for the user, an exit code, a hint
types.py    DataSchema, Splits, History, FrameworkStatus: what crosses between layers
adapter.py  the adapter contract the four frameworks implement
specs.py    portable network specs (MLP, CNN, RNN, Transformer), validated once
trainer.py  the framework-free part of neural training: settings, epoch record, resume
paths.py    where configs, the user's working directory and the run directory are
cli.py      key=value arguments for the python -m launcher.* tools
"""

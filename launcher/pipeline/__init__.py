"""The training pipeline (train.py: the body of `python -m launcher`) and prediction from a
saved run (predict.py)."""

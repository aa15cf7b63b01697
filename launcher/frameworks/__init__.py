"""Framework adapters and their registry. Importing this package imports no framework.

registry.py    which adapter serves which framework (from conf/framework/), status, health check
sklearn.py     scikit-learn estimators and its MLP, saved with skops
torch/         PyTorch through Lightning Fabric: the portable networks, the training loop
keras/         TensorFlow/Keras: the portable networks in Keras 3, model.fit steered by the core
__main__.py    python -m launcher.frameworks: what is usable here
"""

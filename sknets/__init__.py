"""sknets: feed-forward networks and autoencoders with the scikit-learn API."""

from .mlp import MLPClassifier, MLPRegressor
from .persistence import load

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "__version__", "load"]

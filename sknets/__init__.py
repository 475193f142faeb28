"""sknets: feed-forward networks and autoencoders with the scikit-learn API."""

from .autoencoder import AutoencoderTransformer
from .mlp import MLPClassifier, MLPRegressor
from .persistence import load

__version__ = "0.1.0"

__all__ = ["AutoencoderTransformer", "MLPClassifier", "MLPRegressor", "__version__", "load"]

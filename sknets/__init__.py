"""sknets: feed-forward networks and autoencoders with the scikit-learn API."""

from .autoencoder import AutoencoderTransformer
from .compare import compare
from .mlp import MLPClassifier, MLPRegressor
from .persistence import load
from .plotting import plot_history, plot_reconstructions
from .summary import summary

__version__ = "0.1.0"

__all__ = [
    "AutoencoderTransformer",
    "MLPClassifier",
    "MLPRegressor",
    "__version__",
    "compare",
    "load",
    "plot_history",
    "plot_reconstructions",
    "summary",
]

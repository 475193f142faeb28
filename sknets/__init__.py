"""sknets: feed-forward networks and autoencoders with the scikit-learn API."""

from .autoencoder import AutoencoderTransformer
from .inspection import compare, plot_history, plot_reconstructions, summary
from .mlp import MLPClassifier, MLPRegressor
from .persistence import load
from ._version import __version__


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

"""sknets: feed-forward networks and autoencoders with the scikit-learn API.

The public names are imported on first use, so that ``import sknets`` (and
the ``sknets`` command's ``--help``) does not load torch until a network is
needed.
"""

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

# Where each public name is defined.
_EXPORTS = {
    "AutoencoderTransformer": "autoencoder",
    "MLPClassifier": "mlp",
    "MLPRegressor": "mlp",
    "compare": "inspection",
    "load": "persistence",
    "plot_confusion_matrix": "inspection",
    "plot_history": "inspection",
    "plot_reconstructions": "inspection",
    "summary": "inspection",
}

if TYPE_CHECKING:  # what static tools and IDEs see
    from .autoencoder import AutoencoderTransformer
    from .inspection import (compare, plot_confusion_matrix, plot_history,
                             plot_reconstructions, summary)
    from .mlp import MLPClassifier, MLPRegressor
    from .persistence import load


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])


__all__ = ["__version__", *sorted(_EXPORTS)]

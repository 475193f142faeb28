"""sknets: feed-forward networks and autoencoders with the scikit-learn API.

The public names are imported on first use, so that ``import sknets`` (and
the ``sknets`` command's ``--help``) does not load torch until a network is
needed.
"""

import importlib
import os
import sys
from typing import TYPE_CHECKING

# torch's OpenMP threads spin while they wait for work (GNU OpenMP's default:
# 300,000 rounds, 5-10 ms), then sleep. Threads that sleep at once pay for it
# on an idle machine: every operation of a training step has to wake them,
# which on a virtual machine can take longer than the operation. Threads
# that spin take the cores that other programs need, and a fit whose thread
# count cannot change slows down several times when programs start; but a
# fit's threads follow the load as it trains (sknets._engine.resources), so
# spinning costs a busy machine only the milliseconds before the threads
# notice it. Unless the user has chosen, waiting threads therefore spin for
# 100,000 rounds (a few milliseconds: longer than the gaps between the
# parallel operations of a training step) and then sleep (the passive
# policy, which is also what OpenMP runtimes without GOMP_SPINCOUNT follow).
# OpenMP reads both once, when torch loads: they are set here only if torch
# is not loaded yet (OMP_WAIT_POLICY=ACTIVE before importing sknets keeps
# spinning).
#
# MKL's strict reproducibility mode makes torch's CPU matrix products give the
# same bits whatever the number of threads: a fit's results then do not depend
# on its thread count, which may follow the machine's load (a busy machine
# trains on fewer threads; see sknets._engine.resources.thread_budget). MKL
# also reads it once; MKL_CBWR set beforehand (e.g. "AUTO") is left alone.
#
# Where torch is loaded already (``import torch`` first, as many scripts
# begin), MKL may not have computed anything yet: then its C interface still
# accepts the mode (``_process``), and fits keep both properties.
if "torch" not in sys.modules:
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ["GOMP_SPINCOUNT"] = "100000"
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
elif "MKL_CBWR" not in os.environ:
    from ._process import set_strict_mode

    if set_strict_mode(sys.modules["torch"]):
        os.environ["MKL_CBWR"] = "AUTO,STRICT"  # as MKL now runs; worker processes inherit it

from ._version import __version__  # noqa: E402

# Where each public name is defined.
_EXPORTS = {
    "AutoencoderTransformer": "autoencoder",
    "MLPClassifier": "mlp",
    "MLPRegressor": "mlp",
    "compare": "inspection",
    "load": "persistence",
    "lr_find": "inspection",
    "plot_confusion_matrix": "inspection",
    "plot_history": "inspection",
    "plot_reconstructions": "inspection",
    "summary": "inspection",
}

if TYPE_CHECKING:  # what static tools and IDEs see
    from .autoencoder import AutoencoderTransformer
    from .inspection import (compare, lr_find, plot_confusion_matrix, plot_history,
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

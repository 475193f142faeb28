"""The ``sknets`` application: named studies, the command line and HTML reports.

A study trains a few networks on one data set and writes what they learned
into a :class:`~sknets.studies.report.Report`: loss curves, confusion
matrices or reconstructions, a test table, model summaries and the exact
parameters. ``sknets study NAME`` (see :mod:`sknets.studies.cli`) runs one
from the command line.

======================  =======================================================
study                   what it compares
======================  =======================================================
``architectures``       1 and 2 hidden layers, L2, dropout (MLP, ~100 units)
``optimizers``          vanilla SGD, momentum, RMSprop, Adagrad, Adam
``regularizers``        none, dropout, batch norm, both, L1 + L2 + dropout +
                        batch norm on a 64-64-128-64-64 network
``search``              ``GridSearchCV`` over ``hidden_layers``
``autoencoder``         code sizes of an autoencoder, next to PCA
``training``            mini-batch SGD, linear and exponential learning-rate
                        schedules, Adam, L2, early stopping; an over-fitted
                        wide network
``data-size``           2 x 512 on all vs 25% of the data; one layer of 512
                        with ReLU or sigmoid, dropout 0.2, 0.5 or none
======================  =======================================================

Every study runs on scikit-learn's bundled 8x8 digits by default (no
download, well under a minute on two cores) and on the 28x28 data sets of
:mod:`sknets.datasets`, with settings adapted to each size.

The package's modules: ``data`` (what a study trains on), ``registry``
(``STUDIES`` and ``run_study``), ``steps`` (the report steps the studies
share), one module per study, ``report`` and ``cli``. The library never
imports this package.

Examples
--------
>>> from sknets.studies import STUDIES
>>> list(STUDIES)
['architectures', 'optimizers', 'regularizers', 'search', 'autoencoder', 'training', 'data-size']
"""

import importlib

# Where each public name is defined.
_EXPORTS = {
    "DATASETS": "data",
    "StudyData": "data",
    "load_study_data": "data",
    "STUDIES": "registry",
    "Study": "registry",
    "StudySettings": "registry",
    "default_threads": "registry",
    "run_study": "registry",
    "fit_and_report": "steps",
}

# Importing a study module registers it; this order is the order of STUDIES.
_STUDY_MODULES = ("architectures", "optimizers", "regularizers", "search", "autoencoder",
                  "training", "data_size")


def __getattr__(name):
    # The `sknets` command imports this package on every call, `sknets --help`
    # included, while the studies import torch and matplotlib (seconds): so
    # they are imported on the first use of a public name, not here.
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in _STUDY_MODULES:
        importlib.import_module(f".{module}", __name__)
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)

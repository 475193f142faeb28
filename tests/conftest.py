"""Shared fixtures: training settings, small synthetic data sets and the real-data folder.

Tests that use the real-data fixtures (``real_data_home``, ``mnist_small``,
``tabular_data_home``) belong to the slow tier: mark them ``@pytest.mark.slow``.
"""

import os
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

# Before anything loads torch, as a user's script would: sknets sets torch's
# OpenMP wait policy and MKL's strict reproducibility mode, which both take
# effect only before torch loads.
import sknets  # noqa: F401

REAL_DATA_ENV = "SKNETS_TEST_DATA"


def _real_data_home(subfolder="mnist", holding="mnist/ and fashion-mnist/"):
    folder = os.environ.get(REAL_DATA_ENV)
    if folder and (Path(folder) / subfolder).is_dir():
        return Path(folder)
    reason = (
        f"real data not found: set {REAL_DATA_ENV} to the folder holding "
        f"{holding} (e.g. ../shared/data)"
    )
    if os.environ.get("CI"):
        # In CI the folder is always there; a missing one is a broken setup,
        # not a reason to skip silently.
        pytest.fail(reason)
    pytest.skip(reason)


# Quick, reproducible training for tests on small data: a learning rate that
# converges in a few epochs, a fixed seed, and one torch thread, since on
# networks this small a second thread only adds synchronisation.
_FAST_TRAINING = MappingProxyType({"lr": 1e-2, "random_state": 0, "n_threads": 1})


@pytest.fixture(scope="session")
def fast_training():
    """Read-only ``lr``, ``random_state`` and ``n_threads`` for small, quick fits.

    Pass as ``MLPClassifier(max_epochs=5, **fast_training)``.
    """
    return _FAST_TRAINING


@pytest.fixture(scope="session")
def small_network(fast_training):
    """``fast_training`` with one hidden layer of 16 units (``hidden_layers=(16,)``)."""
    return MappingProxyType({"hidden_layers": (16,), **fast_training})


@pytest.fixture(scope="session")
def real_data_home():
    """Path of the folder with the publishers' MNIST and Fashion-MNIST files."""
    return _real_data_home()


@pytest.fixture(scope="session")
def tabular_data_home():
    """Path of the folder of real tables (diamonds, Default, Wage, penguins), as CSV files."""
    return _real_data_home("tabular", "tabular/") / "tabular"


@pytest.fixture(scope="session")
def mnist_small(real_data_home):
    """10,000 MNIST training and 10,000 test images scaled to [0, 1]."""
    from sknets.datasets import fetch_mnist

    train = fetch_mnist(subset="train", data_home=real_data_home, download_if_missing=False)
    test = fetch_mnist(subset="test", data_home=real_data_home, download_if_missing=False)
    return train.data[:10_000], train.target[:10_000], test.data, test.target


@pytest.fixture
def blobs():
    """A small, well separated 3-class problem."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=300, centers=3, n_features=5, random_state=0)
    return X.astype(np.float64), y


class _FixedScores:
    """A validation scorer with the engine's interface (``name``, ``__call__(outputs,
    y_valid)``) that returns given values, one per epoch."""

    name = "score"

    def __init__(self, values):
        self.values, self.calls = list(values), 0

    def __call__(self, outputs, y_valid):
        self.calls += 1
        return self.values[self.calls - 1]


@pytest.fixture(scope="session")
def fixed_scores():
    """A scorer class for the engine: ``fixed_scores([0.1, 0.5, ...])`` scores epoch i with the i-th value."""
    return _FixedScores


@pytest.fixture(scope="module")
def dask_client():
    """A Dask cluster of two single-threaded worker processes on this machine."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(autouse=True)
def _quiet_machine(monkeypatch):
    """Thread budgets as on a quiet machine, whatever else runs beside the tests.

    A fit's budget leaves out the cores other programs keep busy
    (``busy_cores``), and tests run beside each other (``pytest -n``); tests
    of that rule set the count they need.
    """
    from sknets._engine import resources

    monkeypatch.setattr(resources, "busy_cores", lambda *args, **kwargs: 0)

"""Shared fixtures: small synthetic data sets and the real-data folder."""

import os
from pathlib import Path

import numpy as np
import pytest

REAL_DATA_ENV = "SKNETS_TEST_DATA"


def _real_data_home():
    folder = os.environ.get(REAL_DATA_ENV)
    if folder and (Path(folder) / "mnist").is_dir():
        return Path(folder)
    reason = (
        f"real data not found: set {REAL_DATA_ENV} to the folder holding "
        "mnist/ and fashion-mnist/ (e.g. ../shared/data)"
    )
    if os.environ.get("CI"):
        # In CI the folder is always there; a missing one is a broken setup,
        # not a reason to skip silently.
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_data_home():
    """Path of the folder with the publishers' MNIST and Fashion-MNIST files."""
    return _real_data_home()


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

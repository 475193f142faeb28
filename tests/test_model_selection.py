"""Tests for sknets.model_selection.train_val_test_split."""

import doctest

import numpy as np
import pandas as pd
import pytest

from sknets import model_selection
from sknets.model_selection import train_val_test_split


@pytest.fixture
def imbalanced():
    """700 samples, classes 0/1/2 in proportions 70% / 20% / 10%."""
    y = np.repeat([0, 1, 2], [490, 140, 70])
    X = np.arange(len(y) * 2, dtype=float).reshape(-1, 2)
    return X, y


def test_default_sizes(imbalanced):
    X, y = imbalanced
    X_train, X_val, X_test, y_train, y_val, y_test = train_val_test_split(X, y, random_state=0)
    assert (len(X_train), len(X_val), len(X_test)) == (500, 100, 100)
    assert [len(part) for part in (y_train, y_val, y_test)] == [500, 100, 100]
    rows = np.concatenate([X_train, X_val, X_test])[:, 0]
    assert sorted(rows) == sorted(X[:, 0])  # a partition: nothing lost or repeated
    np.testing.assert_array_equal(y[(X_val[:, 0] // 2).astype(int)], y_val)  # rows stay paired


def test_stratify_keeps_class_proportions(imbalanced):
    X, y = imbalanced
    *_, y_train, y_val, y_test = train_val_test_split(
        X, y, sizes=(0.6, 0.2, 0.2), stratify=y, random_state=1
    )
    assert np.bincount(y_train).tolist() == [294, 84, 42]
    assert np.bincount(y_val).tolist() == [98, 28, 14]
    assert np.bincount(y_test).tolist() == [98, 28, 14]


@pytest.mark.parametrize("stratify", [False, True])
def test_reproducible_with_random_state(imbalanced, stratify):
    X, y = imbalanced
    kwargs = {"stratify": y if stratify else None}
    first = train_val_test_split(X, y, random_state=42, **kwargs)
    second = train_val_test_split(X, y, random_state=42, **kwargs)
    other = train_val_test_split(X, y, random_state=43, **kwargs)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_no_shuffle_gives_consecutive_blocks(imbalanced):
    X, y = imbalanced
    X_train, X_val, X_test, *_ = train_val_test_split(X, y, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([X_train, X_val, X_test]), X)


def test_dataframes_keep_their_type_and_index(imbalanced):
    X, y = imbalanced
    frame = pd.DataFrame(X, columns=["a", "b"], index=np.arange(len(X)) + 1000)
    target = pd.Series(y, index=frame.index, name="label")
    X_train, X_val, X_test, y_train, y_val, y_test = train_val_test_split(
        frame, target, stratify=target, random_state=0
    )
    assert all(isinstance(part, pd.DataFrame) for part in (X_train, X_val, X_test))
    assert all(isinstance(part, pd.Series) for part in (y_train, y_val, y_test))
    pd.testing.assert_index_equal(X_val.index, y_val.index)
    assert X_test.index.min() >= 1000


def test_without_y_returns_three_parts(imbalanced):
    X, _ = imbalanced
    parts = train_val_test_split(X, sizes=(0.5, 0.25, 0.25), random_state=0)
    assert [len(part) for part in parts] == [350, 175, 175]


@pytest.mark.parametrize(
    "sizes",
    [(0.8, 0.1), (0.6, 0.3, 0.3), (0.9, 0.1, 0.0), (1.2, -0.1, -0.1), (0.7, "0.15", 0.15)],
    ids=["two", "sum-above-1", "zero", "negative", "string"],
)
def test_bad_sizes_raise(imbalanced, sizes):
    X, y = imbalanced
    with pytest.raises(ValueError, match="sizes must be three positive fractions .* sum to 1"):
        train_val_test_split(X, y, sizes=sizes)


def test_docstring_examples():
    assert doctest.testmod(model_selection).failed == 0

"""Splitting data into training, validation and test sets."""

import numbers

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state


def _check_sizes(sizes):
    if (
        len(sizes) != 3
        or not all(isinstance(s, numbers.Real) for s in sizes)
        or min(sizes) <= 0
        or not np.isclose(sum(sizes), 1.0)
    ):
        raise ValueError(
            "sizes must be three positive fractions (train, validation, test) "
            f"that sum to 1, e.g. (0.7, 0.15, 0.15); got {tuple(sizes)!r}."
        )


def train_val_test_split(
    X, y=None, *, sizes=(5 / 7, 1 / 7, 1 / 7), stratify=None, random_state=None, shuffle=True
):
    """Split arrays into training, validation and test sets.

    Two calls of :func:`sklearn.model_selection.train_test_split`: the first
    sets the test set aside, the second splits the rest into training and
    validation sets. The default sizes split as MNIST's 70,000 images are
    often used: 50,000 for training, 10,000 for validation, 10,000 for
    testing.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
        The samples.
    y : array-like or Series of shape (n_samples,), default=None
        The targets; None for unsupervised data (e.g. an autoencoder's).
    sizes : tuple of 3 floats, default=(5/7, 1/7, 1/7)
        The fractions of the samples in the training, validation and test
        sets; each must be positive and they must sum to 1.
    stratify : array-like of shape (n_samples,), default=None
        If given (usually ``y``), all three sets keep the class proportions
        of this array.
    random_state : int, RandomState instance or None, default=None
        Controls the shuffling; pass an int for reproducible splits.
    shuffle : bool, default=True
        Whether to shuffle before splitting. If False, the sets are
        consecutive blocks in order, and ``stratify`` must be None.

    Returns
    -------
    X_train, X_val, X_test, y_train, y_val, y_test : arrays or DataFrames
        The splits, of the same type as the inputs (only the ``X`` parts
        if ``y`` is None).

    See Also
    --------
    sklearn.model_selection.train_test_split : The two-way split.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.model_selection import train_val_test_split
    >>> X, y = np.arange(140).reshape(70, 2), np.repeat([0, 1], 35)
    >>> X_train, X_val, X_test, y_train, y_val, y_test = train_val_test_split(
    ...     X, y, stratify=y, random_state=0)
    >>> len(X_train), len(X_val), len(X_test)
    (50, 10, 10)
    >>> np.bincount(y_val)
    array([5, 5])
    """
    _check_sizes(sizes)
    train_size, val_size, test_size = sizes
    rng = check_random_state(random_state)
    arrays = [X] + ([] if y is None else [y]) + ([] if stratify is None else [stratify])
    split = train_test_split(
        *arrays, test_size=test_size, random_state=rng, shuffle=shuffle, stratify=stratify
    )
    rest, test = split[0::2], split[1::2]
    split = train_test_split(
        *rest,
        test_size=val_size / (train_size + val_size),
        random_state=rng,
        shuffle=shuffle,
        stratify=None if stratify is None else rest[-1],
    )
    train, val = split[0::2], split[1::2]
    n_outputs = 1 if y is None else 2
    return [part for i in range(n_outputs) for part in (train[i], val[i], test[i])]


def holdout_indices(n_samples, validation_fraction, rng, stratify=None):
    """Indices ``(train, valid)`` of the validation set held out for early stopping.

    ``train`` is sorted, so the training samples keep their order.

    Parameters
    ----------
    n_samples : int
    validation_fraction : float in (0, 1)
    rng : numpy.random.RandomState
    stratify : array-like of shape (n_samples,) or None
        Class of each sample, for a stratified split.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets.model_selection import holdout_indices
    >>> train, valid = holdout_indices(10, 0.2, np.random.RandomState(0))
    >>> len(train), len(valid), list(train) == sorted(train)
    (8, 2, True)
    """
    try:
        train, valid = train_test_split(np.arange(n_samples), test_size=validation_fraction,
                                        random_state=rng, stratify=stratify)
    except ValueError as exc:
        raise ValueError(
            f"Cannot hold out validation_fraction={validation_fraction} of "
            f"{n_samples} samples for early stopping ({exc}). Pass validation_data, "
            "raise validation_fraction, or set early_stopping=False."
        ) from exc
    train.sort()
    return train, valid

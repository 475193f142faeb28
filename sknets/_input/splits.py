"""The validation set held out of the training data for early stopping.

A rule about the training data every estimator and the NumPy reference
share; :mod:`sknets.model_selection` exposes it.
"""

import numpy as np
from sklearn.model_selection import train_test_split


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

"""Targets as the arrays a loss expects: class indices or a matrix of outputs.

Shared by the torch estimators (``sknets.mlp``) and the NumPy ones
(``sknets.scratch``), so that both read ``y`` by the same rules.
"""

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from ._validation import as_float


def encode_labels(estimator, y, reset, classes=None):
    """Index of each label of ``y`` in ``estimator.classes_``.

    Parameters
    ----------
    estimator : classifier
        Gets ``classes_`` when ``reset``.
    y : array-like of shape (n_samples,) or (n_samples, 1)
        Labels of any type.
    reset : bool
        Set ``classes_`` from ``y`` (or from ``classes``).
    classes : array-like, default=None
        Every label, when ``y`` may lack some.

    Returns
    -------
    index : ndarray of int64, shape (n_samples,)

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from sknets._targets import encode_labels
    >>> clf = SimpleNamespace()
    >>> encode_labels(clf, ["b", "a", "b"], reset=True), clf.classes_.tolist()
    (array([1, 0, 1]), ['a', 'b'])
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    labels = y if classes is None else np.asarray(classes)
    try:
        check_classification_targets(y)
        if reset:
            estimator.classes_ = np.unique(labels)
    except TypeError as exc:  # e.g. str and int labels cannot be sorted together
        kinds = sorted({type(label).__name__ for label in (*y.ravel(), *labels.ravel())})
        raise ValueError(
            f"y mixes labels of types {kinds}, which cannot be sorted together; "
            "use labels of one type (e.g. y.astype(str))."
        ) from exc
    if reset and len(estimator.classes_) < 2:
        raise ValueError(
            f"y has only one class ({estimator.classes_.tolist()[0]!r}); a classifier needs "
            "samples of at least two classes."
        )
    unseen = ~np.isin(y, estimator.classes_)
    if unseen.any():
        hint = (" Pass every label as `classes` to the first partial_fit call."
                if hasattr(estimator, "partial_fit") else "")
        raise ValueError(
            f"y contains labels not seen at fit: {np.unique(y[unseen]).tolist()}; "
            f"known classes are {estimator.classes_.tolist()}.{hint}"
        )
    return np.searchsorted(estimator.classes_, y).astype(np.int64)


def stratify_labels(index):
    """``index`` if every class in it has at least two samples (stratifiable), else None.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets._targets import stratify_labels
    >>> stratify_labels(np.array([0, 0, 1])) is None
    True
    """
    counts = np.bincount(index)
    return index if counts[counts > 0].min() >= 2 else None


def encode_outputs(estimator, y, reset, dtype):
    """Regression targets as a matrix of shape (n_samples, n_outputs).

    When ``reset``, sets ``estimator.n_outputs_`` and ``estimator._y_1d``
    (whether predictions are returned 1-D); otherwise checks the number of
    outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from sknets._targets import encode_outputs
    >>> reg = SimpleNamespace()
    >>> encode_outputs(reg, [1, 2], reset=True, dtype=np.float32).shape, reg.n_outputs_
    ((2, 1), 1)
    """
    y = as_float(y, dtype, "y")
    if reset:
        estimator._y_1d = y.ndim == 1
        estimator.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
    y = y.reshape(len(y), -1)
    if y.shape[1] != estimator.n_outputs_:
        raise ValueError(
            f"y has {y.shape[1]} outputs, but {type(estimator).__name__} was fitted with "
            f"{estimator.n_outputs_}."
        )
    return y

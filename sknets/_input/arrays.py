"""Input rules for numeric arrays and targets, and where they are enforced.

Every rule about what ``X`` and ``y`` may hold lives in this package.

scikit-learn's ``validate_data`` checks what it can, in ``BaseNetwork`` (at
fit and at predict), with scikit-learn's own messages: NaN and infinity,
empty and 3-D arrays, sparse matrices (refused by the autoencoder:
``TypeError`` asking for ``.toarray()``), complex numbers, the feature count
and feature names at predict; object arrays of numbers are converted. The
classifier and the regressor impute NaN and encode tables instead
(:mod:`sknets._input.tables`). The estimators check their targets (one
class only, labels unseen at fit, mixed label types).

What only a float32 network can get wrong is checked here, at the boundary
every array crosses on its way into torch:

* finite numbers beyond float32's range (``|x| > 3.4e38``) would become
  infinity when converted; :func:`as_float` refuses them;
* inputs of large magnitude can overflow inside the network even when they
  fit in float32; :func:`check_finite_outputs` refuses outputs that are not
  finite instead of returning NaN predictions.

Targets become the arrays a loss expects here too: class indices
(:func:`encode_labels`), the 0/1 matrix of multi-label targets
(:func:`indicator_matrix`) or a matrix of outputs (:func:`encode_outputs`),
shared by the torch estimators and the NumPy reference (``sknets.reference``)
so that both read ``y`` by the same rules.
"""

import numpy as np
import scipy.sparse
import torch
from sklearn.utils.multiclass import check_classification_targets, type_of_target


def as_float(array, dtype=np.float32, name="X"):
    """``array`` as a NumPy array of ``dtype``, refusing what ``dtype`` cannot hold.

    Parameters
    ----------
    array : array-like of numbers
    dtype : floating dtype, default=np.float32
    name : str, default="X"
        How error messages call the array.

    Returns
    -------
    ndarray of ``dtype``
        ``array`` itself when it has that dtype already.

    Raises
    ------
    ValueError
        If ``array`` is not numeric, holds NaN or infinity, or holds finite
        values beyond the range of ``dtype``, which the conversion would turn
        into infinity.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets._input import as_float
    >>> as_float(np.array([1, 2])).dtype
    dtype('float32')
    >>> as_float(np.array([1e39]), name="y")
    Traceback (most recent call last):
    ...
    ValueError: y has values up to 1e+39 in magnitude, beyond the range of float32 \
(3.4e+38) in which sknets computes: scale it first, e.g. with \
sklearn.preprocessing.StandardScaler.
    """
    array = np.asarray(array)
    if array.dtype == dtype:
        return array
    if array.dtype.kind == "O":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric; got an object array with values that "
                             f"are not numbers ({exc}).") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got an array of dtype {array.dtype}.")
    with np.errstate(over="ignore"):
        converted = array.astype(dtype)
    if array.dtype.kind == "f" and not np.isfinite(converted).all():
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinity.")
        largest = float(np.abs(array).max())
        raise ValueError(
            f"{name} has values up to {largest:.3g} in magnitude, beyond the range of "
            f"{np.dtype(dtype).name} ({np.finfo(dtype).max:.2g}) in which sknets computes: "
            "scale it first, e.g. with sklearn.preprocessing.StandardScaler."
        )
    return converted


def check_finite_outputs(outputs, X):
    """Raise if a network's ``outputs`` for inputs ``X`` are not all finite.

    The weights of a fitted sknets network are finite (training and loading
    check them), so non-finite outputs mean the inputs are so large that
    float32 arithmetic overflows inside the network.

    Parameters
    ----------
    outputs, X : torch.Tensor

    Raises
    ------
    ValueError
        Naming the magnitude of the inputs and the remedy.
    """
    if not bool(torch.isfinite(outputs).all()):
        largest = float(X.abs().max()) if X.numel() else 0.0
        raise ValueError(
            "The network's outputs are not finite for some samples: inputs of large "
            f"magnitude (up to {largest:.3g} here) overflow float32 inside the network. "
            "Scale X (e.g. with sklearn.preprocessing.StandardScaler) before fit and predict."
        )


def target_kind(y):
    """scikit-learn's ``type_of_target``; "unknown" for labels that cannot be sorted together."""
    if y.ndim != 2 or y.shape[1] < 2:
        return "single label"  # not an indicator matrix; fit_labels checks the labels
    try:
        return type_of_target(y)
    except TypeError:  # e.g. str and int labels mixed
        return "unknown"


def dense_labels(y):
    """``y`` as a NumPy array; a sparse indicator matrix becomes dense."""
    return y.toarray() if scipy.sparse.issparse(y) else np.asarray(y)


def indicator_matrix(y, n_labels):
    """Multi-label targets as the float32 0/1 matrix the binary cross-entropy expects."""
    kind = target_kind(y)
    if kind != "multilabel-indicator" or y.shape[1] != n_labels:
        if kind == "multilabel-indicator":
            got = f"one of {y.shape[1]} columns"
        elif kind == "single label":
            got = "one label per sample"
        else:
            got = f"{kind} of shape {y.shape}"
        raise ValueError(
            f"This classifier was fitted on a multi-label indicator matrix of {n_labels} "
            f"columns (0 or 1 per label); y is {got}. Pass y of that form, or fit a new "
            "classifier (warm_start=False, or fit instead of partial_fit).")
    return y.astype(np.float32)


def fit_labels(y, classes=None):
    """The sorted classes of a classifier trained on ``y``.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, 1)
        Labels of any type.
    classes : array-like, default=None
        Every label, when ``y`` may lack some.

    Returns
    -------
    classes : ndarray

    Raises
    ------
    ValueError
        If the labels cannot be sorted together, or there is only one class.

    Examples
    --------
    >>> from sknets._input import fit_labels
    >>> fit_labels(["b", "a", "b"]).tolist()
    ['a', 'b']
    """
    y = _labels(y)
    labels = y if classes is None else np.asarray(classes)
    _check_label_types(labels)
    try:
        _check_classification(y)
        classes = np.unique(labels)
    except TypeError as exc:  # e.g. str and int labels cannot be sorted together
        kinds = sorted({type(label).__name__ for label in (*y.ravel(), *labels.ravel())})
        raise ValueError(
            f"y mixes labels of types {kinds}, which cannot be sorted together; "
            "use labels of one type (e.g. y.astype(str))."
        ) from exc
    if len(classes) < 2:
        raise ValueError(
            f"y has only one class ({classes.tolist()[0]!r}); a classifier needs "
            "samples of at least two classes."
        )
    return classes


# Labels a classifier keeps as classes_ (and a model file can hold): numbers,
# strings and bools.
_LABEL_TYPES = (str, bool, int, float, np.bool_, np.integer, np.floating, np.str_)


def _check_label_types(labels):
    if labels.dtype.kind in "mM":
        raise ValueError(f"y holds {labels.dtype} labels; a classifier's labels are numbers, "
                         "strings or bools: convert them first, e.g. y.astype(str).")
    if labels.dtype.kind == "O":
        odd = {type(label).__name__ for label in labels.ravel()
               if not isinstance(label, _LABEL_TYPES)}
        if odd:
            raise ValueError(f"y holds labels of types {sorted(odd)}; a classifier's labels "
                             "are numbers, strings or bools: convert them first, e.g. "
                             "y.astype(str).")


def label_index(y, classes, hint=""):
    """Index of each label of ``y`` in the sorted ``classes``.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, 1)
    classes : ndarray
        As returned by :func:`fit_labels`.
    hint : str, default=""
        Appended to the error about unseen labels (what the user can do).

    Returns
    -------
    index : ndarray of int64, shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from sknets._input import label_index
    >>> label_index(["b", "a"], np.array(["a", "b"]))
    array([1, 0])
    """
    y = _labels(y)
    _check_classification(y)
    if y.dtype.kind in _INTEGER_KINDS and classes.dtype.kind in _INTEGER_KINDS:
        # One search finds both the indices and the unseen labels.
        index = np.searchsorted(classes, y)
        found = classes[np.minimum(index, len(classes) - 1)] == y
        if not found.all():
            check_labels(y, classes, hint)
        return index.astype(np.int64, copy=False)
    check_labels(y, classes, hint)
    return np.searchsorted(classes, y).astype(np.int64)


# Integer and bool arrays of one label per sample are class labels whatever
# their values: scikit-learn's type_of_target (several passes over y) is only
# needed for the others, e.g. to refuse continuous floats.
_INTEGER_KINDS = "biu"


def _check_classification(y):
    if y.ndim != 1 or y.dtype.kind not in _INTEGER_KINDS:
        check_classification_targets(y)


def check_labels(labels, classes, hint=""):
    """Refuse labels that are not among the fitted ``classes``.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets._input import check_labels
    >>> check_labels([0, 2], np.array([0, 1]))
    Traceback (most recent call last):
    ...
    ValueError: y contains labels not seen at fit: [2]; known classes are [0, 1].
    """
    labels = np.asarray(labels)
    try:
        unseen = ~np.isin(labels, classes)
    except TypeError:  # labels of a type that cannot be compared with the classes
        unseen = np.ones(labels.shape, dtype=bool)
    if unseen.any():
        unseen = sorted(set(labels[unseen].tolist()), key=str)
        raise ValueError(
            f"y contains labels not seen at fit: {unseen}; "
            f"known classes are {classes.tolist()}.{hint}"
        )


def _labels(y):
    y = np.asarray(y)
    return y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y


def encode_labels(estimator, y, reset, classes=None):
    """:func:`fit_labels` and :func:`label_index` for an estimator's ``classes_``.

    Sets ``estimator.classes_`` when ``reset``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from sknets._input import encode_labels
    >>> clf = SimpleNamespace()
    >>> encode_labels(clf, ["b", "a", "b"], reset=True), clf.classes_.tolist()
    (array([1, 0, 1]), ['a', 'b'])
    """
    if reset:
        estimator.classes_ = fit_labels(y, classes)
    return label_index(y, estimator.classes_)


def stratify_labels(index):
    """``index`` if every class in it has at least two samples (stratifiable), else None.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets._input import stratify_labels
    >>> stratify_labels(np.array([0, 0, 1])) is None
    True
    """
    counts = np.bincount(index)
    return index if counts[counts > 0].min() >= 2 else None


def fit_outputs(y):
    """The target state of a regressor trained on ``y``: its number of outputs, and
    whether predictions are returned 1-D.

    Examples
    --------
    >>> from sknets._input import fit_outputs
    >>> fit_outputs([1.0, 2.0])
    {'n_outputs_': 1, '_y_1d': True}
    """
    y = np.asarray(y)
    return {"n_outputs_": 1 if y.ndim == 1 else y.shape[1], "_y_1d": y.ndim == 1}


def output_matrix(y, n_outputs, name="the estimator", dtype=np.float32):
    """Regression targets as a matrix of ``dtype`` of shape (n_samples, n_outputs).

    Examples
    --------
    >>> from sknets._input import output_matrix
    >>> output_matrix([1, 2], n_outputs=1).shape
    (2, 1)
    """
    y = as_float(y, dtype, "y")
    y = y.reshape(len(y), -1)
    if y.shape[1] != n_outputs:
        raise ValueError(
            f"y has {y.shape[1]} outputs, but {name} was fitted with {n_outputs}."
        )
    return y


def encode_outputs(estimator, y, reset, dtype):
    """:func:`fit_outputs` and :func:`output_matrix` for an estimator's ``n_outputs_``.

    Sets ``estimator.n_outputs_`` and ``estimator._y_1d`` when ``reset``.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from sknets._input import encode_outputs
    >>> reg = SimpleNamespace()
    >>> encode_outputs(reg, [1, 2], reset=True, dtype=np.float32).shape, reg.n_outputs_
    ((2, 1), 1)
    """
    if reset:
        vars(estimator).update(fit_outputs(y))
    return output_matrix(y, estimator.n_outputs_, type(estimator).__name__, dtype)

"""Input rules every sknets estimator shares, and where they are enforced.

scikit-learn's ``validate_data`` checks what it can, in ``BaseNetwork`` (at
fit and at predict), with scikit-learn's own messages: NaN and infinity,
empty and 3-D arrays, sparse matrices (refused: ``TypeError`` asking for
``.toarray()``), complex numbers, the feature count and feature names at
predict; object arrays of numbers are converted. The estimators check their
targets (one class only, labels unseen at fit, mixed label types).

What only a float32 network can get wrong is checked here, at the boundary
every array crosses on its way into torch:

* finite numbers beyond float32's range (``|x| > 3.4e38``) would become
  infinity when converted; :func:`as_float` refuses them;
* inputs of large magnitude can overflow inside the network even when they
  fit in float32; :func:`check_finite_outputs` refuses outputs that are not
  finite instead of returning NaN predictions.
"""

import numpy as np
import torch

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
    >>> from sknets._validation import as_float
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

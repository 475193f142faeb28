"""Saving fitted estimators to a file whose loading cannot execute code.

``estimator.save(path)`` writes, and :func:`load` reads, one zip archive of
``model.json`` and ``weights.safetensors`` (the format is described in
``sknets._archive`` and ``docs/persistence.md``). The file holds the
parameters the network was trained with, not those of a later
``set_params``, so the loaded estimator predicts exactly as the saved one.

Loading reads JSON and safetensors only, never pickle, and checks everything
before the network is built: the archive's members and their sizes, every
field of the JSON document, the parameters against the estimator's own
constraints, and the names, shapes and dtypes of the tensors against the
network those parameters describe. Anything else is refused with a
``ValueError`` naming what is wrong.

This module reads and writes an estimator's state only through
``_get_fitted_state`` / ``_set_fitted_state``; the estimators never import it.
"""

import os

import joblib

from . import _archive, _params
from ._base import FittedState, _draw_seed
from .autoencoder import AutoencoderTransformer
from .mlp import MLPClassifier, MLPRegressor

# The estimators a model file may name: the only classes load() builds.
SAVABLE = (MLPClassifier, MLPRegressor, AutoencoderTransformer)


def save(estimator, path):
    """Write a fitted sknets estimator to ``path``; the same as ``estimator.save(path)``.

    Parameters
    ----------
    estimator : MLPClassifier, MLPRegressor or AutoencoderTransformer, fitted
    path : str, path-like or binary file object

    Raises
    ------
    ValueError
        If ``estimator`` is not one of :data:`SAVABLE` (a subclass, say).

    Examples
    --------
    >>> import io
    >>> from sklearn.datasets import load_iris
    >>> from sknets import MLPClassifier
    >>> from sknets.persistence import save
    >>> X, y = load_iris(return_X_y=True)
    >>> save(MLPClassifier((4,), max_epochs=2).fit(X, y), io.BytesIO())
    """
    if type(estimator) not in SAVABLE:
        raise ValueError(
            f"Only sknets' own estimators can be saved with save(); got "
            f"{type(estimator).__module__}.{type(estimator).__qualname__}. Use pickle for "
            "subclasses (see docs/persistence.md).")
    estimator.save(path)


def load(path, *, device=None):
    """Read an estimator written by ``estimator.save(path)``.

    Nothing in the file is executed: it is read as JSON and safetensors only,
    and checked in full before the network is built (see the module's
    documentation and ``docs/persistence.md``). The estimator returned
    predicts exactly as the one saved.

    Parameters
    ----------
    path : str, path-like or binary file object
    device : str, default=None
        Torch device to load the network onto, replacing the saved
        ``device`` parameter (a model trained on "cuda" loads on a machine
        without a GPU with ``device="cpu"``).

    Returns
    -------
    estimator : fitted sknets estimator

    Raises
    ------
    ValueError
        If the file is not a model that this sknets wrote or can read:
        the message names what is wrong (an unexpected archive member, a
        field of the wrong type, a parameter out of range, a tensor of the
        wrong shape...).

    Examples
    --------
    >>> import io
    >>> import sknets
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = sknets.MLPRegressor((8,), max_epochs=5, random_state=0).fit(X, y)
    >>> buffer = io.BytesIO()
    >>> clf.save(buffer)
    >>> _ = buffer.seek(0)
    >>> restored = sknets.load(buffer)
    >>> (restored.predict(X) == clf.predict(X)).all()
    np.True_
    """
    source = repr(os.fspath(path)) if not hasattr(path, "read") else "the file"
    try:
        with _archive.ModelFile(path) as file:
            estimator, state, spec = _estimator_from(file, device)
            weights = file.weights(spec)
    except _archive.Refused as error:
        raise ValueError(f"Refusing to load {source} as a sknets model: {error}") from None
    estimator._set_fitted_state(state, weights)
    return estimator


def _estimator_from(file, device):
    """The estimator ``file`` describes, its fitted state (without a net) and its tensors.

    The sizes the document declares are checked against the file before
    anything of those sizes is built: the labels against the size of
    ``model.json``, the network's tensors against the weights member.
    """
    document = file.document
    classes = {cls.__name__: cls for cls in SAVABLE}
    name = document["estimator"]
    if not isinstance(name, str) or name not in classes:
        raise _archive.Refused(f"estimator must be one of {sorted(classes)}; got {name!r}")
    cls = classes[name]
    saved = {key for key in cls().get_params(deep=False) if key not in cls._unsaved_params}
    params = _archive.decode_params(document["params"], name, saved)
    if device is not None:
        params["device"] = device
    estimator = cls(**params)
    try:
        _params.validate_params(estimator)
    except ValueError as exc:
        raise _archive.Refused(str(exc)) from None
    if estimator.n_threads is not None and estimator.n_threads > joblib.cpu_count():
        # A file's thread count is a wish of the machine that wrote it, capped by this one's.
        estimator.set_params(n_threads=joblib.cpu_count())
    fitted, names_in, targets, tables = _archive.decode_fitted(
        document["fitted"], cls._target_attributes, file.model_bytes)
    if tables is not None and not cls._table_input:
        raise _archive.Refused(f"{name} does not encode tables, but fitted.tables is given")
    columns = list(estimator._history_columns().values())
    _archive.check_history(document["history"], columns, fitted["n_epochs_"],
                           fitted["best_epoch_"])
    state = FittedState(
        params=estimator.get_params(deep=False), n_features_in=fitted["n_features_in_"],
        feature_names_in=names_in, targets=targets, history=None,
        best_epoch=fitted["best_epoch_"], fit_seconds=fitted["fit_seconds_"], net=None,
        seed=_draw_seed(estimator.random_state), tables=tables)
    try:
        spec = estimator._weights_spec(state)
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:  # cannot work (here)
        raise _archive.Refused(str(exc)) from None
    file.check_weights_size(spec)
    if tables is not None:  # encoded only now that the sizes it implies are known to fit
        try:
            tables.build()
        except ValueError as exc:
            raise _archive.Refused(f"fitted.{exc}") from None
    state.history = estimator._history_frame(
        [{key: _archive.decode_float(record[key]) if key != "epoch" else record[key]
          for key in columns} for record in document["history"]])
    return estimator, state, spec


__all__ = ["SAVABLE", "load", "save"]

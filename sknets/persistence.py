"""Saving fitted estimators to a file whose loading cannot execute code.

``estimator.save(path)`` writes, and :func:`load` reads, one zip archive
holding exactly two members:

``model.json``
    UTF-8 JSON: the format and its version, the estimator's class name, its
    ``get_params()``, the fitted state that prediction needs
    (``n_features_in_``, ``feature_names_in_``, ``classes_`` with its dtype,
    ``n_outputs_``, ``best_epoch_``, ``n_epochs_``, ``fit_seconds_``), the
    ``history_`` records and the versions of the libraries that wrote it.
``weights.safetensors``
    The module's ``state_dict`` (parameters and batch-norm buffers) in the
    safetensors format.

Loading reads JSON and safetensors only, never pickle, and checks everything
before the network is built: the archive's members and their sizes, every
field of the JSON document, the parameters against the estimator's own
constraints, and the names, shapes and dtypes of the tensors against the
network those parameters describe. Anything else is refused with a
``ValueError`` naming what is wrong. See ``docs/persistence.md``.
"""

import json
import os
import re
import zipfile
from collections import Counter
from numbers import Integral, Real

import numpy as np
import safetensors
import safetensors.torch
import torch
from sklearn.base import is_classifier, is_regressor
from sklearn.utils.validation import check_is_fitted

from . import _params
from ._version import library_versions
from ._engine.resources import resolve_device as _resolve_device

FORMAT = "sknets-model"
FORMAT_VERSION = 1
MODEL = "model.json"
WEIGHTS = "weights.safetensors"
MAX_MODEL_BYTES = 16 * 2**20
# Longest list a parameter may hold (hidden_layers has one entry per layer).
MAX_PARAM_ITEMS = 4096
# Room for the safetensors header beyond the bytes of the tensors themselves.
_HEADER_ALLOWANCE = 2**16
_HEADER_PER_TENSOR = 512
_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so that one model always gives the same bytes
_CLASS_DTYPES = re.compile(r"[<>|=]?(?:[iu][1248]|b1|f[248]|U[1-9][0-9]{0,5}|O)")
_OPTIONAL_FITTED = {"feature_names_in_"}
_LABEL_TYPES = {"i": int, "u": int, "b": bool, "f": (int, float), "U": str,
                "O": (str, int, float, bool)}


class _Refused(ValueError):
    """A model file that ``load`` will not read (what is wrong is the message)."""


def save(estimator, path):
    """Write a fitted sknets estimator to ``path`` (see :meth:`BaseNetwork.save`).

    Parameters
    ----------
    estimator : fitted sknets estimator
    path : str, path-like or binary file object
        A path is written atomically: a crash leaves any previous file intact.

    Raises
    ------
    ValueError
        If ``estimator`` is not one of sknets' own classes, or a parameter
        has no JSON form (a ``RandomState`` as ``random_state``, say).
    """
    check_is_fitted(estimator)
    name = type(estimator).__name__
    if _estimator_classes().get(name) is not type(estimator):
        raise ValueError(
            f"Only sknets' own estimators can be saved with save(); got "
            f"{type(estimator).__module__}.{type(estimator).__qualname__}. Use pickle for "
            "subclasses (see docs/persistence.md)."
        )
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": name,
        "params": {key: _encode_param(key, value)
                   for key, value in estimator.get_params(deep=False).items()},
        "fitted": _encode_fitted(estimator),
        "history": [{key: _encode_float(value) if key != "epoch" else int(value)
                     for key, value in record.items()}
                    for record in estimator.history_.to_dict("records")],
        "versions": library_versions(),
    }
    model = json.dumps(document, indent=1, allow_nan=False).encode("utf-8")
    weights = safetensors.torch.save({key: tensor.detach().cpu().contiguous()
                                      for key, tensor in estimator.module_.state_dict().items()})
    if hasattr(path, "write"):
        _write_zip(path, model, weights)
        return
    path = os.fspath(path)
    partial = f"{path}.{os.getpid()}.partial"
    try:
        with open(partial, "xb") as file:
            _write_zip(file, model, weights)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


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
        return _load(path, device)
    except _Refused as error:
        raise ValueError(f"Refusing to load {source} as a sknets model: {error}") from None


# --- writing ----------------------------------------------------------------------


def _write_zip(file, model, weights):
    with zipfile.ZipFile(file, "w") as archive:
        for name, data, compression in ((MODEL, model, zipfile.ZIP_DEFLATED),
                                        (WEIGHTS, weights, zipfile.ZIP_STORED)):
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def _encode_param(name, value):
    """A parameter's value in JSON; tuples and dicts are tagged to come back as such."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (Integral, np.integer)):
        return int(value)
    if isinstance(value, (Real, np.floating)) and np.isfinite(value):
        return float(value)
    if isinstance(value, (tuple, list)):
        items = [_encode_param(name, item) for item in value]
        return {"tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {"dict": [[_encode_param(name, k), _encode_param(name, v)]
                         for k, v in value.items()]}
    raise ValueError(
        f"Cannot save the {name!r} parameter: {value!r} has no JSON form (save() keeps "
        "None, bools, finite numbers, strings, and tuples, lists and dicts of them). "
        "Set it to such a value first (an int random_state, say) or use pickle."
    )


def _encode_float(value):
    value = float(value)
    if np.isnan(value):
        return None
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _encode_fitted(estimator):
    fitted = {name: getattr(estimator, name)
              for name in sorted(_fitted_names(estimator) | _OPTIONAL_FITTED)
              if hasattr(estimator, name)}
    if "feature_names_in_" in fitted:
        fitted["feature_names_in_"] = [str(n) for n in fitted["feature_names_in_"]]
    if "classes_" in fitted:
        classes = fitted["classes_"]
        values = [v.item() if isinstance(v, np.generic) else v for v in classes.tolist()]
        fitted["classes_"] = {"dtype": classes.dtype.str, "values": values}
    for name in ("n_features_in_", "n_outputs_", "best_epoch_", "n_epochs_"):
        if name in fitted:
            fitted[name] = int(fitted[name])
    fitted["fit_seconds_"] = float(fitted["fit_seconds_"])
    if "_y_1d" in fitted:
        fitted["_y_1d"] = bool(fitted["_y_1d"])
    return fitted


# --- reading ----------------------------------------------------------------------


def _load(path, device):
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise _Refused(f"it is not a zip archive ({exc})") from None
    with archive:
        infos = {info.filename: info for info in _check_members(archive)}
        document = _parse_json(_read(archive, infos[MODEL], MAX_MODEL_BYTES))
        estimator = _estimator_from(document, device)
        try:
            spec = _expected_tensors(estimator)
        except ValueError as exc:  # parameters that cannot work together
            raise _Refused(str(exc)) from None
        n_bytes = sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in spec.values())
        limit = n_bytes + _HEADER_ALLOWANCE + _HEADER_PER_TENSOR * len(spec)
        tensors = _parse_weights(_read(archive, infos[WEIGHTS], limit), spec)
    module = estimator._rebuild(estimator.n_features_in_)
    module.load_state_dict(tensors, strict=True)
    _restore_history(estimator, document["history"])
    estimator.best_epoch_ = document["fitted"]["best_epoch_"]
    estimator.fit_seconds_ = document["fitted"]["fit_seconds_"]
    return estimator


def _check_members(archive):
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if sorted(names) != sorted([MODEL, WEIGHTS]):
        unexpected = sorted(set(names) - {MODEL, WEIGHTS})
        repeated = sorted(n for n, count in Counter(names).items() if count > 1)
        missing = sorted({MODEL, WEIGHTS} - set(names))
        raise _Refused(
            f"the archive must hold exactly {MODEL!r} and {WEIGHTS!r}; it has "
            + "; ".join(part for part in (
                unexpected and f"unexpected members {unexpected}",
                repeated and f"repeated members {repeated}",
                missing and f"no {missing}") if part)
        )
    for info in infos:
        if info.flag_bits & 0x1:
            raise _Refused(f"{info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(f"{info.filename!r} uses compression method {info.compress_type}; "
                           "only stored and deflated members are read")
    return infos


def _read(archive, info, limit):
    """A member's bytes, refusing more than ``limit`` (declared or actual)."""
    if info.file_size > limit:
        raise _Refused(f"{info.filename!r} is {info.file_size} bytes, more than the "
                       f"{limit} it may hold")
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:  # bad CRC, truncated data
        raise _Refused(f"{info.filename!r} is corrupt ({exc})") from None
    if len(data) > limit:
        raise _Refused(f"{info.filename!r} holds more than the {limit} bytes it may hold")
    return data


def _parse_json(data):
    def no_duplicates(pairs):
        repeated = sorted(key for key, count in Counter(k for k, _ in pairs).items() if count > 1)
        if repeated:
            raise _Refused(f"{MODEL} repeats keys {repeated}")
        return dict(pairs)

    def no_constant(token):
        raise _Refused(f"{MODEL} contains {token}, which is not JSON")

    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates,
                              parse_constant=no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _Refused(f"{MODEL} is not UTF-8 JSON ({type(exc).__name__}: {exc})") from None
    _expect_keys(document, {"format", "format_version", "estimator", "params", "fitted",
                            "history", "versions"}, MODEL)
    if document["format"] != FORMAT:
        raise _Refused(f"its format is {document['format']!r}, not {FORMAT!r}")
    version = document["format_version"]
    if not _is_int(version) or version < 1:
        raise _Refused(f"format_version must be a positive int; got {version!r}")
    if version > FORMAT_VERSION:
        raise _Refused(f"it is in format version {version}, newer than this sknets reads "
                       f"({FORMAT_VERSION}); upgrade sknets")
    versions = document["versions"]
    if not (isinstance(versions, dict) and len(versions) <= 64
            and all(isinstance(v, str) for v in versions.values())):
        raise _Refused("versions must map library names to version strings")
    return document


def _estimator_from(document, device):
    """The estimator the document describes, its parameters and fitted state checked."""
    classes = _estimator_classes()
    name = document["estimator"]
    if not isinstance(name, str) or name not in classes:
        raise _Refused(f"estimator must be one of {sorted(classes)}; got {name!r}")
    cls = classes[name]
    params = document["params"]
    if not isinstance(params, dict):
        raise _Refused("params must be a JSON object")
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise _Refused(f"{name} has no parameters {unknown}")
    values = {key: _decode_param(key, value) for key, value in params.items()}
    if device is not None:
        values["device"] = device
    estimator = cls(**values)
    try:
        _params.validate_params(estimator)
        torch.device(_resolve_device(estimator.device))
    except (ValueError, RuntimeError) as exc:
        raise _Refused(str(exc)) from None
    fitted = document["fitted"]
    _set_fitted(estimator, fitted)
    _check_history(document["history"], list(estimator._history_columns().values()),
                   fitted["n_epochs_"], fitted["best_epoch_"])
    return estimator


def _decode_param(name, value, depth=0):
    if depth > 8:
        raise _Refused(f"the {name!r} parameter is nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        if len(value) > MAX_PARAM_ITEMS:
            raise _Refused(f"the {name!r} parameter has {len(value)} items; at most "
                           f"{MAX_PARAM_ITEMS} are read")
        return [_decode_param(name, item, depth + 1) for item in value]
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_decode_param(name, value["tuple"], depth + 1))
    if isinstance(value, dict) and set(value) == {"dict"} and isinstance(value["dict"], list):
        pairs = _decode_param(name, value["dict"], depth + 1)
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], (bool, int, float, str))
                   for p in pairs):
            raise _Refused(f"the {name!r} parameter's dict must be a list of [key, value] pairs "
                           "with scalar keys")
        return dict(pairs)
    raise _Refused(f"the {name!r} parameter has an unreadable value {value!r}")


def _fitted_names(estimator):
    """Fitted attributes that model.json must hold for ``estimator``'s kind."""
    required = {"n_features_in_", "best_epoch_", "n_epochs_", "fit_seconds_"}
    if is_classifier(estimator):
        required |= {"classes_"}
    if is_regressor(estimator):
        required |= {"n_outputs_", "_y_1d"}
    return required


def _set_fitted(estimator, fitted):
    _expect_keys(fitted, _fitted_names(estimator), "fitted", optional=_OPTIONAL_FITTED)
    for name in ("n_features_in_", "n_outputs_"):
        if name in fitted and not (_is_int(fitted[name]) and fitted[name] >= 1):
            raise _Refused(f"fitted.{name} must be a positive int; got {fitted[name]!r}")
    for name in ("best_epoch_", "n_epochs_"):
        if not (_is_int(fitted[name]) and fitted[name] >= 0):
            raise _Refused(f"fitted.{name} must be an int >= 0; got {fitted[name]!r}")
    seconds = fitted["fit_seconds_"]
    if not (_is_number(seconds) and 0 <= seconds < float("inf")):
        raise _Refused(f"fitted.fit_seconds_ must be a number >= 0; got {seconds!r}")
    estimator.n_features_in_ = fitted["n_features_in_"]
    if "feature_names_in_" in fitted:
        names_in = fitted["feature_names_in_"]
        if not (isinstance(names_in, list) and all(isinstance(n, str) for n in names_in)
                and len(names_in) == estimator.n_features_in_):
            raise _Refused(f"fitted.feature_names_in_ must be {estimator.n_features_in_} strings")
        estimator.feature_names_in_ = np.asarray(names_in, dtype=object)
    if "classes_" in fitted:
        estimator.classes_ = _decode_classes(fitted["classes_"])
    if "n_outputs_" in fitted:
        if not isinstance(fitted["_y_1d"], bool) or (fitted["_y_1d"] and fitted["n_outputs_"] != 1):
            raise _Refused("fitted._y_1d must be a bool, and true only with n_outputs_ = 1")
        estimator.n_outputs_ = fitted["n_outputs_"]
        estimator._y_1d = fitted["_y_1d"]


def _decode_classes(encoded):
    _expect_keys(encoded, {"dtype", "values"}, "fitted.classes_")
    dtype, values = encoded["dtype"], encoded["values"]
    if not (isinstance(dtype, str) and _CLASS_DTYPES.fullmatch(dtype)):
        raise _Refused(f"fitted.classes_ has dtype {dtype!r}; sknets saves bool, int, float, "
                       "str and object labels only")
    dtype = np.dtype(dtype)
    kind = _LABEL_TYPES[dtype.kind]
    if not (isinstance(values, list) and len(values) >= 2
            and all(isinstance(v, kind) and (dtype.kind in "bO" or not isinstance(v, bool))
                    for v in values)):
        raise _Refused(f"fitted.classes_ must list at least 2 labels of dtype {dtype}")
    if dtype.kind == "U" and max(len(v) for v in values) > dtype.itemsize // 4:
        raise _Refused(f"fitted.classes_ has labels longer than its dtype {dtype} holds")
    try:
        if dtype.kind == "O":
            classes = np.empty(len(values), dtype=object)
            classes[:] = values
        else:
            classes = np.array(values, dtype=dtype)
        ordered = np.array_equal(np.unique(classes), classes)
    except (OverflowError, TypeError, ValueError):
        ordered = False
    if not ordered:
        raise _Refused(f"fitted.classes_ must be sorted, distinct labels of dtype {dtype}")
    return classes


def _check_history(history, columns, n_epochs, best_epoch):
    if not (isinstance(history, list) and len(history) == n_epochs):
        raise _Refused(f"history must be a list of n_epochs_ = {n_epochs} records")
    if best_epoch > n_epochs:
        raise _Refused(f"fitted.best_epoch_ = {best_epoch} is beyond n_epochs_ = {n_epochs}")
    for number, record in enumerate(history, 1):
        _expect_keys(record, set(columns), f"history record {number}")
        if not (_is_int(record["epoch"]) and record["epoch"] == number):
            raise _Refused(f"history record {number} has epoch {record['epoch']!r}")
        if not (_is_number(record["seconds"]) and record["seconds"] >= 0):
            raise _Refused(f"history record {number} has seconds={record['seconds']!r}")
        for key in columns:
            value = record[key]
            if not (value is None or value in ("inf", "-inf") or _is_number(value)):
                raise _Refused(f"history record {number} has {key}={value!r}")


def _restore_history(estimator, history):
    """Fill the net's history from the records, then set ``history_`` from it."""
    net_keys = {column: key for key, column in estimator._history_columns().items()}
    net = estimator.net_
    for record in history:
        net.history.new_epoch()
        for column, value in record.items():
            if value is not None:
                net.history.record(net_keys[column],
                                   value if column == "epoch" else float(value))
    # What the first learning-rate scheduler would have set: a warm-started
    # fit resumes its schedule at epoch len(history).
    for group in net.optimizer_.param_groups:
        group.setdefault("initial_lr", group["lr"])
    estimator._after_fit()


def _expected_tensors(estimator):
    """{name: (shape, dtype)} of the network the parameters describe, built without memory."""
    with torch.device("meta"):
        module = estimator._build_module(estimator.n_features_in_)
    return {key: (tuple(t.shape), t.dtype) for key, t in module.state_dict().items()}


def _parse_weights(data, spec):
    try:
        tensors = safetensors.torch.load(data)
    except safetensors.SafetensorError as exc:
        raise _Refused(f"{WEIGHTS} is not a safetensors file ({exc})") from None
    missing, unexpected = sorted(set(spec) - set(tensors)), sorted(set(tensors) - set(spec))
    if missing or unexpected:
        raise _Refused(f"{WEIGHTS} does not match the network of model.json: missing tensors "
                       f"{missing}, unexpected tensors {unexpected}")
    for key, (shape, dtype) in spec.items():
        tensor = tensors[key]
        if tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise _Refused(
                f"tensor {key!r} in {WEIGHTS} is {tensor.dtype} of shape {tuple(tensor.shape)}; "
                f"the network of model.json needs {dtype} of shape {shape}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise _Refused(f"tensor {key!r} in {WEIGHTS} holds NaN or infinity")
    return tensors


def _expect_keys(mapping, required, where, optional=frozenset()):
    if not isinstance(mapping, dict):
        raise _Refused(f"{where} must be a JSON object")
    missing = sorted(required - set(mapping))
    unexpected = sorted(set(mapping) - required - set(optional))
    if missing or unexpected:
        raise _Refused(f"{where} lacks {missing} / has unexpected {unexpected}"
                       if missing and unexpected else
                       f"{where} lacks {missing}" if missing else
                       f"{where} has unexpected keys {unexpected}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _estimator_classes():
    """{name: class} of the estimators sknets exports: the only ones ``load`` builds."""
    import sknets

    from ._base import BaseNetwork

    return {name: obj for name in sknets.__all__
            if isinstance(obj := getattr(sknets, name), type) and issubclass(obj, BaseNetwork)}


__all__ = ["load", "save"]

"""The model file: a zip of ``model.json`` and ``weights.safetensors``, written and read safely.

This module knows the container and its checks, not the estimators:
``BaseNetwork.save`` writes through :func:`write_model`, and
:func:`sknets.load` reads through :class:`ModelFile`.

``model.json``
    UTF-8 JSON: the format and its version, the estimator's class name, the
    parameters the network was trained with, the fitted state that
    prediction needs (``n_features_in_``, ``feature_names_in_``, the target
    state such as ``classes_`` with its dtype, ``best_epoch_``,
    ``n_epochs_``, ``fit_seconds_``), what the estimator learned about the
    columns of a table (``tables``: medians, means and scales of the numeric
    columns, which have missing indicators, the categories of each
    categorical column and how it is encoded; see
    ``sknets._input.tables.TableEncoder.to_data``), the ``history_``
    records and the versions of the libraries that wrote it.
``weights.safetensors``
    The module's ``state_dict`` (parameters and batch-norm buffers) in the
    safetensors format.

Reading uses JSON and safetensors only, never pickle, and bounds every
read: the archive's members and their sizes, every field of the JSON
document, and the names, shapes and dtypes of the tensors against the
network the document describes, before any of it is built. Every size the
document declares is checked against what the file holds before anything of
that size is allocated: the labels' array against the size of
``model.json``, the network's tensors against the stored (never compressed)
weights member. Anything else is refused with :class:`Refused`, a
``ValueError`` naming what is wrong.
"""

import json
import math
import os
import re
import secrets
import zipfile
import zlib
from collections import Counter
from numbers import Integral, Real

import numpy as np
import safetensors
import safetensors.torch
import torch

from ._input import TableEncoder
from ._version import library_versions

FORMAT = "sknets-model"
FORMAT_VERSION = 1
MODEL = "model.json"
WEIGHTS = "weights.safetensors"
MAX_MODEL_BYTES = 16 * 2**20
# The labels' NumPy array may take this many times the bytes of model.json,
# or MIN_LABEL_BYTES, whichever is larger: a str dtype far wider than its
# labels (``<U999999``) is refused before the array is allocated.
LABEL_BYTES_PER_MODEL_BYTE = 16
MIN_LABEL_BYTES = 2**20
# Longest list a parameter may hold (hidden_layers has one entry per layer).
MAX_PARAM_ITEMS = 4096
# Room for the safetensors header beyond the bytes of the tensors themselves.
_HEADER_ALLOWANCE = 2**16
_HEADER_PER_TENSOR = 512
_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so that one model always gives the same bytes
_CLASS_DTYPES = re.compile(r"[<>|=]?(?:[iu][1248]|b1|f[248]|U[1-9][0-9]{0,5}|O)")
_LABEL_TYPES = {"i": int, "u": int, "b": bool, "f": (int, float), "U": str,
                "O": (str, int, float, bool)}


# Fitted attributes every model file holds; the target state's depend on the estimator.
FITTED = ("n_features_in_", "best_epoch_", "n_epochs_", "fit_seconds_")
OPTIONAL_FITTED = ("feature_names_in_", "tables")
# Target-state attributes a model file holds only when they are set: a
# classifier trained on a multi-label indicator matrix has ``_multilabel``.
OPTIONAL_TARGETS = {"classes_": ("_multilabel",)}


class Refused(ValueError):
    """A model file that ``load`` will not read (what is wrong is the message)."""


def write_model(path, estimator_name, state, history_columns):
    """Write a fitted state to ``path`` as a model file.

    Parameters
    ----------
    path : str, path-like or binary file object
        A path is written atomically: a crash leaves any previous file intact.
    estimator_name : str
        The class that :func:`sknets.load` will build.
    state : sknets._base.FittedState
    history_columns : iterable of str
        The columns of ``state.history`` to write.

    Raises
    ------
    ValueError
        If a parameter has no JSON form.
    """
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": estimator_name,
        "params": {key: _encode_param(key, value) for key, value in state.params.items()},
        "fitted": _encode_fitted(state),
        "history": [{key: _encode_float(record[key]) if key != "epoch" else int(record[key])
                     for key in history_columns}
                    for record in state.history.to_dict("records")],
        "versions": library_versions(),
    }
    model = json.dumps(document, indent=1, allow_nan=False).encode("utf-8")
    classes = state.targets.get("classes_")
    if classes is not None:
        try:
            _check_label_bytes(classes.tolist(), classes.dtype, len(model))
        except Refused as exc:
            raise ValueError(f"Cannot save classes_: {exc}. Fit with y as an object array "
                             "of str (y.astype(object)) to save such labels.") from None
    weights = safetensors.torch.save(state.weights())
    if hasattr(path, "write"):
        _write_zip(path, model, weights)
        return
    _write_atomically(os.fspath(path), model, weights)


def _write_atomically(path, model, weights):
    """Write the zip to a new file next to ``path``, then rename it over ``path``.

    Each call has its own temporary file, so concurrent saves to one path
    all succeed (the last rename wins) and a crash leaves the previous file
    intact. The file keeps the permission bits of the one it replaces; a new
    file gets the usual ``0o666`` less the umask.
    """
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    folder, name = os.path.split(path)
    # Not tempfile.mkstemp: it creates the file 0o600 whatever the umask.
    partial = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            if mode is not None:
                os.chmod(partial, mode)
            _write_zip(file, model, weights)
        os.replace(partial, path)
    except BaseException:
        os.remove(partial)
        raise


def _encode_fitted(state):
    fitted = {"n_features_in_": int(state.n_features_in), "best_epoch_": int(state.best_epoch),
              "n_epochs_": int(state.n_epochs), "fit_seconds_": float(state.fit_seconds)}
    if state.feature_names_in is not None:
        fitted["feature_names_in_"] = [str(n) for n in state.feature_names_in]
    for name, value in state.targets.items():
        fitted[name] = _ENCODE_TARGET[name](value)
    if state.tables is not None:
        fitted["tables"] = state.tables.to_data()
    return fitted


def _encode_classes(classes):
    values = [v.item() if isinstance(v, np.generic) else v for v in classes.tolist()]
    if classes.dtype.kind == "O" and not all(isinstance(v, str) for v in values):
        raise ValueError(
            "Cannot save classes_: object labels are saved when they are all str; got "
            f"{sorted({type(v).__name__ for v in values})}. Fit with labels of one NumPy "
            "dtype (bool, int, float or str) to save the model, or use pickle.")
    return {"dtype": classes.dtype.str, "values": values}


_ENCODE_TARGET = {"classes_": _encode_classes, "n_outputs_": int, "_y_1d": bool,
                  "_multilabel": bool}


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


def decode_float(value):
    """A history value as written by :func:`write_model`: None is NaN, "inf" infinity."""
    return float("nan") if value is None else float(value)


class ModelFile:
    """A model file opened for reading: its checked document, then its checked weights.

    Use as a context manager; ``document`` is the parsed ``model.json``
    (format and versions checked), :meth:`weights` reads the tensors.

    Parameters
    ----------
    path : str, path-like or binary file object
    """

    def __init__(self, path):
        try:
            self._archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
            # ValueError: a negative seek from a central directory that lies about its
            # offset; NotImplementedError: a zip version that Python cannot read.
            raise Refused(f"it is not a zip archive ({type(exc).__name__}: {exc})") from None
        try:
            self._infos = {info.filename: info for info in _check_members(self._archive)}
            model = _read(self._archive, self._infos[MODEL], MAX_MODEL_BYTES)
            self.model_bytes = len(model)
            self.document = _parse_json(model)
        except BaseException:
            self._archive.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._archive.close()

    def check_weights_size(self, spec):
        """Refuse a weights member whose size cannot hold the tensors of ``spec``.

        Compares the member's size in the archive (it is stored, so that is
        its real size) with the bytes those tensors need, before anything
        is read.
        """
        size, (low, high) = self._infos[WEIGHTS].file_size, _weights_bounds(spec)
        if size < low:
            raise Refused(f"{WEIGHTS!r} is {size} bytes; the network of {MODEL} needs {low} "
                           f"bytes of tensors ({_describe(spec)})")
        if size > high:
            raise Refused(f"{WEIGHTS!r} is {size} bytes, more than the {high} it may hold "
                           f"for the network of {MODEL} ({_describe(spec)})")

    def weights(self, spec):
        """The tensors, checked against ``spec = {name: (shape, dtype)}``.

        No more bytes are read than those tensors need; the bytes read are
        released once they are parsed, so the tensors returned are the only
        copy (a load peaks at about twice the weights' size).
        """
        self.check_weights_size(spec)
        return _parse_weights(_read(self._archive, self._infos[WEIGHTS],
                                    _weights_bounds(spec)[1]), spec)


def _weights_bounds(spec):
    """(fewest, most) bytes a safetensors file of the tensors of ``spec`` may have."""
    n_bytes = sum(math.prod(shape) * dtype.itemsize for shape, dtype in spec.values())
    return n_bytes, n_bytes + _HEADER_ALLOWANCE + _HEADER_PER_TENSOR * len(spec)


def _describe(spec):
    n_values = sum(math.prod(shape) for shape, _ in spec.values())
    return f"{len(spec)} tensors of {n_values} values in all"


def _check_members(archive):
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if sorted(names) != sorted([MODEL, WEIGHTS]):
        unexpected = sorted(set(names) - {MODEL, WEIGHTS})
        repeated = sorted(n for n, count in Counter(names).items() if count > 1)
        missing = sorted({MODEL, WEIGHTS} - set(names))
        raise Refused(
            f"the archive must hold exactly {MODEL!r} and {WEIGHTS!r}; it has "
            + "; ".join(part for part in (
                unexpected and f"unexpected members {unexpected}",
                repeated and f"repeated members {repeated}",
                missing and f"no {missing}") if part)
        )
    for info in infos:
        if info.flag_bits & 0x1:
            raise Refused(f"{info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Refused(f"{info.filename!r} uses compression method {info.compress_type}; "
                           "only stored and deflated members are read")
    weights = next(info for info in infos if info.filename == WEIGHTS)
    if weights.compress_type != zipfile.ZIP_STORED:
        # Stored, its size in the archive is its real size: no inflation to bound.
        raise Refused(f"{WEIGHTS!r} is compressed (method {weights.compress_type}); sknets "
                       "writes it stored, uncompressed, and reads it only so")
    if weights.compress_size != weights.file_size:
        raise Refused(f"{WEIGHTS!r} is stored but declares {weights.file_size} bytes "
                       f"uncompressed and {weights.compress_size} in the archive")
    return infos


def _read(archive, info, limit):
    """A member's bytes, refusing more than ``limit`` (declared or actual)."""
    if info.file_size > limit:
        raise Refused(f"{info.filename!r} is {info.file_size} bytes, more than the "
                       f"{limit} it may hold")
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError,
            zlib.error) as exc:
        # A bad CRC, truncated data, a header lying about its offset (a negative seek) or
        # asking for a zip version that Python cannot read.
        raise Refused(f"{info.filename!r} is corrupt ({type(exc).__name__}: {exc})") from None
    if len(data) > limit:
        raise Refused(f"{info.filename!r} holds more than the {limit} bytes it may hold")
    return data


def _parse_json(data):
    def no_duplicates(pairs):
        repeated = sorted(key for key, count in Counter(k for k, _ in pairs).items() if count > 1)
        if repeated:
            raise Refused(f"{MODEL} repeats keys {repeated}")
        return dict(pairs)

    def no_constant(token):
        raise Refused(f"{MODEL} contains {token}, which is not JSON")

    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicates,
                              parse_constant=no_constant)
    except Refused:
        raise
    except (ValueError, RecursionError) as exc:  # ValueError: bad UTF-8 or JSON, an int too long
        raise Refused(f"{MODEL} is not UTF-8 JSON ({type(exc).__name__}: {exc})") from None
    _expect_keys(document, {"format", "format_version", "estimator", "params", "fitted",
                            "history", "versions"}, MODEL)
    if document["format"] != FORMAT:
        raise Refused(f"its format is {document['format']!r}, not {FORMAT!r}")
    version = document["format_version"]
    if not _is_int(version) or version < 1:
        raise Refused(f"format_version must be a positive int; got {version!r}")
    if version > FORMAT_VERSION:
        raise Refused(f"it is in format version {version}, newer than this sknets reads "
                       f"({FORMAT_VERSION}); upgrade sknets")
    versions = document["versions"]
    if not (isinstance(versions, dict) and len(versions) <= 64
            and all(isinstance(v, str) for v in versions.values())):
        raise Refused("versions must map library names to version strings")
    return document


def decode_params(params, estimator_name, known):
    """The parameters of ``model.json``, checked to be among the ``known`` names."""
    if not isinstance(params, dict):
        raise Refused("params must be a JSON object")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise Refused(f"{estimator_name} has no parameters {unknown}")
    return {key: _decode_param(key, value) for key, value in params.items()}


def _decode_param(name, value, depth=0):
    if depth > 8:
        raise Refused(f"the {name!r} parameter is nested too deeply")
    if isinstance(value, int) and not -2**63 <= value < 2**64:  # int64 and uint64 labels
        raise Refused(f"the {name!r} parameter holds {value}, beyond the 64-bit integers "
                       "sknets reads")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        if len(value) > MAX_PARAM_ITEMS:
            raise Refused(f"the {name!r} parameter has {len(value)} items; at most "
                           f"{MAX_PARAM_ITEMS} are read")
        return [_decode_param(name, item, depth + 1) for item in value]
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_decode_param(name, value["tuple"], depth + 1))
    if isinstance(value, dict) and set(value) == {"dict"} and isinstance(value["dict"], list):
        pairs = _decode_param(name, value["dict"], depth + 1)
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], (bool, int, float, str))
                   for p in pairs):
            raise Refused(f"the {name!r} parameter's dict must be a list of [key, value] pairs "
                           "with scalar keys")
        return dict(pairs)
    raise Refused(f"the {name!r} parameter has an unreadable value {value!r}")


def decode_fitted(fitted, target_names, model_bytes):
    """The fitted attributes of ``model.json`` as ``(common, feature names, targets, tables)``.

    ``tables`` is the :class:`~sknets._input.TableEncoder` of the file, or None.

    ``target_names`` are the target-state attributes the estimator has;
    ``model_bytes`` is the size of ``model.json``, which bounds the labels' array.
    """
    optional_targets = tuple(name for target in target_names
                             for name in OPTIONAL_TARGETS.get(target, ()))
    _expect_keys(fitted, set(FITTED) | set(target_names), "fitted",
                 optional=OPTIONAL_FITTED + optional_targets)
    n_features = fitted["n_features_in_"]
    if not (_is_int(n_features) and n_features >= 1):
        raise Refused(f"fitted.n_features_in_ must be a positive int; got {n_features!r}")
    for name in ("best_epoch_", "n_epochs_"):
        if not (_is_int(fitted[name]) and fitted[name] >= 0):
            raise Refused(f"fitted.{name} must be an int >= 0; got {fitted[name]!r}")
    seconds = fitted["fit_seconds_"]
    if not (_is_number(seconds) and 0 <= seconds < float("inf")):
        raise Refused(f"fitted.fit_seconds_ must be a number >= 0; got {seconds!r}")
    names_in = None
    if "feature_names_in_" in fitted:
        names_in = fitted["feature_names_in_"]
        if not (isinstance(names_in, list) and all(isinstance(n, str) for n in names_in)
                and len(names_in) == n_features):
            raise Refused(f"fitted.feature_names_in_ must be {n_features} strings")
        names_in = np.asarray(names_in, dtype=object)
    targets = {}
    if "classes_" in target_names:
        targets["classes_"] = _decode_classes(fitted["classes_"], model_bytes)
        if "_multilabel" in fitted:
            classes = targets["classes_"]
            if not (fitted["_multilabel"] is True and classes.dtype.kind in "iu"
                    and np.array_equal(classes, np.arange(len(classes)))):
                raise Refused("fitted._multilabel must be true, with classes_ the label "
                              "indices 0, 1, ..., n_labels - 1")
            targets["_multilabel"] = True
    if "n_outputs_" in target_names:
        n_outputs, y_1d = fitted["n_outputs_"], fitted["_y_1d"]
        if not (_is_int(n_outputs) and n_outputs >= 1):
            raise Refused(f"fitted.n_outputs_ must be a positive int; got {n_outputs!r}")
        if not isinstance(y_1d, bool) or (y_1d and n_outputs != 1):
            raise Refused("fitted._y_1d must be a bool, and true only with n_outputs_ = 1")
        targets.update(n_outputs_=n_outputs, _y_1d=y_1d)
    tables = None
    if "tables" in fitted:
        try:
            tables = TableEncoder.from_data(fitted["tables"])
        except ValueError as exc:
            raise Refused(f"fitted.{exc}") from None
        if tables.n_features != n_features:
            raise Refused(f"fitted.tables describes {tables.n_features} columns; "
                          f"n_features_in_ is {n_features}")
    return fitted, names_in, targets, tables


def _decode_classes(encoded, model_bytes):
    _expect_keys(encoded, {"dtype", "values"}, "fitted.classes_")
    dtype, values = encoded["dtype"], encoded["values"]
    if not (isinstance(dtype, str) and _CLASS_DTYPES.fullmatch(dtype)):
        raise Refused(f"fitted.classes_ has dtype {dtype!r}; sknets saves bool, int, float, "
                       "str and object labels only")
    dtype = np.dtype(dtype)
    kind = _LABEL_TYPES[dtype.kind]
    if not (isinstance(values, list) and len(values) >= 2
            and all(isinstance(v, kind) and (dtype.kind in "bO" or not isinstance(v, bool))
                    for v in values)):
        raise Refused(f"fitted.classes_ must list at least 2 labels of dtype {dtype}")
    if dtype.kind == "U" and max(len(v) for v in values) > dtype.itemsize // 4:
        raise Refused(f"fitted.classes_ has labels longer than its dtype {dtype} holds")
    _check_label_bytes(values, dtype, model_bytes)
    try:
        if dtype.kind == "O":
            classes = np.empty(len(values), dtype=object)
            classes[:] = values
        else:
            classes = np.array(values, dtype=dtype)
        ordered = classes.tolist() == values and np.array_equal(np.unique(classes), classes)
    except (OverflowError, TypeError, ValueError):
        ordered = False
    if not ordered:
        raise Refused(f"fitted.classes_ must be sorted, distinct labels of dtype {dtype} "
                       "(each label exactly representable in it)")
    return classes


def _check_label_bytes(values, dtype, model_bytes):
    """Refuse labels whose array would take more than their file's share of memory."""
    limit = max(MIN_LABEL_BYTES, LABEL_BYTES_PER_MODEL_BYTE * model_bytes)
    n_bytes = len(values) * dtype.itemsize
    if n_bytes > limit:
        longest = (f" (the longest has {max(map(len, values))} characters)"
                   if dtype.kind == "U" else "")
        raise Refused(
            f"fitted.classes_ declares {len(values)} labels of dtype {dtype}{longest}, an array "
            f"of {n_bytes} bytes: more than the {limit} its {MODEL} of {model_bytes} bytes "
            f"may hold (at most {LABEL_BYTES_PER_MODEL_BYTE} times its size, and "
            f"{MIN_LABEL_BYTES} bytes in any case)")


def check_history(history, columns, n_epochs, best_epoch):
    if not (isinstance(history, list) and len(history) == n_epochs):
        raise Refused(f"history must be a list of n_epochs_ = {n_epochs} records")
    if best_epoch > n_epochs:
        raise Refused(f"fitted.best_epoch_ = {best_epoch} is beyond n_epochs_ = {n_epochs}")
    for number, record in enumerate(history, 1):
        _expect_keys(record, set(columns), f"history record {number}")
        if not (_is_int(record["epoch"]) and record["epoch"] == number):
            raise Refused(f"history record {number} has epoch {record['epoch']!r}")
        if not (_is_number(record["seconds"]) and record["seconds"] >= 0):
            raise Refused(f"history record {number} has seconds={record['seconds']!r}")
        for key in columns:
            value = record[key]
            if not (value is None or value in ("inf", "-inf") or _is_number(value)):
                raise Refused(f"history record {number} has {key}={value!r}")


def _parse_weights(data, spec):
    try:
        tensors = safetensors.torch.load(data)
    except safetensors.SafetensorError as exc:
        raise Refused(f"{WEIGHTS} is not a safetensors file ({exc})") from None
    missing, unexpected = sorted(set(spec) - set(tensors)), sorted(set(tensors) - set(spec))
    if missing or unexpected:
        raise Refused(f"{WEIGHTS} does not match the network of model.json: missing tensors "
                       f"{missing}, unexpected tensors {unexpected}")
    for key, (shape, dtype) in spec.items():
        tensor = tensors[key]
        if tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise Refused(
                f"tensor {key!r} in {WEIGHTS} is {tensor.dtype} of shape {tuple(tensor.shape)}; "
                f"the network of model.json needs {dtype} of shape {shape}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise Refused(f"tensor {key!r} in {WEIGHTS} holds NaN or infinity")
        if key.endswith(".running_var") and bool((tensor < 0).any()):
            raise Refused(f"tensor {key!r} in {WEIGHTS} holds negative variances")
    return tensors


def _expect_keys(mapping, required, where, optional=frozenset()):
    if not isinstance(mapping, dict):
        raise Refused(f"{where} must be a JSON object")
    missing = sorted(required - set(mapping))
    unexpected = sorted(set(mapping) - required - set(optional))
    if missing or unexpected:
        raise Refused(f"{where} lacks {missing} / has unexpected {unexpected}"
                       if missing and unexpected else
                       f"{where} lacks {missing}" if missing else
                       f"{where} has unexpected keys {unexpected}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)



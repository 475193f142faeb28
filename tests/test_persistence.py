"""save/load: exact round trips, and refusal of every tampered model file."""

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch
from sklearn.exceptions import NotFittedError

import sknets
from sknets import MLPClassifier, MLPRegressor, load
from sknets._archive import MAX_MODEL_BYTES, MODEL, WEIGHTS

FAST = dict(hidden_layers=(8,), lr=1e-2, max_epochs=4, random_state=0)
_RNG = np.random.RandomState(0)
X = _RNG.normal(size=(60, 3))


def _round_trip(estimator):
    buffer = io.BytesIO()
    estimator.save(buffer)
    buffer.seek(0)
    return load(buffer)


def _assert_same_model(restored, original, X):
    assert type(restored) is type(original)
    assert restored.get_params() == original.get_params()
    for method in ("predict", "predict_proba", "predict_log_proba"):
        if hasattr(original, method):
            expected = getattr(original, method)(X)
            got = getattr(restored, method)(X)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)  # bitwise
    pd.testing.assert_frame_equal(restored.history_, original.history_)
    for name in ("n_features_in_", "best_epoch_", "n_epochs_", "fit_seconds_"):
        assert getattr(restored, name) == getattr(original, name)
    for key, tensor in original.module_.state_dict().items():
        assert torch.equal(restored.module_.state_dict()[key], tensor), key


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "emu"]),
    np.array(["cat", "dog", "emu"], dtype=object),
    np.array([-3, 10, 2**40]),
    np.array([-1.0, 2.0, 1e6]),
    np.array([-1.0, 2.0, 1e6], dtype=np.float32),
    np.array([False, True, True]),
])
def test_classifier_round_trip_is_exact(labels):
    y = labels[np.arange(60) % 3]
    clf = MLPClassifier(**dict(FAST, hidden_layers=(8, 4), batch_norm=True, dropout=0.2))
    clf.fit(X, y, validation_data=(X[:20], y[:20]))
    restored = _round_trip(clf)
    _assert_same_model(restored, clf, X)
    assert restored.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(restored.classes_, clf.classes_)


@pytest.mark.parametrize("y", [X[:, 0] - X[:, 1], np.c_[X[:, 0], X[:, 1] ** 2],
                               (X[:, 0] - X[:, 1]).reshape(-1, 1)])
def test_regressor_round_trip_is_exact(y):
    reg = MLPRegressor(**dict(FAST, early_stopping=True)).fit(X, y)
    restored = _round_trip(reg)
    _assert_same_model(restored, reg, X)
    assert restored.predict(X).shape == reg.predict(X).shape


def test_round_trip_keeps_parameters_types_and_feature_names(tmp_path):
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    y = np.arange(60) % 2
    clf = MLPClassifier(**dict(FAST, hidden_layers=[np.int64(6), 3],
                               class_weight={0: 1.0, 1: 2.5}, lr_schedule="step"))
    clf.fit(frame, y)
    path = tmp_path / "model.sknets"
    clf.save(path)
    restored = load(str(path))
    assert list(restored.get_params()["hidden_layers"]) == [6, 3]
    assert restored.get_params()["class_weight"] == {0: 1.0, 1: 2.5}
    np.testing.assert_array_equal(restored.feature_names_in_, clf.feature_names_in_)
    np.testing.assert_array_equal(restored.predict_proba(frame), clf.predict_proba(frame))
    with pytest.raises(ValueError, match="feature names should match"):
        restored.predict(frame.rename(columns={"a": "z"}))
    assert not list(tmp_path.glob("*.partial"))


def test_saving_twice_gives_the_same_bytes():
    clf = MLPClassifier(**FAST).fit(X, np.arange(60) % 2)
    first, second = io.BytesIO(), io.BytesIO()
    clf.save(first)
    clf.save(second)
    assert first.getvalue() == second.getvalue()


def test_loaded_estimator_trains_on():
    y = np.arange(60) % 3
    clf = MLPClassifier(**dict(FAST, warm_start=True, patience=None)).fit(X, y)
    restored = _round_trip(clf)
    restored.fit(X, y)
    assert restored.history_["epoch"].tolist() == list(range(1, 9))
    assert restored.n_epochs_ == 8


def test_save_refuses_what_has_no_safe_form():
    clf = MLPClassifier(**dict(FAST, random_state=np.random.RandomState(0)))
    with pytest.raises(NotFittedError):
        clf.save(io.BytesIO())
    clf.fit(X, np.arange(60) % 2)
    with pytest.raises(ValueError, match="Cannot save the 'random_state' parameter"):
        clf.save(io.BytesIO())

    class Custom(MLPClassifier):
        pass

    custom = Custom(**FAST).fit(X, np.arange(60) % 2)
    with pytest.raises(ValueError, match="Only sknets' own estimators can be saved"):
        custom.save(io.BytesIO())


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.sknets"
    clf = MLPClassifier(**FAST).fit(X, np.arange(60) % 2)
    clf.save(path)
    before = path.read_bytes()

    def crash(file, model, weights):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("sknets._archive._write_zip", crash)
    with pytest.raises(OSError, match="disk full"):
        clf.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.sknets"]


def test_pickle_still_round_trips():
    clf = MLPClassifier(**FAST).fit(X, np.arange(60) % 2)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X),
                                  clf.predict_proba(X))


# --- tampered files -----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved():
    """(model.json document, weights dict) of a small fitted classifier."""
    clf = MLPClassifier(**dict(FAST, batch_norm=True)).fit(X, np.array(["a", "b", "c"] * 20))
    buffer = io.BytesIO()
    clf.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        document = json.loads(archive.read(MODEL))
        weights = safetensors.torch.load(archive.read(WEIGHTS))
    return document, weights


def _archive(members):
    """A zip of ``members``, a list of (name, bytes): the weights stored, the rest deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data, zipfile.ZIP_STORED if name == WEIGHTS
                             else zipfile.ZIP_DEFLATED)
    buffer.seek(0)
    return buffer


def _model_file(document, weights, extra=()):
    model = document if isinstance(document, bytes) else json.dumps(document).encode()
    if isinstance(weights, dict):
        weights = safetensors.torch.save(weights)
    return _archive([(MODEL, model), (WEIGHTS, weights), *extra])


def _edited(document, path, value):
    """A deep copy of ``document`` with the item at ``path`` set (or deleted if value is ...)."""
    document = json.loads(json.dumps(document))
    *parents, last = path
    target = document
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return document


def test_the_untampered_file_loads(saved):
    document, weights = saved
    clf = load(_model_file(document, weights))
    assert clf.classes_.tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("path, value, message", [
    (["estimator"], "os.system", r"estimator must be one of \[.*'MLPClassifier', "
                                    r"'MLPRegressor'\]; got 'os.system'"),
    (["estimator"], "BaseNetwork", "estimator must be one of"),
    (["estimator"], "MLPRegressor", r"MLPRegressor has no parameters \['class_weight', 'label_smoothing'\]"),
    (["format"], "pickle", "its format is 'pickle'"),
    (["format_version"], 2, "format version 2, newer than this sknets reads"),
    (["format_version"], "1", "format_version must be a positive int"),
    (["versions"], ...,  r"model.json lacks \['versions'\]"),
    (["backdoor"], "x", r"model.json has unexpected keys \['backdoor'\]"),
    (["params", "evil"], 1, r"MLPClassifier has no parameters \['evil'\]"),
    (["params", "activation"], "swish", "'activation' parameter of MLPClassifier must be"),
    (["params", "lr"], -1.0, "'lr' parameter of MLPClassifier must be"),
    (["params", "hidden_layers"], {"tuple": [16]},
     r"tensor '0.weight' in weights.safetensors is torch.float32 of shape \(8, 3\); the "
     r"network of model.json needs torch.float32 of shape \(16, 3\)"),
    (["params", "hidden_layers"], {"tuple": [8] * 5000}, "has 5000 items; at most 4096"),
    (["params", "hidden_layers"], {"code": "__import__('os')"}, "unreadable value"),
    (["params", "hidden_layers"], {"tuple": [2**64]},
     "'hidden_layers' parameter holds 18446744073709551616, beyond the 64-bit integers"),
    (["params", "hidden_layers"], {"tuple": [2**63]}, "Overflow when unpacking"),
    (["params", "hidden_layers"], {"tuple": [2**62, 2**62]}, "overflow"),
    (["params", "device"], "no-such-device", "device"),
    (["fitted", "n_features_in_"], 4, r"shape \(8, 3\); the network of model.json needs "
                                      r"torch.float32 of shape \(8, 4\)"),
    (["fitted", "n_features_in_"], 10**12, r"'weights.safetensors' is \d+ bytes; the network of "
                                           r"model.json needs 32000000000276 bytes of tensors"),
    (["fitted", "n_features_in_"], True, "n_features_in_ must be a positive int"),
    (["fitted", "classes_"], ..., r"fitted lacks \['classes_'\]"),
    (["fitted", "classes_", "values"], ["a", "b", "c", "d"], r"'3.weight'.*shape \(4, 8\)"),
    (["fitted", "classes_", "values"], ["c", "b", "a"], "must be sorted, distinct labels"),
    (["fitted", "classes_", "values"], ["a", "b", "toolong"], "longer than its dtype <U1"),
    (["fitted", "classes_", "dtype"], "V8", "has dtype 'V8'"),
    (["fitted", "classes_", "dtype"], "<i8", "must list at least 2 labels of dtype int64"),
    (["fitted", "feature_names_in_"], ["a"], "must be 3 strings"),
    (["fitted", "n_epochs_"], 3, "history must be a list of n_epochs_ = 3 records"),
    (["fitted", "best_epoch_"], 9, "best_epoch_ = 9 is beyond n_epochs_ = 4"),
    (["fitted", "fit_seconds_"], "fast", "fit_seconds_ must be a number"),
    (["history", 1, "epoch"], 7, "history record 2 has epoch 7"),
    (["history", 0, "train_loss"], "0.5", r"history record 1 has train_loss='0.5'"),
    (["history", 0, "evil"], 1, r"history record 1 has unexpected keys \['evil'\]"),
])
def test_edited_json_is_refused(saved, path, value, message):
    document, weights = saved
    with pytest.raises(ValueError, match="Refusing to load the file as a sknets model: .*"
                                         + message):
        load(_model_file(_edited(document, path, value), weights))


@pytest.mark.parametrize("model, message", [
    (b'{"format": "sknets-model", "format": "other"}', r"repeats keys \['format'\]"),
    (b'{"format": NaN}', "contains NaN, which is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not UTF-8 JSON"),
    (b"\xff\xfe not utf-8", "not UTF-8 JSON"),
    (b"[]", "model.json must be a JSON object"),
    (b'{"format": ' + b"9" * 5000 + b"}", r"not UTF-8 JSON \(ValueError: Exceeds the limit"),
])
def test_malformed_json_is_refused(saved, model, message):
    with pytest.raises(ValueError, match=message):
        load(_model_file(model, saved[1]))


@pytest.mark.parametrize("path, value, message", [
    (["fitted", "_y_1d"], ..., r"fitted lacks \['_y_1d'\]"),
    (["fitted", "n_outputs_"], 0, "n_outputs_ must be a positive int"),
    (["fitted", "classes_"], {"dtype": "<i8", "values": [0, 1]},
     r"fitted has unexpected keys \['classes_'\]"),
])
def test_fitted_state_must_match_the_kind_of_estimator(path, value, message):
    reg = MLPRegressor(**FAST).fit(X, X[:, 0])
    buffer = io.BytesIO()
    reg.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        document = json.loads(archive.read(MODEL))
        weights = archive.read(WEIGHTS)
    with pytest.raises(ValueError, match=message):
        load(_model_file(_edited(document, path, value), weights))


def _changed(weights, key, tensor):
    weights = dict(weights)
    if tensor is None:
        del weights[key]
    else:
        weights[key] = tensor
    return weights


@pytest.mark.parametrize("change, message", [
    (lambda w: _changed(w, "0.weight", torch.zeros(9, 3)),
     r"tensor '0.weight' in weights.safetensors is torch.float32 of shape \(9, 3\)"),
    (lambda w: _changed(w, "0.weight", w["0.weight"].double()), "is torch.float64 of shape"),
    (lambda w: _changed(w, "1.running_var", None), r"missing tensors \['1.running_var'\]"),
    (lambda w: _changed(w, "extra", torch.zeros(1)), r"unexpected tensors \['extra'\]"),
    (lambda w: _changed(w, "3.bias", torch.full((3,), float("nan"))),
     "tensor '3.bias' in weights.safetensors holds NaN or infinity"),
    (lambda w: _changed(w, "1.running_var", -w["1.running_var"]),
     "tensor '1.running_var' in weights.safetensors holds negative variances"),
    (lambda w: b"\x00" * len(safetensors.torch.save(w)),
     "weights.safetensors is not a safetensors file"),
    (lambda w: b"\x00" * 64, "'weights.safetensors' is 64 bytes; the network of model.json "
                              r"needs 372 bytes of tensors \(9 tensors of 92 values in all\)"),
])
def test_edited_weights_are_refused(saved, change, message):
    document, weights = saved
    with pytest.raises(ValueError, match=message):
        load(_model_file(document, change(weights)))


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile, writing the repeated member
@pytest.mark.parametrize("members, message", [
    (lambda m, w: [(MODEL, m), (WEIGHTS, w), ("payload.pkl", b"x")],
     r"unexpected members \['payload.pkl'\]"),
    (lambda m, w: [(MODEL, m), (WEIGHTS, w), (WEIGHTS, w)], r"repeated members \['weights"),
    (lambda m, w: [(MODEL, m)], r"no \['weights.safetensors'\]"),
    (lambda m, w: [("../" + MODEL, m), (WEIGHTS, w)], r"unexpected members \['../model.json'\]"),
])
def test_unexpected_members_are_refused(saved, members, message):
    document, weights = saved
    model, blob = json.dumps(document).encode(), safetensors.torch.save(weights)
    with pytest.raises(ValueError, match=message):
        load(_archive(members(model, blob)))


def test_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "model.sknets"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match=f"Refusing to load '{path}'.*not a zip archive"):
        load(path)


# --- pickle payloads: nothing is ever executed -------------------------------------------


class _Payload:
    """Unpickling this creates the file ``flag``: proof that code ran."""

    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (Path.touch, (Path(self.flag),))


@pytest.fixture
def payloads(tmp_path):
    """(flag path, pickle bytes, torch.save bytes) whose loading would create the flag."""
    flag = tmp_path / "code-ran"
    pickled = pickle.dumps(_Payload(str(flag)))
    buffer = io.BytesIO()
    torch.save({"0.weight": _Payload(str(flag))}, buffer)
    # The payloads are live: unpickling them does run code.
    pickle.loads(pickled)
    assert flag.exists()
    flag.unlink()
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    assert flag.exists()
    flag.unlink()
    return flag, pickled, buffer.getvalue()


@pytest.mark.parametrize("where", ["weights", "model", "extra member", "torch weights"])
def test_pickle_payloads_are_refused_without_running(saved, payloads, where):
    document, weights = saved
    flag, pickled, torch_saved = payloads
    model, blob = json.dumps(document).encode(), safetensors.torch.save(weights)
    members = {
        "weights": [(MODEL, model), (WEIGHTS, pickled)],
        "model": [(MODEL, pickled), (WEIGHTS, blob)],
        "extra member": [(MODEL, model), (WEIGHTS, blob), ("weights.pkl", pickled)],
        "torch weights": [(MODEL, model), (WEIGHTS, torch_saved)],
    }[where]
    with pytest.raises(ValueError, match="Refusing to load"):
        load(_archive(members))
    assert not flag.exists()


# --- oversized members ------------------------------------------------------------------


def test_oversized_member_is_refused_before_it_is_decompressed(saved):
    # 20 MiB of JSON whitespace deflates to about 20 KiB: a small zip bomb.
    document, weights = saved
    bomb = b" " * (20 * 2**20) + json.dumps(document).encode()
    archive = _model_file(bomb, weights)
    assert len(archive.getvalue()) < 2**20
    with pytest.raises(ValueError, match=f"'model.json' is {len(bomb)} bytes, more than the "
                                         f"{MAX_MODEL_BYTES} it may hold"):
        load(archive)


def test_member_lying_about_its_size_is_refused(saved):
    document, weights = saved
    bomb = b" " * (20 * 2**20) + json.dumps(document).encode()
    data = bytearray(_model_file(bomb, weights).getvalue())
    # Declare 1000 bytes in the central directory entry of model.json (the first).
    entry = data.index(b"PK\x01\x02")
    assert data[entry + 46:entry + 46 + len(MODEL)] == MODEL.encode()
    struct.pack_into("<I", data, entry + 24, 1000)
    with pytest.raises(ValueError, match="'model.json' is corrupt"):
        load(io.BytesIO(bytes(data)))


@pytest.mark.parametrize("signature, field, change, message", [
    # The version needed to extract model.json, in its central directory entry.
    (b"PK\x01\x02", 6, lambda version: 64,
     r"it is not a zip archive \(NotImplementedError: zip file version 6.4\)"),
    # Where the central directory starts, in the end record: every member's offset goes negative.
    (b"PK\x05\x06", 16, lambda offset: offset + 2**20,
     r"'model.json' is corrupt \(ValueError: negative seek value"),
])
def test_zip_headers_that_zipfile_cannot_read_are_refused(saved, signature, field, change,
                                                          message):
    document, weights = saved
    data = bytearray(_model_file(document, weights).getvalue())
    offset = data.index(signature) + field
    fmt = "<H" if field == 6 else "<I"
    struct.pack_into(fmt, data, offset, change(struct.unpack_from(fmt, data, offset)[0]))
    with pytest.raises(ValueError, match=f"Refusing to load the file as a sknets model: {message}"):
        load(io.BytesIO(bytes(data)))


def test_oversized_weights_are_refused(saved):
    document, weights = saved
    padded = safetensors.torch.save(weights, metadata={"padding": "x" * 2**20})
    with pytest.raises(ValueError, match="'weights.safetensors' is .* bytes, more than"):
        load(_model_file(document, padded))


# --- devices ------------------------------------------------------------------------------


def test_device_can_be_overridden_at_load(saved):
    document, weights = saved
    cuda = _edited(document, ["params", "device"], "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            load(_model_file(cuda, weights))
    clf = load(_model_file(cuda, weights), device="cpu")
    assert clf.get_params()["device"] == "cpu"
    assert clf.predict(X).shape == (60,)


def test_load_is_exported():
    assert sknets.load is load and "load" in sknets.__all__


def test_autoencoder_round_trip_is_exact():
    from sknets import AutoencoderTransformer

    data = np.abs(X) / np.abs(X).max()
    ae = AutoencoderTransformer((8,), code_size=2, loss="bce", output_activation="sigmoid",
                                noise=0.1, batch_norm=True, early_stopping=True, max_epochs=4,
                                random_state=0).fit(data)
    restored = _round_trip(ae)
    codes = ae.transform(data)
    np.testing.assert_array_equal(restored.transform(data), codes)
    np.testing.assert_array_equal(restored.inverse_transform(codes), ae.inverse_transform(codes))
    np.testing.assert_array_equal(restored.get_feature_names_out(), ae.get_feature_names_out())
    pd.testing.assert_frame_equal(restored.history_, ae.history_)

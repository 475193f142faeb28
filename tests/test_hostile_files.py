"""Hostile model files cost next to nothing to refuse, and saving is robust.

A crafted file may declare a huge label dtype, a huge network, a long
history or a compressed weights member that inflates to gigabytes: ``load``
checks every size against what the file actually holds before it allocates
anything of that size. The fast tests check each rule in process; the slow
ones measure time and peak memory of a load in a fresh subprocess. A
hypothesis fuzz test mutates ``model.json`` and the zip structure and
requires that every outcome is a loaded model that predicts or a
``ValueError`` that says the file is refused.

Set ``SKNETS_FUZZ_EXAMPLES`` to run the fuzz test with more examples than
the default 200.
"""

import io
import json
import os
import re
import stat
import struct
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sknets import MLPClassifier, load
from sknets._archive import MODEL, WEIGHTS

FAST = dict(hidden_layers=(8,), lr=1e-2, max_epochs=3, random_state=0, n_threads=1)
_RNG = np.random.RandomState(0)
X = _RNG.normal(size=(60, 3))
Y = np.array(["a", "b", "c"] * 20)
FUZZ_EXAMPLES = int(os.environ.get("SKNETS_FUZZ_EXAMPLES", "200"))
MiB = 2**20


@pytest.fixture(scope="module")
def saved():
    """(model.json document, weights.safetensors bytes) of a small fitted classifier."""
    clf = MLPClassifier(**dict(FAST, batch_norm=True)).fit(X, Y)
    buffer = io.BytesIO()
    clf.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return json.loads(archive.read(MODEL)), archive.read(WEIGHTS)


def _zip(members):
    """Bytes of a zip of ``members``: (name, bytes, compression) triples."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, compression in members:
            archive.writestr(name, data, compression)
    return buffer.getvalue()


def _model_file(document, weights, weights_compression=zipfile.ZIP_STORED):
    model = json.dumps(document).encode()
    return _zip([(MODEL, model, zipfile.ZIP_DEFLATED), (WEIGHTS, weights, weights_compression)])


def _edited(document, **fitted_or_params):
    """A copy of ``document`` with fields of "fitted" / "params" (``section__name=value``)."""
    document = json.loads(json.dumps(document))
    for key, value in fitted_or_params.items():
        section, name = key.split("__")
        document[section][name] = value
    return document


def _refusal(data, match):
    with pytest.raises(ValueError, match="Refusing to load the file as a sknets model: .*"
                                         + match):
        load(io.BytesIO(data))


# --- crafted files: each found cost, refused before it is paid ------------------------------


def _huge_label_dtype(document, n_labels=500):
    labels = [f"{i:03d}" for i in range(n_labels)]
    return _edited(document, fitted__classes_={"dtype": "<U999999", "values": labels})


def test_a_label_dtype_far_wider_than_its_labels_is_refused_without_allocating(saved):
    document, weights = saved
    data = _model_file(_huge_label_dtype(document), weights)
    assert len(data) < 8_000  # 500 labels of 4 MB each if allocated: 2 GB
    tracemalloc.start()
    try:
        _refusal(data, r"fitted.classes_ declares 500 labels of dtype <U999999 \(the longest "
                       r"has 3 characters\), an array of 1999998000 bytes: more than the "
                       r"1048576 its model.json of \d+ bytes may hold")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * MiB


def test_a_padded_label_dtype_still_round_trips():
    clf = MLPClassifier(**FAST).fit(X, Y.astype("<U10"))
    buffer = io.BytesIO()
    clf.save(buffer)
    buffer.seek(0)
    assert load(buffer).classes_.dtype == np.dtype("<U10")


@pytest.mark.filterwarnings("ignore:The number of unique classes")
def test_labels_whose_array_would_outgrow_the_file_are_not_saved():
    # One long label widens every label of a str array: 1001 labels of 40 KB each.
    y = np.array([f"{i:03d}" for i in range(1000)] + ["z" * 10_000])
    X_many = np.resize(X, (len(y), 3))
    clf = MLPClassifier(**dict(FAST, max_epochs=1)).fit(X_many, y)
    with pytest.raises(ValueError, match=r"Cannot save classes_: .* 1001 labels of dtype "
                                         r"<U10000 .*\(y.astype\(object\)\)"):
        clf.save(io.BytesIO())
    clf = MLPClassifier(**dict(FAST, max_epochs=1)).fit(X_many, y.astype(object))
    buffer = io.BytesIO()
    clf.save(buffer)
    buffer.seek(0)
    assert load(buffer).classes_.tolist() == clf.classes_.tolist()


def _weights_bomb(document, n_bytes=256 * MiB):
    """A deflated weights member of ``n_bytes`` zeros (about 1/1000 of that in the file)."""
    side = int((n_bytes / 4) ** 0.5)
    document = _edited(document, params__hidden_layers={"tuple": [side]},
                       params__batch_norm=False, fitted__n_features_in_=side)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MODEL, json.dumps(document), zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo(WEIGHTS)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as member:
            chunk = bytes(MiB)
            for _ in range(n_bytes // MiB):
                member.write(chunk)
    return buffer.getvalue()


def test_compressed_weights_are_refused_before_they_are_inflated(saved):
    document, weights = saved
    _refusal(_model_file(document, weights, zipfile.ZIP_DEFLATED),
             r"'weights.safetensors' is compressed \(method 8\); sknets writes it stored")


@pytest.mark.parametrize("field, value", [("n_features_in_", 10**9),
                                          ("hidden_layers", {"tuple": [2**20, 2**20]})])
def test_a_huge_declared_network_with_tiny_weights_is_refused_by_size(saved, field, value):
    document, weights = saved
    section = "fitted" if field.endswith("_") else "params"
    data = _model_file(_edited(document, **{f"{section}__{field}": value}), weights)
    _refusal(data, rf"'weights.safetensors' is {len(weights)} bytes; the network of "
                   r"model.json needs \d{10,} bytes of tensors \(\d+ tensors of \d+ values")


def test_stored_weights_must_declare_their_real_size(saved):
    document, weights = saved
    data = bytearray(_model_file(document, weights))
    entry = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 1)  # weights' directory entry
    assert data[entry + 46:entry + 46 + len(WEIGHTS)] == WEIGHTS.encode()
    struct.pack_into("<I", data, entry + 24, len(weights) * 1000)  # uncompressed size
    _refusal(bytes(data), rf"'weights.safetensors' is stored but declares {len(weights) * 1000} "
                          rf"bytes uncompressed and {len(weights)} in the archive")


def test_a_thread_count_from_a_file_is_capped_by_the_cpus(saved):
    document, weights = saved
    clf = load(io.BytesIO(_model_file(_edited(document, params__n_threads=512), weights)))
    assert clf.get_params()["n_threads"] == min(512, joblib.cpu_count())
    assert clf._get_fitted_state().params["n_threads"] == clf.get_params()["n_threads"]
    assert clf.predict(X).shape == (60,)


def _long_history(document, n_epochs):
    record = document["history"][0]
    document = json.loads(json.dumps(document))
    document["history"] = [dict(record, epoch=epoch) for epoch in range(1, n_epochs + 1)]
    document["fitted"]["n_epochs_"] = n_epochs
    return document


def test_a_long_history_loads(saved):
    document, weights = saved
    clf = load(io.BytesIO(_model_file(_long_history(document, 2_000), weights)))
    assert clf.n_epochs_ == 2_000
    assert clf.history_["epoch"].tolist() == list(range(1, 2_001))


# --- the same files, measured in a subprocess ----------------------------------------------

_MEASURE = textwrap.dedent("""
    import json, os, resource, sys, time
    import numpy as np
    from sknets import load

    def peak():
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    load(sys.argv[2])  # every import and first-use cost paid before measuring
    before, start = peak(), time.perf_counter()
    try:
        model, error = load(sys.argv[1]), None
    except ValueError as exc:
        model, error = None, str(exc)
    seconds, grown = time.perf_counter() - start, peak() - before
    threads = None
    if model is not None and os.path.isdir("/proc/self/task"):
        model.predict(np.zeros((4, model.n_features_in_), dtype=np.float32))
        threads = len(os.listdir("/proc/self/task"))
    print(json.dumps({"seconds": seconds, "grown": grown, "error": error, "threads": threads}))
""")


def _measured_load(tmp_path, data, good):
    """Time, growth of peak memory (bytes) and error of loading ``data`` in a fresh process."""
    crafted, reference = tmp_path / "crafted.sknets", tmp_path / "good.sknets"
    crafted.write_bytes(data)
    reference.write_bytes(good)
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(crafted), str(reference)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("craft, error", [
    (lambda d, w: _model_file(_huge_label_dtype(d, n_labels=1500), w), "classes_ declares"),
    (lambda d, w: _weights_bomb(d), "is compressed"),
    (lambda d, w: _model_file(_edited(d, params__hidden_layers={"tuple": [2**16] * 64}), w),
     "needs .* bytes of tensors"),
], ids=["huge label dtype", "weights zip bomb", "huge network, tiny weights"])
def test_refusing_a_crafted_file_is_cheap(saved, tmp_path, craft, error):
    document, weights = saved
    data = craft(document, weights)
    assert len(data) < 2 * MiB
    result = _measured_load(tmp_path, data, _model_file(document, weights))
    assert result["error"] is not None and re.search(error, result["error"])
    assert result["seconds"] < 5
    assert result["grown"] < 64 * MiB


@pytest.mark.slow
def test_a_long_history_loads_in_linear_time(saved, tmp_path):
    document, weights = saved
    result = _measured_load(tmp_path, _model_file(_long_history(document, 80_000), weights),
                            _model_file(document, weights))
    assert result["error"] is None
    assert result["seconds"] < 5


@pytest.mark.slow
def test_loading_peaks_at_about_twice_the_weights(saved, tmp_path):
    side = 2048  # two 2048 x 2048 hidden layers: 16 MiB of float32 weights
    clf = MLPClassifier(**dict(FAST, hidden_layers=(side, side), max_epochs=1)).fit(X, Y)
    buffer = io.BytesIO()
    clf.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        document, weights = json.loads(archive.read(MODEL)), archive.read(WEIGHTS)
    assert len(weights) > 16 * MiB
    document = _edited(document, params__n_threads=512)
    result = _measured_load(tmp_path, _model_file(document, weights), _model_file(*saved))
    assert result["error"] is None
    assert result["grown"] < 2 * len(weights) + 48 * MiB
    # The loaded model's n_threads is capped by the CPUs: predict starts no 512 threads.
    assert result["threads"] <= joblib.cpu_count() + 16


# --- saving ----------------------------------------------------------------------------------


def test_concurrent_saves_to_one_path_all_succeed(tmp_path):
    path = tmp_path / "model.sknets"
    models = [MLPClassifier(**dict(FAST, random_state=seed)).fit(X, Y) for seed in range(2)]
    errors = []

    def save_ten(model):
        for _ in range(10):
            try:
                model.save(path)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=save_ten, args=(models[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["model.sknets"]
    restored = load(path)
    assert any(np.array_equal(restored.predict_proba(X), model.predict_proba(X))
               for model in models)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saving_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    clf = MLPClassifier(**FAST).fit(X, Y)
    path = tmp_path / "model.sknets"
    clf.save(path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o600)
    clf.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)
    clf.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("labels", [
    np.array([False, True, True]),
    np.array([-3, 0, 7], dtype=np.int8),
    np.array([0, 2**63, 2**64 - 1], dtype=np.uint64),
    np.array([-1.0, 2.0, 1e6], dtype=np.float32),
    np.array([1.0, 2.0, 3.0], dtype=np.float16),
    np.array(["é", "日本", "\U0001F600"]),
    np.array(["", "a", "bb"]),
    np.array(["cat", "dog", "emu"], dtype="<U12"),
    np.array(["cat", "dog", "emu"], dtype=object),
], ids=lambda labels: f"{labels.dtype.str}")
def test_every_label_dtype_fit_accepts_is_saved(labels):
    clf = MLPClassifier(**FAST).fit(X, labels[np.arange(60) % 3])
    buffer = io.BytesIO()
    clf.save(buffer)
    buffer.seek(0)
    restored = load(buffer)
    assert restored.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(restored.classes_, clf.classes_)
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))


# --- fuzzing: any mutation loads a working model or is refused by name -------------------------

_NUMBERS = st.one_of(
    st.integers(), st.floats(),  # NaN and infinities included: written as NaN / Infinity
    st.sampled_from([0, -1, 2**31, 2**63, -2**63 - 1, 2**64, 10**300, 10**4000, 1e308, -0.0]))
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, st.text(max_size=20),
                     st.sampled_from(["inf", "-inf", "<U999999", "|b1", "O", "cpu", "relu",
                                      "tuple", "dict", "\ud800", "\x00"]))
_VALUES = st.recursive(
    _SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                      st.dictionaries(st.text(max_size=6), inner, max_size=4),
                                      st.builds(lambda x: {"tuple": x}, st.lists(inner, max_size=4)),
                                      st.builds(lambda x: {"dict": x}, st.lists(inner, max_size=4))),
    max_leaves=12)


def _paths(value, prefix=()):
    """Every path to an item of a JSON value (the first 3 history records only)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            yield from _paths(item, (*prefix, index))


@st.composite
def _mutated_documents(draw, document):
    document, repeated = json.loads(json.dumps(document)), False
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(document) if p]
        *parents, last = draw(st.sampled_from(paths))
        target = document
        for key in parents:
            target = target[key]
        action = draw(st.sampled_from(["replace", "delete", "wrap", "repeat", "add"]))
        if action == "replace":
            target[last] = draw(_VALUES)
        elif action == "delete":
            del target[last]
        elif action == "wrap":
            target[last] = draw(st.sampled_from([[target[last]], {"tuple": [target[last]]},
                                                 {"x": target[last]}]))
        elif action == "repeat":  # one long list at most: repeats of repeats would be huge
            counts = [0, 2] if repeated else [0, 2, 5000, 20_000]
            target[last] = [target[last]] * draw(st.sampled_from(counts))
            repeated = True
        elif isinstance(target, dict):
            target[draw(st.text(max_size=8))] = draw(_VALUES)
        else:
            target.append(draw(_VALUES))
    return json.dumps(document, allow_nan=True, indent=draw(st.sampled_from([None, 1])))


_METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]


@st.composite
def _mutated_archives(draw, document, weights):
    """A model file with its JSON, its weights or its zip structure mutated (or several)."""
    targets = draw(st.sampled_from([{"json"}, {"json"}, {"json"}, {"weights"}, {"zip"},
                                    {"json", "weights", "zip"}]))
    model = json.dumps(document)
    if "json" in targets:
        model = draw(_mutated_documents(document))
    model = model.encode("utf-8", "surrogatepass")
    blob = weights
    if "weights" in targets:  # truncated, padded, a byte changed, a header overwritten
        cut = draw(st.integers(0, len(blob)))
        blob = draw(st.sampled_from([blob[:cut], blob + bytes(cut), blob[:cut] + b"\xff"
                                     + blob[cut + 1:], blob[:8] + b"{" * 64 + blob[72:]]))
    methods = (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED)
    if "zip" in targets:
        methods = (draw(st.sampled_from(_METHODS[:2])), draw(st.sampled_from(_METHODS)))
    members = [(MODEL, model, methods[0]), (WEIGHTS, blob, methods[1])]
    structure = draw(st.sampled_from(["same", "repeat", "extra", "drop", "swap"])
                     if "zip" in targets else st.just("same"))
    if structure == "repeat":
        members.append(draw(st.sampled_from(members)))
    elif structure == "extra":
        members.append((draw(st.text(min_size=1, max_size=10)), b"x", zipfile.ZIP_STORED))
    elif structure == "drop":
        members.pop(draw(st.integers(0, 1)))
    elif structure == "swap":
        members = [(MODEL, blob, zipfile.ZIP_STORED), (WEIGHTS, model, zipfile.ZIP_STORED)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile, writing a repeated member
        data = bytearray(_zip(members))
    if "zip" in targets:
        for _ in range(draw(st.integers(0, 3))):  # lying sizes, offsets, methods; flipped bytes
            offset = draw(st.integers(0, len(data) - 1))
            width = draw(st.sampled_from([1, 2, 4]))
            value = draw(st.integers(0, 256**width - 1))
            data[offset:offset + width] = value.to_bytes(width, "little")[:len(data) - offset]
        if draw(st.integers(0, 4)) == 0:
            data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(data=st.data())
def test_fuzzed_files_load_or_are_refused_by_name(saved, data):
    document, weights = saved
    # Finite but huge weights (a changed exponent byte) overflow at predict.
    _loads_or_is_refused(data.draw(_mutated_archives(document, weights)), X,
                         ("outputs are not finite",))


def _loads_or_is_refused(archive, X, predict_errors):
    """Load ``archive``: a ``ValueError`` naming the file, or a model that predicts ``X``
    (or refuses it with one of ``predict_errors``), all within 5 seconds."""
    start = time.perf_counter()
    try:
        model = load(io.BytesIO(archive))
    except ValueError as exc:
        assert str(exc).startswith("Refusing to load the file as a sknets model: "), exc
    else:
        try:
            assert model.predict(X).shape == (len(X),)
        except ValueError as exc:
            assert any(error in str(exc) for error in predict_errors), exc
    assert time.perf_counter() - start < 5


TABLE = pd.DataFrame({"size": np.where(np.arange(60) % 7 == 0, np.nan, X[:, 0]),
                      "color": np.array(["red", "green", None] * 20, dtype=object),
                      "city": pd.Categorical([f"c{i % 15}" for i in range(60)])})


@pytest.fixture(scope="module")
def saved_table():
    """(model.json document, weights) of a classifier that encodes a table (an embedding too)."""
    clf = MLPClassifier(**dict(FAST, one_hot_max_categories=5)).fit(TABLE, Y)
    buffer = io.BytesIO()
    clf.save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return json.loads(archive.read(MODEL)), archive.read(WEIGHTS)


@settings(max_examples=FUZZ_EXAMPLES // 2, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(data=st.data())
def test_fuzzed_table_files_load_or_are_refused_by_name(saved_table, data):
    document, weights = saved_table
    # A column the file now calls numeric holds text; or huge weights overflow.
    _loads_or_is_refused(data.draw(_mutated_archives(document, weights)), TABLE,
                         ("is not numeric", "outputs are not finite", "feature names"))


@pytest.mark.slow
def test_a_table_of_countless_categories_is_refused_by_size_before_it_is_encoded(
        saved_table, tmp_path):
    # 500,000 categories deflate to a few kilobytes; their embedding would need
    # 100 MB of weights, which the file lacks: refused before any encoder is built.
    document, weights = saved_table
    document = json.loads(json.dumps(document))
    city = next(entry for entry in document["fitted"]["tables"]["categorical"]
                if entry["encoding"] == "embedding")
    city["categories"] = ["c"] * 500_000
    data = _model_file(document, weights)
    assert len(data) < 2 * MiB
    result = _measured_load(tmp_path, data, _model_file(*saved_table))
    assert re.search(r"needs \d+ bytes of tensors", result["error"]), result["error"]
    assert result["seconds"] < 5
    assert result["grown"] < 64 * MiB

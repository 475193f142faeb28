"""Nonsense is refused by name before training; unusual but valid input trains."""

import datetime
import math
import subprocess
import sys
import textwrap
import warnings
from numbers import Real

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sknets import AutoencoderTransformer, MLPClassifier, MLPRegressor
from sknets import autoencoder as autoencoder_module
from sknets._engine import build
from sknets._params import Interval
from sknets.exceptions import DivergenceError
from sknets.persistence import SAVABLE

FAST = dict(hidden_layers=(8,), lr=1e-2, max_epochs=4, random_state=0, n_threads=1)
_RNG = np.random.RandomState(0)
X = _RNG.normal(size=(300, 4))
Y = np.arange(300) % 3


def _float_parameters(estimator_class):
    return [name for name, constraints in estimator_class._parameter_constraints.items()
            if any(isinstance(c, Interval) and c.kind is Real for c in constraints)]


@pytest.mark.parametrize("estimator_class", SAVABLE, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_every_float_parameter_refuses_nan_and_infinity(estimator_class, value):
    names = _float_parameters(estimator_class)
    assert {"lr", "dropout", "tol", "l1", "l2", "lr_min"} <= set(names)
    for name in names:
        with pytest.raises(ValueError, match=rf"The '{name}' parameter of "
                                             rf"{estimator_class.__name__} must be .*finite"):
            estimator_class(**{name: value}).fit(X, Y)


def test_numpy_scalars_are_taken_as_the_python_values_they_hold():
    before = torch.get_num_threads()
    clf = MLPClassifier(hidden_layers=(np.int64(8),), lr=np.float32(0.01),
                        batch_norm=np.bool_(True), shuffle=np.bool_(False),
                        max_epochs=np.int64(2), n_threads=np.int64(1), random_state=np.int64(0))
    clf.fit(X, Y)
    assert clf.n_epochs_ == 2 and torch.get_num_threads() == before
    assert type(clf._get_fitted_state().params["lr"]) is float


@pytest.mark.parametrize("widths", [iter([8, 4]), (w for w in [8, 4])], ids=["iter", "gen"])
def test_iterators_as_widths_are_refused_with_the_fix(widths):
    with pytest.raises(ValueError, match=r"'hidden_layers' .* not an iterator or generator, "
                                         r"which reading consumes: pass tuple"):
        MLPClassifier(hidden_layers=widths).fit(X, Y)


def test_widths_as_an_array_train_and_save(tmp_path):
    clf = MLPClassifier(**dict(FAST, hidden_layers=np.array([5, 3]))).fit(X, Y)
    assert [m.out_features for m in clf.module_ if isinstance(m, torch.nn.Linear)] == [5, 3, 3]
    clf.save(tmp_path / "m.sknets")


# --- weights -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_sparse_sample_weights_train_with_all_defaults(seed):
    # 1% of the weights non-zero: most mini-batches have no weight at all.
    weights = np.zeros(len(X))
    weights[np.random.RandomState(seed).choice(len(X), 3, replace=False)] = 1.0
    clf = MLPClassifier(max_epochs=5, random_state=seed).fit(X, Y, sample_weight=weights)
    assert np.isfinite(clf.history_["train_loss"]).all()


def test_the_epoch_loss_weighs_batches_by_their_sample_weights():
    weights = np.r_[np.zeros(200), np.ones(100)]
    reg = MLPRegressor(**dict(FAST, batch_size=100, shuffle=False, max_epochs=1,
                              optimizer="sgd", lr=1e-12))
    y = X[:, 0]
    reg.fit(X, y, sample_weight=weights)
    # With a negligible step, the epoch loss is the weighted loss of the start weights:
    # that of the last 100 samples alone.
    start = MLPRegressor(**dict(FAST, batch_size=100)).initialize(X, y)
    expected = np.mean((start.predict(X[200:]) - y[200:]) ** 2)
    assert reg.history_["train_loss"].iloc[0] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("class_weight, error, message", [
    ({0: -1.0}, ValueError, r"class_weight\[0\] must be finite and non-negative; got -1.0"),
    ({1: math.nan}, ValueError, r"class_weight\[1\] must be finite and non-negative; got nan"),
    ({2: math.inf}, ValueError, r"class_weight\[2\] must be finite and non-negative; got inf"),
    ({0: "heavy"}, TypeError, r"class_weight\[0\] must be a number; got 'heavy'"),
    ({7: 1.0}, ValueError, r"class_weight names labels not in y: \[7\]"),
    ({0: 0.0, 1: 0.0, 2: 0.0}, ValueError, "class_weight gives every sample of y weight zero"),
])
def test_bad_class_weights_are_refused_by_name(class_weight, error, message):
    clf = MLPClassifier(**dict(FAST, class_weight=class_weight))
    with pytest.raises(error, match=message):
        clf.fit(X, Y)
    assert not hasattr(clf, "classes_")


def test_a_zero_class_weight_only_drops_that_class():
    clf = MLPClassifier(**dict(FAST, class_weight={0: 0.0}, max_epochs=20)).fit(X, Y)
    assert np.isfinite(clf.history_["train_loss"]).all()
    assert 0 not in clf.predict(X)


# --- labels ------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [
    np.array(["2024-01-01", "2024-06-01", "2025-01-01"] * 100, dtype="datetime64[D]"),
    np.array([datetime.date(2024, 1, day) for day in (1, 2, 3)] * 100, dtype=object),
], ids=["datetime64", "date-objects"])
def test_labels_that_cannot_be_classes_are_refused_at_fit(labels):
    with pytest.raises(ValueError, match=r"a classifier's labels are numbers, strings or "
                                         r"bools: convert them first, e\.g\. y\.astype\(str\)"):
        MLPClassifier(**FAST).fit(X, labels)


# --- training that ends early ------------------------------------------------------------


class _PoisonAtEpoch(Callback):
    """Makes the weights NaN at the end of epoch ``epoch``, before stopping runs."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            with torch.no_grad():
                for parameter in net.module_.parameters():
                    parameter.fill_(math.nan)


@pytest.mark.parametrize("ending", ["early stopping", "interrupt"])
def test_the_finite_weights_check_runs_however_training_ends(monkeypatch, ending):
    poison = _PoisonAtEpoch(epoch=3)

    class Interrupt(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 3:
                raise KeyboardInterrupt

    stopping = build.stopping_callbacks
    extra = [("poison", poison)] + ([("interrupt", Interrupt())] if ending == "interrupt" else [])
    monkeypatch.setattr(build, "stopping_callbacks",
                        lambda params, has_valid: [*extra, *stopping(params, has_valid)])
    # tol=10: no epoch after the first improves, so patience=2 stops after epoch 3.
    reg = MLPRegressor(**dict(FAST, max_epochs=50, patience=2, tol=10.0))
    with pytest.raises(DivergenceError, match="not finite at its end"):
        reg.fit(X, X[:, 0])
    assert not hasattr(reg, "module_")


# --- scores ------------------------------------------------------------------------------


def test_valid_r2_of_constant_targets_is_finite():
    reg = MLPRegressor(**FAST).fit(X, X[:, 0], validation_data=(X, np.full(len(X), 2.0)))
    assert np.isfinite(reg.history_["valid_r2"]).all()
    assert reg.history_["valid_r2"].tolist() == [0.0] * FAST["max_epochs"]


def test_chunked_reconstruction_error_equals_the_whole(monkeypatch):
    ae = AutoencoderTransformer(hidden_layers=(6,), code_size=2, max_epochs=3,
                                random_state=0).fit(X)
    whole = ae.reconstruction_error(X)
    monkeypatch.setattr(autoencoder_module, "_CHUNK", 7)
    np.testing.assert_allclose(ae.reconstruction_error(X), whole, rtol=1e-5)
    reconstruction = ae.inverse_transform(ae.transform(X))
    np.testing.assert_allclose(whole, ((reconstruction - X) ** 2).mean(axis=1), rtol=1e-6)


@pytest.mark.slow  # a subprocess, to measure its peak memory alone
def test_score_costs_a_chunk_of_memory_not_copies_of_the_data():
    script = textwrap.dedent("""
        import resource, numpy as np
        from sknets import AutoencoderTransformer
        X = np.random.RandomState(0).normal(size=(200_000, 100))  # 160 MB of float64
        ae = AutoencoderTransformer((8,), 2, max_epochs=1, random_state=0).fit(X[:1000])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ae.score(X)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    """)
    grown_mb = float(subprocess.run([sys.executable, "-c", script], check=True,
                                    capture_output=True, text=True).stdout.split()[-1])
    assert grown_mb < 80, f"score grew the peak memory by {grown_mb:.0f} MB"


def test_per_epoch_bookkeeping_does_not_grow_with_the_history(monkeypatch):
    # The rows of the history that a fit reads, counted rather than timed: a
    # fit of twice the epochs must read about twice the rows, not four times
    # (a pass over the history every epoch, or skorch's indexing, which copies
    # the whole list, every epoch).
    from sknets._engine.net import EpochHistory

    read = [0]
    iterate, index = EpochHistory.__iter__, EpochHistory.__getitem__

    def counting_iter(self):
        for row in iterate(self):
            read[0] += 1
            yield row

    def counting_getitem(self, key):
        if not isinstance(key, int) and not (
                isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], int)):
            read[0] += len(self)  # skorch's indexing: a copy of every row
        return index(self, key)

    monkeypatch.setattr(EpochHistory, "__iter__", counting_iter)
    monkeypatch.setattr(EpochHistory, "__getitem__", counting_getitem)

    def rows_read(epochs):
        read[0] = 0
        MLPClassifier(hidden_layers=(), max_epochs=epochs, patience=None, random_state=0,
                      n_threads=1).fit(X[:6], Y[:6])
        return read[0]

    short, long = rows_read(300), rows_read(600)
    assert short >= 300  # the history frame reads every row once
    assert long < 2.2 * short, f"{short} rows read in 300 epochs, {long} in 600"


def test_score_on_labels_of_another_kind_says_how_to_map_them():
    names = np.array(["cat", "dog", "owl"])[Y]
    clf = MLPClassifier(**FAST).fit(X, names)
    with pytest.raises(ValueError, match=r"y holds numbers, but this classifier predicts names "
                                         r"\(strings\): its classes_ are \['cat', 'dog', 'owl'\]"):
        clf.score(X, Y)
    assert 0 <= clf.score(X, names) <= 1


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("bad, message", [(np.inf, "infinity"), (np.nan, "NaN|missing")])
def test_predict_refuses_non_finite_inputs_whatever_the_network_saturates(activation, bad,
                                                                          message, blobs):
    # tanh maps an infinite input to a finite output: the input must be checked,
    # not only the outputs.
    X, y = blobs
    clf = MLPClassifier((8,), activation=activation, max_epochs=2, random_state=0,
                        n_threads=1).fit(X, y)
    X_bad = X[:5].copy()
    X_bad[2, 1] = bad
    with pytest.raises(ValueError, match=message):
        clf.predict(X_bad)


def test_predict_accepts_finite_inputs_whose_sum_overflows(blobs):
    X, y = blobs
    clf = MLPClassifier((8,), max_epochs=2, random_state=0, n_threads=1).fit(X, y)
    huge = np.full((3, X.shape[1]), 3e38, dtype=np.float32)  # finite; the sum is not
    with pytest.raises(ValueError, match="overflow float32 inside the network"):
        clf.predict(huge)


@pytest.mark.parametrize("layout", ["reversed", "read-only", "fortran", "strided"])
def test_fit_takes_float32_arrays_of_any_layout_and_checks_them(layout):
    # The input check sums through torch, which takes no negative strides and
    # warns on read-only arrays: every layout must train as its copy does,
    # and a NaN must still be found.
    base = X.astype(np.float32)
    wide = np.repeat(base, 2, axis=1)
    arrays = {"reversed": base[::-1], "read-only": base.copy(), "fortran": np.asfortranarray(base),
              "strided": wide[:, ::2]}
    data = arrays[layout]
    data.flags.writeable = layout != "read-only"
    y = Y[::-1] if layout == "reversed" else Y
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = MLPClassifier(**FAST).fit(data, y)
    copied = MLPClassifier(**FAST).fit(np.ascontiguousarray(data), y)
    np.testing.assert_array_equal(fitted.predict_proba(base), copied.predict_proba(base))
    bad = np.array(data)
    bad[5, 2] = np.nan
    bad = bad[::-1] if layout == "reversed" else bad
    with pytest.raises(ValueError, match="column 2"):
        MLPClassifier(**FAST, missing_values="error").fit(bad, y)

"""The learning-rate range test: rates, losses, stopping on divergence, suggestion, plot."""

import pickle
import warnings

import numpy as np
import pytest
from skorch.callbacks import Callback
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sknets
from sknets import AutoencoderTransformer, MLPClassifier, MLPRegressor, lr_find
from sknets._engine.schedules import RangeTest
from sknets.exceptions import TrainingInterruptedWarning
from sknets.inspection import LRFindResult

FAST = dict(hidden_layers=(16,), batch_size=30, random_state=0, n_threads=1)


def _data(estimator_class, blobs):
    X, y = blobs
    X = (X - X.mean(0)) / X.std(0)
    if estimator_class is MLPRegressor:
        return X, X[:, 0] - X[:, 1]
    if estimator_class is AutoencoderTransformer:
        return X, None
    return X, y


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor,
                                             AutoencoderTransformer])
def test_rates_grow_exponentially_and_the_loss_falls_before_it_breaks(blobs, estimator_class):
    X, y = _data(estimator_class, blobs)
    result = lr_find(estimator_class(**FAST, optimizer="sgd"), X, y, start_lr=1e-4,
                     end_lr=1e3, n_steps=40)
    assert isinstance(result, LRFindResult)
    n = len(result.lrs)
    assert 2 <= n <= 40 and result.losses.shape == result.raw_losses.shape == (n,)
    np.testing.assert_allclose(result.lrs, np.geomspace(1e-4, 1e3, 40)[:n], rtol=1e-12)
    assert np.all(np.diff(np.log(result.lrs)) > 0)
    lowest = np.argmin(result.losses)
    assert 0 < lowest and result.losses[lowest] < result.losses[0]  # the loss fell
    assert result.min_loss_lr == result.lrs[lowest]
    assert result.suggested_lr == pytest.approx(max(result.lrs[lowest] / 10, 1e-4))
    assert result.lrs[0] <= result.suggested_lr <= result.lrs[-1]
    # The steepest descent lies before the lowest loss, where the loss falls.
    assert result.steepest_lr in result.lrs[:lowest + 1]


def test_the_test_stops_when_the_loss_diverges(blobs):
    X, y = _data(MLPRegressor, blobs)
    result = lr_find(MLPRegressor(**FAST, optimizer="sgd"), X, y, start_lr=1e-3, end_lr=1e6,
                     n_steps=60)
    assert result.diverged and len(result.lrs) < 60
    best_before = np.min(result.losses[:-1])
    last = result.losses[-1]
    assert not np.isfinite(last) or last > 4 * best_before
    assert np.all(np.isfinite(result.losses[:-1]))
    assert result.suggested_lr < result.min_loss_lr < result.lrs[-1]


def test_the_losses_are_smoothed_as_documented(blobs):
    X, y = _data(MLPClassifier, blobs)
    result = lr_find(MLPClassifier(**FAST), X, y, n_steps=12, smoothing=0.5)
    average, expected = 0.0, []
    for k, loss in enumerate(result.raw_losses):
        average = 0.5 * average + 0.5 * loss
        expected.append(average / (1 - 0.5 ** (k + 1)))
    np.testing.assert_allclose(result.losses, expected, rtol=1e-12)
    unsmoothed = lr_find(MLPClassifier(**FAST), X, y, n_steps=12, smoothing=0.0)
    np.testing.assert_array_equal(unsmoothed.losses, unsmoothed.raw_losses)


def test_the_range_test_sets_the_rate_of_every_step(blobs):
    class Rates(Callback):
        def on_train_begin(self, net, **kwargs):
            self.seen = []

        def on_batch_begin(self, net, training=False, **kwargs):
            if training:
                self.seen.append({group["lr"] for group in net.optimizer_.param_groups})

    X, y = _data(MLPClassifier, blobs)
    rates, seen = [1e-3 * 2 ** k for k in range(15)], Rates()
    test = RangeTest(rates, smoothing=0.9, diverge_factor=1e9)
    # 300 samples in batches of 30: the 15 steps run over two epochs.
    with pytest.warns(TrainingInterruptedWarning, match="interrupted in epoch 2"):
        MLPClassifier(**FAST, l2=1e-3, max_epochs=5, callbacks=[test, seen]).fit(X, y)
    assert seen.seen == [{rate} for rate in rates]
    assert test.stopped_ and not test.diverged_ and len(test.losses_) == 15


def test_the_estimator_passed_in_is_never_changed(blobs):
    X, y = _data(MLPClassifier, blobs)
    callbacks = []
    unfitted = MLPClassifier(**FAST, callbacks=callbacks, early_stopping=True,
                             scoring="f1_macro", warm_start=True)
    before = pickle.dumps(unfitted)
    lr_find(unfitted, X, y, n_steps=10)
    assert pickle.dumps(unfitted) == before and unfitted.callbacks is callbacks
    assert not hasattr(unfitted, "module_")

    fitted = MLPClassifier(**FAST, max_epochs=2).fit(X, y)
    predictions, history = fitted.predict_proba(X), fitted.history_.copy()
    lr_find(fitted, X, y, n_steps=10)
    np.testing.assert_array_equal(fitted.predict_proba(X), predictions)
    assert fitted.history_.equals(history)


def test_the_range_test_starts_from_the_weights_fit_starts_from(blobs):
    X, y = _data(MLPClassifier, blobs)
    clf = MLPClassifier(**FAST, shuffle=False)
    result = lr_find(clf, X, y, start_lr=1e-7, end_lr=1e-6, n_steps=2)
    untrained = MLPClassifier(**FAST, shuffle=False).initialize(X, y)
    first_batch = untrained.predict_log_proba(X[:30])
    expected = -np.mean(first_batch[np.arange(30), y[:30]])
    assert result.raw_losses[0] == pytest.approx(expected, rel=1e-5)


def test_no_warning_about_the_interruption_that_ends_the_test(blobs):
    X, y = _data(MLPClassifier, blobs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lr_find(MLPClassifier(**FAST), X, y, n_steps=5)


def test_plot_draws_the_loss_on_a_log_axis_and_marks_the_suggestion(blobs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = _data(MLPClassifier, blobs)
    result = lr_find(MLPClassifier(**FAST), X, y, n_steps=20)
    ax = result.plot()
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"
    raw, smoothed, mark = ax.get_lines()
    np.testing.assert_array_equal(smoothed.get_xdata(), result.lrs)
    np.testing.assert_array_equal(raw.get_ydata(), result.raw_losses)
    assert mark.get_xdata()[0] == result.suggested_lr
    low, high = ax.get_ylim()
    assert low < result.losses.min() and high > result.losses[0]
    _, given = plt.subplots()
    assert result.plot(ax=given) is given
    plt.close("all")


@pytest.mark.parametrize("settings, message", [
    (dict(start_lr=1.0, end_lr=0.1), "0 < start_lr < end_lr"),
    (dict(start_lr=0.0), "0 < start_lr < end_lr"),
    (dict(end_lr=float("inf")), "finite learning rates"),
    (dict(n_steps=1), "n_steps must be an int of at least 2"),
    (dict(smoothing=1.0), r"smoothing must be a float in \[0, 1\)"),
    (dict(diverge_factor=1.0), "diverge_factor must be a float greater than 1"),
])
def test_bad_settings_are_refused_before_training(blobs, settings, message):
    X, y = _data(MLPClassifier, blobs)
    with pytest.raises(ValueError, match=message):
        lr_find(MLPClassifier(**FAST), X, y, **settings)


def test_only_sknets_networks_are_tested(blobs):
    X, y = _data(MLPClassifier, blobs)
    with pytest.raises(TypeError, match="run it on the network"):
        lr_find(make_pipeline(StandardScaler(), MLPClassifier(**FAST)), X, y)


def test_lr_find_is_exported_lazily():
    assert "lr_find" in dir(sknets) and sknets.lr_find is lr_find

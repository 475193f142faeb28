"""The progress shown while training: verbose=1 epoch log, verbose=2 batch bar."""

import re

import numpy as np
import pytest

from sknets import MLPClassifier, MLPRegressor
from sknets._engine.callbacks import BatchProgressBar, EpochLog

FAST = dict(hidden_layers=(16,), lr=1e-2, random_state=0, n_threads=1)


def _log_lines(text):
    return [line for line in text.splitlines() if re.match(r"\s+\d+\s", line)]


def test_verbose_1_prints_one_line_per_epoch_and_marks_the_best(blobs, capsys):
    X, y = blobs
    clf = MLPClassifier(max_epochs=6, early_stopping=True, verbose=1, **FAST).fit(X, y)
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["epoch", "train_loss", "valid_loss", "valid_accuracy", "lr", "seconds"]
    lines = _log_lines(out)
    assert [int(line.split()[0]) for line in lines] == list(range(1, clf.n_epochs_ + 1))
    marked = [int(line.split()[0]) for line in lines if line.rstrip().endswith("*")]
    assert marked[-1] == clf.best_epoch_
    first = lines[0].split()
    history = clf.history_.iloc[0]
    assert float(first[1]) == pytest.approx(history["train_loss"], abs=1e-4)
    assert float(first[2]) == pytest.approx(history["valid_loss"], abs=1e-4)
    assert float(first[4]) == pytest.approx(history["lr"])


def test_last_epoch_is_printed_when_early_stopping_ends_training(capsys):
    rng = np.random.RandomState(0)
    X, y = rng.rand(200, 4), rng.randint(0, 2, 200)  # noise: validation loss stalls
    clf = MLPClassifier(max_epochs=200, early_stopping=True, patience=2, verbose=1,
                        **FAST).fit(X, y)
    assert clf.n_epochs_ < 200
    assert len(_log_lines(capsys.readouterr().out)) == clf.n_epochs_


def test_regressor_without_validation_logs_training_loss(capsys):
    rng = np.random.RandomState(0)
    X = rng.rand(100, 3)
    MLPRegressor(max_epochs=3, verbose=True, **FAST).fit(X, X.sum(1))
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["epoch", "train_loss", "lr", "seconds"]
    assert len(_log_lines(out)) == 3
    assert _log_lines(out)[0].rstrip().endswith("*")


def test_verbose_2_draws_a_bar_over_the_batches(blobs, capsys):
    X, y = blobs
    clf = MLPClassifier(max_epochs=2, batch_size=50, verbose=2, **FAST).fit(X, y)
    captured = capsys.readouterr()
    assert "epoch 1" in captured.err and "epoch 2" in captured.err
    bar = dict(clf.net_.callbacks_)["batch_progress"].bar_
    assert bar.n == bar.total == 300 // 50  # every training batch, no validation set
    assert len(_log_lines(captured.out)) == 2


def test_verbose_0_installs_no_progress_callback(blobs, capsys):
    X, y = blobs
    clf = MLPClassifier(max_epochs=2, **FAST).fit(X, y)
    kinds = {type(cb) for _, cb in clf.net_.callbacks_}
    assert not kinds & {EpochLog, BatchProgressBar}
    # nothing that listens per batch reads values back from the device
    assert not any(isinstance(cb, BatchProgressBar) for cb in clf.net_.batch_callbacks_)
    assert capsys.readouterr() == ("", "")


def test_fitted_estimator_with_bar_pickles(blobs):
    import pickle

    X, y = blobs
    clf = MLPClassifier(max_epochs=1, verbose=2, **FAST).fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict(X), clf.predict(X))




def test_with_a_scorer_the_log_marks_the_epochs_of_the_highest_score(blobs, capsys, fixed_scores):
    X, y = blobs
    scorer = fixed_scores([0.2, 0.1, 0.7, 0.7, 0.3])

    class Scored(MLPClassifier):
        def _epoch_scorer(self, targets, has_valid):
            return scorer if has_valid else None

    clf = Scored(max_epochs=5, early_stopping=True, patience=None, verbose=1, **FAST).fit(X, y)
    out = capsys.readouterr().out
    assert "valid_score" in out.splitlines()[0].split()
    marked = [int(line.split()[0]) for line in _log_lines(out) if line.rstrip().endswith("*")]
    assert marked == [1, 3] and clf.best_epoch_ == 3

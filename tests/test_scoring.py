"""``scoring``: a scikit-learn scorer of the validation set after every epoch.

The estimator side hands the engine a scorer of the network's outputs
(``_epoch_scorer``); the first tests call that object directly and compare it
with scikit-learn's metrics on the same outputs, the later ones fit end to
end (history column, best epoch, early stopping).
"""

import io
import pickle
from unittest import mock

import numpy as np
import pytest
import torch
from sklearn import metrics
from sklearn.datasets import make_classification, make_multilabel_classification

from sknets import MLPClassifier, MLPRegressor, load

FAST = dict(hidden_layers=(16,), lr=1e-2, random_state=0, n_threads=1)
RNG = np.random.RandomState(0)


def _scorer(estimator, targets):
    return estimator._epoch_scorer(targets, has_valid=True)


def _softmax(outputs):
    return torch.softmax(outputs.double(), 1).numpy()


# --- the scorer object on given outputs -------------------------------------------------


@pytest.fixture
def binary_outputs():
    outputs = torch.from_numpy(RNG.normal(size=(80, 2))).float()
    y = torch.from_numpy((RNG.uniform(size=80) < _softmax(outputs)[:, 1]).astype(np.int64))
    return outputs, y


@pytest.fixture
def multiclass_outputs():
    outputs = torch.from_numpy(RNG.normal(size=(90, 3))).float()
    y = torch.from_numpy(np.r_[np.arange(3), RNG.randint(0, 3, 87)]).long()
    return outputs, y


@pytest.mark.parametrize("name, metric", [
    ("roc_auc", lambda y, p: metrics.roc_auc_score(y, p[:, 1])),
    ("average_precision", lambda y, p: metrics.average_precision_score(y, p[:, 1])),
    ("neg_log_loss", lambda y, p: -metrics.log_loss(y, p)),
    ("neg_brier_score", lambda y, p: -metrics.brier_score_loss(y, p[:, 1])),
    ("f1", lambda y, p: metrics.f1_score(y, p.argmax(1))),
    ("precision", lambda y, p: metrics.precision_score(y, p.argmax(1))),
    ("accuracy", lambda y, p: metrics.accuracy_score(y, p.argmax(1))),
    ("balanced_accuracy", lambda y, p: metrics.balanced_accuracy_score(y, p.argmax(1))),
])
def test_binary_scores_equal_scikit_learns(binary_outputs, name, metric):
    outputs, y = binary_outputs
    # Labels of any kind: the scorer sees class indices, the positive class is classes_[1].
    scorer = _scorer(MLPClassifier(scoring=name), {"classes_": np.array(["no", "yes"])})
    assert scorer.name == name
    assert scorer(outputs, y) == pytest.approx(metric(y.numpy(), _softmax(outputs)), abs=1e-12)


@pytest.mark.parametrize("name, metric", [
    ("accuracy", lambda y, p: metrics.accuracy_score(y, p.argmax(1))),
    ("f1_macro", lambda y, p: metrics.f1_score(y, p.argmax(1), average="macro")),
    ("roc_auc_ovr", lambda y, p: metrics.roc_auc_score(y, p, multi_class="ovr")),
    ("neg_log_loss", lambda y, p: -metrics.log_loss(y, p)),
    ("balanced_accuracy", lambda y, p: metrics.balanced_accuracy_score(y, p.argmax(1))),
])
def test_multiclass_scores_equal_scikit_learns(multiclass_outputs, name, metric):
    outputs, y = multiclass_outputs
    scorer = _scorer(MLPClassifier(scoring=name), {"classes_": np.array([3, 10, 42])})
    assert scorer(outputs, y) == pytest.approx(metric(y.numpy(), _softmax(outputs)), abs=1e-12)


@pytest.mark.parametrize("name, metric", [
    ("accuracy", lambda y, p: metrics.accuracy_score(y, p > 0.5)),
    ("f1_samples", lambda y, p: metrics.f1_score(y, p > 0.5, average="samples")),
    ("f1_micro", lambda y, p: metrics.f1_score(y, p > 0.5, average="micro")),
    ("roc_auc", lambda y, p: metrics.roc_auc_score(y, p)),
])
# Samples without any label make f1_samples warn, in scikit-learn and here alike.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_multilabel_scores_equal_scikit_learns(name, metric):
    outputs = torch.from_numpy(RNG.normal(size=(60, 4))).float()
    proba = torch.sigmoid(outputs.double()).numpy()
    y = (RNG.uniform(size=(60, 4)) < proba).astype(np.float32)
    scorer = _scorer(MLPClassifier(scoring=name),
                     {"classes_": np.arange(4), "_multilabel": True})
    assert scorer(outputs, torch.from_numpy(y)) == pytest.approx(metric(y.astype(int), proba),
                                                                 abs=1e-12)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("name, metric", [
    ("r2", metrics.r2_score),
    ("neg_mean_absolute_error", lambda y, p: -metrics.mean_absolute_error(y, p)),
    ("neg_root_mean_squared_error", lambda y, p: -metrics.root_mean_squared_error(y, p)),
    ("explained_variance", metrics.explained_variance_score),
])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regression_scores_equal_scikit_learns(loss, name, metric, n_outputs):
    outputs = torch.from_numpy(RNG.normal(size=(50, n_outputs))).float()
    y = RNG.poisson(2.0, size=(50, n_outputs)).astype(np.float32)
    scorer = _scorer(MLPRegressor(scoring=name, loss=loss),
                     {"n_outputs_": n_outputs, "_y_1d": n_outputs == 1})
    # With the Poisson loss the predictions are exp(outputs), as predict returns.
    predictions = outputs.double().numpy()
    predictions = np.exp(predictions) if loss == "poisson" else predictions
    expected = metric(y[:, 0] if n_outputs == 1 else y,
                      predictions[:, 0] if n_outputs == 1 else predictions)
    assert scorer(outputs, torch.from_numpy(y)) == pytest.approx(expected, rel=1e-6)


def test_a_callable_gets_a_stand_in_that_predicts_like_the_estimator(multiclass_outputs):
    outputs, y = multiclass_outputs
    seen = {}

    def score(estimator, X, y_true):
        seen.update(classes=estimator.classes_, proba=estimator.predict_proba(X),
                    labels=estimator.predict(X), y=y_true)
        return 0.25

    scorer = _scorer(MLPClassifier(scoring=score), {"classes_": np.array(["a", "b", "c"])})
    assert scorer.name == "score"
    assert scorer(outputs, y) == 0.25
    np.testing.assert_array_equal(seen["classes"], [0, 1, 2])
    np.testing.assert_allclose(seen["proba"], _softmax(outputs))
    np.testing.assert_array_equal(seen["labels"], outputs.argmax(1).numpy())
    np.testing.assert_array_equal(seen["y"], y.numpy())


def test_no_scoring_no_scorer():
    assert MLPClassifier()._epoch_scorer({"classes_": np.arange(2)}, has_valid=True) is None
    assert MLPRegressor()._epoch_scorer({"n_outputs_": 1, "_y_1d": True}, False) is None


# --- refused before training ------------------------------------------------------------


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(n_samples=400, n_features=10, n_informative=4, flip_y=0.1,
                               random_state=0)
    return X, y


@pytest.mark.parametrize("estimator, message", [
    (MLPClassifier(scoring="roc"), "'scoring' parameter.*scorer name.*get_scorer_names"),
    (MLPClassifier(scoring=3), "'scoring' parameter"),
    (MLPClassifier(scoring="roc_auc"), "scoring='roc_auc' is computed on a validation set: "
                                       "set early_stopping=True or pass validation_data"),
    (MLPRegressor(scoring="roc_auc", early_stopping=True),
     "scoring='roc_auc' scores the output of decision_function or predict_proba, which "
     "MLPRegressor does not have.*'r2'"),
])
def test_bad_scoring_is_refused_before_training(binary, estimator, message):
    X, y = binary
    with mock.patch("sknets._engine.net.TensorNet.train_epochs") as train:
        with pytest.raises(ValueError, match=message):
            estimator.set_params(max_epochs=2).fit(X, y)
    train.assert_not_called()
    assert not hasattr(estimator, "n_epochs_")


# --- end to end -------------------------------------------------------------------------


def test_roc_auc_is_recorded_chooses_the_best_epoch_and_stops(binary):
    X, y = binary
    clf = MLPClassifier(**FAST, max_epochs=60, scoring="roc_auc", early_stopping=True,
                        patience=4, tol=0.0)
    clf.fit(X[:300], y[:300], validation_data=(X[300:], y[300:]))
    history = clf.history_
    assert "valid_roc_auc" in history.columns
    scores = history["valid_roc_auc"].to_numpy()
    assert clf.best_epoch_ == int(np.argmax(scores)) + 1
    # The best epoch is that of the score, not of the validation loss.
    assert clf.best_epoch_ != int(history["valid_loss"].idxmin()) + 1
    assert clf.n_epochs_ < 60 and clf.n_epochs_ == clf.best_epoch_ + 4
    # Its weights are restored: the recorded score is the fitted model's.
    proba = clf.predict_proba(X[300:])[:, 1]
    assert scores.max() == pytest.approx(metrics.roc_auc_score(y[300:], proba), abs=1e-9)


def test_a_regression_scorer_end_to_end():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0]))
    reg = MLPRegressor(**FAST, max_epochs=8, loss="poisson", scoring="neg_mean_absolute_error")
    reg.fit(X[:200], y[:200], validation_data=(X[200:], y[200:]))
    scores = reg.history_["valid_neg_mean_absolute_error"].to_numpy()
    assert reg.best_epoch_ == int(np.argmax(scores)) + 1
    assert scores.max() == pytest.approx(
        -metrics.mean_absolute_error(y[200:], reg.predict(X[200:])), rel=1e-6)


def test_a_multilabel_scorer_end_to_end():
    X, y = make_multilabel_classification(n_samples=300, n_features=8, n_classes=3,
                                          random_state=0)
    clf = MLPClassifier(**FAST, max_epochs=8, scoring="f1_micro", early_stopping=True)
    clf.fit(X / X.std(0), y)
    scores = clf.history_["valid_f1_micro"]
    assert scores.between(0, 1).all() and clf.best_epoch_ == int(np.argmax(scores)) + 1


def test_a_callable_scorer_end_to_end(binary):
    X, y = binary

    def neg_brier(estimator, X_out, y_true):
        return -np.mean((estimator.predict_proba(X_out)[:, 1] - y_true) ** 2)

    clf = MLPClassifier(**FAST, max_epochs=5, scoring=neg_brier)
    clf.fit(X[:300], y[:300], validation_data=(X[300:], y[300:]))
    best = clf.history_.set_index("epoch").loc[clf.best_epoch_, "valid_score"]
    assert best == pytest.approx(
        -metrics.brier_score_loss(y[300:], clf.predict_proba(X[300:])[:, 1]), rel=1e-9)


def test_the_score_column_survives_pickle_and_save(binary):
    X, y = binary
    clf = MLPClassifier(**FAST, max_epochs=4, scoring="balanced_accuracy", early_stopping=True)
    clf.fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.history_["valid_balanced_accuracy"],
                                  clf.history_["valid_balanced_accuracy"])
    buffer = io.BytesIO()
    clf.save(buffer)
    buffer.seek(0)
    loaded = load(buffer)
    np.testing.assert_array_equal(loaded.history_["valid_balanced_accuracy"],
                                  clf.history_["valid_balanced_accuracy"])
    # A warm start of the unpickled model scores again.
    restored.set_params(warm_start=True, max_epochs=2).fit(X, y)
    assert restored.history_["valid_balanced_accuracy"].notna().all()
    assert restored.n_epochs_ == 6


def test_a_score_undefined_on_the_validation_set_says_so():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    clf = MLPClassifier(**FAST, max_epochs=3, scoring="neg_log_loss")
    # log_loss needs every class in the validation set; this one lacks class 2.
    with pytest.raises(ValueError, match="scoring='neg_log_loss' could not score the "
                                         "validation set \\(20 samples\\) after an epoch.*"
                                         "scikit-learn says: y_true and y_prob"):
        clf.fit(X, y, validation_data=(X[y < 2][:20], y[y < 2][:20]))
    assert not hasattr(clf, "n_epochs_")


def test_initialize_needs_no_validation_set_for_scoring():
    X = np.random.RandomState(0).rand(20, 3)
    y = np.arange(20) % 2
    clf = MLPClassifier((4,), scoring="roc_auc").initialize(X, y)
    assert clf.n_epochs_ == 0

"""MLPClassifier on multi-label targets: a 0/1 indicator matrix, one sigmoid per label."""

import io
import json
import pickle
import warnings
import zipfile
from unittest import mock

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score
from sklearn.utils import estimator_checks

from sknets import MLPClassifier, _archive, load
from sknets._engine.fused import FusedStep

N_LABELS = 4
FAST = dict(hidden_layers=(16,), lr=1e-2, max_epochs=20, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def multilabel():
    X, y = make_multilabel_classification(n_samples=300, n_features=10, n_classes=N_LABELS,
                                          n_labels=2, random_state=0)
    return X / X.std(0), y


@pytest.fixture(scope="module")
def fitted(multilabel):
    X, y = multilabel
    return MLPClassifier(**FAST).fit(X, y)


def _bce(y, proba, s=0.0):
    target = y * (1 - s) + s / 2
    return -(target * np.log(proba) + (1 - target) * np.log(1 - proba))


def test_predictions_are_indicator_matrices(multilabel, fitted):
    X, y = multilabel
    np.testing.assert_array_equal(fitted.classes_, np.arange(N_LABELS))
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), N_LABELS) and proba.dtype == np.float64
    assert ((proba > 0) & (proba < 1)).all()
    assert not np.allclose(proba.sum(1), 1)  # one probability per label, not a softmax
    predicted = fitted.predict(X)
    assert predicted.shape == y.shape and predicted.dtype == y.dtype
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    np.testing.assert_allclose(fitted.predict_log_proba(X), np.log(proba), rtol=1e-12)
    assert fitted.score(X, y) == accuracy_score(y, predicted)  # subset accuracy
    # It learned: each label is predicted better than by its majority value.
    majority = np.maximum(y.mean(0), 1 - y.mean(0))
    assert ((predicted == y).mean(0) > majority + 0.05).all()


def test_valid_loss_and_accuracy_are_bce_and_subset_accuracy(multilabel):
    X, y = multilabel
    clf = MLPClassifier(**FAST).fit(X[:200], y[:200], validation_data=(X[200:], y[200:]))
    best = clf.history_.set_index("epoch").loc[clf.best_epoch_]
    proba = clf.predict_proba(X[200:])
    assert best["valid_loss"] == pytest.approx(_bce(y[200:], proba).mean(), rel=1e-5)
    assert best["valid_accuracy"] == pytest.approx(clf.score(X[200:], y[200:]), abs=1e-12)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_train_loss_is_the_mean_bce_by_hand(multilabel, label_smoothing, weighted):
    X, y = multilabel
    weight = np.random.RandomState(1).uniform(0, 2, len(y)) if weighted else None
    clf = MLPClassifier((8,), label_smoothing=label_smoothing, lr=1e-12, max_epochs=1,
                        batch_size=len(X), random_state=0).fit(X, y, sample_weight=weight)
    per_sample = _bce(y, clf.predict_proba(X), label_smoothing).mean(1)
    assert clf.history_["train_loss"].iloc[0] == pytest.approx(
        np.average(per_sample, weights=weight), rel=1e-5)


def test_label_smoothing_keeps_probabilities_off_0_and_1(multilabel):
    X, y = multilabel
    sharp = MLPClassifier(**dict(FAST, max_epochs=80)).fit(X, y)
    smooth = MLPClassifier(**dict(FAST, max_epochs=80, label_smoothing=0.4)).fit(X, y)
    # Smoothed targets are 0.2 and 0.8, where the loss is lowest: the
    # probabilities stay nearer 0.5 (at most 0.3 away for most of them).
    sharp_distance = np.abs(sharp.predict_proba(X) - 0.5)
    smooth_distance = np.abs(smooth.predict_proba(X) - 0.5)
    assert np.quantile(sharp_distance, 0.9) > 0.45
    assert np.quantile(smooth_distance, 0.75) < 0.3
    assert smooth_distance.mean() < 0.7 * sharp_distance.mean()


def test_early_stopping_splits_without_stratifying(multilabel):
    X, y = multilabel
    clf = MLPClassifier(**dict(FAST, early_stopping=True, patience=3)).fit(X, y)
    assert clf.history_["valid_accuracy"].between(0, 1).all()
    assert clf.history_["valid_loss"].notna().all()


def test_sample_weight_zero_ignores_samples(multilabel):
    X, y = multilabel
    flipped = y.copy()
    flipped[:150] = 1 - flipped[:150]  # contradicts the other half
    weight = np.r_[np.zeros(150), np.ones(150)]
    clf = MLPClassifier(**dict(FAST, max_epochs=40)).fit(X, flipped, sample_weight=weight)
    # Trained on the second half only, it predicts the true labels of the first half.
    assert (clf.predict(X[:150]) == y[:150]).mean() > 0.7


@pytest.mark.parametrize("class_weight", ["balanced", {0: 2.0}])
def test_class_weight_is_refused(multilabel, class_weight):
    X, y = multilabel
    with pytest.raises(ValueError, match="multi-label indicator matrix.*class_weight=None"):
        MLPClassifier(**dict(FAST, class_weight=class_weight)).fit(X, y)


def test_sparse_and_list_targets_train_alike(multilabel):
    X, y = multilabel
    dense = MLPClassifier(**dict(FAST, max_epochs=3)).fit(X, y).predict_proba(X)
    for form in (scipy.sparse.csr_matrix(y), y.tolist(), y.astype(bool)):
        np.testing.assert_array_equal(
            MLPClassifier(**dict(FAST, max_epochs=3)).fit(X, form).predict_proba(X), dense)


def test_partial_fit(multilabel):
    X, y = multilabel
    clf = MLPClassifier(**FAST)
    clf.partial_fit(X[:150], y[:150])
    clf.partial_fit(X[150:], y[150:], classes=np.arange(N_LABELS))
    assert clf.n_epochs_ == 2
    np.testing.assert_array_equal(clf.classes_, np.arange(N_LABELS))
    with pytest.raises(ValueError, match="multi-label indicator matrix of 4 columns.*"
                                         "3 columns"):
        clf.partial_fit(X, y[:, :3])
    with pytest.raises(ValueError, match="fitted on a multi-label indicator matrix"):
        clf.partial_fit(X, y[:, 0])
    assert clf.n_epochs_ == 2
    with pytest.raises(ValueError, match="column indices \\[0, 1, 2, 3\\]"):
        MLPClassifier(**FAST).partial_fit(X, y, classes=["a", "b", "c", "d"])


def test_warm_start_keeps_the_kind_of_target(multilabel):
    X, y = multilabel
    clf = MLPClassifier(**dict(FAST, max_epochs=2, warm_start=True)).fit(X, y)
    proba = clf.predict_proba(X)
    with pytest.raises(ValueError, match="fitted on a multi-label indicator matrix"):
        clf.fit(X, y.argmax(1))
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    single = MLPClassifier(**dict(FAST, max_epochs=2, warm_start=True)).fit(X, y.argmax(1))
    with pytest.raises(ValueError, match="fitted on one label per sample"):
        single.fit(X, y)


def test_multiclass_multioutput_is_refused(multilabel):
    X, y = multilabel
    with pytest.raises(ValueError, match="multiclass-multioutput.*MultiOutputClassifier"):
        MLPClassifier(**FAST).fit(X, y * np.arange(1, N_LABELS + 1))


def test_a_column_vector_is_one_label_per_sample(multilabel):
    X, y = multilabel
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        clf = MLPClassifier(**dict(FAST, max_epochs=2)).fit(X, y[:, :1])
    assert clf.predict(X).shape == (len(X),)
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_pickle_round_trip(multilabel, fitted):
    X, _ = multilabel
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    assert clone(fitted).get_params() == fitted.get_params()


def test_save_and_load_round_trip(multilabel, fitted):
    X, _ = multilabel
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    restored = load(buffer)
    np.testing.assert_array_equal(restored.classes_, fitted.classes_)
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))


@pytest.mark.parametrize("flag, classes", [(False, None), ("yes", None), (True, [1, 2, 3, 4])])
def test_a_tampered_flag_is_refused(multilabel, fitted, flag, classes):
    buffer = io.BytesIO()
    fitted.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    document = json.loads(members[_archive.MODEL])
    assert document["fitted"]["_multilabel"] is True
    document["fitted"]["_multilabel"] = flag
    if classes is not None:
        document["fitted"]["classes_"]["values"] = classes
    members[_archive.MODEL] = json.dumps(document).encode()
    tampered = io.BytesIO()
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    tampered.seek(0)
    with pytest.raises(ValueError, match="fitted._multilabel must be true"):
        load(tampered)


@pytest.mark.parametrize("check", [
    estimator_checks.check_classifiers_multilabel_representation_invariance,
    estimator_checks.check_classifiers_multilabel_output_format_predict,
    estimator_checks.check_classifiers_multilabel_output_format_predict_proba,
])
def test_scikit_learn_multilabel_checks(check):
    # test_estimator_checks runs them too, through the multi_label tag; here
    # they run whatever the tag says.
    clf = MLPClassifier(**FAST)
    assert clf.__sklearn_tags__().classifier_tags.multi_label
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)
        check("MLPClassifier", clf)


def test_training_runs_on_the_fused_path(multilabel):
    X, y = multilabel
    with mock.patch.object(FusedStep, "__call__", autospec=True,
                           side_effect=FusedStep.__call__) as step:
        MLPClassifier(**dict(FAST, max_epochs=2, batch_size=100)).fit(X, y)
    assert step.call_count == 6

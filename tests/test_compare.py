"""compare(): fitted networks side by side on a test set."""

import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import log_loss, mean_squared_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknets import MLPClassifier, MLPRegressor, compare

@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:700] / 16, y[:700], X[700:1000] / 16, y[700:1000]


def test_classifiers(digits, fast_training):
    X, y, X_test, y_test = digits
    small = MLPClassifier((8,), max_epochs=4, **fast_training).fit(X, y)
    large = MLPClassifier((32,), max_epochs=6, early_stopping=True, **fast_training).fit(X, y)
    table = compare({"small": small, "large": large}, X_test, y_test)
    assert list(table.index) == ["small", "large"] and table.index.name == "model"
    assert list(table.columns) == ["test_accuracy", "test_log_loss", "train_loss", "best_epoch",
                                   "epochs", "parameters", "fit_seconds"]
    row = table.loc["large"]
    assert row["test_accuracy"] == pytest.approx(large.score(X_test, y_test))
    proba = large.predict_proba(X_test)
    assert row["test_log_loss"] == pytest.approx(
        log_loss(y_test, proba / proba.sum(1, keepdims=True)), rel=1e-5)
    assert row["best_epoch"] == large.best_epoch_ and row["epochs"] == 6
    assert row["train_loss"] == pytest.approx(
        large.history_["train_loss"].iloc[large.best_epoch_ - 1])
    assert row["parameters"] == 64 * 32 + 32 + 32 * 10 + 10
    assert row["fit_seconds"] == large.fit_seconds_
    assert table.loc["small", "epochs"] == 4


def test_regressor_pipeline_and_default_names(digits, fast_training):
    X, _, X_test, _ = digits
    target, test_target = X[:, :3].sum(1), X_test[:, :3].sum(1)
    reg = make_pipeline(StandardScaler(), MLPRegressor((8,), max_epochs=5, **fast_training))
    reg.fit(X, target)
    other = MLPRegressor((4,), max_epochs=2, **fast_training).fit(X, target)
    table = compare([reg, other, other], X_test, test_target)
    assert list(table.index) == ["Pipeline", "MLPRegressor 1", "MLPRegressor 2"]
    assert list(table.columns[:2]) == ["test_r2", "test_mse"]
    predicted = reg.predict(X_test)
    assert table.loc["Pipeline", "test_r2"] == pytest.approx(r2_score(test_target, predicted))
    assert table.loc["Pipeline", "test_mse"] == pytest.approx(
        mean_squared_error(test_target, predicted))
    assert table.loc["Pipeline", "parameters"] == 64 * 8 + 8 + 8 + 1


def test_errors(digits, fast_training):
    X, y, X_test, _ = digits
    clf = MLPClassifier((8,), max_epochs=1, **fast_training).fit(X, y)
    with pytest.raises(ValueError, match="y_test is needed"):
        compare(clf, X_test)
    with pytest.raises(TypeError, match="not an sknets network"):
        compare(PCA(2).fit(X), X_test)

"""compare(): fitted networks side by side on a test set, once or over repeated runs."""

import math
import re

import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import log_loss, mean_squared_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknets import MLPClassifier, MLPRegressor, compare
from sknets.inspection.compare import compare_runs, mean_interval, paired_test

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


# Student's t quantiles from a printed table: t(0.975; df).
T_975 = {2: 4.302653, 4: 2.776445}


def _two_sided_p_df2(t):
    # Student's t with 2 degrees of freedom has the closed-form CDF
    # F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so P(|T| > |t|) = 1 - |t| / sqrt(2 + t^2).
    return 1 - abs(t) / math.sqrt(2 + t * t)


def test_mean_interval_by_hand():
    values = [0.95, 0.97, 0.96, 0.99, 0.98]
    mean = sum(values) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 4)
    half = T_975[4] * sd / math.sqrt(5)
    got = mean_interval(values)
    assert got == pytest.approx((mean, mean - half, mean + half), rel=1e-6)
    # over folds: variance (1/J + n_test/n_train) * s^2
    got = mean_interval(values, test_fraction=0.25)
    half = T_975[4] * sd * math.sqrt(1 / 5 + 0.25)
    assert got == pytest.approx((mean, mean - half, mean + half), rel=1e-6)
    single = mean_interval([0.9])
    assert single[0] == 0.9 and math.isnan(single[1]) and math.isnan(single[2])


def test_paired_t_test_by_hand():
    a, b = [0.97, 0.99, 0.96], [0.95, 0.96, 0.955]
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / 2)
    t = mean / (sd / math.sqrt(3))
    got = paired_test(a, b)
    assert got["difference"] == pytest.approx(mean)
    assert got["t"] == pytest.approx(t, rel=1e-9)
    assert got["p_value"] == pytest.approx(_two_sided_p_df2(t), rel=1e-6)
    half = T_975[2] * sd / math.sqrt(3)
    assert (got["low"], got["high"]) == pytest.approx((mean - half, mean + half), rel=1e-6)
    # Nadeau and Bengio over 3 folds of a 3-fold split: n_test / n_train = 1/2
    t_corrected = mean / math.sqrt((1 / 3 + 1 / 2) * sd ** 2)
    got = paired_test(a, b, test_fraction=0.5)
    assert got["t"] == pytest.approx(t_corrected, rel=1e-9)
    assert got["p_value"] == pytest.approx(_two_sided_p_df2(t_corrected), rel=1e-6)
    assert got["p_value"] > paired_test(a, b)["p_value"]  # the correction is conservative
    same = paired_test([0.9, 0.8], [0.9, 0.8])
    assert (same["t"], same["p_value"]) == (0.0, 1.0)


def test_sentences_and_verdict():
    noisy = compare_runs(pd.DataFrame({"1 layer": [0.96, 0.97, 0.98],
                                       "2 layers": [0.97, 0.97, 0.99]}), "test_accuracy")
    (sentence,) = noisy.sentences()
    assert re.fullmatch(r"1 layer vs 2 layers: -0\.7 points \(95% CI -2\.1 to \+0\.8\), "
                        r"p = 0\.18 over 3 seeds: not a significant difference", sentence)
    assert noisy.verdict().startswith("No model is clearly the best: 2 layers")
    clear = compare_runs(pd.DataFrame({"a": [0.90, 0.91, 0.92, 0.93],
                                       "b": [0.80, 0.80, 0.81, 0.83]}), "test_accuracy")
    assert clear.verdict().startswith("a is the best model")
    assert clear.significant() == {"b": True}
    losses = compare_runs(pd.DataFrame({"a": [0.3, 0.31], "b": [0.2, 0.22]}), "test_mse")
    assert losses.best == "b"  # lower is better


def test_one_run_reproduces_the_single_table(digits, fast_training):
    X, y, X_test, y_test = digits
    model = MLPClassifier((8,), max_epochs=2, **fast_training).fit(X, y)
    single = compare({"m": model}, X_test, y_test)
    assert list(single.columns) == ["test_accuracy", "test_log_loss", "train_loss",
                                    "best_epoch", "epochs", "parameters", "fit_seconds"]
    assert type(single) is pd.DataFrame
    pd.testing.assert_frame_equal(compare({"m": [model]}, X_test, y_test), single)
    pd.testing.assert_frame_equal(compare({"m": model}, X_test, y_test, n_repeats=1,
                                          train=(X, y)), single)


def test_repeats_over_seeds(digits, fast_training):
    X, y, X_test, y_test = digits
    template = MLPClassifier((8,), max_epochs=2, **fast_training)
    table = compare({"a": template, "b": MLPClassifier((4,), max_epochs=2, **fast_training)},
                    X_test, y_test, n_repeats=3, train=(X, y),
                    scoring={"test_balanced_accuracy": "balanced_accuracy"})
    assert (table.n_repeats, table.design, table.test) == (3, "seeds", "paired t-test")
    runs = table.runs
    first = MLPClassifier((8,), max_epochs=2, **{**fast_training, "random_state": 1})
    assert runs.loc[(runs.model == "a") & (runs.run == 1), "test_accuracy"].item() == \
        pytest.approx(first.fit(X, y).score(X_test, y_test))
    for name in ("a", "b"):
        scores = runs.loc[runs.model == name, "test_accuracy"]
        assert table.loc[name, "test_accuracy"] == pytest.approx(scores.mean())
    assert "test_balanced_accuracy_high" in table.columns
    other = "b" if table.best == "a" else "a"
    expected = paired_test(runs.loc[runs.model == other, "test_accuracy"],
                           runs.loc[runs.model == table.best, "test_accuracy"])
    assert table.loc[other, "p_value"] == pytest.approx(expected["p_value"])
    with pytest.raises(ValueError, match="train=\\(X_train, y_train\\)"):
        compare(template, X_test, y_test, n_repeats=2)
    with pytest.raises(ValueError, match="same number of runs"):
        compare({"a": [template.fit(X, y)], "b": [template, template]}, X_test, y_test)


def test_cross_validation_uses_the_corrected_test(digits, fast_training):
    X, y, _, _ = digits
    table = compare({"a": MLPClassifier((8,), max_epochs=2, **fast_training),
                     "b": MLPClassifier((2,), max_epochs=2, **fast_training)}, X, y, cv=3)
    assert (table.n_repeats, table.design) == (3, "cv")
    assert table.test == "corrected resampled t-test"
    runs = table.runs
    other = "b" if table.best == "a" else "a"
    d = (runs.loc[runs.model == other, "test_accuracy"].to_numpy()
         - runs.loc[runs.model == table.best, "test_accuracy"].to_numpy())
    mean, var = d.mean(), d.var(ddof=1)
    t = mean / math.sqrt((1 / 3 + (len(X) / 3) / (len(X) * 2 / 3)) * var)
    assert table.loc[other, "t"] == pytest.approx(t, rel=1e-3)
    assert table.loc[other, "p_value"] == pytest.approx(_two_sided_p_df2(t), rel=1e-3)

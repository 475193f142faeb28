"""The core estimators on real MNIST (folder from SKNETS_TEST_DATA)."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sknets import MLPClassifier

# Every test here trains on real MNIST.
pytestmark = pytest.mark.slow


def test_784_100_10_three_epochs_scores_093(mnist_small):
    X_train, y_train, X_test, y_test = mnist_small
    clf = MLPClassifier(hidden_layers=(100,), lr=3e-3, batch_size=100, max_epochs=3,
                        random_state=0)
    clf.fit(X_train, y_train)
    assert clf.n_epochs_ == 3
    assert clf.score(X_test, y_test) >= 0.93


def test_grid_search_over_hidden_layers_runs_and_picks(mnist_small):
    X_train, y_train, _, _ = mnist_small
    X, y = X_train[:3000], y_train[:3000]
    search = GridSearchCV(MLPClassifier(max_epochs=3, lr=3e-3, batch_size=100, random_state=0),
                          {"hidden_layers": [(32,), (64, 32)]}, cv=3)
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(scores > 0.8)
    assert search.best_params_["hidden_layers"] == [(32,), (64, 32)][int(np.argmax(scores))]


def test_pipeline_with_scaler(mnist_small):
    X_train, y_train, X_test, y_test = mnist_small
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(max_epochs=3, random_state=0))])
    pipe.fit(X_train[:5000], y_train[:5000])
    assert pipe.predict(X_test).shape == (10_000,)
    assert pipe.score(X_test, y_test) > 0.9

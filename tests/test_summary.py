"""Keras-style summaries and parameter counts."""

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from sknets import MLPClassifier, summary
from sknets.inspection.summary import ModelSummary, count_parameters


def keras_style_model():
    """A six-layer Keras model with dropout and batch normalisation, rebuilt with torch.nn."""
    return nn.Sequential(
        nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.33),
        nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
        nn.Linear(64, 128), nn.ReLU(),
        nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


@pytest.fixture(scope="module")
def mnist_shaped_classifier():
    rng = np.random.RandomState(0)
    X, y = rng.rand(50, 784).astype(np.float32), rng.randint(0, 10, 50)
    y[:10] = np.arange(10)
    return MLPClassifier((100,), max_epochs=1, random_state=0, n_threads=1).fit(X, y), X


def test_784_100_10_classifier(mnist_shaped_classifier):
    clf, _ = mnist_shaped_classifier
    table = summary(clf)
    assert isinstance(table, ModelSummary)
    assert table.total_params == table.trainable_params == 79_510
    assert table.non_trainable_params == 0
    assert table["type"].tolist() == ["Linear", "ReLU", "Linear"]
    assert table["output_shape"].tolist() == [(None, 100), (None, 100), (None, 10)]
    assert table["parameters"].tolist() == [78_500, 0, 1_010]
    assert "Total params: 79,510" in str(table)
    assert count_parameters(clf) == 79_510


def test_keras_style_model_counts_like_keras():
    table = summary(keras_style_model())
    assert table.total_params == 76_042
    assert table.trainable_params == 75_914
    assert table.non_trainable_params == 128
    linear_and_norm = table[table["type"].isin(["Linear", "BatchNorm1d"])]
    # the Param # column of the seed's Keras summary, layer by layer
    assert linear_and_norm["parameters"].tolist() == [50240, 4160, 256, 8320, 8256, 4160, 650]
    norm = table[table["type"] == "BatchNorm1d"].iloc[0]
    assert (norm["parameters"], norm["trainable"]) == (256, 128)
    text = table.to_text().splitlines()
    assert text[0] == 'Model: "Sequential"'
    assert text[-4:-1] == ["Total params: 76,042", "Trainable params: 75,914",
                           "Non-trainable params: 128"]
    assert any(line.startswith("4 (BatchNorm1d)") and line.endswith(" 256")
               and "(None, 64)" in line for line in text)


def test_summary_keeps_the_module_mode_and_counts_frozen_weights():
    model = keras_style_model().train()
    model[0].weight.requires_grad_(False)
    table = summary(model)
    assert model.training and all(m.training for m in model.modules())
    assert table.trainable_params == 75_914 - 784 * 64
    assert table.total_params == 76_042


def test_input_size_and_unknown_shapes():
    conv = nn.Sequential(nn.Conv1d(1, 4, 3), nn.Flatten())
    assert summary(conv)["output_shape"].tolist() == [None, None]
    assert "?" in str(summary(conv))
    shapes = summary(conv, input_size=(1, 10))["output_shape"].tolist()
    assert shapes == [(None, 4, 8), (None, 32)]


def test_shared_parameters_are_counted_once():
    layer = nn.Linear(5, 5)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    table = summary(model)
    assert table["type"].tolist() == ["Linear", "ReLU"]  # torch lists a shared layer once
    assert table.total_params == 30


def test_pipeline_and_html(mnist_shaped_classifier):
    clf, X = mnist_shaped_classifier
    y = clf.predict(X)
    pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), max_epochs=1, n_threads=1))
    table = summary(pipe.fit(X, y))
    assert table.total_params == 784 * 8 + 8 + 8 * len(np.unique(y)) + len(np.unique(y))
    html = table._repr_html_()
    assert "<table" in html and "Total params" in html
    assert type(table.head(1)).__name__ == "DataFrame"  # slices are plain frames


def test_summary_batch_norm_estimator(mnist_shaped_classifier):
    _, X = mnist_shaped_classifier
    y = np.arange(len(X)) % 3
    clf = MLPClassifier((32, 16), batch_norm=True, max_epochs=1, n_threads=1).fit(X, y)
    table = summary(clf)
    expected_stats = 2 * (32 + 16)
    assert table.non_trainable_params == expected_stats
    assert table.total_params == sum(p.numel() for p in clf.module_.parameters()) + expected_stats
    torch.testing.assert_close(torch.tensor(table.trainable_params),
                               torch.tensor(sum(p.numel() for p in clf.module_.parameters())))


def test_summary_of_a_model_fitted_on_a_table():
    import pandas as pd

    from sknets import MLPClassifier, summary

    X = pd.DataFrame({"size": np.arange(30.0), "colour": list("xyz") * 10})
    y = np.arange(30) % 2
    text = str(summary(MLPClassifier((4,), max_epochs=1, random_state=0).fit(X, y)))
    # one standardised number and three one-hot columns feed the first layer
    assert "Total params: 30" in text

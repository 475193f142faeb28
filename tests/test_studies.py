"""The named studies and the data they run on."""

import json

import numpy as np
import pytest

from sknets.cli import main
from sknets.studies import (STUDIES, UNAVAILABLE, StudySettings, default_threads,
                            load_study_data)

QUICK = ["--epochs", "2", "--quiet", "--n-train", "600"]


def test_digits_split():
    data = load_study_data("digits", random_state=0)
    assert data.sizes() == {"train": 1283, "validation": 257, "test": 257}
    assert data.X_train.dtype == np.float32 and data.X_train.max() == 1.0
    assert list(data.labels) == list("0123456789")
    assert set(data.y_test) == set(data.labels)  # stratified: every class in every set
    again = load_study_data("digits", random_state=0)
    np.testing.assert_array_equal(data.X_val, again.X_val)
    other = load_study_data("digits", random_state=1)
    assert not np.array_equal(data.X_val, other.X_val)
    small = load_study_data("digits", n_train=600, n_test=50)
    assert small.sizes() == {"train": 500, "validation": 100, "test": 50}


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar'.*digits, mnist"):
        load_study_data("cifar")


def test_settings_override_study_defaults():
    study = STUDIES["architectures"]
    data = load_study_data("digits", n_train=100)
    params = study.params(data, StudySettings(), dropout=0.2)
    assert (params["lr"], params["max_epochs"], params["dropout"]) == (3e-3, 30, 0.2)
    assert params["n_threads"] == 1
    params = study.params(data, StudySettings(epochs=5, lr=0.1, n_threads=2, random_state=7))
    assert (params["max_epochs"], params["lr"], params["n_threads"]) == (5, 0.1, 2)
    assert params["random_state"] == 7
    data.name = "mnist"  # a 28x28 set: the study's full-size defaults, torch's threads
    assert study.params(data, StudySettings())["lr"] == 2e-4
    assert default_threads(data, None) is None


@pytest.mark.parametrize("name", ["optimizers", "regularizers", "search", "training",
                                  "data-size"])
def test_other_studies_on_digits(name, tmp_path):
    assert main(["study", name, *QUICK, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["tables"]["test_results"]
    expected = {"optimizers": 5, "regularizers": 5, "search": 1, "training": 6,
                "data-size": 6}[name]
    assert len(rows) == expected
    figures = {"optimizers": {"curves.png", "confusion_matrices.png"},
               "regularizers": {"loss_by_model.png", "curves.png", "confusion_matrices.png"},
               "search": {"search_scores.png", "best_curves.png", "confusion_matrices.png"},
               "training": {"learning_rates.png", "curves.png", "confusion_matrices.png",
                            "overfit.png"},
               "data-size": {"curves.png", "confusion_matrices.png"}}
    assert set(results["figures"]) == figures[name]
    assert all((tmp_path / f).stat().st_size > 5_000 for f in figures[name])
    if name == "search":
        table = results["tables"]["search_results"]
        assert [r["hidden_layers"] for r in table] == ["(50,)", "(100,)", "(100, 80)",
                                                       "(256, 128)"]
        assert sorted(r["rank"] for r in table)[0] == 1
        assert 0 < rows[0]["test_balanced_accuracy"] <= 1
    if name == "training":
        assert all(0 < row["test_balanced_accuracy"] <= 1 for row in rows)
        lrs = results["histories"]["SGD + exponential schedule"]["lr"]
        assert lrs[1] < lrs[0]  # the schedule decays
        curves = results["tables"]["overfit_curves"]
        assert len(curves) == 4 and all(0 < r["train_accuracy"] <= 1 for r in curves)
    if name == "data-size":
        sizes = [row["n_train"] for row in rows]
        assert sizes[1] == sizes[2] < sizes[0] / 3  # 25% of the training set


def test_autoencoder_study_or_its_reason(tmp_path, capsys):
    status = main(["study", "autoencoder", *QUICK, "--out", str(tmp_path)])
    if "autoencoder" in STUDIES:
        assert status == 0
        results = json.loads((tmp_path / "results.json").read_text())
        assert [r["model"] for r in results["tables"]["test_results"]] == [
            "code 4", "code 8", "code 16", "code 32"]
        assert "reconstructions.png" in results["figures"]
    else:
        assert status == 1
        assert "AutoencoderTransformer" in capsys.readouterr().err
        assert "AutoencoderTransformer" in UNAVAILABLE["autoencoder"]



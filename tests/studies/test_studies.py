"""The named studies and the data they run on."""

import dataclasses
import json
import re

import numpy as np
import pytest

from sknets.studies import (DATASETS, STUDIES, StudySettings, default_threads, load_study_data,
                            run_study)
from sknets.studies.cli import main
from sknets.studies.report import Report
from sknets.studies.steps import pca_reconstruction_error

QUICK = ["--epochs", "2", "--quiet", "--n-train", "600", "--repeats", "2"]


def test_digits_split():
    data = load_study_data("digits", random_state=0)
    assert data.sizes() == {"train": 1283, "validation": 257, "test": 257}
    assert data.small
    assert data.X_train.dtype == np.float32 and data.X_train.max() == 1.0
    assert list(data.labels) == list(range(10)) and data.y_train.dtype == np.int64
    assert list(data.names) == list("0123456789")
    assert set(data.y_test) == set(data.labels)  # stratified: every class in every set
    again = load_study_data("digits", random_state=0)
    np.testing.assert_array_equal(data.X_val, again.X_val)
    other = load_study_data("digits", random_state=1)
    assert not np.array_equal(data.X_val, other.X_val)
    small = load_study_data("digits", n_train=600, n_test=50)
    assert small.sizes() == {"train": 500, "validation": 100, "test": 50}
    assert data.describe()["classes"] == list("0123456789")


def test_dataset_names_are_the_registry_s():
    assert DATASETS == ("digits", "mnist", "fashion-mnist", "kmnist", "k49")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar'.*digits, mnist"):
        load_study_data("cifar")


def test_unknown_study():
    with pytest.raises(ValueError, match="Unknown study 'nonsense'; the studies are arch"):
        run_study("nonsense", load_study_data("digits", n_train=60))


def test_settings_override_study_defaults():
    study = STUDIES["architectures"]
    data = load_study_data("digits", n_train=100)
    params = study.params(data, StudySettings(), dropout=0.2)
    assert (params["lr"], params["max_epochs"], params["dropout"]) == (3e-3, 30, 0.2)
    assert params["n_threads"] == 1
    params = study.params(data, StudySettings(epochs=5, lr=0.1, n_threads=2, random_state=7))
    assert (params["max_epochs"], params["lr"], params["n_threads"]) == (5, 0.1, 2)
    assert params["random_state"] == 7
    large = dataclasses.replace(data, small=False)  # the study's 28x28 defaults, torch's threads
    assert study.params(large, StudySettings())["lr"] == 2e-4
    assert default_threads(large, None) is None


def test_repeats_must_be_positive():
    with pytest.raises(ValueError, match="repeats must be a positive whole number"):
        StudySettings(repeats=0)


def test_fit_all_pairs_the_runs_by_seed():
    from sknets import MLPClassifier
    from sknets.studies.steps import fit_all

    data = load_study_data("digits", n_train=120)
    runs = fit_all({"a": MLPClassifier((4,), max_epochs=1), "b": MLPClassifier((8,), max_epochs=1)},
                   data, StudySettings(progress=False, repeats=3, random_state=5), "t")
    assert [[m.random_state for m in ms] for ms in runs.values()] == [[5, 6, 7]] * 2
    assert all(m.verbose == 0 for ms in runs.values() for m in ms)


def test_every_study_is_described():
    assert list(STUDIES) == ["architectures", "optimizers", "regularizers", "search",
                             "autoencoder", "training", "data-size"]
    for study in STUDIES.values():
        assert len(study.description) > 80 and "\n" not in study.description
        assert study.small["max_epochs"] and study.full["max_epochs"]


def test_pca_reconstruction_error_falls_with_components():
    data = load_study_data("digits")
    errors = [pca_reconstruction_error(data.X_train, data.X_test, n) for n in (4, 16, 64)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-12 < errors[0]


def test_optimizers_study_through_the_command(tmp_path):
    assert main(["study", "optimizers", *QUICK, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["tables"]["test_results"]
    assert [row["model"] for row in rows] == [
        "sgd (lr=0.1)", "momentum (lr=0.01)", "rmsprop (lr=0.001)", "adagrad (lr=0.01)",
        "adam (lr=0.001)"]
    assert [results["parameters"][row["model"]]["optimizer"] for row in rows] == [
        "sgd", "momentum", "rmsprop", "adagrad", "adam"]
    assert results["figures"] == ["curves.png", "confusion_matrices.png"]
    assert all((tmp_path / f).stat().st_size > 5_000 for f in results["figures"])


@pytest.mark.parametrize("name", ["training", "data-size"])
def test_training_and_data_size_studies_through_the_command(name, tmp_path):
    assert main(["study", name, *QUICK, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["tables"]["test_results"]
    assert len(rows) == 6
    figures = {"training": {"learning_rates.png", "curves.png", "confusion_matrices.png",
                            "overfit.png"},
               "data-size": {"curves.png", "confusion_matrices.png"}}[name]
    assert set(results["figures"]) == figures
    assert all((tmp_path / f).stat().st_size > 5_000 for f in figures)
    if name == "training":
        assert all(0 < row["test_balanced_accuracy"] <= 1 for row in rows)
        lrs = results["histories"]["SGD + exponential schedule"]["lr"]
        assert lrs[1] < lrs[0]  # the schedule decays
        curves = results["tables"]["overfit_curves"]
        assert len(curves) == 4 and all(0 < r["train_accuracy"] <= 1 for r in curves)
        assert results["parameters"]["Adam + L2 + early stopping"]["patience"] == 5
    else:
        sizes = [row["n_train"] for row in rows]
        assert sizes[0] == 500  # all of the training set
        assert sizes[1] == sizes[2] < sizes[0] / 3  # 25% of it
        assert [results["parameters"][row["model"]]["activation"] for row in rows[2:4]] == [
            "relu", "sigmoid"]


def test_autoencoder_study(tmp_path):
    assert main(["study", "autoencoder", *QUICK, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["tables"]["test_results"]
    assert [r["model"] for r in rows] == ["code 4", "code 8", "code 16", "code 32"]
    assert all(0 < r["test_mse"] < 1 and 0 < r["pca_test_mse"] < 1 for r in rows)
    # PCA with more components reconstructs better, always
    assert [r["pca_test_mse"] for r in rows] == sorted((r["pca_test_mse"] for r in rows),
                                                       reverse=True)
    assert results["parameters"]["code 16"]["code_size"] == 16
    assert results["figures"] == ["curves.png", "reconstructions.png"]
    assert all(len(h["epoch"]) == 2 for h in results["histories"].values())


def _curves(axis):
    return [points for _, marker, points in axis["lines"] if marker != "*"]


def _stars(axis):
    return [points for _, marker, points in axis["lines"] if marker == "*"]


def test_architectures_figures_content(architectures):
    epochs = list(range(1, architectures.epochs + 1))
    histories = architectures.results.histories
    table = architectures.results.tables["test_results"]
    loss, accuracy = architectures.axes["curves"]
    assert (loss["xlabel"], loss["ylabel"]) == ("epoch", "loss")
    assert (accuracy["xlabel"], accuracy["ylabel"]) == ("epoch", "accuracy")
    assert _curves(loss) == [epochs] * 8  # train and validation of 4 models
    assert _curves(accuracy) == [epochs] * 4  # validation only
    runs = architectures.results.tables["test_runs"]
    best = [[int(np.sort(runs.loc[name, "best_epoch"])[(len(runs.loc[name]) - 1) // 2])]
            for name in histories]  # the median run's best epoch
    assert _stars(loss) == best and _stars(accuracy) == best
    assert table["best_epoch"].tolist() == [runs.loc[n, "best_epoch"].mean() for n in histories]
    matrices = architectures.axes["confusion_matrices"]
    assert [m["title"] for m in matrices] == list(histories)
    assert all(m["images"] == [(10, 10), (10, 10)] for m in matrices)  # hits, errors
    assert all(m["xlabel"] == "Predicted label" for m in matrices)


def test_regularizers_and_search_figures_content(tmp_path, figure_axes):
    axes = figure_axes
    data = load_study_data("digits", n_train=600)
    settings = StudySettings(epochs=3, progress=False, repeats=2)
    report = run_study("regularizers", data, settings, Report("t"))
    histories = report.results["histories"]
    panels = axes["loss_by_model"]
    assert [p["title"] for p in panels] == list(histories)
    runs = report.tables["test_runs"]
    for panel, name in zip(panels, histories):
        assert _curves(panel) == [[1, 2, 3]] * 2
        assert _stars(panel) == [[min(runs.loc[name, "best_epoch"])]]

    report.write(tmp_path / "regularizers")
    assert {p.name for p in (tmp_path / "regularizers").glob("*.png")} == {
        "loss_by_model.png", "curves.png", "confusion_matrices.png"}

    report = run_study("search", data, settings, Report("t"))
    assert list(report.tables["test_results"].columns[:3]) == [
        "test_accuracy", "test_log_loss", "test_balanced_accuracy"]
    assert list(report.results["histories"]) == report.tables["test_results"].index.tolist()
    assert report.tables["search_results"].index.tolist() == [
        "(50,)", "(100,)", "(100, 80)", "(256, 128)"]
    (scores,) = axes["search_scores"]
    assert scores["xlabel"] == "hidden_layers"
    ranks = report.tables["search_results"]["rank"].tolist()
    colours = [tuple(np.round(c, 3)) for c in scores["patches"]]
    assert len(colours) == 4 and len(set(colours)) == 2
    assert colours[ranks.index(1)] != colours[ranks.index(2)]
    search = report.tables["search_results"]
    assert report.results["comparison"]["test"] == "corrected resampled t-test"
    assert report.results["comparison"]["n_repeats"] == 6  # 3 folds drawn twice
    assert search["p_value"].isna().sum() == 1 and search["accuracy_low"].notna().all()
    loss, _ = axes["best_curves"]
    assert _curves(loss) == [[1, 2, 3]] * 2
    # Candidates of one depth trained together, each as its own fit.
    timing = report.tables["search_time"]["seconds"]
    assert np.isclose(timing["time saved"],
                      timing["search fitting one candidate at a time (estimated)"]
                      - timing["search, candidates trained together"])
    assert 0 < timing["of which training"] < timing["search, candidates trained together"]
    # 2 depths, 2 widths each, on 6 splits; the separate fits score the same.
    assert report.results["search"] == {"n_stacked_groups": 2, "n_stacked_fits": 4 * 6,
                                        "first_split_scores_equal": True}


def test_the_progress_bar_counts_the_epochs_of_every_fit_a_search_makes(tmp_path, capsys):
    # Not --quiet: the bar is passed to the networks (and the search's clones) as a callback.
    assert main(["study", "search", "--epochs", "2", "--n-train", "300", "--repeats", "1",
                 "--out", str(tmp_path)]) == 0
    bar = capsys.readouterr().err
    # Every epoch of every candidate, fold and the refit of the best moved it to the end.
    assert re.search(r"search: 100%\|.*\| (\d+)/\1 ", bar), bar[-300:]

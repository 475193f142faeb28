"""The sknets command: studies and training runs writing their reports."""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import sknets
from sknets.studies.cli import main


def test_study_writes_report_files(architectures):
    out, results = architectures.out, architectures.results
    names = {p.name for p in out.iterdir()}
    assert names == {"report.html", "results.json", "curves.png", "confusion_matrices.png",
                     "test_results.csv", "test_runs.csv", "parameters.csv", "data.csv"}
    assert results.study == "architectures"
    assert results.command == architectures.command
    dataset = results.dataset
    assert dataset["name"] == "digits"
    assert (dataset["train"], dataset["validation"], dataset["test"]) == (1283, 257, 257)
    models = ["1 layer", "2 layers", "1 layer + L2", "1 layer + dropout"]
    table = results.tables["test_results"]
    assert table.index.tolist() == models
    assert all(len(results.histories[m]["epoch"]) == architectures.epochs for m in models)
    assert results.parameters["2 layers"]["hidden_layers"] == [100, 100]
    assert results.parameters["1 layer + dropout"]["dropout"] == 0.2
    assert results.parameters["1 layer"]["max_epochs"] == architectures.epochs
    assert (table["test_accuracy"] > 0.5).all() and (table["test_accuracy"] <= 1).all()
    assert table["best_epoch"].between(1, architectures.epochs).all()
    assert results.versions["sknets"] == sknets.__version__
    comparison = results.comparison
    assert (comparison["n_repeats"], comparison["test"]) == (5, "paired t-test")
    assert len(comparison["sentences"]) == 3
    assert all(re.search(r"\(95% CI [-+]\d", s) and " over 5 seeds: " in s
                         or "the same score" in s for s in comparison["sentences"])
    assert (table["test_accuracy_low"] <= table["test_accuracy"]).all()
    runs = results.tables["test_runs"]
    assert len(runs) == 4 * 5


def test_report_html_embeds_every_figure(architectures):
    out = architectures.out
    page = (out / "report.html").read_text()
    embedded = [base64.b64decode(data)
                for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    files = [(out / name).read_bytes() for name in ("curves.png", "confusion_matrices.png")]
    assert embedded == files
    for png in files:
        image = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
        assert image.shape[1] > 500 and image.std() > 10
    assert "Total params: 7,510" in page and "Total params: 17,610" in page
    assert "<th>hidden_layers</th>" in page
    assert '<tr class="differs"><th>hidden_layers</th>' in page  # differs, highlighted
    assert page.count("<th>lr</th>") == 1  # shared: shown once
    assert "over 5 seeds" in page and "p = " in page and "95% CI" in page
    assert "src=\"http" not in page and "<script" not in page  # self-contained


def _chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.mark.slow
def test_report_renders_in_headless_chromium(architectures, tmp_path):
    shot = tmp_path / "report.png"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1200,2000",
         (architectures.out / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape == (2000, 1200, 3)
    assert pixels.std() > 20
    non_white = (pixels.min(axis=2) < 240).mean()
    assert non_white > 0.05
    # the figures' coloured curves and matrices, not just black text, are on the page
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 80).sum() > 5_000


def test_command_line_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["study", "nonsense"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study", "--help"])
    assert "architectures" in capsys.readouterr().out
    assert main([]) == 1
    assert "study" in capsys.readouterr().out  # the help, listing the commands


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sknets {sknets.__version__}"


def test_help_spec_is_current():
    from sknets.studies._cli_spec import SPEC
    from sknets.studies.cli import cli_spec

    assert cli_spec() == SPEC, (
        "sknets/studies/_cli_spec.py is out of date; regenerate it with "
        "python -c 'from sknets.studies.cli import write_cli_spec; write_cli_spec()'")


def test_train_flags_help_is_the_docstring_s(capsys):
    from sknets import MLPClassifier

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Dropout rate after each hidden layer (training only). (default: 0.0)" in text
    assert "Number of passes over the training data" in text
    assert "--validation-fraction" not in text
    for name in ("dropout", "batch_size", "lr_schedule", "patience"):
        assert f"--{name.replace('_', '-')}" in text
    assert "validation_fraction" in MLPClassifier().get_params()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--validation-fraction", "0.2"])
    assert exit_info.value.code == 2


def test_train_command(tmp_path, capsys):
    model_path = tmp_path / "model.sknets"
    assert main(["train", "--hidden-layers", "32", "16", "--dropout", "0.2", "--epochs", "3",
                 "--no-shuffle", "--optimizer", "rmsprop", "--patience", "none",
                 "--out", str(tmp_path / "run"), "--save", str(model_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["epoch", "train_loss", "valid_loss"]
    assert [line.split()[0] for line in lines[1:4]] == ["1", "2", "3"]
    assert "test_accuracy" in out
    assert (tmp_path / "run" / "report.html").is_file()
    model = sknets.load(model_path)
    assert (model.hidden_layers, model.dropout, model.optimizer) == ((32, 16), 0.2, "rmsprop")
    assert (model.shuffle, model.patience, model.n_epochs_) == (False, None, 3)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    accuracy = results["tables"]["test_results"][0]["test_accuracy"]
    assert f"{accuracy:.4g}" in out


@pytest.mark.slow
def test_python_dash_m_runs_the_command():
    completed = subprocess.run([sys.executable, "-m", "sknets", "study", "--help"],
                               capture_output=True, text=True, timeout=300, check=True)
    assert "usage: sknets study" in completed.stdout
    for name in ("architectures", "optimizers", "regularizers", "search", "autoencoder",
                 "training", "data-size"):
        assert name in completed.stdout


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--help"], ["study", "--help"], ["train", "--help"]])
def test_help_imports_no_torch(argv):
    code = ("import sys\nfrom sknets.studies.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'matplotlib', 'scipy') "
            "if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=300, check=True)
    assert completed.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_saved_model_scores_on_what_the_fetcher_returns(real_data_home, tmp_path):
    from sknets.datasets import fetch_fashion_mnist

    model_path = tmp_path / "fashion.sknets"
    assert main(["train", "--dataset", "fashion-mnist", "--data-home", str(real_data_home),
                 "--n-train", "1200", "--n-test", "200", "--epochs", "2", "--quiet",
                 "--verbose", "0", "--hidden-layers", "32", "--out", str(tmp_path / "run"),
                 "--save", str(model_path)]) == 0
    model = sknets.load(model_path)
    X, y = fetch_fashion_mnist(subset="test", data_home=real_data_home, return_X_y=True)
    assert 0.3 < model.score(X[:500], y[:500]) <= 1
    assert set(model.classes_) == set(range(10))


@pytest.mark.slow
def test_help_imports_no_study():
    # `sknets --help` must answer at once: the studies (torch, matplotlib) are
    # only imported by the command that runs them.
    code = ("import sys\nfrom sknets.studies.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print([m for m in sys.modules if m.startswith('sknets.studies.') "
            "or m == 'matplotlib.pyplot'])")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=300, check=True)
    assert completed.stdout.splitlines()[-1] == "['sknets.studies.cli']"


@pytest.mark.slow
def test_study_on_real_mnist(real_data_home, tmp_path):
    out = tmp_path / "mnist"
    assert main(["study", "architectures", "--dataset", "mnist", "--data-home",
                 str(real_data_home), "--n-train", "3000", "--n-test", "1000", "--epochs", "3",
                 "--quiet", "--n-threads", "1", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    data = results["dataset"]
    assert (data["name"], data["n_features"]) == ("mnist", 784)
    assert (data["train"], data["validation"], data["test"]) == (2500, 500, 1000)
    assert data["classes"] == list("0123456789")
    assert all(row["test_accuracy"] > 0.6 for row in results["tables"]["test_results"])
    assert all(row["parameters"] in (79_510, 89_610)
               for row in results["tables"]["test_results"])

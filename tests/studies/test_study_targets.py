"""The scripts of benchmarks/studies: the targets run, the collector writes the docs' parts."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks" / "studies"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("target", ["deep-mlp", "autoencoder"])
def test_target_smallest_run(target, real_data_home, tmp_path, capsys):
    targets = _script("targets")
    out = tmp_path / "targets.json"
    records = targets.main([target, "--data-home", str(real_data_home), "--n-train", "600",
                            "--epochs", "1", "--out", str(out)])
    record = json.loads(out.read_text())[target]
    assert record == json.loads(json.dumps(records[0]))
    assert record["n_train"] + record["n_validation"] == 600
    assert record["epochs"] == 1 and len(record["history"]["train_loss"]) == 1
    assert record["met"] == (record["score"] <= 0.7 if target == "autoencoder"
                             else record["score"] >= 0.9768)
    if target == "autoencoder":
        assert 0 < record["test_mse"] and 0 < record["pca_test_mse"] < 0.1
    assert f"| {target} |" in capsys.readouterr().out


def test_unknown_target_is_refused(capsys):
    with pytest.raises(SystemExit):
        _script("targets").main(["nonsense", "--data-home", "."])
    assert "unknown target" in capsys.readouterr().err


def test_collect_shrinks_figures_and_fills_the_page(tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from PIL import Image

    from sknets.studies.report import Report

    report = Report("demo")
    report.results.update(study="demo", command="sknets study demo")
    fig = plt.figure(figsize=(20, 3))
    fig.add_subplot().imshow(np.random.default_rng(0).random((30, 200)))
    report.figure("a", fig)
    frame = pd.DataFrame({"test_accuracy": [0.91234, 0.5], "epochs": [3, 4],
                          "fit_seconds": [1.5, 2.5]}, index=pd.Index(["m1", "m2"], name="model"))
    report.table("test_results", frame)
    report.table("parameters", frame)
    report.write(tmp_path / "run")
    page = tmp_path / "docs" / "studies.md"
    page.parent.mkdir()
    page.write_text("# Studies\n\nprose\n<!-- results: demo -->\nold\n<!-- end results -->\n"
                    "more prose\n")

    collect = _script("collect")
    collect.main([str(tmp_path / "run"), "--figures", str(tmp_path / "docs" / "figures"),
                  "--page", str(page), "--max-width", "500"])
    with Image.open(tmp_path / "docs" / "figures" / "demo" / "a.png") as image:
        assert image.size == (500, 75) and image.mode == "P"
    text = page.read_text()
    assert text.startswith("# Studies\n\nprose\n<!-- results: demo -->\n```bash\n"
                           "sknets study demo\n```")
    assert text.endswith("![a.png](figures/demo/a.png)\n<!-- end results -->\nmore prose\n")
    assert "| m1 | 0.9123 | 3 |" in text and "old" not in text
    assert "**parameters**" not in text and "fit seconds" not in text
    assert "| demo | `sknets study demo` |" in capsys.readouterr().out


def test_collect_names_a_missing_block(tmp_path):
    page = tmp_path / "studies.md"
    page.write_text("no blocks\n")
    with pytest.raises(SystemExit, match="no results block of 'demo'"):
        _script("collect").update_page(page, {"demo": "x"})

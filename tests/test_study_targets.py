"""The scripts of benchmarks/studies: the targets run, the collector writes the docs' parts."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks" / "studies"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target", ["seed003", "autoencoder"])
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


def test_collect_shrinks_figures_and_prints_tables(tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 2000, 3), dtype=np.uint8)).save(run / "a.png")
    rows = [{"model": "m1", "test_accuracy": 0.91234, "epochs": 3},
            {"model": "m2", "test_accuracy": 0.5, "epochs": 4}]
    (run / "results.json").write_text(json.dumps({
        "study": "demo", "command": "sknets study demo", "seconds": 12.3,
        "figures": ["a.png"], "tables": {"test_results": rows, "parameters": rows}}))
    text = _script("collect").collect(run, tmp_path / "figures", max_width=500)
    with Image.open(tmp_path / "figures" / "demo" / "a.png") as image:
        assert image.size == (500, 75) and image.mode == "P"
    assert "| m1 | 0.9123 | 3 |" in text and "**parameters**" not in text
    assert "`sknets study demo` — 12 s" in text

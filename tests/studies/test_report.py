"""Report: the HTML page and the files written beside it."""

import base64
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sknets.studies.report import (Code, Figure, Report, Section, Table, Text,  # noqa: E402
                                   library_versions, read_results)


def test_report_files_and_embedded_figures(tmp_path):
    report = Report("A <test> report")
    report.section("Numbers", "Figures & tables.")
    fig, ax = plt.subplots()
    ax.plot([1, 3, 2])
    report.figure("line", fig, "A line.")
    assert not plt.get_fignums()  # rendered and closed
    report.table("scores", pd.DataFrame({"score": [0.5, np.nan]}, index=["a", "b"]))
    report.code("log", "x < y")
    report.results["extra"] = {"values": (np.float32(1.5), np.int64(2), float("nan"))}
    assert report.items == [Section("Numbers", "Figures & tables."), Figure("line", "A line."),
                            Table("scores"), Code("log", "x < y")]
    path = report.write(tmp_path / "out")

    assert sorted(p.name for p in path.parent.iterdir()) == [
        "line.png", "report.html", "results.json", "scores.csv"]
    page = path.read_text()
    assert "<title>A &lt;test&gt; report</title>" in page
    assert "Figures &amp; tables." in page and "x &lt; y" in page
    (encoded,) = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(encoded) == (tmp_path / "out" / "line.png").read_bytes()
    assert base64.b64decode(encoded)[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'href="#s0">Numbers</a>' in page
    for name, version in library_versions().items():
        assert f"<th>{name}</th><td>{version}</td>" in page

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["extra"] == {"values": [1.5, 2, None]}
    assert results["tables"]["scores"] == [{"index": "a", "score": 0.5},
                                           {"index": "b", "score": None}]
    assert results["figures"] == ["line.png"]
    assert results["versions"]["torch"] == library_versions()["torch"]
    assert pd.read_csv(tmp_path / "out" / "scores.csv", index_col=0)["score"].iloc[0] == 0.5


def test_adding_a_table_again_replaces_it_in_place(tmp_path):
    report = Report("r")
    report.table("t", pd.DataFrame({"v": [1]}))
    report.text("between")
    report.table("t", pd.DataFrame({"v": [2], "w": [3]}))
    page = report.write(tmp_path).read_text()
    assert page.count('<table class="dataframe data">') == 1
    assert page.index("<th>w</th>") < page.index("between")


def test_insight_guide_examples_run(tmp_path, monkeypatch, capsys):
    guide = (Path(__file__).parents[2] / "docs" / "insight.md").read_text()
    blocks = [block.split("```", 1)[0] for block in guide.split("```python\n")[1:]]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        exec(compile(block, "insight.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Total params: 17,610" in out and "76042 75914 128" in out
    assert "Total params: 17,610\nTrainable params: 17,610" in guide
    for name in ("curves.png", "confusion.png", "reconstructions.png",
                 "my-report/report.html", "my-report/test_results.csv"):
        assert (tmp_path / name).is_file()


def test_describe_data_takes_plain_values(tmp_path):
    report = Report("r")
    report.describe_data({"name": "toy", "description": "Three <points>.", "n_features": 2,
                          "classes": ("a", 1), "train": 2, "validation": 0, "test": 1})
    assert report.items[0] == Section("Data", "Three <points>.")
    assert report.items[-1] == Text("2 features; 2 classes.")
    results = read_results(report.write(tmp_path).parent)
    assert results.dataset == {"name": "toy", "description": "Three <points>.",
                               "n_features": 2, "classes": ["a", "1"], "train": 2,
                               "validation": 0, "test": 1}
    assert results.tables["data"]["samples"].to_dict() == {"train": 2, "validation": 0,
                                                           "test": 1}


def test_read_results_follows_the_schema(tmp_path):
    report = Report("r")
    report.results.update(study="demo", command="sknets study demo", custom=[1])
    report.table("test_results", pd.DataFrame({"test_accuracy": [0.5, 0.75]},
                                              index=pd.Index(["a", "b"], name="model")))
    report.write(tmp_path)
    results = read_results(tmp_path)
    assert (results.title, results.study, results.command) == ("r", "demo", "sknets study demo")
    assert results.seconds >= 0 and results.created.endswith("+00:00")
    assert results.tables["test_results"].index.name == "model"
    assert results.tables["test_results"]["test_accuracy"].tolist() == [0.5, 0.75]
    assert results.extra == {"custom": [1]}
    assert results.dataset is None and results.histories is None
    assert set(results.versions) == set(library_versions())

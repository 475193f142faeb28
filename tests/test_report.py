"""Report: the HTML page and the files written beside it."""

import base64
import json
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sknets.studies.report import Report, library_versions  # noqa: E402


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
    from pathlib import Path

    guide = (Path(__file__).parent.parent / "docs" / "insight.md").read_text()
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

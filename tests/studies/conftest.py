"""Shared fixtures of the application's tests: one trained study, and figure recording."""

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from sknets.studies.cli import main  # noqa: E402
from sknets.studies.report import Report, Results, read_results  # noqa: E402

ARCHITECTURES_EPOCHS = 4


def record_figures(monkeypatch):
    """Make every Report keep what each figure's axes hold before it is rendered.

    Returns the dict it fills: figure name -> one entry per axes (title,
    labels, lines as ``(label, marker, x data)``, bar colours, image shapes).
    """
    axes = {}
    figure = Report.figure

    def recording_figure(report, name, fig, caption=""):
        axes[name] = [
            {"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
             "lines": [(line.get_label(), line.get_marker(), list(line.get_xdata()))
                       for line in ax.get_lines()],
             "patches": [p.get_facecolor() for p in ax.patches],
             "images": [im.get_array().shape for im in ax.get_images()]}
            for ax in fig.axes]
        figure(report, name, fig, caption)

    monkeypatch.setattr(Report, "figure", recording_figure)
    return axes


@pytest.fixture
def figure_axes(monkeypatch):
    """What the figures added to any Report during the test hold (see ``record_figures``)."""
    return record_figures(monkeypatch)


@dataclass
class StudyRun:
    """A finished ``sknets study`` run: its folder, command, results and figures' content."""

    out: Path
    command: str
    epochs: int
    results: Results
    axes: dict


@pytest.fixture(scope="session")
def architectures(tmp_path_factory):
    """``sknets study architectures`` on the bundled digits, trained once per test session."""
    out = tmp_path_factory.mktemp("architectures")
    argv = ["study", "architectures", "--epochs", str(ARCHITECTURES_EPOCHS), "--quiet",
            "--out", str(out)]
    with pytest.MonkeyPatch.context() as monkeypatch:
        axes = record_figures(monkeypatch)
        assert main(argv) == 0
    return StudyRun(out, "sknets " + " ".join(argv), ARCHITECTURES_EPOCHS, read_results(out),
                    axes)

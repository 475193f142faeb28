"""Self-contained reports of training runs: one HTML file plus PNG, CSV and JSON.

A :class:`Report` collects sections, figures, tables and text blocks in
order, then :meth:`Report.write` saves them into a folder:

- ``report.html``: everything in one file that opens in any browser, the
  figures embedded as base64 PNG, with the models' exact parameters and the
  library versions;
- ``<figure>.png`` for every figure and ``<table>.csv`` for every table;
- ``results.json``: the same results as data, for other programs; read it
  back with :func:`read_results`.

``results.json`` schema
-----------------------
One JSON object. Always present:

``title`` (str)
    The report's title.
``created`` (str)
    When the report was started, ISO 8601 in UTC.
``seconds`` (float)
    Wall seconds from the report's creation to ``write``.
``tables`` (object)
    Table name -> list of rows; each row an object whose first key is the
    table's index (``"model"`` for the test results) followed by its
    columns. NaN and infinities are written as ``null``.
``figures`` (list of str)
    File names of the figures (``"curves.png"``), in the report's order.
``versions`` (object)
    Library name -> version, plus Python, the platform and CPU count
    (:func:`library_versions`).

Present when the step that writes them ran:

``study`` (str)
    Name of the study (``sknets study NAME``).
``command`` (str)
    The command line that made the report.
``dataset`` (object)
    ``name``, ``description``, ``n_features``, ``classes`` (list of str)
    and the sizes ``train``, ``validation``, ``test``
    (:meth:`Report.describe_data`).
``histories`` (object)
    Model name -> training history, column name -> list with one value per
    epoch (``epoch``, ``train_loss``, ``valid_loss``, ...;
    :meth:`Report.histories`).
``parameters`` (object)
    Model name -> constructor parameters (:meth:`Report.parameters`).
``comparison`` (object)
    How the models compare over repeated runs: ``score`` (the main score),
    ``design`` (``"seeds"`` or ``"cv"``), ``test`` (the paired test used),
    ``n_repeats``, ``confidence``, ``best`` (best mean), ``verdict`` (one
    sentence: the best model only if it differs significantly from every
    other) and ``sentences`` (one per model against the best).

Callers may add other JSON-serialisable entries to :attr:`Report.results`.
"""

import base64
import html
import io
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

RESULTS_FILE = "results.json"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1d2327; background: #fff; line-height: 1.45; }
header { background: #1f3a5f; color: #fff; padding: 1.2em 2em; }
header h1 { margin: 0 0 .3em 0; font-size: 1.6em; }
header p { margin: .15em 0; color: #d6e2f0; font-size: .92em; }
main { padding: 0 2em 2em 2em; max-width: 1200px; }
nav { padding: .6em 2em; background: #eef2f7; font-size: .92em; }
nav a { margin-right: 1.2em; color: #1f3a5f; }
h2 { border-bottom: 2px solid #1f3a5f; padding-bottom: .2em; margin-top: 1.6em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption, .caption { color: #555; font-size: .9em; }
table.data { border-collapse: collapse; font-size: .9em; margin: .6em 0; }
table.data th, table.data td { border: 1px solid #ccd; padding: .25em .6em; text-align: right; }
table.data th { background: #eef2f7; }
table.data td { white-space: nowrap; }
table.data tr.differs td, table.data tr.differs th { background: #fff3c4; }
table.data tr.group th { background: #fff; text-align: left; font-weight: normal;
                         color: #555; border-left: 0; border-right: 0; }
ul.sentences li { margin: .25em 0; }
p.verdict { font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #ddd; padding: .8em; overflow-x: auto;
      font-size: .85em; }
footer { padding: 1em 2em; color: #555; font-size: .85em; border-top: 1px solid #ddd; }
"""


@dataclass(frozen=True)
class Section:
    """A heading, and an optional paragraph under it."""

    heading: str
    text: str = ""

    def html(self, report, anchor):
        paragraph = f"<p>{html.escape(self.text)}</p>" if self.text else ""
        return f'<h2 id="{anchor}">{html.escape(self.heading)}</h2>{paragraph}'


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text."""

    paragraph: str

    def html(self, report, anchor):
        return f"<p>{html.escape(self.paragraph)}</p>"


@dataclass(frozen=True)
class Figure:
    """A figure, by name in :attr:`Report.figures`, with its caption."""

    name: str
    caption: str = ""

    def html(self, report, anchor):
        data = base64.b64encode(report.figures[self.name]).decode("ascii")
        return (f'<figure><img alt="{html.escape(self.name)}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(self.caption)}</figcaption></figure>")


@dataclass(frozen=True)
class Table:
    """A table, by name in :attr:`Report.tables`, with its caption."""

    name: str
    caption: str = ""

    def html(self, report, anchor):
        shown = report.displays.get(self.name, report.tables[self.name])
        frame = shown.to_html(classes="data", border=0, index_names=False,
                                                 float_format=_format_float, na_rep="")
        caption = f'<p class="caption">{html.escape(self.caption)}</p>' if self.caption else ""
        return frame + caption


@dataclass(frozen=True)
class Sentences:
    """A paragraph in bold, then a bullet list of sentences."""

    lead: str
    sentences: tuple = ()

    def html(self, report, anchor):
        items = "".join(f"<li>{html.escape(s)}</li>" for s in self.sentences)
        return (f'<p class="verdict">{html.escape(self.lead)}</p>'
                + (f'<ul class="sentences">{items}</ul>' if items else ""))


@dataclass(frozen=True)
class ParameterTable:
    """The models' parameters: those that differ first, highlighted; the shared ones once."""

    name: str = "parameters"

    def html(self, report, anchor):
        frame = report.tables[self.name]
        cell = html.escape
        differs = frame.nunique(axis=1) > 1
        head = "".join(f"<th>{cell(str(c))}</th>" for c in frame.columns)
        rows = [f"<tr><th>parameter</th>{head}</tr>"]
        if len(frame.columns) > 1 and differs.any():
            rows.append(f'<tr class="group"><th colspan="{len(frame.columns) + 1}">'
                        "Differ between the models:</th></tr>")
            rows += [f'<tr class="differs"><th>{cell(name)}</th>'
                     + "".join(f"<td>{cell(v)}</td>" for v in values) + "</tr>"
                     for name, values in frame[differs].iterrows()]
        shared = frame[~differs] if len(frame.columns) > 1 else frame
        if len(frame.columns) > 1:
            rows.append(f'<tr class="group"><th colspan="{len(frame.columns) + 1}">'
                        "The same in every model:</th></tr>")
        span = len(frame.columns)
        rows += [f'<tr><th>{cell(name)}</th><td colspan="{span}" style="text-align:center">'
                 f"{cell(values.iloc[0])}</td></tr>" if span > 1 else
                 f"<tr><th>{cell(name)}</th><td>{cell(values.iloc[0])}</td></tr>"
                 for name, values in shared.iterrows()]
        return f'<table class="data">{"".join(rows)}</table>'


@dataclass(frozen=True)
class Code:
    """A block of preformatted text under a small heading."""

    title: str
    text: str

    def html(self, report, anchor):
        return f"<h3>{html.escape(self.title)}</h3><pre>{html.escape(self.text)}</pre>"


class Report:
    """Sections, figures, tables and text, in order, to write as one report.

    Parameters
    ----------
    title : str
        Heading of the HTML page.

    Attributes
    ----------
    tables : dict of str -> pandas.DataFrame
        The tables added, by name.
    figures : dict of str -> bytes
        The figures added, as PNG bytes, by name.
    items : list of Section, Text, Figure, Table or Code
        What the page shows, in order.
    results : dict
        Everything written to ``results.json`` besides the title, times,
        tables, figures and versions (see the module docstring for its
        keys); callers may add JSON-serialisable entries.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import pandas as pd
    >>> from sknets.studies.report import Report
    >>> report = Report("Example")
    >>> report.section("Numbers", "A figure and a table.")
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([1, 2, 3])
    >>> report.figure("line", fig, "A line.")
    >>> report.table("squares", pd.DataFrame({"n": [1, 2], "square": [1, 4]}))
    >>> import tempfile
    >>> path = report.write(tempfile.mkdtemp())
    >>> sorted(p.name for p in path.parent.iterdir())
    ['line.png', 'report.html', 'results.json', 'squares.csv']
    """

    def __init__(self, title):
        self.title = title
        self.items = []
        self.tables = {}
        self.displays = {}
        self.figures = {}
        self.results = {}
        self.started = time.perf_counter()
        self.created = datetime.now(timezone.utc)

    def section(self, heading, text=""):
        """Start a section with a heading and an optional paragraph."""
        self.items.append(Section(heading, text))

    def text(self, paragraph):
        """Add a paragraph of plain text."""
        self.items.append(Text(paragraph))

    def figure(self, name, figure, caption=""):
        """Add a matplotlib figure (rendered to PNG now, then closed)."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        if name not in self.figures:
            self.items.append(Figure(name, caption))
        self.figures[name] = buffer.getvalue()

    def table(self, name, frame, caption="", display=None):
        """Add a DataFrame; adding a name again replaces that table in place.

        ``display``, a DataFrame of text, is what the page shows instead of
        ``frame`` (e.g. means with their intervals); the CSV and JSON files
        hold ``frame``.
        """
        if name not in self.tables:
            self.items.append(Table(name, caption))
        self.tables[name] = frame
        if display is not None:
            self.displays[name] = display

    def sentences(self, lead, sentences=()):
        """Add a paragraph in bold and a bullet list of sentences (a comparison's)."""
        self.items.append(Sentences(lead, tuple(sentences)))

    def code(self, title, text):
        """Add a block of preformatted text (a model summary, a log)."""
        self.items.append(Code(title, text))

    def describe_data(self, dataset):
        """Add a section on the data set: its description and sizes.

        Parameters
        ----------
        dataset : mapping
            ``name`` and ``description`` (str), ``n_features`` (int),
            ``classes`` (the class names) and the sizes ``train``,
            ``validation`` and ``test`` (int); recorded as ``dataset`` in
            ``results.json``.

        Examples
        --------
        >>> from sknets.studies.report import Report
        >>> report = Report("r")
        >>> report.describe_data({"name": "toy", "description": "Two points.",
        ...                       "n_features": 2, "classes": ["a", "b"],
        ...                       "train": 1, "validation": 0, "test": 1})
        >>> report.tables["data"]["samples"].tolist()
        [1, 0, 1]
        """
        sizes = {part: int(dataset[part]) for part in ("train", "validation", "test")}
        classes = [str(c) for c in dataset["classes"]]
        self.results["dataset"] = {"name": dataset["name"],
                                   "description": dataset["description"],
                                   "n_features": int(dataset["n_features"]),
                                   "classes": classes, **sizes}
        self.section("Data", dataset["description"])
        self.table("data", pd.DataFrame(
            {"samples": list(sizes.values())}, index=pd.Index(list(sizes), name="set")))
        self.text(f"{dataset['n_features']} features; {len(classes)} classes.")

    def histories(self, models):
        """Record each fitted model's per-epoch history as ``histories`` in ``results.json``.

        Parameters
        ----------
        models : dict of str -> fitted sknets estimator
        """
        self.results["histories"] = {name: model.history_.to_dict(orient="list")
                                     for name, model in models.items()}

    def parameters(self, models):
        """Add the exact constructor parameters of each model, side by side.

        Also recorded as ``parameters`` in ``results.json``.
        """
        params = {name: model.get_params(deep=False) for name, model in models.items()}
        self.results["parameters"] = _jsonable(params)
        frame = pd.DataFrame({name: {k: repr(v) for k, v in p.items()}
                              for name, p in params.items()})
        frame.index.name = "parameter"
        self.section("Parameters", "Every constructor parameter of every model, exactly as "
                                   "passed (rebuild a model with these): first, highlighted, "
                                   "the ones that differ between the models, then the ones "
                                   "they share, once.")
        if "parameters" not in self.tables:
            self.items.append(ParameterTable("parameters"))
        self.tables["parameters"] = frame

    def write(self, folder):
        """Write ``report.html``, the PNG, CSV and ``results.json`` files.

        Parameters
        ----------
        folder : str or path
            Created if missing; files already there with the same names are
            replaced.

        Returns
        -------
        pathlib.Path
            Path of ``report.html``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        seconds = time.perf_counter() - self.started
        versions = library_versions()
        for name, png in self.figures.items():
            (folder / f"{name}.png").write_bytes(png)
        for name, frame in self.tables.items():
            frame.to_csv(folder / f"{name}.csv")
        results = {"title": self.title, "created": self.created.isoformat(timespec="seconds"),
                   "seconds": round(seconds, 2), **self.results,
                   "tables": {name: _jsonable(frame.reset_index().to_dict(orient="records"))
                              for name, frame in self.tables.items()},
                   "figures": [f"{name}.png" for name in self.figures],
                   "versions": versions}
        with open(folder / RESULTS_FILE, "w", encoding="utf-8") as file:
            json.dump(_jsonable(results), file, indent=1, allow_nan=False)
        path = folder / "report.html"
        path.write_text(self._html(seconds, versions), encoding="utf-8")
        return path

    def _html(self, seconds, versions):
        body, toc = [], []
        for item in self.items:
            anchor = f"s{len(toc)}"
            if isinstance(item, Section):
                toc.append(f'<a href="#{anchor}">{html.escape(item.heading)}</a>')
            body.append(item.html(self, anchor))
        command = self.results.get("command")
        meta = [f"Created {self.created:%Y-%m-%d %H:%M} UTC in {seconds:.1f} s."]
        if command:
            meta.append(f"Command: <code>{html.escape(command)}</code>")
        environment = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                              for k, v in versions.items())
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>"
            f"<header><h1>{html.escape(self.title)}</h1>"
            + "".join(f"<p>{m}</p>" for m in meta) + "</header>"
            f"<nav>{''.join(toc)}<a href=\"#environment\">Environment</a></nav>"
            f"<main>{''.join(body)}"
            f'<h2 id="environment">Environment</h2><table class="data">{environment}</table>'
            "</main><footer>Written by sknets; figures are also saved next to this file "
            "as PNG, tables as CSV, everything as results.json.</footer></body></html>\n"
        )


def _format_float(value):
    if value == int(value) and abs(value) < 1e15:
        return f"{value:.1f}" if abs(value) < 10 else f"{value:,.0f}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"


def library_versions():
    """The library versions of saved models, plus Python, the platform and the CPUs.

    Examples
    --------
    >>> from sknets.studies.report import library_versions
    >>> sorted(library_versions())[:3]
    ['cpu_count', 'matplotlib', 'numpy']
    """
    import matplotlib
    import torch

    from .._version import library_versions as versions

    return {
        **versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_default_threads": torch.get_num_threads(),
        "matplotlib": matplotlib.__version__,
    }


@dataclass(frozen=True)
class Results:
    """What a report's ``results.json`` holds, as read by :func:`read_results`.

    The attributes are the schema's keys (see the module docstring); the
    optional ones are None (``study``, ``command``, ``dataset``, ``comparison``) or empty
    (``histories``, ``parameters``) when the run did not write them.
    ``tables`` holds DataFrames indexed by each table's first column.
    """

    title: str
    created: str
    seconds: float
    tables: dict
    figures: list
    versions: dict
    study: str = None
    command: str = None
    dataset: dict = None
    histories: dict = None
    parameters: dict = None
    comparison: dict = None
    extra: dict = None


def read_results(folder):
    """Read the ``results.json`` a :class:`Report` wrote into ``folder``.

    Parameters
    ----------
    folder : str or path
        The report's folder (``--out`` of the ``sknets`` command).

    Returns
    -------
    Results
        Every key of the schema as an attribute; entries the schema does not
        name are in ``extra``.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from sknets.studies.report import Report, read_results
    >>> report = Report("Example")
    >>> report.table("test_results", pd.DataFrame({"test_accuracy": [0.9]},
    ...                                           index=pd.Index(["m"], name="model")))
    >>> folder = report.write(tempfile.mkdtemp()).parent
    >>> results = read_results(folder)
    >>> results.tables["test_results"]["test_accuracy"].to_dict(), results.study
    ({'m': 0.9}, None)
    """
    with open(Path(folder) / RESULTS_FILE, encoding="utf-8") as file:
        raw = json.load(file)
    tables = {}
    for name, rows in raw.pop("tables").items():
        frame = pd.DataFrame(rows)
        tables[name] = frame.set_index(frame.columns[0]) if len(frame.columns) else frame
    known = {key: raw.pop(key) for key in list(raw) if key in Results.__dataclass_fields__}
    return Results(tables=tables, extra=raw, **known)


def _jsonable(value):
    """``value`` with numpy scalars, tuples and NaN made JSON-safe."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


__all__ = ["Code", "Figure", "ParameterTable", "Report", "Results", "Section", "Sentences",
           "Table", "Text", "library_versions", "read_results"]

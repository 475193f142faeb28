"""Self-contained reports of training runs: one HTML file plus PNG, CSV and JSON.

A :class:`Report` collects sections, figures, tables and text blocks in
order, then :meth:`Report.write` saves them into a folder:

- ``report.html``: everything in one file that opens in any browser, the
  figures embedded as base64 PNG, with the models' exact parameters and the
  library versions;
- ``<figure>.png`` for every figure and ``<table>.csv`` for every table;
- ``results.json``: the tables, training histories, parameters, data set,
  settings and versions, for other programs.
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
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

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
pre { background: #f6f8fa; border: 1px solid #ddd; padding: .8em; overflow-x: auto;
      font-size: .85em; }
footer { padding: 1em 2em; color: #555; font-size: .85em; border-top: 1px solid #ddd; }
"""


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
    results : dict
        Everything written to ``results.json`` besides tables and versions;
        callers may add JSON-serialisable entries.

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
        self.figures = {}
        self.results = {}
        self.started = time.perf_counter()
        self.created = datetime.now(timezone.utc)

    def section(self, heading, text=""):
        """Start a section with a heading and an optional paragraph."""
        self.items.append(("section", heading, text))

    def text(self, paragraph):
        """Add a paragraph of plain text."""
        self.items.append(("text", paragraph))

    def figure(self, name, figure, caption=""):
        """Add a matplotlib figure (rendered to PNG now, then closed)."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        if name not in self.figures:
            self.items.append(("figure", name, caption))
        self.figures[name] = buffer.getvalue()

    def table(self, name, frame, caption=""):
        """Add a DataFrame; adding a name again replaces that table in place."""
        if name not in self.tables:
            self.items.append(("table", name, caption))
        self.tables[name] = frame

    def code(self, title, text):
        """Add a block of preformatted text (a model summary, a log)."""
        self.items.append(("code", title, text))

    def describe_data(self, data):
        """Add the data set's description and sizes (a ``StudyData``)."""
        sizes = data.sizes()
        self.results["dataset"] = {"name": data.name, "description": data.description,
                                   "n_features": int(data.X_train.shape[1]),
                                   "classes": [str(c) for c in data.labels], **sizes}
        self.section("Data", data.description)
        self.table("data", pd.DataFrame(
            {"samples": list(sizes.values())}, index=pd.Index(list(sizes), name="set")))
        self.text(f"{data.X_train.shape[1]} features; {len(data.labels)} classes.")

    def parameters(self, models):
        """Add the exact constructor parameters of each model, side by side."""
        params = {name: model.get_params(deep=False) for name, model in models.items()}
        self.results["parameters"] = _jsonable(params)
        frame = pd.DataFrame({name: {k: repr(v) for k, v in p.items()}
                              for name, p in params.items()})
        frame.index.name = "parameter"
        self.section("Parameters", "Every constructor parameter of every model, exactly as "
                                   "passed (rebuild a model with these).")
        self.table("parameters", frame)

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
        with open(folder / "results.json", "w", encoding="utf-8") as file:
            json.dump(_jsonable(results), file, indent=1, allow_nan=False)
        path = folder / "report.html"
        path.write_text(self._html(seconds, versions), encoding="utf-8")
        return path

    def _html(self, seconds, versions):
        body, toc = [], []
        for item in self.items:
            kind = item[0]
            if kind == "section":
                anchor = f"s{len(toc)}"
                toc.append(f'<a href="#{anchor}">{html.escape(item[1])}</a>')
                body.append(f'<h2 id="{anchor}">{html.escape(item[1])}</h2>')
                if item[2]:
                    body.append(f"<p>{html.escape(item[2])}</p>")
            elif kind == "text":
                body.append(f"<p>{html.escape(item[1])}</p>")
            elif kind == "figure":
                data = base64.b64encode(self.figures[item[1]]).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(item[1])}" '
                            f'src="data:image/png;base64,{data}">'
                            f"<figcaption>{html.escape(item[2])}</figcaption></figure>")
            elif kind == "table":
                frame = self.tables[item[1]]
                body.append(frame.to_html(classes="data", border=0, index_names=False,
                                          float_format=_format_float, na_rep=""))
                if item[2]:
                    body.append(f'<p class="caption">{html.escape(item[2])}</p>')
            elif kind == "code":
                body.append(f"<h3>{html.escape(item[1])}</h3><pre>{html.escape(item[2])}</pre>")
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


__all__ = ["Report", "library_versions"]

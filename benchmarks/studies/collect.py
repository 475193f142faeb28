"""Copy the figures and tables of finished ``sknets study`` runs into the docs.

Each run folder (``--out`` of ``sknets study``) holds ``results.json`` and
the figures as PNG. This script writes every figure, reduced to a 128-colour
palette and at most ``--max-width`` pixels wide (so that all the study
figures together stay small in the repository), to
``docs/figures/studies/<study>/``, and prints each study's test table, wall
seconds and command as Markdown, ready for ``docs/studies.md``.

Usage::

    python benchmarks/studies/collect.py RUN_DIR [RUN_DIR ...] \\
        --figures docs/figures/studies --times times.txt
"""

import argparse
import json
import os
from pathlib import Path

import pandas as pd
from PIL import Image

# Columns of the docs' tables, in order, with how they are printed.
COLUMNS = {
    "n_train": "{:,.0f}", "test_accuracy": "{:.4f}", "test_balanced_accuracy": "{:.4f}",
    "test_mse": "{:.5f}", "pca_test_mse": "{:.5f}", "test_log_loss": "{:.3f}",
    "train_loss": "{:.4f}", "best_epoch": "{:.0f}", "epochs": "{:.0f}",
    "parameters": "{:,.0f}", "fit_seconds": "{:.0f}", "mean_accuracy": "{:.4f}",
    "std_accuracy": "{:.4f}", "rank": "{:.0f}", "train_accuracy": "{:.4f}",
    "valid_accuracy": "{:.4f}", "best_valid_accuracy": "{:.4f}",
}


def shrink_png(source, target, max_width):
    """Write ``source`` to ``target`` at most ``max_width`` wide, 128 colours."""
    image = Image.open(source).convert("RGB")
    if image.width > max_width:
        height = round(image.height * max_width / image.width)
        image = image.resize((max_width, height), Image.LANCZOS)
    image.quantize(colors=128).save(target, optimize=True)


def markdown_table(rows, columns=COLUMNS):
    """Result rows (dicts whose first key names the row) as a Markdown table."""
    key = next(iter(rows[0]))
    frame = pd.DataFrame(rows).set_index(key)
    shown = [c for c in columns if c in frame]
    lines = [f"| {key.replace('_', ' ')} | " + " | ".join(c.replace("_", " ") for c in shown) + " |",
             "|---" * (len(shown) + 1) + "|"]
    for name, row in frame.iterrows():
        cells = [columns[c].format(row[c]) if pd.notna(row[c]) else "" for c in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def collect(run_dir, figures_root, max_width, docs=Path("docs")):
    """Copy a run's figures; return its Markdown section (links relative to ``docs``)."""
    results = json.loads((Path(run_dir) / "results.json").read_text())
    study = results["study"]
    folder = Path(figures_root) / study
    folder.mkdir(parents=True, exist_ok=True)
    for name in results["figures"]:
        shrink_png(Path(run_dir) / name, folder / name, max_width)
    parts = [f"### {study}", "", f"`{results['command']}` — {results['seconds']:.0f} s", ""]
    for name, rows in results["tables"].items():
        if rows and name not in ("parameters", "data", "overfit_curves"):
            parts += [f"**{name}**", "", markdown_table(rows), ""]
    link = Path(os.path.relpath(folder, docs)).as_posix()
    parts += [f"![{name}]({link}/{name})" for name in results["figures"]]
    return "\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/studies"))
    parser.add_argument("--max-width", type=int, default=900)
    args = parser.parse_args(argv)
    for run in args.runs:
        print(collect(run, args.figures, args.max_width), end="\n\n")
    total = sum(f.stat().st_size for f in args.figures.rglob("*.png"))
    print(f"<!-- figures: {total / 1e6:.2f} MB -->")


if __name__ == "__main__":
    main()

"""Copy the figures and tables of finished ``sknets study`` runs into docs/studies.md.

Each run folder (``--out`` of ``sknets study``) holds ``results.json`` (read
with :func:`sknets.studies.report.read_results`) and the figures as PNG.
For every run this script

- writes each figure, reduced to a 128-colour palette and at most
  ``--max-width`` pixels wide (so that all the study figures together stay
  small in the repository), to ``docs/figures/studies/<study>/``;
- replaces the study's results block in ``docs/studies.md``: the lines
  between ``<!-- results: <study> -->`` and ``<!-- end results -->``, which
  hold the command, the result tables and the figures. The prose around
  the blocks is written by hand and left as it is;
- prints a run record (study, command, wall seconds) as a Markdown table
  row, for the "Study runs" section of ``benchmarks/README.md``.

Usage::

    python benchmarks/studies/collect.py RUN_DIR [RUN_DIR ...] \\
        --figures docs/figures/studies --page docs/studies.md
"""

import argparse
import os
import re
from pathlib import Path

import pandas as pd
from PIL import Image

from sknets.studies.report import read_results

# Columns of the docs' tables, in order, with how they are printed. Times are
# left out: they are the machine's, and go to the run records.
COLUMNS = {
    "n_train": "{:,.0f}", "test_accuracy": "{:.4f}", "test_balanced_accuracy": "{:.4f}",
    "test_mse": "{:.5f}", "pca_test_mse": "{:.5f}", "test_log_loss": "{:.3f}",
    "train_loss": "{:.4f}", "best_epoch": "{:.0f}", "epochs": "{:.0f}",
    "parameters": "{:,.0f}", "mean_accuracy": "{:.4f}",
    "std_accuracy": "{:.4f}", "rank": "{:.0f}", "train_accuracy": "{:.4f}",
    "valid_accuracy": "{:.4f}", "best_valid_accuracy": "{:.4f}",
}

# Tables of a report that the docs do not show: they are long, or repeat the
# study's description.
HIDDEN_TABLES = ("parameters", "data", "overfit_curves")

END = "<!-- end results -->"


def shrink_png(source, target, max_width):
    """Write ``source`` to ``target`` at most ``max_width`` wide, 128 colours."""
    image = Image.open(source).convert("RGB")
    if image.width > max_width:
        height = round(image.height * max_width / image.width)
        image = image.resize((max_width, height), Image.LANCZOS)
    image.quantize(colors=128).save(target, optimize=True)


def markdown_table(frame, columns=COLUMNS):
    """A result table (indexed by model or candidate) as a Markdown table."""
    shown = [c for c in columns if c in frame]
    key = frame.index.name or ""
    lines = [f"| {key.replace('_', ' ')} | " + " | ".join(c.replace("_", " ") for c in shown)
             + " |", "|---" * (len(shown) + 1) + "|"]
    for name, row in frame.iterrows():
        cells = [columns[c].format(row[c]) if pd.notna(row[c]) else "" for c in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def collect(run_dir, figures_root, max_width, docs=Path("docs")):
    """Copy a run's figures; return ``(study, results block, run record row)``.

    The block's figure links are relative to ``docs``.
    """
    results = read_results(run_dir)
    folder = Path(figures_root) / results.study
    folder.mkdir(parents=True, exist_ok=True)
    for name in results.figures:
        shrink_png(Path(run_dir) / name, folder / name, max_width)
    parts = ["```bash", results.command, "```", ""]
    for name, frame in results.tables.items():
        if len(frame) and name not in HIDDEN_TABLES:
            parts += [f"**{name}**", "", markdown_table(frame), ""]
    link = Path(os.path.relpath(folder, docs)).as_posix()
    parts += [f"![{name}]({link}/{name})" for name in results.figures]
    record = f"| {results.study} | `{results.command}` | {results.seconds:,.0f} |"
    return results.study, "\n".join(parts), record


def update_page(page, blocks):
    """Replace the results block of each study in ``page`` (a Markdown file)."""
    text = Path(page).read_text(encoding="utf-8")
    for study, block in blocks.items():
        pattern = re.compile(rf"(<!-- results: {re.escape(study)} -->\n).*?(\n{re.escape(END)})",
                             re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"{page} has no results block of {study!r}: add the lines "
                             f"'<!-- results: {study} -->' and '{END}' where its results go.")
        text = pattern.sub(lambda match: match.group(1) + block + match.group(2), text)
    Path(page).write_text(text, encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--figures", type=Path, default=Path("docs/figures/studies"))
    parser.add_argument("--page", type=Path, default=Path("docs/studies.md"))
    parser.add_argument("--max-width", type=int, default=900)
    args = parser.parse_args(argv)
    blocks, records = {}, []
    for run in args.runs:
        study, blocks[study], record = collect(run, args.figures, args.max_width,
                                               docs=args.page.parent)
        records.append(record)
    update_page(args.page, blocks)
    print("| study | command | wall s |\n|---|---|---|")
    print("\n".join(records))
    total = sum(f.stat().st_size for f in args.figures.rglob("*.png"))
    print(f"\nfigures: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

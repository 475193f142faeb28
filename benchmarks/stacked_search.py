"""A stacked grid search against scikit-learn's, on Fashion-MNIST.

Times ``sknets.model_selection.GridSearchCV`` (the grid's candidates
trained as one stacked network per split) and ``sklearn.model_selection.GridSearchCV``
(3 separate fits per candidate) on the first 10,000 Fashion-MNIST training images
(scaled as the fetcher returns them): cv=3, ``MLPClassifier`` with Adam, 5
epochs, batches of 100, random_state=0, n_jobs=1 (``--n-jobs``: both
searches' ``n_jobs``), refit. ``--grid rates``:
784-100-10, 4 ``lr`` x 2 ``l2`` x 2 ``dropout``; ``--grid widths``: 4 ``lr``
x ``hidden_layers`` (32,), (64,), (128,), (256,); ``--grid depths``: 4 ``lr`` x
``hidden_layers`` (128, 64), (256, 128). The two searches alternate
``--repeats`` times after one untimed warm-up each; medians are printed,
and the time ratio both as a ratio of medians and paired (the median of each
repeat's ratio),
with whether the best parameters agree, the largest difference of
``mean_test_score``, the load average before and after, and the CPU time
the hypervisor took from the machine during each timed run (on a virtual
machine; a run with much of it says more about the host than the code).

``--training-only`` times only the training of one fold's candidates: the
group trained together (with ``--stacking``) against the candidates fitted
one by one, alternating ``--repeats`` times.

``--memory`` instead runs each search once in a fresh process and prints
its peak resident memory above the process's before the search (data
loaded, torch warmed up), beside what ``K`` networks of the group hold
(weights, gradients, Adam's two moments) plus one float32 copy of a
training fold.

    python benchmarks/stacked_search.py --data-home /work/shared/data [--stacking batched] \
        [--grid widths] [--memory | --training-only]
"""

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
from machine import steal_seconds
from sklearn import model_selection as sk

from sknets import MLPClassifier
from sknets import model_selection as ours
from sknets.datasets import fetch_fashion_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=os.environ.get("SKNETS_TEST_DATA"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--stacking", choices=["auto", "exact", "batched"], default="auto",
                        help="how sknets' search trains a group (its stacking parameter)")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="rates")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="n_jobs of both searches (timing runs only)")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory of each search in a fresh process, no timing")
    parser.add_argument("--training-only", action="store_true",
                        help="time only the training of one fold's candidates: the group "
                             "trained together against the candidates fitted one by one")
    parser.add_argument("--one", choices=["sknets", "scikit-learn"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = fetch_fashion_mnist(data_home=args.data_home, download_if_missing=False)
    X, y = data.data[:args.n_samples], data.target[:args.n_samples]
    base = MLPClassifier((100,), optimizer="adam", max_epochs=5, batch_size=100,
                         random_state=0)
    grid = GRIDS[args.grid]
    searches = {"sknets": lambda *a, **k: ours.GridSearchCV(*a, stacking=args.stacking, **k),
                "scikit-learn": sk.GridSearchCV}
    if args.one:
        return _peak_memory(searches[args.one], base, grid, X, y)
    if args.memory:
        return _memory_table(args, base, grid, X)
    if args.training_only:
        return _training_only(args, base, grid, X, y)
    print("load average before:", os.getloadavg())
    times, fitted, stolen = {name: [] for name in searches}, {}, {name: [] for name in searches}
    for run in range(args.repeats + 1):
        for name, search in searches.items():
            steal, start = steal_seconds(), time.perf_counter()
            fitted[name] = search(base, grid, cv=3, n_jobs=args.n_jobs).fit(X, y)
            if run:  # the first run of each warms up
                times[name].append(time.perf_counter() - start)
                stolen[name].append(steal_seconds() - steal)
    print("load average after:", os.getloadavg())
    # On a virtual machine, CPU time the hypervisor gave to others: a run
    # with much of it was slowed by the host, not by the code.
    print("CPU seconds stolen by the host during each timed run:",
          {name: [round(s, 2) for s in values] for name, values in stolen.items()})
    a, b = fitted["sknets"], fitted["scikit-learn"]
    print("best_params_ equal:", a.best_params_ == b.best_params_, a.best_params_)
    print("max |mean_test_score difference|:",
          float(np.abs(a.cv_results_["mean_test_score"] -
                       b.cv_results_["mean_test_score"]).max()))
    print("stacked groups, stacked fits:", a.n_stacked_groups_, a.n_stacked_fits_)
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.2f} s over {values}")
    speed_up = statistics.median(times["scikit-learn"]) / statistics.median(times["sknets"])
    print(f"speed-up: {speed_up:.2f}x")
    # Each repeat's ratio, the two searches run seconds apart: a drift of the
    # machine's speed over the run cancels in it.
    paired = [ours / theirs for ours, theirs in zip(times["sknets"], times["scikit-learn"])]
    print(f"time ratio sknets / scikit-learn: {1 / speed_up:.2f} (ratio of medians), "
          f"paired {statistics.median(paired):.2f} (median of {[round(r, 2) for r in paired]})")


def _training_only(args, base, grid, X, y):
    """One training fold (the first two thirds): the group as one run against separate fits."""
    from sklearn.base import clone
    from sklearn.model_selection import ParameterGrid

    from sknets._engine.resources import split_invariant
    from sknets.model_selection import _fit_stacked

    candidates = list(ParameterGrid(grid))
    fold = len(X) * 2 // 3
    X, y = X[:fold], y[:fold]
    runs = {
        "trained together": lambda: _fit_stacked(
            [clone(base).set_params(**c) for c in candidates], X, y,
            batched=args.stacking == "batched" or (args.stacking == "auto"
                                                   and split_invariant())),
        "one by one": lambda: [clone(base).set_params(**c).fit(X, y) for c in candidates],
    }
    clone(base).fit(X[:500], y[:500])  # torch warmed up
    print("load average before:", os.getloadavg())
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print("load average after:", os.getloadavg())
    for name, values in times.items():
        print(f"{name} ({len(candidates)} candidates, {fold} images): "
              f"median {statistics.median(values):.2f} s over {values}")
    ratio = statistics.median(times["trained together"]) / statistics.median(times["one by one"])
    print(f"ratio: {ratio:.2f}")


GRIDS = {
    "rates": {"lr": [3e-4, 1e-3, 3e-3, 1e-2], "l2": [0.0, 1e-4], "dropout": [0.0, 0.2]},
    "widths": {"lr": [3e-4, 1e-3, 3e-3, 1e-2],
               "hidden_layers": [(32,), (64,), (128,), (256,)]},
    "depths": {"lr": [3e-4, 1e-3, 3e-3, 1e-2], "hidden_layers": [(128, 64), (256, 128)]},
}


def _peak_memory(search, base, grid, X, y):
    """In this (fresh) process: the search's peak RSS above the RSS before it, in MB."""
    MLPClassifier((8,), max_epochs=1).fit(X[:200], y[:200])  # torch's kernels loaded
    before = _rss_mb()
    search(base, grid, cv=3, n_jobs=1).fit(X, y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{max(peak - before, 0.0):.1f}")


def _rss_mb():
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _memory_table(args, base, grid, X):
    from sklearn.model_selection import ParameterGrid

    candidates = list(ParameterGrid(grid))
    state = 0
    for candidate in candidates:
        widths = [X.shape[1], *candidate.get("hidden_layers", base.hidden_layers), 10]
        n_params = sum((a + 1) * b for a, b in itertools.pairwise(widths))
        state += 4 * n_params * 4  # weights, gradients, Adam's two moments; float32
    fold = X.shape[0] * 2 // 3 * X.shape[1] * 4
    budget = (state + fold) / 2**20
    print(f"K={len(candidates)} networks' state {state / 2**20:.1f} MB + one training fold "
          f"{fold / 2**20:.1f} MB = {budget:.1f} MB; 1.5x: {1.5 * budget:.1f} MB")
    peaks = {}
    for name in ("sknets", "scikit-learn"):
        command = [sys.executable, __file__, "--one", name, "--grid", args.grid,
                   "--stacking", args.stacking, "--n-samples", str(args.n_samples)]
        if args.data_home:
            command += ["--data-home", args.data_home]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        peaks[name] = float(output.split()[-1])
        print(f"{name}: peak RSS above the process before the search: {peaks[name]:.1f} MB")
    extra = peaks["sknets"] - peaks["scikit-learn"]
    print(f"stacked search's peak above scikit-learn's (which holds one network and its own "
          f"copies of the folds): {extra:.1f} MB = {extra / budget:.2f}x the networks' state "
          f"plus one training fold")


if __name__ == "__main__":
    main()

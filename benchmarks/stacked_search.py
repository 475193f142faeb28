"""A stacked grid search against scikit-learn's, on Fashion-MNIST.

Times ``sknets.model_selection.GridSearchCV`` (the 8 candidates trained as
one stacked network per split) and ``sklearn.model_selection.GridSearchCV``
(8 x 3 separate fits) on the first 10,000 Fashion-MNIST training images
(scaled as the fetcher returns them): cv=3, 784-100-10 ``MLPClassifier``
with Adam, 4 ``lr`` x 2 ``l2``, 5 epochs, batches of 100, random_state=0,
n_jobs=1, refit. The two searches alternate ``--repeats`` times after one
untimed warm-up each; medians are printed, with whether the best parameters
agree, the largest difference of ``mean_test_score`` and the load average
before and after.

    python benchmarks/stacked_search.py --data-home /work/shared/data [--stacking batched]
"""

import argparse
import os
import statistics
import time

import numpy as np
from sklearn import model_selection as sk

from sknets import MLPClassifier
from sknets import model_selection as ours
from sknets.datasets import fetch_fashion_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=os.environ.get("SKNETS_TEST_DATA"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--stacking", choices=["exact", "batched"], default="exact",
                        help="how sknets' search trains a group (its stacking parameter)")
    args = parser.parse_args()
    data = fetch_fashion_mnist(data_home=args.data_home, download_if_missing=False)
    X, y = data.data[:args.n_samples], data.target[:args.n_samples]
    base = MLPClassifier((100,), optimizer="adam", max_epochs=5, batch_size=100,
                         random_state=0)
    grid = {"lr": [3e-4, 1e-3, 3e-3, 1e-2], "l2": [0.0, 1e-4]}
    searches = {"sknets": lambda *a, **k: ours.GridSearchCV(*a, stacking=args.stacking, **k),
                "scikit-learn": sk.GridSearchCV}
    print("load average before:", os.getloadavg())
    times, fitted = {name: [] for name in searches}, {}
    for run in range(args.repeats + 1):
        for name, search in searches.items():
            start = time.perf_counter()
            fitted[name] = search(base, grid, cv=3, n_jobs=1).fit(X, y)
            if run:  # the first run of each warms up
                times[name].append(time.perf_counter() - start)
    print("load average after:", os.getloadavg())
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


if __name__ == "__main__":
    main()

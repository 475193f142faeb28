"""Parallel hyper-parameter search: n_jobs=1 against n_jobs=2 and a Dask cluster.

Times one 12-fit ``GridSearchCV`` (4 ``hidden_layers`` settings x 3 folds,
no refit) of sknets' ``MLPClassifier`` on Fashion-MNIST training images, run

* with ``n_jobs=1`` (one process, the fit's default thread budget: all cores),
* with ``n_jobs=1`` and ``n_threads=1`` (what one core does alone),
* with ``n_jobs=2`` (two loky worker processes, one thread each by default),
* on a Dask ``LocalCluster`` of 2 worker processes x 1 thread (loopback only)
  through ``joblib.parallel_config(backend="dask")``,
* and, with ``--oversubscribed``, to show what the thread budget prevents,
  with ``n_jobs=2`` and ``n_threads`` forced to the number of cores in every
  fit.

Each setting runs once untimed (the "cold" run: worker processes start and
import torch), then ``--repeats`` times, the settings alternating; the table
shows medians and the speed-up over ``n_jobs=1``. Worker processes stay up
between runs (loky's idle timeout is raised so that, on a slow or busy
machine, they do not exit while the other settings run). The load average before and
after is printed, since other programs on the machine make the timings noisy.

    python benchmarks/parallel_search.py --data-home ../shared/data
"""

import argparse
import os
import platform
import statistics
import sys
import time

# OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE once, when numpy is
# imported; a value that does not match the CPU slows numpy's BLAS. Re-executing
# without them lets OpenBLAS detect the CPU itself, here and in the worker
# processes, which inherit the environment.
if any(k in os.environ for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from threadpoolctl import threadpool_info  # noqa: E402

import sknets  # noqa: E402
from sknets import MLPClassifier  # noqa: E402
from sknets._engine.resources import thread_budget  # noqa: E402
from sknets.datasets import fetch_fashion_mnist  # noqa: E402

GRID = {"hidden_layers": [(64,), (128,), (256,), (128, 64)]}
LOKY_IDLE_SECONDS = 3600


def worker_threads():
    """(thread budget of a fit, threadpoolctl's pools) where this runs."""
    pools = [(p["internal_api"], os.path.basename(p["filepath"]), p["num_threads"])
             for p in threadpool_info()]
    return thread_budget(), pools


def run_search(X, y, args, n_jobs=None, n_threads=None, backend="loky"):
    search = GridSearchCV(
        MLPClassifier(max_epochs=args.epochs, batch_size=args.batch_size, lr=1e-3,
                      n_threads=n_threads, random_state=0),
        GRID, cv=3, refit=False, n_jobs=n_jobs)
    config = dict(idle_worker_timeout=LOKY_IDLE_SECONDS) if backend == "loky" else {}
    start = time.perf_counter()
    with joblib.parallel_config(backend=backend, **config):
        search.fit(X, y)
    return time.perf_counter() - start, search


def timed(name, X, y, args, **kwargs):
    seconds, search = run_search(X, y, args, **kwargs)
    print(f"  {name}: {seconds:.1f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    return seconds, search


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-home", default=os.environ.get("SKNETS_TEST_DATA", "../shared/data"))
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--oversubscribed", action="store_true",
                        help="also time n_jobs=2 with n_threads=<cores> in every fit")
    args = parser.parse_args()

    from dask.distributed import Client, LocalCluster

    cores = joblib.cpu_count()
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, "
          f"{platform.platform()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
          f"{sklearn.__version__}, joblib {joblib.__version__}, sknets {sknets.__version__}")
    print(f"load average before: {os.getloadavg()}")
    X, y = fetch_fashion_mnist(data_home=args.data_home, return_X_y=True)
    X, y = X[:args.n_train], y[:args.n_train]
    n_fits = len(GRID["hidden_layers"]) * 3
    print(f"GridSearchCV: {n_fits} fits of MLPClassifier({GRID}), cv=3, {len(X)} Fashion-MNIST "
          f"images, {args.epochs} epochs, batch {args.batch_size}, Adam lr 1e-3")

    settings = {
        "n_jobs=1": dict(n_jobs=None),
        "n_jobs=1, n_threads=1": dict(n_jobs=None, n_threads=1),
        "n_jobs=2": dict(n_jobs=2),
        "Dask LocalCluster, 2 processes x 1 thread": dict(backend="dask"),
    }
    if args.oversubscribed:
        settings[f"n_jobs=2, n_threads={cores} (oversubscribed)"] = dict(n_jobs=2, n_threads=cores)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        print("\nthread budget and thread pools (threadpoolctl):")
        print(f"  main process: {worker_threads()}")
        with joblib.parallel_config(backend="loky", idle_worker_timeout=LOKY_IDLE_SECONDS):
            loky = joblib.Parallel(n_jobs=2)(joblib.delayed(worker_threads)() for _ in range(2))
        print(f"  loky worker (n_jobs=2): {loky[0]}")
        print(f"  dask worker: {next(iter(client.run(worker_threads).values()))}")

        print("\ncold runs:", flush=True)
        cold, times, scores = {}, {name: [] for name in settings}, {}
        for name, kwargs in settings.items():
            cold[name], search = timed(name, X, y, args, **kwargs)
            scores[name] = search.cv_results_["mean_test_score"]
        for repeat in range(args.repeats):
            print(f"run {repeat + 1}:", flush=True)
            for name, kwargs in settings.items():
                times[name].append(timed(name, X, y, args, **kwargs)[0])
    print(f"load average after: {os.getloadavg()}\n")

    base = statistics.median(times["n_jobs=1"])
    print(f"| setting | median s ({args.repeats} runs) | min s | cold run s | speed-up "
          "vs n_jobs=1 | mean CV accuracy |")
    print("|---|---|---|---|---|---|")
    for name in settings:
        median = statistics.median(times[name])
        print(f"| {name} | {median:.1f} | {min(times[name]):.1f} | {cold[name]:.1f} | "
              f"{base / median:.2f}x | {np.mean(scores[name]):.4f} |")


if __name__ == "__main__":
    main()

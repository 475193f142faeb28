"""Peak memory of fitting a wide sparse matrix: batches are densified one at a time.

Fits ``MLPClassifier(hidden_layers=(32,), max_epochs=1)`` on a random CSR
matrix (default 100,000 x 50,000, 0.1% non-zero: 5 million values, about
40 MB as CSR; 20 GB dense in float32) and prints the process's peak
resident memory (``resource.getrusage(...).ru_maxrss``) before and after
the fit. Memory, not time::

    python benchmarks/sparse_memory.py [--rows 100000] [--columns 50000] [--density 0.001]
"""

import argparse
import resource
import sys

import numpy as np
import scipy.sparse as sp


def peak_mb():
    """Peak resident memory of this process so far, in MB (ru_maxrss is KB on Linux)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=50_000)
    parser.add_argument("--density", type=float, default=0.001)
    args = parser.parse_args(argv)

    from sknets import MLPClassifier

    rng = np.random.default_rng(0)
    X = sp.random(args.rows, args.columns, density=args.density, format="csr",
                  dtype=np.float32, random_state=rng)
    y = rng.integers(0, 2, size=args.rows)
    sparse_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    before = peak_mb()
    clf = MLPClassifier(hidden_layers=(32,), max_epochs=1, random_state=0).fit(X, y)
    after = peak_mb()
    dense_mb = args.rows * args.columns * 4 / 2**20
    print(f"X: {args.rows} x {args.columns}, {X.nnz} non-zero values, {sparse_mb:.0f} MB as "
          f"CSR ({dense_mb:.0f} MB dense float32)")
    print(f"peak RSS before fit: {before:.0f} MB; after fit (1 epoch, hidden_layers=(32,)): "
          f"{after:.0f} MB; train_loss {clf.history_['train_loss'].iloc[-1]:.4f}")


if __name__ == "__main__":
    main()

"""sknets' fit in a fresh process, timed as the hand-written loop times its own.

The training benchmark's tool "sknets, own process": a fresh process with
the environment the benchmark was launched with, as a user's script runs,
importing sknets before torch. Same arguments and output as
``handwritten.py``:

    python benchmarks/sknets_process.py DIR HIDDEN BATCH DROPOUT EPOCHS SEED THREADS

``THREADS`` 0 leaves ``n_threads=None`` (sknets' choice).
"""

import sys

from sknets import MLPClassifier  # isort: skip  (before torch, as a user's script imports it)
from handwritten import main  # isort: skip  (imports torch)


def fit_sknets(X, y, hidden, batch, dropout, epochs, seed, n_threads=None):
    """A default ``MLPClassifier`` of the benchmark's network; returns its ``predict``."""
    clf = MLPClassifier(hidden_layers=hidden, dropout=dropout, batch_size=batch,
                        max_epochs=epochs, patience=None, random_state=seed,
                        n_threads=n_threads)
    clf.fit(X, y)
    return clf.predict


if __name__ == "__main__":
    main(*sys.argv[1:], fit=fit_sknets)

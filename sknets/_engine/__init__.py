"""The training engine: everything that knows torch and skorch internals.

The estimators (``sknets.mlp``, ``sknets.autoencoder``) describe a network
with flat scikit-learn parameters; this package turns them into torch
modules and a skorch net and runs it. It knows nothing of scikit-learn.

* ``build``: parameters -> a ready ``TensorNet`` (optimizer, penalty,
  schedule, stopping, progress);
* ``net``: ``TensorNet``, the in-memory batch path and the epoch loop;
* ``fused``: the hand-derived training step of plain MLPs;
* ``graphs``: that step captured as a CUDA graph and replayed on a GPU;
* ``losses``: the training criteria (cross-entropy for classes, and for
  multi-label targets, with label smoothing; the regression losses by name);
* ``sparse``: sparse inputs, densified one mini-batch at a time;
* ``modules``: the torch modules (MLP, autoencoder, input noise) and the
  activations;
* ``schedules``, ``callbacks``: learning-rate schedules, progress output and
  best-weights tracking as skorch callbacks;
* ``resources``: devices and CPU threads.
"""

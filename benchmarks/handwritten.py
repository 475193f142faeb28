"""The hand-written PyTorch training loop the training benchmark compares against.

Imports torch and NumPy only, so that it can also run as a fresh process
with the environment its user launched the benchmark with — without the
settings ``import sknets`` makes before torch loads (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``,
``MKL_CBWR``), as a plain torch script runs:

    python benchmarks/handwritten.py DIR HIDDEN BATCH DROPOUT EPOCHS SEED THREADS

reads ``X.npy``, ``y.npy`` and ``X_test.npy`` from ``DIR``, fits once on a
slice (untimed: the first optimizer of a process imports ``torch._dynamo``),
then times one fit of ``EPOCHS`` epochs and writes ``result.json``: its wall
and CPU seconds and the predicted test classes. ``HIDDEN`` is a
comma-separated list of widths, ``THREADS`` 0 for torch's default.
"""

import json
import os
import sys
import time

import numpy as np
import torch


def torch_module(hidden, n_classes, dropout):
    layers, width = [], 784
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        if dropout:
            layers.append(torch.nn.Dropout(dropout))
        width = h
    layers.append(torch.nn.Linear(width, n_classes))
    model = torch.nn.Sequential(*layers)
    # The initialisation of sknets, scikit-learn and Keras (Glorot-uniform
    # weights, zero biases), so every tool trains the same network.
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return model


def fit_handwritten(X, y, hidden, batch, dropout, epochs, seed):
    """The fastest plain loop: device tensors, one index per batch, fused Adam."""
    torch.manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    model = torch_module(hidden, 10, dropout)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(Xt)).split(batch):
            # index_select is the fastest gather: plain Xt[idx] goes through
            # advanced indexing and costs ~30% more per step here.
            loss = loss_fn(model(Xt.index_select(0, idx)), yt.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return lambda Xq: model(torch.from_numpy(Xq)).argmax(1).numpy()


def main(folder, hidden, batch, dropout, epochs, seed, threads, fit=None):
    """Time one fit of ``fit`` (default: :func:`fit_handwritten`) and write ``result.json``."""
    fit = fit or fit_handwritten
    if int(threads):
        torch.set_num_threads(int(threads))
    X, y = np.load(os.path.join(folder, "X.npy")), np.load(os.path.join(folder, "y.npy"))
    X_test = np.load(os.path.join(folder, "X_test.npy"))
    hidden = tuple(int(h) for h in hidden.split(",") if h)
    args = (hidden, int(batch), float(dropout))
    fit(X[:1000], y[:1000], *args, 1, seed=0)
    start, cpu_start = time.perf_counter(), time.process_time()
    predict = fit(X, y, *args, int(epochs), seed=int(seed))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    with torch.no_grad():
        predicted = predict(X_test)
    with open(os.path.join(folder, "result.json"), "w") as file:
        json.dump({"seconds": seconds, "cpu_seconds": cpu, "predicted": predicted.tolist()},
                  file)


if __name__ == "__main__":
    main(*sys.argv[1:])

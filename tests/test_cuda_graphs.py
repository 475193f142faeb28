"""Training steps captured as CUDA graphs train exactly as eager steps.

A CUDA graph records the kernels of one step and launches them again on
every replay. On the CPU, the tests below stand a ``Rerun`` in for the graph:
its capture records the step's body and its replay runs it again, reading
the input buffers the batch was copied into and the update's arguments
fixed at the capture, as a replayed graph does. They check everything around
the graph: which fits capture, the warm-up, the input buffers, the eager
steps (last batch, a new learning rate), a failed capture. The tests marked
``cuda`` run the real graphs and need a CUDA device.
"""

import contextlib
import typing

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sknets import MLPClassifier, MLPRegressor
from sknets._engine import graphs

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device (CUDA graphs)")


class Rerun:
    """A CUDA graph's stand-in: capture records the body, replay runs it again."""

    made: typing.ClassVar[list] = []

    def __init__(self):
        self.body, self.replays = None, 0
        Rerun.made.append(self)

    def capture(self, body):
        self.body = body

    def replay(self):
        self.replays += 1
        self.body()

    warmup = staticmethod(contextlib.nullcontext)


class FailingCapture(Rerun):
    def capture(self, body):
        raise RuntimeError("operation not permitted when stream is capturing")


@pytest.fixture
def cpu_graphs(monkeypatch):
    """CPU fits capture their steps with ``Rerun``; returns the graphs made."""
    Rerun.made = []
    monkeypatch.setitem(graphs.GRAPHS, "cpu", Rerun)
    monkeypatch.delenv("SKNETS_CUDA_GRAPHS", raising=False)
    return Rerun.made


@pytest.fixture
def data():
    X, y = make_classification(n_samples=530, n_features=12, n_informative=6, n_classes=3,
                               random_state=0)
    weight = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    return X.astype(np.float32), y, weight


def _fit(estimator, X, y, **fit_params):
    estimator.fit(X, y, **fit_params)
    out = estimator.predict_proba(X) if hasattr(estimator, "predict_proba") else \
        estimator.predict(X)
    return estimator.history_.copy(), out


def _eager(monkeypatch, estimator, X, y, **fit_params):
    with monkeypatch.context() as patch:
        patch.setenv("SKNETS_CUDA_GRAPHS", "0")
        return _fit(estimator, X, y, **fit_params)


@pytest.mark.parametrize("params, weighted", [
    ({}, False),
    ({}, True),
    ({"dropout": 0.3, "hidden_layers": (32, 16)}, False),
    ({"optimizer": "adamw", "l1": 1e-4, "l2": 1e-2}, False),
    ({"l2": 1e-3, "clip_grad_norm": 0.5}, True),
    ({"early_stopping": True, "patience": 2}, False),
])
def test_replayed_steps_train_exactly_as_eager_steps(cpu_graphs, monkeypatch, data, params,
                                                     weighted):
    X, y, weight = data
    clf = MLPClassifier(**{"hidden_layers": (24,), "max_epochs": 6, "batch_size": 50,
                           "random_state": 0, "n_threads": 1, **params})
    fit_params = {"sample_weight": weight} if weighted else {}
    history, proba = _fit(clf, X, y, **fit_params)
    assert len(cpu_graphs) == 1 and cpu_graphs[0].replays > 0
    eager_history, eager_proba = _eager(monkeypatch, clf, X, y, **fit_params)
    assert len(cpu_graphs) == 1  # the eager fit captured nothing
    np.testing.assert_array_equal(history["train_loss"], eager_history["train_loss"])
    np.testing.assert_array_equal(proba, eager_proba)


@pytest.mark.parametrize("batch_size, full_batches", [
    (50, 10),   # 530 samples: 10 full batches and one of 30 per epoch
    (150, 3),   # 3 full batches, the warm-up, then one of 80: it must not fix the graph's size
])
def test_only_full_batches_after_the_warmup_are_replayed(cpu_graphs, data, batch_size,
                                                         full_batches):
    X, y, _ = data
    MLPClassifier(hidden_layers=(8,), max_epochs=3, batch_size=batch_size, random_state=0,
                  n_threads=1).fit(X, y)
    [graph] = cpu_graphs
    assert graph.replays == 3 * full_batches - graphs.WARMUP_STEPS


def test_a_new_learning_rate_is_captured_again(cpu_graphs, monkeypatch, data):
    X, _, _ = data
    reg = MLPRegressor(hidden_layers=(8,), max_epochs=4, batch_size=53, lr_schedule="step",
                       lr_step_size=1, lr_gamma=0.5, random_state=0, n_threads=1)
    target = X[:, :2] @ np.array([1.0, -2.0], dtype=np.float32)
    history, pred = _fit(reg, X, target)
    # One capture per epoch: each epoch's rate, the first one after the warm-up.
    assert len(cpu_graphs) == 4
    # 530 samples, 10 batches: the first step of an epoch with a new rate is eager.
    assert [g.replays for g in cpu_graphs] == [10 - graphs.WARMUP_STEPS, 9, 9, 9]
    eager_history, eager_pred = _eager(monkeypatch, reg, X, target)
    np.testing.assert_array_equal(history["lr"], [1e-3, 5e-4, 2.5e-4, 1.25e-4])
    np.testing.assert_array_equal(history["train_loss"], eager_history["train_loss"])
    np.testing.assert_array_equal(pred, eager_pred)


def test_a_continued_fit_replays_from_its_own_state(cpu_graphs, monkeypatch, data):
    X, y, _ = data
    clf = MLPClassifier(hidden_layers=(8,), max_epochs=2, batch_size=50, random_state=0,
                        n_threads=1, warm_start=True)
    clf.fit(X, y)
    clf.fit(X, y)
    captured = clf.predict_proba(X)
    eager = MLPClassifier(**clf.get_params())
    with monkeypatch.context() as patch:
        patch.setenv("SKNETS_CUDA_GRAPHS", "0")
        eager.fit(X, y)
        eager.fit(X, y)
    assert len(cpu_graphs) == 2
    np.testing.assert_array_equal(captured, eager.predict_proba(X))


@pytest.mark.parametrize("params", [
    {"optimizer": "sgd"},                        # no AdamKernel: torch's own step
    {"lr_schedule": "one_cycle"},                # a new rate every batch
    {"batch_norm": True},                        # autograd, not the fused step
])
def test_steps_are_not_captured_where_replay_could_differ(cpu_graphs, data, params):
    X, y, _ = data
    MLPClassifier(hidden_layers=(8,), max_epochs=2, random_state=0, n_threads=1,
                  **params).fit(X, y)
    assert cpu_graphs == []


def test_cpu_fits_capture_nothing_by_default(data, monkeypatch):
    X, y, _ = data
    made = []
    monkeypatch.setattr(graphs.CapturedStep, "_capture",
                        lambda self, calls: made.append(calls) or False)
    MLPClassifier(hidden_layers=(8,), max_epochs=2, random_state=0, n_threads=1).fit(X, y)
    assert "cpu" not in graphs.GRAPHS and made == []


def test_a_failed_capture_warns_and_trains_eagerly(cpu_graphs, monkeypatch, data):
    X, y, _ = data
    monkeypatch.setitem(graphs.GRAPHS, "cpu", FailingCapture)
    clf = MLPClassifier(hidden_layers=(8,), max_epochs=3, batch_size=50, random_state=0,
                        n_threads=1)
    with pytest.warns(RuntimeWarning, match="could not be captured as a CUDA graph.*"
                                            "SKNETS_CUDA_GRAPHS=0"):
        history, proba = _fit(clf, X, y)
    assert len(cpu_graphs) == 1 and cpu_graphs[0].replays == 0  # tried once only
    eager_history, eager_proba = _eager(monkeypatch, clf, X, y)
    np.testing.assert_array_equal(history["train_loss"], eager_history["train_loss"])
    np.testing.assert_array_equal(proba, eager_proba)


# The real graphs, on a GPU.

@needs_cuda
@pytest.mark.parametrize("params", [{}, {"dropout": 0.2, "hidden_layers": (64, 32)},
                                    {"lr_schedule": "step", "lr_step_size": 1}])
def test_cuda_graphs_train_as_eager_cuda_steps(monkeypatch, data, params):
    X, y, _ = data
    replays = []
    replay = graphs.CudaGraph.replay
    monkeypatch.setattr(graphs.CudaGraph, "replay",
                        lambda self: replays.append(1) or replay(self))
    clf = MLPClassifier(**{"hidden_layers": (32,), "max_epochs": 4, "batch_size": 50,
                           "random_state": 0, "device": "cuda", **params})
    history, proba = _fit(clf, X, y)
    assert len(replays) > 0
    eager_history, eager_proba = _eager(monkeypatch, clf, X, y)
    np.testing.assert_allclose(history["train_loss"], eager_history["train_loss"],
                               rtol=1e-5)
    np.testing.assert_allclose(proba, eager_proba, atol=1e-5)

"""Searches that train candidates as one stacked network: each member as its own fit.

A member trained in a stacked network must be the estimator a separate
``fit`` with the same parameters gives (weights, batches, optimizer,
stopping, history), and the searches must give scikit-learn's results.
"""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import loguniform
from sklearn import model_selection as sk
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sknets import MLPClassifier, MLPRegressor, load
from sknets._engine import stacked
from sknets._engine.resources import split_invariant
from sknets._engine.stacked import _train_batched
from sknets.model_selection import GridSearchCV, RandomizedSearchCV, _fit_stacked


@pytest.fixture(autouse=True)
def mkl_products(monkeypatch):
    """MKL's products in every fit, so that the wide products are tested on every CPU.

    Where fits compute their large products with oneDNN (AMD CPUs), batched
    groups compute those products member by member; the tests below that
    turn oneDNN on cover that.
    """
    from sknets._engine import fused, resources

    for module in (resources, fused, stacked):
        monkeypatch.setattr(module, "onednn_products", lambda: False)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:360] / 16, y[:360]


def _separate(base, candidate, X, y):
    return clone(base).set_params(**candidate).fit(X, y)


# Batched members compute, product by product, what their separate fits
# compute where torch's matrix products do not depend on how many columns
# are computed together (MKL's strict mode, which import sknets sets); to
# float32 rounding elsewhere.
EXACT_BATCHED = split_invariant()


def _assert_same_fit(stacked, separate, X, batched=False):
    h1, h2 = stacked.history_, separate.history_
    assert list(h1.columns) == list(h2.columns)
    if not batched or EXACT_BATCHED:
        pd.testing.assert_frame_equal(h1.drop(columns="seconds"), h2.drop(columns="seconds"))
        np.testing.assert_array_equal(stacked._forward(X), separate._forward(X))
    assert len(h1) == len(h2)
    np.testing.assert_allclose(h1["train_loss"], h2["train_loss"], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(h1["lr"], h2["lr"])
    np.testing.assert_array_equal(h1["epoch"], h2["epoch"])
    assert stacked.best_epoch_ == separate.best_epoch_
    assert stacked.n_epochs_ == separate.n_epochs_
    if hasattr(separate, "predict_proba"):
        p1, p2 = stacked.predict_proba(X), separate.predict_proba(X)
        np.testing.assert_array_equal(p1.argmax(1), p2.argmax(1))
        np.testing.assert_allclose(p1, p2, atol=1e-5)
    else:
        np.testing.assert_allclose(stacked.predict(X), separate.predict(X), atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("hidden, activation", [((16, 8), "relu"), ((12,), "tanh"),
                                                ((13, 7), "sigmoid"), ((), "identity")])
def test_member_is_its_separate_fit(digits, optimizer, hidden, activation):
    _check_members(digits, optimizer, hidden, activation)


@pytest.mark.parametrize("optimizer", ["nesterov", "adagrad", "rmsprop", "adamw"])
def test_members_of_every_optimizer_are_their_separate_fits(digits, optimizer):
    _check_members(digits, optimizer, (16,), "relu")


def _check_members(digits, optimizer, hidden, activation):
    X, y = digits
    # patience=2 with tol=0.01 stops some members early (checked below).
    base = MLPClassifier(hidden, activation=activation, optimizer=optimizer, max_epochs=8,
                         batch_size=32, patience=2, tol=1e-2, random_state=3)
    candidates = [{"lr": lr, "l2": l2, "momentum": momentum} for lr in (1e-3, 5e-2)
                  for l2 in (0.0, 1e-2) for momentum in (0.5, 0.9)]
    for batched in (False, True):
        fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y,
                              batched=batched)
        for candidate, member in zip(candidates, fitted):
            assert member.get_params()["lr"] == candidate["lr"]
            _assert_same_fit(member, _separate(base, candidate, X, y), X, batched=batched)
        if optimizer == "sgd" and activation == "relu":
            assert {member.n_epochs_ for member in fitted} == {3, 8}  # stopping per member


@pytest.mark.parametrize("optimizer, hidden", [("adam", (16,)), ("adam", (12, 8)),
                                               ("sgd", (16,)), ("momentum", (12, 8))])
def test_members_of_other_widths_dropout_l1_schedules_and_clipping_are_their_fits(
        digits, optimizer, hidden):
    X, y = digits
    base = MLPClassifier(hidden, optimizer=optimizer, max_epochs=6, batch_size=32,
                         patience=2, tol=1e-2, random_state=5)
    schedules = [{"lr_schedule": "constant"}, {"lr_schedule": "step", "lr_step_size": 2},
                 {"lr_schedule": "cosine", "lr_min": 1e-4},
                 {"lr_schedule": "plateau", "lr_patience": 0, "lr_gamma": 0.5},
                 {"lr_schedule": "exponential", "lr_decay": 0.3},
                 {"lr_schedule": "linear", "lr_decay": 1e-3},
                 {"lr_schedule": "one_cycle", "clip_grad_norm": 0.5},
                 {"lr_schedule": "cosine", "lr_warmup_epochs": 2, "clip_grad_norm": 1.0}]
    candidates = [{"lr": lr, "dropout": dropout, **schedule, "l1": l1,
                   "hidden_layers": tuple(w * scale for w in hidden)}
                  for lr, dropout, scale, l1, schedule in zip(
                      [1e-2, 3e-3, 1e-2, 3e-2, 1e-2, 3e-3, 1e-2, 3e-2],
                      [0.0, 0.3, 0.2, 0.0, 0.5, 0.1, 0.0, 0.2],
                      [1, 2, 1, 2, 3, 1, 2, 1], [0.0, 1e-3, 0.0, 1e-4, 0.0, 3e-3, 0.0, 0.0],
                      schedules)]
    separate = [_separate(base, candidate, X, y) for candidate in candidates]
    assert len({tuple(fit.history_["lr"]) for fit in separate}) == len(candidates)
    for batched in (False, True):
        fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y,
                              batched=batched)
        for member, fit in zip(fitted, separate):
            _assert_same_fit(member, fit, X, batched=batched)


@pytest.mark.parametrize("optimizer, scoring", [("sgd", None), ("momentum", None),
                                               ("adam", None), ("adam", "f1_macro"),
                                               ("sgd", "neg_log_loss")])
def test_members_with_early_stopping_are_their_separate_fits(digits, optimizer, scoring):
    X, y = digits
    base = MLPClassifier((16,), optimizer=optimizer, max_epochs=15, batch_size=32,
                         early_stopping=True, validation_fraction=0.25, patience=2,
                         tol=1e-2, scoring=scoring, random_state=2)
    rates = {"sgd": (0.1, 1.0), "momentum": (0.03, 0.3), "adam": (3e-3, 3e-1)}[optimizer]
    candidates = [{"lr": lr, "dropout": dropout, "lr_schedule": schedule}
                  for lr in rates for dropout in (0.0, 0.3)
                  for schedule in ("constant", "plateau")]
    separate = [_separate(base, candidate, X, y) for candidate in candidates]
    # Some stop early, and their best epoch's weights are restored.
    assert min(fit.n_epochs_ for fit in separate) < 15
    assert any(fit.best_epoch_ < fit.n_epochs_ for fit in separate)
    for batched in (False, True):
        fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y,
                              batched=batched)
        for member, fit in zip(fitted, separate):
            assert "valid_loss" in member.history_ and "valid_accuracy" in member.history_
            if scoring is not None:
                assert f"valid_{scoring}" in member.history_
            if batched:
                np.testing.assert_allclose(member.history_["valid_loss"],
                                           fit.history_["valid_loss"], rtol=1e-4)
            _assert_same_fit(member, fit, X, batched=batched)


def test_member_is_its_separate_fit_regressor(digits):
    X, _ = digits
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5])
    base = MLPRegressor((8,), max_epochs=6, batch_size=50, shuffle=False, random_state=1)
    candidates = [{"lr": 1e-3}, {"lr": 1e-2, "l2": 1e-3}]
    for batched in (False, True):
        fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y,
                              batched=batched)
        for candidate, member in zip(candidates, fitted):
            _assert_same_fit(member, _separate(base, candidate, X, y), X, batched=batched)


@pytest.mark.parametrize("widths", [(8,), (16,)])
def test_members_keep_their_bits_where_the_wide_product_would_not(digits, monkeypatch, widths):
    # Where one wide product of the first layers would round a member's
    # columns otherwise than its own product (a BLAS that picks its kernel by
    # the number of columns), each member gets a product of its own.
    X, y = digits
    monkeypatch.setattr(stacked, "_wide_product_exact", lambda *shape: False)
    base = MLPClassifier(widths, max_epochs=3, batch_size=50, random_state=2)
    candidates = [{"lr": 1e-3}, {"lr": 1e-2, "dropout": 0.1}, {"lr": 3e-3}]
    fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y, batched=True)
    for candidate, member in zip(candidates, fitted):
        _assert_same_fit(member, _separate(base, candidate, X, y), X, batched=True)


def test_members_whose_products_depend_on_threads_train_the_exact_way(digits, monkeypatch):
    X, y = digits

    def not_batched(*args, **kwargs):
        raise AssertionError("batched despite products that round otherwise on two threads")

    monkeypatch.setattr(stacked, "_train_batched", not_batched)
    monkeypatch.setattr(stacked, "thread_invariant", lambda products=(): False)
    base = MLPClassifier((8,), max_epochs=2, batch_size=50, random_state=3)
    candidates = [{"lr": 1e-3}, {"lr": 1e-2}]
    fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y, batched=True)
    for candidate, member in zip(candidates, fitted):
        _assert_same_fit(member, _separate(base, candidate, X, y), X)


def _onednn_on(monkeypatch):
    """Fits computing their large products with oneDNN, as on AMD CPUs.

    Returns the list of oneDNN products the training steps computed (not
    the thread check's products, which oneDNN computes too).
    """
    from sknets._engine import fused, resources

    try:
        torch.ops.mkldnn._linear_pointwise  # noqa: B018
    except (AttributeError, RuntimeError):
        pytest.skip("this torch build has no oneDNN linear operator")
    calls, in_step = [], []
    for module in (resources, fused, stacked):
        monkeypatch.setattr(module, "onednn_products", lambda: True)
    onednn_linear, step_product = resources.linear, resources.step_product

    def counted_linear(*args):
        if in_step:
            calls.append(1)
        return onednn_linear(*args)

    def counted_step_product(*args, **kwargs):
        in_step.append(1)
        try:
            return step_product(*args, **kwargs)
        finally:
            in_step.pop()

    def step_linear(*args):  # the fused step's own products
        calls.append(1)
        return onednn_linear(*args)

    monkeypatch.setattr(resources, "linear", counted_linear)
    monkeypatch.setattr(fused, "linear", step_linear)
    monkeypatch.setattr(stacked, "step_product", counted_step_product)
    return calls


@pytest.mark.parametrize("hidden", [(256,), (48,), (256, 24), ()])
def test_batched_groups_compute_first_layers_with_onednn_where_fits_do(digits, monkeypatch,
                                                                        hidden):
    # 120 x 64 by 64 x 256: 3.9e6 operations, a product the fits compute
    # with oneDNN; a group computes it member by member, the same way. Of
    # 48 units (7.4e5), or without a hidden layer, it is MKL's in both.
    calls = _onednn_on(monkeypatch)
    batched = _batched_calls(monkeypatch)
    X, y = digits
    base = MLPClassifier(hidden_layers=hidden, batch_size=120, max_epochs=3, dropout=0.1,
                         random_state=0)
    candidates = [{"lr": 1e-3}, {"lr": 3e-3, "l2": 1e-3}]
    fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y, batched=True)
    assert batched
    for member, candidate in zip(fitted, candidates):
        _assert_same_fit(member, _separate(base, candidate, X, y), X)
    assert bool(calls) == (hidden[:1] == (256,))


def _batched_calls(monkeypatch):
    batched = []
    monkeypatch.setattr(stacked, "_train_batched",
                        lambda *args: batched.append(1) or _train_batched(*args))
    return batched


@pytest.mark.parametrize("hidden, dropout", [
    ((256, 128), 0.0),  # the second layer: 120 x 256 by 256 x 128, 7.9e6 operations
    ((256, 128), 0.2),
    ((48, 200), 0.1),  # a first layer of MKL's (7.4e5), a second of oneDNN's (2.3e6)
    ((2048,), 0.0),  # the output layer's gradients (4.9e6) too, on its narrow layout
])
def test_batched_groups_compute_deeper_layers_with_onednn_where_fits_do(digits, monkeypatch,
                                                                         hidden, dropout):
    calls = _onednn_on(monkeypatch)
    batched = _batched_calls(monkeypatch)
    X, y = digits
    base = MLPClassifier(hidden_layers=hidden, batch_size=120, max_epochs=2, dropout=dropout,
                         random_state=0)
    candidates = [{"lr": 1e-3}, {"lr": 3e-3, "l2": 1e-3}, {"lr": 1e-2}]
    fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y, batched=True)
    assert batched and calls
    for member, candidate in zip(fitted, candidates):
        _assert_same_fit(member, _separate(base, candidate, X, y), X)


@pytest.mark.parametrize("onednn", [False, True])
@pytest.mark.parametrize("estimator, n_outputs", [(MLPClassifier, 10), (MLPClassifier, 20),
                                                  (MLPRegressor, 20)])
def test_batched_groups_without_hidden_layers_are_their_fits(monkeypatch, estimator, n_outputs,
                                                             onednn):
    # Outputs narrow (stored transposed) or not, each member's outputs and
    # gradients laid out as its fit's; with oneDNN on, 2 x 200 x 600 x 10
    # (or 20) operations make the only layer's weight gradient oneDNN's.
    calls = _onednn_on(monkeypatch) if onednn else []
    batched = _batched_calls(monkeypatch)
    rng = np.random.RandomState(0)
    X = rng.rand(400, 600)
    y = (X[:, :n_outputs] @ rng.rand(n_outputs, n_outputs) if estimator is MLPRegressor
         else np.arange(400) % n_outputs)
    base = estimator(hidden_layers=(), batch_size=200, max_epochs=2, random_state=0)
    candidates = [{"lr": 1e-3}, {"lr": 3e-3, "l2": 1e-3}]
    fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y, batched=True)
    assert batched and bool(calls) == onednn
    for member, candidate in zip(fitted, candidates):
        _assert_same_fit(member, _separate(base, candidate, X, y), X)


def test_wide_product_check_sees_a_kernel_that_rounds_otherwise(monkeypatch):
    if split_invariant():  # the same product and columns as that check's
        assert stacked._wide_product_exact(100, 784, (100, 100))
    # A product that rounds each column by how many columns it has.
    wide_addmm = torch.addmm
    monkeypatch.setattr(stacked.torch, "addmm",
                        lambda b, x, w: wide_addmm(b, x, w) * (1 + 2 ** -20 * w.shape[1]))
    stacked._wide_product_exact.cache_clear()
    try:
        assert not stacked._wide_product_exact(20, 30, (12, 13))
    finally:
        stacked._wide_product_exact.cache_clear()


@pytest.mark.parametrize("kind", ["label_smoothing", "multilabel", "huber", "poisson",
                                  "multioutput"])
def test_members_of_every_loss_are_their_separate_fits(digits, kind):
    X, labels = digits
    if kind == "label_smoothing":
        base, y = MLPClassifier((12,), label_smoothing=0.1), labels
    elif kind == "multilabel":
        base, y = MLPClassifier((12,)), np.c_[labels % 2, labels > 4, labels == 0].astype(int)
    elif kind == "poisson":
        base, y = MLPRegressor((12,), loss="poisson"), np.round(X[:, 20] * 5)
    else:
        base = MLPRegressor((12,), loss="huber" if kind == "huber" else "squared_error")
        y = X[:, [10, 20]] @ np.array([[1.0, 0.5], [-2.0, 1.0]])
    base.set_params(max_epochs=5, batch_size=40, random_state=4)
    candidates = [{"lr": lr, "dropout": dropout} for lr in (1e-3, 1e-2) for dropout in (0, 0.2)]
    for batched in (False, True):
        fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y,
                              batched=batched)
        for candidate, member in zip(candidates, fitted):
            _assert_same_fit(member, _separate(base, candidate, X, y), X, batched=batched)


def test_members_in_threads_are_their_separate_fits(digits, monkeypatch):
    from sknets._engine import stacked

    X, y = digits
    base = MLPClassifier((16,), optimizer="adam", max_epochs=4, batch_size=32,
                         patience=1, tol=1e-2, random_state=0)
    candidates = [{"lr": lr} for lr in (1e-4, 1e-3, 3e-3, 1e-2, 3e-2)]
    # Each fit's budget is 1 thread, the group's 3: three members step at once.
    calls = []

    def budget(n_threads, work=None, batch_size=None, products=()):
        calls.append(work)
        return 3 if len(calls) > 1 else 1  # the members' 1, then the group's 3

    monkeypatch.setattr(stacked, "thread_budget", budget)
    fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y)
    # The members' budget (one work: one call, one reading of the load), then the group's.
    assert len(calls) == 2
    assert calls[-1] == len(candidates) * calls[0]
    for candidate, member in zip(candidates, fitted):
        _assert_same_fit(member, _separate(base, candidate, X, y), X)


def test_members_of_other_thread_budgets_are_their_separate_fits(digits, monkeypatch):
    from sknets._engine import resources

    if resources.thread_budget() < 2:
        pytest.skip("needs 2 threads for a fit: one fit's budget must differ from another's")
    # The narrow member's step is under the threshold (1 thread), the wide one's over it.
    monkeypatch.setattr(resources, "SMALL_STEP_FLOPS", 500_000)
    monkeypatch.setattr(resources, "SHORT_STEP_FLOPS", 500_000)
    X, y = digits
    base = MLPClassifier(optimizer="adam", max_epochs=4, batch_size=32, random_state=1)
    candidates = [{"hidden_layers": (8,), "lr": 1e-2}, {"hidden_layers": (64,), "lr": 1e-2},
                  {"hidden_layers": (64,), "lr": 1e-3}]
    fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y)
    for candidate, member in zip(candidates, fitted):
        _assert_same_fit(member, _separate(base, candidate, X, y), X)


@pytest.mark.parametrize("batched", [False, True])
def test_member_continues_saves_and_pickles_as_a_fit(digits, tmp_path, batched):
    X, y = digits
    # Members of one Adam setting: a batched group updates them together.
    base = MLPClassifier((8,), optimizer="adam", max_epochs=3, random_state=0)
    candidates = [{"lr": 1e-3}, {"lr": 1e-2}, {"lr": 1e-2, "dropout": 0.2}]
    fitted = _fit_stacked([clone(base).set_params(**c) for c in candidates], X, y,
                          batched=batched)
    member = fitted[1]
    # Each member's weights and optimizer state are tensors of its own.
    tensors = [t for m in fitted for t in [*m.net_.module_.parameters(),
                                           *(v for state in m.net_.optimizer_.state.values()
                                             for k, v in state.items() if k != "step")]]
    assert all(t._base is None for t in tensors)
    assert len({t.untyped_storage().data_ptr() for t in tensors}) == len(tensors)
    separate = _separate(base, candidates[1], X, y)
    # warm_start continues from the optimizer's state and the batch order.
    for estimator in (member, separate):
        estimator.set_params(warm_start=True, max_epochs=2).fit(X, y)
    _assert_same_fit(member, separate, X, batched=batched)
    member.save(tmp_path / "member.sknets")
    np.testing.assert_array_equal(load(tmp_path / "member.sknets").predict(X), member.predict(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(member)).predict(X),
                                  member.predict(X))
    assert isinstance(member.history_, pd.DataFrame)


def _compare(ours, theirs):
    assert sorted(ours.cv_results_) == sorted(theirs.cv_results_)
    assert ours.cv_results_["params"] == theirs.cv_results_["params"]
    # Bit for bit: each stacked member is its separate fit.
    np.testing.assert_array_equal(ours.cv_results_["mean_test_score"],
                                  theirs.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(ours.cv_results_["rank_test_score"],
                                  theirs.cv_results_["rank_test_score"])
    assert ours.best_params_ == theirs.best_params_


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_grid_search_gives_scikit_learns_results(digits, optimizer):
    X, y = digits
    base = MLPClassifier((16,), optimizer=optimizer, max_epochs=4, random_state=0)
    grid = {"lr": [1e-3, 1e-2, 1e-1], "l2": [0.0, 1e-3]}
    ours = GridSearchCV(base, grid, cv=3, return_train_score=True).fit(X, y)
    theirs = sk.GridSearchCV(base, grid, cv=3, return_train_score=True, n_jobs=1).fit(X, y)
    _compare(ours, theirs)
    np.testing.assert_array_equal(ours.cv_results_["mean_train_score"],
                                  theirs.cv_results_["mean_train_score"])
    assert ours.n_stacked_groups_ == 1
    assert ours.n_stacked_fits_ == 6 * 3
    assert np.all(ours.cv_results_["mean_fit_time"] > 0)
    # refit trains the best candidate on all the data, as scikit-learn does.
    assert type(ours.best_estimator_) is MLPClassifier
    np.testing.assert_array_equal(ours.best_estimator_.predict_proba(X),
                                  theirs.best_estimator_.predict_proba(X))
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def _compare_batched(ours, theirs):
    if EXACT_BATCHED:
        _compare(ours, theirs)
        return
    # Elsewhere batched members are their fits to float32 rounding, which
    # training amplifies a little.
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               theirs.cv_results_["mean_test_score"], atol=0.005)


def test_strict_matrix_products_make_batched_members_exact():
    # import sknets (conftest) sets MKL's strict mode before torch loads.
    assert EXACT_BATCHED, "MKL_CBWR in the environment keeps MKL out of its strict mode"


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_batched_stacking_gives_scikit_learns_search_results(digits, optimizer):
    X, y = digits
    base = MLPClassifier((16,), optimizer=optimizer, max_epochs=4, random_state=0)
    grid = {"lr": [1e-3, 1e-2], "l2": [0.0, 1e-3]}
    ours = GridSearchCV(base, grid, cv=3, stacking="batched").fit(X, y)
    theirs = sk.GridSearchCV(base, grid, cv=3, n_jobs=1).fit(X, y)
    assert ours.n_stacked_fits_ == 4 * 3
    _compare_batched(ours, theirs)


def test_members_of_one_seed_share_their_dropout_draws_and_keep_their_own_masks():
    import torch

    from sknets._engine.fused import FusedStep
    from sknets._engine.modules import Dropout, dropout_mask
    from sknets._engine.stacked import _draw_leaders, _Stacked

    def step(width, p, state):
        layers = [torch.nn.Linear(4, width), torch.nn.ReLU()]
        layers += [Dropout(p)] if p else []
        fused = FusedStep.build(torch.nn.Sequential(*layers, torch.nn.Linear(width, 3)),
                                torch.nn.CrossEntropyLoss())
        fused.generator = torch.Generator().manual_seed(state)
        return fused

    specs = [(8, 0.2, 0), (8, 0.5, 0), (8, 0.0, 0), (16, 0.2, 0), (8, 0.2, 1), (8, 0.2, 0)]
    stacked = _Stacked([step(*spec) for spec in specs])
    # Same seed and widths draw together; no dropout draws nothing.
    assert stacked.leaders == {0: 0, 1: 0, 3: 3, 4: 4, 5: 0}
    # Dropout in other layers draws another sequence: no shared draws.
    deep = [FusedStep.build(torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), Dropout(0.2), torch.nn.Linear(8, 8),
        torch.nn.ReLU(), *([Dropout(0.2)] if both else []), torch.nn.Linear(8, 3)),
        torch.nn.CrossEntropyLoss()) for both in (False, True, True)]
    for fused in deep:
        fused.generator = torch.Generator().manual_seed(0)
    assert _draw_leaders(deep, [(8, 8)] * 3) == {0: 0, 1: 1, 2: 1}
    # Each member's own masks, as its fit draws them, two steps in a row.
    own = {k: torch.Generator().manual_seed(seed) for k, (_, _, seed) in enumerate(specs)}
    for _ in range(2):
        stacked._uniforms.clear()  # as each step does
        eights = stacked._masks(0, (5, 8), [0, 5, 1, 2, 4], [0.2, 0.2, 0.5, 0.0, 0.2])
        sixteen = stacked._masks(0, (5, 16), [3], [0.2])
        # Neighbours with one mask share a run; member 2 has no dropout.
        assert [run[:2] for run in eights] == [[0, 2], [2, 3], [4, 5]]
        blocks = [*stacked._drop(torch.ones(5, 5, 8), eights),
                  *stacked._drop(torch.ones(1, 5, 16), sixteen)]
        for block, k in zip(blocks, [0, 5, 1, 2, 4, 3]):
            width, p, _ = specs[k]
            expected = dropout_mask((5, width), 1 - p, own[k]) if p else torch.ones(5, width)
            torch.testing.assert_close(block, expected, rtol=0, atol=0)


def test_grid_over_widths_dropout_schedules_and_early_stopping(digits):
    X, y = digits
    base = MLPClassifier((16,), optimizer="adam", max_epochs=4, random_state=0)
    grid = {"lr": [1e-3, 1e-2], "dropout": [0.0, 0.2], "hidden_layers": [(8,), (16,)],
            "lr_schedule": ["constant", "cosine"], "early_stopping": [False, True]}
    theirs = sk.GridSearchCV(base, grid, cv=3, n_jobs=1).fit(X, y)
    ours = GridSearchCV(base, grid, cv=3).fit(X, y)
    # One group per value of early_stopping.
    assert (ours.n_stacked_groups_, ours.n_stacked_fits_) == (2, 32 * 3)
    _compare(ours, theirs)
    batched = GridSearchCV(base, grid, cv=3, stacking="batched").fit(X, y)
    assert batched.n_stacked_fits_ == 32 * 3
    _compare_batched(batched, theirs)


def test_seeds_group_in_lockstep_each_member_drawing_its_own_batches(digits):
    X, y = digits
    base = MLPClassifier((16,), max_epochs=3, batch_size=50, random_state=0)
    grid = {"random_state": [0, 1, 2], "lr": [1e-3, 1e-2], "dropout": [0.0, 0.3]}
    theirs = sk.GridSearchCV(base, grid, cv=2, n_jobs=1).fit(X, y)
    ours = GridSearchCV(base, grid, cv=2, stacking="exact").fit(X, y)
    assert (ours.n_stacked_groups_, ours.n_stacked_fits_) == (1, 12 * 2)
    _compare(ours, theirs)
    # Batched stacking shares one batch order: one group per seed.
    batched = GridSearchCV(base, grid, cv=2, stacking="batched").fit(X, y)
    assert (batched.n_stacked_groups_, batched.n_stacked_fits_) == (3, 12 * 2)
    _compare_batched(batched, theirs)
    # A validation set is drawn by the seed: seeds then stay apart.
    held_out = GridSearchCV(base.set_params(early_stopping=True), grid, cv=2,
                            stacking="exact").fit(X, y)
    assert held_out.n_stacked_groups_ == 3


def test_stacking_chooses_the_engine_mode(digits, monkeypatch):
    import sknets.model_selection as searches

    modes = []
    train = searches.train_stacked
    monkeypatch.setattr(searches, "train_stacked",
                        lambda *args, **kwargs: modes.append(kwargs["batched"]) or
                        train(*args, **kwargs))
    X, y = digits

    def search(stacking):
        GridSearchCV(MLPClassifier((8,), max_epochs=1, random_state=0),
                     {"lr": [1e-3, 1e-2]}, cv=2, stacking=stacking).fit(X, y)

    for stacking in ("exact", "batched", "auto"):
        search(stacking)
    # "auto" is "batched" where batched members are bit for bit their fits.
    assert modes == [False, False, True, True] + [EXACT_BATCHED] * 2  # two splits each
    monkeypatch.setattr(searches, "split_invariant", lambda: False)
    modes.clear()
    search("auto")
    assert modes == [False, False]
    # A worker (elsewhere than the search) where it is not bit for bit trains
    # the group the search formed for "batched" in lockstep.
    answers = iter([True, False, False])
    monkeypatch.setattr(searches, "split_invariant", lambda: next(answers))
    modes.clear()
    search("auto")
    assert modes == [False, False]


def test_stacking_is_a_parameter_checked_before_any_fit(digits):
    X, y = digits
    search = GridSearchCV(MLPClassifier((8,), max_epochs=1), {"lr": [1e-3, 1e-2]},
                          stacking="batched")
    assert clone(search).get_params()["stacking"] == "batched"
    assert RandomizedSearchCV(MLPClassifier(), {"lr": [1e-3]}).stacking == "auto"
    with pytest.raises(ValueError, match="stacking must be one of"):
        search.set_params(stacking="fast").fit(X, y)
    assert not hasattr(search, "cv_results_")


def test_only_the_refit_is_a_separate_fit(digits, monkeypatch):
    X, y = digits
    calls = []
    fit = MLPClassifier.fit
    monkeypatch.setattr(MLPClassifier, "fit", lambda self, *a, **k: calls.append(1) or
                        fit(self, *a, **k))
    GridSearchCV(MLPClassifier((8,), max_epochs=2, random_state=0),
                 {"lr": [1e-3, 1e-2], "momentum": [0.5, 0.9]}, cv=2).fit(X, y)
    assert len(calls) == 1


@pytest.mark.parametrize("grid", [
    {"hidden_layers": [(8,), (8, 8)]},  # groups of one
    {"lr": [1e-3, 1e-2], "class_weight": ["balanced"]},
    {"lr": [1e-3, 1e-2], "verbose": [1]},
    {"lr": [1e-3, 1e-2], "batch_norm": [True]},
], ids=["depth", "class_weight", "verbose", "batch_norm"])
def test_candidates_outside_the_slice_fall_back(digits, grid):
    X, y = digits
    base = MLPClassifier((8,), max_epochs=3, random_state=0)
    ours = GridSearchCV(base, grid, cv=2).fit(X, y)
    assert ours.n_stacked_fits_ == 0
    _compare(ours, sk.GridSearchCV(base, grid, cv=2).fit(X, y))


def test_mixed_grid_stacks_what_it_can(digits):
    X, y = digits
    base = MLPClassifier((8,), max_epochs=3, random_state=0)
    grid = [{"lr": [1e-3, 1e-2]}, {"lr": [1e-2], "batch_norm": [True]},
            {"lr": [1e-2], "random_state": [None]}]
    ours = GridSearchCV(base, grid, cv=2).fit(X, y)
    assert (ours.n_stacked_groups_, ours.n_stacked_fits_) == (1, 4)
    theirs = sk.GridSearchCV(base, grid, cv=2).fit(X, y)
    # The last candidate draws its seed afresh in every fit.
    np.testing.assert_array_equal(ours.cv_results_["mean_test_score"][:3],
                                  theirs.cv_results_["mean_test_score"][:3])


_EPOCHS_SEEN = []


class _CountEpochs(Callback):
    def on_epoch_end(self, net, **kwargs):
        _EPOCHS_SEEN.append(len(net.history))


class _ListenToBatches(Callback):
    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        _EPOCHS_SEEN.append(("begin", len(batch[0]), training))

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        _EPOCHS_SEEN.append(("end", len(batch[0]), training, round(float(loss), 4)))


def test_every_callback_runs_for_each_member_as_in_its_fit(digits):
    X, y = digits
    _EPOCHS_SEEN.clear()
    base = MLPClassifier((8,), max_epochs=3, random_state=0, callbacks=[_CountEpochs()])
    search = GridSearchCV(base, {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert search.n_stacked_fits_ == 4
    assert sorted(_EPOCHS_SEEN) == [1] * 5 + [2] * 5 + [3] * 5  # 4 stacked fits, the refit
    # Batch callbacks see each member's batches and losses as in its own fit.
    base.set_params(callbacks=[_ListenToBatches()], batch_size=64)
    seen = {}
    for batched in (False, True):
        _EPOCHS_SEEN.clear()
        _fit_stacked([clone(base).set_params(lr=lr) for lr in (1e-3, 1e-2)], X, y,
                     batched=batched)
        seen[batched] = sorted(_EPOCHS_SEEN)
    _EPOCHS_SEEN.clear()
    for lr in (1e-3, 1e-2):
        clone(base).set_params(lr=lr).fit(X, y)
    assert seen[False] == seen[True] == sorted(_EPOCHS_SEEN)
    assert len(_EPOCHS_SEEN) == 2 * 2 * 3 * 6  # 2 fits, begin and end, 3 epochs of 6 batches


def test_other_estimators_are_scikit_learns_search(digits):
    X, y = digits
    grid = {"C": [0.1, 1.0]}
    ours = GridSearchCV(LogisticRegression(max_iter=200), grid, cv=2).fit(X, y)
    theirs = sk.GridSearchCV(LogisticRegression(max_iter=200), grid, cv=2).fit(X, y)
    assert ours.n_stacked_fits_ == 0
    _compare(ours, theirs)


def test_diverging_member_fails_as_its_fit_does(digits):
    X, _ = digits
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5])
    base = MLPRegressor((8,), activation="identity", optimizer="sgd", max_epochs=3,
                        random_state=0)
    grid = {"lr": [1e-2, 1e2]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.simplefilter("ignore", UserWarning)  # the non-finite test scores
        ours = GridSearchCV(base, grid, cv=2, error_score=np.nan).fit(X, y)
        theirs = sk.GridSearchCV(base, grid, cv=2, error_score=np.nan).fit(X, y)
    assert np.isnan(theirs.cv_results_["mean_test_score"][1])  # DivergenceError
    assert ours.n_stacked_fits_ == 2  # the diverged member was fitted on its own
    np.testing.assert_array_equal(np.isnan(ours.cv_results_["mean_test_score"]),
                                  np.isnan(theirs.cv_results_["mean_test_score"]))
    assert ours.best_params_ == theirs.best_params_


def test_pipeline_parallel_and_randomized(digits):
    X, y = digits
    X = X * 16
    pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), max_epochs=3, random_state=0))
    grid = {"mlpclassifier__lr": [1e-3, 1e-2], "mlpclassifier__l2": [0.0, 1e-3]}
    with joblib.parallel_config(backend="threading"):  # worker processes: the slow tier
        ours = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(X, y)
    assert ours.n_stacked_fits_ == 8
    _compare(ours, sk.GridSearchCV(pipe, grid, cv=2).fit(X, y))
    assert type(ours.best_estimator_[-1]) is MLPClassifier
    distributions = {"mlpclassifier__lr": loguniform(1e-3, 1e-1)}
    ours = RandomizedSearchCV(pipe, distributions, n_iter=3, cv=2, random_state=0).fit(X, y)
    theirs = sk.RandomizedSearchCV(pipe, distributions, n_iter=3, cv=2,
                                   random_state=0).fit(X, y)
    assert ours.n_stacked_fits_ == 6
    _compare(ours, theirs)


def test_groups_are_cut_so_that_workers_train_in_even_rounds(digits, monkeypatch):
    # 3 splits on 2 workers: each group of 8 trains as two parts of 4, six
    # tasks in three full rounds instead of three tasks in two rounds.
    from sknets import model_selection

    X, y = digits
    sizes = []
    train_group = model_selection._train_group
    monkeypatch.setattr(model_selection, "_train_group", lambda est, candidates, *a, **k:
                        sizes.append(len(candidates)) or train_group(est, candidates, *a, **k))
    base = MLPClassifier((8,), max_epochs=2, random_state=0)
    grid = {"lr": [1e-3, 1e-2], "l2": [0.0, 1e-3], "momentum": [0.5, 0.9]}
    with joblib.parallel_config(backend="threading"):
        ours = GridSearchCV(base, grid, cv=3, n_jobs=2).fit(X, y)
    assert sorted(sizes) == [4] * 6
    assert (ours.n_stacked_groups_, ours.n_stacked_fits_) == (1, 24)
    _compare(ours, sk.GridSearchCV(base, grid, cv=3).fit(X, y))
    assert [len(part) for part in model_selection._parts(list(range(16)), 4, 2)] == [16]
    assert [len(part) for part in model_selection._parts(list(range(5)), 3, 2)] == [5]


def test_regressor_search_with_scoring(digits):
    X, _ = digits
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5])
    base = MLPRegressor((8,), max_epochs=4, random_state=0)
    grid = {"lr": [1e-3, 1e-2]}
    ours = GridSearchCV(base, grid, cv=2, scoring="neg_mean_squared_error").fit(X, y)
    theirs = sk.GridSearchCV(base, grid, cv=2, scoring="neg_mean_squared_error").fit(X, y)
    assert ours.n_stacked_fits_ == 4
    _compare(ours, theirs)


@pytest.mark.slow
def test_mnist_grid_search_matches_scikit_learns(mnist_small):
    X, y, _, _ = mnist_small
    X, y = X[:3000], y[:3000]
    base = MLPClassifier((64,), optimizer="adam", max_epochs=3, batch_size=100,
                         random_state=0)
    grid = {"lr": [3e-4, 1e-3, 3e-3], "l2": [0.0, 1e-4]}
    ours = GridSearchCV(base, grid, cv=3).fit(X, y)
    theirs = sk.GridSearchCV(base, grid, cv=3).fit(X, y)
    assert ours.n_stacked_fits_ == 18
    _compare(ours, theirs)


@pytest.mark.slow
def test_worker_processes(digits):
    X, y = digits
    base = MLPClassifier((8,), max_epochs=3, random_state=0)
    grid = {"lr": [1e-3, 1e-2], "l2": [0.0, 1e-3]}
    ours = GridSearchCV(base, grid, cv=2, n_jobs=2).fit(X, y)
    assert ours.n_stacked_fits_ == 8
    _compare(ours, sk.GridSearchCV(base, grid, cv=2).fit(X, y))


@pytest.mark.slow  # a Dask cluster of worker processes
def test_groups_train_on_dask_workers(digits, dask_client):
    from dask.distributed import get_task_stream
    from joblib import parallel_config

    X, y = digits
    base = MLPClassifier((8,), max_epochs=3, n_threads=1, random_state=0)
    grid = {"lr": [1e-3, 1e-2], "hidden_layers": [(8,), (16,)], "dropout": [0.0, 0.2]}
    with get_task_stream(dask_client) as stream, parallel_config(backend="dask"):
        ours = GridSearchCV(base, grid, cv=2).fit(X, y)
    assert {task["worker"] for task in stream.data} == set(dask_client.scheduler_info()["workers"])
    assert (ours.n_stacked_groups_, ours.n_stacked_fits_) == (1, 8 * 2)
    _compare(ours, sk.GridSearchCV(base, grid, cv=2).fit(X, y))

"""The fused training step agrees with autograd, and covers what it claims."""

import copy
import operator
from unittest import mock

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sknets import MLPClassifier, MLPRegressor
from sknets._engine.fused import FusedStep
from sknets._engine.losses import ClassificationLoss, regression_loss
from sknets._engine.modules import MLP
from sknets._engine.resources import ThreadLimit, onednn_products


@pytest.fixture
def data():
    X, y = make_classification(n_samples=600, n_features=12, n_informative=6, n_classes=3,
                               random_state=0)
    weight = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    return X, y, weight


def _fit_both(estimator, X, y, **fit_params):
    fused = estimator.fit(X, y, **fit_params)
    fused_history, fused_out = fused.history_.copy(), _outputs(fused, X)
    with mock.patch.object(FusedStep, "build", return_value=None):
        eager = estimator.fit(X, y, **fit_params)
    return fused_history, fused_out, eager.history_, _outputs(eager, X)


def _outputs(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.predict(X)


@pytest.mark.parametrize("params", [
    {},
    {"dropout": 0.3},
    {"activation": "tanh", "hidden_layers": (16, 8)},
    {"activation": "sigmoid", "l2": 0.01},
    {"activation": "identity"},
    {"hidden_layers": ()},
    {"optimizer": "momentum", "lr": 0.05},
    {"l1": 1e-3, "dropout": 0.2},
    {"optimizer": "adamw", "l1": 1e-4, "l2": 1e-2},
])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_step_matches_autograd(data, params, weighted):
    X, y, weight = data
    clf = MLPClassifier(**{"hidden_layers": (32,), "max_epochs": 5, "random_state": 0, **params})
    fused_h, fused_p, eager_h, eager_p = _fit_both(
        clf, X, y, sample_weight=weight if weighted else None)
    np.testing.assert_allclose(fused_h["train_loss"], eager_h["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(fused_p, eager_p, atol=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_fused_step_matches_autograd_for_regression(data, weighted):
    X, _, weight = data
    y = np.c_[X[:, 0] + X[:, 1], X[:, 2] ** 2]
    reg = MLPRegressor(hidden_layers=(32,), dropout=0.1, max_epochs=5, random_state=0)
    fused_h, fused_p, eager_h, eager_p = _fit_both(
        reg, X, y, sample_weight=weight if weighted else None)
    np.testing.assert_allclose(fused_h["train_loss"], eager_h["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(fused_p, eager_p, atol=1e-5)


@pytest.mark.parametrize("estimator, target", [
    (MLPClassifier(label_smoothing=0.15), "classes"),
    (MLPClassifier(), "labels"),
    (MLPClassifier(label_smoothing=0.2, dropout=0.1), "labels"),
    (MLPRegressor(loss="absolute_error"), "values"),
    (MLPRegressor(loss="huber", huber_delta=0.5), "values"),
    (MLPRegressor(loss="poisson"), "counts"),
], ids=["smoothing", "multilabel", "multilabel-smoothing", "absolute", "huber", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_losses_train_as_autograd_does(data, estimator, target, weighted):
    X, y, weight = data
    y = {"classes": y,
         "labels": np.c_[y == 0, y == 1, X[:, 0] > 0].astype(int),
         "values": np.c_[X[:, 0] + X[:, 1], X[:, 2] ** 2],
         "counts": np.c_[np.round(np.abs(X[:, 0])), np.round(X[:, 2] ** 2)]}[target]
    estimator.set_params(hidden_layers=(32,), max_epochs=5, random_state=0)
    fused_h, fused_p, eager_h, eager_p = _fit_both(
        estimator, X, y, sample_weight=weight if weighted else None)
    np.testing.assert_allclose(fused_h["train_loss"], eager_h["train_loss"], rtol=1e-6)
    # Relative too: the Poisson model's predicted counts reach ~50, where
    # one float32 step is 4e-6.
    np.testing.assert_allclose(fused_p, eager_p, rtol=1e-6, atol=1e-5)


def test_plain_mlp_trains_through_the_fused_step(data):
    X, y, _ = data
    with mock.patch.object(FusedStep, "__call__", autospec=True,
                           side_effect=FusedStep.__call__) as step:
        MLPClassifier(hidden_layers=(8,), max_epochs=2, batch_size=100, random_state=0).fit(X, y)
    assert step.call_count == 12  # 2 epochs x 6 batches


@pytest.mark.parametrize("module, criterion, penalty", [
    (MLP(4, (8,), 2, batch_norm=True), torch.nn.CrossEntropyLoss(), None),
    (MLP(4, (8,), 2, activation="gelu"), torch.nn.CrossEntropyLoss(), None),
    (MLP(4, (8,), 2), torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(2)), None),
    (MLP(4, (8,), 2), torch.nn.CrossEntropyLoss(weight=torch.ones(2)), None),
    (MLP(4, (8,), 2), torch.nn.PoissonNLLLoss(log_input=False), None),
    (MLP(4, (8,), 2), torch.nn.SmoothL1Loss(), None),
    (MLP(4, (8,), 2), torch.nn.CrossEntropyLoss(), lambda module: 0.0),
    (MLP(4, (8,), 2, output_activation="sigmoid"), torch.nn.MSELoss(), None),
])
def test_other_networks_fall_back_to_autograd(module, criterion, penalty):
    assert FusedStep.build(module, criterion, penalty) is None


def test_unsupported_networks_still_train(data):
    X, y, _ = data
    clf = MLPClassifier(hidden_layers=(16,), batch_norm=True, activation="gelu", l1=1e-4,
                        max_epochs=5, random_state=0).fit(X, y)
    assert clf.history_["train_loss"].iloc[-1] < clf.history_["train_loss"].iloc[0]


def _autograd_step(module, criterion, X, target, weight):
    """Loss and gradients as the engine's autograd path computes them (TensorNet.get_loss)."""
    module.zero_grad(set_to_none=True)
    out = module(X)
    if weight is None:
        loss = criterion(out, target)
    else:
        criterion.reduction = "none"
        per_sample = criterion(out, target).reshape(len(weight), -1).mean(1)
        criterion.reduction = "mean"
        loss = (per_sample * weight).sum() / weight.sum()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in module.parameters()]


def _fused_step(module, criterion, X, target, weight):
    step = FusedStep.build(module, criterion)
    assert step is not None, f"{criterion} should train on the fused path"
    loss = step(X, target, weight)
    return loss, [p.grad.clone() for p in module.parameters()]


_N, _FEATURES, _OUTPUTS = 64, 5, 3


def _targets(kind, rng):
    """Targets of each kind of loss, and outputs far enough from zero to reach every branch."""
    if kind == "classes":
        return torch.from_numpy(rng.randint(0, _OUTPUTS, _N)).long()
    if kind == "labels":
        return torch.from_numpy(rng.randint(0, 2, (_N, _OUTPUTS))).float()
    if kind == "counts":
        return torch.from_numpy(rng.poisson(2.0, (_N, _OUTPUTS))).float()
    return torch.from_numpy(rng.normal(scale=3.0, size=(_N, _OUTPUTS))).float()


@pytest.mark.parametrize("criterion, kind", [
    (torch.nn.CrossEntropyLoss(), "classes"),
    (torch.nn.CrossEntropyLoss(label_smoothing=0.2), "classes"),
    (ClassificationLoss(), "classes"),
    (ClassificationLoss(label_smoothing=0.1), "classes"),
    (ClassificationLoss(), "labels"),
    (ClassificationLoss(label_smoothing=0.3), "labels"),
    (torch.nn.BCEWithLogitsLoss(), "labels"),
    (torch.nn.MSELoss(), "values"),
    (regression_loss("absolute_error"), "values"),
    (regression_loss("huber", huber_delta=0.7), "values"),
    (regression_loss("huber", huber_delta=50.0), "values"),
    (regression_loss("poisson"), "counts"),
], ids=["cross_entropy", "cross_entropy-smoothing", "classification", "classification-smoothing",
        "multilabel", "multilabel-smoothing", "bce", "squared", "absolute", "huber-0.7",
        "huber-50", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
def test_each_fused_loss_matches_autograd_in_one_step(criterion, kind, weighted):
    rng = np.random.RandomState(0)
    X = torch.from_numpy(rng.normal(size=(_N, _FEATURES))).float()
    target = _targets(kind, rng)
    weight = torch.from_numpy(rng.uniform(0.0, 2.0, _N)).float() if weighted else None
    torch.manual_seed(0)
    module = MLP(_FEATURES, (16, 8), _OUTPUTS, activation="tanh")
    with torch.no_grad():  # outputs of a few units: both sides of Huber's delta
        module[-1].weight.mul_(4)
    expected_loss, expected_grads = _autograd_step(module, criterion, X, target, weight)
    loss, grads = _fused_step(module, criterion, X, target, weight)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-6, atol=1e-7)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-7)


def test_huber_test_reaches_both_branches():
    # The step test above must see residuals on both sides of delta=0.7.
    rng = np.random.RandomState(0)
    X = torch.from_numpy(rng.normal(size=(_N, _FEATURES))).float()
    target = _targets("values", rng)
    torch.manual_seed(0)
    module = MLP(_FEATURES, (16, 8), _OUTPUTS, activation="tanh")
    with torch.no_grad():
        module[-1].weight.mul_(4)
        residual = (module(X) - target).abs()
    assert (residual < 0.7).any() and (residual > 0.7).any()


# --- the optimizer's update as one kernel call ----------------------------------


@pytest.mark.parametrize("name", ["adam", "adamw"])
@pytest.mark.parametrize("width", [4, 8192])
def test_adam_kernel_updates_as_optimizer_step_does(name, width):
    # width 8192: a first layer of 40,960 weights, updated on two threads,
    # the small tensors on one (and the thread count restored).
    from sknets._engine.build import optimizer as optimizer_for
    from sknets._engine.net import AdamKernel

    def run(kernel):
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(5, width), torch.nn.ReLU(),
                                     torch.nn.Linear(width, 3))
        cls, kwargs = optimizer_for({"optimizer": name, "momentum": 0.9})
        groups = [{"params": [module[0].weight], "weight_decay": 0.1},
                  {"params": [module[0].bias, module[2].weight, module[2].bias]}]
        opt = cls(groups, lr=0.01, **kwargs)
        update = AdamKernel.build(opt) if kernel else opt.step
        assert update is not None
        X, y = torch.randn(20, 5), torch.randint(0, 3, (20,))
        for step in range(5):
            opt.param_groups[1]["lr"] = 0.01 / (step + 1)  # as a schedule sets it
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(X), y).backward()
            with ThreadLimit(2):
                update()
                assert torch.get_num_threads() == 2
        return [p.detach().clone() for p in module.parameters()], opt.state_dict()

    (kernel_params, kernel_state), (step_params, step_state) = run(True), run(False)
    for a, b in zip(kernel_params, step_params):
        assert torch.equal(a, b)
    for key, state in step_state["state"].items():
        for field, value in state.items():
            assert torch.equal(kernel_state["state"][key][field], value), field


@pytest.mark.parametrize("interruption", ["none", "load_state_dict", "torch_step"])
def test_adam_kernel_reuses_its_calls_and_stays_exact_when_the_state_changes(interruption):
    # Gradients kept between steps (the fused step's buffers), so the kernel
    # reuses its lists; a schedule's learning rate, a state loaded from a
    # copy and a step of torch's own code in between must all still count.
    from sknets._engine.net import AdamKernel

    def run(kernel):
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(),
                                     torch.nn.Linear(4, 3))
        opt = torch.optim.Adam(module.parameters(), lr=0.01, fused=True)
        update = AdamKernel.build(opt) if kernel else opt.step
        X, y = torch.randn(20, 5), torch.randint(0, 3, (20,))
        for step in range(8):
            if step == 4 and interruption == "load_state_dict":
                opt.load_state_dict(copy.deepcopy(opt.state_dict()))
            opt.param_groups[0]["lr"] = 0.01 / (1 + step // 3)
            opt.zero_grad(set_to_none=False)
            torch.nn.functional.cross_entropy(module(X), y).backward()
            (opt.step if step == 5 and interruption == "torch_step" else update)()
        return [p.detach().clone() for p in module.parameters()], opt.state_dict(), update

    (params, state, kernel), (step_params, step_state, _) = run(True), run(False)
    for a, b in zip(params, step_params):
        assert torch.equal(a, b)
    for key, value in step_state["state"].items():
        for field in value:
            assert torch.equal(state["state"][key][field], value[field]), field
    # The step counts are views of the kernel's one counter.
    steps = [s["step"] for s in kernel.optimizer.state.values()]
    assert all(s._base is kernel.counter for s in steps)
    assert kernel.counter.tolist() == [8.0] * 4


def test_adam_kernel_is_not_used_where_it_would_differ():
    from sknets._engine.net import AdamKernel

    params = [torch.nn.Parameter(torch.zeros(3))]
    assert AdamKernel.build(torch.optim.Adam(params, fused=False)) is None
    assert AdamKernel.build(torch.optim.Adam(params, fused=True, amsgrad=True)) is None
    assert AdamKernel.build(torch.optim.SGD(params, lr=0.1)) is None
    hooked = torch.optim.Adam(params, fused=True)
    hooked.register_step_post_hook(lambda *args: None)
    assert AdamKernel.build(hooked) is None


# --- subnormal floats ---------------------------------------------------------------


def test_training_flushes_denormals_and_leaves_the_setting_as_it_was():
    from skorch.callbacks import Callback

    from sknets._engine.resources import _flushing_denormals

    class Seen(Callback):
        def on_epoch_end(self, net, **kwargs):
            self.flushing_ = _flushing_denormals()

    X = np.random.RandomState(0).rand(40, 3)
    y = np.arange(40) % 2
    seen = Seen()
    assert not _flushing_denormals()
    MLPClassifier((4,), max_epochs=1, n_threads=1, callbacks=[seen]).fit(X, y)
    assert seen.flushing_  # during training
    assert not _flushing_denormals()  # restored
    torch.set_flush_denormal(True)
    try:
        MLPClassifier((4,), max_epochs=1, n_threads=1).fit(X, y)
        assert _flushing_denormals()  # the caller's setting is kept
    finally:
        torch.set_flush_denormal(False)


def test_adam_on_inputs_with_dead_columns_keeps_no_subnormal_moments():
    # Columns that are always 0 give weights whose gradient is 0: Adam's first
    # moment decays by beta1 each step and, unflushed, passes through the
    # subnormal range (below 1.2e-38) on its way to 0.
    from skorch.callbacks import Callback

    class Subnormals(Callback):
        def on_train_begin(self, net, **kwargs):
            self.counts_ = []

        def on_batch_end(self, net, **kwargs):
            state = net.optimizer_.state.values()
            if state:
                moments = torch.cat([s["exp_avg"].ravel() for s in state])
                tiny = torch.finfo(torch.float32).tiny
                self.counts_.append(int(((moments != 0) & (moments.abs() < tiny)).sum()))

    rng = np.random.RandomState(0)
    X = rng.rand(1000, 6).astype(np.float32)
    y = (X[:, 3] > 0.5).astype(int)
    X[:, :3] = 0
    X[:5, :3] = 1  # a few steps of gradient, then 0 for the rest of the epoch
    seen = Subnormals()
    MLPClassifier((8,), batch_size=1, max_epochs=1, lr=1e-2, shuffle=False, n_threads=1,
                  random_state=0, callbacks=[seen]).fit(X, y)
    assert len(seen.counts_) == 1000 and max(seen.counts_) == 0


def test_without_flushing_the_moments_would_turn_subnormal():
    # The premise of the test above, on the optimizer alone.
    weight = torch.nn.Parameter(torch.zeros(8))
    optimizer = torch.optim.Adam([weight], lr=1e-2, fused=True)
    weight.grad = torch.full((8,), 1e-3)
    optimizer.step()
    weight.grad = torch.zeros(8)
    tiny = torch.finfo(torch.float32).tiny
    subnormal = False
    for _ in range(1000):
        optimizer.step()
        moment = optimizer.state[weight]["exp_avg"]
        subnormal |= bool(((moment != 0) & (moment.abs() < tiny)).any())
    assert subnormal


def test_dropout_masks_keep_the_rate_and_scale_and_the_module_draws_them():
    import torch

    from sknets._engine.modules import Dropout, dropout_mask

    mask = dropout_mask((1000, 1000), 0.7, torch.Generator().manual_seed(0))
    assert set(mask.unique().tolist()) == {0.0, float(torch.tensor(1.0) / 0.7)}
    assert abs(float((mask > 0).double().mean()) - 0.7) < 2e-3
    again = dropout_mask((1000, 1000), 0.7, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)
    x = torch.randn(64, 32)
    layer = Dropout(0.3)
    torch.manual_seed(5)
    out = layer(x)
    torch.manual_seed(5)
    assert torch.equal(out, x * dropout_mask(x.shape, 0.7))  # the global generator's draws
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


def test_penalised_networks_train_on_the_fused_step(data):
    X, y, _ = data
    calls = []
    call = FusedStep.__call__
    with mock.patch.object(FusedStep, "__call__",
                           lambda self, *a, **k: calls.append(self.penalty) or call(self, *a, **k)):
        MLPClassifier((8,), l1=1e-3, max_epochs=1, random_state=0).fit(X, y)
        MLPClassifier((8,), optimizer="adamw", l2=1e-2, max_epochs=1, random_state=0).fit(X, y)
    penalties = {(p.l1, p.l2) for p in calls}
    assert penalties == {(1e-3, 0.0), (0.0, 1e-2)}


@pytest.mark.parametrize("n_outputs", [1, 10, 16, 17, 40])
def test_output_layer_and_softmax_in_either_layout(n_outputs):
    from sknets._engine.fused import NARROW_OUTPUT, log_softmax_rows, output_layer

    torch.manual_seed(0)
    h, weight, bias = torch.randn(50, 8), torch.randn(n_outputs, 8), torch.randn(n_outputs)
    out = output_layer(h, weight, bias)
    assert out.shape == (50, n_outputs)
    # Narrow outputs are a view of the transposed product, wide ones plain rows.
    assert out.t().is_contiguous() == (n_outputs <= NARROW_OUTPUT)
    torch.testing.assert_close(out, torch.addmm(bias, h, weight.t()))
    # The transposed layout sums in another order: equal to float32 rounding.
    torch.testing.assert_close(log_softmax_rows(out), torch.log_softmax(out, 1))
    assert torch.equal(log_softmax_rows(out.contiguous()), torch.log_softmax(out, 1))


def test_many_classes_train_through_the_fused_step_as_autograd_does():
    X, y = make_classification(n_samples=400, n_features=20, n_informative=12, n_classes=20,
                               n_clusters_per_class=1, random_state=0)
    fused_history, fused_out, eager_history, eager_out = _fit_both(
        MLPClassifier(hidden_layers=(16,), max_epochs=3, random_state=0), X, y)
    np.testing.assert_allclose(fused_history["train_loss"], eager_history["train_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(fused_out, eager_out, atol=1e-4)


def test_small_product_runs_on_one_thread_and_restores_the_count():
    from sknets._engine.resources import SMALL_PRODUCT_FLOPS, small_product

    with ThreadLimit(2):
        small = small_product(2, torch.get_num_threads, flops=SMALL_PRODUCT_FLOPS - 1)
        large = small_product(2, torch.get_num_threads, flops=SMALL_PRODUCT_FLOPS)
        assert (small, large) == (1, 2)
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"):
            small_product(2, _raise, flops=1)
        assert torch.get_num_threads() == 2  # restored after a failure too


def _raise():
    raise RuntimeError("boom")


def test_a_fused_step_on_two_threads_computes_its_small_products_on_one():
    # 784-100-10 at batch 100: the output layer's products (2e5 operations
    # each) on one thread, the first layer's (1.6e7) on the step's two.
    from sknets._engine import fused

    seen = {}  # name -> the thread counts its calls ran on

    def recording(name, product):
        def run(*args, **kwargs):
            seen.setdefault(name, set()).add(torch.get_num_threads())
            return product(*args, **kwargs)
        return run

    torch.manual_seed(0)
    module = MLP(784, (100,), 10)
    X, target = torch.rand(100, 784), torch.randint(0, 10, (100,))
    step = FusedStep.build(module, torch.nn.CrossEntropyLoss())
    with ThreadLimit(2), \
            mock.patch.object(fused, "output_layer", recording("output", fused.output_layer)), \
            mock.patch.object(fused, "narrow_output_t",
                              recording("output", fused.narrow_output_t)), \
            mock.patch.object(fused, "linear", recording("onednn", fused.linear)), \
            mock.patch.object(torch, "mm", recording("mm", torch.mm)), \
            mock.patch.object(torch, "addmm", recording("addmm", torch.addmm)):
        step(X, target)
        assert torch.get_num_threads() == 2
    # output: the output layer; mm on one thread: the output layer's weight
    # gradient and the hidden layer's input gradient. The first layer's
    # forward product and weight gradient run on two threads, with MKL
    # (addmm, mm) or with oneDNN where it is the faster library.
    assert seen["output"] == {1}
    assert 1 in seen["mm"]
    large = seen.get("onednn", set()) | (seen["addmm"] - {1}) | (seen["mm"] - {1})
    assert large == {2}
    assert ("onednn" in seen) == onednn_products()


def test_onednn_products_fill_their_outputs_and_keep_the_tensors():
    # oneDNN has no out=: a tensor of its own takes the product's memory (no
    # copy), a view gets a copy; either way the same tensor object, holding
    # the product (an optimizer kernel's lists keep reading it).
    from sknets._engine.resources import SMALL_PRODUCT_FLOPS, linear, step_product

    torch.manual_seed(0)
    grad, X = torch.randn(100, 100), torch.rand(100, 784)
    assert 2 * 100 * 100 * 784 >= SMALL_PRODUCT_FLOPS
    expected = linear(grad.t(), X.t())
    own = torch.empty(100, 784)
    memory = own.data_ptr()
    assert step_product(2, grad.t(), X.t(), out=own, onednn=True) is own
    assert torch.equal(own, expected) and own.data_ptr() != memory  # not copied
    wide = torch.zeros(200, 784)
    view = wide[:100]
    assert step_product(2, grad.t(), X.t(), out=view, onednn=True) is view
    assert torch.equal(wide[:100], expected) and not wide[100:].any()
    assert view.data_ptr() == wide.data_ptr()  # copied into the wide tensor
    transposed = torch.empty(784, 100).t()  # other strides than the product's: a copy
    assert step_product(2, grad.t(), X.t(), out=transposed, onednn=True) is transposed
    assert torch.equal(transposed, expected) and transposed.stride() == (1, 100)


def test_fused_steps_with_onednn_keep_the_gradient_tensors_and_match_mkl():
    from sknets._engine import fused

    torch.manual_seed(0)
    module = MLP(784, (100,), 10)
    X, target = torch.rand(100, 784), torch.randint(0, 10, (100,))
    step = FusedStep.build(module, torch.nn.CrossEntropyLoss())
    grads, calls, onednn_linear = {}, [], fused.linear

    def linear(*args):
        calls.append(args)
        return onednn_linear(*args)

    for onednn in (False, True):
        with mock.patch.object(fused, "onednn_products", return_value=onednn), \
                mock.patch.object(fused, "linear", linear):
            step(X, target)
            before = [p.grad for p in module.parameters()]
            step(X, target)
        assert all(map(operator.is_, (p.grad for p in module.parameters()), before))
        grads[onednn] = [p.grad.clone() for p in module.parameters()]
        # The first layer's forward product and weight gradient, in each step.
        assert len(calls) == 4 * onednn
    for mkl, onednn in zip(grads[False], grads[True]):
        torch.testing.assert_close(onednn, mkl, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 7, 100, 1000])
@pytest.mark.parametrize("criterion", [torch.nn.CrossEntropyLoss(), ClassificationLoss()])
def test_the_softmax_loss_on_the_outputs_layout_is_the_generic_loss_bit_for_bit(n, criterion):
    # The softmax cross-entropy of class indices is computed on the narrow
    # outputs' transposed layout; the loss and every gradient are those of
    # the loss computed as the other losses are, bit for bit.
    torch.manual_seed(0)
    module = MLP(20, (16,), 10)
    X, target = torch.randn(n, 20), torch.randint(0, 10, (n,))
    results = []
    for softmax in (False, True):
        step = FusedStep.build(module, criterion)
        assert step.softmax
        step.softmax = softmax
        loss = step(X, target)
        results.append([loss, *(p.grad.clone() for p in module.parameters())])
    for generic, on_layout in zip(*results):
        assert torch.equal(on_layout, generic)


def test_only_the_plain_softmax_loss_takes_the_outputs_layout():
    module = MLP(20, (16,), 10)
    assert not FusedStep.build(module, torch.nn.CrossEntropyLoss(label_smoothing=0.1)).softmax
    assert not FusedStep.build(module, ClassificationLoss(label_smoothing=0.1)).softmax
    assert not FusedStep.build(module, torch.nn.BCEWithLogitsLoss()).softmax


def test_a_steps_constant_tensors_live_as_long_as_the_step():
    # A step replayed from a CUDA graph reads its small constant tensors by
    # address: the step holds them for its whole life, however many batch
    # sizes it meets (a cache that dropped them could free one in use).
    module = MLP(4, (8,), 3)
    step = FusedStep.build(module, torch.nn.CrossEntropyLoss())
    step(torch.rand(5, 4), torch.randint(0, 3, (5,)))
    count = step._constants.count(5, torch.device("cpu"))
    for n in range(1, 40):
        step(torch.rand(n, 4), torch.randint(0, 3, (n,)))
    assert step._constants.count(5, torch.device("cpu")) is count
    assert count.item() == 5.0

"""What users steer training with: gradient clipping, warmup, one-cycle, and a validation scorer.

The scorer tests drive the engine's side of ``scoring``: a test-only
subclass hands ``build_net`` a scorer object through the estimator's
``_epoch_scorer`` hook, as the estimators do for ``scoring``.
"""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sknets import AutoencoderTransformer, MLPClassifier, MLPRegressor
from sknets._engine.build import OPTIMIZERS
from sknets._engine.fused import FusedStep
from sknets._engine.net import TensorData

FAST = dict(hidden_layers=(8,), random_state=0, n_threads=1)
N_BATCHES = 6  # 300 samples of the blobs fixture in batches of 50


class RecordRates(Callback):
    """The learning rate of every parameter group at each training step."""

    def on_train_begin(self, net, **kwargs):
        self.rates = []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.rates.append([group["lr"] for group in net.optimizer_.param_groups])

    def first_group(self):
        return [rates[0] for rates in self.rates]


class RecordSteps(Callback):
    """The Euclidean norm of each training step's change of the parameters."""

    def on_train_begin(self, net, **kwargs):
        self.norms = []

    def _flat(self, net):
        return torch.cat([p.detach().double().ravel() for p in net.module_.parameters()])

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.before = self._flat(net)

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.norms.append(float((self._flat(net) - self.before).norm()))


def _data(estimator_class, blobs):
    X, y = blobs
    if estimator_class is MLPRegressor:
        return X, X[:, 0] - X[:, 1]
    if estimator_class is AutoencoderTransformer:
        return (X - X.mean(0)) / X.std(0), None
    return X, y


def _per_epoch_last(rates, n_batches=N_BATCHES):
    return rates[n_batches - 1::n_batches]


# --- gradient clipping ----------------------------------------------------------------------


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor,
                                             AutoencoderTransformer])
@pytest.mark.parametrize("path", ["fused", "autograd"])
def test_clipping_bounds_every_sgd_step(blobs, estimator_class, path):
    X, y = _data(estimator_class, blobs)
    steps = RecordSteps()
    lr, max_norm = 0.5, 1e-3
    # Batch normalisation takes the autograd path.
    extra = {"batch_norm": True} if path == "autograd" else {}
    est = estimator_class(**FAST, **extra, optimizer="sgd", lr=lr, batch_size=50, max_epochs=2,
                          clip_grad_norm=max_norm, callbacks=[steps]).fit(X, y)
    fused = FusedStep.build(est.module_, est.net_.criterion_, est.net_.penalty) is not None
    if path == "autograd" or estimator_class is AutoencoderTransformer:
        assert not fused
    else:
        assert fused
    assert len(steps.norms) == 2 * N_BATCHES
    # Plain SGD moves the weights by lr * gradient: at most lr * max_norm, and
    # exactly that here, where every gradient is far longer than max_norm.
    np.testing.assert_allclose(steps.norms, lr * max_norm, rtol=1e-3)


def test_clipping_leaves_short_gradients_alone_and_none_never_clips(blobs, monkeypatch):
    X, y = blobs
    unclipped = MLPClassifier(**FAST, max_epochs=3, batch_size=50).fit(X, y)
    huge = MLPClassifier(**FAST, max_epochs=3, batch_size=50, clip_grad_norm=1e9).fit(X, y)
    for a, b in zip(unclipped.module_.parameters(), huge.module_.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    def no_clipping(*args, **kwargs):
        raise AssertionError("clip_grad_norm=None must not clip")

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", no_clipping)
    again = MLPClassifier(**FAST, max_epochs=3, batch_size=50).fit(X, y)
    assert again.history_["train_loss"].tolist() == unclipped.history_["train_loss"].tolist()


# --- warmup ---------------------------------------------------------------------------------


def test_warmup_rises_batch_by_batch_to_the_schedule_then_follows_it(blobs):
    X, y = blobs
    rates = RecordRates()
    clf = MLPClassifier(**FAST, lr=0.1, batch_size=50, max_epochs=4, lr_warmup_epochs=2,
                        lr_schedule="step", lr_step_size=1, lr_gamma=0.5,
                        callbacks=[rates]).fit(X, y)
    n, steps = N_BATCHES, 2 * N_BATCHES
    expected = [0.1 * 0.5 ** t * min(1.0, (t * n + b + 1) / steps)
                for t in range(4) for b in range(n)]
    np.testing.assert_allclose(rates.first_group(), expected, rtol=1e-12)
    # history_'s lr is the rate of each epoch's last batch.
    np.testing.assert_allclose(clf.history_["lr"], _per_epoch_last(expected), rtol=1e-12)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_warmup_works_with_every_optimizer_and_every_parameter_group(blobs, optimizer):
    X, y = blobs
    rates = RecordRates()
    # l2 and adamw put the weight matrices in parameter groups of their own.
    MLPClassifier(**FAST, optimizer=optimizer, lr=0.01, l2=1e-3, batch_size=50, max_epochs=2,
                  lr_warmup_epochs=1, callbacks=[rates]).fit(X, y)
    expected = [0.01 * min(1.0, (k + 1) / N_BATCHES) for k in range(2 * N_BATCHES)]
    assert len(rates.rates[0]) > 1
    for group in zip(*rates.rates):
        np.testing.assert_allclose(group, expected, rtol=1e-12)


def test_plateau_goes_on_from_its_own_rate_during_a_warmup(blobs, fixed_scores):
    X, y = blobs
    rates = RecordRates()
    # A score that never improves: with lr_patience=0 every epoch after the
    # first halves the rate, from the schedule's rate, not the warmup's fraction.
    lr = 0.01
    clf = _scored(MLPClassifier, fixed_scores([0.5] * 4))(
        **FAST, lr=lr, batch_size=50, max_epochs=4, early_stopping=True, patience=None,
        lr_warmup_epochs=3, lr_schedule="plateau", lr_patience=0, lr_gamma=0.5,
        callbacks=[rates]).fit(X, y)
    n = len(rates.rates) // 4  # the validation set leaves 270 samples: 6 batches
    expected = [lr * 0.5 ** max(0, t - 1) * min(1.0, (t * n + b + 1) / (3 * n))
                for t in range(4) for b in range(n)]
    np.testing.assert_allclose(rates.first_group(), expected, rtol=1e-12)
    np.testing.assert_allclose(clf.history_["lr"], _per_epoch_last(expected, n), rtol=1e-12)


def test_partial_fit_warms_up_over_its_first_calls(blobs):
    X, y = blobs
    clf = MLPClassifier(**FAST, lr=0.1, batch_size=50, lr_warmup_epochs=2)
    for _ in range(3):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    np.testing.assert_allclose(clf.history_["lr"], [0.05, 0.1, 0.1], rtol=1e-12)


def test_autoencoder_warms_up(blobs):
    X, _ = _data(AutoencoderTransformer, blobs)
    ae = AutoencoderTransformer(**FAST, code_size=2, lr=0.1, batch_size=100, max_epochs=2,
                                lr_warmup_epochs=2).fit(X)
    np.testing.assert_allclose(ae.history_["lr"], [0.05, 0.1], rtol=1e-12)


# --- one-cycle ------------------------------------------------------------------------------


def _torch_one_cycle(max_lr, total_steps):
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=max_lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr,
                                                   total_steps=total_steps,
                                                   cycle_momentum=False)
    rates = []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_one_cycle_rates_are_torchs_one_cycle_lr(blobs, optimizer):
    X, y = blobs
    rates = RecordRates()
    clf = MLPClassifier(**FAST, optimizer=optimizer, lr=0.2, batch_size=50, max_epochs=5,
                        lr_schedule="one_cycle", callbacks=[rates]).fit(X, y)
    expected = _torch_one_cycle(0.2, 5 * N_BATCHES)
    np.testing.assert_allclose(rates.first_group(), expected, rtol=1e-12)
    np.testing.assert_allclose(clf.history_["lr"], _per_epoch_last(expected), rtol=1e-12)
    # The momentum is the user's: one_cycle schedules the learning rate only.
    group = clf.net_.optimizer_.param_groups[0]
    assert group.get("momentum", 0.9) == 0.9 and group.get("betas", (0.9,))[0] == 0.9


def test_early_stopping_cuts_the_cycle_short(blobs):
    rng = np.random.RandomState(0)
    X, y = rng.rand(300, 5), rng.randint(0, 2, 300)  # noise: the validation loss stalls
    rates = RecordRates()
    clf = MLPClassifier(**FAST, lr=0.05, batch_size=27, max_epochs=40, early_stopping=True,
                        patience=2, lr_schedule="one_cycle", callbacks=[rates]).fit(X, y)
    n = 10  # 270 training samples
    assert clf.n_epochs_ < 40
    assert len(rates.rates) == clf.n_epochs_ * n
    np.testing.assert_allclose(rates.first_group(),
                               _torch_one_cycle(0.05, 40 * n)[:len(rates.rates)], rtol=1e-12)


def test_a_continued_fit_runs_the_next_cycle(blobs):
    X, y = blobs
    rates = RecordRates()
    clf = MLPClassifier(**FAST, lr=0.1, batch_size=50, max_epochs=3, lr_schedule="one_cycle",
                        warm_start=True, callbacks=[rates]).fit(X, y)
    first = rates.first_group()
    clf.fit(X, y)  # epochs 3 to 5: a new cycle of max_epochs epochs
    assert rates.first_group() == first
    # partial_fit takes one epoch of the cycle per call.
    stepwise = MLPClassifier(**FAST, lr=0.1, batch_size=50, max_epochs=3,
                             lr_schedule="one_cycle")
    for _ in range(4):
        stepwise.partial_fit(X, y, classes=[0, 1, 2])
    cycle = _per_epoch_last(_torch_one_cycle(0.1, 3 * N_BATCHES))
    np.testing.assert_allclose(stepwise.history_["lr"], cycle + cycle[:1], rtol=1e-12)


def test_one_cycle_with_warmup_multiplies_the_two(blobs):
    X, y = blobs
    rates = RecordRates()
    MLPClassifier(**FAST, lr=0.1, batch_size=50, max_epochs=2, lr_schedule="one_cycle",
                  lr_warmup_epochs=1, callbacks=[rates]).fit(X, y)
    cycle = _torch_one_cycle(0.1, 2 * N_BATCHES)
    warm = [min(1.0, (k + 1) / N_BATCHES) for k in range(2 * N_BATCHES)]
    np.testing.assert_allclose(rates.first_group(), np.multiply(cycle, warm), rtol=1e-12)


# --- the validation scorer, engine side -----------------------------------------------------




class Accuracy:
    """The share of validation samples whose largest output is their class."""

    name = "acc"

    def __init__(self):
        self.shapes = []

    def __call__(self, outputs, y_valid):
        self.shapes.append((tuple(outputs.shape), tuple(y_valid.shape)))
        return float((outputs.argmax(1) == y_valid).double().mean())


class NegativeMSE:
    name = "neg_mse"

    def __call__(self, outputs, y_valid):
        return -float(((outputs - y_valid.reshape(outputs.shape)) ** 2).mean())


def _scored(estimator_class, scorer):
    """A subclass of ``estimator_class`` that hands ``scorer`` to the engine."""

    def _epoch_scorer(self, targets, has_valid):
        return scorer if has_valid else None

    return type(f"Scored{estimator_class.__name__}", (estimator_class,),
                {"_epoch_scorer": _epoch_scorer})


class Snapshots(Callback):
    def on_train_begin(self, net, **kwargs):
        self.weights = []

    def on_epoch_end(self, net, **kwargs):
        self.weights.append({k: v.clone() for k, v in net.module_.state_dict().items()})


def test_the_best_epoch_is_the_highest_score_and_its_weights_are_restored(blobs, fixed_scores):
    X, y = blobs
    snapshots = Snapshots()
    values = [0.1, 0.5, 0.3, 0.9, 0.2, 0.4]
    clf = _scored(MLPClassifier, fixed_scores(values))(
        **FAST, max_epochs=6, early_stopping=True, patience=None, callbacks=[snapshots]
    ).fit(X, y)
    history = clf.net_.history
    assert history[:, "valid_score"] == values
    assert history[:, "valid_score_best"] == [True, True, False, True, False, False]
    assert clf.best_epoch_ == 4
    for key, value in clf.module_.state_dict().items():
        torch.testing.assert_close(value, snapshots.weights[3][key], rtol=0, atol=0)


def test_the_scorer_sees_every_validation_output_and_target(blobs, monkeypatch):
    X, y = blobs
    monkeypatch.setattr(TensorData, "eval_batch_size", 7)  # several validation batches
    scorer = Accuracy()
    clf = _scored(MLPClassifier, scorer)(**FAST, max_epochs=3, lr=1e-2).fit(
        X[:200], y[:200], validation_data=(X[200:], y[200:]))
    assert scorer.shapes == [((100, 3), (100,))] * 3
    history = clf.net_.history
    np.testing.assert_allclose(history[:, "valid_acc"], history[:, "valid_accuracy"], atol=1e-9)


@pytest.mark.parametrize("estimator_class", [MLPRegressor, AutoencoderTransformer])
def test_regressors_and_autoencoders_are_scored_too(blobs, estimator_class):
    X, y = _data(estimator_class, blobs)
    est = _scored(estimator_class, NegativeMSE())(**FAST, max_epochs=3, early_stopping=True,
                                                  patience=None).fit(X, y)
    history = est.net_.history
    # Both losses are the mean squared error: the score is minus the validation loss.
    np.testing.assert_allclose(history[:, "valid_neg_mse"], -np.array(history[:, "valid_loss"]),
                               rtol=1e-5)


def test_early_stopping_stops_when_the_score_stalls(blobs, fixed_scores):
    X, y = blobs
    values = [0.1, 0.5, 0.50005, 0.4, 0.5, 0.9]
    clf = _scored(MLPClassifier, fixed_scores(values))(
        **FAST, max_epochs=6, early_stopping=True, patience=3, tol=1e-4).fit(X, y)
    # Epochs 3 to 5 do not beat 0.5 by more than tol.
    assert clf.n_epochs_ == 5 and clf.best_epoch_ == 3


def test_plateau_lowers_the_rate_when_the_score_stalls(blobs, fixed_scores):
    X, y = blobs
    rising = _scored(MLPClassifier, fixed_scores([0.1, 0.2, 0.3, 0.4]))(
        **FAST, lr=0.01, max_epochs=4, early_stopping=True, patience=None,
        lr_schedule="plateau", lr_patience=0, lr_gamma=0.5).fit(X, y)
    assert rising.history_["lr"].tolist() == [0.01] * 4
    flat = _scored(MLPClassifier, fixed_scores([0.5] * 4))(
        **FAST, lr=0.01, max_epochs=4, early_stopping=True, patience=None,
        lr_schedule="plateau", lr_patience=0, lr_gamma=0.5).fit(X, y)
    np.testing.assert_allclose(flat.history_["lr"], [0.01, 0.01, 0.005, 0.0025])


def test_scoring_does_not_change_training_and_none_adds_nothing(blobs):
    X, y = blobs
    settings = dict(**FAST, max_epochs=4, early_stopping=True, patience=None)
    plain = MLPClassifier(**settings).fit(X, y)
    unscored = _scored(MLPClassifier, None)(**settings).fit(X, y)
    scored = _scored(MLPClassifier, Accuracy())(**settings).fit(X, y)
    assert unscored.net_.scorer is None
    assert set(unscored.net_.history[-1]) == set(plain.net_.history[-1])
    assert not {"valid_acc", "valid_acc_best"} & set(plain.net_.history[-1])
    for name in ("train_loss", "valid_loss", "valid_accuracy"):
        assert plain.net_.history[:, name] == unscored.net_.history[:, name]
        assert plain.net_.history[:, name] == scored.net_.history[:, name]
    assert plain.best_epoch_ == unscored.best_epoch_
    for a, b in zip(plain.module_.parameters(), unscored.module_.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_score_without_a_validation_set_is_not_computed(blobs):
    X, y = blobs
    scorer = Accuracy()
    clf = _scored(MLPClassifier, scorer)(**FAST, max_epochs=2).fit(X, y)
    assert scorer.shapes == [] and "valid_acc" not in clf.net_.history[-1]


def test_outputs_that_are_not_finite_score_nan_without_calling_the_scorer(blobs):
    X, y = blobs
    scorer = Accuracy()
    clf = _scored(MLPClassifier, scorer)(**FAST, max_epochs=1, early_stopping=True).fit(X, y)
    net = clf.net_
    net.scorer, net._score_best = scorer, {}
    calls = len(scorer.shapes)
    net._record_score("valid", [torch.full((4, 3), np.nan)], [torch.zeros(4, dtype=torch.int64)])
    assert np.isnan(net.history[-1, "valid_acc"]) and len(scorer.shapes) == calls

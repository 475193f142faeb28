"""Behaviour of MLPClassifier and MLPRegressor on small synthetic data."""

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknets import MLPClassifier, MLPRegressor
from sknets._engine.schedules import EpochSchedule

FAST = dict(hidden_layers=(16,), lr=1e-2, max_epochs=15, random_state=0)


@pytest.fixture
def classification():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5,
                               n_classes=3, random_state=0)
    return X, y


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog", "emu"]),
    np.array([3, 10, 42]),
    np.array([-1, 0, 7]),
])
def test_classifier_keeps_user_labels(classification, labels):
    X, y = classification
    y_user = labels[y]
    clf = MLPClassifier(**FAST).fit(X, y_user)
    assert set(clf.predict(X)) <= set(labels)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    assert clf.score(X, y_user) > 0.8


def test_bool_labels(classification):
    X, y = classification
    clf = MLPClassifier(**FAST).fit(X, y == 0)
    assert clf.predict(X).dtype == bool
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_dataframe_input_sets_feature_names(classification):
    X, y = classification
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = MLPClassifier(**FAST).fit(frame, pd.Series(y))
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    assert clf.n_features_in_ == 8
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


def test_callers_arrays_are_not_modified(classification):
    X, y = classification
    X_before, y_before = X.copy(), y.copy()
    X32 = X.astype(np.float32)
    X32_before = X32.copy()
    MLPClassifier(**FAST).fit(X, y)
    MLPClassifier(**FAST).fit(X32, y)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    np.testing.assert_array_equal(X32, X32_before)


def test_int_inputs_are_accepted(classification):
    X, y = classification
    X_int = (X * 10).astype(np.int64)
    assert MLPClassifier(**FAST).fit(X_int, y).score(X_int, y) > 0.7


def test_same_random_state_same_history_and_predictions(classification):
    X, y = classification
    params = dict(FAST, dropout=0.2, early_stopping=True)
    a = MLPClassifier(**params).fit(X, y)
    b = MLPClassifier(**params).fit(X, y)
    pd.testing.assert_frame_equal(a.history_.drop(columns="seconds"),
                                  b.history_.drop(columns="seconds"))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = MLPClassifier(**dict(params, random_state=1)).fit(X, y)
    assert not np.allclose(a.history_["train_loss"], c.history_["train_loss"])


def test_fit_leaves_global_torch_rng_alone(classification):
    X, y = classification
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MLPClassifier(**FAST).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_initial_weights_follow_torch_manual_seed(classification):
    # A CPU fit seeds torch's CPU generator alone (not torch.manual_seed,
    # which also queues seeding every accelerator): the weights must still
    # be those drawn after torch.manual_seed with the fit's seed.
    from sklearn.utils import check_random_state

    X, y = classification
    clf = MLPClassifier(**dict(FAST, random_state=7, device="cpu")).initialize(X, y)
    seed = int(check_random_state(7).randint(2**31 - 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        expected = clf._new_module(X.shape[1], clf._fitted.targets)
    for got, want in zip(clf.module_.state_dict().values(), expected.state_dict().values()):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_history_columns_and_epochs(classification):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, patience=None)).fit(X, y, validation_data=(X[:50], y[:50]))
    history = clf.history_
    assert list(history.columns) == ["epoch", "train_loss", "valid_loss", "valid_accuracy",
                                     "lr", "seconds"]
    assert history["epoch"].tolist() == list(range(1, 16))
    assert clf.n_epochs_ == 15
    # The recorded validation accuracy is the accuracy of that epoch's model:
    # for the restored best epoch it matches a fresh evaluation.
    best = history.set_index("epoch").loc[clf.best_epoch_]
    assert best["valid_accuracy"] == pytest.approx(clf.score(X[:50], y[:50]))
    assert (history["seconds"] > 0).all()


def test_early_stopping_restores_the_best_epoch():
    # Noisy labels and a wide net with a large learning rate: the validation
    # loss reaches its minimum early and then rises while training goes on.
    X, y = make_classification(n_samples=400, n_features=20, n_informative=4,
                               flip_y=0.3, random_state=0)
    X_val, y_val = X[300:], y[300:]
    clf = MLPClassifier(hidden_layers=(256,), lr=1e-2, max_epochs=60, patience=15,
                        early_stopping=True, random_state=0)
    clf.fit(X[:300], y[:300], validation_data=(X_val, y_val))
    history = clf.history_.set_index("epoch")
    best = history["valid_loss"].idxmin()
    assert clf.best_epoch_ == best
    assert clf.n_epochs_ > best, "the test needs validation loss to worsen after the best epoch"
    assert history["valid_loss"].iloc[-1] > history["valid_loss"].min()
    # The model returned is the best one, not the last one.
    proba = clf.predict_proba(X_val)
    loss = -np.mean(np.log(proba[np.arange(len(y_val)), np.searchsorted(clf.classes_, y_val)]))
    assert loss == pytest.approx(history.loc[best, "valid_loss"], rel=1e-4)
    assert loss < history["valid_loss"].iloc[-1]


def test_early_stopping_stops_and_holds_out_a_stratified_split(classification):
    X, y = classification
    clf = MLPClassifier(hidden_layers=(64,), lr=5e-2, max_epochs=200, patience=3,
                        early_stopping=True, validation_fraction=0.2, random_state=0)
    clf.fit(X, y)
    assert clf.n_epochs_ < 200
    assert clf.history_["valid_loss"].notna().all()


def test_tol_stops_without_validation(classification):
    X, y = classification
    clf = MLPClassifier(hidden_layers=(64,), lr=1e-2, max_epochs=500, patience=5, tol=1e-2,
                        random_state=0).fit(X, y)
    assert clf.n_epochs_ < 500
    losses = clf.history_["train_loss"].to_numpy()
    best_before = losses[:-5].min()
    assert (losses[-5:] > best_before - 1e-2).all()
    full = MLPClassifier(hidden_layers=(64,), max_epochs=30, patience=None,
                         random_state=0).fit(X, y)
    assert full.n_epochs_ == 30


@pytest.mark.parametrize("schedule, extra", [
    ("constant", {}),
    ("linear", {"lr_decay": 0.004, "lr_min": 0.002}),
    ("exponential", {"lr_decay": 0.3}),
    ("step", {"lr_step_size": 3, "lr_gamma": 0.5}),
    ("cosine", {"lr_min": 1e-4}),
])
def test_lr_schedule_follows_its_formula(classification, schedule, extra):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, lr=0.02, patience=None, lr_schedule=schedule, **extra))
    clf.fit(X, y)
    formula = EpochSchedule(schedule, 0.02, max_epochs=15, **extra)
    expected = [formula.rate(t) for t in range(15)]
    np.testing.assert_allclose(clf.history_["lr"], expected, rtol=1e-6)


def test_plateau_schedule_lowers_the_rate(classification):
    X, y = classification
    clf = MLPClassifier(hidden_layers=(32,), lr=0.5, max_epochs=40, patience=None,
                        lr_schedule="plateau", lr_patience=1, lr_gamma=0.5, random_state=0)
    clf.fit(X, y)
    assert clf.history_["lr"].iloc[-1] < 0.5


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                       "adam", "adamw"])
def test_every_optimizer_learns(classification, optimizer):
    X, y = classification
    lr = 0.1 if optimizer in ("sgd", "momentum", "nesterov", "adagrad") else 1e-2
    clf = MLPClassifier(hidden_layers=(32,), optimizer=optimizer, lr=lr, max_epochs=30,
                        random_state=0).fit(StandardScaler().fit_transform(X), y)
    losses = clf.history_["train_loss"]
    assert losses.iloc[-1] < 0.7 * losses.iloc[0]


def test_optimizer_names_map_to_torch(classification):
    X, y = classification
    expected = {"sgd": (torch.optim.SGD, 0), "momentum": (torch.optim.SGD, 0.8),
                "nesterov": (torch.optim.SGD, 0.8), "rmsprop": (torch.optim.RMSprop, 0)}
    for name, (cls, momentum) in expected.items():
        clf = MLPClassifier(**dict(FAST, max_epochs=1, optimizer=name, momentum=0.8)).fit(X, y)
        group = clf.net_.optimizer_.param_groups[0]
        assert isinstance(clf.net_.optimizer_, cls)
        assert group["momentum"] == momentum
        assert group.get("nesterov", False) == (name == "nesterov")


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_penalties_shrink_weights_but_not_biases(classification, penalty):
    X, y = classification
    plain = MLPClassifier(**FAST).fit(X, y)
    shrunk = MLPClassifier(**dict(FAST, **{penalty: 0.05})).fit(X, y)

    def norm(clf):
        return sum(float(m.weight.detach().abs().sum()) for m in clf.module_ if hasattr(m, "weight"))

    assert norm(shrunk) < 0.8 * norm(plain)


def test_l2_is_weight_decay_on_weights_only(classification):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, l2=0.3, max_epochs=1)).fit(X, y)
    decays = {id(p): g["weight_decay"] for g in clf.net_.optimizer_.param_groups
              for p in g["params"]}
    assert decays[id(clf.module_[0].weight)] == 0.3
    assert decays[id(clf.module_[0].bias)] == 0.0


def test_dropout_and_batch_norm_layers(classification):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, hidden_layers=(16, 8), dropout=0.3, batch_norm=True))
    clf.fit(X, y)
    names = [type(m).__name__ for m in clf.module_]
    assert names == ["Linear", "BatchNorm1d", "ReLU", "Dropout",
                     "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    # Predictions are deterministic (eval mode: no dropout, running statistics).
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "leaky_relu", "elu",
                                        "gelu", "identity"])
def test_activations(classification, activation):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, activation=activation)).fit(X, y)
    assert type(clf.module_[1]).__name__.lower().replace("_", "") in (
        activation.replace("_", ""), "identity")


def test_no_hidden_layer_is_a_linear_model(classification):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, hidden_layers=())).fit(X, y)
    assert [type(m).__name__ for m in clf.module_] == ["Linear"]


def test_class_weight_balanced_favours_the_rare_class():
    X, y = make_classification(n_samples=600, n_features=6, weights=[0.9, 0.1],
                               class_sep=0.5, random_state=0)
    plain = MLPClassifier(**FAST).fit(X, y)
    balanced = MLPClassifier(**dict(FAST, class_weight="balanced")).fit(X, y)
    weighted = MLPClassifier(**dict(FAST, class_weight={1: 9.0})).fit(X, y)
    assert (balanced.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    assert (weighted.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    with pytest.raises(ValueError, match="class_weight names labels not in y"):
        MLPClassifier(**dict(FAST, class_weight={7: 2.0})).fit(X, y)


def test_sample_weight_zero_ignores_samples(classification):
    X, y = classification
    weight = np.where(y == 2, 0.0, 1.0)
    clf = MLPClassifier(**dict(FAST, max_epochs=30)).fit(X, y, sample_weight=weight)
    assert (clf.predict(X) == 2).mean() < 0.1
    constant = MLPClassifier(**FAST).fit(X, y, sample_weight=np.full(len(y), 3.0))
    np.testing.assert_array_equal(constant.predict_proba(X),
                                  MLPClassifier(**FAST).fit(X, y).predict_proba(X))


def test_partial_fit_and_unseen_labels(classification):
    X, y = classification
    clf = MLPClassifier(**FAST)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    clf.partial_fit(X, y)
    assert clf.n_epochs_ == 2
    assert list(clf.classes_) == [0, 1, 2]
    with pytest.raises(ValueError, match="labels not seen at fit: \\[5\\]"):
        clf.partial_fit(X[:3], [0, 1, 5])


def test_warm_start_continues_training(classification):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, max_epochs=5, warm_start=True, patience=None))
    clf.fit(X, y)
    first = clf.module_[0].weight.detach().clone()
    clf.fit(X, y)
    assert clf.n_epochs_ == 10
    assert clf.history_["epoch"].tolist() == list(range(1, 11))
    assert not torch.equal(first, clf.module_[0].weight)
    cold = MLPClassifier(**dict(FAST, max_epochs=5, patience=None)).fit(X, y)
    cold.fit(X, y)
    assert cold.n_epochs_ == 5


def test_initialize_gives_the_weights_fit_starts_from(classification):
    X, y = classification
    init = MLPClassifier(**FAST).initialize(X, y)
    assert init.n_epochs_ == 0
    fitted = MLPClassifier(**dict(FAST, max_epochs=1, lr=1e-12)).fit(X, y)
    torch.testing.assert_close(init.module_[0].weight, fitted.module_[0].weight)


def test_multi_output_regression():
    X, y = make_regression(n_samples=300, n_features=5, n_targets=3, noise=1.0,
                           random_state=0)
    y = y / y.std(0)
    reg = MLPRegressor(hidden_layers=(32,), lr=1e-2, max_epochs=60, random_state=0)
    reg.fit(X, y, validation_data=(X[:60], y[:60]))
    assert reg.predict(X).shape == (300, 3)
    assert reg.score(X, y) > 0.9
    best = reg.history_.set_index("epoch").loc[reg.best_epoch_]
    assert best["valid_r2"] == pytest.approx(reg.score(X[:60], y[:60]), abs=1e-4)
    one = MLPRegressor(**FAST).fit(X, y[:, 0])
    assert one.predict(X).shape == (300,)


# --- errors -------------------------------------------------------------------------


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.zeros((2, 3)))


@pytest.mark.parametrize("X, message", [
    (np.array([[0.0, np.nan], [1.0, 2.0], [2.0, 1.0]]), "NaN"),
    (np.array([[0.0, np.inf], [1.0, 2.0], [2.0, 1.0]]), "infinity"),
    (np.zeros((3, 2, 2)), "dim 3"),
    (np.zeros((0, 2)), "0 sample"),
])
def test_bad_X_is_refused_before_training(X, message):
    # missing_values="error": by default a NaN is a missing value, imputed.
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**FAST, missing_values="error").fit(X, [0, 1, 0][:len(X)])


def test_wrong_feature_count_at_predict(classification):
    X, y = classification
    clf = MLPClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 8"):
        clf.predict(X[:, :3])


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier(**FAST).fit(np.zeros((5, 2)), np.ones(5))


@pytest.mark.parametrize("param, value, message", [
    ("activation", "swish", "'activation' parameter of MLPClassifier must be one of"),
    ("optimizer", "lbfgs", "'optimizer' parameter"),
    ("dropout", 1.0, "'dropout' parameter"),
    ("hidden_layers", (10, 0), "tuple of positive ints"),
    ("hidden_layers", "100", "tuple of positive ints"),
    ("lr_schedule", "cyclic", "'lr_schedule' parameter"),
    ("batch_size", 0, "'batch_size' parameter"),
])
def test_unknown_parameter_values(classification, param, value, message):
    X, y = classification
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**{param: value}).fit(X, y)


def test_cuda_without_gpu_is_a_clear_error(classification):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: this test covers machines without one")
    X, y = classification
    with pytest.raises(ValueError, match="no CUDA device"):
        MLPClassifier(**dict(FAST, device="cuda")).fit(X, y)


# --- scikit-learn tools -----------------------------------------------------------


def test_clone_grid_search_pipeline_cross_validate(classification):
    X, y = classification
    assert clone(MLPClassifier(dropout=0.2)).get_params()["dropout"] == 0.2
    search = GridSearchCV(MLPClassifier(**FAST), {"hidden_layers": [(4,), (32, 16)]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["hidden_layers"] in [(4,), (32, 16)]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(**FAST))
    scores = cross_validate(pipe, X, y, cv=3)
    assert scores["test_score"].mean() > 0.7


@pytest.mark.parametrize("dump, load", [
    (lambda est, f: pickle.dump(est, f), pickle.load),
    (joblib.dump, joblib.load),
])
def test_pickle_and_joblib_round_trips(classification, dump, load):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, dropout=0.1, batch_norm=True)).fit(X, y)
    buffer = io.BytesIO()
    dump(clf, buffer)
    buffer.seek(0)
    restored = load(buffer)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    pd.testing.assert_frame_equal(restored.history_, clf.history_)


def test_warm_start_best_epoch_names_the_restored_weights(classification):
    X, y = classification
    X_val, y_val = X[:60], y[:60]
    clf = MLPClassifier(hidden_layers=(64,), lr=5e-2, max_epochs=8, patience=None,
                        warm_start=True, random_state=0)
    clf.fit(X[60:], y[60:], validation_data=(X_val, y_val))
    clf.fit(X[60:], y[60:], validation_data=(X_val, y_val))
    history = clf.history_.set_index("epoch")
    assert clf.best_epoch_ > 8
    assert history.loc[clf.best_epoch_, "valid_loss"] == history.loc[9:, "valid_loss"].min()
    proba = clf.predict_proba(X_val)
    loss = -np.mean(np.log(proba[np.arange(len(y_val)), y_val]))
    assert loss == pytest.approx(history.loc[clf.best_epoch_, "valid_loss"], rel=1e-4)


def test_warm_start_may_drop_or_add_the_validation_set(classification):
    X, y = classification
    clf = MLPClassifier(**dict(FAST, max_epochs=3, warm_start=True, patience=None))
    clf.fit(X, y, validation_data=(X[:50], y[:50]))
    clf.fit(X, y)
    assert clf.n_epochs_ == 6
    assert clf.history_["valid_loss"].iloc[3:].isna().all()
    clf.fit(X, y, validation_data=(X[:50], y[:50]))
    assert clf.history_["valid_loss"].iloc[6:].notna().all()

"""Behaviour of AutoencoderTransformer: synthetic data, then real MNIST."""

import pickle
import time

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from sknets import AutoencoderTransformer, MLPClassifier
from sknets._engine.net import TensorNet

# One intra-op thread: tiny networks on a shared machine train 20-50x
# faster than with threads that wait for each other.
FAST = dict(hidden_layers=(16,), code_size=2, lr=1e-2, max_epochs=30, random_state=0,
            n_threads=1)


@pytest.fixture
def curved():
    """400 samples in (0, 1)^12 on a curved 2-D surface: sigmoid of a rank-2 map."""
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(400, 2))
    weights = 2 * rng.normal(size=(2, 12))
    return (1 / (1 + np.exp(-latent @ weights))).astype(np.float32)


def _widths(layers):
    return [m.out_features for m in layers if isinstance(m, torch.nn.Linear)]


def _mse(a, b):
    return float(((np.asarray(a, dtype=np.float64) - b) ** 2).mean())


# --- what it computes ------------------------------------------------------------


def test_sigmoid_autoencoder_beats_pca_on_curved_data(curved):
    pca = PCA(2).fit(curved)
    pca_mse = _mse(pca.inverse_transform(pca.transform(curved)), curved)
    ae = AutoencoderTransformer(**FAST, output_activation="sigmoid").fit(curved)
    assert -ae.score(curved) < pca_mse
    untrained = AutoencoderTransformer(**FAST, output_activation="sigmoid").initialize(curved)
    assert -ae.score(curved) < 0.2 * -untrained.score(curved)


def test_transform_inverse_transform_and_errors_agree(curved):
    ae = AutoencoderTransformer(**FAST).fit(curved)
    codes = ae.transform(curved)
    assert codes.shape == (400, 2)
    reconstruction = ae.inverse_transform(codes)
    assert reconstruction.shape == curved.shape
    errors = ae.reconstruction_error(curved)
    assert errors.shape == (400,) and errors.dtype == np.float64
    np.testing.assert_allclose(errors, ((reconstruction - curved) ** 2).mean(axis=1),
                               rtol=1e-5)
    assert ae.score(curved) == pytest.approx(-errors.mean())
    np.testing.assert_allclose(ae.fit_transform(curved), codes)


@pytest.mark.parametrize("dtype, expected", [
    (np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64),
])
def test_float32_is_kept_other_inputs_give_float64(curved, dtype, expected):
    ae = AutoencoderTransformer(**FAST).fit(curved)
    X = (curved * 10).astype(dtype) if dtype == np.int64 else curved.astype(dtype)
    assert ae.transform(X).dtype == expected
    assert ae.inverse_transform(ae.transform(X)).dtype == expected


def test_architecture_mirrors_hidden_layers(curved):
    ae = AutoencoderTransformer(**dict(FAST, hidden_layers=(10, 6), code_size=3)).fit(curved)
    assert _widths(ae.encoder_) == [10, 6, 3]
    assert _widths(ae.decoder_) == [6, 10, 12]
    assert ae.encoder_ is ae.module_.encoder and ae.decoder_ is ae.module_.decoder
    # The code layer is linear by default; the output follows output_activation.
    assert isinstance(ae.encoder_[-1], torch.nn.Identity)
    assert isinstance(ae.decoder_[-1], torch.nn.Linear)
    relu = AutoencoderTransformer(**dict(FAST, code_activation="relu",
                                         output_activation="sigmoid")).fit(curved)
    assert isinstance(relu.encoder_[-1], torch.nn.ReLU)
    assert (relu.transform(curved) >= 0).all()
    assert isinstance(relu.decoder_[-1], torch.nn.Sigmoid)


def test_dropout_and_batch_norm_reach_the_code_layer(curved):
    ae = AutoencoderTransformer(**dict(FAST, dropout=0.2, batch_norm=True)).fit(curved)
    kinds = [type(m).__name__ for m in ae.encoder_]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout",
                     "Linear", "BatchNorm1d", "Identity", "Dropout"]
    # Eval mode: transform is deterministic despite dropout.
    np.testing.assert_array_equal(ae.transform(curved), ae.transform(curved))


def test_bce_trains_on_logits_and_reports_probabilities(curved):
    ae = AutoencoderTransformer(**FAST, output_activation="sigmoid", loss="bce").fit(curved)
    assert isinstance(ae.net_.criterion_, torch.nn.BCEWithLogitsLoss)
    X = torch.from_numpy(curved)
    with torch.no_grad():
        logits = ae.module_.eval()(X)
    reconstruction = ae.inverse_transform(ae.transform(curved))
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), reconstruction, atol=1e-6)
    assert logits.min() < 0 < logits.max()
    # The training loss is the cross-entropy, not the squared error.
    bce = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), X).item()
    assert bce > 10 * -ae.score(curved)
    assert np.isfinite(ae.history_["train_loss"]).all()


def test_bce_on_saturated_pixels_stays_finite():
    # Exact 0s and 1s with a learning rate that drives logits far out: the
    # logits path keeps the loss finite where log(sigmoid) would underflow.
    X = (np.random.RandomState(0).rand(200, 20) > 0.5).astype(np.float32)
    ae = AutoencoderTransformer(**dict(FAST, lr=0.5, code_size=20), output_activation="sigmoid",
                                loss="bce").fit(X)
    assert np.isfinite(ae.history_["train_loss"]).all()


def test_bce_settings_are_checked(curved):
    with pytest.raises(ValueError, match="output_activation='sigmoid'"):
        AutoencoderTransformer(**FAST, loss="bce").fit(curved)
    with pytest.raises(ValueError, match=r"inputs in \[0, 1\].*MinMaxScaler"):
        AutoencoderTransformer(**FAST, loss="bce", output_activation="sigmoid").fit(curved - 0.5)


# --- denoising -------------------------------------------------------------------------


@pytest.mark.parametrize("noise_type, level", [("gaussian", 0.3), ("masking", 0.3)])
def test_noise_corrupts_training_inputs_only(curved, noise_type, level):
    ae = AutoencoderTransformer(**FAST, noise=level, noise_type=noise_type).fit(curved)
    noise = ae.module_.noise
    X = torch.from_numpy(curved)
    noise.train()
    torch.manual_seed(0)  # the noise draws from torch's global generator
    corrupted = noise(X)
    if noise_type == "gaussian":
        assert (corrupted - X).std().item() == pytest.approx(level, rel=0.05)
    else:
        assert (corrupted == 0).float().mean().item() == pytest.approx(level, abs=0.02)
        kept = corrupted != 0
        torch.testing.assert_close(corrupted[kept], X[kept])
    noise.eval()
    assert torch.equal(noise(X), X)
    # transform and score run in eval mode: no noise, repeatable.
    np.testing.assert_array_equal(ae.transform(curved), ae.transform(curved))
    plain = AutoencoderTransformer(**FAST).fit(curved)
    assert not np.allclose(plain.history_["train_loss"], ae.history_["train_loss"])


def test_noise_is_reproducible_and_seeded(curved):
    params = dict(FAST, noise=0.2, noise_type="masking", max_epochs=5)
    a = AutoencoderTransformer(**params).fit(curved)
    b = AutoencoderTransformer(**params).fit(curved)
    pd.testing.assert_frame_equal(a.history_.drop(columns="seconds"),
                                  b.history_.drop(columns="seconds"))
    np.testing.assert_array_equal(a.transform(curved), b.transform(curved))


def test_masking_everything_is_refused(curved):
    with pytest.raises(ValueError, match="noise is a probability"):
        AutoencoderTransformer(**FAST, noise=1.0, noise_type="masking").fit(curved)


# --- training machinery shared with the supervised networks --------------------------


def test_validation_data_as_array_or_tuple(curved):
    train, valid = curved[:300], curved[300:]
    params = dict(FAST, patience=None)
    a = AutoencoderTransformer(**params).fit(train, validation_data=valid)
    b = AutoencoderTransformer(**params).fit(train, validation_data=(valid, None))
    history = a.history_
    assert list(history.columns) == ["epoch", "train_loss", "valid_loss", "valid_mse", "lr",
                                     "seconds"]
    assert history["valid_mse"].notna().all()
    pd.testing.assert_frame_equal(history.drop(columns="seconds"),
                                  b.history_.drop(columns="seconds"))
    # With loss="mse" the validation loss is the validation MSE, and the
    # restored best epoch's value is what score() computes afresh.
    np.testing.assert_allclose(history["valid_loss"], history["valid_mse"], rtol=1e-5)
    best = history.set_index("epoch").loc[a.best_epoch_]
    assert best["valid_mse"] == pytest.approx(-a.score(valid), rel=1e-5)


def test_valid_mse_is_on_probabilities_with_bce(curved):
    ae = AutoencoderTransformer(**FAST, patience=None, output_activation="sigmoid",
                                loss="bce").fit(curved[:300], validation_data=curved[300:])
    best = ae.history_.set_index("epoch").loc[ae.best_epoch_]
    assert best["valid_mse"] == pytest.approx(-ae.score(curved[300:]), rel=1e-5)
    assert best["valid_loss"] > best["valid_mse"]


@pytest.mark.parametrize("early_stopping", [False, True])
def test_inputs_and_targets_are_one_tensor(curved, monkeypatch, early_stopping):
    seen = []
    partial_fit = TensorNet.partial_fit

    def spy(net, data, *args, **kwargs):
        seen.append((data, net.train_split.valid))
        return partial_fit(net, data, *args, **kwargs)

    monkeypatch.setattr(TensorNet, "partial_fit", spy)
    AutoencoderTransformer(**dict(FAST, max_epochs=2, early_stopping=early_stopping)).fit(curved)
    (train, valid), = seen
    assert train.y is train.X
    if early_stopping:
        assert valid.y is valid.X and len(valid) == 40
    else:
        assert valid is None


def test_penalties_cover_encoder_and_decoder(curved):
    ae = AutoencoderTransformer(**dict(FAST, l2=1e-3)).fit(curved)
    decayed = [p for group in ae.net_.optimizer_.param_groups
               if group["weight_decay"] == 1e-3 for p in group["params"]]
    weights = [m.weight for m in ae.module_.modules() if isinstance(m, torch.nn.Linear)]
    assert len(weights) == 4
    assert {id(p) for p in decayed} == {id(w) for w in weights}


def test_same_random_state_same_codes_and_pickle(curved):
    a = AutoencoderTransformer(**FAST).fit(curved)
    b = AutoencoderTransformer(**FAST).fit(curved)
    np.testing.assert_array_equal(a.transform(curved), b.transform(curved))
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.transform(curved), a.transform(curved))
    np.testing.assert_array_equal(restored.reconstruction_error(curved),
                                  a.reconstruction_error(curved))


# --- scikit-learn API --------------------------------------------------------------------


def test_feature_names_and_pandas_output(curved):
    frame = pd.DataFrame(curved, columns=[f"px{i}" for i in range(12)],
                         index=np.arange(400) + 1000)
    ae = AutoencoderTransformer(**FAST).fit(frame)
    np.testing.assert_array_equal(ae.feature_names_in_, frame.columns)
    names = ae.get_feature_names_out()
    assert names.tolist() == ["autoencodertransformer0", "autoencodertransformer1"]
    codes = ae.set_output(transform="pandas").transform(frame)
    assert isinstance(codes, pd.DataFrame)
    assert codes.columns.tolist() == names.tolist()
    assert codes.index.equals(frame.index)
    np.testing.assert_allclose(codes.to_numpy(), ae.set_output(transform="default")
                               .transform(frame))


def test_not_fitted_and_wrong_shapes(curved):
    ae = AutoencoderTransformer(**FAST)
    for method in (ae.transform, ae.inverse_transform, ae.reconstruction_error, ae.score):
        with pytest.raises(NotFittedError):
            method(curved)
    ae.fit(curved)
    with pytest.raises(ValueError, match="expects codes of code_size=2"):
        ae.inverse_transform(curved)
    with pytest.raises(ValueError, match="12 features"):
        ae.transform(curved[:, :5])


@pytest.mark.parametrize("param, value, message", [
    ("code_size", 0, "'code_size' parameter"),
    ("loss", "mae", "'loss' parameter"),
    ("output_activation", "tanh", "'output_activation' parameter"),
    ("noise", -0.1, "'noise' parameter"),
    ("noise_type", "salt", "'noise_type' parameter"),
    ("code_activation", "softmax", "'code_activation' parameter"),
])
def test_unknown_parameter_values(curved, param, value, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderTransformer(**{**FAST, param: value}).fit(curved)


# --- real MNIST -------------------------------------------------------------------------

# Trained on the first 10,000 training images; scored on the 10,000 test images.
MNIST_AE = dict(hidden_layers=(128,), code_size=32, output_activation="sigmoid", lr=1e-2,
                max_epochs=8, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def mnist_pipeline(mnist_small):
    X, y, _, _ = mnist_small
    pipe = Pipeline([("ae", AutoencoderTransformer(**MNIST_AE)),
                     ("clf", MLPClassifier(hidden_layers=(128,), lr=1e-2, max_epochs=15,
                                           random_state=0, n_threads=1))])
    start = time.perf_counter()
    pipe.fit(X, y)
    return pipe, time.perf_counter() - start


def test_mnist_reconstruction_beats_0_02_and_pca(mnist_small, mnist_pipeline):
    X, _, X_test, _ = mnist_small
    pipe, seconds = mnist_pipeline
    ae_mse = -pipe["ae"].score(X_test)
    with threadpool_limits(1):  # BLAS threads crawl on a busy shared machine
        pca = PCA(32, random_state=0).fit(X)
    pca_mse = _mse(pca.inverse_transform(pca.transform(X_test)), X_test)
    print(f"MNIST code 32: autoencoder test MSE {ae_mse:.4f}, PCA(32) {pca_mse:.4f}, "
          f"pipeline fit {seconds:.1f} s")
    assert ae_mse < 0.02
    assert ae_mse < pca_mse


def test_mnist_pipeline_classifies_codes(mnist_small, mnist_pipeline):
    _, _, X_test, y_test = mnist_small
    pipe, _ = mnist_pipeline
    assert pipe.score(X_test, y_test) >= 0.90


def test_mnist_grid_search_prefers_the_larger_code(mnist_small):
    X, _, _, _ = mnist_small
    # No hidden layer: with a 128-unit layer before the code, the larger code
    # needs more steps than a few epochs of 3,000 images give it to pull ahead.
    ae = AutoencoderTransformer(**dict(MNIST_AE, hidden_layers=(), max_epochs=4))
    search = GridSearchCV(ae, {"code_size": [16, 64]}, cv=2, refit=False)
    search.fit(X[:6000])
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"code_size": 64}
    assert scores[1] > scores[0]

"""An autoencoder as a scikit-learn transformer: codes out, reconstructions back."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._base import NETWORK_CONSTRAINTS, NETWORK_TRAINING_DOC, BaseNetwork
from ._engine.modules import ACTIVATIONS, NOISE_TYPES, Autoencoder
from ._params import Interval, Options, as_widths, fill_choices

OUTPUT_ACTIVATIONS = ("sigmoid", "relu", "identity")
# Rows per chunk of reconstruction_error and score.
_CHUNK = 4096
LOSSES = ("mse", "bce")


_ACTIVATION_CHOICES = fill_choices("{ACTIVATION_CHOICES}", activation=tuple(ACTIVATIONS))


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseNetwork):
    __doc__ = f"""Feed-forward autoencoder trained with PyTorch through skorch.

    The network squeezes each sample through a code layer of ``code_size``
    units and reconstructs it; ``transform`` returns the codes, so the
    autoencoder is a non-linear, learned alternative to
    :class:`~sklearn.decomposition.PCA` in a pipeline. With ``noise`` it is
    a denoising autoencoder: inputs are corrupted during training only and
    the network learns to reconstruct the clean sample.

    Architecture: ``n_features -> hidden_layers -> code_size`` (encoder), then
    ``code_size -> reversed(hidden_layers) -> n_features`` (decoder), e.g.
    ``784 -> 128 -> 32 -> 128 -> 784`` on MNIST with the defaults. Every layer
    but the last is ``Linear -> [BatchNorm1d] -> activation -> [Dropout]``,
    with ``code_activation`` at the code layer; the last layer is linear
    followed by ``output_activation``.

    Parameters
    ----------
    hidden_layers : tuple of int, default=(128,)
        Widths of the encoder's layers before the code layer; the decoder
        mirrors them. ``()`` leaves only the code layer between input and
        output (``784 -> 32 -> 784``).
    code_size : int, default=32
        Width of the code layer: the number of features ``transform`` returns.
    activation : {_ACTIVATION_CHOICES}, default="relu"
        Non-linearity of each hidden layer.
    code_activation : {_ACTIVATION_CHOICES}, default="identity"
        Non-linearity of the code layer. The default linear code
        reconstructs best: a "relu" code leaves units stuck at 0 (MNIST,
        ``hidden_layers=(128,)``, code 32: test MSE 0.0208 against 0.0092,
        see docs/autoencoder.md). "relu" is Keras's ``Dense(code_size,
        activation="relu")``, with non-negative codes; "sigmoid" bounds them
        to (0, 1). With ``activation="identity"``,
        ``output_activation="identity"`` and ``loss="mse"`` the autoencoder
        is linear; at its optimum the codes span PCA's subspace.
    output_activation : {{"sigmoid", "relu", "identity"}}, default="identity"
        Activation of the reconstruction. "identity" reconstructs any real
        values (e.g. standardised data); "sigmoid" keeps them in (0, 1), the
        natural choice for pixels scaled to [0, 1]; "relu" keeps them
        non-negative.
    loss : {{"mse", "bce"}}, default="mse"
        Reconstruction loss, averaged over samples and features: the mean
        squared error, or the binary cross-entropy between the inputs (which
        must lie in [0, 1]) and the reconstructions. "bce" needs
        ``output_activation="sigmoid"`` and is computed from the sigmoid's
        input with ``torch.nn.BCEWithLogitsLoss`` (numerically stable).
    noise : float or None, default=None
        Strength of the corruption of training inputs: the standard deviation
        of added Gaussian noise, or the probability of masking a value to 0.
        ``None`` or 0 trains a plain autoencoder. Never applied by
        ``transform``, ``inverse_transform``, ``score`` or on validation data.
    noise_type : {{"gaussian", "masking"}}, default="gaussian"
        Kind of corruption ``noise`` sets (masking needs ``noise < 1``).
    dropout : float in [0, 1), default=0.0
        Dropout rate after each hidden layer and after the code layer
        (training only).
    batch_norm : bool, default=False
        Batch normalisation of the pre-activations of each hidden layer and
        of the code layer (layer order ``Linear -> BatchNorm1d -> activation
        -> Dropout``).
    {NETWORK_TRAINING_DOC}

    Attributes
    ----------
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.
    history_ : pandas.DataFrame
        One row per epoch: ``epoch`` (from 1), ``train_loss`` (the ``loss``
        on the corrupted inputs when there is ``noise``), ``valid_loss`` and
        ``valid_mse`` (the mean squared reconstruction error of the
        validation set; NaN without one), ``lr`` and ``seconds``.
    best_epoch_ : int
        Epoch of the lowest validation loss (training loss without a
        validation set); with a validation set, the returned weights are
        those of this epoch.
    n_epochs_ : int
        Epochs trained.
    fit_seconds_ : float
        Wall-clock seconds of the last ``fit``.
    encoder_ : torch.nn.Sequential
        Maps inputs to codes (what ``transform`` runs).
    decoder_ : torch.nn.Sequential
        Maps codes to reconstructions, output activation included (what
        ``inverse_transform`` runs).
    module_ : torch.nn.Module
        The trained network: input noise, ``encoder_`` and ``decoder_``. Its
        ``forward`` returns the reconstruction, or the sigmoid's input
        (logits) when ``loss="bce"``.
    net_ : skorch.NeuralNet
        The skorch net that trained it.

    See Also
    --------
    sklearn.decomposition.PCA : The linear counterpart.
    MLPClassifier : A classifier to train on the codes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets import AutoencoderTransformer
    >>> X = load_digits().data / 16
    >>> ae = AutoencoderTransformer(code_size=16, output_activation="sigmoid",
    ...                             lr=1e-2, max_epochs=30, random_state=0)
    >>> codes = ae.fit_transform(X)
    >>> codes.shape
    (1797, 16)
    >>> ae.inverse_transform(codes).shape
    (1797, 64)
    >>> float(ae.reconstruction_error(X).mean()) < 0.05
    True
    >>> ae.get_feature_names_out()[:2].tolist()
    ['autoencodertransformer0', 'autoencodertransformer1']
    """

    _parameter_constraints = {
        **NETWORK_CONSTRAINTS,
        "code_size": [Interval(Integral, 1, None)],
        "code_activation": [Options(*ACTIVATIONS)],
        "output_activation": [Options(*OUTPUT_ACTIVATIONS)],
        "loss": [Options(*LOSSES)],
        "noise": [Interval(Real, 0, None), Options(None)],
        "noise_type": [Options(*NOISE_TYPES)],
    }
    _network_params = (*BaseNetwork._network_params, "code_size", "code_activation",
                       "output_activation", "loss", "noise", "noise_type")
    _exposed_attributes = (*BaseNetwork._exposed_attributes, "encoder_", "decoder_",
                           "_n_features_out")
    _score_name = "mse"

    def __init__(self, hidden_layers=(128,), code_size=32, *, activation="relu",
                 code_activation="identity", output_activation="identity", loss="mse",
                 noise=None, noise_type="gaussian", dropout=0.0, batch_norm=False, l1=0.0,
                 l2=0.0, optimizer="adam", lr=1e-3, momentum=0.9, batch_size=200,
                 shuffle=True, max_epochs=200, lr_schedule="constant", lr_decay=0.0,
                 lr_min=0.0, lr_step_size=10, lr_gamma=0.1, lr_patience=5,
                 lr_warmup_epochs=0, clip_grad_norm=None,
                 early_stopping=False, patience=10, tol=1e-4, validation_fraction=0.1,
                 random_state=None, device="cpu", n_threads=None, verbose=0,
                 callbacks=None):
        self.hidden_layers = hidden_layers
        self.code_size = code_size
        self.activation = activation
        self.code_activation = code_activation
        self.output_activation = output_activation
        self.loss = loss
        self.noise = noise
        self.noise_type = noise_type
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.l1 = l1
        self.l2 = l2
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.lr_min = lr_min
        self.lr_step_size = lr_step_size
        self.lr_gamma = lr_gamma
        self.lr_patience = lr_patience
        self.lr_warmup_epochs = lr_warmup_epochs
        self.clip_grad_norm = clip_grad_norm
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose
        self.callbacks = callbacks

    # --- fitting -----------------------------------------------------------------

    def fit(self, X, y=None, validation_data=None):
        """Train the autoencoder to reconstruct ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored; present for API consistency (pipelines pass it).
        validation_data : array-like of shape (n_val, n_features) or tuple, default=None
            Validation samples monitored every epoch (``valid_loss`` and
            ``valid_mse`` in ``history_``), used instead of carving
            ``validation_fraction`` out of ``X``. A tuple ``(X_val, y_val)``
            is accepted as for the supervised estimators; ``y_val`` is ignored.

        Returns
        -------
        self
        """
        if isinstance(validation_data, tuple):
            validation_data = validation_data[0]
        if validation_data is not None:
            validation_data = (validation_data, None)
        return self._fit(X, None, validation_data=validation_data, epochs=self.max_epochs)

    def _check_data(self, checker, X, y, reset):
        X = validate_data(checker, X, reset=reset, dtype=np.float32)
        return X, X

    def _encode_targets(self, y, targets):
        if self.loss == "bce" and (y.min() < 0 or y.max() > 1):
            raise ValueError(
                f"loss='bce' needs inputs in [0, 1]; X ranges over [{y.min():g}, "
                f"{y.max():g}]. Scale it (e.g. sklearn.preprocessing.MinMaxScaler) or "
                "use loss='mse'."
            )
        return y

    def _check_settings(self):
        """Refuse combinations of valid parameters that cannot work together."""
        if self.loss == "bce" and self.output_activation != "sigmoid":
            raise ValueError(
                "loss='bce' compares probabilities: it needs output_activation='sigmoid', "
                f"got {self.output_activation!r}. Use loss='mse' for other outputs."
            )
        if self.noise_type == "masking" and self.noise is not None and self.noise >= 1:
            raise ValueError(
                f"noise={self.noise} would mask every value: with noise_type='masking', "
                "noise is a probability in [0, 1)."
            )

    def _n_outputs(self, n_features, targets):
        return n_features

    def _build_module(self, n_features, n_outputs):
        self._check_settings()
        return Autoencoder(n_features, as_widths(self.hidden_layers), self.code_size,
                           self.activation, self.code_activation, self.output_activation,
                           self.dropout, self.batch_norm, self.noise_type, self.noise or 0.0,
                           logits=self._logits())

    def _logits(self):
        return self.loss == "bce"

    def _criterion(self):
        if self._logits():
            return torch.nn.BCEWithLogitsLoss()
        return torch.nn.MSELoss()

    def _valid_metrics(self, y_valid):
        return _SquaredErrorSum(self._logits())

    def _set_fitted_state(self, state, weights=None):
        super()._set_fitted_state(state, weights)
        self.encoder_ = self.module_.encoder
        self.decoder_ = self.module_.decoder
        self._n_features_out = state.params["code_size"]

    # --- transforming --------------------------------------------------------------

    def _check_X(self, X):
        """``X`` validated for a fitted model; float32 stays float32, else float64."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    def transform(self, X):
        """Codes of ``X``: the code layer's activations.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        codes : ndarray of shape (n_samples, code_size)
            float32 for float32 input, float64 otherwise.
        """
        X = self._check_X(X)
        return self._run(X, self.encoder_).cpu().numpy().astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Reconstructions decoded from codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, code_size)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, n_features_in_)
            float32 for float32 codes, float64 otherwise.
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=(np.float64, np.float32))
        if codes.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {codes.shape[1]} columns, but inverse_transform expects codes of "
                f"code_size={self._n_features_out} columns, as transform returns."
            )
        return self._run(codes, self.decoder_).cpu().numpy().astype(codes.dtype, copy=False)

    def reconstruction_error(self, X):
        """Mean squared reconstruction error of each sample.

        ``mean((inverse_transform(transform(X)) - X) ** 2, axis=1)``, whatever
        the training ``loss``; large values flag samples unlike the training
        data (outlier screening).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        errors : ndarray of shape (n_samples,), float64
        """
        X = self._check_X(X)
        network = torch.nn.Sequential(self.encoder_, self.decoder_)
        errors = np.empty(len(X))
        # In chunks: the reconstructions and their differences cost a chunk's
        # memory, not several copies of X.
        for start in range(0, len(X), _CHUNK):
            rows = X[start:start + _CHUNK]
            reconstruction = self._run(rows, network).cpu().numpy()
            errors[start:start + _CHUNK] = ((reconstruction - rows) ** 2).mean(axis=1)
        return errors

    def score(self, X, y=None):
        """Negative mean squared reconstruction error of ``X`` (higher is better).

        ``-reconstruction_error(X).mean()``, so that model selection
        (``GridSearchCV``) picks the autoencoder that reconstructs best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return -float(self.reconstruction_error(X).mean())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class _SquaredErrorSum:
    """Per-batch sum of per-sample mean squared errors (the ``valid_mse`` column)."""

    def __init__(self, logits):
        self.logits = logits

    def __call__(self, y_pred, y_true):
        reconstruction = torch.sigmoid(y_pred) if self.logits else y_pred
        return {"mse": ((reconstruction - y_true) ** 2).mean(dim=1).sum()}


__all__ = ["AutoencoderTransformer"]

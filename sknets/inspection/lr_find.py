"""The learning-rate range test: which learning rates a network can train with.

:func:`lr_find` trains a copy of an unfitted (or fitted) network for a few
mini-batches with a learning rate that grows exponentially from step to step,
and records the training loss of each step. The loss first stays flat (the
rate is too small to matter), then falls (the useful range), and finally
rises steeply (the rate is too large). A good learning rate lies in the
falling part, about ten times below the rate of the lowest loss (L. N.
Smith, "Cyclical Learning Rates for Training Neural Networks", 2017; the
fastai library's ``lr_find``).
"""

import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone

from .._base import BaseNetwork
from .._engine.schedules import RangeTest
from ..exceptions import DivergenceError, TrainingInterruptedWarning


@dataclass(frozen=True)
class LRFindResult:
    """What :func:`lr_find` measured: one learning rate and loss per training step.

    Attributes
    ----------
    lrs : ndarray of shape (n_done,)
        Learning rate of each step taken, increasing exponentially.
    losses : ndarray of shape (n_done,)
        Smoothed training loss of each step: the debiased exponential moving
        average of ``raw_losses`` (see ``smoothing`` in :func:`lr_find`).
    raw_losses : ndarray of shape (n_done,)
        Training loss of each step's mini-batch, computed before the step.
    suggested_lr : float
        A tenth of the rate of the lowest smoothed loss (``min_loss_lr /
        10``, at least ``lrs[0]``): a rate in the falling part of the
        curve, well below where training breaks down. ``steepest_lr`` is
        another common choice.
    diverged : bool
        Whether the test stopped because the loss diverged (before
        ``n_steps`` steps).
    """

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggested_lr: float
    diverged: bool

    @property
    def min_loss_lr(self):
        """The rate of the lowest smoothed loss (``lrs[0]`` if no loss is finite)."""
        return float(self.lrs[_lowest(self.losses)])

    @property
    def steepest_lr(self):
        """The rate where the smoothed loss falls fastest against ``log(lr)``.

        Among the steps up to the lowest smoothed loss, leaving out the
        first tenth of the steps (when enough remain), whose moving average
        is still mostly mini-batch noise; ``lrs[0]`` when the loss never
        fell. It makes quick progress, but can lie close to where training
        breaks down.
        """
        lowest = _lowest(self.losses)
        if lowest == 0:
            return float(self.lrs[0])
        skip = len(self.losses) // 10
        start = skip if lowest - skip >= 2 else 0
        slopes = np.gradient(self.losses[start:lowest + 1], np.log(self.lrs[start:lowest + 1]))
        return float(self.lrs[start + int(np.argmin(slopes))])

    def plot(self, ax=None):
        """Draw the loss against the learning rate (log scale) and mark ``suggested_lr``.

        The smoothed loss is a line; the loss of each mini-batch is drawn
        faintly behind it. The vertical range runs from the lowest smoothed
        loss to the highest before it, so a diverging end leaves the axes.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure if None.

        Returns
        -------
        ax : matplotlib Axes

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import load_digits
        >>> from sknets import MLPClassifier, lr_find
        >>> X, y = load_digits(return_X_y=True)
        >>> ax = lr_find(MLPClassifier(random_state=0), X / 16, y, n_steps=30).plot()
        >>> ax.get_xscale(), ax.get_xlabel()
        ('log', 'learning rate')
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
        ax.plot(self.lrs, self.raw_losses, color="C0", alpha=0.25, linewidth=0.8,
                label="loss of each mini-batch")
        ax.plot(self.lrs, self.losses, color="C0", label="smoothed loss")
        finite = np.isfinite(self.losses)
        if finite.any():
            at = np.interp(np.log(self.suggested_lr), np.log(self.lrs[finite]),
                           self.losses[finite])
            ax.plot([self.suggested_lr], [at], "o", color="C3",
                    label=f"suggested lr = {self.suggested_lr:.2g}")
            shown = self.losses[:_lowest(self.losses) + 1]
            low, high = float(np.nanmin(shown)), float(np.nanmax(shown))
            margin = 0.1 * (high - low) or 0.1 * abs(high) or 0.1
            ax.set_ylim(low - margin, high + margin)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend()
        return ax


def lr_find(estimator, X, y=None, *, start_lr=1e-7, end_lr=10.0, n_steps=100, smoothing=0.9,
            diverge_factor=4.0, **fit_params):
    """Run the learning-rate range test on a copy of ``estimator``.

    A clone of ``estimator`` (same parameters, so the same initial weights
    for an int ``random_state``) is trained on ``(X, y)`` exactly as
    ``fit`` trains it (same optimizer, batch size, penalties, clipping,
    input handling), except that step ``k`` of ``n_steps`` mini-batch steps
    uses the learning rate ``start_lr * (end_lr / start_lr) ** (k /
    (n_steps - 1))``, and that no validation set is held out. Training
    runs through as many epochs as ``n_steps`` needs, and stops early once
    the smoothed loss diverges (exceeds ``diverge_factor`` times its lowest
    value, or is not finite). The estimator passed in is never changed.

    Parameters
    ----------
    estimator : MLPClassifier, MLPRegressor or AutoencoderTransformer
        The network to test, fitted or not (its fitted state is not used).
    X : array-like of shape (n_samples, n_features)
    y : array-like or None, default=None
        Targets; None for an autoencoder.
    start_lr, end_lr : float, default=1e-7, 10.0
        Learning rates of the first and of the last step, ``0 < start_lr < end_lr``.
    n_steps : int, default=100
        Most mini-batch steps (and rates) to try, at least 2.
    smoothing : float in [0, 1), default=0.9
        Weight of the past in the exponential moving average of the loss:
        ``a_k = smoothing * a_(k-1) + (1 - smoothing) * loss_k``, debiased as
        ``a_k / (1 - smoothing ** (k + 1))``. 0 does not smooth; more
        smooths more, but lags about ``1 / (1 - smoothing)`` steps behind.
    diverge_factor : float > 1, default=4.0
        The test stops when the smoothed loss exceeds its lowest value
        ``best`` by more than ``(diverge_factor - 1) * |best|``.
    **fit_params
        Passed on to ``fit`` (``sample_weight``, say).

    Returns
    -------
    LRFindResult
        ``lrs``, ``losses`` (smoothed), ``raw_losses``, ``suggested_lr``
        (a tenth of the rate of the lowest smoothed loss), ``diverged``,
        ``min_loss_lr``, ``steepest_lr`` and ``plot()``.

    Raises
    ------
    TypeError
        If ``estimator`` is not an sknets network.
    ValueError
        If a setting is out of its range; also what ``fit`` raises for
        the data, before any step is taken.

    See Also
    --------
    sknets.plot_history : Training curves of a fitted network.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sknets import MLPClassifier, lr_find
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layers=(64,), optimizer="sgd", max_epochs=20, random_state=0)
    >>> result = lr_find(clf, X / 16, y, start_lr=1e-4, end_lr=10, n_steps=60)
    >>> bool(1e-4 <= result.suggested_lr <= 10), result.lrs.shape == result.losses.shape
    (True, True)
    >>> clf.set_params(lr=result.suggested_lr).fit(X / 16, y).score(X / 16, y) > 0.9
    True
    """
    if not isinstance(estimator, BaseNetwork):
        raise TypeError(f"lr_find tests an sknets network (MLPClassifier, MLPRegressor, "
                        f"AutoencoderTransformer); got {type(estimator).__name__}. For a "
                        "pipeline, run it on the network with the data the pipeline feeds it.")
    _check_settings(start_lr, end_lr, n_steps, smoothing, diverge_factor)
    rates = np.geomspace(start_lr, end_lr, n_steps)
    test = RangeTest(rates.tolist(), smoothing, diverge_factor)
    trial = clone(estimator)
    settings = dict(lr=float(start_lr), lr_schedule="constant", lr_warmup_epochs=0,
                    max_epochs=n_steps, early_stopping=False, patience=None, verbose=0,
                    callbacks=[("lr_range_test", test)])
    # What the range test has no use for: a continued fit, and a validation
    # score (which needs the validation set the test does not hold out).
    for name, value in (("warm_start", False), ("scoring", None)):
        if name in trial.get_params():
            settings[name] = value
    trial.set_params(**settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            trial.fit(X, y, **fit_params)
        except DivergenceError:
            # The weights broke in the step that made the loss diverge: the
            # losses up to there are what the test is for.
            if not test.stopped_:
                raise
    for warning in caught:
        if not (test.stopped_ and issubclass(warning.category, TrainingInterruptedWarning)):
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno, source=warning.source)
    losses = np.asarray(test.smoothed_, dtype=float)
    lrs = rates[:len(losses)]
    suggested = max(float(lrs[_lowest(losses)]) / 10, float(lrs[0]))
    return LRFindResult(lrs=lrs, losses=losses, raw_losses=np.asarray(test.losses_, dtype=float),
                        suggested_lr=suggested, diverged=test.diverged_)


def _check_settings(start_lr, end_lr, n_steps, smoothing, diverge_factor):
    def number(value):
        return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)

    if not (number(start_lr) and number(end_lr) and 0 < start_lr < end_lr):
        raise ValueError(f"lr_find needs finite learning rates 0 < start_lr < end_lr; got "
                         f"start_lr={start_lr!r} and end_lr={end_lr!r}.")
    if not (isinstance(n_steps, Integral) and not isinstance(n_steps, bool) and n_steps >= 2):
        raise ValueError(f"n_steps must be an int of at least 2; got {n_steps!r}.")
    if not (number(smoothing) and 0 <= smoothing < 1):
        raise ValueError(f"smoothing must be a float in [0, 1); got {smoothing!r}.")
    if not (number(diverge_factor) and diverge_factor > 1):
        raise ValueError(f"diverge_factor must be a float greater than 1; got "
                         f"{diverge_factor!r}.")


def _lowest(losses):
    """Index of the lowest finite loss (0 if none is finite)."""
    finite = np.isfinite(losses)
    return int(np.argmin(np.where(finite, losses, np.inf))) if finite.any() else 0


__all__ = ["LRFindResult", "lr_find"]

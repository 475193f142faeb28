"""Errors and warnings that sknets raises about training.

Bad input and bad parameters raise plain ``ValueError`` (or scikit-learn's
own errors: ``NotFittedError``, ``TypeError`` for sparse input); the classes
here name what can go wrong while a network trains, so that callers can
catch or filter them. See ``docs/reliability.md``.
"""


class DivergenceError(ValueError, FloatingPointError):
    """Training produced a non-finite loss or non-finite weights.

    Raised by ``fit`` and ``partial_fit`` when no validation set is
    monitored (with one, sknets restores the best finite epoch and warns with
    :class:`DivergenceWarning` instead). The estimator is left unfitted: a
    network whose weights went to NaN cannot predict anything useful. The
    message names the epoch, the loss and the learning rate.

    A subclass of ``ValueError`` (what scikit-learn raises for a failed fit,
    so model selection treats it like any other failed fit) and of
    ``FloatingPointError``.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets import MLPRegressor
    >>> from sknets.exceptions import DivergenceError
    >>> X = np.linspace(-1, 1, 40).reshape(-1, 1)
    >>> try:
    ...     MLPRegressor(hidden_layers=(8,), optimizer="sgd", lr=1e6,
    ...                  random_state=0).fit(X, 1e4 * X.ravel())
    ... except DivergenceError as error:
    ...     print(str(error).split(":")[0])
    Training diverged in epoch 2
    """


class DivergenceWarning(UserWarning):
    """Training diverged; the weights of the best finite epoch were restored.

    Issued instead of :class:`DivergenceError` when a validation set is
    monitored and at least one epoch finished with a finite validation loss.
    """


class TrainingInterruptedWarning(UserWarning):
    """``fit`` was interrupted (``KeyboardInterrupt``) and returned early.

    The estimator keeps the best weights seen so far (the last weights
    without a validation set) and ``history_`` up to the last complete
    epoch; the message names the epoch.
    """


__all__ = ["DivergenceError", "DivergenceWarning", "TrainingInterruptedWarning"]

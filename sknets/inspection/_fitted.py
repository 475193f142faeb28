"""Finding the fitted sknets network inside what users pass to the insight tools."""

from collections.abc import Mapping

from sklearn.utils.validation import check_is_fitted

from .._base import BaseNetwork


def fitted_network(estimator):
    """The fitted sknets estimator in ``estimator``.

    ``estimator`` may be the network itself (an sknets estimator, or any
    fitted estimator with ``history_``, ``best_epoch_`` and ``module_``), a
    ``Pipeline`` ending in one, or a fitted search (``GridSearchCV``...)
    whose ``best_estimator_`` is one of those.

    Raises
    ------
    TypeError
        If no estimator with a training ``history_`` is found.
    """
    found = estimator
    if hasattr(found, "best_estimator_"):
        found = found.best_estimator_
    if hasattr(found, "steps"):
        found = found.steps[-1][1]
    fitted_like = all(hasattr(found, name) for name in ("history_", "best_epoch_", "module_"))
    if not (isinstance(found, BaseNetwork) or fitted_like):
        raise TypeError(
            f"{type(estimator).__name__} is not an sknets network: expected an estimator "
            "with a training history_ (MLPClassifier, MLPRegressor, AutoencoderTransformer), "
            "a Pipeline ending in one, or a fitted search over one."
        )
    check_is_fitted(found, "history_")
    return found


def named_estimators(estimators):
    """``estimators`` as a list of ``(name, estimator)`` pairs.

    Accepts one estimator, a sequence of estimators, or a mapping from name
    to estimator. Unnamed estimators are named after their class, numbered
    when a class occurs more than once.
    """
    if isinstance(estimators, Mapping):
        return [(str(name), est) for name, est in estimators.items()]
    if hasattr(estimators, "fit"):
        estimators = [estimators]
    estimators = list(estimators)
    names = [type(est).__name__ for est in estimators]
    repeated = {name for name in names if names.count(name) > 1}
    counter = {}
    pairs = []
    for name, est in zip(names, estimators):
        if name in repeated:
            counter[name] = counter.get(name, 0) + 1
            name = f"{name} {counter[name]}"
        pairs.append((name, est))
    return pairs

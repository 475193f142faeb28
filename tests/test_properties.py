"""Property-based tests: whatever the data, an estimator fits and predicts
finite output, or raises the documented ``ValueError`` from sknets' or
scikit-learn's own checks, never an internal torch or NumPy error.

Every ``BaseNetwork`` subclass that sknets exports is tested, by kind
(classifier, regressor, or transformer such as an autoencoder); the number
of examples is bounded so that each test stays well under 30 s.
"""

import io
import traceback
import warnings
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.base import is_classifier, is_regressor

import sknets
from sknets.persistence import SAVABLE

ESTIMATORS = sorted(SAVABLE, key=lambda cls: cls.__name__)
# Where a documented error may be raised: sknets and scikit-learn's checks.
OWN_CODE = (str(Path(sknets.__file__).parent), str(Path(sklearn.__file__).parent))

# Of the 25 examples of a test, at least this many must fit (the rest may be refused).
MIN_FITTED = 5
BOUNDED = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])

# Ordinary values, and (in half the data sets) extremes: tiny, huge, beyond
# float32's range (3.4e38).
EXTREMES = [0.0, 1e-30, -1e-30, 1e30, -1e30, 3e38, -3e38, 1e39, -1e300]
ordinary = st.floats(-1e3, 1e3)
numbers = st.one_of(ordinary, ordinary, ordinary, st.sampled_from(EXTREMES))
LABELS = {
    "int": [-5, 0, 3, 10**12],
    "str": ["a", "b", "cat"],
    "bool": [False, True],
    "float": [0.0, 1.0, -7.0, 1e6],
}


def _cast(values, dtype):
    """float64 ``values`` as ``dtype``, the way a user's data would arrive."""
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "int64":
            return np.round(np.clip(values, -2.0**62, 2.0**62)).astype(np.int64)
        if dtype == "bool":
            return values > 0
        if dtype == "object":
            return values.astype(object)
        return values.astype(dtype)


@st.composite
def problems(draw, estimator_class):
    """(estimator, X, y) with random shapes, dtypes, values and parameters."""
    n_samples = draw(st.integers(1, 24))
    n_features = draw(st.integers(1, 4))
    elements = draw(st.sampled_from([ordinary, numbers]))
    values = draw(hnp.arrays(np.float64, (n_samples, n_features), elements=elements))
    X = _cast(values, draw(st.sampled_from(["float64", "float32", "int64", "bool", "object"])))
    if estimator_class._table_input and draw(st.booleans()):
        X = _table(draw, X)
    estimator = estimator_class(
        hidden_layers=(4,), max_epochs=3, random_state=0,
        batch_size=draw(st.integers(1, 8)),
        batch_norm=draw(st.booleans()),
        early_stopping=draw(st.booleans()),
        optimizer=draw(st.sampled_from(["adam", "sgd"])),
        lr=draw(st.sampled_from([1e-3, 0.1, 1e3])),
    )
    if is_classifier(estimator):
        pool = LABELS[draw(st.sampled_from(sorted(LABELS)))]
        y = np.array(draw(st.lists(st.sampled_from(pool), min_size=n_samples,
                                   max_size=n_samples)))
    elif is_regressor(estimator):
        shape = draw(st.sampled_from([(n_samples,), (n_samples, 2)]))
        y = draw(hnp.arrays(np.float64, shape, elements=draw(st.sampled_from([ordinary,
                                                                               numbers]))))
    else:
        y = None
    return estimator, X, y


def _table(draw, X):
    """``X`` as a DataFrame with missing numbers and a text column (categories, None)."""
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    if X.dtype.kind == "f":
        missing = draw(hnp.arrays(bool, X.shape))
        frame = frame.mask(missing)
    pool = draw(st.sampled_from([["a"], ["a", "b", None], [f"c{i}" for i in range(12)]]))
    frame["kind"] = np.array(draw(st.lists(st.sampled_from(pool), min_size=len(X),
                                           max_size=len(X))), dtype=object)
    return frame


def _outputs(estimator, X):
    if is_classifier(estimator):
        return estimator.predict(X), estimator.predict_proba(X)
    if is_regressor(estimator):
        return (estimator.predict(X),)
    return (estimator.transform(X),)


def _fit_outputs(estimator, X, y):
    """Fit ``estimator``, then its outputs for ``X``."""
    with warnings.catch_warnings():
        # NumPy's and scikit-learn's conversions warn before refusing; sknets'
        # own warnings (divergence with the best epoch restored) are allowed.
        warnings.simplefilter("ignore")
        estimator.fit(X, y)
        return _outputs(estimator, X)


def _assert_documented(error):
    origin = traceback.extract_tb(error.__traceback__)[-1].filename
    assert isinstance(error, ValueError), f"{type(error).__name__}: {error}"
    assert origin.startswith(OWN_CODE), f"{type(error).__name__} raised in {origin}: {error}"


@pytest.mark.parametrize("estimator_class", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_fit_and_predict_give_finite_output_or_a_documented_error(estimator_class):
    fitted = []

    @BOUNDED
    @given(data=st.data())
    def check(data):
        estimator, X, y = data.draw(problems(estimator_class))
        try:
            outputs = _fit_outputs(estimator, X, y)
        except Exception as error:  # checked: only documented errors pass
            _assert_documented(error)
            event(f"refused: {str(error)[:40]}")
            return
        event("fitted and predicted")
        fitted.append(True)
        if is_classifier(estimator):
            assert np.isin(outputs[0], estimator.classes_).all()
            assert np.isfinite(outputs[1]).all()
            np.testing.assert_allclose(outputs[1].sum(axis=1), 1.0, rtol=1e-5)
        else:
            assert np.isfinite(outputs[0]).all()
        assert len(outputs[0]) == len(X)

    check()
    # The properties above say something only if fits succeed, not just refusals.
    assert len(fitted) >= MIN_FITTED, f"only {len(fitted)} examples reached predict"


@pytest.mark.parametrize("estimator_class", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_save_and_load_predict_identically(estimator_class):
    saved = []

    @settings(BOUNDED, max_examples=20)
    @given(data=st.data())
    def check(data):
        estimator, X, y = data.draw(problems(estimator_class))
        try:
            expected = _fit_outputs(estimator, X, y)
        except ValueError:
            return  # what fit refuses is the subject of the test above
        event("saved and loaded")
        buffer = io.BytesIO()
        estimator.save(buffer)
        buffer.seek(0)
        for got, want in zip(_outputs(sknets.load(buffer), X), expected):
            np.testing.assert_array_equal(got, want)
        saved.append(True)

    check()
    assert len(saved) >= 2, f"only {len(saved)} of 20 examples were saved and loaded"

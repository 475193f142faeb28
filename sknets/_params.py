"""Declarative parameter constraints, checked once at the start of ``fit``.

The idea is scikit-learn's ``_parameter_constraints``; the helpers behind it
are private to scikit-learn, so sknets keeps its own small table and check.
"""

from numbers import Integral, Real

import numpy as np


class Interval:
    """A numeric range; ``closed`` is one of "both", "left", "right", "neither"."""

    def __init__(self, kind, low, high, closed="both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def __call__(self, value):
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self):
        kind = "an int" if self.kind is Integral else "a float"
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{kind} in the range {left}{low}, {high}{right}"


class Options:
    """One of a fixed set of strings (or other hashable values)."""

    def __init__(self, *options):
        self.options = options

    def __call__(self, value):
        return isinstance(value, (str, bool, type(None))) and value in self.options

    def __str__(self):
        return "one of " + ", ".join(repr(o) for o in self.options)


class InstanceOf:
    def __init__(self, *types, name=None):
        self.types, self.name = types, name

    def __call__(self, value):
        return isinstance(value, self.types)

    def __str__(self):
        return self.name or "an instance of " + " or ".join(t.__name__ for t in self.types)


def _is_layer_tuple(value):
    if isinstance(value, (Integral, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        widths = list(value)
    except TypeError:
        return False
    return all(
        isinstance(w, (Integral, np.integer)) and not isinstance(w, bool) and w > 0
        for w in widths
    )


class LayerWidths:
    """A tuple (or list) of positive ints; a single int means one layer."""

    def __call__(self, value):
        return not isinstance(value, str) and _is_layer_tuple(value)

    def __str__(self):
        return "a tuple of positive ints such as (100,) or (256, 128), or () for none"


def as_widths(value):
    """``hidden_layers`` as a tuple of Python ints."""
    if isinstance(value, (Integral, np.integer)):
        return (int(value),)
    return tuple(int(w) for w in value)


def validate_params(estimator):
    """Check every parameter of ``estimator`` against its constraints table.

    Raises
    ------
    ValueError
        Naming the parameter, the allowed values and the value received.
    """
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        value = params[name]
        if any(check(value) for check in constraints):
            continue
        allowed = " or ".join(str(c) for c in constraints)
        raise ValueError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {allowed}; "
            f"got {value!r}."
        )

"""Tables as users bring them: categorical and string columns, missing values, scales.

The classifier and the regressor take a pandas DataFrame as it comes.
:class:`TableEncoder` turns it into the one float32 matrix the network
reads, with scikit-learn's encoders learning what there is to learn:

* numeric columns (booleans are 0/1): a missing value (NaN) is replaced by
  the column's median in the training data (``SimpleImputer(strategy=
  "median", add_indicator=True)``); with ``standardize=True`` a DataFrame's
  numeric columns are then standardised (``StandardScaler``);
* a 0/1 missing indicator for every numeric column that had missing values
  in ``fit`` (a column without them in ``fit`` is imputed at predict, with
  no indicator, as ``SimpleImputer`` does);
* categorical columns: the categories seen in ``fit`` are learned by an
  ``OrdinalEncoder``; a missing value is a category of its own (when ``fit``
  saw one) and a category never seen in ``fit`` is "unknown". A column of at
  most ``one_hot_max_categories`` categories is one-hot encoded
  (``OneHotEncoder``; unknown is all zeros); a column with more is given to
  the network as its integer codes, which a learned embedding with a row for
  each category and one for "unknown" reads (``sknets._engine.modules.
  TabularNetwork``).

The matrix is ``[numeric | missing indicators | one-hot blocks | codes of the
embedded columns]``, float32: one array, as for plain numeric input. What
the encoder learned is plain data (:meth:`TableEncoder.to_data`), written
into model files without pickle and rebuilt exactly by
:meth:`TableEncoder.from_data`.
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import check_array

MAX_EMBEDDING_DIM = 50
# Category values a model file can hold (JSON scalars).
_CATEGORY_TYPES = (str, bool, int, float)


def embedding_dim(n_categories):
    """Width of the embedding of a column of ``n_categories`` categories.

    ``min(50, (n_categories + 1) // 2)``, and at least 1.

    Examples
    --------
    >>> from sknets._input.tables import embedding_dim
    >>> embedding_dim(11), embedding_dim(500)
    (6, 50)
    """
    return max(1, min(MAX_EMBEDDING_DIM, (n_categories + 1) // 2))


def categorical_columns(X, categorical_features):
    """Positions of the categorical columns of ``X`` that ``categorical_features`` selects.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
    categorical_features : "from_dtype", None, or array-like
        "from_dtype": the ``category``, ``object`` and ``string`` columns of
        a DataFrame (none of an array); a list of column names (DataFrame
        only) or indices, or a boolean mask of length ``n_features``.

    Returns
    -------
    list of int

    Examples
    --------
    >>> import pandas as pd
    >>> from sknets._input.tables import categorical_columns
    >>> frame = pd.DataFrame({"a": [1.0], "b": ["x"], "c": pd.Categorical(["u"])})
    >>> categorical_columns(frame, "from_dtype"), categorical_columns(frame, ["a"])
    ([1, 2], [0])
    """
    if categorical_features is None:
        return []
    if isinstance(categorical_features, str):  # "from_dtype"
        if not isinstance(X, pd.DataFrame):
            return []
        return [j for j, dtype in enumerate(X.dtypes)
                if isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)) or dtype == object]
    n_features = X.shape[1]
    selection = np.asarray(categorical_features)
    if selection.dtype.kind == "b":
        if selection.shape != (n_features,):
            raise ValueError(f"categorical_features is a boolean mask of length {selection.size}; "
                             f"X has {n_features} columns: give one entry per column.")
        return np.flatnonzero(selection).tolist()
    if selection.ndim != 1:
        raise ValueError("categorical_features must be a 1-D list of column names or indices, "
                         f"or a boolean mask; got an array of shape {selection.shape}.")
    positions = []
    for item in selection.tolist():
        if isinstance(item, str):
            if not isinstance(X, pd.DataFrame):
                raise ValueError(f"categorical_features names the column {item!r}, but X is not "
                                 "a DataFrame: give column indices for an array.")
            names = [str(c) for c in X.columns]
            if item not in names:
                raise ValueError(f"categorical_features names the column {item!r}, which X "
                                 f"lacks; its columns are {names}.")
            positions.append(names.index(item))
        elif isinstance(item, Integral) and not isinstance(item, bool):
            if not -n_features <= item < n_features:
                raise ValueError(f"categorical_features holds the index {item}, but X has "
                                 f"{n_features} columns.")
            positions.append(item % n_features)
        else:
            raise ValueError("categorical_features must hold column names (str) or indices "
                             f"(int); got {item!r}.")
    if len(set(positions)) != len(positions):
        raise ValueError(f"categorical_features names a column twice: {selection.tolist()}.")
    return sorted(positions)


def needs_encoder(X, categorical_features, standardize):
    """Whether ``X`` goes through a :class:`TableEncoder` at fit, before looking for NaN.

    A DataFrame does when it has categorical or non-numeric columns, or
    when ``standardize``; an array when some of its columns are categorical.
    """
    if categorical_columns(X, categorical_features):
        return True
    if isinstance(X, pd.DataFrame):
        return standardize or not all(
            pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d) for d in X.dtypes)
    return False


def column_names(X):
    """How messages call the columns of ``X``: its names, or ``column <j>``."""
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    return [f"column {j}" for j in range(X.shape[1])]


def missing_values_error(names, fitted_without=False):
    """The ValueError for missing values that will not be imputed, naming the columns."""
    if fitted_without:
        return ValueError(
            f"X has missing values (NaN) in {_listed(names)}, but the model was fitted on data "
            "without any: it has no statistics to impute them with. Impute X first (e.g. "
            "with sklearn.impute.SimpleImputer), or fit on data that has missing values in "
            "these columns.")
    return ValueError(
        f"X has missing values (NaN) in {_listed(names)}. Impute them first (e.g. with "
        "sklearn.impute.SimpleImputer), or use missing_values='impute' to let the estimator "
        "impute them.")


def sparse_missing_error(X):
    """The ValueError for missing values in the sparse matrix ``X``, naming the columns."""
    bad = [f"column {j}" for j in np.unique(X.indices[~np.isfinite(X.data)])]
    return ValueError(
        f"X is a sparse matrix with missing values (NaN) in {_listed(bad)}. "
        "Missing values in sparse input are not imputed (missing_values applies to dense "
        "input only): impute them first, or pass X as a dense array or DataFrame.")


def _listed(names):
    shown = ", ".join(repr(n) for n in names[:10])
    return f"columns [{shown}{', ...' if len(names) > 10 else ''}]"


def nan_columns(X):
    """Positions of the columns of the float array ``X`` that hold NaN.

    A sum first: one pass and no mask for the common case of no NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from sknets._input.tables import nan_columns
    >>> nan_columns(np.array([[1.0, np.nan, 2.0]]))
    [1]
    """
    if X.size == 0 or np.isfinite(np.sum(X, dtype=np.float64)):
        return []
    return np.flatnonzero(np.isnan(X).any(axis=0)).tolist()


def _column(X, j):
    return X.iloc[:, j] if isinstance(X, pd.DataFrame) else X[:, j]


def _as_table(X):
    """A DataFrame as it is; anything else as a 2-D array (scikit-learn's checks and messages)."""
    if isinstance(X, pd.DataFrame):
        if X.shape[0] == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                             "of 1 is required.")
        if X.shape[1] == 0:
            raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                             "of 1 is required.")
        return X
    return check_array(X, dtype=None, ensure_all_finite=False)


def _numeric_values(column, name):
    """A numeric (or boolean) column as float64, missing values as NaN."""
    if isinstance(column, pd.Series):
        dtype = column.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            raise ValueError(f"Column {name!r} has dtype {dtype}; convert it to numbers (e.g. "
                             "seconds) or mark it categorical with categorical_features.")
        try:
            return column.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Column {name!r} is not numeric ({exc}); mark it categorical with "
                             "categorical_features, or convert it to numbers.") from None
    try:
        values = np.asarray(column)
        if values.dtype.kind == "O":
            values = pd.to_numeric(pd.Series(values), errors="raise").to_numpy(
                dtype=np.float64, na_value=np.nan)
        return values.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not numeric ({exc}); mark it categorical with "
                         "categorical_features, or convert it to numbers.") from None


def _category_values(column):
    """A categorical column as an object array, and its mask of missing values."""
    values = np.asarray(column.astype(object) if isinstance(column, pd.Series) else column,
                        dtype=object)
    return values, np.asarray(pd.isna(values), dtype=bool)


class TableEncoder:
    """What a classifier or regressor learned about a table's columns, and how to encode it.

    Build with :meth:`fit` (or :meth:`from_data`); :meth:`transform` gives
    the network's float32 input. See the module's documentation for the
    layout.

    Attributes
    ----------
    n_features : int
        Columns of the user's table.
    numeric : list of dict
        Per numeric column: ``column`` (position), ``median``, ``mean``,
        ``scale`` (floats: ``(value - mean) / scale`` after imputation) and
        ``indicator`` (whether a missing indicator is added).
    categorical : list of dict
        Per categorical column: ``column``, ``categories`` (the values seen
        in ``fit``, sorted), ``missing`` (whether ``fit`` saw missing values:
        a category of their own) and ``encoding`` ("one_hot" or "embedding").

    Examples
    --------
    >>> import pandas as pd
    >>> from sknets._input.tables import TableEncoder
    >>> frame = pd.DataFrame({"size": [1.0, 3.0, None], "color": ["red", "blue", "red"]})
    >>> encoder = TableEncoder.fit(frame, "from_dtype", 10, False, "impute")
    >>> encoder.transform(frame).tolist()  # size (NaN: the median), size is missing, blue, red
    [[1.0, 0.0, 0.0, 1.0], [3.0, 0.0, 1.0, 0.0], [2.0, 1.0, 0.0, 1.0]]
    """

    def __init__(self, n_features, numeric, categorical, build=True):
        self.n_features = n_features
        self.numeric = numeric
        self.categorical = categorical
        self._ordinal = self._one_hot = None
        if build:
            self.build()

    def build(self):
        """Check the categories and build their scikit-learn encoders (once).

        The encoders are fitted on the categories themselves, which are
        given explicitly: the encoders of a fit and of a loaded file are the
        same. :meth:`from_data` leaves this to the caller, so that a file's
        sizes are checked before its categories are encoded.

        Raises
        ------
        ValueError
            If a column repeats a category, or scikit-learn cannot encode them.
        """
        if self._ordinal is not None:
            return self
        for i, entry in enumerate(self.categorical):
            values = entry["categories"]
            if len({(type(v).__name__, v) for v in values}) != len(values):
                raise ValueError(f"tables.categorical[{i}].categories repeats a category")
        try:
            self._encoders()
        except (TypeError, ValueError) as exc:  # categories scikit-learn cannot encode
            self._ordinal = self._one_hot = None
            raise ValueError(f"tables.categorical cannot be encoded ({exc})") from None
        return self

    def _encoders(self):
        self._ordinal, self._one_hot = [], []
        for entry in self.categorical:
            known = np.array(entry["categories"], dtype=object)
            ordinal = None
            if len(known):
                ordinal = OrdinalEncoder(categories=[known], handle_unknown="use_encoded_value",
                                         unknown_value=-1, dtype=np.float64)
                ordinal.fit(known.reshape(-1, 1))
            self._ordinal.append(ordinal)
            one_hot = None
            if entry["encoding"] == "one_hot":
                slots = np.arange(self._n_slots(entry))
                one_hot = OneHotEncoder(categories=[slots], handle_unknown="ignore",
                                        sparse_output=False, dtype=np.float32)
                one_hot.fit(slots.reshape(-1, 1))
            self._one_hot.append(one_hot)

    @staticmethod
    def _n_slots(entry):
        """Categories of a column, its missing values counted as one when ``fit`` saw them."""
        return len(entry["categories"]) + bool(entry["missing"])

    # --- learning --------------------------------------------------------------

    @classmethod
    def fit(cls, X, categorical_features, one_hot_max_categories, standardize, missing_values):
        """Learn the encoding of the table ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        categorical_features, one_hot_max_categories, standardize, missing_values
            The estimator's parameters of those names. ``standardize``
            applies to DataFrames only.

        Returns
        -------
        TableEncoder

        Raises
        ------
        ValueError
            With ``missing_values="error"``, naming the columns with missing
            values; for a column that is neither numeric nor categorical,
            naming it and the fix.
        """
        X = _as_table(X)
        names = column_names(X)
        categorical = categorical_columns(X, categorical_features)
        numeric_columns = [j for j in range(X.shape[1]) if j not in set(categorical)]
        numeric_values = np.column_stack(
            [_numeric_values(_column(X, j), names[j]) for j in numeric_columns]
        ) if numeric_columns else np.empty((X.shape[0], 0))
        if np.isinf(numeric_values).any():
            bad = [names[numeric_columns[j]]
                   for j in np.flatnonzero(np.isinf(numeric_values).any(axis=0))]
            raise ValueError(f"X contains infinity in {_listed(bad)}; replace it with finite "
                             "values (or NaN, for a missing value).")
        categories = [(j, *_category_values(_column(X, j))) for j in categorical]
        missing = [names[numeric_columns[j]] for j in nan_columns(numeric_values)]
        missing += [names[j] for j, _, mask in categories if mask.any()]
        if missing and missing_values == "error":
            raise missing_values_error(sorted(missing, key=names.index))
        numeric = []
        if numeric_columns:
            imputer = SimpleImputer(strategy="median", add_indicator=True,
                                    keep_empty_features=True).fit(numeric_values)
            indicated = set() if imputer.indicator_ is None else set(imputer.indicator_.features_)
            means = np.zeros(len(numeric_columns))
            scales = np.ones(len(numeric_columns))
            if standardize and isinstance(X, pd.DataFrame):
                imputed = np.where(np.isnan(numeric_values), imputer.statistics_, numeric_values)
                with np.errstate(over="ignore", invalid="ignore"):
                    scaler = StandardScaler().fit(imputed)
                means, scales = scaler.mean_, scaler.scale_
                huge = ~(np.isfinite(means) & np.isfinite(scales))
                if huge.any():
                    raise ValueError(
                        f"X has values too large to standardise in "
                        f"{_listed([names[numeric_columns[j]] for j in np.flatnonzero(huge)])} "
                        "(their mean or variance overflows float64): scale them first, or "
                        "use standardize=False.")
            numeric = [{"column": j, "median": float(imputer.statistics_[i]),
                        "mean": float(means[i]), "scale": float(scales[i]),
                        "indicator": i in indicated}
                       for i, j in enumerate(numeric_columns)]
        entries = []
        for j, values, mask in categories:
            try:
                known = OrdinalEncoder().fit(values[~mask].reshape(-1, 1)).categories_[0] \
                    if (~mask).any() else np.array([], dtype=object)
            except TypeError as exc:
                kinds = sorted({type(v).__name__ for v in values[~mask]})
                raise ValueError(f"Categorical column {names[j]!r} mixes values of types {kinds} "
                                 f"({exc}); convert it to one type first, e.g. "
                                 "X[column].astype(str).") from None
            entry = {"column": j, "categories": [_plain(v) for v in known],
                     "missing": bool(mask.any())}
            entry["encoding"] = ("one_hot" if cls._n_slots(entry) <= one_hot_max_categories
                                 else "embedding")
            entries.append(entry)
        return cls(X.shape[1], numeric, entries)

    # --- encoding --------------------------------------------------------------

    @property
    def embedded(self):
        """The entries of the embedded columns, in the order of their codes."""
        return [entry for entry in self.categorical if entry["encoding"] == "embedding"]

    @property
    def n_dense(self):
        """Width of the part of the input the network reads as it is (all but the codes)."""
        return (len(self.numeric) + sum(entry["indicator"] for entry in self.numeric)
                + sum(self._n_slots(entry) for entry in self.categorical
                      if entry["encoding"] == "one_hot"))

    @property
    def n_columns(self):
        """Width of :meth:`transform`'s output."""
        return self.n_dense + len(self.embedded)

    @property
    def embeddings(self):
        """``(rows, width)`` of the embedding of each embedded column, in code order.

        One row per category (missing values counted) and one for "unknown".
        """
        return [(self._n_slots(entry) + 1, embedding_dim(self._n_slots(entry)))
                for entry in self.embedded]

    def transform(self, X, missing_values="impute"):
        """The network's float32 input for the table ``X``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Columns in the order of ``fit`` (names are checked by the
            estimator before).
        missing_values : {"impute", "error"}, default="impute"

        Returns
        -------
        ndarray of float32, shape (n_samples, n_columns)
        """
        self.build()
        X = _as_table(X)
        names = column_names(X)
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features, but the table encoder was fitted "
                             f"with {self.n_features}.")
        n = X.shape[0]
        out = np.empty((n, self.n_columns), dtype=np.float32)
        position = len(self.numeric)
        missing = []
        for i, entry in enumerate(self.numeric):
            values = _numeric_values(_column(X, entry["column"]), names[entry["column"]])
            absent = np.isnan(values)
            if absent.any():
                missing.append(entry["column"])
            if np.isinf(values).any():
                raise ValueError(f"X contains infinity in {_listed([names[entry['column']]])}; "
                                 "replace it with finite values (or NaN, for a missing value).")
            scaled = (np.where(absent, entry["median"], values) - entry["mean"]) / entry["scale"]
            with np.errstate(over="ignore"):
                out[:, i] = scaled
            if not np.isfinite(out[:, i]).all():
                raise ValueError(
                    f"X has values up to {np.abs(scaled).max():.3g} in magnitude in column "
                    f"{names[entry['column']]!r} once standardised, beyond the range of float32 "
                    "in which sknets computes: scale it first.")
            if entry["indicator"]:
                out[:, position] = absent
                position += 1
        codes_at = self.n_dense
        for entry, ordinal, one_hot in zip(self.categorical, self._ordinal, self._one_hot):
            values, mask = _category_values(_column(X, entry["column"]))
            if mask.any():
                missing.append(entry["column"])
            code = self._codes(entry, ordinal, values, mask)
            if one_hot is None:
                out[:, codes_at] = code
                codes_at += 1
            else:
                width = self._n_slots(entry)
                out[:, position:position + width] = one_hot.transform(code.reshape(-1, 1))
                position += width
        if missing and missing_values == "error":
            raise missing_values_error([names[j] for j in sorted(missing)])
        return out

    def _codes(self, entry, ordinal, values, mask):
        """Codes of a categorical column: its categories 0..k-1, then missing, then unknown."""
        n_known = len(entry["categories"])
        unknown = self._n_slots(entry)
        code = np.full(len(values), unknown, dtype=np.int64)
        if ordinal is not None and (~mask).any():
            try:
                found = ordinal.transform(values[~mask].reshape(-1, 1))[:, 0]
            except TypeError:  # values of a type the categories cannot be compared with
                found = np.full((~mask).sum(), -1.0)
            code[~mask] = np.where(found < 0, unknown, found).astype(np.int64)
        if entry["missing"]:
            code[mask] = n_known
        return code

    # --- plain data ------------------------------------------------------------

    def to_data(self):
        """What the encoder learned as plain JSON data (see :meth:`from_data`)."""
        for entry in self.categorical:
            for value in entry["categories"]:
                if not isinstance(value, _CATEGORY_TYPES) or (
                        isinstance(value, float) and not np.isfinite(value)):
                    raise ValueError(
                        f"Cannot save the categories of column {entry['column']}: {value!r} is "
                        "not a str, bool, int or finite float. Convert the column (e.g. "
                        "X[column].astype(str)) before fit to save the model, or use pickle.")
        return {"n_features": self.n_features,
                "numeric": [dict(entry) for entry in self.numeric],
                "categorical": [{**entry, "categories": list(entry["categories"])}
                                for entry in self.categorical]}

    @classmethod
    def from_data(cls, data):
        """The encoder that :meth:`to_data` described, checked field by field.

        Its encoders are not built yet: call :meth:`build` (``transform``
        does) once the sizes it implies are known to be sound.

        Raises
        ------
        ValueError
            Naming the first field that is not what :meth:`to_data` writes.
        """
        _expect(data, {"n_features", "numeric", "categorical"}, "tables")
        n_features = data["n_features"]
        if not (_is_int(n_features) and n_features >= 1):
            raise ValueError(f"tables.n_features must be a positive int; got {n_features!r}")
        numeric, categorical = data["numeric"], data["categorical"]
        if not (isinstance(numeric, list) and isinstance(categorical, list)):
            raise ValueError("tables.numeric and tables.categorical must be lists")
        for i, entry in enumerate(numeric):
            where = f"tables.numeric[{i}]"
            _expect(entry, {"column", "median", "mean", "scale", "indicator"}, where)
            for key in ("median", "mean", "scale"):
                value = entry[key]
                if not (_is_number(value) and np.isfinite(value)):
                    raise ValueError(f"{where}.{key} must be a finite number; got {value!r}")
            if not entry["scale"] > 0:
                raise ValueError(f"{where}.scale must be positive; got {entry['scale']!r}")
            if not isinstance(entry["indicator"], bool):
                raise ValueError(f"{where}.indicator must be a bool")
        for i, entry in enumerate(categorical):
            where = f"tables.categorical[{i}]"
            _expect(entry, {"column", "categories", "missing", "encoding"}, where)
            values = entry["categories"]
            if not (isinstance(values, list) and all(
                    isinstance(v, _CATEGORY_TYPES) and not (isinstance(v, float)
                                                            and not np.isfinite(v))
                    for v in values)):
                raise ValueError(f"{where}.categories must be a list of str, bool, int or "
                                 "finite float")
            if not isinstance(entry["missing"], bool):
                raise ValueError(f"{where}.missing must be a bool")
            if entry["encoding"] not in ("one_hot", "embedding"):
                raise ValueError(f"{where}.encoding must be 'one_hot' or 'embedding'; got "
                                 f"{entry['encoding']!r}")
            if cls._n_slots(entry) == 0:
                raise ValueError(f"{where} has no category and no missing value")
        columns = [entry["column"] for entry in (*numeric, *categorical)]
        if (len(columns) != n_features or not all(_is_int(c) for c in columns)
                or sorted(columns) != list(range(n_features))):
            raise ValueError(f"tables must describe each of the {n_features} columns exactly "
                             "once")
        return cls(n_features, [dict(e) for e in numeric], [dict(e) for e in categorical],
                   build=False)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _expect(mapping, keys, where):
    if not isinstance(mapping, dict) or set(mapping) != keys:
        raise ValueError(f"{where} must be an object with the keys {sorted(keys)}")


def _is_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


__all__ = ["TableEncoder", "categorical_columns", "column_names",
           "embedding_dim", "missing_values_error", "nan_columns", "needs_encoder",
           "sparse_missing_error"]

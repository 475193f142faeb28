"""Tables as users bring them: categorical and string columns, missing values, standardisation."""

import io
import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import sknets
from sknets import MLPClassifier, MLPRegressor
from sknets._engine.modules import MLP, TabularNetwork
from sknets._input.tables import TableEncoder, embedding_dim

FAST = dict(hidden_layers=(8,), lr=1e-2, max_epochs=3, random_state=0, n_threads=1)


def _table(n=60, seed=0):
    """A small table of every kind of column, with missing values."""
    rng = np.random.RandomState(seed)
    frame = pd.DataFrame({
        "size": rng.normal(10, 3, size=n),
        "color": rng.choice(["red", "green", "blue"], size=n).astype(object),
        "city": pd.Categorical(rng.choice([f"c{i:02d}" for i in range(15)], size=n)),
        "label": pd.Series(rng.choice(["a", "b"], size=n), dtype="string"),
        "flag": rng.rand(n) > 0.5,
        "count": rng.randint(0, 5, size=n),
    })
    frame.loc[::7, "size"] = np.nan
    frame.loc[::9, "color"] = None
    y = np.where((frame["color"] == "red") | frame["flag"], "yes", "no")
    return frame, y


def _encoder(estimator):
    return estimator._fitted.tables


# --- which columns are what -------------------------------------------------------------


def test_columns_are_told_apart_by_dtype():
    frame, y = _table()
    clf = MLPClassifier(**FAST).fit(frame, y)
    tables = _encoder(clf)
    categorical = {frame.columns[e["column"]]: e["encoding"] for e in tables.categorical}
    assert categorical == {"color": "one_hot", "city": "embedding", "label": "one_hot"}
    # Booleans and integers are numeric; only "size" had missing values.
    assert [frame.columns[e["column"]] for e in tables.numeric] == ["size", "flag", "count"]
    assert [e["indicator"] for e in tables.numeric] == [True, False, False]
    assert clf.n_features_in_ == 6
    assert clf.feature_names_in_.tolist() == list(frame.columns)


@pytest.mark.parametrize("selection", [["color", "city", "label"], [1, 2, 3], [-5, -4, -3],
                                       [False, True, True, True, False, False]])
def test_categorical_columns_by_name_index_or_mask(selection):
    frame, y = _table()
    chosen = MLPClassifier(**FAST, categorical_features=selection).fit(frame, y)
    by_dtype = MLPClassifier(**FAST).fit(frame, y)
    assert _encoder(chosen).to_data() == _encoder(by_dtype).to_data()
    np.testing.assert_array_equal(chosen.predict_proba(frame), by_dtype.predict_proba(frame))


def test_numbers_can_be_categories():
    frame, y = _table()
    clf = MLPClassifier(**FAST, categorical_features=["color", "city", "label", "count"])
    clf.fit(frame, y)
    counts = next(e for e in _encoder(clf).categorical if e["column"] == 5)
    assert counts["categories"] == sorted(frame["count"].unique().tolist())
    # An array's columns are categorical only when named by index or mask.
    X = frame[["size", "count"]].to_numpy()
    reg = MLPRegressor(**FAST, categorical_features=[1]).fit(X, frame["size"].fillna(0))
    assert [e["column"] for e in _encoder(reg).categorical] == [1]


@pytest.mark.parametrize("selection, message", [
    (["colour"], r"names the column 'colour', which X lacks; its columns are \['size'"),
    ([9], "holds the index 9, but X has 6 columns"),
    ([True, False], "boolean mask of length 2; X has 6 columns"),
    ([1, 1], "names a column twice"),
    ([1.5], r"must hold column names \(str\) or indices \(int\); got 1.5"),
])
def test_bad_categorical_features(selection, message):
    frame, y = _table()
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**FAST, categorical_features=selection).fit(frame, y)


def test_columns_that_are_neither_numbers_nor_categories_are_refused():
    frame, y = _table()
    with pytest.raises(ValueError, match=r"Column 'color' is not numeric .*mark it categorical"):
        MLPClassifier(**FAST, categorical_features=None).fit(frame, y)
    frame["when"] = pd.Timestamp("2026-01-01")
    with pytest.raises(ValueError, match=r"Column 'when' has dtype datetime64"):
        MLPClassifier(**FAST).fit(frame, y)
    mixed = frame.drop(columns="when").assign(color=["x", 1] * 30)
    with pytest.raises(ValueError, match=r"Categorical column 'color' mixes values of types "
                                         r"\['int', 'str'\]"):
        MLPClassifier(**FAST).fit(mixed, y)


# --- one-hot or embedding ---------------------------------------------------------------


@pytest.mark.parametrize("limit, embedded", [(15, False), (14, True)])
def test_one_hot_up_to_the_limit_then_an_embedding(limit, embedded):
    frame, y = _table()
    frame = frame[["size", "city"]]  # "city" has 15 categories
    clf = MLPClassifier(**FAST, one_hot_max_categories=limit).fit(frame, y)
    if not embedded:
        # Without embedded columns the network is the plain MLP (fused training step).
        assert type(clf.module_) is MLP
        assert clf.module_[0].in_features == 1 + 1 + 15  # size, its indicator, one-hot
        return
    assert type(clf.module_) is TabularNetwork
    (embedding,) = clf.module_.embeddings
    # A row per category and one for "unknown"; min(50, (15 + 1) // 2) = 8 wide.
    assert (embedding.num_embeddings, embedding.embedding_dim) == (16, 8)
    assert clf.module_.mlp[0].in_features == 2 + 8
    start = clf.set_params(max_epochs=1).initialize(frame, y).module_.embeddings[0].weight
    assert embedding.weight.ne(start).any()  # trained with the network


def test_embedding_width_rule():
    assert [embedding_dim(n) for n in (1, 11, 12, 99, 100, 10_000)] == [1, 6, 6, 50, 50, 50]


def test_unknown_categories_at_predict():
    frame, y = _table()
    clf = MLPClassifier(**FAST, one_hot_max_categories=5).fit(frame, y)
    unseen = frame.iloc[:4].copy()
    unseen["color"] = ["purple", "red", None, "red"]
    unseen["city"] = unseen["city"].cat.add_categories(["nowhere"])
    unseen.loc[unseen.index[0], "city"] = "nowhere"
    encoded = _encoder(clf).transform(unseen)
    # One-hot: an unknown category is all zeros; a missing value (seen in fit) has its slot.
    colors = next(e for e in _encoder(clf).categorical if e["column"] == 1)
    n_numeric = 3 + 1
    block = encoded[:, n_numeric:n_numeric + 4]  # blue, green, red, missing
    assert colors["categories"] == ["blue", "green", "red"] and colors["missing"]
    np.testing.assert_array_equal(block, [[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                          [0, 0, 1, 0]])
    # Embedding: an unknown category takes the row after the 15 known ones.
    assert encoded[0, -1] == 15
    assert np.isfinite(clf.predict_proba(unseen)).all()


# --- missing values and scales ----------------------------------------------------------


def test_missing_numbers_are_imputed_with_the_median_and_flagged():
    frame, y = _table()
    clf = MLPClassifier(**FAST, standardize=False).fit(frame, y)
    tables = _encoder(clf)
    size = tables.numeric[0]
    assert size["median"] == frame["size"].median()
    encoded = tables.transform(frame)
    missing = frame["size"].isna().to_numpy()
    np.testing.assert_array_equal(encoded[missing, 0], np.float32(size["median"]))
    np.testing.assert_array_equal(encoded[:, 3], missing)  # the indicator after the numbers
    # A column without missing values in fit is imputed at predict, without an indicator.
    gap = frame.iloc[:3].assign(count=np.nan)
    np.testing.assert_array_equal(tables.transform(gap)[:, 2], np.median(frame["count"]))


def test_missing_values_as_scikit_learn_imputes_them():
    frame, y = _table()
    numeric = frame[["size", "count"]]
    clf = MLPClassifier(**FAST, standardize=False).fit(numeric, y)
    expected = SimpleImputer(strategy="median", add_indicator=True).fit_transform(numeric)
    np.testing.assert_allclose(_encoder(clf).transform(numeric), expected, rtol=1e-6)


def test_arrays_with_missing_values_are_imputed_not_standardised():
    frame, y = _table()
    X = frame[["size", "count"]].to_numpy()
    reg = MLPRegressor(**FAST).fit(X, frame["count"])
    tables = _encoder(reg)
    assert [(e["mean"], e["scale"], e["indicator"]) for e in tables.numeric] == [
        (0.0, 1.0, True), (0.0, 1.0, False)]
    assert reg.module_[0].in_features == 3
    assert np.isfinite(reg.predict(X)).all()


def test_plain_arrays_take_the_path_they_always_took():
    X = np.random.RandomState(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    clf = MLPClassifier(**FAST).fit(X, y)
    assert _encoder(clf) is None and type(clf.module_) is MLP
    as_float32 = MLPClassifier(**FAST).fit(X.astype(np.float32), y)
    np.testing.assert_array_equal(clf.predict_proba(X), as_float32.predict_proba(X))
    # Such a model has no statistics to impute with.
    with pytest.raises(ValueError, match=r"NaN\) in columns \['column 1'\], but the model was "
                                         "fitted on data without any"):
        clf.predict(np.where(np.arange(3) == 1, np.nan, X))


def test_missing_values_error_names_the_columns_and_the_fix():
    frame, y = _table()
    with pytest.raises(ValueError, match=r"X has missing values \(NaN\) in columns \['size', "
                                         r"'color'\]\. Impute them first \(e\.g\. with sklearn"
                                         r"\.impute\.SimpleImputer\), or use "
                                         r"missing_values='impute'"):
        MLPClassifier(**FAST, missing_values="error").fit(frame, y)
    complete = frame.dropna()
    clf = MLPClassifier(**FAST, missing_values="error").fit(complete, y[complete.index])
    with pytest.raises(ValueError, match=r"in columns \['size'\]"):
        clf.predict(frame.iloc[7:8])
    assert clf.__sklearn_tags__().input_tags.allow_nan is False
    assert MLPClassifier().__sklearn_tags__().input_tags.allow_nan is True


def test_infinity_is_refused():
    frame, y = _table()
    frame.loc[3, "size"] = np.inf
    with pytest.raises(ValueError, match=r"X contains infinity in columns \['size'\]"):
        MLPClassifier(**FAST).fit(frame, y)


def test_numeric_columns_of_a_dataframe_are_standardised():
    frame, y = _table()
    frame = frame[["size", "flag", "count"]].dropna()
    clf = MLPClassifier(**FAST).fit(frame, y[frame.index])
    encoded = _encoder(clf).transform(frame)
    np.testing.assert_allclose(encoded.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(encoded.std(axis=0), 1, atol=1e-5)
    raw = MLPClassifier(**FAST, standardize=False).fit(frame, y[frame.index])
    assert _encoder(raw) is None  # nothing to encode: the numbers go in as they are


# --- the user's columns -----------------------------------------------------------------


def test_predict_checks_the_columns_as_scikit_learn_does():
    frame, y = _table()
    clf = MLPClassifier(**FAST).fit(frame, y)
    with pytest.raises(ValueError, match="The feature names should match those that were "
                                         "passed during fit"):
        clf.predict(frame.rename(columns={"size": "weight"}))
    with pytest.raises(ValueError, match="The feature names should match"):
        clf.predict(frame[frame.columns[::-1]])
    with pytest.warns(UserWarning, match="X does not have valid feature names"), \
            pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 6"):
        clf.predict(frame.iloc[:, :5].to_numpy())


def test_warm_start_and_partial_fit_reuse_the_encoder():
    frame, y = _table()
    clf = MLPClassifier(**FAST, warm_start=True).fit(frame, y)
    tables = _encoder(clf)
    other, other_y = _table(seed=1)
    other["color"] = other["color"].replace("red", "yellow")  # a category unseen in the first fit
    clf.fit(other, other_y)
    assert _encoder(clf) is tables
    assert clf.n_epochs_ == 6
    reg = MLPRegressor(**FAST)
    for seed in (0, 1):
        part, _ = _table(seed=seed)
        reg.partial_fit(part, part["count"])
        if seed == 0:
            first = _encoder(reg)
    assert _encoder(reg) is first


def test_validation_data_goes_through_the_encoder_of_the_training_data():
    frame, y = _table()
    valid, valid_y = _table(seed=1)
    clf = MLPClassifier(**FAST).fit(frame, y, validation_data=(valid, valid_y))
    assert clf.history_["valid_loss"].notna().all()
    early = MLPClassifier(**FAST, early_stopping=True).fit(frame, y)
    assert early.history_["valid_accuracy"].notna().all()


def test_a_failed_fit_changes_nothing():
    frame, y = _table()
    clf = MLPClassifier(**FAST).fit(frame, y)
    state, proba = clf._fitted, clf.predict_proba(frame)
    with pytest.raises(ValueError, match="has dtype datetime64"):
        clf.fit(frame.assign(when=pd.Timestamp("2026-01-01")), y)
    with pytest.raises(ValueError, match="missing values"):
        clf.set_params(missing_values="error").fit(frame, y)
    assert clf._fitted is state and clf.n_features_in_ == 6
    np.testing.assert_array_equal(clf.predict_proba(frame), proba)


def test_clone_and_grid_search_on_a_dataframe():
    frame, y = _table(n=90)
    search = GridSearchCV(MLPClassifier(**FAST), {"one_hot_max_categories": [2, 20]}, cv=2)
    search.fit(frame, y)
    assert search.best_params_["one_hot_max_categories"] in (2, 20)
    assert search.predict(frame).shape == (90,)
    assert clone(search.best_estimator_).get_params()["one_hot_max_categories"] in (2, 20)


# --- saving -----------------------------------------------------------------------------


def _saved(estimator):
    buffer = io.BytesIO()
    estimator.save(buffer)
    buffer.seek(0)
    return buffer


def _unseen(frame):
    odd = frame.copy()
    odd["color"] = odd["color"].replace("red", "purple")
    odd.loc[::2, "size"] = np.nan
    odd.loc[::3, "count"] = np.nan
    odd["city"] = odd["city"].cat.add_categories(["nowhere"])
    odd.loc[::4, "city"] = "nowhere"
    return odd


@pytest.mark.parametrize("estimator_class", [MLPClassifier, MLPRegressor])
def test_save_and_load_keep_the_encoder(estimator_class):
    frame, y = _table()
    if estimator_class is MLPRegressor:
        y = frame["count"].to_numpy(dtype=float)
    est = estimator_class(**FAST, one_hot_max_categories=5).fit(frame, y)
    loaded = sknets.load(_saved(est))
    assert type(loaded.module_) is TabularNetwork
    assert _encoder(loaded).to_data() == _encoder(est).to_data()
    odd = _unseen(frame)
    predict = "predict_proba" if estimator_class is MLPClassifier else "predict"
    np.testing.assert_array_equal(getattr(loaded, predict)(odd), getattr(est, predict)(odd))
    document = json.loads(zipfile.ZipFile(_saved(est)).read("model.json"))
    assert document["fitted"]["tables"] == _encoder(est).to_data()
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(getattr(restored, predict)(odd), getattr(est, predict)(odd))


def test_categories_without_a_json_form_are_not_saved():
    frame, y = _table()
    frame["day"] = pd.Categorical([pd.Timestamp("2026-01-01")] * len(frame))
    clf = MLPClassifier(**FAST).fit(frame, y)
    with pytest.raises(ValueError, match="Cannot save the categories of column 6"):
        clf.save(io.BytesIO())


def _tampered(estimator, change):
    """A model file of ``estimator`` whose fitted.tables ``change`` edits in place."""
    return _tampered_fitted(estimator, lambda fitted: change(fitted["tables"]))


def _tampered_fitted(estimator, change):
    """A model file of ``estimator`` whose ``fitted`` section ``change`` edits in place."""
    archive = zipfile.ZipFile(_saved(estimator))
    document = json.loads(archive.read("model.json"))
    change(document["fitted"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("model.json", json.dumps(document))
        out.writestr("weights.safetensors", archive.read("weights.safetensors"))
    buffer.seek(0)
    return buffer


def _set(path, value):
    def change(tables):
        target = tables
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set(["numeric", 0, "scale"], 0.0), r"tables\.numeric\[0\]\.scale must be positive"),
    (_set(["numeric", 0, "median"], "x"), r"numeric\[0\]\.median must be a finite number"),
    (_set(["numeric", 0, "column"], 1), "describe each of the 6 columns exactly once"),
    (_set(["n_features"], 10**18), "describe each of the 10{18} columns exactly once"),
    (_set(["categorical", 0, "categories"], ["a", "a"]), r"categorical\[0\]\.categories "
                                                         "repeats a category"),
    (_set(["categorical", 0, "categories"], [[1]]), "must be a list of str, bool, int"),
    (_set(["categorical", 0, "encoding"], "hash"), "encoding must be 'one_hot' or 'embedding'"),
    (_set(["categorical", 0, "extra"], 1), r"categorical\[0\] must be an object with the keys"),
    # More categories than the file's network was built for: its tensors do not fit.
    (_set(["categorical", 1, "categories"], [f"c{i}" for i in range(40)]), "weights.safetensors"),
])
def test_tampered_encoders_are_refused(change, message):
    frame, y = _table()
    clf = MLPClassifier(**FAST, one_hot_max_categories=5).fit(frame, y)
    with pytest.raises(ValueError, match=f"Refusing to load .*{message}"):
        sknets.load(_tampered(clf, change))


def test_only_the_estimators_that_encode_tables_load_an_encoder():
    frame, y = _table()
    tables = _encoder(MLPClassifier(**FAST).fit(frame, y)).to_data()
    X = np.random.RandomState(0).normal(size=(20, 6))  # as many columns as the table
    autoencoder = sknets.AutoencoderTransformer(hidden_layers=(4,), code_size=2, max_epochs=1,
                                                random_state=0).fit(X)
    with pytest.raises(ValueError, match="AutoencoderTransformer does not encode tables"):
        sknets.load(_with_tables(autoencoder, tables))


def _with_tables(estimator, tables):
    """A model file of ``estimator`` whose fitted.tables is ``tables``."""
    def replace(fitted):
        fitted["tables"] = tables
    return _tampered_fitted(estimator, replace)


def test_the_network_reads_the_encoders_columns():
    frame, y = _table()
    clf = MLPClassifier(**FAST, one_hot_max_categories=5).fit(frame, y)
    width = _encoder(clf).n_columns  # 3 numbers, 1 indicator, 4 + 2 one-hot, 1 code
    assert clf._input_width() == width == 11
    assert clf.module_(torch.zeros(2, width)).shape == (2, 2)
    plain = MLPClassifier(**FAST).fit(np.zeros((4, 3)), [0, 1, 0, 1])
    assert plain._input_width() == 3


def test_the_encoder_data_round_trips():
    frame, _ = _table()
    encoder = TableEncoder.fit(frame, "from_dtype", 5, True, "impute")
    again = TableEncoder.from_data(json.loads(json.dumps(encoder.to_data())))
    odd = _unseen(frame)
    np.testing.assert_array_equal(again.transform(odd), encoder.transform(odd))


# --- real tables (slow) -----------------------------------------------------------------


def _pipeline(estimator, categorical, numeric):
    """The same estimator behind the hand-built ColumnTransformer it replaces."""
    return make_pipeline(make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
         numeric),
        (OneHotEncoder(handle_unknown="ignore"), categorical)), estimator)


def _raw_and_piped(estimator, frame, y, categorical, numeric):
    """Held-out scores of ``estimator`` (default parameters) on the raw table and behind the
    hand-built pipeline, on a 75/25 split with ``random_state=0``."""
    X_train, X_test, y_train, y_test = train_test_split(frame, y, test_size=0.25,
                                                        random_state=0)
    raw = estimator(random_state=0).fit(X_train, y_train).score(X_test, y_test)
    piped = _pipeline(estimator(random_state=0), categorical, numeric)
    return raw, piped.fit(X_train, y_train).score(X_test, y_test)


@pytest.mark.slow
def test_penguins_from_the_raw_table(tabular_data_home):
    frame = pd.read_csv(tabular_data_home / "penguins.csv")
    y = frame.pop("species")
    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
    raw, reference = _raw_and_piped(MLPClassifier, frame, y, ["island", "sex"], numeric)
    assert raw >= 0.95
    assert abs(raw - reference) <= 0.005


@pytest.mark.slow
def test_diamonds_from_the_raw_table(tabular_data_home):
    frame = pd.read_csv(tabular_data_home / "diamonds.csv")
    y = np.log(frame.pop("price"))
    raw, reference = _raw_and_piped(MLPRegressor, frame, y, ["cut", "color", "clarity"],
                                    ["carat", "depth", "table", "x", "y", "z"])
    assert raw >= 0.985
    assert abs(raw - reference) <= 0.005


@pytest.mark.slow
def test_default_from_the_raw_table_scored_by_roc_auc(tabular_data_home):
    # 3.3% of the rows default: the held-out quarter is stratified so that it
    # holds its share of them.
    from sklearn.metrics import roc_auc_score

    frame = pd.read_csv(tabular_data_home / "default.csv")
    y = frame.pop("default")
    X_train, X_test, y_train, y_test = train_test_split(frame, y, test_size=0.25,
                                                        random_state=0, stratify=y)
    params = dict(early_stopping=True, scoring="roc_auc", random_state=0)
    raw = MLPClassifier(**params).fit(X_train, y_train)
    assert raw.history_["valid_roc_auc"].idxmax() + 1 == raw.best_epoch_
    auc = roc_auc_score(y_test, raw.predict_proba(X_test)[:, 1])
    piped = _pipeline(MLPClassifier(**params), ["student"], ["balance", "income"])
    reference = roc_auc_score(y_test, piped.fit(X_train, y_train).predict_proba(X_test)[:, 1])
    assert auc >= 0.95
    assert abs(auc - reference) <= 0.005


def test_the_embedding_module_matches_its_parts():
    torch.manual_seed(0)
    mlp = MLP(2 + 3, (4,), 1)
    net = TabularNetwork(mlp, 2, [(5, 3)])
    x = torch.tensor([[0.5, -1.0, 4.0]])
    expected = mlp(torch.cat([x[:, :2], net.embeddings[0].weight[4:5]], dim=1))
    torch.testing.assert_close(net(x), expected)

"""The preprocessing built from the data contract: a scikit-learn transformer, unfitted.

The boundary between polars and scikit-learn is :func:`to_pandas`, used alike for training,
evaluation, batch prediction and serving. What reaches the model:

- **feature** columns (``role: feature``), in contract order;
- the **time** column (``role: time``) *only as datetime parts* (year, month, day of week,
  hour, ...; never the raw timestamp), and only when it is a ``date``/``datetime`` column.
  Rationale: the time column orders rows for time splits, and its calendar parts are real
  signal (bike sharing: hour of day, weekday, month). A time column of another type is left out.
- never ``id``, ``leakage`` or ``target`` columns, nor any column absent from the contract.

Types at the boundary (:func:`to_pandas`): ``int``/``float``/``bool`` become ``float64`` (missing
is NaN; ``True`` is 1.0), ``str`` becomes ``object`` holding ``str`` values and ``None`` for
missing, ``date``/``datetime`` become ``datetime64`` (missing is NaT).

The preprocessor (:func:`build_preprocessor`) is a :class:`~sklearn.pipeline.Pipeline`:

1. ``custom`` (only when ``features.custom`` is set): :class:`CustomFeatures` applies the user's
   ``module:function`` callables in order, pandas DataFrame in and out. New columns they add
   are used as numeric or categorical features by their dtype.
2. ``columns``: a ``ColumnTransformer`` with one branch per kind of column —
   numbers (impute + missing indicators, scale), booleans (0/1, most frequent + indicator),
   categoricals (missing is its own level ``__missing__``; one-hot with rare-level grouping
   when the contract knows at most ``one_hot_max_levels`` levels, else cross-fitted target
   encoding or ordinal codes), dates (:class:`DatetimeParts`), text (TF-IDF per column: the
   ``features.text.columns`` and the columns the contract marks ``text: true``).
   Unknown categories at prediction time are encoded as the rare level (or all zeros / the
   prior / -1), never an error. Output is dense ``float64`` unless text columns are present.
3. ``select`` (only when ``features.selection.method`` is not ``none``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin

from modelyard.config.schema import FeaturesSection
from modelyard.data.contract import ColumnContract, DataContract, Task, did_you_mean
from modelyard.data.frames import to_pandas as frame_to_pandas
from modelyard.errors import DataError, ModelyardError, name_list

MISSING_LEVEL = "__missing__"
"""The level a missing categorical value is encoded as."""

_NUMERIC = ("int", "float")
_DATES = ("date", "datetime")
_PERIODS = {"month": 12.0, "dayofweek": 7.0, "hour": 24.0, "dayofyear": 365.25}


# --------------------------------------------------------------------------- boundary


def _model_columns(contract: DataContract, exclude: Sequence[str] = ()) -> list[ColumnContract]:
    skip = set(exclude)
    return [
        c
        for c in contract.columns
        if c.name not in skip and (c.role == "feature" or (c.role == "time" and c.type in _DATES))
    ]


def feature_columns(contract: DataContract, *, exclude: Sequence[str] = ()) -> list[str]:
    """The columns the model receives, in contract order: the ``feature`` columns plus a
    ``date``/``datetime`` ``time`` column (used only through its parts), minus ``exclude``
    (e.g. a sample-weight column)."""
    return [c.name for c in _model_columns(contract, exclude)]


def to_pandas(
    df: pl.DataFrame, contract: DataContract, *, exclude: Sequence[str] = ()
) -> pd.DataFrame:
    """The model's input frame: :func:`feature_columns` of ``df``, typed for scikit-learn.

    Other columns of ``df`` are ignored. A missing feature column is a
    :class:`~modelyard.errors.DataError`. See the module docstring for the type mapping.
    """
    cols = _model_columns(contract, exclude)
    present = set(df.columns)
    absent = [c.name for c in cols if c.name not in present]
    if absent:
        raise DataError(
            f"{len(absent):,} feature column(s) of the contract are missing: {name_list(absent)}",
            where="model input",
            expected=f"the columns {name_list(c.name for c in cols)}",
            found=f"the columns {name_list(df.columns)}",
            fix="Pass a frame with every feature column of the contract (values may be null).",
        )
    exprs: list[pl.Expr] = []
    for col in cols:
        e = pl.col(col.name)
        if col.type in (*_NUMERIC, "bool"):
            e = e.cast(pl.Float64, strict=False).fill_nan(None)
        elif col.type == "str":
            e = e.cast(pl.String, strict=False)
        elif col.type == "date":
            e = e.cast(pl.Date, strict=False)
        else:
            e = e.cast(pl.Datetime("us"), strict=False)
        exprs.append(e)
    out = frame_to_pandas(df.select(exprs))  # without pyarrow; as DataFrame.to_pandas()
    for col in cols:  # pandas may turn an all-null String column into float NaN
        if col.type == "str":
            s = out[col.name]
            out[col.name] = s.astype(object).where(s.notna(), None)
    return out


def target_array(df: pl.DataFrame, contract: DataContract) -> np.ndarray:
    """The target column as numpy: ``str`` labels for classification, ``float64`` otherwise."""
    target = contract.target
    if target is None:
        raise ModelyardError(
            "the data contract has no target column",
            where="training",
            fix="Set data.target in modelyard.yaml (and target in the contract).",
        )
    if target not in df.columns:
        raise DataError(
            f"the target column '{target}' is not in the data{did_you_mean(target, df.columns)}",
            where="training",
        )
    s = df.get_column(target)
    if s.null_count():
        raise DataError(
            f"the target column '{target}' has {s.null_count()} missing value(s)",
            where="training",
            fix="Validate the data first; rows with a missing target go to the quarantine.",
        )
    if contract.task == "regression":
        return s.cast(pl.Float64).to_numpy()
    labels: np.ndarray = np.asarray(s.cast(pl.String).to_list(), dtype=object)
    return labels


# --------------------------------------------------------------------------- transformers


def _input_names(X: Any) -> list[str]:
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(np.asarray(X).reshape(len(X), -1).shape[1])]


class DatetimeParts(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Calendar parts of date/datetime columns as float features (NaN where missing).

    ``parts`` among year, month, day, dayofweek (Monday=0), hour, dayofyear; with ``cyclical``
    a sine and cosine of month (period 12), dayofweek (7), hour (24) and dayofyear (365.25)
    are added next to the part. Output names: ``<column>_<part>``, ``<column>_<part>_sin``.

    >>> import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    >>> X = pd.DataFrame({"d": pd.to_datetime(["2012-03-04 05:00"])})
    >>> DatetimeParts(parts=("month", "hour"), cyclical=False).fit_transform(X).tolist()
    [[3.0, 5.0]]
    """

    def __init__(
        self, parts: Sequence[str] = ("year", "month", "dayofweek"), cyclical: bool = True
    ):
        self.parts = parts
        self.cyclical = cyclical

    def fit(self, X: Any, y: Any = None) -> DatetimeParts:
        unknown = [p for p in self.parts if p not in {"year", "day", *_PERIODS}]
        if unknown:
            raise ValueError(f"unknown datetime parts {unknown}")
        self.feature_names_in_ = np.asarray(_input_names(X), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
        columns: list[np.ndarray] = []
        for j in range(frame.shape[1]):
            s = pd.to_datetime(frame.iloc[:, j], errors="coerce")
            for part in self.parts:
                values = getattr(s.dt, part).to_numpy(dtype=np.float64, na_value=np.nan)
                columns.append(values)
                if self.cyclical and part in _PERIODS:
                    angle = 2.0 * math.pi * values / _PERIODS[part]
                    columns.extend([np.sin(angle), np.cos(angle)])
        if not columns:
            return np.empty((len(frame), 0))
        return np.column_stack(columns)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = self.feature_names_in_ if input_features is None else input_features
        out: list[str] = []
        for col in names:
            for part in self.parts:
                out.append(f"{col}_{part}")
                if self.cyclical and part in _PERIODS:
                    out.extend([f"{col}_{part}_sin", f"{col}_{part}_cos"])
        return np.asarray(out, dtype=object)


def _resolve_function(ref: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    module_name, _, func_name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelyardError(
            f"cannot import the module '{module_name}' of the custom feature function '{ref}': "
            f"{type(exc).__name__}: {exc}",
            where="features.custom",
            expected="an importable module (on PYTHONPATH or installed)",
            fix="Check the spelling, or run modelyard from the folder that holds the module.",
        ) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        public = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise ModelyardError(
            f"the module '{module_name}' has no function '{func_name}'"
            f"{did_you_mean(func_name, public)}",
            where="features.custom",
            expected="'module:function' naming a function of that module",
            found=ref,
        )
    return func  # type: ignore[no-any-return]


class CustomFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Applies user functions ``"module:function"`` (pandas DataFrame -> DataFrame) in order.

    ``fit`` imports them and learns the output columns; ``transform`` applies them.
    """

    def __init__(self, functions: Sequence[str] = ()):
        self.functions = functions

    def _apply(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X
        for ref, func in zip(self.functions, self.functions_, strict=True):
            result = func(out.copy())
            if not isinstance(result, pd.DataFrame) or len(result) != len(out):
                raise ModelyardError(
                    f"the custom feature function '{ref}' must return a pandas DataFrame with "
                    "one row per input row",
                    where="features.custom",
                    found=f"{type(result).__name__}"
                    + (f" of {len(result)} rows" if hasattr(result, "__len__") else ""),
                )
            out = result
        return out

    def fit(self, X: pd.DataFrame, y: Any = None) -> CustomFeatures:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        self.functions_ = [_resolve_function(ref) for ref in self.functions]
        self.feature_names_in_ = np.asarray(_input_names(X), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        out = self._apply(X)
        self.feature_names_out_ = np.asarray([str(c) for c in out.columns], dtype=object)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return self._apply(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.feature_names_out_, dtype=object)


class _NewColumns:
    """Column selector: columns not in the contract (added by custom functions) of a kind."""

    def __init__(self, known: Sequence[str], numeric: bool) -> None:
        self.known = list(known)
        self.numeric = numeric

    def __call__(self, X: pd.DataFrame) -> list[str]:
        known = set(self.known)
        out = []
        for name in X.columns:
            if name in known:
                continue
            dtype = X[name].dtype
            is_num = pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
            if is_num == self.numeric and not pd.api.types.is_datetime64_any_dtype(dtype):
                out.append(name)
        return out


def _as_category_text(X: Any) -> Any:
    """Categorical values as strings, missing (None/NaN) as :data:`MISSING_LEVEL`."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    out = frame.astype(object).where(frame.notna(), MISSING_LEVEL)
    return out.map(str).to_numpy(dtype=object)


def _as_text_1d(X: Any) -> np.ndarray:
    """One text column as a 1-D array of strings, missing as the empty string."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
    col = frame.iloc[:, 0]
    text: np.ndarray = col.astype(object).where(col.notna(), "").map(str).to_numpy(dtype=object)
    return text


def _levels(col: ColumnContract) -> float:
    if col.categories is not None:
        return float(len(col.categories))
    if col.distinct is not None:
        return float(col.distinct)
    return math.inf


def _target_encoder_cv(target_type: str, seed: int) -> dict[str, Any]:
    """Seeded shuffled 5-fold cross-fitting for TargetEncoder (a splitter from sklearn 1.9 on)."""
    import sklearn
    from sklearn.model_selection import KFold, StratifiedKFold

    major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
    if (major, minor) < (1, 9):
        return {"cv": 5, "shuffle": True, "random_state": seed}
    splitter = KFold if target_type == "continuous" else StratifiedKFold
    return {"cv": splitter(n_splits=5, shuffle=True, random_state=seed)}


class _AtMost:
    """``max_features`` callable of SelectFromModel: ``min(k, n_features)`` (picklable)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, X: Any) -> int:
        return min(self.k, int(np.shape(X)[1]))


# --------------------------------------------------------------------------- builder


def _scaler(kind: str) -> Any:
    from sklearn.preprocessing import RobustScaler, StandardScaler

    if kind == "standard":
        return StandardScaler()
    if kind == "robust":
        return RobustScaler()
    return "passthrough"


def _numeric_branch(options: FeaturesSection) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    impute = options.numeric.impute
    imputer = (
        SimpleImputer(strategy="constant", fill_value=0.0, add_indicator=True)
        if impute == "zero"
        else SimpleImputer(strategy=impute, add_indicator=True, keep_empty_features=True)
    )
    return Pipeline([("impute", imputer), ("scale", _scaler(options.numeric.scale))])


def _categorical_branches(
    names: list[str], levels: dict[str, float], options: FeaturesSection, task: Task, seed: int
) -> list[tuple[str, Any, list[str]]]:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        OneHotEncoder,
        OrdinalEncoder,
        TargetEncoder,
    )

    cat = options.categorical
    min_freq = cat.rare_min_frequency or None
    low = [n for n in names if levels.get(n, math.inf) <= cat.one_hot_max_levels]
    high = [n for n in names if n not in low]

    def fill() -> Any:
        return FunctionTransformer(_as_category_text, feature_names_out="one-to-one")

    branches: list[tuple[str, Any, list[str]]] = []
    if low:
        onehot = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=min_freq,
            sparse_output=False,
            dtype=np.float64,
        )
        branches.append(("onehot", Pipeline([("fill", fill()), ("encode", onehot)]), low))
    if high:
        encoder: Any
        if cat.high_cardinality == "target":
            target_type = {"binary": "binary", "multiclass": "multiclass"}.get(task, "continuous")
            encoder = TargetEncoder(
                target_type=target_type, **_target_encoder_cv(target_type, seed)
            )
        else:
            encoder = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=-1,
                min_frequency=min_freq,
                dtype=np.float64,
            )
        branches.append(("high_card", Pipeline([("fill", fill()), ("encode", encoder)]), high))
    return branches


def build_preprocessor(
    contract: DataContract,
    options: FeaturesSection,
    *,
    task: Task,
    seed: int = 0,
    exclude: Sequence[str] = (),
) -> Any:
    """The unfitted preprocessing :class:`~sklearn.pipeline.Pipeline` for ``contract``.

    It takes the frame of :func:`to_pandas` (same ``exclude``) and outputs float64 features.
    Mistakes in ``options`` (a text column that is not a text feature, a custom function that
    cannot be imported) raise :class:`~modelyard.errors.ModelyardError` here, before any fit.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    cols = _model_columns(contract, exclude)
    if not cols:
        raise ModelyardError(
            "the data contract has no feature column",
            where="features",
            expected="at least one column with role 'feature'",
            fix="Check data.columns (id / leakage / drop) and the roles in the contract.",
        )
    by_name = {c.name: c for c in cols}
    for name in options.text.columns:
        col = by_name.get(name)
        if col is None or col.type != "str":
            hint = did_you_mean(name, [c.name for c in cols if c.type == "str"])
            raise ModelyardError(
                f"the text column '{name}' is not a text feature column{hint}",
                where="features.text.columns",
                expected="feature columns of type str",
                found=f"{col.type} column" if col else "no such feature column",
            )
    for ref in options.custom:
        _resolve_function(ref)  # fail now, with a clear message
    # Text columns: those of features.text.columns, and those the contract says are free text
    # (inferred near-unique columns of words: TF-IDF, never a giant categorical).
    text_cols = list(
        dict.fromkeys(
            [*options.text.columns, *(c.name for c in cols if c.text and c.type == "str")]
        )
    )

    numeric = [c.name for c in cols if c.type in _NUMERIC]
    booleans = [c.name for c in cols if c.type == "bool"]
    categorical = [c.name for c in cols if c.type == "str" and c.name not in text_cols]
    dates = [c.name for c in cols if c.type == "date"]
    datetimes = [c.name for c in cols if c.type == "datetime"]
    levels = {c.name: _levels(c) for c in cols}

    transformers: list[tuple[str, Any, Any]] = []
    if numeric:
        transformers.append(("num", _numeric_branch(options), numeric))
    if booleans:
        imputer = SimpleImputer(
            strategy="most_frequent", add_indicator=True, keep_empty_features=True
        )
        transformers.append(("bool", imputer, booleans))
    transformers.extend(_categorical_branches(categorical, levels, options, task, seed))
    parts = list(options.datetime.parts)
    for key, names, kind_parts in (
        ("date", dates, [p for p in parts if p != "hour"]),
        ("datetime", datetimes, parts),
    ):
        if names and kind_parts:
            date_steps = [
                (
                    "parts",
                    DatetimeParts(parts=tuple(kind_parts), cyclical=options.datetime.cyclical),
                ),
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", _scaler(options.numeric.scale)),
            ]
            transformers.append((key, Pipeline(date_steps), names))
    for name in text_cols:
        from sklearn.feature_extraction.text import TfidfVectorizer

        text = Pipeline(
            [
                ("fill", FunctionTransformer(_as_text_1d, feature_names_out="one-to-one")),
                ("tfidf", TfidfVectorizer(max_features=options.text.max_features)),
            ]
        )
        transformers.append((f"text_{name}", text, [name]))
    if options.custom:
        known = contract.names
        new_num = Pipeline(
            [
                (
                    "impute",
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                ),
                ("scale", StandardScaler() if options.numeric.scale != "none" else "passthrough"),
            ]
        )
        transformers.append(("new_num", new_num, _NewColumns(known, numeric=True)))
        new_cat = _categorical_branches(["__new__"], {}, options, task, seed)[0][1]
        transformers.append(("new_cat", new_cat, _NewColumns(known, numeric=False)))

    columns = ColumnTransformer(
        transformers,
        remainder="drop",
        sparse_threshold=0.3 if text_cols else 0.0,
        verbose_feature_names_out=True,
    )
    steps: list[tuple[str, Any]] = []
    if options.custom:
        steps.append(("custom", CustomFeatures(functions=tuple(options.custom))))
    steps.append(("columns", columns))
    selector = _selector(options, task, seed)
    if selector is not None:
        steps.append(("select", selector))
    return Pipeline(steps)


def _selector(options: FeaturesSection, task: Task, seed: int) -> Any:
    from functools import partial

    method = options.selection.method
    k = options.selection.k
    if method == "none":
        return None
    if method == "variance":
        from sklearn.feature_selection import VarianceThreshold

        return VarianceThreshold(threshold=1e-8)
    if method == "mutual_info":
        from sklearn.feature_selection import (
            SelectKBest,
            mutual_info_classif,
            mutual_info_regression,
        )

        func = mutual_info_regression if task == "regression" else mutual_info_classif
        return SelectKBest(partial(func, random_state=seed), k=k)
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
    from sklearn.feature_selection import SelectFromModel

    forest_cls = ExtraTreesRegressor if task == "regression" else ExtraTreesClassifier
    forest = forest_cls(n_estimators=100, random_state=seed, n_jobs=1)
    return SelectFromModel(forest, max_features=_AtMost(k), threshold=-np.inf)

"""An exact, DataFrame-free path from checked records to the model's features.

A fitted modelyard model is ``Pipeline([("features", pre), ("model", estimator)])`` where
``pre`` is a ``ColumnTransformer`` (possibly inside a ``Pipeline`` with a ``select`` step).
scikit-learn needs a pandas DataFrame per call and spends milliseconds in the
``ColumnTransformer`` for one row. :func:`compile_features` rebuilds the same computation with
numpy, once, at start-up:

- a branch on **text (categorical) columns** made of column-wise steps (``SimpleImputer``,
  the category-text ``FunctionTransformer``, ``OneHotEncoder``, ``OrdinalEncoder``,
  ``TargetEncoder``) becomes a lookup table per column: the fitted branch itself is run once on
  every value it knows (its categories, its fill values, missing, and one unknown value that
  stands for all others), so each table row *is* scikit-learn's own output;
- a branch on **numeric columns** made of ``SimpleImputer`` (NaN), ``StandardScaler``,
  ``RobustScaler``, ``MaxAbsScaler``, ``MinMaxScaler`` or ``passthrough`` is replayed with the
  same element-wise float64 operations in the same order;
- a feature-selection step keeps the columns of its ``get_support()``.

Anything else (date parts, text TF-IDF, custom functions, sparse output) makes the compiler
return ``None`` and the server uses the pipeline itself. The compiled path is also checked
against the pipeline on probe rows at start-up, and discarded on any difference. The estimator
is the fitted one: the features are bit-identical, so tree models give bit-identical
predictions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.data.contract import DataContract

log = logging.getLogger(__name__)

_UNKNOWN = "\x00modelyard-unknown-category\x00"
_NUMERIC_TYPES = ("int", "float", "bool")

Array = np.ndarray[Any, Any]
Rows = Sequence[dict[str, Any]]


class Unsupported(Exception):
    """A step the compiler does not know how to replay exactly."""


@dataclass
class _Branch:
    columns: list[str]
    encode: Callable[[Rows], Array]


def _cls(obj: Any) -> str:
    return type(obj).__name__


def _shift_scale(center: Array | None, scale: Array | None) -> Callable[[Array], Array]:
    """``(x - center) / scale`` as the scalers compute it (either part may be absent)."""

    def shift_scale(x: Array) -> Array:
        x = x.copy()
        if center is not None:
            x -= center
        if scale is not None:
            x /= scale
        return x

    return shift_scale


def _numeric_step(step: Any) -> Callable[[Array], Array]:
    name = _cls(step)
    if isinstance(step, str) and step == "passthrough":
        return lambda x: x
    if name == "SimpleImputer":
        if not (isinstance(step.missing_values, float) and np.isnan(step.missing_values)):
            raise Unsupported("SimpleImputer with a missing_values other than NaN")
        stats = np.asarray(step.statistics_, dtype=np.float64)
        if np.isnan(stats).any():
            raise Unsupported("SimpleImputer with empty features")
        indicator = step.indicator_ if step.add_indicator else None
        ind_features = None if indicator is None else np.asarray(indicator.features_)
        if indicator is not None and indicator.features != "missing-only":
            raise Unsupported("MissingIndicator(features='all')")

        def impute(x: Array) -> Array:
            mask = np.isnan(x)
            out: Array = np.where(mask, stats, x)
            if ind_features is not None:
                out = np.hstack([out, mask[:, ind_features].astype(np.float64)])
            return out

        return impute
    if name == "StandardScaler":
        return _shift_scale(
            step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None
        )
    if name == "RobustScaler":
        return _shift_scale(
            step.center_ if step.with_centering else None,
            step.scale_ if step.with_scaling else None,
        )
    if name == "MaxAbsScaler":
        mscale = step.scale_

        def maxabs(x: Array) -> Array:
            out: Array = x / mscale
            return out

        return maxabs
    if name == "MinMaxScaler" and not step.clip:
        mul, add = step.scale_, step.min_

        def minmax(x: Array) -> Array:
            x = x * mul
            x += add
            return x

        return minmax
    raise Unsupported(f"numeric step {name}")


_COLUMNWISE = {"SimpleImputer", "OneHotEncoder", "OrdinalEncoder", "TargetEncoder"}


def _known_values(step: Any) -> list[Any]:
    name = _cls(step)
    if name == "SimpleImputer":
        return [v for v in np.asarray(step.statistics_, dtype=object).tolist() if v is not None]
    if name in ("OneHotEncoder", "OrdinalEncoder", "TargetEncoder"):
        return [v for cats in step.categories_ for v in np.asarray(cats, dtype=object).tolist()]
    return []


def _category_steps(transformer: Any) -> list[Any]:
    steps = [s for _, s in transformer.steps] if _cls(transformer) == "Pipeline" else [transformer]
    for step in steps:
        name = _cls(step)
        if name == "FunctionTransformer":
            func = getattr(step, "func", None)
            if func is not None and getattr(func, "__name__", "") != "_as_category_text":
                raise Unsupported(f"FunctionTransformer({getattr(func, '__name__', func)})")
        elif name not in _COLUMNWISE:
            raise Unsupported(f"categorical step {name}")
        if name in ("OneHotEncoder",) and getattr(step, "drop_idx_", None) is not None:
            pass  # drop is per column too: covered by the probes
    return steps


def _compile_categorical(transformer: Any, columns: list[str]) -> Callable[[Rows], Array]:
    """Lookup tables built by running the fitted branch on every value it can tell apart."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    steps = _category_steps(transformer)
    known: list[Any] = [None, "__missing__", _UNKNOWN]
    for step in steps:
        known.extend(v for v in _known_values(step) if isinstance(v, str))
    values = list(dict.fromkeys(known))
    # Base row: the first value each column accepts without error.
    base = {c: values[1] for c in columns}
    probe_rows: list[dict[str, Any]] = [dict(base)]
    index: list[tuple[str, Any]] = []
    for col in columns:
        for value in values:
            row = dict(base)
            row[col] = value
            probe_rows.append(row)
            index.append((col, value))

    def run(rows: list[dict[str, Any]]) -> Array:
        frame = pd.DataFrame(rows, columns=columns, dtype=object)
        out = transformer.transform(frame)
        if hasattr(out, "toarray"):
            raise Unsupported("sparse categorical output")
        return np.asarray(out, dtype=np.float64)

    try:
        outputs = run(probe_rows)
    except Unsupported:
        raise
    except Exception:  # an encoder refusing unknowns: probe row by row, unknown stays out
        kept_rows, kept_index = [probe_rows[0]], []
        for row, key in zip(probe_rows[1:], index, strict=True):
            try:
                run([row])
            except Exception:
                continue
            kept_rows.append(row)
            kept_index.append(key)
        outputs, index = run(kept_rows), kept_index
    base_out = outputs[0]
    # Which output columns does each input column drive?
    block: dict[str, list[int]] = {c: [] for c in columns}
    for (col, _), out in zip(index, outputs[1:], strict=True):
        changed = np.flatnonzero(~((out == base_out) | (np.isnan(out) & np.isnan(base_out))))
        block[col].extend(int(i) for i in changed)
    owned: dict[str, Array] = {c: np.unique(np.asarray(v, dtype=np.intp)) for c, v in block.items()}
    seen = [i for c in columns for i in owned[c].tolist()]
    if len(seen) != len(set(seen)):
        raise Unsupported("categorical branch whose columns are not independent")
    tables: dict[str, dict[Any, Array]] = {c: {} for c in columns}
    for (col, value), out in zip(index, outputs[1:], strict=True):
        tables[col][value] = out[owned[col]]
    width = base_out.shape[0]
    positions = [(c, owned[c], tables[c], tables[c].get(_UNKNOWN)) for c in columns]

    def encode(rows: Rows) -> Array:
        out = np.empty((len(rows), width), dtype=np.float64)
        out[:] = base_out
        for col, pos, table, unknown in positions:
            if pos.size == 0:
                continue
            for i, row in enumerate(rows):
                value = row[col]
                vec = table.get(value)
                if vec is None:
                    if unknown is None or not isinstance(value, str):
                        raise Unsupported(f"no exact encoding of {value!r} in {col}")
                    vec = unknown
                out[i, pos] = vec
        return out

    return encode


def _compile_numeric(transformer: Any, columns: list[str]) -> Callable[[Rows], Array]:
    steps = [s for _, s in transformer.steps] if _cls(transformer) == "Pipeline" else [transformer]
    funcs = [_numeric_step(s) for s in steps]

    def encode(rows: Rows) -> Array:
        x = np.array(
            [[np.nan if (v := row[c]) is None else v for c in columns] for row in rows],
            dtype=np.float64,
        )
        for f in funcs:
            x = f(x)
        return x

    return encode


@dataclass
class CompiledFeatures:
    """Records (typed values by column) -> the model's feature matrix, without pandas."""

    branches: list[_Branch]
    support: Array | None

    def __call__(self, rows: Rows) -> Array:
        parts = [b.encode(rows) for b in self.branches]
        x = np.hstack(parts) if len(parts) != 1 else parts[0]
        if self.support is not None:
            x = x[:, self.support]
        return x


def compile_features(pre: Any, contract: DataContract, features: list[str]) -> CompiledFeatures:
    """Compile the fitted preprocessor ``pre`` (raises :class:`Unsupported`)."""
    steps = [(n, s) for n, s in pre.steps] if _cls(pre) == "Pipeline" else [("columns", pre)]
    support: Array | None = None
    if len(steps) == 2 and hasattr(steps[1][1], "get_support"):
        support = np.asarray(steps[1][1].get_support(), dtype=bool)
        steps = steps[:1]
    if len(steps) != 1 or _cls(steps[0][1]) != "ColumnTransformer":
        raise Unsupported("a preprocessor other than a ColumnTransformer (+ selection)")
    ct = steps[0][1]
    if getattr(ct, "sparse_output_", False):
        raise Unsupported("sparse ColumnTransformer output")
    types = {c.name: c.type for c in contract.columns}
    branches: list[_Branch] = []
    for name, transformer, selected in ct.transformers_:
        if name == "remainder":
            if transformer == "drop":
                continue
            raise Unsupported("a ColumnTransformer remainder")
        if isinstance(transformer, str) and transformer == "drop":
            continue
        if isinstance(selected, list | tuple) and all(isinstance(c, str) for c in selected):
            cols = [str(c) for c in selected]
        else:
            cols = [str(c) for c in np.asarray(features)[ct._transformer_to_input_indices[name]]]
        if not cols:
            continue
        kinds = {types.get(c) for c in cols}
        if kinds <= {"str"}:
            branches.append(_Branch(cols, _compile_categorical(transformer, cols)))
        elif kinds <= set(_NUMERIC_TYPES):
            branches.append(_Branch(cols, _compile_numeric(transformer, cols)))
        else:
            raise Unsupported(f"branch '{name}' on columns of types {sorted(map(str, kinds))}")
    if not branches:
        raise Unsupported("no branch")
    return CompiledFeatures(branches, support)


def same_features(a: Array, b: Array) -> bool:
    """Bit-equal (NaN equal to NaN)."""
    if a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=True))

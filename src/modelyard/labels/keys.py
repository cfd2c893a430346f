"""Row keys: how a label finds its row again, in the queue, in a tool and in the training data.

With key columns (``labels.key``, else ``data.columns.id``) a row's key is its value in
the one key column as text, or the values of several as a JSON list. Without them it is a
digest of the row's feature values (the contract's features, by name),
``h:`` and 16 hex digits: identical rows share a key, and a row keeps its key wherever it is
read from as long as its values read the same as text (``39`` and ``"39"`` do; an integer
read as the float ``39.0`` does not).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import DataError, name_list

if TYPE_CHECKING:
    import polars as pl

KEY = "_key"
"""The name of the key column in the label loop's tables."""


def row_keys(
    frame: pl.DataFrame, key_columns: Sequence[str], features: Sequence[str] = ()
) -> pl.Series:
    """The key of every row of ``frame`` (see the module docstring); null where a key column is."""
    import polars as pl

    if key_columns:
        missing = [c for c in key_columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"the key column(s) {name_list(missing)} are not in the rows",
                where="labels.key", expected=f"columns of {name_list(frame.columns)}",
                fix="Set labels.key (or data.columns.id) to the columns that identify a row.",
            )  # fmt: skip
        if len(key_columns) == 1:
            return frame[key_columns[0]].cast(pl.String).alias(KEY)
        values = [
            key_of(row, key_columns) for row in frame.select(key_columns).iter_rows(named=True)
        ]
        return pl.Series(KEY, values, dtype=pl.String)
    columns = sorted(features or [c for c in frame.columns if not c.startswith("_")])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"the rows lack the feature column(s) {name_list(missing)} their key is made of",
            expected=f"the model's features {name_list(columns)}",
            fix="Give rows with every feature column, or set labels.key to id columns.",
        )
    return pl.Series(
        KEY,
        [content_key(row) for row in frame.select(columns).iter_rows(named=True)],
        dtype=pl.String,
    )


def key_of(row: Mapping[str, Any], key_columns: Sequence[str]) -> str | None:
    """The key of one row given its key columns (``None`` if one of them is null)."""
    values = [row.get(c) for c in key_columns]
    if any(v is None for v in values):
        return None
    if len(values) == 1:
        return str(values[0])
    return json.dumps([_plain(v) for v in values], default=str)


def content_key(row: Mapping[str, Any]) -> str:
    """A digest of a row's values, by column name."""
    text = json.dumps({k: _plain(row[k]) for k in sorted(row)}, default=str, sort_keys=True)
    return "h:" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _plain(value: Any) -> str | None:
    """A value as text (a CSV read as strings and the same row typed give one key); NaN and
    null alike are ``None``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)

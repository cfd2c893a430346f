"""polars <-> pandas without pyarrow.

polars converts through pyarrow (``DataFrame.to_pandas``, and ``polars.from_pandas`` for any
column that is not a plain numpy one), and pyarrow is 150 MB of the install that the pipeline
needs for nothing else. These conversions go through numpy and Python lists instead, for the
types the data contract has (numbers, bool, text, date, datetime): :func:`to_pandas` gives
exactly the frame ``DataFrame.to_pandas()`` gives for them (a test holds them together).
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl


def to_pandas(df: pl.DataFrame) -> Any:
    """``df`` as a pandas DataFrame, as ``df.to_pandas()`` makes it, without pyarrow.

    Floats and integers without nulls keep their numpy dtype; integers with nulls become
    ``float64`` (NaN), booleans with nulls ``object``; text is ``object`` (``None`` for
    missing); dates become ``datetime64[ms]`` and datetimes ``datetime64[<unit>]`` (NaT for
    missing; a time zone is kept). Other types (lists, structs, ...) go through
    ``df.to_pandas()`` (and so need pyarrow).
    """
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    data: dict[str, Any] = {}
    for s in df.iter_columns():
        dtype = s.dtype
        if dtype.is_numeric():
            values = s.to_numpy()
            if s.null_count() and dtype.is_integer():
                values = values.astype(np.float64)
            data[s.name] = pd.Series(values, dtype=values.dtype, name=s.name)
        elif dtype == pl.Boolean:
            data[s.name] = pd.Series(
                s.to_numpy() if not s.null_count() else s.to_list(),
                dtype=bool if not s.null_count() else object,
                name=s.name,
            )
        elif dtype in (pl.String, pl.Null):
            data[s.name] = pd.Series(s.to_list(), dtype=object, name=s.name)
        elif dtype == pl.Date:
            data[s.name] = pd.Series(s.to_numpy().astype("datetime64[ms]"), name=s.name)
        elif isinstance(dtype, pl.Datetime):
            naive = s.dt.convert_time_zone("UTC") if dtype.time_zone is not None else s
            values = pd.Series(naive.dt.replace_time_zone(None).to_numpy(), name=s.name)
            if dtype.time_zone is not None:
                values = values.dt.tz_localize("UTC").dt.tz_convert(dtype.time_zone)
            data[s.name] = values
        else:
            return df.to_pandas()
    return pd.DataFrame(data, index=pd.RangeIndex(df.height), columns=df.columns or None)


def from_pandas(frame: Any) -> pl.DataFrame:
    """A pandas DataFrame as polars: ``polars.from_pandas`` where it can, else (pyarrow
    missing, and a column that is not a plain numpy one) column by column from numpy arrays
    and Python lists."""
    try:
        return pl.from_pandas(frame)
    except ImportError:
        pass
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    columns: list[pl.Series] = []
    for name in frame.columns:
        s = frame[name]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            values = [None if _missing(v) else v for v in s.tolist()]
            columns.append(pl.Series(str(name), values, strict=False))
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            tz = getattr(s.dtype, "tz", None)
            naive = s.dt.tz_convert("UTC").dt.tz_localize(None) if tz is not None else s
            out = pl.Series(str(name), naive.to_numpy())
            if tz is not None:  # the values are UTC instants
                out = out.dt.replace_time_zone("UTC").dt.convert_time_zone(str(tz))
            columns.append(out)
        else:
            columns.append(pl.Series(str(name), s.to_numpy(), nan_to_null=True))  # as polars
    return pl.DataFrame(columns)


def _missing(value: Any) -> bool:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )

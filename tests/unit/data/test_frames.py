"""polars <-> pandas without pyarrow: the same frames as polars' own (pyarrow) conversions.

pyarrow is in the dev group only, as the reference here; the runtime install has none (the
wheel test runs the whole pipeline without it: tests/e2e/test_wheel.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.data import frames

pytest.importorskip("pyarrow", reason="pyarrow is the reference (the dev group has it)")

COLUMN_TYPES: dict[str, tuple[pl.DataType, st.SearchStrategy[Any]]] = {
    "i64": (pl.Int64(), st.integers(-(2**53), 2**53)),
    "i8": (pl.Int8(), st.integers(-128, 127)),
    "f64": (pl.Float64(), st.floats(allow_nan=True, allow_infinity=True)),
    "f32": (pl.Float32(), st.floats(width=32)),
    "bool": (pl.Boolean(), st.booleans()),
    "str": (pl.String(), st.text(max_size=5)),
    "date": (pl.Date(), st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))),
    "dt_us": (pl.Datetime("us"), st.datetimes(dt.datetime(1700, 1, 1), dt.datetime(2200, 1, 1))),
    "dt_ms": (pl.Datetime("ms"), st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1))),
    "dt_tz": (
        pl.Datetime("us", "Europe/Paris"),
        st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2100, 1, 1)),
    ),
}


@st.composite
def polars_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 6))
    names = draw(st.lists(st.sampled_from(sorted(COLUMN_TYPES)), unique=True, max_size=6))
    columns = []
    for name in names:
        dtype, values = COLUMN_TYPES[name]
        nulls = draw(st.booleans())
        cells = draw(st.lists(st.none() | values if nulls else values, min_size=n, max_size=n))
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            series = pl.Series(name, cells, dtype=pl.Datetime("us"))
            columns.append(series.dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Paris"))
        else:
            columns.append(pl.Series(name, cells, dtype=dtype))
    return pl.DataFrame(columns)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polars_frames())
def test_to_pandas_is_polars_own_conversion(df: pl.DataFrame) -> None:
    pd.testing.assert_frame_equal(frames.to_pandas(df), df.to_pandas())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polars_frames())
def test_from_pandas_without_pyarrow_gives_polars_own_frame(df: pl.DataFrame) -> None:
    frame = df.to_pandas()
    expected = pl.from_pandas(frame)
    real = pl.from_pandas

    def no_pyarrow(data: Any, **kw: Any) -> pl.DataFrame:
        if any(str(dtype) == "object" or getattr(dtype, "tz", None) for dtype in data.dtypes):
            raise ImportError("pyarrow is required")  # as polars says without pyarrow
        return real(data, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pl, "from_pandas", no_pyarrow)
        got = frames.from_pandas(frame)
    assert got.columns == expected.columns
    for name in got.columns:  # an all-null object column: no type to recover (Null or String)
        if expected[name].null_count() == expected.height and expected[name].dtype != pl.Float64:
            assert got[name].null_count() == got.height
            continue
        assert got[name].to_list() == expected[name].to_list(), name
        if got[name].dtype != expected[name].dtype:  # only a datetime's unit may differ
            assert isinstance(got[name].dtype, pl.Datetime), (got[name].dtype, expected[name].dtype)

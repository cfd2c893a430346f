"""``cast_columns`` (the cast of contract, validation and scoring) gives exactly what
``parse_expr``'s general rule gives, value for value and failure for failure, whether a column
takes the fast path (plain integers, booleans as most tools write them, ISO datetimes to the
second) or the general rule."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from modelyard.data.contract import cast_columns, is_native, parse_expr

TYPES = ("int", "float", "bool", "date", "datetime", "str")

texts = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["3.0", "1e3", "-0", " 7", "true", "FALSE", "nan", "", "x", "2024-02-30"]),
    st.sampled_from(["True", "false", "TRUE", "False", "tRuE", "falsE", " true", "yes", "1"]),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.datetimes().map(lambda d: d.isoformat()),
    st.dates().map(str),
    st.text(max_size=6),
)


def _reference(df: pl.DataFrame, types: dict[str, str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every column by the general rule, as one expression each (no fast path)."""
    values, failures = [], []
    for name, typ in types.items():
        parsed = parse_expr(pl.col(name), df.schema[name], typ)  # type: ignore[arg-type]
        if not is_native(df.schema[name], typ):  # type: ignore[arg-type]
            failures.append((pl.col(name).is_not_null() & parsed.is_null()).alias(name))
        values.append((parsed.fill_nan(None) if typ == "float" else parsed).alias(name))
    return df.select(values), df.select(failures) if failures else pl.DataFrame()


@settings(max_examples=300, deadline=None)
@given(
    columns=st.lists(
        st.tuples(st.sampled_from(TYPES), st.lists(texts, min_size=0, max_size=12)),
        min_size=1,
        max_size=4,
    ),
    rows=st.integers(0, 12),
)
def test_cast_columns_equals_the_expressions(columns: list[tuple[str, list]], rows: int) -> None:
    data = {
        f"c{i}": (values * rows)[:rows] if values else [None] * rows
        for i, (_, values) in enumerate(columns)
    }
    df = pl.DataFrame(data, schema={name: pl.String for name in data})
    types = {f"c{i}": typ for i, (typ, _) in enumerate(columns)}
    typed, failed = cast_columns(df, types)  # type: ignore[arg-type]
    want_typed, want_failed = _reference(df, types)
    assert_frame_equal(typed, want_typed)
    assert_frame_equal(failed, want_failed)


def test_the_fast_paths_and_their_fallback() -> None:
    df = pl.DataFrame(
        {
            "ts": ["2024-01-02 03:04:05", None, "2024-12-31 23:59:59"],
            # the general rule reads none of these (not ISO), nor may the fast path
            "loose": [" 0999-01-01 00:00:00", "0999-1-1 0:0:0", "2024-01-02 03:04:05"],
            "mixed": ["2024-01-02 03:04:05", "2024-01-02T03:04:05.250", "soon"],
            "n": ["1", "-2", None],
            "b": ["True", "false", None],
            "b_any_case": ["tRue", "FALSE", "yes"],
            "nf": ["1", "2.0", "2.5"],
            "native": [1.5, float("nan"), None],
        }
    )
    types = {
        "ts": "datetime", "loose": "datetime", "mixed": "datetime", "n": "int", "b": "bool",
        "b_any_case": "bool", "nf": "int", "native": "float",
    }  # fmt: skip
    typed, failed = cast_columns(df, types)  # type: ignore[arg-type]
    assert typed.columns == list(types)
    assert failed.columns == ["ts", "loose", "mixed", "n", "b", "b_any_case", "nf"]  # native: none
    assert failed["loose"].to_list() == [True, True, False]
    assert typed["ts"].dt.second().to_list() == [5, None, 59]
    assert failed["mixed"].to_list() == [False, False, True]
    assert typed["n"].to_list() == [1, -2, None]
    assert typed["b"].to_list() == [True, False, None]
    assert typed["b_any_case"].to_list() == [True, False, None]  # the general rule's any case
    assert failed["b_any_case"].to_list() == [False, False, True]
    assert typed["nf"].to_list() == [1, 2, None] and failed["nf"].to_list() == [False, False, True]
    assert typed["native"].to_list() == [1.5, None, None]

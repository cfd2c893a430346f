"""A contract's typical values: medians and most frequent values of the training data (the
prediction server's example record), kept through the contract file."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.data.contract import (
    ColumnContract,
    DataContract,
    contract_from_yaml,
    contract_to_yaml,
    with_typical_values,
)


def _contract(**types: str) -> DataContract:
    return DataContract(
        columns=[ColumnContract(name=n, type=t) for n, t in types.items()]  # type: ignore[arg-type]
    )


@settings(max_examples=60, deadline=None)
@given(
    numbers=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)), max_size=30
    ),
    ints=st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), max_size=30),
    words=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), max_size=30),
)
def test_the_median_is_a_value_of_the_column_and_the_mode_the_most_frequent(
    numbers: list[float | None], ints: list[int | None], words: list[str | None]
) -> None:
    n = max(len(numbers), len(ints), len(words))
    pad = [None] * n
    frame = pl.DataFrame(
        {
            "x": pl.Series((numbers + pad)[:n], dtype=pl.Float64),
            "i": pl.Series((ints + pad)[:n], dtype=pl.Int64),
            "w": pl.Series((words + pad)[:n], dtype=pl.String),
        }
    )
    typical = {
        c.name: c.typical
        for c in with_typical_values(_contract(x="float", i="int", w="str"), frame).columns
    }
    for name, values in (
        ("x", [v for v in numbers if v is not None and math.isfinite(v)]),
        ("i", [v for v in ints if v is not None]),
    ):
        got = typical[name]
        if not values:
            assert got is None
            continue
        assert got in values  # a value the data holds, of the column's type
        assert isinstance(got, float if name == "x" else int)
        below = sum(v <= got for v in values)  # type: ignore[operator]
        above = sum(v >= got for v in values)  # type: ignore[operator]
        assert below >= len(values) / 2 and above >= len(values) / 2
    counts = Counter(v for v in words if v is not None)
    if not counts:
        assert typical["w"] is None
    else:
        best = max(counts.values())
        assert typical["w"] == min(w for w, k in counts.items() if k == best)


def test_every_type_and_the_contract_file_keeps_them() -> None:
    frame = pl.DataFrame(
        {
            "n": [3, 1, 2, 10],
            "f": [0.5, None, 2.5, 1.5],
            "s": ["x", "y", "y", None],
            "b": [True, False, False, True],
            "d": [dt.date(2024, 1, 3), dt.date(2024, 1, 1), dt.date(2024, 1, 2), None],
            "t": [dt.datetime(2024, 5, 1, 12, 30), None, None, None],
            "empty": pl.Series([None, None, None, None], dtype=pl.Float64),
        }
    )
    contract = _contract(
        n="int", f="float", s="str", b="bool", d="date", t="datetime", empty="float", gone="int"
    )
    typical = with_typical_values(contract, frame)
    assert {c.name: c.typical for c in typical.columns} == {
        "n": 2,  # 1 2 | 3 10: the lower middle value, one the data holds
        "f": 1.5,
        "s": "y",
        "b": False,  # a tie: the smaller value
        "d": "2024-01-02",
        "t": "2024-05-01T12:30:00",
        "empty": None,
        "gone": None,  # not in the frame
    }
    text = contract_to_yaml(typical)
    assert "typical: 2024-01-02" in text or "typical: '2024-01-02'" in text
    assert contract_from_yaml(text, source="contract.yaml") == typical
    assert "    typical:" not in contract_to_yaml(contract)  # unset: left out of the file

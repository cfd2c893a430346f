"""Per-part work over a table: one task per part through the executor, results in part order.

A data stage over a multi-part :class:`~modelyard.data.table.Table` submits one task per part
(a module-level function that reads its part, writes its output part itself and returns small
mergeable statistics) through :func:`~modelyard.compute.map_in_order`: at most
``executor.workers + 1`` tasks in flight, so memory stays flat whatever the table's size, and
results in part order, so what the driver merges never depends on completion order or on where
the tasks ran. A single task runs inline: a one-part table costs no executor round trip.

This module holds what spans parts: values repeated across them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.compute import map_in_order

if TYPE_CHECKING:
    import numpy as np

    from modelyard.compute import Executor
    from modelyard.data.contract import ColumnType

_SEED = 0x5EED
"""The seed of the hashes that find candidate repeats across parts (checked on the values)."""


def repeats_across_parts(
    parts: Sequence[Path],
    offsets: Sequence[int],
    columns: Sequence[str],
    types: Mapping[str, ColumnType],
    executor: Executor | None,
) -> list[dict[str, np.ndarray[Any, np.dtype[np.int64]]]]:
    """For each part, by column, the positions (in the part) of the non-missing values seen
    earlier in the table: what ``is_first_distinct`` gives on the whole column, part by part.

    Exact, in memory of 8 bytes a row of one column: a first pass hashes every value (typed
    as ``types`` says; one task per part); the rows whose hash occurs more than once are the
    candidates, whose values a second pass reads (only in the parts that hold some) to tell
    repeats from hash collisions. ``offsets``: the first row of each part, then the total.
    """
    import numpy as np
    import polars as pl

    hashes = list(
        map_in_order(executor, _hash_part, [(str(p), list(columns), dict(types)) for p in parts])
    )
    bounds = np.asarray(offsets[1:], dtype=np.int64)
    candidates: dict[str, np.ndarray[Any, np.dtype[np.int64]]] = {}
    for c in columns:
        rows = (
            pl.concat([h.get_column(c) for h in hashes])
            .to_frame("h")
            .with_row_index("i")
            .filter(pl.col("h").is_not_null() & pl.col("h").is_duplicated())
            .get_column("i")
            .cast(pl.Int64)
            .to_numpy()
        )
        if len(rows):
            candidates[c] = rows
    del hashes
    out: list[dict[str, np.ndarray[Any, np.dtype[np.int64]]]] = [
        {c: np.zeros(0, dtype=np.int64) for c in columns} for _ in parts
    ]
    if not candidates:
        return out
    where = {c: np.searchsorted(bounds, rows, side="right") for c, rows in candidates.items()}
    wanted = [
        {c: rows[where[c] == i] - offsets[i] for c, rows in candidates.items()}
        for i in range(len(parts))
    ]
    todo = [i for i, w in enumerate(wanted) if any(len(p) for p in w.values())]
    values = map_in_order(
        executor, _values_at, [(str(parts[i]), wanted[i], dict(types)) for i in todo]
    )  # per part with candidates: their typed values, in position order
    got = dict(zip(todo, values, strict=True))
    for c, rows in candidates.items():
        series = pl.concat([got[i][c] for i in todo if len(wanted[i][c])])
        repeats = rows[~series.is_first_distinct().to_numpy()]
        which = np.searchsorted(bounds, repeats, side="right")
        for i in range(len(parts)):
            out[i][c] = repeats[which == i] - offsets[i]
    return out


def _typed_columns(path: str, columns: Sequence[str], types: Mapping[str, ColumnType]) -> Any:
    import polars as pl

    from modelyard.data.contract import cast_columns

    present = pl.read_parquet_schema(path)
    df = pl.read_parquet(path, columns=[c for c in columns if c in present])
    cast = {c: t for c, t in types.items() if c in df.columns}
    if cast:
        typed, _ = cast_columns(df, cast)
        df = df.with_columns(typed)
    return df


def _hash_part(path: str, columns: list[str], types: Mapping[str, ColumnType]) -> Any:
    """The task of the first pass: a 64-bit hash of each typed value of ``columns`` (null
    where the value is missing)."""
    import polars as pl

    df = _typed_columns(path, columns, types)
    return df.select(
        pl.when(pl.col(c).is_not_null()).then(pl.col(c).hash(_SEED)).alias(c) for c in columns
    )


def _values_at(
    path: str,
    positions: Mapping[str, np.ndarray[Any, np.dtype[np.int64]]],
    types: Mapping[str, ColumnType],
) -> dict[str, Any]:
    """The task of the second pass: the typed values at ``positions`` (sorted), by column."""
    df = _typed_columns(path, list(positions), types)
    return {c: df.get_column(c).gather(rows) for c, rows in positions.items() if len(rows)}

"""Tables between steps: Parquet datasets written part by part, kept by the artifact store."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.data.table import (
    EXTREMES_KEY,
    Ingested,
    Table,
    TableWriter,
    as_table,
    rejected_schema,
    write_part,
    write_table,
)
from modelyard.engine.store import ArtifactStore, AutoCodec


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(0, 60), batch=st.integers(1, 25))
def test_a_frame_written_in_parts_reads_back_whole_in_order(
    tmp_path_factory: pytest.TempPathFactory, rows: int, batch: int
) -> None:
    frame = pl.DataFrame({"i": list(range(rows)), "s": [f"v{i}" for i in range(rows)]})
    table = as_table(frame, tmp_path_factory.mktemp("t"), batch_rows=batch)
    assert table.num_rows == rows
    assert len(table.parts()) == max(1, -(-rows // batch))
    assert table.collect().equals(frame)
    assert table.scan().collect().equals(frame)
    assert pl.concat(list(table.batches())).equals(frame)
    assert sum(table.part_rows()) == rows
    assert table.columns == ["i", "s"]


def test_an_empty_table_keeps_its_columns(tmp_path: Path) -> None:
    table = write_table([], tmp_path / "t", schema=rejected_schema())
    assert table.num_rows == 0 and table.collect().schema == rejected_schema()


def test_a_writer_that_fails_leaves_no_folder(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    with pytest.raises(RuntimeError), TableWriter(folder) as writer:
        writer.write(pl.DataFrame({"a": [1]}))
        raise RuntimeError("killed")
    assert not folder.exists()


def test_a_writer_refuses_a_folder_that_holds_a_table(tmp_path: Path) -> None:
    as_table(pl.DataFrame({"a": [1]}), tmp_path)
    with pytest.raises(FileExistsError):
        TableWriter(tmp_path)


def test_the_store_keeps_a_table_and_a_dataclass_of_tables(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "w")
    frame = pl.DataFrame({"a": list(range(10))})
    table = as_table(frame, store.scratch("step"), batch_rows=3)
    saved = store.save("step", "k1", table, AutoCodec(), info={})
    loaded = store.load("step", "k1", AutoCodec())
    assert isinstance(loaded, Table) and loaded.folder.is_relative_to(saved.folder)
    assert loaded.collect().equals(frame) and loaded.num_rows == 10
    rejected = write_table([], store.scratch("r"), schema=rejected_schema())
    store.save("ingest", "k2", Ingested(table, rejected), AutoCodec(), info={})
    both = store.load("ingest", "k2", AutoCodec())
    assert both.rows.collect().equals(frame) and both.rejected.num_rows == 0
    # equal tables, equal digests: a cache hit downstream
    again = as_table(frame, store.scratch("step"), batch_rows=3)
    assert (
        store.save("step", "k3", again, AutoCodec(), info={}).meta["digest"]
        == (saved.meta["digest"])
    )


def test_scratch_outlives_this_stores_runs_and_not_the_next_ones(tmp_path: Path) -> None:
    """A step's table may be read from scratch for the rest of the run (a validation that
    stops the run is never saved, yet its quarantine is written out); a later store clears it."""
    store = ArtifactStore(tmp_path / "w")
    folder = store.scratch("validate")
    (folder / "part-00000.parquet").write_bytes(b"x")
    store.clear_tmp()
    assert folder.exists()
    ArtifactStore(tmp_path / "w").clear_tmp()
    assert not folder.exists()


def test_the_part_footers_record_each_numeric_and_temporal_columns_extremes(
    tmp_path: Path,
) -> None:
    import datetime as dt

    frame = pl.DataFrame(
        {
            "x": [float("inf"), 2.5, float("nan"), -1.0, None, 7.0],
            "*": [5, 1, 3, 4, 2, 6],  # a name polars would read as a pattern
            "when": [dt.date(2024, 1, d) for d in (3, 1, 2, 6, 5, 4)],
            "empty": pl.Series([None] * 6, dtype=pl.Float64),
            "money": pl.Series(["1.25", "-2.50", None, "3.00", "0", "9.99"]).cast(
                pl.Decimal(10, 2)
            ),
            "s": list("abcdef"),
            "b": [True, False] * 3,
        }
    )
    table = as_table(frame, tmp_path / "t", batch_rows=2)
    epoch = dt.date(1970, 1, 1)
    assert table.extremes() == {
        "x": (-1.0, 7.0),  # finite values only
        "*": (1.0, 6.0),
        "when": ((dt.date(2024, 1, 1) - epoch).days, (dt.date(2024, 1, 6) - epoch).days),
        "empty": None,
        "money": (-2.5, 9.99),  # the value, not its scaled integer
    }
    assert len(table.parts()) == 3
    part = table.parts()[0]
    assert pl.read_parquet(part).equals(frame.head(2))  # the rows are as written


@pytest.mark.parametrize(
    "footer",
    [
        None,
        "not json",
        '{"x": [1]}',
        '{"x": ["a", "b"]}',
        '{"y": [0, 1]}',
        '{"x": [2, 1]}',
        '{"x": [0, Infinity]}',
        "[]",
    ],
)
def test_a_table_whose_footers_do_not_record_right_extremes_has_none(
    tmp_path: Path, footer: str | None
) -> None:
    """A part another tool wrote (no key), or a key that is broken: no extremes, so a reader
    finds them itself; never an error."""
    table = as_table(pl.DataFrame({"x": [0.0, 1.0, 2.0]}), tmp_path / "t", batch_rows=2)
    last = table.parts()[-1]
    meta = None if footer is None else {EXTREMES_KEY: footer}
    pl.read_parquet(last).write_parquet(last, metadata=meta)
    assert table.extremes() is None


def test_parts_are_written_uncompressed(tmp_path: Path) -> None:
    """A part is a working copy read by every later step: compressing it cost about a tenth
    of the data steps' time (see ``PART_COMPRESSION``)."""
    import pyarrow.parquet as pq

    frame = pl.DataFrame({"x": [1.5, 2.5] * 500, "s": ["a", "bb"] * 500})
    write_part(frame, tmp_path / "part-00000.parquet")
    meta = pq.ParquetFile(tmp_path / "part-00000.parquet").metadata
    codecs = {
        meta.row_group(g).column(c).compression
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    }
    assert codecs == {"UNCOMPRESSED"}
    assert pl.read_parquet(tmp_path / "part-00000.parquet").equals(frame)

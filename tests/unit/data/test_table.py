"""Tables between steps: Parquet datasets written part by part, kept by the artifact store."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.data.table import (
    Ingested,
    Table,
    TableWriter,
    as_table,
    rejected_schema,
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

"""A CSV source's chunks parsed side by side on the executor (issue 13): the same table as the
sequential read, whatever the executor, the chunk size and where quoted line breaks fall.

The tasks assume no record is open where their chunk starts; a chunk that follows one ending
inside a quoted value is parsed again in the driver. These tests put such values across many
chunk cuts so that both paths run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from modelyard.compute import Executor, on_this_machine, open_executor
from modelyard.config.schema import ReadOptions, Source, ValueMap
from modelyard.data.sources import read_source_table
from modelyard.errors import DataError
from tests.conftest import assert_packed
from tests.unit.data.test_ingest_streaming import _files, _write


@pytest.fixture(scope="module")
def pool() -> Iterator[Executor]:
    with open_executor("local", workers=2) as executor:
        yield executor


def _read(source: Source, folder: Path, executor: Executor | None, **kw: Any) -> Any:
    got = read_source_table(source, folder, executor=executor, **kw)
    leftovers = [p.name for p in got.rows.folder.iterdir() if not p.name.startswith("part-")]
    assert leftovers == []  # no staging file of a chunk is left in the table
    return got.rows.collect(), got.rejected.collect(), got.rows.part_rows()


def _quoted_file(path: Path, rows: int = 400) -> Path:
    lines = ["id,note,n"]
    for i in range(rows):
        if i % 7 == 0:
            lines.append(f'{i},"first\nsecond, ""quoted""\nthird",{i}')
        elif i % 53 == 0:
            lines.append(f"{i},ragged")
        elif i % 61 == 0:
            lines.append("   ")
        else:
            lines.append(f"{i},plain {i},{i}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("chunk_bytes", [7, 64, 333, 1 << 20])
def test_the_pool_reads_what_the_sequential_reader_reads(
    tmp_path: Path, pool: Executor, chunk_bytes: int
) -> None:
    source = Source(path=_quoted_file(tmp_path / "t.csv"))
    shipped = open_executor("serial")
    shipped.local_files = False  # as for workers on other machines: the bytes are sent
    executors = {
        "inline": None,
        "serial": open_executor("serial"),
        "pool": pool,
        "shipped": shipped,
    }
    results = {
        name: _read(source, tmp_path / name, executor, batch_rows=37, chunk_bytes=chunk_bytes)
        for name, executor in executors.items()
    }
    rows, rejected, sizes = results["inline"]
    for name in ("serial", "pool", "shipped"):
        assert results[name][0].equals(rows), name
        assert results[name][1].equals(rejected), name
        assert results[name][2] == sizes, name
    assert rows["note"][0] == 'first\nsecond, "quoted"\nthird'
    kept = [i for i in range(400) if i % 7 == 0 or (i % 53 and i % 61)]
    assert rows["id"].to_list() == [str(i) for i in kept]
    ragged = [i for i in range(400) if i % 7 and i % 53 == 0]
    assert rejected["_text"].to_list() == [f"{i},ragged" for i in ragged]
    assert_packed(sizes, 37)


_PROPERTY = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_PROPERTY
@given(
    case=_files(),
    chunk_bytes=st.integers(1, 90),
    batch_rows=st.integers(1, 9),
    gz=st.booleans(),
)
def test_tasks_started_from_any_cut_give_the_sequential_rows(
    tmp_path_factory: pytest.TempPathFactory,
    case: dict[str, Any],
    chunk_bytes: int,
    batch_rows: int,
    gz: bool,
) -> None:
    """Quoted separators and line breaks, blank and ragged lines, LF or CRLF: through the
    serial executor (every run a task, started as if no record were open) the rows and the
    rejected lines are those of the inline read, in the same parts."""
    note(repr(case["text"]))
    folder = tmp_path_factory.mktemp("p")
    path = _write(folder / "in.csv", case["text"], gz)
    source = Source(path=path, read=ReadOptions(separator=case["sep"]))
    kw = {"batch_rows": batch_rows, "chunk_bytes": chunk_bytes}
    inline = _read(source, folder / "inline", None, **kw)
    tasks = _read(source, folder / "tasks", open_executor("serial"), **kw)
    assert tasks[0].equals(inline[0])
    assert tasks[1].equals(inline[1])
    assert tasks[2] == inline[2]
    assert tasks[0].rows() == case["rows"]
    assert tasks[1].select("_line", "_text").rows() == case["rejected"]


def test_a_glob_of_files_normalized_and_dropped_on_the_workers(
    tmp_path: Path, pool: Executor
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for day in range(4):
        body = "".join(f"{day * 100 + i}, {'YES' if i % 2 else 'no'} ,x{i}\n" for i in range(100))
        (folder / f"day{day}.csv").write_text(
            "id,flag,junk\n" + body + ("1,2\n" if day == 2 else "")
        )
    source = Source(path=folder / "*.csv", read=ReadOptions(strip_whitespace=True))
    kw: dict[str, Any] = {
        "normalize": {"flag": ValueMap(lowercase=True)},
        "drop": ["junk"],
        "batch_rows": 150,
        "chunk_bytes": 300,
    }
    rows, rejected, sizes = _read(source, tmp_path / "pool", pool, **kw)
    inline = _read(source, tmp_path / "inline", None, **kw)
    assert rows.equals(inline[0]) and rejected.equals(inline[1]) and sizes == inline[2]
    assert rows.columns == ["id", "flag"]
    assert rows["id"].to_list() == [str(i) for i in range(400)]
    assert set(rows["flag"]) == {"yes", "no"}
    assert rejected.select("_line", "_text").rows() == [(102, "1,2")]
    assert str(folder / "day2.csv") == rejected["_file"][0]
    assert_packed(sizes, 150)


def test_errors_from_a_task_name_the_file_and_line_and_leave_no_table(
    tmp_path: Path, pool: Executor
) -> None:
    body = "".join(f"{i},x\n" for i in range(20_000))  # the bad line past the head (64 KiB)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n" + body.encode() + "été,1\n".encode("latin-1") + body.encode())
    with pytest.raises(DataError) as info:
        read_source_table(Source(path=bad), tmp_path / "o", executor=pool, chunk_bytes=512)
    assert "not valid utf8" in info.value.what
    assert info.value.where == f"{bad}:20002"
    assert not (tmp_path / "o" / "rows").exists()
    # a later file with other columns, found once its header is read
    folder = tmp_path / "glob"
    folder.mkdir()
    (folder / "a.csv").write_text("a,b\n" + body)
    (folder / "b.csv").write_text("a,c\n" + body)
    with pytest.raises(DataError, match="columns differ") as info:
        read_source_table(
            Source(path=folder / "*.csv"), tmp_path / "g", executor=pool, chunk_bytes=512
        )
    assert info.value.where == str(folder / "b.csv")
    assert not (tmp_path / "g" / "rows").exists()
    # a misnamed column in the options, before any task runs
    ok = tmp_path / "ok.csv"
    ok.write_text("a,b\n" + body)
    with pytest.raises(DataError, match=r"data\.columns\.drop"):
        read_source_table(
            Source(path=ok), tmp_path / "d", executor=pool, drop=["nope"], chunk_bytes=512
        )
    # the pool is fine afterwards
    rows, _, _ = _read(Source(path=ok), tmp_path / "after", pool, chunk_bytes=512)
    assert rows.height == 20_000


def test_parts_hold_about_batch_rows_rows_from_the_line_length(tmp_path: Path) -> None:
    """Chunks are sized from the head's line length: about ``batch_rows`` rows each, so a big
    file's parts are not tiny; a file of at most ``batch_rows`` rows is one part."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},{'x' * (i % 13)}\n" for i in range(20_000)))
    _, _, sizes = _read(Source(path=path), tmp_path / "o", None, batch_rows=3000)
    assert_packed(sizes, 3000)
    assert len(sizes) <= 9  # 20,000 rows in parts of at most 3,000: 7 when full
    _, _, one = _read(Source(path=path), tmp_path / "w", None, batch_rows=20_000, chunk_bytes=4096)
    assert one == [20_000]
    frame = pl.read_csv(path, infer_schema=False)
    assert _read(Source(path=path), tmp_path / "x", None, batch_rows=3000)[0].equals(frame)


@pytest.mark.parametrize(
    ("address", "here"),
    [
        (None, True),
        ("tcp://127.0.0.1:8786", True),
        ("localhost:8786", True),
        ("tcp://[::1]:8786", True),
        ("tcp://10.0.0.5:8786", False),
        ("tls://scheduler.example.com:8786", False),
    ],
)
def test_a_cluster_on_another_machine_gets_the_bytes_not_the_path(
    address: str | None, here: bool
) -> None:
    assert on_this_machine(address) is here
    assert open_executor("dask", address=address).local_files is here


def test_files_without_rows_and_a_file_cut_short_are_errors_through_the_pool(
    tmp_path: Path, pool: Executor
) -> None:
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(DataError, match="no data rows"):
        read_source_table(Source(path=header), tmp_path / "h", executor=pool)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="the file is empty"):
        read_source_table(Source(path=empty), tmp_path / "e", executor=pool)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n" + "1\n" * 30_000)
    with pytest.raises(DataError, match="no line can be read as a row"):
        read_source_table(Source(path=ragged), tmp_path / "r", executor=pool, chunk_bytes=4096)
    assert not any((tmp_path / name).joinpath("rows").exists() for name in "her")


def test_a_file_cut_short_after_it_was_cut_into_runs_is_an_error(tmp_path: Path) -> None:
    """The tasks read their runs after the driver cut the file: a file truncated meanwhile
    is an error naming it, not rows silently missing."""
    from modelyard.data import sources

    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(50_000)))
    real = sources.parse_csv_run
    calls: list[int] = []

    def truncating(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # after the first run was read, the file loses its end
            with path.open("r+b") as fh:
                fh.truncate(path.stat().st_size // 2)
        return real(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "parse_csv_run", truncating)
        with pytest.raises(DataError, match="cut short") as info:
            read_source_table(
                Source(path=path), tmp_path / "o", executor=open_executor("serial"),
                batch_rows=5_000,
            )  # fmt: skip
    assert info.value.where == str(path)
    assert not (tmp_path / "o" / "rows").exists()


@pytest.mark.parametrize("chunk_bytes", [5, 40, 200])
def test_a_byte_order_mark_and_skipped_lines_before_records_that_span_the_cuts(
    tmp_path: Path, chunk_bytes: int
) -> None:
    """The first run drops the mark and the lines to skip; a record it leaves open goes on in
    the next run, found at its place in the file (the mark counted)."""
    lines = ["junk line", "id,note"]
    for i in range(60):
        lines.append(f'{i},"a\nb\nc"' if i % 3 == 0 else f"{i},plain")
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode())
    source = Source(path=path, read=ReadOptions(skip_rows=1))
    kw: dict[str, Any] = {"batch_rows": 7, "chunk_bytes": chunk_bytes}
    inline = _read(source, tmp_path / "inline", None, **kw)
    tasks = _read(source, tmp_path / "tasks", open_executor("serial"), **kw)
    assert tasks[0].equals(inline[0]) and tasks[1].equals(inline[1]) and tasks[2] == inline[2]
    assert inline[0].columns == ["id", "note"]
    assert inline[0]["id"].to_list() == [str(i) for i in range(60)]
    assert inline[0]["note"][0] == "a\nb\nc"


def test_a_header_longer_than_a_run_is_read_before_the_runs_that_follow_it(
    tmp_path: Path,
) -> None:
    """A quoted column name with a line break, cut by tiny runs: the first run ends inside
    the header, so the tasks of the next runs started from a header they had not reached;
    their runs are parsed again, and the table is the inline read's."""
    path = tmp_path / "t.csv"
    body = "".join(f"{i},{i * 2}\n" for i in range(300))
    path.write_text('"the\nid","a value\nwith lines"\n' + body)
    kw: dict[str, Any] = {"batch_rows": 20, "chunk_bytes": 6}
    inline = _read(Source(path=path), tmp_path / "inline", None, **kw)
    tasks = _read(Source(path=path), tmp_path / "tasks", open_executor("serial"), **kw)
    assert tasks[0].equals(inline[0]) and tasks[1].equals(inline[1]) and tasks[2] == inline[2]
    assert inline[0].columns == ["the\nid", "a value\nwith lines"]
    assert inline[0].height == 300 and inline[1].height == 0


def test_a_file_of_one_run_is_parsed_in_the_driver(tmp_path: Path) -> None:
    """A small table costs no round trip to a worker (a pool's workers would have to start)."""

    from modelyard.compute.serial import SerialExecutor

    class NoTasks(SerialExecutor):
        def submit(self, fn: Any, /, *args: Any) -> Any:
            raise AssertionError("a task was submitted")

    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(100)))
    rows, _, sizes = _read(Source(path=path), tmp_path / "o", NoTasks())
    assert rows.height == 100 and sizes == [100]
    with pytest.raises(AssertionError, match="a task was submitted"):  # two runs: tasks
        read_source_table(Source(path=path), tmp_path / "p", executor=NoTasks(), chunk_bytes=300)

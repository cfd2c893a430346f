"""Streaming ingestion (issue 13): files read in byte chunks into tables of ``batch_rows``-row
parts, lines that are not rows set aside with their physical line numbers.

The chunk size is forced down to a few bytes so that chunk boundaries fall everywhere: inside
quoted values with line breaks, between a CR and its LF, before the header's end."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from modelyard.config.schema import ReadOptions, Source
from modelyard.data import sources
from modelyard.data.sources import (
    iter_source_batches,
    read_source,
    read_source_rows,
    read_source_table,
)
from modelyard.data.table import Table
from modelyard.errors import DataError
from tests.conftest import assert_packed

_PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_VALUE = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 .-_é日,;|\t\"'\n")), min_size=0, max_size=8
)
_SOLID = st.text(alphabet=st.sampled_from(list("abc19é,;|\"'\n")), min_size=1, max_size=6)


@st.composite
def _files(draw: st.DrawFn) -> dict[str, Any]:
    """A CSV file: header, rows (values with quotes, separators, line breaks), blank lines
    and ragged lines in between; LF or CRLF; with the rows and lines a reader must find."""
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    ncols = draw(st.integers(1, 4))
    names = [f"c{i}" for i in range(ncols)]
    crlf = draw(st.booleans())
    end = "\r\n" if crlf else "\n"
    items = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("row"), st.lists(_VALUE, min_size=ncols, max_size=ncols)),
                st.tuples(st.just("blank"), st.sampled_from(["", "  ", " "])),
                st.tuples(
                    st.just("ragged"),
                    st.lists(
                        _SOLID,
                        min_size=ncols + 1 if ncols == 1 else 1,
                        max_size=ncols + 2,
                    ).filter(lambda r: len(r) != ncols),
                ),
            ),
            min_size=1,
            max_size=40,
        )
    )
    if ncols == 1:  # a one-column row of spaces only is a blank line: not a row
        items = [i for i in items if i[0] != "row" or i[1][0] == "" or i[1][0].strip()]
    if not any(kind == "row" for kind, _ in items):
        items.append(("row", ["x"] * ncols))

    def record(values: list[str]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=sep, lineterminator="\r\n").writerow(values)
        return buffer.getvalue().removesuffix("\r\n")

    text = record(names) + end
    rows: list[tuple[str | None, ...]] = []
    rejected: list[tuple[int, str]] = []
    for kind, payload in items:
        line = text.count("\n") + 1
        if kind == "blank":
            text += str(payload) + end
            continue
        body = record(list(payload))
        text += body + end
        if kind == "row":
            rows.append(tuple(v if v != "" else None for v in payload))
        else:
            rejected.append((line, body))
    return {"sep": sep, "names": names, "text": text, "rows": rows, "rejected": rejected}


def _write(path: Path, text: str, gz: bool) -> Path:
    data = text.encode("utf-8")
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@_PROPERTY
@given(
    case=_files(),
    chunk_bytes=st.integers(1, 120),
    batch_rows=st.integers(1, 12),
    gz=st.booleans(),
)
def test_streamed_rows_and_rejected_lines_are_the_input(
    tmp_path_factory: pytest.TempPathFactory,
    case: dict[str, Any],
    chunk_bytes: int,
    batch_rows: int,
    gz: bool,
) -> None:
    note(repr(case["text"]))
    folder = tmp_path_factory.mktemp("s")
    path = _write(folder / "in.csv", case["text"], gz)
    source = Source(path=path, read=ReadOptions(separator=case["sep"]))
    got = read_source_table(source, folder / "out", batch_rows=batch_rows, chunk_bytes=chunk_bytes)
    rows, rejected = got.rows.collect(), got.rejected.collect()
    # every data line is a row or a rejected line, nothing else, nothing twice
    assert rows.height + rejected.height == len(case["rows"]) + len(case["rejected"])
    assert rows.columns == case["names"]
    assert rows.rows() == case["rows"]
    assert rejected.select("_line", "_text").rows() == case["rejected"]
    assert set(rejected["_file"]) <= {str(path)}
    for (line, _), reason in zip(case["rejected"], rejected["_reasons"], strict=True):
        assert reason.startswith(f"line {line} has ")
    # parts of at most batch_rows rows, packed
    sizes = got.rows.part_rows()
    assert sum(sizes) == got.rows.num_rows == rows.height
    assert_packed(sizes, batch_rows)
    # the same rows as one chunk (the whole-file read) gives
    whole = read_source_table(source, folder / "whole")
    assert whole.rows.collect().equals(rows)
    assert whole.rejected.collect().equals(rejected)
    # and the batches of the batch reader, in order, with the rejected lines beside them
    batches = list(iter_source_batches(source, batch_rows=batch_rows, chunk_bytes=chunk_bytes))
    assert all(b.height == batch_rows for b, _ in batches[:-1])
    assert pl.concat([b for b, _ in batches]).equals(rows)
    assert pl.concat([r for _, r in batches]).equals(rejected)


_PLAIN = st.text(alphabet=st.sampled_from(list("abc19 .é日")), min_size=0, max_size=6)


@_PROPERTY
@example(  # found by Hypothesis: a line of one tab is two empty fields, not a blank line
    items=[("ragged", ["", ""])], sep="\t", chunk_bytes=7, crlf=False, last_end=False
)
@given(
    items=st.lists(
        st.one_of(
            st.tuples(st.just("row"), st.lists(_PLAIN, min_size=3, max_size=3)),
            st.tuples(st.just("blank"), st.sampled_from(["", " ", "  "])),
            st.tuples(st.just("ragged"), st.lists(_PLAIN, min_size=1, max_size=6)),
        ),
        min_size=1,
        max_size=40,
    ),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    chunk_bytes=st.integers(1, 80),
    crlf=st.booleans(),
    last_end=st.booleans(),
)
def test_chunks_without_quotes_parse_without_a_scan_and_read_as_after_one(
    tmp_path_factory: pytest.TempPathFactory,
    items: list[tuple[str, Any]],
    sep: str,
    chunk_bytes: int,
    crlf: bool,
    last_end: bool,
) -> None:
    """A chunk without a quote is parsed in one pass (its lines' fields counted from their
    lengths, not scanned first): the same rows, rejected lines, line numbers and reasons as
    the scan gives, wherever the chunks end, and the one-pass parse is what ran."""
    import unittest.mock

    end = "\r\n" if crlf else "\n"
    body = [sep.join(p) if kind != "blank" else p for kind, p in [*items, ("row", ["1"] * 3)]]
    text = sep.join(["a", "b", "c"]) + end + end.join(body) + (end if last_end else "")
    note(repr(text))
    folder = tmp_path_factory.mktemp("p")
    path = folder / "in.csv"
    path.write_text(text, newline="")
    source = Source(path=path, read=ReadOptions(separator=sep))
    plain = sources._CsvChunks._parse_plain
    calls: list[bool] = []

    def counted(self: Any, data: bytes, line0: int) -> Any:
        piece = plain(self, data, line0)
        calls.append(piece is not None)
        return piece

    with unittest.mock.patch.object(sources._CsvChunks, "_parse_plain", counted):
        got = read_source_table(source, folder / "o", chunk_bytes=chunk_bytes)
    with unittest.mock.patch.object(sources._CsvChunks, "_plain", lambda *_: False):
        scanned = read_source_table(source, folder / "s", chunk_bytes=chunk_bytes)
    with unittest.mock.patch.object(sources, "_ODD_LINES", 1):  # more odd lines: scanned
        fallen = read_source_table(source, folder / "f", chunk_bytes=chunk_bytes)
    for other in (scanned, fallen):
        assert got.rows.collect().equals(other.rows.collect())
        assert got.rejected.collect().equals(other.rejected.collect())
    if text.count("\n") > 2 and chunk_bytes < len(text) // 2:  # a chunk after the header's
        assert any(calls)


def test_a_line_of_a_control_character_is_rejected_not_skipped_in_either_parse(
    tmp_path: Path,
) -> None:
    """Python's ``str.isspace`` calls ``\\x1f`` a space, polars' ``\\S`` does not: a blank line is
    decided by the same polars expression after a scan and after the one-pass parse."""
    import unittest.mock

    path = tmp_path / "in.csv"
    path.write_text("a,b,c\n1,2,3\n\x1f\n \n\t\n4,5,6\n")
    source = Source(path=path)
    got = read_source_table(source, tmp_path / "o", chunk_bytes=8)
    with unittest.mock.patch.object(sources._CsvChunks, "_plain", lambda *_: False):
        scanned = read_source_table(source, tmp_path / "s", chunk_bytes=8)
    for result in (got, scanned):
        assert result.rows.collect().rows() == [("1", "2", "3"), ("4", "5", "6")]
        assert result.rejected.collect()["_line"].to_list() == [3]


@_PROPERTY
@given(
    items=st.lists(
        st.one_of(
            st.tuples(st.just("row"), st.lists(_PLAIN, min_size=2, max_size=2)),
            st.tuples(st.just("stray"), _PLAIN.filter(bool)),  # ",x would close a value
        ),
        min_size=1,
        max_size=30,
    ),
    limit=st.integers(1, 6),
    chunk_bytes=st.integers(1, 80),
    crlf=st.booleans(),
)
def test_a_stray_quote_rejects_its_own_line_whatever_the_chunks(
    tmp_path_factory: pytest.TempPathFactory,
    items: list[tuple[str, Any]],
    limit: int,
    chunk_bytes: int,
    crlf: bool,
) -> None:
    """A quote opening a value that never closes: its line is rejected with its number, every
    other line is a row, wherever the chunks end and however few lines a value may span."""
    end = "\r\n" if crlf else "\n"
    text, rows, strays = "a,b" + end, [], []
    for kind, payload in [*items, ("row", ["1", "2"])]:  # a file with no row is an error
        line = text.count("\n") + 1
        if kind == "row":
            text += ",".join(payload) + end
            rows.append(tuple(v if v != "" else None for v in payload))
        else:
            text += f'"{payload},x' + end
            strays.append((line, f'"{payload},x'))
    note(repr(text))
    folder = tmp_path_factory.mktemp("q")
    path = folder / "in.csv"
    path.write_text(text, newline="")
    import unittest.mock

    with unittest.mock.patch.object(sources, "_MAX_RECORD_LINES", limit):
        got = read_source_table(Source(path=path), folder / "o", chunk_bytes=chunk_bytes)
    assert got.rows.collect().rows() == rows
    rejected = got.rejected.collect()
    assert rejected.select("_line", "_text").rows() == strays
    assert all("a quote that opens a value" in r for r in rejected["_reasons"])


@_PROPERTY
@given(
    lines=st.lists(
        st.text(alphabet=st.sampled_from(list('ab1 ,"')), min_size=0, max_size=8),
        min_size=1,
        max_size=25,
    ),
    limit=st.integers(1, 4),
    chunk_bytes=st.integers(1, 60),
)
def test_any_quoting_reads_the_same_whatever_the_chunks(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], limit: int, chunk_bytes: int
) -> None:
    """Quotes anywhere (balanced or not, inside values or after them): the rows and rejected
    lines do not depend on where the chunks end, and no line goes missing."""
    import unittest.mock

    text = "a,b\n" + "".join(line + "\n" for line in lines) + "1,2\n"
    note(repr(text))
    folder = tmp_path_factory.mktemp("g")
    path = folder / "in.csv"
    path.write_text(text)
    results = []
    with unittest.mock.patch.object(sources, "_MAX_RECORD_LINES", limit):
        for i, size in enumerate((chunk_bytes, 1 << 20)):
            got = read_source_table(Source(path=path), folder / f"o{i}", chunk_bytes=size)
            results.append((got.rows.collect(), got.rejected.collect()))
    (rows, rejected), (whole_rows, whole_rejected) = results
    assert rows.equals(whole_rows)
    assert rejected.drop("_reasons").equals(whole_rejected.drop("_reasons"))
    # the same kind of reason (a chunk sees less of what follows: "on its line" where the
    # whole file says "within 2 lines")
    kinds = [[r.split(" which ")[0] for r in f["_reasons"]] for f in (rejected, whole_rejected)]
    assert kinds[0] == kinds[1]
    # every data line is in a row or a rejected line: the lines that start a record or a
    # rejected line, plus those inside their values, are all the non-blank lines
    spans = sum(str(t).count("\n") + 1 for t in rejected["_text"])
    spans += sum(sum(str(v).count("\n") for v in row if v is not None) + 1 for row in rows.rows())
    assert spans >= sum(1 for line in [*lines, "1,2"] if line.strip())


@_PROPERTY
@given(
    rows=st.integers(1, 60),
    bad=st.sets(st.integers(0, 59), max_size=5),
    sample=st.integers(1, 70),
    batch_rows=st.integers(1, 9),
    seed=st.integers(0, 3),
)
def test_a_sample_of_the_rows_is_read_batch_by_batch(
    tmp_path_factory: pytest.TempPathFactory,
    rows: int,
    bad: set[int],
    sample: int,
    batch_rows: int,
    seed: int,
) -> None:
    """At most ``sample`` distinct rows of the source in file order, the same for a seed
    whatever the batches; the lines that are not rows counted and set aside."""
    folder = tmp_path_factory.mktemp("r")
    lines = [f"{i},{i % 3}" if i not in bad else f"{i}" for i in range(rows)]
    if all(i in bad for i in range(rows)):
        lines.append(f"{rows},0")
    (folder / "in.csv").write_text("a,b\n" + "\n".join(lines) + "\n")
    source = Source(path=folder / "in.csv")
    got = read_source_rows(source, sample=sample, seed=seed, batch_rows=batch_rows)
    total = sum(1 for line in lines if "," in line)
    assert (got.total_rows, got.rejected_lines) == (total, len(lines) - total)
    ids = [int(v) for v in got.rows["a"]]
    assert len(ids) == min(sample, total) and ids == sorted(set(ids))
    assert all("," in lines[i] if i < rows else True for i in ids)
    # the random keys are drawn in row order: the batches do not change the sample
    other = read_source_rows(source, sample=sample, seed=seed, batch_rows=batch_rows + 3)
    assert got.rows.equals(other.rows)
    whole = read_source_rows(source, batch_rows=batch_rows)
    assert whole.rows.height == total and whole.rejected_lines == len(lines) - total


def test_header_comments_skip_rows_bom_and_crlf_across_tiny_chunks(tmp_path: Path) -> None:
    text = (
        "\ufeffjunk first line\r\n# comment\r\n x ; y \r\n1;2\r\n\r\n# more\r\n 3 ;NA\r\n"
        "4;5;6\r\n   \r\n\r\n7\r\n"
    )
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    source = Source(
        path=path,
        read=ReadOptions(
            separator=";", skip_rows=1, comment_prefix="#", strip_whitespace=True,
            null_values=["NA"],
        ),
    )  # fmt: skip
    for chunk_bytes in (1, 2, 3, 5, 8, 13, 1 << 20):
        got = read_source_table(source, tmp_path / f"o{chunk_bytes}", chunk_bytes=chunk_bytes)
        assert got.rows.collect().rows() == [("1", "2"), ("3", None)], chunk_bytes
        assert got.rejected.collect().select("_line", "_text").rows() == [(8, "4;5;6"), (11, "7")]


def test_quoted_line_breaks_on_a_chunk_boundary_keep_physical_line_numbers(
    tmp_path: Path,
) -> None:
    lines = ["id,note"]
    for i in range(200):
        lines.append(f'{i},"first\nsecond, ""quoted""\nthird"' if i % 7 == 0 else f"{i},plain")
    lines.insert(150, "short")  # a ragged line after many multi-line records
    text = "\n".join(lines) + "\n"
    path = tmp_path / "t.csv"
    path.write_text(text)
    expected_line = "\n".join(lines[:150]).count("\n") + 2
    for chunk_bytes in (7, 64, 1000):
        got = read_source_table(
            Source(path=path), tmp_path / f"o{chunk_bytes}", batch_rows=17, chunk_bytes=chunk_bytes
        )
        rows = got.rows.collect()
        assert rows.height == 200
        assert rows["note"][0] == 'first\nsecond, "quoted"\nthird'
        assert rows["id"].to_list() == [str(i) for i in range(200)]
        assert got.rejected.collect().select("_line", "_text").rows() == [(expected_line, "short")]


def test_a_malformed_line_far_down_a_large_file_is_rejected_with_its_line_number(
    tmp_path: Path,
) -> None:
    header = ",".join(f"c{i}" for i in range(21))
    good = ",".join(str(i) for i in range(21))
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write(header + "\n")
        for i in range(2, 20_001):
            fh.write((",".join(str(i) for i in range(19)) if i == 19_999 else good) + "\n")
    got = read_source_table(Source(path=path), tmp_path / "o", batch_rows=3000, chunk_bytes=4096)
    assert got.rows.num_rows == 19_998
    assert len(got.rows.parts()) == 7
    bad = got.rejected.collect()
    assert bad["_line"].to_list() == [19_999]
    assert bad["_reasons"][0].startswith("line 19999 has 19 fields, expected 21 separated by ','")


def test_errors_name_the_physical_line_across_chunks(tmp_path: Path) -> None:
    body = "".join(f"{i},x\n" for i in range(100))
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n" + body.encode() + "été,1\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_source_table(Source(path=path), tmp_path / "o", chunk_bytes=16)
    assert "not valid utf8" in info.value.what
    assert info.value.where == f"{path}:102"
    assert not (tmp_path / "o" / "rows").exists()
    nul = tmp_path / "n.csv"
    nul.write_bytes(b"a,b\n" + body.encode() + b"1,\x00\n")
    with pytest.raises(DataError, match="binary") as info:
        read_source_table(Source(path=nul), tmp_path / "p", chunk_bytes=16)
    assert info.value.found == f"NUL bytes (the first at byte {4 + len(body) + 2})"


def test_an_unbalanced_quote_costs_its_line_not_the_rest_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: the quote's parity held every line after it in one chunk, until an error
    monkeypatch.setattr(sources, "_MAX_RECORD_LINES", 50)
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,2\n3,"open\n' + "".join(f"{i},{i}\n" for i in range(2000)))
    got = read_source_table(Source(path=path), tmp_path / "o", chunk_bytes=64, batch_rows=100)
    rows, rejected = got.rows.collect(), got.rejected.collect()
    assert rows.height == 2001
    assert rows["a"].to_list() == ["1", *map(str, range(2000))]
    assert rejected.select("_line", "_text").rows() == [(3, '3,"open')]
    assert "does not close within 50 lines" in rejected["_reasons"][0]


def test_a_quoted_value_open_at_the_end_of_the_file_rejects_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,2\n3,"open\n4,5\n')
    for chunk in (8, 1 << 20):
        got = read_source_table(Source(path=path), tmp_path / f"o{chunk}", chunk_bytes=chunk)
        assert got.rows.collect().rows() == [("1", "2"), ("4", "5")]
        rejected = got.rejected.collect()
        assert rejected["_line"].to_list() == [3]
        assert "before the end of the file" in rejected["_reasons"][0]


def test_sample_streams_and_equals_the_whole_frame_sample(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i % 7}\n" for i in range(500)))
    source = Source(path=path)
    for n, seed, batch_rows in ((1, 0, 7), (37, 3, 5), (499, 1, 64), (500, 2, 9), (900, 0, 50)):
        expected = read_source(source, sample=n, seed=seed)
        got = read_source_table(
            source, tmp_path / f"o{n}", sample=n, seed=seed, batch_rows=batch_rows, chunk_bytes=97
        )
        assert got.rows.collect().equals(expected)
        assert got.rows.num_rows == min(n, 500)
        assert_packed(got.rows.part_rows(), batch_rows)
        assert sorted(p.name for p in (tmp_path / f"o{n}").iterdir()) == ["rejected", "rows"]


def test_sample_draws_over_rows_and_rejected_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" if i % 10 else f"{i}\n" for i in range(400)))
    got = read_source_table(Source(path=path), tmp_path / "o", sample=100, seed=5, batch_rows=16)
    rows, bad = got.rows.collect(), got.rejected.collect()
    assert rows.height + bad.height == 100
    assert 0 < bad.height < 30  # about 10 of 100, never all 40 rejected lines of the file
    assert rows["a"].cast(pl.Int64).is_sorted() and bad["_line"].is_sorted()


def test_parquet_is_read_in_slices(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"a": list(range(1000)), "b": [f" v{i % 5} " for i in range(1000)], "c": [1.5] * 1000}
    )
    frame.write_parquet(tmp_path / "t.parquet", row_group_size=100)
    got = read_source_table(
        Source(path=tmp_path / "t.parquet", read=ReadOptions(strip_whitespace=True)),
        tmp_path / "o",
        batch_rows=64,
    )
    assert got.rows.part_rows() == [64] * 15 + [40]
    assert got.rows.collect().equals(frame.with_columns(pl.col("b").str.strip_chars()))
    assert got.rejected.num_rows == 0


def test_ndjson_in_chunks_with_bad_lines_and_types_that_change(tmp_path: Path) -> None:
    lines = [json.dumps({"a": i, "b": "x"}) for i in range(50)]
    lines[10] = '{"a": 10, "b": '  # cut short
    lines[20] = "[1, 2]"  # not an object
    lines[30] = json.dumps({"a": 30.5, "b": "y", "c": True})  # a float and a new key, late
    (tmp_path / "t.ndjson").write_text("\n".join(lines) + "\n\n")
    got = read_source_table(
        Source(path=tmp_path / "t.ndjson"), tmp_path / "o", batch_rows=8, chunk_bytes=40
    )
    rows = got.rows.collect()
    assert rows.height == 48
    assert rows.schema == pl.Schema({"a": pl.Float64, "b": pl.String, "c": pl.Boolean})
    assert rows["c"].to_list().count(True) == 1
    bad = got.rejected.collect()
    assert bad.select("_line", "_text").rows() == [(11, lines[10]), (21, lines[20])]
    assert "not a JSON object" in bad["_reasons"][1]


def test_sql_chunks_stream_into_parts_with_one_schema(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("CREATE TABLE t (id INTEGER, note TEXT)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?)", [(i, None if i < 10 else f"n{i}") for i in range(25)]
        )
    source = Source.model_validate(
        {"sql": {"url": "sqlite:///app.db", "table": "t", "chunk_size": 4}},
        context={"base_dir": tmp_path},
    )
    got = read_source_table(source, tmp_path / "o", batch_rows=5)
    assert got.rows.part_rows() == [5] * 5
    schemas = {str(pl.read_parquet_schema(p)) for p in got.rows.parts()}
    assert len(schemas) == 1  # the all-null first chunks are cast like the later ones
    assert got.rows.collect().equals(read_source(source))


def test_iter_source_batches_yields_rejected_lines_with_their_batch(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(10)) + "bad\n")
    batches = list(iter_source_batches(Source(path=path), batch_rows=4, chunk_bytes=8))
    assert [b.height for b, _ in batches] == [4, 4, 2]
    assert pl.concat([r for _, r in batches])["_line"].to_list() == [12]
    assert batches[-1][1]["_line"].to_list() == [12]


def test_a_table_of_one_part_is_the_whole_frame(shared_data: Path, tmp_path: Path) -> None:
    source = Source(path=shared_data / "titanic.csv")
    got = read_source_table(source, tmp_path / "o")
    assert isinstance(got.rows, Table) and len(got.rows.parts()) == 1
    assert got.rows.collect().equals(read_source(source))
    assert got.rejected.num_rows == 0 and got.rejected.columns == [
        "_file", "_line", "_text", "_reasons"
    ]  # fmt: skip

"""Ingestion of local files (CSV, Parquet, JSON, NDJSON; single files or globs) and of the
datasets bundled with scikit-learn.

This module is the ingestion boundary, so unlike the other stage functions it reads files.
Everything a user can get wrong (a missing file, a ragged line, a wrong encoding, a binary file,
a misnamed column, ...) raises :class:`~modelyard.errors.DataError` saying what, where (file and
line when known), what was expected, what was found and how to fix it; no polars or pyarrow
traceback escapes for bad input.

Decisions:

* CSV files (and ``.data``/``.test``/``.txt``/``.tsv``, gzipped or not) are read with **every
  column as a string**, so the quarantine can show the original values; typing happens later, in
  validation against the data contract. ``read.dtypes`` and ``read.parse_dates`` are *hints* for
  that step: their columns must exist, but they stay strings here. Parquet and JSON keep their
  native types.
* The empty string and every ``read.null_values`` entry become null, after ``strip_whitespace``
  (so ``" ?"`` in a ``", "``-separated file is a null when ``?`` is a null value).
* Blank (or whitespace-only) lines are skipped, wherever they are. A line with more or fewer
  fields than the header (or an NDJSON line that is not a JSON object) is not a row: the
  streaming readers (:func:`read_source_table`, :func:`iter_source_batches`) hand it back as a
  *rejected line* (file, physical line number, text, reason) for the quarantine, and read on;
  the whole-frame readers (:func:`read_source`, :func:`read_file`) raise a :class:`DataError`
  naming it. A file where no line is a row is an error either way (a wrong separator).
* Streaming: text files are read in chunks of :data:`CHUNK_BYTES` cut at the end of a line
  outside quotes (quote parity), gzip decompressed on the fly; each chunk is parsed with the
  rules above, line numbers running on across chunks. A chunk's lines are scanned (fields
  counted, quoting checked) before polars parses it, except in a chunk without quotes: there
  polars parses first, and a line's fields are counted from its length and its values'
  lengths (:meth:`_CsvChunks._parse_plain`). Parquet is read in slices of
  ``batch_rows`` rows (``scan_parquet``), SQL in the driver's chunks; a JSON array, a bundled
  dataset and an ingested dataset are read whole. Memory is bounded by the chunk size and
  ``batch_rows``, not by the input's size.
* ``read.columns`` names the columns of a file without a header (required then) and renames them
  otherwise; the count must match the file's fields.
* CSV-only options (separator, header, skip_rows, encoding, comment prefix) are ignored for
  Parquet and JSON; ``columns``, ``strip_whitespace`` and ``null_values`` apply to every format.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import difflib
import gzip
import hashlib
import io
import json
import os
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from modelyard.config.schema import ReadOptions, Source, TestSource, ValueMap, is_url
from modelyard.data import remote
from modelyard.data.contract import Task
from modelyard.data.table import (
    DEFAULT_BATCH_ROWS,
    Ingested,
    Table,
    TableWriter,
    rejected_schema,
    write_part,
)
from modelyard.errors import DataError, name_list

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np
    import polars as pl

    from modelyard.compute import Executor
else:
    from modelyard.data.lazy import numpy as np
    from modelyard.data.lazy import polars as pl

__all__ = [
    "describe_rejected",
    "excel_sheets",
    "file_format",
    "fingerprint_files",
    "fingerprint_source",
    "infer_task",
    "iter_source_batches",
    "read_file",
    "read_file_rows",
    "read_source",
    "read_source_rows",
    "read_source_table",
    "read_test",
    "read_test_table",
    "sniff_csv",
    "source_files",
    "unique_names",
]

FileFormat = Literal["csv", "parquet", "json", "ndjson", "excel"]
Location = Path | str
"""A local file, or the URL of a remote one (``s3://bucket/key``)."""

_CSV_SUFFIXES = {".csv", ".data", ".test", ".txt", ".tsv"}
_FORMAT_BY_SUFFIX: dict[str, FileFormat] = {
    **{s: "csv" for s in _CSV_SUFFIXES},
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
    **{s: "excel" for s in (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")},
}
_GLOB_CHARS = re.compile(r"[*?\[]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
_QUOTE = '"'
_CHUNK = 1 << 20
CHUNK_BYTES = 16 << 20
"""Bytes of a text file read and parsed at a time (cut at the end of a record)."""
PART_BYTES = 64 << 20
"""The most bytes of a CSV file that one task parses (:func:`read_source_table`): a run of
lines holds about ``batch_rows`` rows, and at most this."""
_BUILTIN_LOADERS = {
    "breast_cancer": "load_breast_cancer",
    "iris": "load_iris",
    "wine": "load_wine",
    "diabetes": "load_diabetes",
}
_MAX_CLASSES = 20
"""An integer target with more distinct values than this is a regression target."""
_MAX_CLASS_FRACTION = 0.05
"""... and so is one whose distinct values exceed this fraction of the rows."""


# =========================================================================== public API


def read_source(
    source: Source,
    *,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
    sample: int | None = None,
    seed: int = 0,
) -> pl.DataFrame:
    """Read a source (a file, a glob of files, or a bundled dataset) into one DataFrame.

    Steps, in order: read every file (CSV as strings, see the module docstring), concatenate
    (all files must have the same columns), apply ``normalize`` per column, remove the ``drop``
    columns, then keep a seeded random sample of ``sample`` rows (all rows when ``sample`` is at
    least the row count; the sample keeps the file order). Raises :class:`DataError` for every
    problem in the data or the options, including a line that cannot be read as a row (this
    whole-table reader has nowhere to put it: :func:`read_source_table` and
    :func:`iter_source_batches` hand such lines back as rejected lines instead).

    It reads through the same streaming reader as :func:`read_source_table`, so both give the
    same rows; only the result is held whole.
    """
    frames, rejected = _collect(_stream_source(source, normalize, drop))
    if rejected is not None:
        raise _rejected_error(rejected)
    df = _concat_rows(frames, _source_where(source))
    if sample is not None:
        df = _apply_sample(df, sample, seed)
    return df


@dataclass(frozen=True)
class SourceRows:
    """Rows of a source read as ingest reads it: the lines that are not rows set aside."""

    rows: pl.DataFrame
    """The rows (all of them, or a seeded sample), in file order."""
    total_rows: int
    """Rows in the source."""
    rejected_lines: int
    """Lines that could not be read as rows (ingest quarantines them)."""


_SAMPLE_KEY, _SAMPLE_ROW = "__modelyard_sample_key", "__modelyard_sample_row"


def read_source_rows(
    source: Source,
    *,
    sample: int | None = None,
    seed: int = 0,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> SourceRows:
    """The source's rows, with the lines that are not rows counted and set aside as ingest
    does (:func:`read_source` raises on the first). With ``sample``: a seeded sample of at
    most that many rows in file order, read in memory bounded by the sample and one batch
    (the ``sample`` rows of smallest random key, kept batch by batch)."""
    import numpy as np

    if sample is not None and sample < 1:
        raise DataError(
            "the sample size must be positive", expected="an integer >= 1", found=str(sample)
        )
    rng = np.random.default_rng(seed)
    kept: list[pl.DataFrame] = []
    total = rejected = 0
    batches = iter_source_batches(source, normalize=normalize, drop=drop, batch_rows=batch_rows)
    for batch, bad in batches:
        rejected += bad.height
        if batch.height == 0:
            continue
        if sample is not None:
            kept.append(
                batch.with_columns(
                    pl.Series(_SAMPLE_KEY, rng.random(batch.height)),
                    pl.int_range(total, total + batch.height, dtype=pl.Int64).alias(_SAMPLE_ROW),
                )
            )
        else:
            kept.append(batch)
        total += batch.height
        if sample is not None and sum(f.height for f in kept) > sample:
            both = _concat_rows(kept, _source_where(source))
            kept = [both.sort(_SAMPLE_KEY).head(sample)]
    if not kept:
        return SourceRows(pl.DataFrame(), 0, rejected)
    rows = _concat_rows(kept, _source_where(source))
    if sample is not None:
        rows = rows.sort(_SAMPLE_ROW).drop(_SAMPLE_KEY, _SAMPLE_ROW)
    return SourceRows(rows, total, rejected)


def read_source_table(
    source: Source,
    folder: Path,
    *,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
    sample: int | None = None,
    seed: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    chunk_bytes: int = PART_BYTES,
    executor: Executor | None = None,
) -> Ingested:
    """Read a source as :func:`read_source` does, streamed into a table in ``folder`` (parts
    of about ``batch_rows`` rows, at most), in memory bounded by ``chunk_bytes`` and
    ``batch_rows`` whatever the input's size.

    CSV files are cut into runs of lines of about ``batch_rows`` rows (at most ``chunk_bytes``)
    that tasks on ``executor`` parse side by side, each writing its parts (in this process
    when ``executor`` is ``None``); the result does not depend on the executor. Other formats
    are read here, ``batch_rows`` rows at a time.

    A line that cannot be read as a row (more or fewer fields than the header, a malformed JSON
    line) does not stop the read: it goes to :attr:`Ingested.rejected` with its file, physical
    line number, text and reason. Only when no line of a file is a row is that a
    :class:`DataError` (a wrong separator, most likely).

    ``sample``: a seeded random sample of that many records, drawn over the rows and the
    rejected lines together (rows first, then rejected lines), keeping the file order. With no
    rejected line the rows are exactly :func:`read_source`'s sample. The whole input is
    streamed to disk first, then the sample is taken part by part.
    """
    _check_sample(sample)
    prefix = "all-" if sample is not None else ""
    csv_files = _csv_files(source)
    if csv_files is not None:
        rows, rejected = _read_csv_table(
            *csv_files, source, folder, normalize=normalize, drop=drop, prefix=prefix,
            batch_rows=batch_rows, chunk_bytes=chunk_bytes, executor=executor,
        )  # fmt: skip
    else:
        pieces = _stream_source(
            source, normalize, drop, batch_rows=batch_rows,
            chunk_bytes=min(chunk_bytes, CHUNK_BYTES), tmp=folder,
        )  # fmt: skip
        rows, rejected = _write_ingested(pieces, folder, prefix=prefix, batch_rows=batch_rows)
    if sample is None:
        return Ingested(rows, rejected)
    return _sample_ingested(rows, rejected, folder, sample, seed, batch_rows)


def read_test_table(
    test: TestSource,
    train: Source,
    folder: Path,
    *,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
    chunk_bytes: int = PART_BYTES,
    executor: Executor | None = None,
) -> Ingested:
    """:func:`read_test` streamed into a table in ``folder``, as :func:`read_source_table`."""
    return read_source_table(
        _test_source(test, train), folder, normalize=normalize, drop=drop,
        batch_rows=batch_rows, chunk_bytes=chunk_bytes, executor=executor,
    )  # fmt: skip


def iter_source_batches(
    source: Source,
    *,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """The source's rows, ``batch_rows`` at a time in input order, in constant memory; each
    with the lines read since the previous batch that are not rows (columns as
    :data:`~modelyard.data.table.REJECTED_SCHEMA`). Every batch but the last has exactly
    ``batch_rows`` rows; the last may have none when the input ends with rejected lines.

    Column types can differ between batches of a Parquet glob or a SQL result (a column that is
    all null in one chunk); CSV columns are strings throughout.
    """
    batcher = _Rebatcher(batch_rows)
    pending: list[pl.DataFrame] = []
    schema: pl.Schema | None = None
    pieces = _stream_source(source, normalize, drop, batch_rows=batch_rows, chunk_bytes=chunk_bytes)
    for rows, rejected in pieces:
        if rejected is not None:
            pending.append(rejected)
        if rows is not None:
            schema = rows.schema
            for batch in batcher.add(rows):
                yield batch, _concat_rejected(pending)
                pending = []
    last = batcher.flush()
    if last is not None or pending:
        rows_last = last if last is not None else pl.DataFrame(schema=schema)
        yield rows_last, _concat_rejected(pending)


def _test_source(test: TestSource, like: Source) -> Source:
    merged = {**like.read.model_dump(), **test.read}
    try:
        options = ReadOptions.model_validate(merged)
    except ValueError as exc:
        raise DataError(
            "the read options of the test file are invalid",
            where=str(test.path),
            found=str(exc).splitlines()[0],
            fix="Check data.test.read in modelyard.yaml.",
        ) from None
    return Source(
        path=test.path,
        format=test.format,
        read=options,
        storage_options=like.storage_options if is_url(test.path) else {},
    )


def read_test(
    test: TestSource,
    like: Source,
    *,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
) -> pl.DataFrame:
    """Read an explicit hold-out file with the read options of ``like`` (the training source),
    overridden key by key by ``test.read``; then ``normalize`` and ``drop`` as for the source.
    """
    return read_source(_test_source(test, like), normalize=normalize, drop=drop)


def source_files(path_or_glob: Path | str) -> list[Path]:
    """The files a source path names: the file itself, or the files matching a glob, sorted.

    Raises :class:`DataError` when the file does not exist, is a directory, or when the glob
    matches no file.
    """
    text = str(path_or_glob)
    if _URL.match(text):
        raise DataError(
            "remote sources are not supported yet",
            where=text,
            expected="a local file or glob",
            fix="Download the file and point data.source.path at the local copy.",
        )
    path = Path(text).expanduser()
    if _GLOB_CHARS.search(text):
        base, pattern = _split_glob(path)
        matches = sorted(p for p in base.glob(pattern) if p.is_file()) if base.is_dir() else []
        if not matches:
            raise DataError(
                "the glob matches no file",
                where=text,
                expected="at least one matching file",
                found=f"nothing under {base}" if base.is_dir() else f"no folder {base}",
                fix="Check the pattern and the folder (relative paths start at modelyard.yaml's "
                "folder).",
            )
        return matches
    if path.is_dir():
        raise DataError(
            "the path is a directory, not a file",
            where=text,
            expected="a data file or a glob",
            found="a directory",
            fix=f"Name a file in it, or use a glob such as {path / '*.csv'}.",
        )
    if not path.exists():
        hint = _did_you_mean_file(path)
        raise DataError(
            "the file does not exist",
            where=text,
            fix=(f"Did you mean {hint}? " if hint else "")
            + "Check the path (relative paths start at modelyard.yaml's folder).",
        )
    return [path]


def read_file(
    location: Path | str,
    *,
    format: str = "auto",
    read: ReadOptions | None = None,
    fs: Any = None,
) -> pl.DataFrame:
    """Read one file (local, or a URL through its fsspec filesystem ``fs``) as a source does:
    CSV as strings, Parquet and JSON with their types. Raises :class:`DataError`, also for a
    line that is not a row (:func:`read_file_rows` sets them aside)."""
    rows, rejected = read_file_rows(location, format=format, read=read, fs=fs)
    if rejected.height:
        raise _rejected_error(rejected)
    return rows


def read_file_rows(
    location: Path | str,
    *,
    format: str = "auto",
    read: ReadOptions | None = None,
    fs: Any = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`read_file`, with the lines that are not rows (a wrong number of fields, broken
    quoting) set aside as ingest does: the rows, and those lines (columns
    :data:`~modelyard.data.table.REJECTED_SCHEMA`; :func:`describe_rejected` says what the
    first one is)."""
    frames, rejected = _collect(_stream_files([location], format, read or ReadOptions(), fs))
    rows = _concat_rows(frames, str(location)) if frames else pl.DataFrame()
    return rows, rejected if rejected is not None else pl.DataFrame(schema=rejected_schema())


def describe_rejected(rejected: pl.DataFrame) -> str:
    """The first of the ``rejected`` lines in one line: where, and what is wrong with it."""
    error = _rejected_error(rejected.head(1))
    return f"{error.where}: {error.what} ({error.found})"


_SNIFF_BYTES = 1 << 20
"""How much of a CSV file :func:`sniff_csv` reads."""
_SNIFF_RECORDS = 200
"""How many records of that sample it parses."""
_SEPARATORS = (",", ";", "\t", "|")
_NA_TOKENS = frozenset(
    {"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
"""The values pandas' ``read_csv`` reads as missing by default (Excel's ``#N/A`` among them):
the sniffer lists those the file uses in ``null_values``."""
_MISSING_TOKENS = frozenset({"", "?", "-", "na", "n/a", "nan", "null", "none"})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


@dataclass(frozen=True)
class Sniffed:
    """What :func:`sniff_csv` found: the read options, and the header names it renamed."""

    options: ReadOptions
    renamed: list[str]
    """One note per renamed header name (``"column 5 -> column_5"``, ``"a (2nd) -> a_2"``)."""
    date_note: str | None = None
    """Why ``options.date_format`` was guessed (``"3/14/2019: 14 cannot be a month"``)."""


def sniff_csv(
    path: Path,
    *,
    separator: str | None = None,
    has_header: bool | None = None,
    name_columns: bool = False,
) -> Sniffed:
    """Guess the encoding, the separator and whether there is a header from the first
    records of a CSV file.

    ``separator`` / ``has_header``: known already (not guessed). ``name_columns``: give a file
    without a header the names ``column_1``, ``column_2``, ... (``read.columns``), one per
    field of its most common record width; and a header with an empty or repeated name all
    its names, those made unique (:func:`unique_names`).

    The sample (the first MiB) is parsed as CSV (quotes, doubled quotes and quoted line breaks
    honoured) with each candidate separator (``,``, ``;``, tab, ``|``); the separator that splits
    the most records into the same number of fields (at least two) wins, ties going to the
    earlier candidate. Text inside quoted values never votes, so a long text column full of
    ``|``, ``;`` or parentheses does not mislead it (:class:`csv.Sniffer` counted characters
    line by line, and its ``has_header`` re-guessed the dialect from any character).

    The encoding: UTF-8 when the sample is UTF-8, else cp1252 (what Windows tools write),
    else latin1 (:func:`_guess_encoding`). ``decimal_comma`` when the separator is not a comma
    and a column holds numbers written with a decimal comma (``54,93``) and integers only.
    ``null_values``: those of pandas' missing-value tokens (``NA``, ``N/A``, ``#N/A``, ``null``,
    ...) the sample holds. ``parse_dates`` and ``date_format``: :func:`_date_format`.

    Records of a single field above a wider table (a title line) are skipped (``skip_rows``).
    The first record is a header unless it reads as data: a column whose other values are all
    numbers (or ISO dates, or booleans) votes *data* when the first record holds one there too
    and *header* when it holds a name; a text column votes *data* when its first value recurs
    below it. No header only when the *data* votes win, so a file of text columns only is read
    with a header.
    """
    with _open_bytes(path) as read:  # as ingest reads it: gzip and UTF-16 by content
        head = read(_SNIFF_BYTES)
        whole = not read(1)
    encoding = _guess_encoding(head, whole)
    sample = head.decode(_CODECS[encoding], errors="replace").removeprefix("\ufeff")
    if not sample.strip():
        raise DataError("the file is empty", where=str(path), fix="Point init at a file with data.")
    best: tuple[float, int] = (-1.0, 0)
    chosen, numbered, widest = ",", [], 0
    for candidate in (separator,) if separator is not None else _SEPARATORS:
        parsed = _sniff_records(sample, candidate, whole)
        counts = Counter(len(r) for r, _ in parsed)
        width, n = max(counts.items(), key=lambda kv: (kv[1], kv[0])) if counts else (0, 0)
        score = (n / len(parsed), width) if width >= 2 else (0.0, 0)
        if score > best:  # ties go to the earlier candidate
            best, chosen, numbered, widest = score, candidate, parsed, width
    # a title line of one field above a table (adult.test's "|1x3 Cross validator") is skipped
    junk = 0
    while junk < min(5, len(numbered) - 1) and widest >= 2 and len(numbered[junk][0]) == 1:
        junk += 1
    skip = numbered[junk - 1][1] if junk else 0
    records = [r for r, _ in numbered[junk:]]
    later = [f for r in records[:20] for f in r[1:] if f]
    spaced = bool(later) and sum(f.startswith(" ") for f in later) >= 0.9 * len(later)
    header = _first_record_is_header(records) if has_header is None else has_header
    body = records[1:] if header else records
    first = [f.strip() if spaced else f for f in records[0]] if header and records else []
    columns: list[str] | None = None
    renamed: list[str] = []
    if name_columns and not header:
        columns = [f"column_{i + 1}" for i in range(max(widest, 1))]
    elif name_columns and first:
        fixed, renamed = unique_names(first)
        columns = fixed if renamed else None
    dates = _date_format(columns or first, body)
    fmt, date_columns, note = dates if dates is not None else (None, [], None)
    comma = chosen != "," and _decimal_comma(body)
    tokens = {f.strip() if spaced else f for r in body for f in r} & _NA_TOKENS
    options = ReadOptions(
        separator=chosen, strip_whitespace=spaced, has_header=header, columns=columns,
        skip_rows=skip, encoding=encoding, decimal_comma=comma, parse_dates=date_columns,
        date_format=fmt, null_values=sorted(tokens),
    )  # fmt: skip
    return Sniffed(options, renamed, note)


_DATE_SHAPE = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?: (\d{1,2}):(\d{2})(:\d{2})?)?$")
"""A date written day or month first (``14/3/2019``, ``3-14-2019``, ``14.03.2019 10:30``)."""


def _date_format(
    names: Sequence[str], records: list[list[str]]
) -> tuple[str, list[str], str] | None:
    """The strftime format of the columns of these records whose every value is a date
    written day or month first, when the values tell which (a first number above 12 is a
    day; a second one, a month; dates with points are day first); with those of the first
    such column's format (``read.date_format`` is one per file), and why."""
    found: tuple[str, list[str], str] | None = None
    for i, name in enumerate(names):
        values = [r[i].strip() for r in records if i < len(r) and r[i].strip()]
        matches = [_DATE_SHAPE.match(v) for v in values]
        if not values or not all(matches):
            continue
        shapes = [m for m in matches if m is not None]
        if len({(m[2], m[5] is None, m[7] is None) for m in shapes}) != 1:
            continue  # one separator, and a time (with seconds) in all or none
        first, second = (max(int(m[k]) for m in shapes) for k in (1, 3))
        sep, m0 = shapes[0][2], shapes[0]
        if (first > 12 and second > 12) or max(first, second) > 31:
            continue
        if first > 12 or (second <= 12 and sep == "."):
            fmt = f"%d{sep}%m{sep}%Y"
            shown = next((m for m in shapes if int(m[1]) > 12), m0)
            why = f"{shown[1]} cannot be a month" if first > 12 else "dates with points"
            why = f"{shown[0]}: day first, {why}"
        elif second > 12:
            fmt = f"%m{sep}%d{sep}%Y"
            shown = next(m for m in shapes if int(m[3]) > 12)
            why = f"{shown[0]}: {shown[3]} cannot be a month"
        else:
            continue  # day and month both at most 12: no guess
        if m0[5] is not None:
            fmt += " %H:%M" + (":%S" if m0[7] is not None else "")
        if found is None:
            found = (fmt, [name], why)
        elif found[0] == fmt:
            found[1].append(name)
    return found


def unique_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Column names made usable, as pandas does: an empty one becomes ``column_<position>``,
    a repeated one gets ``_2``, ``_3``, ... (never a name the header has); with one note per
    renamed column."""
    taken = set(names)
    seen: Counter[str] = Counter()
    out: list[str] = []
    notes: list[str] = []
    for i, name in enumerate(names):
        if not name.strip():
            new = f"column_{i + 1}"
            while new in taken:
                new += "_"
            notes.append(f"column {i + 1} -> {new}")
        else:
            seen[name] += 1
            new, k = name, seen[name]
            if k > 1:
                new = f"{name}_{k}"
                while new in taken:
                    k += 1
                    new = f"{name}_{k}"
                notes.append(f"{name} ({_ordinal(seen[name])}) -> {new}")
        taken.add(new)
        out.append(new)
    return out, notes


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _decimal_comma(records: list[list[str]]) -> bool:
    """Whether the numbers of these records are written with a decimal comma: some column
    holds one, and every value of that column is an integer or such a number."""
    comma = re.compile(_DECIMAL_COMMA)
    integer = re.compile(r"^[+-]?\d+$")
    width = max((len(r) for r in records), default=0)
    for i in range(width):
        values = [r[i].strip() for r in records if i < len(r) and r[i].strip()]
        if any(comma.match(v) for v in values) and all(
            comma.match(v) or integer.match(v) for v in values
        ):
            return True
    return False


_CODECS = {"utf8": "utf-8", "cp1252": "cp1252", "latin1": "latin-1"}
"""Python's codec for each ``read.encoding`` the sniffer guesses."""


def _guess_encoding(head: bytes, whole: bool) -> Literal["utf8", "cp1252", "latin1"]:
    """``read.encoding`` of a file from its first bytes: UTF-8 when they decode as UTF-8 (a
    character cut by the end of a partial head counts); else cp1252, the Western code page
    Windows tools (Excel) write; else latin1, which reads any byte (cp1252 leaves five
    undefined)."""
    try:
        head.decode("utf-8")
        return "utf8"
    except UnicodeDecodeError as exc:
        if not whole and exc.reason == "unexpected end of data" and exc.start >= len(head) - 3:
            return "utf8"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        return "latin1"
    return "cp1252"


def _sniff_records(sample: str, separator: str, whole: bool) -> list[tuple[list[str], int]]:
    """Up to :data:`_SNIFF_RECORDS` non-blank records of the sample, each with the number of
    lines read up to its end (the last one dropped when the sample is cut, since it may be a
    part of a record)."""
    out: list[tuple[list[str], int]] = []
    reader = csv.reader(io.StringIO(sample), delimiter=separator, quotechar=_QUOTE)
    try:
        for record in reader:
            if any(field.strip() for field in record):
                out.append((record, reader.line_num))
            if len(out) > _SNIFF_RECORDS:
                return out[:_SNIFF_RECORDS]
    except csv.Error:  # a NUL byte, a field too large: judge on what parsed
        pass
    return out if whole else out[:-1] or out


def _value_kind(value: str) -> str | None:
    """``number``, ``date``, ``bool``, or None for text and missing values."""
    v = value.strip()
    if v.lower() in _MISSING_TOKENS:
        return None
    if _NUMBER.match(v):
        return "number"
    if _DATE.match(v):
        return "date"
    if v.lower() in ("true", "false"):
        return "bool"
    return None


def _first_record_is_header(records: list[list[str]]) -> bool:
    if len(records) < 2:
        return True
    head = records[0]
    body = [r for r in records[1:] if len(r) == len(head)]
    header_votes = data_votes = 0
    for j, first in enumerate(head):
        values = [r[j].strip() for r in body if r[j].strip().lower() not in _MISSING_TOKENS]
        if not values or first.strip().lower() in _MISSING_TOKENS:
            continue
        kinds = {_value_kind(v) for v in values}
        if len(kinds) == 1 and None not in kinds:
            if _value_kind(first) in kinds:
                data_votes += 1
            else:
                header_votes += 1
        elif len(set(values)) < len(values) and first.strip() in set(values):
            data_votes += 1  # a repeated category: the first value is one of them
    return data_votes <= header_votes


def separator_hint(columns: Sequence[str], read: ReadOptions) -> str | None:
    """What to set when a CSV file was read as one column because its separator is not
    ``read.separator``: the fix for an error naming a missing column, or None."""
    if len(columns) != 1:
        return None
    name = columns[0]
    excel = re.fullmatch(r"sep=(.)", name)
    if excel:  # Excel's first line "sep=;" names the separator
        return (
            f"The first line {name!r} is Excel's separator line: set "
            f"data.source.read.separator: {excel.group(1)!r} and data.source.read.skip_rows: "
            f"{read.skip_rows + 1} in modelyard.yaml."
        )
    for candidate in _SEPARATORS:
        if candidate != read.separator and len(name.split(candidate)) >= 2:
            return (
                f"The file was read as one column named {name!r}: it looks separated by "
                f"{candidate!r}. Set data.source.read.separator: {candidate!r} in modelyard.yaml."
            )
    return None


def fingerprint_files(paths: Sequence[Path], *, remember_in: Path | None = None) -> str:
    """A content hash (BLAKE2b, hex) of the files' names and bytes, streamed in 1 MiB chunks.

    Names are taken relative to the files' common folder, so moving a project does not change
    the fingerprint, while renaming, adding or editing a file does.

    ``remember_in``: a small JSON file remembering the fingerprints of files by their identity
    (name, size, modification and change times, inode), as git's index and make do: a run
    whose data files are untouched does not read them again (hashing 100 GB takes minutes).
    Any write changes a file's change time, which no tool can set back; a file modified in the
    last :data:`_SETTLE_SECONDS` is not remembered, as a write within the same clock tick
    could leave its times unchanged.
    """
    resolved = [Path(p).resolve() for p in paths]
    root = Path(os.path.commonpath([str(p.parent) for p in resolved])) if resolved else Path()
    names = [path.relative_to(root).as_posix().encode() for path in resolved]
    try:
        stats = [path.stat() for path in resolved]
    except OSError as exc:
        raise DataError(
            "cannot read the file", where=str(exc.filename), found=exc.strerror or str(exc)
        ) from None
    identity = hashlib.blake2b(digest_size=16)
    for path, st in zip(resolved, stats, strict=True):
        ident = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
        identity.update(repr(ident).encode())
    remembered = _read_remembered(remember_in) if remember_in is not None else {}
    if identity.hexdigest() in remembered:
        return remembered[identity.hexdigest()]
    started = time.time_ns()
    digest = hashlib.blake2b(digest_size=32)
    for path, name, st in zip(resolved, names, stats, strict=True):
        try:
            digest.update(len(name).to_bytes(8, "little") + name + st.st_size.to_bytes(8, "little"))
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            raise DataError(
                "cannot read the file", where=str(path), found=exc.strerror or str(exc)
            ) from None
    settled = all(
        started - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLE_SECONDS * 1e9 for st in stats
    )
    if remember_in is not None and settled:
        remembered[identity.hexdigest()] = digest.hexdigest()
        _write_remembered(remember_in, remembered)
    return digest.hexdigest()


_SETTLE_SECONDS = 2
_REMEMBERED_ENTRIES = 64
"""Fingerprints remembered per project (the newest are kept)."""


def _read_remembered(file: Path) -> dict[str, str]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_remembered(file: Path, fingerprints: dict[str, str]) -> None:
    """Atomically (temp file + rename): a killed run leaves the old file or the new one."""
    entries = dict(list(fingerprints.items())[-_REMEMBERED_ENTRIES:])
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=0), encoding="utf-8")
        tmp.replace(file)
    except OSError:  # a read-only workdir: fingerprints are recomputed, nothing else changes
        pass


def fingerprint_source(source: Source, *, remember_in: Path | None = None) -> str:
    """The fingerprint of a source's data: a content hash of its files (remembered in
    ``remember_in`` by their identity, see :func:`fingerprint_files`); for remote files a hash
    of their names, sizes and ETags (or checksums / modification times); for a SQL source a
    hash of the rows read (streamed in chunks); for an ingested dataset a hash of the parts
    committed in its manifest (parts are immutable); for a bundled dataset
    ``builtin:<name>:<scikit-learn version>``."""
    if source.builtin is not None:
        from importlib.metadata import version  # cheaper than importing scikit-learn

        return f"builtin:{source.builtin}:{version('scikit-learn')}"
    if source.sql is not None:
        from modelyard.data import sql

        return sql.fingerprint_sql(source.sql)
    if source.dataset is not None:
        from modelyard.data.streaming.manifest import fingerprint_dataset

        return fingerprint_dataset(source.dataset)
    if is_url(source.path):
        return remote.fingerprint(str(source.path), source.storage_options)
    assert source.path is not None
    return fingerprint_files(source_files(source.path), remember_in=remember_in)


def infer_task(target: pl.Series) -> Task:
    """Infer the learning task from the target column (missing values are ignored).

    The rule, in order:

    1. boolean, or exactly 2 distinct values -> ``binary``;
    2. text (or categorical) that does not read as numbers -> ``multiclass``;
    3. numbers (or text that reads as numbers, as CSV columns do before typing) that are all
       whole, with at most 20 distinct values and at most 5% as many distinct values as rows
       (at least 2 allowed, so tiny tables work) -> ``multiclass``;
    4. otherwise -> ``regression``.

    Raises :class:`DataError` when the target is empty or has a single distinct value.
    """
    name = target.name or "target"
    values = target.drop_nulls()
    if values.dtype == pl.String:
        values = values.filter(values.str.strip_chars() != "")
    if values.len() == 0:
        raise DataError(
            f"the target column '{name}' has no values",
            expected="a column with at least two distinct values",
            found="only missing values",
            fix="Check data.target in modelyard.yaml.",
        )
    distinct = values.n_unique()
    if distinct < 2:
        raise DataError(
            f"the target column '{name}' has a single value",
            expected="at least two distinct values",
            found=f"only {values[0]!r}",
            fix="Check data.target, or the rows you read (sample, filters).",
        )
    if values.dtype == pl.Boolean or distinct == 2:
        return "binary"
    numeric: pl.Series
    if values.dtype.is_numeric():
        numeric = values.cast(pl.Float64)
    elif values.dtype == pl.String:
        numeric = values.str.strip_chars().cast(pl.Float64, strict=False)
        if numeric.null_count() > 0:
            return "multiclass"
    else:  # categorical, enum, dates ...
        return "multiclass" if not values.dtype.is_temporal() else "regression"
    whole = bool((numeric.is_finite() & (numeric == numeric.floor())).all())
    limit = min(_MAX_CLASSES, max(2.0, _MAX_CLASS_FRACTION * values.len()))
    if whole and distinct <= limit:
        return "multiclass"
    return "regression"


# =========================================================================== files


def file_format(path: Location, fmt: str = "auto") -> FileFormat:
    """The format a source reads ``path`` in: ``fmt``, or from the extension when ``auto``
    (``.gz``: CSV unless a JSON flavour). Raises :class:`DataError` for an unknown extension."""
    return _resolve_format(path, fmt)


def _resolve_format(path: Location, fmt: str) -> FileFormat:
    if fmt != "auto":
        return fmt  # type: ignore[return-value]  # Literal narrowed by the schema
    suffixes = [s.lower() for s in PurePosixPath(str(path)).suffixes]
    if suffixes and suffixes[-1] in {".gz", ".gzip"}:
        inner = suffixes[-2] if len(suffixes) >= 2 else ""
        # a gzipped file is text: a JSON flavour if it says so, CSV otherwise (kddcup.data_*.gz)
        return _FORMAT_BY_SUFFIX[inner] if inner in {".json", ".jsonl", ".ndjson"} else "csv"
    suffix = suffixes[-1] if suffixes else ""
    if suffix in _FORMAT_BY_SUFFIX:
        return _FORMAT_BY_SUFFIX[suffix]
    raise DataError(
        "cannot tell the file format from the extension",
        where=str(path),
        expected="one of " + ", ".join(sorted({*_FORMAT_BY_SUFFIX, ".gz"})),
        found=f"'{suffix}'" if suffix else "no extension",
        fix="Set data.source.format (csv, parquet, json, ndjson or excel).",
    )


def _read_json(path: Location, data: bytes, *, lines: bool) -> pl.DataFrame:
    text = _decode(path, data, "utf8")
    try:
        df = pl.read_ndjson(data) if lines else pl.read_json(data)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        where, found = _diagnose_json(path, text, lines=lines)
        raise DataError(
            f"cannot read the {'NDJSON' if lines else 'JSON'} file",
            where=where,
            expected="one JSON object per line" if lines else "a JSON array of objects",
            found=found or _first_line(exc),
            fix="Fix the JSON, or set data.source.format (json = an array of records, "
            "ndjson = one record per line).",
        ) from None
    return df


def _diagnose_json(path: Location, text: str, *, lines: bool) -> tuple[str, str | None]:
    if lines:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return f"{path}:{number}", f"{exc.msg} (column {exc.colno})"
            if not isinstance(value, dict):
                return f"{path}:{number}", f"a JSON {type(value).__name__}, not an object"
        return str(path), None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{path}:{exc.lineno}", f"{exc.msg} (column {exc.colno})"
    if not isinstance(value, list):
        return str(path), f"a JSON {type(value).__name__} at the top level"
    return str(path), None


# =========================================================================== streaming

_MAX_RECORD_BYTES = 256 << 20
"""A line, or a record whose quoted value runs over lines, longer than this is an error (a line)
or an unbalanced quote (a record)."""
_MAX_RECORD_LINES = 1_000
"""A quoted value may span at most this many lines. A quote that opens a value which does not
close within them (or before the end of the file, or cleanly: followed by the separator or the
line's end) is an unbalanced quote: its line is rejected and reading resumes at the next one."""
_BOM = b"\xef\xbb\xbf"
_FEWER = "the line may be truncated (an interrupted copy?): repair or remove it"
_MORE = "check read.separator, and quote values that contain the separator"

Piece = tuple["pl.DataFrame | None", "pl.DataFrame | None"]
"""What a streaming reader yields: some rows and some rejected lines (either may be None)."""


def _source_where(source: Source) -> str:
    if source.builtin is not None:
        return f"builtin:{source.builtin}"
    if source.sql is not None:
        from modelyard.data import sql

        return sql.redacted_url(source.sql)
    if source.dataset is not None:
        return str(source.dataset)
    return str(source.path)


def _stream_source(
    source: Source,
    normalize: Mapping[str, ValueMap],
    drop: Sequence[str],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    chunk_bytes: int = CHUNK_BYTES,
    tmp: Path | None = None,
) -> Iterator[Piece]:
    """The source's rows (normalized, ``drop`` removed) and rejected lines, piece by piece in
    input order. ``tmp``: where a remote Parquet file is downloaded to be read in slices."""
    where = _source_where(source)
    pieces: Iterable[Piece]
    if source.builtin is not None:
        pieces = [(_read_builtin(source.builtin), None)]
    elif source.sql is not None:
        from modelyard.data import sql

        pieces = ((chunk, None) for chunk in sql.stream_sql(source.sql))
    elif source.dataset is not None:
        from modelyard.data.streaming.manifest import read_dataset

        pieces = [(read_dataset(source.dataset), None)]
    elif is_url(source.path):
        fs, urls = remote.list_files(str(source.path), source.storage_options)
        pieces = _stream_files(
            urls, source.format, source.read, fs,
            batch_rows=batch_rows, chunk_bytes=chunk_bytes, tmp=tmp,
        )  # fmt: skip
    else:
        assert source.path is not None  # guaranteed by Source's validator
        pieces = _stream_files(
            source_files(source.path), source.format, source.read,
            batch_rows=batch_rows, chunk_bytes=chunk_bytes, tmp=tmp,
        )  # fmt: skip
    checked = False
    for rows, rejected in pieces:
        out = rows
        if rows is not None:
            if not checked:
                _check_hint_columns(rows, source.read, where)
                checked = True
            out = _apply_drop(_apply_normalize(rows, normalize, where), drop, where)
        yield out, rejected


def _stream_files(
    paths: Sequence[Location],
    fmt: str,
    options: ReadOptions,
    fs: Any = None,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    chunk_bytes: int = CHUNK_BYTES,
    tmp: Path | None = None,
) -> Iterator[Piece]:
    """The files one after the other; all must have the same columns. No empty piece."""
    first: list[str] | None = None
    rows = rejected = width = 0
    for path in paths:
        seen = False
        pieces = _stream_file(
            path, _resolve_format(path, fmt), options, fs,
            batch_rows=batch_rows, chunk_bytes=chunk_bytes, tmp=tmp,
        )  # fmt: skip
        for got, got_bad in pieces:
            frame, bad = got, got_bad
            if frame is not None:
                if not seen:
                    seen = True
                    if first is None:
                        first = frame.columns
                    elif frame.columns != first:
                        raise _columns_differ(path, paths[0], first, frame.columns)
                width = frame.width
                rows += frame.height
                if frame.height == 0:
                    frame = None
            if bad is not None:
                rejected += bad.height
                if bad.height == 0:
                    bad = None
            if frame is not None or bad is not None:
                yield frame, bad
    if rows == 0 and rejected == 0:
        where = str(paths[0]) if len(paths) == 1 else f"{_parent(paths[0])} ({len(paths)} files)"
        raise DataError(
            "no data rows",
            where=where,
            expected="at least one data row",
            found="columns but 0 rows" if width else "nothing",
            fix="Check the file (and read.skip_rows / read.has_header).",
        )


def _columns_differ(
    path: Location, first_path: Location, first: list[str], columns: list[str]
) -> DataError:
    missing = [c for c in first if c not in columns]
    extra = [c for c in columns if c not in first]
    detail = []
    if missing:
        detail.append(f"missing {_names(missing)}")
    if extra:
        detail.append(f"extra {_names(extra)}")
    return DataError(
        "the file's columns differ from the first file's",
        where=str(path),
        expected=f"the columns of {first_path}: {_names(first)}",
        found=f"{_names(columns)}" + (f" ({'; '.join(detail)})" if detail else ""),
        fix="Give all files of a glob the same columns in the same order.",
    )


def _stream_file(
    path: Location,
    fmt: FileFormat,
    options: ReadOptions,
    fs: Any,
    *,
    batch_rows: int,
    chunk_bytes: int,
    tmp: Path | None,
) -> Iterator[Piece]:
    if fmt == "csv":
        yield from _stream_csv(path, options, fs, chunk_bytes=chunk_bytes)
    elif fmt == "ndjson":
        for frame, bad in _stream_ndjson(path, fs, chunk_bytes=chunk_bytes):
            yield (None if frame is None else _finish(frame, options, path)), bad
    elif fmt == "parquet":
        if isinstance(path, str):  # a URL: downloaded, then read in slices like a local file
            import tempfile

            with tempfile.TemporaryDirectory(dir=tmp, prefix=".download-") as folder:
                local = Path(folder) / "file.parquet"
                remote.download(fs, path, local)
                yield from _stream_parquet(local, options, batch_rows, shown=path)
        else:
            yield from _stream_parquet(path, options, batch_rows)
    elif fmt == "excel":  # a workbook is read whole (a sheet holds at most 1,048,576 rows)
        data = remote.fetch(fs, path) if isinstance(path, str) else _read_bytes(path)
        yield _finish(_read_excel(path, data, options), options, path), None
    else:  # a JSON array is parsed whole
        data = remote.fetch(fs, path) if isinstance(path, str) else _read_bytes(path)
        yield _finish(_read_json(path, _unpack(path, data), lines=False), options, path), None


def excel_sheets(path: Location, data: bytes | None = None) -> list[str]:
    """The sheet names of a workbook (``data``: its bytes, read from ``path`` when None)."""
    import importlib.util

    from modelyard.errors import MissingExtraError

    if importlib.util.find_spec("fastexcel") is None:
        raise MissingExtraError("fastexcel", "excel", f"reading the Excel workbook {path}")
    import fastexcel

    try:
        return list(
            fastexcel.read_excel(_read_bytes(Path(path)) if data is None else data).sheet_names
        )
    except Exception as exc:  # fastexcel's errors share no base class with polars'
        raise DataError(
            "cannot read the file as an Excel workbook",
            where=str(path),
            expected="an .xlsx, .xlsm, .xlsb, .xls or .ods workbook",
            found=_first_line(exc),
            fix="Open it in a spreadsheet and save it again (or as CSV), or check data.source.format.",
        ) from None


def _read_excel(path: Location, data: bytes, options: ReadOptions) -> pl.DataFrame:
    """One sheet of a workbook (``read.sheet``, else the first), ``skip_rows`` lines above the
    header, empty rows and columns dropped; every cell as text, as a CSV file is read (the
    contract types the columns; a text cell among numbers is judged by validation, never
    turned into a null as a typed read would). Through polars' calamine engine (the ``excel``
    extra)."""
    import io

    names = excel_sheets(path, data)
    sheet = options.sheet
    if (isinstance(sheet, str) and sheet not in names) or (
        isinstance(sheet, int) and sheet > len(names)
    ):
        raise DataError(
            f"the workbook has no sheet {sheet!r}",
            where=str(path),
            expected=f"one of its {len(names)} sheets: {', '.join(repr(n) for n in names)}",
            found=repr(sheet),
            fix="Set read.sheet to a sheet's name, or its position counting from 1.",
        )
    which = {"sheet_name": sheet} if isinstance(sheet, str) else {"sheet_id": sheet or 1}
    rows = {"header_row": options.skip_rows} if options.has_header else {
        "header_row": None, "skip_rows": options.skip_rows,
    }  # fmt: skip
    return pl.read_excel(
        io.BytesIO(data),
        engine="calamine",
        has_header=options.has_header,
        read_options={**rows, "dtypes": "string"},
        raise_if_empty=False,
        **which,
    )


def _finish(df: pl.DataFrame, options: ReadOptions, path: Location) -> pl.DataFrame:
    """Columns renamed (``read.columns``), checked unique; strings cleaned (Parquet, JSON)."""
    if options.columns is not None:
        df = _rename(df, options.columns, path)
    _check_unique(df.columns, path)
    return _clean_strings(df, options)


def _collect(pieces: Iterable[Piece]) -> tuple[list[pl.DataFrame], pl.DataFrame | None]:
    frames: list[pl.DataFrame] = []
    rejected: list[pl.DataFrame] = []
    for rows, bad in pieces:
        if rows is not None:
            frames.append(rows)
        if bad is not None:
            rejected.append(bad)
    return frames, (pl.concat(rejected) if rejected else None)


def _concat_rows(frames: list[pl.DataFrame], where: str) -> pl.DataFrame:
    if len(frames) == 1:
        return frames[0]
    try:
        return pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise DataError(
            "the files' column types do not agree",
            where=where,
            expected="the same type per column in every file",
            found=_first_line(exc),
            fix="Write the files with the same schema.",
        ) from None


def _concat_rejected(frames: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(frames) if frames else pl.DataFrame(schema=rejected_schema())


def _rejected_error(rejected: pl.DataFrame) -> DataError:
    """A :class:`DataError` for the first rejected line, for readers that return rows only."""
    first = rejected.row(0, named=True)
    head, _, tail = str(first["_reasons"]).partition(": ")
    text = str(first["_text"])
    shown = text if len(text) <= 80 else text[:77] + "..."
    more = (
        f"; {rejected.height - 1} more line(s) cannot be read as rows either"
        if rejected.height > 1
        else ""
    )
    if tail in (_FEWER, _MORE):
        found, fix = f"{shown!r}{more}", tail[0].upper() + tail[1:] + "."
    elif "a quote that opens a value" in head:
        head = head.split("; ")[0]
        found = f"{shown!r}{more}"
        fix = 'A value holding a quote must be quoted whole, with the quote doubled ("a""b").'
    else:
        found = f"{tail}: {shown!r}{more}"
        fix = (
            "Fix the JSON, or set data.source.format (json = an array of records, ndjson = "
            "one record per line)."
        )
    return DataError(
        head,
        where=f"{first['_file']}:{first['_line']}",
        found=found,
        fix=fix + " (The pipeline's ingest sets such lines aside and reads the rest.)",
    )


class _Rebatcher:
    """Re-cuts a stream of frames into frames of exactly ``rows`` rows (the last: fewer)."""

    def __init__(self, rows: int) -> None:
        self.rows = max(1, rows)
        self._buffer: list[pl.DataFrame] = []
        self._height = 0

    def add(self, frame: pl.DataFrame) -> Iterator[pl.DataFrame]:
        # Cut the incoming frame, never a concatenation: a slice of a string column keeps all
        # the buffers it was cut from, so a remainder cut from a whole part would hold that
        # part's memory, and the next part the one before it (memory growing with the input).
        while frame.height:
            room = self.rows - self._height
            self._buffer.append(frame.slice(0, room))
            self._height += min(room, frame.height)
            frame = frame.slice(room)
            if self._height == self.rows:
                yield self._take()

    def flush(self) -> pl.DataFrame | None:
        return self._take() if self._height else None

    def _take(self) -> pl.DataFrame:
        buffer, self._buffer, self._height = self._buffer, [], 0
        return buffer[0] if len(buffer) == 1 else pl.concat(buffer, how="vertical_relaxed")


def _check_sample(sample: int | None) -> None:
    if sample is not None and sample < 1:
        raise DataError(
            "the sample size must be positive", expected="an integer >= 1", found=str(sample)
        )


def _write_ingested(
    pieces: Iterable[Piece], folder: Path, *, prefix: str, batch_rows: int
) -> tuple[Table, Table]:
    """Rows and rejected lines into two tables under ``folder`` (``rows``, ``rejected``)."""
    rows_out = TableWriter(folder / f"{prefix}rows")
    bad_out = TableWriter(folder / f"{prefix}rejected", schema=rejected_schema())
    with rows_out, bad_out:
        rows_batcher, bad_batcher = _Rebatcher(batch_rows), _Rebatcher(batch_rows)
        for rows, bad in pieces:
            if rows is not None:
                for part in rows_batcher.add(rows):
                    rows_out.write(part)
            if bad is not None:
                for part in bad_batcher.add(bad):
                    bad_out.write(part)
        for writer, batcher in ((rows_out, rows_batcher), (bad_out, bad_batcher)):
            last = batcher.flush()
            if last is not None:
                writer.write(last)
        rows_table, bad_table = rows_out.close(), bad_out.close()
    return _harmonize(rows_table, folder), bad_table


def _harmonize(table: Table, where: Path) -> Table:
    """Give every part the same column types (the relaxed supertypes, as ``pl.concat`` would):
    chunks of a SQL result, an NDJSON file or a glob of Parquet files can differ (a column all
    null in one chunk). Parts are rewritten one at a time, only where they differ."""
    parts = table.parts()
    if len(parts) < 2:
        return table
    schemas = [pl.Schema(pl.read_parquet_schema(p)) for p in parts]
    if all(s == schemas[0] for s in schemas[1:]):
        return table
    try:
        target = pl.concat([pl.DataFrame(schema=s) for s in schemas], how="vertical_relaxed").schema
        for part, schema in zip(parts, schemas, strict=True):
            if schema != target:
                write_part(pl.read_parquet(part).cast(target), part)
    except pl.exceptions.PolarsError as exc:
        raise DataError(
            "the column types of the input's chunks do not agree",
            where=str(where),
            expected="the same type per column in every file and chunk",
            found=_first_line(exc),
            fix="Write the files with the same schema (cast the columns in a SQL query).",
        ) from None
    return table


def _sample_ingested(
    rows: Table, rejected: Table, folder: Path, n: int, seed: int, batch_rows: int
) -> Ingested:
    """A seeded sample of ``n`` records over the rows then the rejected lines, in file order.
    With no rejected line, the rows are those of :func:`_apply_sample` on the whole table."""
    import shutil

    import numpy as np

    total = rows.num_rows + rejected.num_rows
    if n >= total:
        kept = rows.folder.rename(folder / "rows"), rejected.folder.rename(folder / "rejected")
        return Ingested(Table(kept[0], rows.num_rows), Table(kept[1], rejected.num_rows))
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(total, size=n, replace=False))
    cut = int(np.searchsorted(picked, rows.num_rows))
    out = Ingested(
        _gather_table(rows, picked[:cut], folder / "rows", batch_rows),
        _gather_table(
            rejected, picked[cut:] - rows.num_rows, folder / "rejected", batch_rows,
            schema=rejected_schema(),
        ),
    )  # fmt: skip
    shutil.rmtree(rows.folder)
    shutil.rmtree(rejected.folder)
    return out


def _gather_table(
    table: Table, indices: Any, folder: Path, batch_rows: int, *, schema: Any = None
) -> Table:
    """The rows of ``table`` at the sorted positions ``indices``, part by part."""
    import numpy as np

    writer = TableWriter(folder, schema=schema if schema is not None else table.schema)
    batcher = _Rebatcher(batch_rows)
    start = 0
    with writer:
        for part in table.batches():
            lo, hi = np.searchsorted(indices, [start, start + part.height])
            if hi > lo:
                local = pl.Series(indices[lo:hi] - start, dtype=pl.UInt32)
                for batch in batcher.add(part.select(pl.all().gather(local))):
                    writer.write(batch)
            start += part.height
        last = batcher.flush()
        if last is not None:
            writer.write(last)
        return writer.close()


# =========================================================================== CSV into a table


@dataclass(frozen=True)
class _FileRange:
    """Bytes ``start:end`` of a local file: a task reads them itself (nothing is shipped)."""

    path: Path
    start: int
    end: int


@dataclass(frozen=True)
class _Run:
    """A run of a CSV file's lines for one task: its bytes (or where they are in the file),
    the lines and bytes of the file before it, and the stem of the part files it writes."""

    file: int
    data: bytes | _FileRange
    line0: int
    byte0: int
    """Where it starts in the file's text, which a byte order mark is not part of (so the
    first run of a file with one starts at -3)."""
    final: bool
    """The file ends with it."""
    out: Path
    start: bool = False
    """It begins the file: the byte order mark and the lines to skip are its to drop."""


@dataclass(frozen=True)
class _RunRead:
    """What a task returns for one run (its rows are in the part files it wrote)."""

    parts: list[int]
    """The rows of each part file written, in order (see :func:`run_part`)."""
    rejected: pl.DataFrame | None
    open_at: tuple[int, int] | None
    """The run ends inside a quoted value: the lines and bytes before its record, which goes
    on in the next run."""
    bad: int
    first_bad: dict[str, Any] | None
    shape: _CsvShape

    @property
    def rows(self) -> int:
        return sum(self.parts)


def run_part(stem: Path, index: int) -> Path:
    """The ``index``-th part file a run's task writes (``stem``: the run's)."""
    return stem.with_name(f"{stem.name}-{index:04d}.parquet")


@contextmanager
def _run_reader(path: Location, data: bytes | _FileRange) -> Iterator[Callable[[int], bytes]]:
    """``read(n)`` over a run's bytes."""
    if isinstance(data, bytes):
        stream = io.BytesIO(data)
        yield stream.read
        return
    try:
        fh = data.path.open("rb")
        fh.seek(data.start)
    except OSError as exc:
        raise _cannot_read(path, exc) from None
    left = data.end - data.start

    def read(n: int) -> bytes:
        nonlocal left
        try:
            block = fh.read(min(n, left))
        except OSError as exc:
            raise _cannot_read(path, exc) from None
        if n and left and not block:
            raise DataError(
                "the file was cut short while it was read",
                where=str(path),
                expected=f"{data.end:,} bytes, as when the read began",
                found=f"its end at byte {data.end - left:,}",
                fix="Ingest a file once it is written whole (write it under another name, "
                "then rename it).",
            )
        left -= len(block)
        return block

    with fh:
        yield read


def parse_csv_run(
    path: Location,
    options: ReadOptions,
    shape: _CsvShape,
    data: bytes | _FileRange,
    at: tuple[int, int] | None,
    final: bool,
    finish: tuple[Mapping[str, ValueMap], Sequence[str], str],
    out: str,
    batch_rows: int,
) -> _RunRead:
    """The task of a CSV ingest: a run of a file's lines parsed as the sequential reader
    parses them, :data:`CHUNK_BYTES` at a time, from the file's ``shape`` as the lines before
    it left it (``at``: the lines and bytes of the file before it; ``None``: the run begins
    the file); normalized and ``drop`` removed (``finish``: normalize, drop, where); its rows
    written as part files of at most ``batch_rows`` rows (as few as can be, of even sizes) at
    :func:`run_part` of ``out``, replacing any written there before."""
    normalize, drop, where = finish
    stem = Path(out)
    for old in stem.parent.glob(f"{stem.name}-*.parquet"):
        old.unlink()
    parser = _CsvChunks.resumed(path, options, shape)
    frames: list[pl.DataFrame] = []
    rejected: list[pl.DataFrame] = []
    with _run_reader(path, data) as read:
        skip = options.skip_rows if at is None else 0
        chunks = _record_chunks(path, read, CHUNK_BYTES, skip_lines=skip, at=at)
        pieces = _parse_chunks(parser, chunks, final=final)
        while True:
            try:
                rows, bad = next(pieces)
            except StopIteration as stop:
                open_at = stop.value
                break
            if rows is not None:
                frames.append(rows)
            if bad is not None:
                rejected.append(bad)
    parts: list[int] = []
    if frames:
        rows = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
        del frames
        rows = _apply_drop(_apply_normalize(rows, normalize, where), drop, where)
        pieces_n = -(-rows.height // max(1, batch_rows))  # of even sizes, at most batch_rows
        for i in range(pieces_n):
            start, end = rows.height * i // pieces_n, rows.height * (i + 1) // pieces_n
            write_part(rows.slice(start, end - start), run_part(stem, i))
            parts.append(end - start)
    bad_lines = _concat_rejected(rejected) if rejected else None
    return _RunRead(parts, bad_lines, open_at, parser.bad, parser.first_bad, parser.shape)


class _PartPacker:
    """Turns the parts the tasks wrote (under staging names, in file order) into the table's
    parts: renamed in order, consecutive ones of ``batch_rows`` rows or fewer in all packed
    into one. So every part has at most ``batch_rows`` rows, two neighbours more than that
    together, and a table of at most ``batch_rows`` rows is one part."""

    def __init__(self, writer: TableWriter, batch_rows: int) -> None:
        self.writer = writer
        self.batch_rows = max(1, batch_rows)
        self._held: list[tuple[Path, int]] = []
        self._staged = 0

    def staging(self) -> Path:
        """The stem of the next run's part files (see :func:`run_part`)."""
        self._staged += 1
        return self.writer.folder / f".run-{self._staged:08d}"

    def add(self, stem: Path, parts: Sequence[int]) -> None:
        for i, rows in enumerate(parts):
            if self._held and sum(n for _, n in self._held) + rows > self.batch_rows:
                self._flush()
            self._held.append((run_part(stem, i), rows))

    def close(self) -> Table:
        self._flush()
        return self.writer.close()

    def _flush(self) -> None:
        held, self._held = self._held, []
        if len(held) == 1:
            path, rows = held[0]
            path.replace(self.writer.next_part())
            self.writer.add(rows)
        elif held:
            self.writer.write(pl.concat([pl.read_parquet(p) for p, _ in held], how="vertical"))
            for path, _ in held:
                path.unlink()


@dataclass
class _FileRead:
    """Where the parse of a CSV file stands: after the runs taken so far (``shape`` and the
    counts for its end-of-file checks), and the shape expected after its first run (from its
    head), which the tasks of the later runs start from."""

    shape: _CsvShape
    expected: _CsvShape | None
    rows: int = 0
    bad: int = 0
    first_bad: dict[str, Any] | None = None


class _CsvTableReader:
    """CSV files into a table: tasks on the executor parse runs of a file's lines side by side
    and write their rows as parts; their results are taken here in file order.

    Each file is cut into runs of about ``batch_rows`` rows at line ends (the same cuts
    whatever the executor, so the same parts). A local file is cut where it lies on disk
    (its lines counted here) and each task reads its own bytes; a compressed, re-encoded or
    remote file, or any file when the workers run on other machines, is read here and its
    bytes are shipped. With no executor the runs are parsed here, one after the other.

    The result is the sequential reader's (:func:`_stream_csv`): the first run's task starts
    from the file's start; the others from the header and width that the file's head shows
    (parsed here, and checked, before any task), as if no record were open where they
    start. A task's result is taken only when that held: when the run before it ended inside
    a quoted value (a value with line breaks across the cut: rare), or the header was not
    where the head said, the run is parsed again here, from the record's start and the right
    shape, as the sequential reader parses it.
    """

    def __init__(
        self,
        rows: TableWriter,
        rejected: TableWriter,
        *,
        options: ReadOptions,
        finish: tuple[Mapping[str, ValueMap], Sequence[str], str],
        batch_rows: int,
        chunk_bytes: int,
        executor: Executor | None,
    ) -> None:
        self.parts = _PartPacker(rows, batch_rows)
        self.rejected = rejected
        self.rejected_batches = _Rebatcher(batch_rows)
        self.options = options
        self.finish = finish
        self.batch_rows = batch_rows
        self.chunk_bytes = chunk_bytes
        self.executor = executor
        self.paths: list[Location] = []
        self.files: list[_FileRead] = []
        self.names: list[str] | None = None
        self._pending: collections.deque[tuple[_Run, Future[_RunRead], _CsvShape]] = (
            collections.deque()
        )
        self._held: tuple[_Run, tuple[int, int]] | None = None
        self._alone = False
        """The source is one file: when it is one run too, it is parsed here (a small table
        costs no round trip to a worker, as :func:`~modelyard.compute.map_in_order` does)."""

    def read(self, paths: Sequence[Location], fs: Any = None) -> None:
        self._alone = len(paths) == 1
        try:
            for path in paths:
                _check_separator(path, self.options)
                self._read_file(path, fs)
            self._drain()
        finally:
            if self._pending and self.executor is not None:  # an error: stop the rest
                self.executor.cancel([future for _, future, _ in self._pending])

    # -- cutting

    def _read_file(self, path: Location, fs: Any) -> None:
        index = len(self.paths)
        self.paths.append(path)
        with _open_bytes(path, fs) as raw_read:
            read, head = _universal_line_ends(raw_read, 1 << 20)
            size = self._run_size(head)
            expected = self._expected_shape(path, head) if self.executor is not None else None
            self.files.append(_FileRead(_CsvChunks(path, self.options).shape, expected))
            if expected is not None:
                self._check_columns(path, expected.names)
            executor = self.executor
            in_place = (
                executor is not None
                and executor.local_files
                and isinstance(path, Path)
                and _in_place(path)
            )
            if in_place:
                assert isinstance(path, Path)
                runs = self._ranges(index, path, size, _bom(head))
            else:
                runs = self._stream_runs(index, read, size, _bom(head))
            for run in runs:
                self._submit(run)

    def _expected_shape(self, path: Location, head: bytes) -> _CsvShape | None:
        """The header and width the file's head shows (checked), or ``None`` when its head
        holds no whole line."""
        if b"\n" not in head:
            return None
        parser = _CsvChunks(path, self.options)
        read = io.BytesIO(head).read
        first = next(_record_chunks(path, read, 1 << 16, skip_lines=self.options.skip_rows))
        for _ in _parse_chunks(parser, [first], final=False):
            pass
        return parser.shape if parser.shape.known else None

    def _ranges(self, index: int, path: Path, size: int, bom: int) -> Iterator[_Run]:
        """The file cut where it lies into runs of about ``size`` bytes at line ends (by the
        rule of :meth:`_stream_runs`: the last line end before ``size``, else the first after
        it), its lines counted."""
        with path.open("rb") as fh:
            total = os.fstat(fh.fileno()).st_size
            at = line = 0
            while True:
                end = total if at + size >= total else _line_end(fh, at, at + size, total)
                yield _Run(
                    index, _FileRange(path, at, end), line, at - bom, end == total,
                    self.parts.staging(), start=at == 0,
                )  # fmt: skip
                if end == total:
                    return
                line, at = line + _count_lines(fh, at, end), end

    def _stream_runs(
        self, index: int, read: Callable[[int], bytes], size: int, bom: int
    ) -> Iterator[_Run]:
        """The file's bytes read here and cut into runs as :meth:`_ranges` cuts a file, so
        that both give the same runs (and the same parts)."""
        buffer, eof, at, line = b"", False, 0, 0
        while True:
            while not eof and len(buffer) <= size:
                block = read(max(size, 1 << 16))
                eof = not block
                buffer += block
            if len(buffer) <= size:  # the rest of the file
                end = len(buffer)
            else:
                end = buffer.rfind(b"\n", 0, size) + 1
                while not end:  # a line longer than the run: up to its end
                    end = buffer.find(b"\n", size) + 1
                    if not end and (eof or len(buffer) > size + _MAX_RECORD_BYTES):
                        end = len(buffer)
                    elif not end:
                        block = read(max(size, 1 << 16))
                        eof = not block
                        buffer += block
            run, buffer = buffer[:end], buffer[end:]
            final = eof and not buffer
            yield _Run(index, run, line, at - bom, final, self.parts.staging(), start=at == 0)
            if final:
                return
            line, at = line + run.count(b"\n"), at + len(run)

    def _run_size(self, head: bytes) -> int:
        """Bytes for 90% of ``batch_rows`` rows (from the head's line length, so that a run
        seldom holds more than a part), at most ``chunk_bytes``."""
        lines = head.count(b"\n")
        if not lines:
            return max(1, self.chunk_bytes)
        return max(1, min(self.chunk_bytes, int(0.9 * self.batch_rows * len(head) / lines)))

    # -- running, in order

    def _submit(self, run: _Run) -> None:
        """A task for the run, started from the shape it should find; here (after the runs
        before it) when there is no executor or no such shape."""
        file = self.files[run.file]
        assumed = file.shape if run.start else file.expected
        if self.executor is None or assumed is None or (self._alone and run.start and run.final):
            self._drain()
            self._take(run, None, None)
            return
        while len(self._pending) > self.executor.workers:
            self._take(*self._pending.popleft())
        future = self.executor.submit(
            parse_csv_run, self.paths[run.file], self.options, assumed, run.data,
            _at(run), run.final, self.finish, str(run.out), self.batch_rows,
        )  # fmt: skip
        self._pending.append((run, future, assumed))

    def _drain(self) -> None:
        while self._pending:
            self._take(*self._pending.popleft())

    def _take(self, run: _Run, future: Future[_RunRead] | None, assumed: _CsvShape | None) -> None:
        """The run's result, in file order: its task's when the task started where the
        parse stands, else parsed here."""
        file = self.files[run.file]
        result: _RunRead | None = None
        if future is not None:
            if self._held is None and assumed == file.shape:
                result = future.result()
            else:  # started from the wrong place: let it end (it writes run.out), redo
                with contextlib.suppress(Exception):
                    future.result()
        if result is None:
            if self._held is not None:
                before, (line0, byte0) = self._held
                self._held = None
                run = _joined(before, line0, byte0, run)
            result = parse_csv_run(
                self.paths[run.file], self.options, file.shape, run.data, _at(run),
                run.final, self.finish, str(run.out), self.batch_rows,
            )  # fmt: skip
        self._accept(run, result)
        if result.open_at is not None:
            if run.final:  # pragma: no cover - defensive: the last run closes every record
                raise AssertionError("a record left open at the end of the file")
            self._held = (run, result.open_at)

    def _accept(self, run: _Run, result: _RunRead) -> None:
        path, file = self.paths[run.file], self.files[run.file]
        if not file.shape.known and result.shape.known:
            self._check_columns(path, result.shape.names)
        if result.shape.known:
            file.expected = result.shape  # what the tasks of the next runs start from
        file.shape = result.shape
        file.rows += result.rows
        file.bad += result.bad
        file.first_bad = file.first_bad or result.first_bad
        self.parts.add(run.out, result.parts)
        if result.rejected is not None:
            for part in self.rejected_batches.add(result.rejected):
                self.rejected.write(part)
        if run.final:
            parser = _CsvChunks.resumed(path, self.options, file.shape)
            parser.rows, parser.bad, parser.first_bad = file.rows, file.bad, file.first_bad
            parser.finish()

    def _check_columns(self, path: Location, names: list[str]) -> None:
        """A file's columns, once known: those of the first file; the first file's checked
        against the options (before any task meets a misnamed column)."""
        if self.names is None:
            self.names = names
            empty = pl.DataFrame(schema=dict.fromkeys(names, pl.String))
            normalize, drop, where = self.finish
            _check_hint_columns(empty, self.options, where)
            _apply_drop(_apply_normalize(empty, normalize, where), drop, where)
        elif names != self.names:
            raise _columns_differ(path, self.paths[0], self.names, names)

    def close(self) -> tuple[Table, Table]:
        last = self.rejected_batches.flush()
        if last is not None:
            self.rejected.write(last)
        return self.parts.close(), self.rejected.close()


def _bom(head: bytes) -> int:
    """The length of the UTF-8 byte order mark a file's ``head`` starts with (0: none)."""
    return len(_BOM) if head.startswith(_BOM) else 0


def _at(run: _Run) -> tuple[int, int] | None:
    """Where a run's task starts reading (see :func:`parse_csv_run`)."""
    return None if run.start else (run.line0, run.byte0)


def _joined(before: _Run, line0: int, byte0: int, run: _Run) -> _Run:
    """``run`` with the end of ``before`` from its open record on (``line0``, ``byte0``)."""
    data: bytes | _FileRange
    if isinstance(run.data, _FileRange):
        assert isinstance(before.data, _FileRange)
        data = _FileRange(run.data.path, before.data.start + byte0 - before.byte0, run.data.end)
    else:
        assert isinstance(before.data, bytes)
        data = before.data[byte0 - before.byte0 :] + run.data
    return _Run(run.file, data, line0, byte0, run.final, run.out)


_WINDOW = 1 << 20
"""Bytes read at a time where a file is cut in place and its lines counted."""


def _read_at(fh: io.BufferedReader, at: int, n: int) -> bytes:
    fh.seek(at)
    return fh.read(n)


def _line_end(fh: io.BufferedReader, start: int, limit: int, total: int) -> int:
    """The end of the last line that ends in ``start:limit`` (after ``start``); when none
    does (a line longer than that), of the line that runs past ``limit``; else ``total``."""
    window_end = limit
    while window_end > start:
        window_start = max(start, window_end - _WINDOW)
        cut = _read_at(fh, window_start, window_end - window_start).rfind(b"\n")
        if cut >= 0:
            return window_start + cut + 1
        window_end = window_start
    at = limit
    while at < total:
        block = _read_at(fh, at, _WINDOW)
        cut = block.find(b"\n")
        if cut >= 0:
            return at + cut + 1
        if not block:  # the file was cut short meanwhile: its task will say so
            break
        at += len(block)
    return total


def _count_lines(fh: io.BufferedReader, start: int, end: int) -> int:
    """The line ends in bytes ``start:end`` of the file (numpy counts 3x faster than
    ``bytes.count``)."""
    import numpy as np

    buffer = bytearray(_WINDOW)
    values = np.frombuffer(buffer, dtype=np.uint8)
    count, at = 0, start
    fh.seek(start)
    while at < end:
        got = fh.readinto(memoryview(buffer)[: min(_WINDOW, end - at)])
        if not got:
            break
        count += int(np.count_nonzero(values[:got] == 10))
        at += got
    return count


def _in_place(path: Path) -> bool:
    """Whether the parser sees the file's own bytes, so that a task can read them where they
    lie: not gzip, not UTF-16, no bare-CR line ends (see :func:`_universal_line_ends`)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    cr_only = b"\n" not in head and b"\r" in head
    return head[:2] != b"\x1f\x8b" and head[:2] not in _UTF16_BOMS and not cr_only


def _csv_files(source: Source) -> tuple[list[Location], Any] | None:
    """The source's files and their file system when every one is CSV, else ``None``."""
    if source.path is None:
        return None
    fs: Any = None
    files: list[Location]
    if is_url(source.path):
        fs, urls = remote.list_files(str(source.path), source.storage_options)
        files = list(urls)
    else:
        files = list(source_files(source.path))
    if all(_resolve_format(f, source.format) == "csv" for f in files):
        return files, fs
    return None


def _read_csv_table(
    files: Sequence[Location],
    fs: Any,
    source: Source,
    folder: Path,
    *,
    normalize: Mapping[str, ValueMap],
    drop: Sequence[str],
    prefix: str,
    batch_rows: int,
    chunk_bytes: int,
    executor: Executor | None,
) -> tuple[Table, Table]:
    """CSV files into two tables under ``folder`` (rows, rejected lines); see
    :class:`_CsvTableReader`."""
    rows_out = TableWriter(folder / f"{prefix}rows")
    bad_out = TableWriter(folder / f"{prefix}rejected", schema=rejected_schema())
    with rows_out, bad_out:
        reader = _CsvTableReader(
            rows_out, bad_out, options=source.read, finish=(normalize, drop, _source_where(source)),
            batch_rows=batch_rows, chunk_bytes=chunk_bytes, executor=executor,
        )  # fmt: skip
        reader.read(files, fs)
        return reader.close()


# =========================================================================== bytes


@contextmanager
def _open_bytes(path: Location, fs: Any = None) -> Iterator[Callable[[int], bytes]]:
    """``read(n)`` over the file's bytes, gunzipped when they are gzip (by content, not name)."""
    if isinstance(path, str):
        fh = remote.open_file(fs, path)
    else:
        try:
            fh = path.open("rb")
        except IsADirectoryError:
            raise DataError("the path is a directory, not a file", where=str(path)) from None
        except OSError as exc:
            raise _cannot_read(path, exc) from None
    with fh:
        try:
            head = fh.read(2)
            fh.seek(0)
        except Exception as exc:
            raise _cannot_read(path, exc) from None
        if head == b"\x1f\x8b":
            unzipped = gzip.GzipFile(fileobj=fh, mode="rb")

            def read(n: int) -> bytes:
                try:
                    return unzipped.read(n)
                except (OSError, EOFError, zlib.error) as exc:
                    raise DataError(
                        "the gzip file is corrupt or truncated",
                        where=str(path),
                        found=str(exc),
                        fix="Download or copy the file again.",
                    ) from None

        else:

            def read(n: int) -> bytes:
                try:
                    return bytes(fh.read(n))
                except Exception as exc:
                    raise _cannot_read(path, exc) from None

        yield _as_utf8(path, read)


_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
"""What a file that starts with a UTF-16 byte-order mark is (Excel's "Unicode Text", exports
of Windows tools): read as UTF-8, as every reader here expects."""


def _as_utf8(path: Location, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """``read``, with a UTF-16 file (by its byte-order mark) decoded and re-encoded as UTF-8
    on the fly, at most ``n`` bytes a call; any other file's bytes as they are."""
    buffer = read(2)
    codec = _UTF16_BOMS.get(buffer)
    if codec is None:

        def plain(n: int) -> bytes:
            nonlocal buffer
            if buffer:
                out, buffer = buffer[:n], buffer[n:]
                return out + (read(n - len(out)) if len(out) < n else b"")
            return read(n)

        return plain
    import codecs

    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    buffer = b""
    done = 0  # UTF-16 bytes decoded so far, after the mark

    def recoded(n: int) -> bytes:
        nonlocal buffer, done
        while len(buffer) < n:
            raw = read(max(n, 1 << 16))
            try:
                buffer += decoder.decode(raw, final=not raw).encode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    "the file is not valid UTF-16 text",
                    where=str(path),
                    expected=f"{codec} text (the file starts with its byte-order mark)",
                    found=f"{exc.reason} at byte {2 + done + exc.start}",
                    fix="Re-save the file as UTF-8, or as UTF-16 from start to end.",
                ) from None
            done += len(raw)
            if not raw:
                break
        out, buffer = buffer[:n], buffer[n:]
        return out

    return recoded


def _cannot_read(path: Location, exc: BaseException) -> DataError:
    if isinstance(path, str):
        return remote.read_error(path, exc)
    strerror = getattr(exc, "strerror", None)
    return DataError("cannot read the file", where=str(path), found=strerror or str(exc))


def _record_chunks(
    path: Location,
    read: Callable[[int], bytes],
    size: int,
    *,
    skip_lines: int = 0,
    at: tuple[int, int] | None = None,
) -> Iterator[tuple[bytes, int, int]]:
    """The file's bytes in chunks of about ``size`` bytes, each ending at a line end, with the
    number of lines and bytes before it. A UTF-8 byte order mark and the first ``skip_lines``
    lines are dropped (they count in the line numbers). A quoted value can span a chunk's end:
    the CSV reader carries its record over to the next chunk (:func:`_stream_csv`).

    ``at``: ``read`` starts further into the file, after that many lines and bytes (no byte
    order mark, no line to skip; nothing to read is no error)."""
    size = max(1, size)
    carry = read(max(size, 4))
    line, byte = at or (0, 0)
    if at is None:
        if not carry:
            raise _empty_file(path)
        if carry.startswith(_BOM):
            carry = carry[3:]
    eof = False
    while line < skip_lines and not eof:
        nl = carry.find(b"\n")
        if nl >= 0:
            carry, byte, line = carry[nl + 1 :], byte + nl + 1, line + 1
        elif block := read(size):
            carry += block
        else:
            byte, carry, eof = byte + len(carry), b"", True
    while True:
        while not eof and len(carry) < size:
            if block := read(max(1, size - len(carry))):
                carry += block
            else:
                eof = True
        if eof:
            if carry:
                yield carry, line, byte
            return
        cut = carry.rfind(b"\n") + 1
        while cut == 0:
            if len(carry) > _MAX_RECORD_BYTES:
                raise DataError(
                    "a line does not end",
                    where=f"{path}:{line + 1}",
                    expected=f"lines shorter than {_MAX_RECORD_BYTES >> 20} MiB",
                    found=f"no line end in the {len(carry) >> 20} MiB from line {line + 1} on",
                    fix="Check that the file is text with line ends (\\n or \\r\\n), not "
                    "binary or a single huge line.",
                )
            if block := read(size):
                carry += block
                cut = carry.rfind(b"\n") + 1
            else:
                eof, cut = True, len(carry)
        piece, carry = carry[:cut], carry[cut:]
        yield piece, line, byte
        line += piece.count(b"\n")
        byte += len(piece)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they are gzip (detected by content, not by name)."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise DataError("the path is a directory, not a file", where=str(path)) from None
    except OSError as exc:
        raise _cannot_read(path, exc) from None
    return _unpack(path, raw)


def _unpack(path: Location, raw: bytes) -> bytes:
    """Gunzip ``raw`` when it is gzip (detected by content); refuse an empty file."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                "the gzip file is corrupt or truncated",
                where=str(path),
                found=str(exc),
                fix="Download or copy the file again.",
            ) from None
    if not raw:
        raise _empty_file(path)
    return raw


def _empty_file(path: Location) -> DataError:
    return DataError(
        "the file is empty",
        where=str(path),
        expected="a header and data rows",
        found="0 bytes",
        fix="Check that the file was written completely.",
    )


# =========================================================================== Parquet, JSON


def _stream_parquet(
    path: Path, options: ReadOptions, batch_rows: int, *, shown: str | None = None
) -> Iterator[Piece]:
    """The file in slices of ``batch_rows`` rows (``scan_parquet``: row groups are read as
    needed, never the whole file)."""
    where = shown or str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _cannot_read(path, exc) from None
    if size == 0:
        raise DataError("the file is empty", where=where, found="0 bytes")
    step = max(1, batch_rows)
    try:
        lazy = pl.scan_parquet(path)
        total = int(lazy.select(pl.len()).collect().item())
        if total == 0:
            yield _finish(lazy.collect(), options, where), None
        for start in range(0, total, step):
            yield _finish(lazy.slice(start, step).collect(), options, where), None
    except (pl.exceptions.PolarsError, OSError) as exc:
        with path.open("rb") as fh:
            magic = fh.read(4)
        raise DataError(
            "cannot read the Parquet file",
            where=where,
            expected="a Parquet file",
            found="no Parquet signature (PAR1) at the start"
            if magic != b"PAR1"
            else f"a damaged Parquet file ({_first_line(exc)})",
            fix="Check the file, or set data.source.format if it is not Parquet.",
        ) from None


def _stream_ndjson(path: Location, fs: Any, *, chunk_bytes: int) -> Iterator[Piece]:
    """The records of an NDJSON file, a chunk of lines at a time; a line that is not a JSON
    object is a rejected line. When the file is more than one chunk, a first pass merges the
    chunks' column types (every chunk then parses with that schema)."""
    schema: pl.Schema | None = None
    only: Piece | None = None
    for count, piece in enumerate(_ndjson_pieces(path, fs, chunk_bytes, None), start=1):
        only = piece if count == 1 else None
        if piece[0] is not None:
            schema = _merge_schema(schema, piece[0].schema)
    pieces = [only] if only is not None else _ndjson_pieces(path, fs, chunk_bytes, schema)
    rows = 0
    first_bad: pl.DataFrame | None = None
    for frame, bad in pieces:
        rows += 0 if frame is None else frame.height
        if first_bad is None and bad is not None and bad.height:
            first_bad = bad
        yield frame, bad
    if rows == 0 and first_bad is not None:
        row = first_bad.row(0, named=True)
        raise DataError(
            "cannot read the NDJSON file",
            where=f"{path}:{row['_line']}",
            expected="one JSON object per line",
            found=str(row["_reasons"]).partition(": ")[2] or None,
            fix="Fix the JSON, or set data.source.format (json = an array of records, "
            "ndjson = one record per line).",
        )


def _merge_schema(schema: pl.Schema | None, other: pl.Schema) -> pl.Schema:
    if schema is None or schema == other:
        return other
    return pl.concat(
        [pl.DataFrame(schema=schema), pl.DataFrame(schema=other)], how="diagonal_relaxed"
    ).schema


def _ndjson_pieces(
    path: Location, fs: Any, chunk_bytes: int, schema: pl.Schema | None
) -> Iterator[Piece]:
    with _open_bytes(path, fs) as read:
        for data, line0, byte0 in _record_chunks(path, read, chunk_bytes):
            text = _decode(path, data, "utf8", line0=line0, byte0=byte0)
            yield _parse_ndjson(path, data, text, line0, schema)


def _parse_ndjson(
    path: Location, data: bytes, text: str, line0: int, schema: pl.Schema | None
) -> Piece:
    if not text.strip():
        return None, None
    try:
        return pl.read_ndjson(data, schema=schema, infer_schema_length=None), None
    except (pl.exceptions.PolarsError, ValueError):
        pass  # find the lines that are not JSON objects, read the others
    good: list[str] = []
    bad: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.split("\n"), start=line0 + 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((number, line, f"{exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(value, dict):
            bad.append((number, line, f"a JSON {type(value).__name__}, not an object"))
            continue
        good.append(line)
    frame = None
    if good:
        try:
            frame = pl.read_ndjson(
                ("\n".join(good) + "\n").encode(), schema=schema, infer_schema_length=None
            )
        except (pl.exceptions.PolarsError, ValueError) as exc:
            raise DataError(
                "cannot read the NDJSON file",
                where=f"{path}:{line0 + 1}",
                expected="one JSON object per line",
                found=_first_line(exc),
                fix="Fix the JSON (the types of a key must agree across lines).",
            ) from None
    rejected = pl.DataFrame(
        {
            "_file": [str(path)] * len(bad),
            "_line": [b[0] for b in bad],
            "_text": [b[1].removesuffix("\r") for b in bad],
            "_reasons": [f"line {b[0]} is not a JSON object: {b[2]}" for b in bad],
        },
        schema=rejected_schema(),
    )
    return frame, rejected


# =========================================================================== CSV


def _stream_csv(
    path: Location, options: ReadOptions, fs: Any = None, *, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Piece]:
    """A CSV file, ``chunk_bytes`` at a time (cut at the end of a record), each chunk parsed
    with the whole-file rules; lines with more or fewer fields than the header are rejected
    lines. Memory is bounded by the chunk size, whatever the file's size."""
    _check_separator(path, options)
    parser = _CsvChunks(path, options)
    with _open_bytes(path, fs) as raw_read:
        read, _ = _universal_line_ends(raw_read, chunk_bytes)
        chunks = _record_chunks(path, read, chunk_bytes, skip_lines=options.skip_rows)
        yield from _parse_chunks(parser, chunks, final=True)
    parser.finish()


def _check_separator(path: Location, options: ReadOptions) -> None:
    if len(options.separator.encode()) != 1:
        raise DataError(
            "the CSV separator must be a single character",
            where=str(path),
            found=repr(options.separator),
            fix="For files separated by ', ' use separator ',' with strip_whitespace: true.",
        )


def _parse_chunks(
    parser: _CsvChunks, chunks: Iterable[tuple[bytes, int, int]], *, final: bool
) -> Generator[Piece, None, tuple[int, int] | None]:
    """The rows and rejected lines of consecutive chunks of a file (``final``: the last is
    the file's end). A record whose quoted value is still open at a chunk's end is carried
    over to the next chunk; still open after the last (not ``final``), the generator returns
    where it starts (lines and bytes before it): it goes on in what follows."""
    path, options = parser.path, parser.options
    held: tuple[bytes, int, int] | None = None  # an open record carried to the next chunk
    for (block, block_line0, block_byte0), last in _with_last(chunks):
        raw, line0, byte0 = block, block_line0, block_byte0
        if held is not None:
            raw, line0, byte0 = held[0] + block, held[1], held[2]
            held = None
        data, text = _chunk_text(path, raw, options, line0=line0, byte0=byte0)
        piece, open_at = parser.parse(data, text, line0, final=final and last)
        if piece[0] is not None or piece[1] is not None:
            yield piece
        if open_at is not None:  # a quoted value still open: its record goes on
            cut = _line_start(raw, open_at)
            held = (raw[cut:], line0 + open_at, byte0 + cut)
    return None if held is None else (held[1], held[2])


def _chunk_text(
    path: Location, raw: bytes, options: ReadOptions, *, line0: int, byte0: int
) -> tuple[bytes, str]:
    """A chunk's bytes as UTF-8 and as text, checked: no NUL byte, valid in its encoding."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(
            "the file looks binary, not like CSV text",
            where=str(path),
            expected="text",
            found=f"NUL bytes (the first at byte {byte0 + nul})",
            fix="Check the file; set data.source.format if it is Parquet or JSON. "
            "A UTF-16 file without its byte-order mark must be converted to UTF-8.",
        )
    text = _decode(path, raw, options.encoding, line0=line0, byte0=byte0)
    return (raw if options.encoding == "utf8" else text.encode("utf-8")), text


def _universal_line_ends(
    read: Callable[[int], bytes], size: int
) -> tuple[Callable[[int], bytes], bytes]:
    """``read``, with a file whose lines end in a bare CR (classic Mac, old Excel for Mac)
    read as if they ended in LF: its first 64 KiB hold a CR and no LF. And the first ``size``
    bytes (at least 64 KiB), peeked, as ``read`` will return them."""
    buffer = read(max(size, 1 << 16))
    cr_only = b"\n" not in buffer and b"\r" in buffer
    if cr_only:
        buffer = buffer.replace(b"\r", b"\n")
    head = buffer

    def reader(n: int) -> bytes:
        nonlocal buffer
        if buffer:  # the peeked bytes first, ``n`` at a time
            out, buffer = buffer[:n], buffer[n:]
            return out
        block = read(n)
        return block.replace(b"\r", b"\n") if cr_only else block

    return reader, head


def _with_last(items: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """``(item, is_last)`` for each item."""
    it = iter(items)
    try:
        current = next(it)
    except StopIteration:
        return
    for following in it:
        yield current, False
        current = following
    yield current, True


def _line_start(data: bytes, line: int) -> int:
    """The offset in ``data`` of its ``line``-th line (0-based)."""
    at = 0
    for _ in range(line):
        at = data.index(b"\n", at) + 1
    return at


class _CsvShape(NamedTuple):
    """What the chunks of a CSV file share once its start has been read."""

    expect_header: bool
    """The header is still to come (only skipped lines so far)."""
    header: list[str] | None
    width: int | None
    names: list[str]

    @property
    def known(self) -> bool:
        """Header and width are known: the file's later chunks can be parsed in any order."""
        return self.width is not None and not self.expect_header


class _CsvChunks:
    """Parses the chunks of one CSV file in order, keeping what they share: the header, the
    number of fields, the column names, and the counts for the end-of-file checks."""

    def __init__(self, path: Location, options: ReadOptions) -> None:
        self.path = path
        self.options = options
        self.expect_header = options.has_header
        self.header: list[str] | None = None
        self.width: int | None = None
        self.names: list[str] = []
        self.rows = 0
        self.first_bad: dict[str, Any] | None = None
        self.bad = 0
        self._chunk_options = options.model_copy(update={"skip_rows": 0})

    @property
    def shape(self) -> _CsvShape:
        """What the chunks share, known once the header (or first line) has been read."""
        return _CsvShape(self.expect_header, self.header, self.width, list(self.names))

    @classmethod
    def resumed(cls, path: Location, options: ReadOptions, shape: _CsvShape) -> _CsvChunks:
        """A parser for a later chunk of the file, from what earlier chunks found."""
        parser = cls(path, options)
        parser.expect_header, parser.header, parser.width = shape[:3]
        parser.names = list(shape.names)
        return parser

    def parse(
        self, data: bytes, text: str, line0: int, *, final: bool = True
    ) -> tuple[Piece, int | None]:
        """One chunk (``line0`` lines of the file before it): its rows and rejected lines.

        When a quoted value is still open at the chunk's end and the chunk is not the file's
        last (``final``), the lines before its record are parsed, and their number is returned
        too: the caller carries the rest over to the next chunk."""
        if self._plain(data, text):
            piece = self._parse_plain(data, line0)
            if piece is not None:
                return piece, None
        options = self._chunk_options.model_copy(update={"has_header": self.expect_header})
        layout = _scan(self.path, data, text, options, final=final)
        if layout.open_at is None:
            return self._parse(layout, data, line0, options), None
        if layout.open_at == 0:
            return (None, None), 0
        head = data[: _line_start(data, layout.open_at)]
        return self._parse(layout, head, line0, options), layout.open_at

    def _plain(self, data: bytes, text: str) -> bool:
        """Whether a chunk can be parsed without scanning its lines first: past the header,
        of a file of several columns, no quote in it, no comment prefix, and no carriage
        return but at line ends."""
        return (
            not self.expect_header
            and (self.width or 0) > 1
            and _QUOTE not in text
            and not self.options.comment_prefix
            and (b"\r" not in data or data.count(b"\r") == data.count(b"\r\n"))
        )

    def _parse_plain(self, data: bytes, line0: int) -> Piece | None:
        """A :meth:`_plain` chunk in one pass of polars' parser: each line is a row (one
        column more than the file's, so a line with more fields shows), and a line's number
        of fields is its length less the lengths of its values, plus one. The lines with
        another number (rare) are read again one by one: blank ones are skipped, the others
        rejected, exactly as after a scan. ``None`` when the parser's rows are not the lines,
        or more than :data:`_ODD_LINES` are odd (then the caller scans)."""
        width = self.width or 0
        try:
            parsed = pl.read_csv(
                data,
                has_header=False,
                separator=self.options.separator,
                quote_char=None,
                schema={f"column_{i}": pl.String for i in range(width + 1)},
                missing_columns="insert",
                extra_columns="ignore",
                truncate_ragged_lines=True,
                empty_string_is_null=False,
                raise_if_empty=False,
            )
        except pl.exceptions.PolarsError:
            return None
        raw = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(raw == ord("\n"))
        if raw.size and raw[-1] != ord("\n"):
            ends = np.append(ends, raw.size)
        if parsed.height != ends.size:
            return None
        starts = np.concatenate(([0], ends[:-1] + 1))
        lengths = ends - starts
        crlf = np.flatnonzero(lengths > 0)
        crlf = crlf[raw[ends[crlf] - 1] == ord("\r")]
        lengths[crlf] -= 1  # polars drops the CR of a CRLF line end
        values = parsed.select(pl.sum_horizontal(pl.all().str.len_bytes())).to_series()
        fields = lengths - values.to_numpy().astype(np.int64) + 1
        odd = np.flatnonzero(fields != width)
        if odd.size > _ODD_LINES:
            return None  # many: the scan counts them without a line of Python each
        rejected = None
        if odd.size:
            lines = [data[starts[i] : starts[i] + lengths[i]].decode("utf-8") for i in odd]
            sep = self.options.separator  # no quote in the chunk: fields are separators + 1
            counts = [line.count(sep) + 1 for line in lines]
            layout = pl.DataFrame(
                {"lineno": odd + 1, "fields": counts, "line": lines},
                schema={"lineno": pl.Int64, "fields": pl.Int64, "line": pl.String},
            ).select("lineno", "fields", _blank(), "line", problem=pl.lit(None, pl.String))
            ragged = layout.filter(~pl.col("blank"))
            if ragged.height:
                rejected = self._rejected(ragged, line0)
            keep = np.ones(parsed.height, dtype=bool)
            keep[odd] = False
            parsed = parsed.filter(pl.Series(keep))
        df = parsed.drop(parsed.columns[width:])
        return self._rows(df, rejected)

    def _rows(self, df: pl.DataFrame, rejected: pl.DataFrame | None) -> Piece:
        """A chunk's parsed rows, named, counted and cleaned, with its rejected lines."""
        if df.height == 0:
            return None, rejected
        df.columns = self.names
        self.rows += df.height
        return _clean_strings(df, self.options), rejected

    def _parse(self, layout: _Layout, data: bytes, line0: int, options: ReadOptions) -> Piece:
        header_here = False
        if self.expect_header:
            if layout.header is None:  # nothing but skipped lines so far
                return None, None
            self.header, self.expect_header, header_here = layout.header, False, True
        lines = layout.lines.filter(~pl.col("blank"))
        if self.width is None:
            if lines.height == 0 and self.header is None:
                return None, None
            self.width, self.names = _csv_columns(
                self.path, self.header, lines, self.options, exact=layout.exact
            )
        if lines.height == 0:
            return None, None
        ragged = _ragged(lines, self.width, self.options.separator, not layout.exact)
        rejected = None
        if ragged.height:
            rejected = self._rejected(ragged, line0)
            lines = lines.filter(~pl.col("lineno").is_in(ragged["lineno"].implode()))
            if lines.height == 0:
                return None, rejected
        try:
            df = self._polars_rows(layout, lines, ragged, data, header_here, options)
        except _Unparsable:
            # quoting polars refuses (a quote inside an unquoted value, text after a closing
            # quote): the csv module reads the records one by one, and rejects what it cannot
            df, unreadable = self._records(lines)
            if unreadable.height:
                more = self._rejected(unreadable, line0)
                rejected = more if rejected is None else pl.concat([rejected, more]).sort("_line")
            if df.height == 0:
                return None, rejected
        if df.width != self.width and df.height:
            raise DataError(  # pragma: no cover - defensive: scan and parser disagree
                "cannot parse the CSV file consistently",
                where=str(self.path),
                expected=f"{self.width} fields per line",
                found=f"{df.width} columns",
                fix="Check read.separator and the file's quoting.",
            )
        return self._rows(df, rejected)

    def _polars_rows(
        self,
        layout: _Layout,
        lines: pl.DataFrame,
        ragged: pl.DataFrame,
        data: bytes,
        header_here: bool,
        options: ReadOptions,
    ) -> pl.DataFrame:
        """The rows of the good ``lines``, parsed by polars (:class:`_Unparsable` when it
        refuses them).

        polars takes the width from the header, else from the chunk's first line: parse the
        chunk as it is when that line is a good one (and no line has a quoting problem), and
        drop the blank and ragged lines' rows; otherwise (rare) parse the good lines only."""
        all_lines = layout.lines
        first_is_good = all_lines.height and (
            not bool(all_lines["blank"][0])
            and (ragged.height == 0 or int(ragged["lineno"][0]) != int(all_lines["lineno"][0]))
        )
        if (header_here or first_is_good) and all_lines["problem"].is_null().all():
            parsed = self._read(data, header_here, options.comment_prefix, ragged.height > 0)
            if parsed.height == all_lines.height:
                keep = all_lines.select(
                    ~pl.col("blank") & ~pl.col("lineno").is_in(ragged["lineno"].implode())
                ).to_series()
                return parsed if bool(keep.all()) else parsed.filter(keep)
            if ragged.height == 0:  # defensive: drop rows with no value at all
                return parsed.filter(
                    ~pl.all_horizontal(pl.all().is_null() | (pl.all().str.strip_chars() == ""))
                )
        body = (str(lines["line"].str.join("\n").item()) + "\n").encode()
        return self._read(body, False, None, False)

    def _read(self, data: bytes, header: bool, comment: str | None, ragged: bool) -> pl.DataFrame:
        try:
            return pl.read_csv(
                data,
                has_header=header,
                separator=self.options.separator,
                comment_prefix=comment,
                quote_char=_QUOTE,
                infer_schema=False,
                empty_string_is_null=False,
                truncate_ragged_lines=ragged,  # their rows are dropped
                raise_if_empty=False,
            )
        except pl.exceptions.PolarsError as exc:
            raise _Unparsable(str(exc)) from None

    def _records(self, lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The records of ``lines`` read one by one with the csv module (strictly), as rows;
        and the lines it cannot read as a row of the file's width."""
        width, sep = self.width or 0, self.options.separator
        names = [f"column_{i}" for i in range(width)]
        texts = [str(t) for t in lines["line"].to_list()]
        try:  # one reader over all the records (the records of a slow scan read cleanly)
            records = list(
                csv.reader((t + "\n" for t in texts), delimiter=sep, quotechar=_QUOTE, strict=True)
            )
        except csv.Error:
            records = []
        if len(records) == len(texts) and all(len(r) == width for r in records):
            frame = pl.DataFrame(records, schema=dict.fromkeys(names, pl.String), orient="row")
            return frame, lines.clear()
        rows: list[list[str]] = []
        bad: list[int] = []
        problems: list[str] = []
        counts: list[int] = []
        for i, raw in enumerate(texts):
            fields, problem = _read_record(raw, sep)
            if fields is not None and len(fields) == width:
                rows.append(fields)
                continue
            bad.append(i)
            counts.append(len(fields) if fields is not None else 1)
            problems.append(problem or "")
        frame = pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
        unreadable = lines[bad].with_columns(
            fields=pl.Series(counts, dtype=pl.Int64),
            problem=pl.Series(problems, dtype=pl.String).replace("", None),
        )
        return frame, unreadable

    def _rejected(self, ragged: pl.DataFrame, line0: int) -> pl.DataFrame:
        width, sep = self.width or 0, self.options.separator
        line = (pl.col("lineno") + line0).cast(pl.Int64)
        frame = ragged.select(
            pl.lit(str(self.path), dtype=pl.String).alias("_file"),
            line.alias("_line"),
            pl.col("line").cast(pl.String).alias("_text"),
            pl.when(pl.col("problem").is_not_null())
            .then(pl.format("line {} has {}", line, pl.col("problem")))
            .otherwise(
                pl.format(
                    "line {} has {} fields, expected {} separated by {}: {}",
                    line,
                    pl.col("fields"),
                    pl.lit(width),
                    pl.lit(repr(sep)),
                    pl.when(pl.col("fields") < width).then(pl.lit(_FEWER)).otherwise(pl.lit(_MORE)),
                )
            )
            .alias("_reasons"),
        )
        if self.first_bad is None:
            self.first_bad = {**ragged.row(0, named=True), "lineno": int(frame["_line"][0])}
        self.bad += frame.height
        # a copy that owns its text: a filtered string column keeps every buffer of the
        # chunk's lines, and rejected lines are kept across many chunks
        return pl.DataFrame(frame.to_dict(as_series=False), schema=rejected_schema())

    def finish(self) -> None:
        """The end-of-file checks: at least one row; a file where no line is a row is an
        error naming its first line (a wrong separator, most likely)."""
        if self.rows:
            return
        if self.first_bad is not None:
            first, width = self.first_bad, self.width
            line = str(first["line"])
            shown = line if len(line) <= 80 else line[:77] + "..."
            fewer = first["fields"] < (width or 0)
            more = f"; {self.bad - 1} more line(s) are ragged too" if self.bad > 1 else ""
            if first.get("problem"):
                raise DataError(
                    f"no line can be read as a row: line {first['lineno']} has "
                    + str(first["problem"]).split(";")[0],
                    where=f"{self.path}:{first['lineno']}",
                    found=f"{shown!r}{more}",
                    fix="A value holding a quote must be quoted whole, with the quote doubled "
                    '("a""b").',
                )
            raise DataError(
                f"no line can be read as a row: line {first['lineno']} has "
                f"{'fewer' if fewer else 'more'} fields than the "
                + ("header" if self.header is not None else "first line"),
                where=f"{self.path}:{first['lineno']}",
                expected=f"{width} fields separated by {self.options.separator!r}",
                found=f"{first['fields']} fields: {shown!r}{more}",
                fix=(_FEWER if fewer else "Check read.separator, and quote values that "
                     "contain the separator."),
            )  # fmt: skip
        raise DataError(
            "no data rows",
            where=str(self.path),
            expected="at least one data row",
            found="a header only"
            if self.header is not None and "".join(self.header).strip()
            else "only blank or skipped lines",
            fix="Check the file (and read.skip_rows / read.has_header).",
        )


def _csv_columns(
    path: Location,
    header: list[str] | None,
    lines: pl.DataFrame,
    options: ReadOptions,
    *,
    exact: bool,
) -> tuple[int, list[str]]:
    """The file's number of fields (the header's, else the first data line's) and its column
    names, checked: unique, none empty, ``read.columns`` of the right length."""
    if header is not None:
        width = len(header)
        names = [n.strip() for n in header] if options.strip_whitespace else header
        if options.columns is None:
            _check_unique(names, path)
            empty = [i + 1 for i, n in enumerate(names) if n == ""]
            if empty:
                raise DataError(
                    "the header has a column without a name",
                    where=str(path),
                    expected="a name for every column",
                    found=f"no name for column {_ordinal_list(empty)}",
                    fix="Name it in the header, or give all names with read.columns.",
                )
    else:
        first = str(lines["line"][0])
        width = int(lines["fields"][0]) if exact else len(_split_record(first, options.separator))
        names = []
        if options.columns is None:
            raise DataError(
                "the file has no header and no column names are configured",
                where=str(path),
                expected=f"read.columns with {width} names",
                found="read.has_header: false without read.columns",
                fix="List the column names under read.columns (or set read.has_header: true).",
            )
    if options.columns is not None:
        if len(options.columns) != width:
            raise DataError(
                "read.columns does not match the file's fields",
                where=str(path),
                expected=f"{width} names (the file has {width} fields per line)",
                found=f"{len(options.columns)} names",
                fix="Give exactly one name per field, in file order.",
            )
        _check_unique(options.columns, path)
        names = list(options.columns)
    return width, list(names)


def _ragged(lines: pl.DataFrame, width: int, sep: str, approximate: bool) -> pl.DataFrame:
    """The lines whose field count is not ``width``, and those with a quoting problem. The fast
    scan's count (separators outside quotes) is approximate: the suspects are confirmed with
    the csv module."""
    ragged = lines.filter((pl.col("fields") != width) | pl.col("problem").is_not_null())
    if ragged.height and approximate:
        head = [_read_record(str(line), sep) for line in ragged["line"].head(1000)]
        fields = [len(f) if f is not None else 1 for f, _ in head]
        problems = [why for _, why in head]
        keep = [why is not None or n != width for n, why in zip(fields, problems, strict=True)]
        rest = ragged.height - len(head)
        ragged = ragged.with_columns(
            fields=pl.Series(fields + ragged["fields"].to_list()[len(head) :], dtype=pl.Int64),
            problem=pl.Series(problems + [None] * rest, dtype=pl.String),
        ).filter(pl.Series(keep + [True] * rest))
    return ragged


@dataclass(frozen=True)
class _Layout:
    """The line structure of a CSV file, found before parsing it."""

    header: list[str] | None
    """Header fields (when the file has a header)."""
    lines: pl.DataFrame
    """One row per data record, in file order: ``lineno`` (1-based physical line of the
    record's start), ``fields`` (field count), ``blank`` (empty or whitespace-only line),
    ``line`` (its text), ``problem`` (why it cannot be a row beyond its field count, or null)."""
    exact: bool = False
    """The records come from the slow scan (the csv module): their field counts are exact."""
    open_at: int | None = None
    """The chunk's lines before a record whose quoted value is still open at the chunk's end
    (only when more of the file follows): that record belongs to the next chunk."""


def _scan(
    path: Location, data: bytes, text: str, options: ReadOptions, *, final: bool = True
) -> _Layout:
    """Split the file into lines (natively) and count each line's fields.

    Fields are counted by separators outside quotes. When a line with a quote is not well
    formed on its own (each value plain, or quoted whole with inner quotes doubled), a quoted
    value may span lines or a quote may be stray: then the (slower) ``csv`` module scans the
    records instead (:func:`_scan_slow`).
    """
    lines = _split_lines(data, text)
    lines = lines.with_row_index("lineno", offset=1).slice(options.skip_rows)
    if options.comment_prefix:
        lines = lines.filter(~pl.col("line").str.starts_with(options.comment_prefix))
    if lines.height and _QUOTE in text:
        line = pl.col("line")
        if lines.select(
            (
                line.str.contains(_QUOTE, literal=True) & ~line.str.contains(_well_formed(options))
            ).any()
        ).item():
            return _scan_slow(path, text, options, final=final)
    sep = options.separator
    line = pl.col("line")
    unquoted = (  # when/then computes both sides: skip the regex when there is no quote
        pl.when(line.str.contains(_QUOTE, literal=True))
        .then(line.str.replace_all(r'"[^"]*"', ""))
        .otherwise(line)
        if _QUOTE in text
        else line
    )
    lines = lines.with_columns(
        fields=(unquoted.str.count_matches(sep, literal=True) + 1).cast(pl.Int64),
        problem=pl.lit(None, dtype=pl.String),
    ).with_columns(_blank())
    header: list[str] | None = None
    if options.has_header:
        first = lines.head(1)
        if first.height == 0:
            return _Layout(header=None, lines=_empty_layout())
        header = _split_record(first["line"][0], sep)
        lines = lines.slice(1)
    return _Layout(header=header, lines=lines.select(_LAYOUT_SCHEMA.names()))


def _blank() -> pl.Expr:
    """A line that is no row and no rejected line: one field of nothing but spaces (a line of
    tabs in a tab-separated file is empty fields)."""
    return ((pl.col("fields") == 1) & ~pl.col("line").str.contains(r"\S")).alias("blank")


def _split_lines(data: bytes, text: str) -> pl.DataFrame:
    """The lines of ``data`` (without line ends), split by polars' native reader."""
    marker = next((m for m in ("\x1f", "\x1e", "\x1d", "\x1c", "\x01") if m not in text), None)
    if marker is None:  # every marker byte occurs: split in Python (odd files only)
        rows = text.split("\n")
        if rows and rows[-1] == "":
            rows.pop()
        return pl.DataFrame(
            {"line": [r.removesuffix("\r") for r in rows]}, schema={"line": pl.String}
        )
    frame = pl.read_csv(
        data,
        has_header=False,
        separator=marker,
        quote_char=None,
        infer_schema=False,
        empty_string_is_null=False,
        new_columns=["line"],
        raise_if_empty=False,
    )
    if frame.width == 0:
        return pl.DataFrame(schema={"line": pl.String})
    return frame.select(pl.col("line").fill_null(""))


def _well_formed(options: ReadOptions) -> str:
    """A regular expression matching a line that is a whole record: each value plain (no
    quote), or quoted whole with its quotes doubled."""
    sep = re.escape(options.separator)
    value = f'(?:[^"{sep}]*|"(?:[^"]|"")*")'
    return f"^{value}(?:{sep}{value})*\r?$"


_UNBALANCED = (
    "a quote that opens a value which does not close{how}; a value holding a quote must be "
    'quoted whole, with the quote doubled ("a""b")'
)


def _scan_slow(path: Location, text: str, options: ReadOptions, *, final: bool) -> _Layout:
    """The records of ``text`` as the ``csv`` module reads them (strictly: a closing quote must
    be followed by the separator or the line's end), a quoted value spanning at most
    :data:`_MAX_RECORD_LINES` lines.

    A quote that opens a value which does not close within them, or not cleanly, is an
    unbalanced quote: its line becomes a record with that ``problem`` and reading resumes at
    the next line, so one stray quote costs one line, not the rest of the file. A value still
    open at the end of a chunk that is not the file's last is left to the next chunk
    (``open_at``)."""
    pieces = text.split("\n")  # not splitlines(): only "\n" ends a line, as for polars
    physical: list[int] = []
    kept: list[str] = []
    for number, piece in enumerate(pieces, start=1):
        line = piece if number == len(pieces) else piece + "\n"
        if not line:
            break
        if number <= options.skip_rows:
            continue
        if options.comment_prefix and line.startswith(options.comment_prefix):
            continue
        physical.append(number)
        kept.append(line)
    header: list[str] | None = None
    out: list[tuple[int, int, bool, str, str | None]] = []  # rows of _LAYOUT_SCHEMA

    position = 0
    while position < len(kept):
        cursor = _Cursor(kept, position)
        reader = csv.reader(
            cursor.lines(), delimiter=options.separator, quotechar=_QUOTE, strict=True
        )
        stray: str | None = None
        try:
            for record in reader:
                start, end = cursor.start, position + reader.line_num
                if cursor.cut:  # the record ran into the limit or the end: not a record
                    stray = cursor.cut
                    break
                cursor.start = end
                raw = "".join(kept[start:end])
                if header is None and options.has_header:
                    header = record
                    continue
                blank = len(record) <= 1 and raw.strip() == ""
                out.append((physical[start], len(record), blank, raw.rstrip("\r\n"), None))
        except csv.Error as exc:  # strict: the end of the data inside a value, or text after it
            stray = cursor.cut or f" cleanly ({exc})"
        if stray is None:
            break
        start = cursor.start
        if stray == _AT_END and not final:
            open_at = physical[start] - 1
            return _Layout(header, _layout(out), exact=True, open_at=open_at)
        if header is None and options.has_header:
            raise DataError(
                "the header has an unbalanced quote",
                where=f"{path}:{physical[start]}",
                expected="a header whose quoted names close on their line",
                found=kept[start].rstrip("\r\n")[:200],
                fix='Check the quoting of the header: a quoted name ends with a quote ("name").',
            )
        problem = _UNBALANCED.format(how=stray)
        out.append((physical[start], 1, False, kept[start].rstrip("\r\n"), problem))
        position = start + 1
    return _Layout(header=header, lines=_layout(out), exact=True)


_AT_END = " before the end of the file"


class _Cursor:
    """Feeds ``lines[first:]`` to a csv reader, a record's lines at most
    :data:`_MAX_RECORD_LINES` (and :data:`_MAX_RECORD_BYTES`) from its ``start``; ``cut`` says
    why it stopped feeding (the limit, or the end of the lines)."""

    def __init__(self, lines: list[str], first: int) -> None:
        self._lines = lines
        self.start = first
        self.cut = ""

    def lines(self) -> Iterator[str]:
        size, start = 0, self.start
        for i in range(self.start, len(self._lines)):
            if self.start != start:
                size, start = 0, self.start
            size += len(self._lines[i])
            if i - start >= _MAX_RECORD_LINES or size > _MAX_RECORD_BYTES:
                self.cut = f" within {_MAX_RECORD_LINES:,} lines"
                return
            yield self._lines[i]
        self.cut = _AT_END


_ODD_LINES = 1000
"""Lines of a chunk without quotes that may be read one by one (blank or ragged) after its
one-pass parse; beyond, the chunk is scanned."""

_LAYOUT_SCHEMA = pl.Schema(
    {
        "lineno": pl.Int64,
        "fields": pl.Int64,
        "blank": pl.Boolean,
        "line": pl.String,
        "problem": pl.String,
    }
)


def _layout(rows: list[tuple[int, int, bool, str, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=_LAYOUT_SCHEMA, orient="row")


def _empty_layout() -> pl.DataFrame:
    return pl.DataFrame(schema=_LAYOUT_SCHEMA)


def _split_record(line: str, sep: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=sep, quotechar=_QUOTE), [])
    except csv.Error:  # a bare CR inside the line
        return next(csv.reader([line.replace("\r", " ")], delimiter=sep, quotechar=_QUOTE), [])


class _Unparsable(Exception):
    """polars cannot parse a chunk (its quoting): the csv module reads it record by record."""


def _read_record(raw: str, sep: str) -> tuple[list[str] | None, str | None]:
    """One record's fields, read strictly; or None and why it is not a record."""
    ended = False

    def feed() -> Iterator[str]:
        nonlocal ended
        yield raw
        ended = True

    try:
        fields = next(csv.reader(feed(), delimiter=sep, quotechar=_QUOTE, strict=True), [])
    except csv.Error as exc:
        how = " on its line" if ended else f" cleanly ({exc})"
        return None, _UNBALANCED.format(how=how)
    if ended:  # the reader asked for more: a quoted value is still open
        return None, _UNBALANCED.format(how=" on its line")
    return fields, None


def _decode(path: Location, data: bytes, encoding: str, *, line0: int = 0, byte0: int = 0) -> str:
    """``data`` as text; ``line0``/``byte0``: the lines and bytes of the file before it."""
    codec = {"utf8": "utf-8", "utf8-lossy": "utf-8", "latin1": "latin-1", "cp1252": "cp1252"}
    errors = "replace" if encoding == "utf8-lossy" else "strict"
    try:
        return data.decode(codec.get(encoding, encoding), errors=errors)
    except UnicodeDecodeError as exc:
        line = line0 + data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 4]
        other = "latin1" if encoding == "utf8" else "utf8-lossy"
        raise DataError(
            f"the file is not valid {encoding} text",
            where=f"{path}:{line}",
            expected=f"{encoding}-encoded text",
            found=f"the bytes {bad!r} at byte {byte0 + exc.start}",
            fix=f"Set read.encoding: {other} (or cp1252 for Windows files), or re-save the file "
            "as UTF-8.",
        ) from None


# =========================================================================== builtin


def _read_builtin(name: str) -> pl.DataFrame:
    import sklearn.datasets

    from modelyard.data.frames import from_pandas

    bunch = getattr(sklearn.datasets, _BUILTIN_LOADERS[name])(as_frame=True)
    frame = bunch.frame
    df = from_pandas(frame)
    if name != "diabetes":
        classes = [str(c) for c in bunch.target_names]
        df = df.with_columns(
            pl.col("target")
            .cast(pl.Int64)
            .replace_strict(list(range(len(classes))), classes, return_dtype=pl.String)
        )
    return df


# =========================================================================== after reading


_DECIMAL_COMMA = r"^[+-]?(\d+|\d{1,3}(\.\d{3})+),\d+$"
"""A number written with a decimal comma (points between thousands allowed): ``-1.234,5``."""


def _clean_strings(df: pl.DataFrame, options: ReadOptions) -> pl.DataFrame:
    """strip_whitespace, then the empty string and the null values become null; with
    ``decimal_comma``, numbers written with one are rewritten with a decimal point; with
    ``date_format``, the values of the date columns in that format are rewritten in ISO 8601
    (:func:`_iso_dates`)."""
    text_cols = [c for c, t in df.schema.items() if t == pl.String]
    if not text_cols:
        return df
    nulls = ["", *options.null_values]
    dates = _date_columns(options)
    exprs = []
    for name in text_cols:
        col = pl.col(name)
        if options.strip_whitespace:
            col = col.str.strip_chars()
        if options.decimal_comma:
            number = col.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
            col = pl.when(col.str.contains(_DECIMAL_COMMA)).then(number).otherwise(col)
        if name in dates and options.date_format is not None:
            col = _iso_dates(col, options.date_format)
        exprs.append(pl.when(col.is_in(nulls)).then(None).otherwise(col).alias(name))
    return df.with_columns(exprs)


def _date_columns(options: ReadOptions) -> set[str]:
    """The columns ``read.date_format`` applies to: ``parse_dates``, and the ``dtypes`` of
    date or datetime."""
    typed = {c for c, t in options.dtypes.items() if t in ("date", "datetime")}
    return set(options.parse_dates) | typed


_TIME_DIRECTIVES = ("%H", "%I", "%k", "%l", "%M", "%S", "%T", "%R", "%r", "%c", "%p", "%s")


def _iso_dates(col: pl.Expr, fmt: str) -> pl.Expr:
    """The values of ``col`` in the strftime format ``fmt`` rewritten in ISO 8601 (a date, or
    a date and time when the format has a time); any other value as it is, for validation to
    judge. A format with a UTC offset (``%z``) gives the time in UTC."""
    timed = any(d in fmt for d in _TIME_DIRECTIVES)
    if not timed:
        parsed = col.str.strptime(pl.Date, fmt, strict=False, exact=True)
        return pl.coalesce(parsed.dt.strftime("%Y-%m-%d"), col)
    parsed = col.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True)
    if "%z" in fmt:
        parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return pl.coalesce(parsed.dt.strftime("%Y-%m-%d %H:%M:%S%.f").str.replace(r"\.0+$", ""), col)


def _rename(df: pl.DataFrame, columns: Sequence[str], path: Location) -> pl.DataFrame:
    if len(columns) != df.width:
        raise DataError(
            "read.columns does not match the file's columns",
            where=str(path),
            expected=f"{df.width} names (the file has {df.width} columns)",
            found=f"{len(columns)} names",
            fix="Give exactly one name per column, in file order.",
        )
    _check_unique(columns, path)
    return df.rename(dict(zip(df.columns, columns, strict=True)))


def _check_unique(names: Sequence[str], path: Location) -> None:
    dups = [name for name, count in Counter(names).items() if count > 1]
    if dups:
        raise DataError(
            "duplicate column names",
            where=str(path),
            expected="unique column names",
            found=f"{_names(sorted(set(dups)))} more than once",
            fix="Rename the duplicates in the header, or give unique names with read.columns.",
        )


def _check_hint_columns(df: pl.DataFrame, options: ReadOptions, where: str) -> None:
    for key, names in (("read.parse_dates", options.parse_dates), ("read.dtypes", options.dtypes)):
        for name in names:
            if name not in df.columns:
                raise _unknown_column(name, df.columns, where, key)


def _apply_normalize(
    df: pl.DataFrame, normalize: Mapping[str, ValueMap], where: str
) -> pl.DataFrame:
    exprs: list[pl.Expr] = []
    for name, vm in normalize.items():
        if name not in df.columns:
            raise _unknown_column(name, df.columns, where, "data.normalize")
        col = pl.col(name)
        if df.schema[name] != pl.String:
            col = col.cast(pl.String)
        if vm.strip_suffix:
            col = col.str.strip_suffix(vm.strip_suffix)
        if vm.strip_prefix:
            col = col.str.strip_prefix(vm.strip_prefix)
        if vm.lowercase:
            col = col.str.to_lowercase()
        if vm.map:
            col = col.replace(vm.map)
        exprs.append(col.alias(name))
    return df.with_columns(exprs) if exprs else df


def _apply_drop(df: pl.DataFrame, drop: Sequence[str], where: str) -> pl.DataFrame:
    for name in drop:
        if name not in df.columns:
            raise _unknown_column(name, df.columns, where, "data.columns.drop")
    return df.drop(list(drop)) if drop else df


def _apply_sample(df: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    if n < 1:
        raise DataError(
            "the sample size must be positive", expected="an integer >= 1", found=str(n)
        )
    if n >= df.height:
        return df
    import numpy as np

    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(df.height, size=n, replace=False))
    return df.select(pl.all().gather(pl.Series(picked, dtype=pl.UInt32)))


# =========================================================================== helpers


def _unknown_column(name: str, available: Sequence[str], where: str, key: str) -> DataError:
    close = difflib.get_close_matches(name, list(available), n=1, cutoff=0.6)
    return DataError(
        f"{key} names the column '{name}', which is not in the data",
        where=where,
        expected=f"one of {_names(available)}",
        found=f"'{name}'",
        fix=f"Did you mean '{close[0]}'?" if close else f"Check {key} in modelyard.yaml.",
    )


def _did_you_mean_file(path: Path) -> str | None:
    parent = path.parent
    if not parent.is_dir():
        return None
    try:
        siblings = [p.name for p in parent.iterdir()]
    except OSError:
        return None
    close = difflib.get_close_matches(path.name, siblings, n=1, cutoff=0.6)
    return str(parent / close[0]) if close else None


def _parent(path: Location) -> str:
    return str(PurePosixPath(path).parent) if isinstance(path, str) else str(path.parent)


def _split_glob(path: Path) -> tuple[Path, str]:
    parts = path.parts
    for i, part in enumerate(parts):
        if _GLOB_CHARS.search(part):
            base = Path(*parts[:i]) if i else Path()
            return base, str(Path(*parts[i:]))
    return path.parent, path.name  # pragma: no cover - only called for globs


def _names(names: Sequence[str], limit: int = 12) -> str:
    return name_list(names, limit)


def _ordinal_list(numbers: Sequence[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_BUILTIN_SHAPES = {
    "breast_cancer": (569, 31),
    "iris": (150, 5),
    "wine": (178, 14),
    "diabetes": (442, 11),
}


def estimate_shape(source: Source) -> tuple[int, int] | None:
    """About how many rows and columns a source holds, without reading it (for the plan):
    Parquet from its footer, text files from the size and the length of their first lines,
    bundled datasets exactly. None where that would need reading the data (SQL, object
    stores, compressed files)."""
    if source.builtin is not None:
        return _BUILTIN_SHAPES[source.builtin]
    if source.path is None or _URL.match(str(source.path)):
        return None
    try:
        files = source_files(source.path)
    except DataError:
        return None
    rows = columns = 0
    for file in files:
        shape = _estimate_file(file, source.read, source.format)
        if shape is None:
            return None
        rows += shape[0]
        columns = max(columns, shape[1])
    return rows, columns


def _estimate_file(file: Path, read: ReadOptions, fmt: str) -> tuple[int, int] | None:
    try:
        resolved = _resolve_format(file, fmt)
    except DataError:
        return None
    if resolved == "parquet":
        lazy = pl.scan_parquet(file)  # reads the footer only
        return int(lazy.select(pl.len()).collect().item()), len(lazy.collect_schema())
    if resolved != "csv" or file.name.lower().endswith((".gz", ".gzip")):
        return None  # JSON, workbooks and compressed text: not without reading them
    size = file.stat().st_size
    with file.open("rb") as f:
        head = f.read(1 << 16)
    lines = head.splitlines()[read.skip_rows :]
    if not lines:
        return 0, 0
    sample = lines[:-1] if len(lines) > 1 and len(head) == 1 << 16 else lines
    mean = max(1.0, sum(len(line) + 1 for line in sample) / len(sample))
    rows = round(size / mean) - (1 if read.has_header else 0) - read.skip_rows
    first = lines[0].decode("utf-8", "replace")
    separator = read.separator if read.separator != "," else _guess_separator(first)
    return max(0, rows), len(first.split(separator))


def _guess_separator(line: str) -> str:
    return max(_SEPARATORS, key=line.count)

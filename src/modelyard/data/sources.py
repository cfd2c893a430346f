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
* Blank (or whitespace-only) lines are skipped, wherever they are; a line with more or fewer
  fields than the header is an error naming the line.
* ``read.columns`` names the columns of a file without a header (required then) and renames them
  otherwise; the count must match the file's fields.
* CSV-only options (separator, header, skip_rows, encoding, comment prefix) are ignored for
  Parquet and JSON; ``columns``, ``strip_whitespace`` and ``null_values`` apply to every format.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import hashlib
import io
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from modelyard.config.schema import ReadOptions, Source, TestSource, ValueMap, is_url
from modelyard.data import remote
from modelyard.data.contract import Task
from modelyard.data.table import (
    DEFAULT_BATCH_ROWS,
    Ingested,
    as_table,
    rejected_schema,
    write_table,
)
from modelyard.errors import DataError, name_list

if TYPE_CHECKING:
    import polars as pl
else:
    from modelyard.data.lazy import polars as pl

__all__ = [
    "fingerprint_files",
    "fingerprint_source",
    "infer_task",
    "iter_source_batches",
    "read_file",
    "read_source",
    "read_source_table",
    "read_test",
    "read_test_table",
    "source_files",
]

FileFormat = Literal["csv", "parquet", "json", "ndjson"]
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
}
_GLOB_CHARS = re.compile(r"[*?\[]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
_QUOTE = '"'
_CHUNK = 1 << 20
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
    problem in the data or the options.
    """
    if source.builtin is not None:
        df = _read_builtin(source.builtin)
        where = f"builtin:{source.builtin}"
    elif source.sql is not None:
        from modelyard.data import sql

        df = sql.read_sql(source.sql)
        where = sql.redacted_url(source.sql)
    elif source.dataset is not None:
        from modelyard.data.streaming.manifest import read_dataset

        df = read_dataset(source.dataset)
        where = str(source.dataset)
    elif is_url(source.path):
        url = str(source.path)
        fs, urls = remote.list_files(url, source.storage_options)
        df = _read_files(urls, source.format, source.read, fs)
        where = url
    else:
        assert source.path is not None  # guaranteed by Source's validator
        paths = source_files(source.path)
        df = _read_files(paths, source.format, source.read)
        where = str(source.path)
    _check_hint_columns(df, source.read, where)
    df = _apply_normalize(df, normalize, where)
    df = _apply_drop(df, drop, where)
    if sample is not None:
        df = _apply_sample(df, sample, seed)
    return df


def read_source_table(
    source: Source,
    folder: Path,
    *,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
    sample: int | None = None,
    seed: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Ingested:
    """:func:`read_source` streamed into a table in ``folder`` (parts of ``batch_rows`` rows),
    with the lines that are not rows in :attr:`Ingested.rejected`."""
    df = read_source(source, normalize=normalize, drop=drop, sample=sample, seed=seed)
    return Ingested(
        as_table(df, folder / "rows", batch_rows=batch_rows),
        write_table([], folder / "rejected", schema=rejected_schema()),
    )


def read_test_table(
    test: TestSource,
    train: Source,
    folder: Path,
    *,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Ingested:
    """:func:`read_test` streamed into a table in ``folder``, as :func:`read_source_table`."""
    df = read_test(test, train, normalize=normalize, drop=drop)
    return Ingested(
        as_table(df, folder / "rows", batch_rows=batch_rows),
        write_table([], folder / "rejected", schema=rejected_schema()),
    )


def iter_source_batches(
    source: Source,
    *,
    normalize: Mapping[str, ValueMap] = {},
    drop: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """The source's rows, ``batch_rows`` at a time, each with the lines of that stretch of
    the input that are not rows (columns as :data:`~modelyard.data.table.REJECTED_SCHEMA`)."""
    df = read_source(source, normalize=normalize, drop=drop)
    for start in range(0, max(df.height, 1), batch_rows):
        yield df.slice(start, batch_rows), pl.DataFrame(schema=rejected_schema())


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
    source = Source(
        path=test.path,
        format=test.format,
        read=options,
        storage_options=like.storage_options if is_url(test.path) else {},
    )
    return read_source(source, normalize=normalize, drop=drop)


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
    CSV as strings, Parquet and JSON with their types. Raises :class:`DataError`."""
    return _read_files([location], format, read or ReadOptions(), fs)


_SNIFF_BYTES = 1 << 20
"""How much of a CSV file :func:`sniff_read_options` reads."""
_SNIFF_RECORDS = 200
"""How many records of that sample it parses."""
_SEPARATORS = (",", ";", "\t", "|")
_MISSING_TOKENS = frozenset({"", "?", "-", "na", "n/a", "nan", "null", "none"})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def sniff_read_options(
    path: Path,
    *,
    separator: str | None = None,
    has_header: bool | None = None,
    name_columns: bool = False,
) -> ReadOptions:
    """Guess the separator and whether there is a header from the first records of a CSV file.

    ``separator`` / ``has_header``: known already (not guessed). ``name_columns``: give a file
    without a header the names ``column_1``, ``column_2``, ... (``read.columns``), one per
    field of its most common record width.

    The sample (the first MiB) is parsed as CSV (quotes, doubled quotes and quoted line breaks
    honoured) with each candidate separator (``,``, ``;``, tab, ``|``); the separator that splits
    the most records into the same number of fields (at least two) wins, ties going to the
    earlier candidate. Text inside quoted values never votes, so a long text column full of
    ``|``, ``;`` or parentheses does not mislead it (:class:`csv.Sniffer` counted characters
    line by line, and its ``has_header`` re-guessed the dialect from any character).

    Records of a single field above a wider table (a title line) are skipped (``skip_rows``).
    The first record is a header unless it reads as data: a column whose other values are all
    numbers (or ISO dates, or booleans) votes *data* when the first record holds one there too
    and *header* when it holds a name; a text column votes *data* when its first value recurs
    below it. No header only when the *data* votes win, so a file of text columns only is read
    with a header.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
                sample = fh.read(_SNIFF_BYTES)
                whole = not fh.read(1)
        else:
            with path.open(encoding="utf-8", errors="replace", newline="") as fh:
                sample = fh.read(_SNIFF_BYTES)
                whole = not fh.read(1)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}", where=str(path)) from None
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
    columns = None
    if name_columns and not header:
        columns = [f"column_{i + 1}" for i in range(max(widest, 1))]
    return ReadOptions(
        separator=chosen, strip_whitespace=spaced, has_header=header, columns=columns,
        skip_rows=skip,
    )  # fmt: skip


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


def fingerprint_files(paths: Sequence[Path]) -> str:
    """A content hash (BLAKE2b, hex) of the files' names and bytes, streamed in 1 MiB chunks.

    Names are taken relative to the files' common folder, so moving a project does not change
    the fingerprint, while renaming, adding or editing a file does.
    """
    resolved = [Path(p).resolve() for p in paths]
    root = Path(os.path.commonpath([str(p.parent) for p in resolved])) if resolved else Path()
    digest = hashlib.blake2b(digest_size=32)
    for path in resolved:
        name = path.relative_to(root).as_posix().encode()
        try:
            size = path.stat().st_size
            digest.update(len(name).to_bytes(8, "little") + name + size.to_bytes(8, "little"))
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            raise DataError(
                "cannot read the file", where=str(path), found=exc.strerror or str(exc)
            ) from None
    return digest.hexdigest()


def fingerprint_source(source: Source) -> str:
    """The fingerprint of a source's data: a content hash of its files; for remote files a hash
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
    return fingerprint_files(source_files(source.path))


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


def _read_files(
    paths: Sequence[Location], fmt: str, options: ReadOptions, fs: Any = None
) -> pl.DataFrame:
    frames: list[pl.DataFrame] = []
    for path in paths:
        df = _read_one(path, _resolve_format(path, fmt), options, fs)
        if frames and df.columns != frames[0].columns:
            first = frames[0].columns
            missing = [c for c in first if c not in df.columns]
            extra = [c for c in df.columns if c not in first]
            detail = []
            if missing:
                detail.append(f"missing {_names(missing)}")
            if extra:
                detail.append(f"extra {_names(extra)}")
            raise DataError(
                "the file's columns differ from the first file's",
                where=str(path),
                expected=f"the columns of {paths[0]}: {_names(first)}",
                found=f"{_names(df.columns)}" + (f" ({'; '.join(detail)})" if detail else ""),
                fix="Give all files of a glob the same columns in the same order.",
            )
        frames.append(df)
    if len(frames) == 1:
        df = frames[0]
    else:
        try:
            df = pl.concat(frames, how="vertical_relaxed")
        except pl.exceptions.PolarsError as exc:
            raise DataError(
                "the files' column types do not agree",
                where=_parent(paths[0]),
                expected="the same type per column in every file",
                found=_first_line(exc),
                fix="Write the files with the same schema.",
            ) from None
    if df.height == 0:
        where = str(paths[0]) if len(paths) == 1 else f"{_parent(paths[0])} ({len(paths)} files)"
        raise DataError(
            "no data rows",
            where=where,
            expected="at least one data row",
            found="columns but 0 rows" if df.width else "nothing",
            fix="Check the file (and read.skip_rows / read.has_header).",
        )
    return df


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
        fix="Set data.source.format (csv, parquet, json or ndjson).",
    )


def _read_one(
    path: Location, fmt: FileFormat, options: ReadOptions, fs: Any = None
) -> pl.DataFrame:
    if isinstance(path, str):  # a URL: fetched through its fsspec filesystem
        data = remote.fetch(fs, path)
        if fmt == "parquet":
            df = _parquet_bytes(path, data)
        elif fmt == "csv":
            return _read_csv(path, _unpack(path, data), options)
        else:
            df = _read_json(path, _unpack(path, data), lines=fmt == "ndjson")
    elif fmt == "parquet":
        df = _read_parquet(path)
    else:
        data = _read_bytes(path)
        if fmt == "csv":
            return _read_csv(path, data, options)
        df = _read_json(path, data, lines=fmt == "ndjson")
    if options.columns is not None:
        df = _rename(df, options.columns, path)
    _check_unique(df.columns, path)
    return _clean_strings(df, options)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they are gzip (detected by content, not by name)."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise DataError("the path is a directory, not a file", where=str(path)) from None
    except OSError as exc:
        raise DataError(
            "cannot read the file", where=str(path), found=exc.strerror or str(exc)
        ) from None
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
        raise DataError(
            "the file is empty",
            where=str(path),
            expected="a header and data rows",
            found="0 bytes",
            fix="Check that the file was written completely.",
        )
    return raw


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(
            "cannot read the file", where=str(path), found=exc.strerror or str(exc)
        ) from None
    if size == 0:
        raise DataError("the file is empty", where=str(path), found="0 bytes")
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        with path.open("rb") as fh:
            magic = fh.read(4)
        found = (
            "no Parquet signature (PAR1) at the start"
            if magic != b"PAR1"
            else f"a damaged Parquet file ({_first_line(exc)})"
        )
        raise DataError(
            "cannot read the Parquet file",
            where=str(path),
            expected="a Parquet file",
            found=found,
            fix="Check the file, or set data.source.format if it is not Parquet.",
        ) from None


def _parquet_bytes(path: str, data: bytes) -> pl.DataFrame:
    if not data:
        raise DataError("the file is empty", where=path, found="0 bytes")
    try:
        return pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            "cannot read the Parquet file",
            where=path,
            expected="a Parquet file",
            found="no Parquet signature (PAR1) at the start"
            if data[:4] != b"PAR1"
            else f"a damaged Parquet file ({_first_line(exc)})",
            fix="Check the file, or set data.source.format if it is not Parquet.",
        ) from None


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
    import json

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


# =========================================================================== CSV


@dataclass(frozen=True)
class _Layout:
    """The line structure of a CSV file, found before parsing it."""

    header: list[str] | None
    """Header fields (when the file has a header)."""
    lines: pl.DataFrame
    """One row per data record, in file order: ``lineno`` (1-based physical line of the
    record's start), ``fields`` (field count), ``blank`` (empty or whitespace-only line)."""
    text_lines: list[str] | None = None
    """The records' raw text, only when the slow (multi-line quoted fields) scan ran."""


def _read_csv(path: Location, data: bytes, options: ReadOptions) -> pl.DataFrame:
    sep = options.separator
    if len(sep.encode()) != 1:
        raise DataError(
            "the CSV separator must be a single character",
            where=str(path),
            found=repr(sep),
            fix="For files separated by ', ' use separator ',' with strip_whitespace: true.",
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # UTF-8 byte order mark
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError(
            "the file looks binary, not like CSV text",
            where=str(path),
            expected="text",
            found=f"NUL bytes (the first at byte {nul})",
            fix="Check the file; set data.source.format if it is Parquet or JSON. UTF-16 files "
            "must be converted to UTF-8.",
        )
    text = _decode(path, data, options.encoding)
    if options.encoding not in {"utf8"}:
        data = text.encode("utf-8")
    layout = _scan(path, data, text, options)
    width = _check_layout(path, layout, options)

    try:
        df = pl.read_csv(
            data,
            has_header=options.has_header,
            separator=sep,
            comment_prefix=options.comment_prefix,
            quote_char=_QUOTE,
            skip_lines=options.skip_rows,
            infer_schema=False,
            empty_string_is_null=False,
            truncate_ragged_lines=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:  # the scan catches most problems first
        raise DataError(
            "cannot parse the CSV file",
            where=str(path),
            found=_first_line(exc),
            fix="Check read.separator, read.skip_rows and read.has_header, and the quoting: a "
            'value holding a quote must be quoted whole, with the quote doubled ("a""b").',
        ) from None
    if df.width != width and df.height:
        raise DataError(  # pragma: no cover - defensive: scan and parser disagree
            "cannot parse the CSV file consistently",
            where=str(path),
            expected=f"{width} fields per line",
            found=f"{df.width} columns",
            fix="Check read.separator and the file's quoting.",
        )
    if df.height == layout.lines.height:
        blank = layout.lines["blank"]
        if bool(blank.any()):
            df = df.filter(~blank)
    else:  # defensive: the parser saw records differently; drop rows with no value at all
        df = df.filter(~pl.all_horizontal(pl.all().is_null() | (pl.all().str.strip_chars() == "")))
    names = options.columns if options.columns is not None else (layout.header or df.columns)
    if options.strip_whitespace and options.columns is None:
        names = [n.strip() for n in names]
    if df.width == len(names):
        df.columns = list(names)
    return _clean_strings(df, options)


def _scan(path: Location, data: bytes, text: str, options: ReadOptions) -> _Layout:
    """Split the file into lines (natively) and count each line's fields.

    Fields are counted by separators outside quotes. A line with an odd number of quotes means a
    quoted field spans lines: then the (slower) ``csv`` module scans the records instead.
    """
    lines = _split_lines(data, text)
    lines = lines.with_row_index("lineno", offset=1).slice(options.skip_rows)
    if options.comment_prefix:
        lines = lines.filter(~pl.col("line").str.starts_with(options.comment_prefix))
    if lines.height and _QUOTE in text:
        odd = lines["line"].str.count_matches(_QUOTE, literal=True) % 2 == 1
        if bool(odd.any()):
            return _scan_slow(text, options)
    sep = options.separator
    line = pl.col("line")
    unquoted = (
        pl.when(line.str.contains(_QUOTE, literal=True))
        .then(line.str.replace_all(r'"[^"]*"', ""))
        .otherwise(line)
    )
    lines = lines.with_columns(
        fields=(unquoted.str.count_matches(sep, literal=True) + 1).cast(pl.Int64)
    ).with_columns(blank=(pl.col("fields") == 1) & (line.str.strip_chars() == ""))
    header: list[str] | None = None
    if options.has_header:
        first = lines.head(1)
        if first.height == 0:
            return _Layout(header=None, lines=_empty_layout())
        header = _split_record(first["line"][0], sep)
        lines = lines.slice(1)
    return _Layout(header=header, lines=lines.select("lineno", "fields", "blank", "line"))


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


def _scan_slow(text: str, options: ReadOptions) -> _Layout:
    physical: list[int] = []
    kept: list[str] = []

    def kept_lines() -> Iterable[str]:
        pieces = text.split("\n")  # not splitlines(): only "\n" ends a line, as for polars
        ends = ["\n"] * (len(pieces) - 1) + [""]
        for number, (piece, end) in enumerate(zip(pieces, ends, strict=True), start=1):
            line = piece + end
            if not line:
                break
            if number <= options.skip_rows:
                continue
            if options.comment_prefix and line.startswith(options.comment_prefix):
                continue
            physical.append(number)
            kept.append(line)
            yield line

    reader = csv.reader(kept_lines(), delimiter=options.separator, quotechar=_QUOTE)
    header: list[str] | None = None
    linenos: list[int] = []
    counts: list[int] = []
    blanks: list[bool] = []
    raws: list[str] = []
    start = 0
    try:
        for record in reader:
            lineno = physical[start]
            raw = "".join(kept[start : reader.line_num])
            start = reader.line_num
            if header is None and options.has_header:
                header = record
                continue
            linenos.append(lineno)
            counts.append(len(record))
            blanks.append(len(record) <= 1 and raw.strip() == "")
            raws.append(raw.rstrip("\r\n"))
    except csv.Error:  # unterminated quote at the end: let the parser report it
        pass
    frame = pl.DataFrame(
        {"lineno": linenos, "fields": counts, "blank": blanks, "line": raws},
        schema={"lineno": pl.Int64, "fields": pl.Int64, "blank": pl.Boolean, "line": pl.String},
    )
    return _Layout(header=header, lines=frame, text_lines=raws)


def _empty_layout() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"lineno": pl.Int64, "fields": pl.Int64, "blank": pl.Boolean, "line": pl.String}
    )


def _split_record(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep, quotechar=_QUOTE), [])


def _check_layout(path: Location, layout: _Layout, options: ReadOptions) -> int:
    """Check the header and the field count of every line; return the file's field count."""
    data = layout.lines.filter(~pl.col("blank"))
    if data.height == 0:
        raise DataError(
            "no data rows",
            where=str(path),
            expected="at least one data row",
            found="a header only"
            if layout.header is not None and "".join(layout.header).strip()
            else "only blank or skipped lines",
            fix="Check the file (and read.skip_rows / read.has_header).",
        )
    if layout.header is not None:
        width = len(layout.header)
        names = [n.strip() for n in layout.header] if options.strip_whitespace else layout.header
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
        width = int(data["fields"][0])
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

    ragged = data.filter(pl.col("fields") != width)
    if ragged.height and layout.text_lines is None:
        # the quote-stripping count is approximate: confirm the suspects with the csv module
        confirmed = [
            _split_record(str(line), options.separator) for line in ragged["line"].head(1000)
        ]
        keep = [len(f) != width for f in confirmed] + [True] * max(0, ragged.height - 1000)
        ragged = ragged.with_columns(
            fields=pl.Series(
                [len(f) for f in confirmed] + ragged["fields"].to_list()[1000:], dtype=pl.Int64
            )
        ).filter(pl.Series(keep))
    if ragged.height:
        first = ragged.row(0, named=True)
        line = str(first["line"])
        shown = line if len(line) <= 80 else line[:77] + "..."
        fewer = first["fields"] < width
        more = f"; {ragged.height - 1} more line(s) are ragged too" if ragged.height > 1 else ""
        raise DataError(
            f"line {first['lineno']} has {'fewer' if fewer else 'more'} fields than the "
            + ("header" if layout.header is not None else "first line"),
            where=f"{path}:{first['lineno']}",
            expected=f"{width} fields separated by {options.separator!r}",
            found=f"{first['fields']} fields: {shown!r}{more}",
            fix=(
                "The line may be truncated (an interrupted copy?): repair or remove it."
                if fewer
                else "Check read.separator, and quote values that contain the separator."
            ),
        )
    return width


def _decode(path: Location, data: bytes, encoding: str) -> str:
    codec = {"utf8": "utf-8", "utf8-lossy": "utf-8", "latin1": "latin-1", "cp1252": "cp1252"}
    errors = "replace" if encoding == "utf8-lossy" else "strict"
    try:
        return data.decode(codec.get(encoding, encoding), errors=errors)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 4]
        other = "latin1" if encoding == "utf8" else "utf8-lossy"
        raise DataError(
            f"the file is not valid {encoding} text",
            where=f"{path}:{line}",
            expected=f"{encoding}-encoded text",
            found=f"the bytes {bad!r} at byte {exc.start}",
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


def _clean_strings(df: pl.DataFrame, options: ReadOptions) -> pl.DataFrame:
    """strip_whitespace, then the empty string and the null values become null."""
    text_cols = [c for c, t in df.schema.items() if t == pl.String]
    if not text_cols:
        return df
    nulls = ["", *options.null_values]
    exprs = []
    for name in text_cols:
        col = pl.col(name)
        if options.strip_whitespace:
            col = col.str.strip_chars()
        exprs.append(pl.when(col.is_in(nulls)).then(None).otherwise(col).alias(name))
    return df.with_columns(exprs)


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
        shape = _estimate_file(file, source.read)
        if shape is None:
            return None
        rows += shape[0]
        columns = max(columns, shape[1])
    return rows, columns


def _estimate_file(file: Path, read: ReadOptions) -> tuple[int, int] | None:
    name = file.name.lower()
    if name.endswith((".parquet", ".pq")):
        lazy = pl.scan_parquet(file)  # reads the footer only
        return int(lazy.select(pl.len()).collect().item()), len(lazy.collect_schema())
    if name.endswith((".gz", ".zip", ".bz2", ".xz", ".zst", ".json")):
        return None
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

"""Tables between steps: Parquet datasets on disk, read lazily or one part at a time.

A :class:`Table` is a folder of part files (``part-00000.parquet``, ...) written in order by a
:class:`TableWriter`, one part per batch. Parts are the unit of streaming and of parallel work:
a data stage reads a part, writes its result as the part with the same number, and returns
mergeable statistics, so a table of any size is processed in constant memory, on this machine's
workers or on a Dask cluster, and the result does not depend on where the parts ran.

A table small enough for one batch is one part: the stages then see one DataFrame, exactly as
an in-memory pipeline would.

The artifact store keeps a table by content key like any other output (hard links of its part
files, see :mod:`modelyard.engine.store`); a step receives it as a :class:`Table` and reads
``scan()`` (a polars ``LazyFrame``), ``batches()`` or ``collect()``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from modelyard.config.schema import DataSection

if TYPE_CHECKING:
    import polars as pl
else:
    from modelyard.data.lazy import polars as pl

__all__ = ["DEFAULT_BATCH_ROWS", "Table", "TableWriter", "as_table", "write_table"]

DEFAULT_BATCH_ROWS: int = DataSection.model_fields["batch_rows"].default
"""Rows per part (``data.batch_rows``'s default): a table of fewer rows is one part, held
whole."""

_PART = "part-{:05d}.parquet"
_GLOB = "part-*.parquet"

EXTREMES_KEY = "modelyard.extremes"
"""The Parquet footer key under which :func:`write_part` records each numeric and temporal
column's finite extremes (JSON ``{column: [min, max] or null}``, physical values as floats)."""

Extremes = dict[str, tuple[float, float] | None]
"""Column name to its (finite min, finite max) as floats, ``None`` when it has no finite
value; temporal columns by their physical value (days, or time units since the epoch)."""


@dataclass(frozen=True)
class Table:
    """A Parquet dataset: the part files of ``folder`` in order, ``num_rows`` rows in all."""

    folder: Path
    num_rows: int

    def parts(self) -> list[Path]:
        """The part files, in row order (at least one: an empty table has one empty part)."""
        return sorted(self.folder.glob(_GLOB))

    @property
    def height(self) -> int:
        return self.num_rows

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema(pl.read_parquet_schema(self.parts()[0]))

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names())

    def scan(self) -> pl.LazyFrame:
        """The whole table as a lazy frame (polars streams it when sunk or collected)."""
        return pl.scan_parquet([str(p) for p in self.parts()])

    def batches(self) -> Iterator[pl.DataFrame]:
        """The table one part at a time, in row order."""
        for part in self.parts():
            yield pl.read_parquet(part)

    def collect(self) -> pl.DataFrame:
        """The whole table in memory (for tables known to be small: samples, one part)."""
        parts = self.parts()
        if len(parts) == 1:
            return pl.read_parquet(parts[0])
        return pl.concat([pl.read_parquet(p) for p in parts], how="vertical")

    def head(self, n: int) -> pl.DataFrame:
        return self.scan().head(n).collect()

    def extremes(self) -> Extremes | None:
        """Each numeric and temporal column's finite extremes over every part, from the
        part footers (nothing is read); ``None`` when a part does not record them (a table
        that :func:`write_part` did not write)."""
        merged: Extremes = {}
        for part in self.parts():
            found = _footer_extremes(part)
            if found is None:
                return None
            for name, pair in found.items():
                old = merged.get(name)
                merged[name] = (
                    pair if old is None else old if pair is None
                    else (min(old[0], pair[0]), max(old[1], pair[1]))
                )  # fmt: skip
        return merged

    def part_rows(self) -> list[int]:
        """The number of rows of each part (from the Parquet footers: nothing is read)."""
        return [pl.scan_parquet(p).select(pl.len()).collect().item() for p in self.parts()]

    def __repr__(self) -> str:
        return f"Table({self.folder}, {self.num_rows:,} rows, {len(self.parts())} part(s))"


class TableWriter:
    """Writes a table part by part into an empty ``folder``; :meth:`close` returns the Table.

    Each :meth:`write` is one part (an empty frame writes nothing). A table that received no
    rows still gets one empty part with ``schema`` (or the last frame's schema), so that it
    can be read back with its columns. The folder is the caller's staging area: the artifact
    store moves a finished table into place, so a killed run never leaves half a table there.
    """

    def __init__(self, folder: Path, *, schema: pl.Schema | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if any(self.folder.glob(_GLOB)):
            raise FileExistsError(f"{self.folder} already holds a table")
        self._schema = schema
        self._parts = 0
        self._rows = 0

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def parts(self) -> int:
        return self._parts

    def next_part(self) -> Path:
        """The path of the next part, for a task that writes it itself (then :meth:`add`)."""
        return part_path(self.folder, self._parts)

    def add(self, rows: int) -> None:
        """Count a part written at :meth:`next_part` by someone else."""
        self._parts += 1
        self._rows += rows

    def write(self, frame: pl.DataFrame) -> None:
        if self._schema is None or frame.height:
            self._schema = frame.schema
        if frame.height == 0:
            return
        write_part(frame, self.next_part())
        self.add(frame.height)

    def close(self) -> Table:
        if self._parts == 0:
            empty = pl.DataFrame(schema=self._schema or {})
            write_part(empty, self.next_part())
            self._parts = 1
        return Table(self.folder, self._rows)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


PART_COMPRESSION: Final = "uncompressed"
"""How parts are compressed: not at all. A part is the pipeline's working copy, written once
and read by every later step. On the 10M-row scale bench lz4 cost about a tenth of the data
steps' time (a 450k-row part of text: 0.43 s to write, uncompressed 0.33 s; of typed rows:
0.22 s and 0.11 s) to save a third of the disk (a typed part: 33 MB, uncompressed 49 MB).
The files a user is handed (predictions, an exported quarantine) are compressed."""


def part_path(folder: Path, index: int) -> Path:
    """Where part ``index`` of a table in ``folder`` goes (a task may write it itself)."""
    return folder / _PART.format(index)


def write_part(frame: pl.DataFrame, path: Path) -> None:
    """One part file, written under a temporary name and renamed: never half a part.

    Its footer records the extremes of its numeric and temporal columns (:func:`extremes`),
    so that a reader can lay out fixed-edge histograms before it reads a row.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    found = extremes(frame)
    metadata = {EXTREMES_KEY: json.dumps(found, sort_keys=True)} if found else None
    frame.write_parquet(tmp, statistics=False, compression=PART_COMPRESSION, metadata=metadata)
    tmp.replace(path)


def extremes(frame: pl.DataFrame) -> Extremes:
    """The finite extremes of ``frame``'s numeric and temporal columns (see :data:`Extremes`;
    ``NaN`` and ``±inf`` are not finite)."""
    at = [j for j, d in enumerate(frame.dtypes) if _ranged(d)]
    names = [frame.columns[j] for j in at]
    if not names:
        return {}
    exprs = []
    for i, j in enumerate(at):
        dtype, x = frame.dtypes[j], pl.nth(j)  # by position: a name may be a pattern
        if dtype.is_temporal():
            x = x.to_physical()
        elif dtype.is_float():
            x = x.cast(pl.Float64)
            x = pl.when(x.is_finite()).then(x)
        elif dtype.is_decimal():
            x = x.cast(pl.Float64)
        exprs += [x.min().alias(f"{i}<"), x.max().alias(f"{i}>")]
    row = frame.select(exprs).row(0) if frame.height else (None,) * len(exprs)
    out: Extremes = {}
    for i, name in enumerate(names):
        lo, hi = row[2 * i], row[2 * i + 1]
        out[name] = None if lo is None or hi is None else (float(lo), float(hi))
    return out


def _ranged(dtype: pl.DataType) -> bool:
    """Whether :func:`extremes` records a column of this type (numeric or temporal)."""
    return bool(dtype.is_numeric() or dtype.is_temporal())


def _footer_extremes(part: Path) -> Extremes | None:
    """The extremes a part's footer records, or ``None`` (not recorded, or unreadable)."""
    try:
        text = pl.read_parquet_metadata(part).get(EXTREMES_KEY)
        names = pl.read_parquet_schema(part)
    except (OSError, pl.exceptions.PolarsError):  # no hint: the reader finds them itself
        return None
    wanted = {n for n, d in names.items() if _ranged(d)}
    if text is None:
        return {} if not wanted else None
    try:
        raw = json.loads(text)
        found: Extremes = {
            str(k): None if v is None else (float(v[0]), float(v[1])) for k, v in raw.items()
        }
    except (ValueError, TypeError, IndexError, AttributeError):
        return None
    if set(found) != wanted or not all(
        v is None or (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] <= v[1])
        for v in found.values()
    ):
        return None
    return found


def write_table(frames: Iterable[pl.DataFrame], folder: Path, *, schema: Any = None) -> Table:
    """Write ``frames`` (one part each) as a table in ``folder``."""
    writer = TableWriter(folder, schema=schema)
    with writer:
        for frame in frames:
            writer.write(frame)
        return writer.close()


def as_table(frame: pl.DataFrame, folder: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> Table:
    """An in-memory frame as a table of parts of at most ``batch_rows`` rows."""
    step = max(1, batch_rows)
    return write_table(
        (frame.slice(i, step) for i in range(0, frame.height, step)), folder, schema=frame.schema
    )


def link_table(table: Table, folder: Path) -> Table:
    """The same table under ``folder``: its parts hard-linked (copied across file systems)."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in table.parts():
        target = folder / part.name
        try:
            os.link(part, target)
        except OSError:
            shutil.copy2(part, target)
    return Table(folder, table.num_rows)


REJECTED_SCHEMA = {"_file": "String", "_line": "Int64", "_text": "String", "_reasons": "String"}
"""The columns of :attr:`Ingested.rejected`: the file, its line number (1-based, physical),
the line's text and why it is not a row."""


def rejected_schema() -> pl.Schema:
    return pl.Schema({name: getattr(pl, dtype) for name, dtype in REJECTED_SCHEMA.items()})


@dataclass(frozen=True)
class Ingested:
    """What ingestion read: the rows, and the lines that could not be read as rows (a line
    with too few or too many fields), which validation adds to the quarantine with their line
    numbers: valid + quarantined = the rows and lines of the input."""

    rows: Table
    rejected: Table
    """Columns ``_file``, ``_line``, ``_text``, ``_reasons`` (:data:`REJECTED_SCHEMA`)."""

    @property
    def num_rows(self) -> int:
        return self.rows.num_rows

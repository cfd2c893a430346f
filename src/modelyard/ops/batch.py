"""Batch scoring: a file scored by a registered model, validated against the contract first,
streamed batch by batch so that memory stays flat whatever the file's size.

Invalid rows (types, missing required values, the declared checks) are not scored; they go to
a quarantine file beside the output with the reasons, and so do the input lines that could
not be read as rows (their file, line number and text), so every input row and line ends up
in exactly one of the two files. Rows holding a value outside the training range or a
category unseen in training are drift, not invalid: scored, counted
(:attr:`BatchResult.drifted`) and flagged in the output's ``_drift`` column.

How it streams (:func:`score_batches`): the input arrives as batches of rows; each batch is
validated in ``score`` mode and scored by :func:`score_part`, the batch kernel, which writes
its predictions and its quarantine as part files into a staging folder beside the output and
returns small statistics; the driver merges them in input order. With more than one batch the
kernels run through the project's executor (serial, local process pool or Dask: the same
tasks, no second pool or client), at most ``workers + 1`` batches in flight; a file of one
batch is scored inline, with no worker started. The output and the quarantine are then
written from the parts by polars' streaming engine under temporary names and renamed into
place: a killed predict leaves no half-written file (only a hidden staging folder, removed by
the next predict of the same output). On Dask this is the executor's per-part tasks rather
than ``dask.dataframe.map_partitions``: one compute layer, identical results everywhere.

The result is the same whatever the batch size: row order, ``_row`` (the row's position in
the whole input), a ``unique`` column's duplicates across batches, and the drift counts.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.compute import map_in_order
from modelyard.errors import DataError, ModelyardError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from modelyard.compute import Executor
    from modelyard.config.schema import ValidationSection
    from modelyard.data.contract import DataContract
    from modelyard.data.validation import Violation

PREDICT_BATCH_ROWS = 100_000
"""Rows per batch of ``predict`` unless ``data.batch_rows`` is smaller (or ``--batch-rows``
says otherwise): a batch is held as raw text, typed, and as the model's pandas input at once,
in the driver and in each worker, so the data stages' million-row batches would not keep a
predict under 1 GB."""

OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv")

_EXAMPLES = 5
"""Examples kept per drift rule, as validation keeps them."""

QUARANTINE_LINE_COLUMNS = ("_file", "_line", "_text")
"""Quarantine columns of an input line that is not a row (null for an invalid row; present
only when some line was not a row, as in the pipeline's quarantine); such a line has no
``_row`` and null data columns."""


@dataclass(frozen=True)
class BatchResult:
    rows: int
    """Input records: the rows read, plus the lines that could not be read as rows."""
    scored: int
    quarantined: int
    """Invalid rows and unreadable lines (``rows = scored + quarantined``)."""
    output: Path
    quarantine: Path | None
    model: str
    version: str
    drifted: int = 0
    """Scored rows flagged as drift (a value outside the training range, an unseen category)."""
    drift: list[Violation] = field(default_factory=list)
    """The drift rules those rows break (column, check, rows, examples)."""
    rejected: int = 0
    """Input lines that could not be read as rows (in the quarantine with their line number)."""
    batches: int = 1
    """How many batches the input was scored in."""


@dataclass(frozen=True)
class PackedModel:
    """A model as cloudpickle bytes, for the workers: a loaded model may hold modelyard code
    pickled by value (see :mod:`modelyard.ops.native`), which the plain pickle of a process
    pool refuses. Each worker process unpacks it once (:func:`unpack`)."""

    token: str
    data: bytes


def pack(model: Any) -> PackedModel:
    import cloudpickle  # type: ignore[import-untyped,unused-ignore]

    return PackedModel(uuid.uuid4().hex, cloudpickle.dumps(model))


_UNPACKED: dict[str, Any] = {}


def unpack(model: Any) -> Any:
    """The model of a :class:`PackedModel` (kept for the next batch), or ``model`` itself."""
    if not isinstance(model, PackedModel):
        return model
    if model.token not in _UNPACKED:
        import pickle

        _UNPACKED.clear()  # one model at a time
        _UNPACKED[model.token] = pickle.loads(model.data)
    return _UNPACKED[model.token]


@dataclass(frozen=True)
class PartScored:
    """What :func:`score_part` returns: counts and drift of one batch (small, mergeable)."""

    rows: int
    scored: int
    quarantined: int
    drifted: int
    drift: list[Violation]
    output_schema: dict[str, Any]
    """The columns of the batch's predictions (for an output with no row at all)."""


def score_part(
    part: Path | pl.DataFrame,
    model: Any,
    contract: DataContract,
    options: ValidationSection,
    offset: int,
    duplicates: Mapping[str, np.ndarray[Any, np.dtype[np.int64]]],
    output: Path,
    quarantine: Path,
) -> PartScored:
    """The batch kernel: validate one batch (a part file, or the frame itself) in ``score``
    mode, score its valid rows, write the predictions to ``output`` and the invalid rows to
    ``quarantine`` (no file when there are none), and return the counts.

    ``model`` may be a :class:`PackedModel`. ``offset`` is the position of the batch's first row in the whole input (the quarantine's
    ``_row`` and the drift examples are positions in the whole input); ``duplicates`` gives
    the repeats of ``unique`` columns across the whole input (see
    :func:`~modelyard.data.validation.validate`).
    """
    import polars as pl

    from modelyard.data.table import write_part
    from modelyard.data.validation import DRIFT, ROW, validate

    frame = part if isinstance(part, pl.DataFrame) else pl.read_parquet(part)
    checked = validate(frame, contract, options, mode="score", duplicates=duplicates or None)
    predictions = score_frame(unpack(model), checked.valid, contract)
    scored = pl.concat(
        [checked.valid, predictions, checked.drift.alias(DRIFT).to_frame()], how="horizontal"
    )
    if scored.height:
        write_part(scored, output)
    quarantined = checked.quarantine
    if quarantined.height:
        write_part(quarantined.with_columns(pl.col(ROW) + offset), quarantine)
    report = checked.report
    drift = [
        v.model_copy(update={"example_rows": [r + offset for r in v.example_rows]})
        for v in report.drift
    ]
    return PartScored(
        rows=frame.height, scored=scored.height, quarantined=quarantined.height,
        drifted=report.drifted_rows, drift=drift, output_schema=dict(scored.schema),
    )  # fmt: skip


@dataclass
class Scored:
    """What :func:`score_batches` wrote and counted."""

    rows: int = 0
    scored: int = 0
    quarantined: int = 0
    rejected: int = 0
    drifted: int = 0
    drift: list[Violation] = field(default_factory=list)
    batches: int = 0
    quarantine: Path | None = None
    output_schema: dict[str, Any] = field(default_factory=dict)
    raw_schema: dict[str, Any] = field(default_factory=dict)
    """The input's columns as read (the quarantine's data columns)."""


def check_output(out: Path) -> None:
    """A .parquet or .csv output, checked before any work is done."""
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ModelyardError(
            f"cannot write '{out.name}'",
            where="--out",
            expected="a .parquet or .csv file",
            found=repr(out.suffix or "no extension"),
        )


def quarantine_path(out: Path) -> Path:
    """``<out without extension>.quarantine.parquet``, beside ``out``."""
    return out.with_name(out.name.rsplit(".", 1)[0] + ".quarantine.parquet")


def score_batches(
    batches: Iterable[tuple[pl.DataFrame, pl.DataFrame]],
    *,
    model: Any,
    contract: DataContract,
    validation: ValidationSection,
    out: Path,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Scored:
    """Score ``batches`` (rows, and the lines of that stretch that are not rows) into ``out``
    and ``<out>.quarantine.parquet`` (see the module docstring).

    ``contract`` and ``validation`` are the project's (see :func:`scoring_setup`).
    ``executor`` runs the batches when there are several (``None``: one after another,
    here); ``progress`` receives (rows scored so far, rows read so far).
    """
    check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(out)
    staging = out.with_name(f".{out.name}.{_token()}.parts")
    try:
        for sub in ("in", "scored", "quarantine", "rejected"):
            (staging / sub).mkdir(parents=True)
        scored = _score(batches, model, contract, validation, staging, executor, progress)
        scored.quarantine = _publish(staging, out, scored)
        return scored
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def scoring_setup(
    contract: DataContract, validation: ValidationSection, columns: Iterable[str]
) -> tuple[DataContract, ValidationSection]:
    """The contract and validation options batch scoring uses for data with ``columns``:
    invalid rows are quarantined, never fatal; unlabelled data (no target column) is fine, and
    the declared checks on the target are skipped then."""
    from modelyard.data.validation import scoring_checks

    checks = list(validation.checks)
    if contract.target and contract.target not in set(columns):  # unlabelled data: fine
        checks, _ = scoring_checks(checks, [contract.target])  # checks on the labels
        contract = contract.model_copy(
            update={
                "columns": [c for c in contract.columns if c.name != contract.target],
                "target": None,
            }
        )
    options = validation.model_copy(
        update={"on_error": "quarantine", "max_invalid_fraction": 1.0, "checks": checks}
    )
    return contract, options


# --------------------------------------------------------------------------- the driver


_PART = "part-{:05d}.parquet"


class _Unique:
    """Repeats of the ``unique`` columns (contract and declared checks) across the batches of
    one input (driver side, in input order): a value seen in an earlier batch is a
    duplicate, as it would be in one batch.

    The values are kept typed, one chunk per batch (no copy as they accumulate), and each
    chunk is probed with the new batch's values: memory is the distinct values themselves
    (80 MB for 10M integer ids), time linear in them per batch."""

    def __init__(self, contract: DataContract, options: ValidationSection) -> None:
        self.contract = contract
        names = [c.name for c in contract.columns if c.unique] if options.contract else []
        names += [str(c.column) for c in options.checks if c.unique and c.column is not None]
        self.names = list(dict.fromkeys(names))
        self.chunks: dict[str, list[pl.Series]] = {}

    def repeats(self, frame: pl.DataFrame) -> dict[str, np.ndarray[Any, np.dtype[np.int64]]]:
        """By column, the positions in ``frame`` of the values seen earlier in the input (in
        an earlier batch or higher in this one); remembers ``frame``'s values."""
        import numpy as np
        import polars as pl

        from modelyard.data.validation import cast_to_contract

        names = [n for n in self.names if n in frame.columns]
        if not names:
            return {}
        typed, _ = cast_to_contract(frame.select(names), self.contract)
        out: dict[str, np.ndarray[Any, np.dtype[np.int64]]] = {}
        for name in names:
            column = typed[name]
            repeat = column.is_not_null() & ~column.is_first_distinct()
            values = column.drop_nulls().unique()
            chunks = self.chunks.setdefault(name, [])
            probe = values.implode()
            hits = [h for h in (c.filter(c.is_in(probe)) for c in chunks) if h.len()]
            if hits:
                earlier = pl.concat(hits).implode()
                repeat = repeat | (column.is_not_null() & column.is_in(earlier))
                values = values.filter(~values.is_in(earlier))
            if values.len():
                chunks.append(values)
            out[name] = np.flatnonzero(repeat.to_numpy()).astype(np.int64)
        return out


def _score(
    batches: Iterable[tuple[pl.DataFrame, pl.DataFrame]],
    model: Any,
    contract: DataContract,
    validation: ValidationSection,
    staging: Path,
    executor: Executor | None,
    progress: Callable[[int, int], None] | None,
) -> Scored:
    from modelyard.data.table import write_part

    it = iter(batches)
    head = [b for b in (next(it, None), next(it, None)) if b is not None]
    if not head:
        raise DataError(
            "the input has no rows", expected="a header and data rows", found="nothing to read"
        )
    single = len(head) == 1  # no second batch: scored here, no worker started
    contract, options = scoring_setup(contract, validation, head[0][0].columns)
    unique = _Unique(contract, options)
    total = Scored()
    drifts: list[list[Violation]] = []
    read = 0

    def prepare(index: int, rows: pl.DataFrame, lines: pl.DataFrame) -> tuple[Any, ...]:
        """The kernel's arguments for batch ``index`` (after the unreadable lines are set
        aside and the unique values remembered, in input order, here)."""
        nonlocal read
        if not total.raw_schema:
            total.raw_schema = dict(rows.schema)
        if lines.height:
            write_part(lines, staging / "rejected" / _PART.format(index))
            total.rejected += lines.height
        repeats = unique.repeats(rows)
        offset, read = read, read + rows.height
        name = _PART.format(index)
        return offset, repeats, staging / "scored" / name, staging / "quarantine" / name

    def merge(part: PartScored, index: int) -> None:
        (staging / "in" / _PART.format(index)).unlink(missing_ok=True)
        total.rows += part.rows
        total.scored += part.scored
        total.quarantined += part.quarantined
        total.drifted += part.drifted
        total.batches += 1
        drifts.append(part.drift)
        if not total.output_schema:
            total.output_schema = part.output_schema
        if progress:
            progress(total.rows, read)

    inputs = enumerate(_drain(head, it))

    def calls(model: Any, to_files: bool) -> Iterator[tuple[Any, ...]]:
        """The kernel's calls in input order, read lazily: a batch is held only until its
        task has it (written to a part file first for a worker that is not this process)."""
        for index, (rows, lines) in inputs:
            args = prepare(index, rows, lines)
            part: Path | pl.DataFrame = rows
            if to_files:
                part = staging / "in" / _PART.format(index)
                write_part(rows, part)
            del rows
            yield (part, model, contract, options, *args)

    here = single or executor is None or executor.kind == "serial"
    if here:  # one batch after another, in this process
        for index, part in enumerate(map_in_order(None, score_part, calls(model, False))):
            merge(part, index)
    else:
        assert executor is not None
        shared = executor.share(pack(model))
        try:
            scored = map_in_order(executor, score_part, calls(shared, True))
            for index, part in enumerate(scored):
                merge(part, index)
        finally:
            executor.unshare(shared)
    total.drift = _merge_drift(drifts, contract)
    total.rows += total.rejected
    total.quarantined += total.rejected
    return total


def _drain(head: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    """The items of ``head`` (each dropped from the list as it goes: a batch is not held
    after its turn), then those of ``rest``."""
    while head:
        yield head.pop(0)
    yield from rest


def _merge_drift(parts: list[list[Violation]], contract: DataContract) -> list[Violation]:
    """The drift rules of every batch as one batch would list them: rows summed, the first
    examples kept, most rows first (ties in the contract's rule order)."""
    merged: dict[tuple[str, str | None], Violation] = {}
    for drift in parts:
        for v in drift:
            key = (v.check, v.column)
            have = merged.get(key)
            if have is None:
                merged[key] = v
                continue
            merged[key] = have.model_copy(
                update={
                    "rows": have.rows + v.rows,
                    "examples": (have.examples + v.examples)[:_EXAMPLES],
                    "example_rows": (have.example_rows + v.example_rows)[:_EXAMPLES],
                }
            )
    position = {c.name: i for i, c in enumerate(contract.columns)}
    checks = ("range", "category")

    def order(v: Violation) -> tuple[int, int, int]:
        rank = checks.index(v.check) if v.check in checks else len(checks)
        return (-v.rows, position.get(v.column or "", len(position)), rank)

    return sorted(merged.values(), key=order)


def _publish(staging: Path, out: Path, scored: Scored) -> Path | None:
    """Write the output and the quarantine from the parts (streaming) under temporary names,
    then put them in place: the earlier output (if any) removed first, the quarantine next,
    the output last, so that an output file is always complete and its quarantine is beside
    it. Returns the quarantine's path (``None``: nothing quarantined, and an earlier
    predict's quarantine is removed)."""
    import polars as pl

    from modelyard.data.validation import REASONS, ROW

    def parts(sub: str) -> list[Path]:
        return sorted((staging / sub).glob("part-*.parquet"))

    def scan(files: list[Path]) -> pl.LazyFrame:
        return pl.concat([pl.scan_parquet(f) for f in files], how="vertical_relaxed")

    target = quarantine_path(out)
    rows, lines = parts("quarantine"), parts("rejected")
    quarantine = None
    if rows or lines:
        line_cols = {"_file": pl.String, "_line": pl.Int64, "_text": pl.String}
        frames = []
        if rows and lines:  # the columns of the lines, null for the rows (as validation does)
            nulls = (pl.lit(None, dtype=t).alias(c) for c, t in line_cols.items())
            frames.append(scan(rows).with_columns(nulls))
        elif rows:
            frames.append(scan(rows))
        if lines:
            frames.append(
                scan(lines).select(
                    *(pl.lit(None, dtype=t).alias(c) for c, t in scored.raw_schema.items()),
                    pl.lit(None, dtype=pl.Int64).alias(ROW),
                    pl.col(REASONS),
                    *(pl.col(c).cast(t) for c, t in line_cols.items()),
                )
            )
        quarantine = _sink(pl.concat(frames, how="vertical_relaxed"), target, staging)
    scored_parts = parts("scored")
    if scored_parts:
        output = _sink(scan(scored_parts), out, staging)
    else:  # no row scored: the columns alone
        output = _sink(pl.LazyFrame(schema=scored.output_schema), out, staging)
    out.unlink(missing_ok=True)  # an earlier predict's: never beside this one's quarantine
    if quarantine is not None:
        quarantine.replace(target)
    else:
        target.unlink(missing_ok=True)
    output.replace(out)
    return target if quarantine is not None else None


def _sink(frame: pl.LazyFrame, path: Path, staging: Path) -> Path:
    """Stream ``frame`` into a file of ``staging`` (Parquet or CSV by the extension of
    ``path``), to be renamed to ``path``."""
    tmp = staging / path.name
    if path.suffix.lower() == ".csv":
        frame.sink_csv(tmp)
    else:
        frame.sink_parquet(tmp)
    return tmp


def _token() -> str:
    """``<pid>-<random>``: names this process's staging folder, so that a later predict can
    tell an abandoned one (its process is gone) from one in use."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _remove_abandoned(out: Path) -> None:
    """Remove the staging folders that a killed predict of ``out`` left (its process is gone)."""
    for left in out.parent.glob(f"{glob.escape('.' + out.name)}.*-*.parts"):
        pid = left.name[len(out.name) + 2 :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(left, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def score_frame(
    model: Any, frame: pl.DataFrame, contract: DataContract, *, batch_rows: int = 50_000,
    progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:  # fmt: skip
    """Predictions (``prediction`` + ``proba_<class>``) for validated rows, in batches."""
    import polars as pl

    from modelyard.data.frames import from_pandas
    from modelyard.modeling.features import to_pandas

    parts = []
    for start in range(0, frame.height, batch_rows):
        chunk = frame.slice(start, batch_rows)
        out = model.predict(to_pandas(chunk, contract))
        parts.append(from_pandas(out.reset_index(drop=True)))
        if progress:
            progress(min(start + batch_rows, frame.height), frame.height)
    if not parts:
        return pl.DataFrame({"prediction": []})
    return pl.concat(parts)

"""Data drift between two tables read from files: what :meth:`modelyard.recipe.Project.drift`
and ``modelyard drift`` run.

:func:`drift_files` reads two plain files (a CSV's separator and header guessed);
:func:`compare` compares two tables, typed and with their roles from a data contract (the
project's, else one inferred from the reference), the target apart as label drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import polars as pl

    from modelyard.config.schema import DriftThresholds, ReadOptions
    from modelyard.data.contract import DataContract, Task
    from modelyard.ops.monitoring.drift import DriftReport, SetAside


def _guess_read(
    path: Path, separator: str | None, header: bool | None, like: ReadOptions | None = None
) -> ReadOptions:
    """Read options of a plain file: the CSV separator and header guessed (unless given); a
    file without a header gets the names column_1, column_2, ... ``like``: the reference's
    options, whose way of writing values (date format, decimal comma, missing-value tokens)
    the other file shares where its own sample shows none (a sample can hold no day above 12)."""
    from modelyard.config.schema import ReadOptions
    from modelyard.data.sources import file_format, sniff_csv

    local = Path(path)
    if not (local.is_file() and file_format(local) == "csv"):  # a URL, or a typed format
        return ReadOptions(
            separator=separator or ",", has_header=True if header is None else header
        )
    sniffed = sniff_csv(local, separator=separator, has_header=header, name_columns=True)
    read = sniffed.options
    if like is None:
        return read
    update: dict[str, Any] = {
        "null_values": sorted({*read.null_values, *like.null_values}),
        "decimal_comma": read.decimal_comma
        or (like.decimal_comma and like.separator == read.separator),
    }
    if read.date_format is None and like.date_format is not None:
        update |= {"date_format": like.date_format, "parse_dates": like.parse_dates}
    return read.model_copy(update=update)


def read_compared(
    path: Path, read: ReadOptions, table: Literal["reference", "current"]
) -> tuple[pl.DataFrame, SetAside | None]:
    """One file of a drift comparison, the lines that are not rows set aside as ingest does
    (and described). More of them than rows is a :class:`DataError`: the read options are
    wrong for the file (its separator, header or format), not a few lines broken."""
    from modelyard.data.sources import describe_rejected, read_file_rows
    from modelyard.errors import DataError
    from modelyard.ops.monitoring.drift import SetAside

    rows, rejected = read_file_rows(path, read=read)
    if not rejected.height:
        return rows, None
    first = describe_rejected(rejected)
    lines = rows.height + rejected.height
    if rejected.height > rows.height:
        raise DataError(
            f"{rejected.height:,} of the {lines:,} lines are not rows",
            where=str(path),
            expected="lines of the same number of fields (a few broken ones are left out)",
            found=f"first: {first}",
            fix="Check the file's separator, header and format.",
        )
    at = int(rejected.get_column("_line")[0])
    return rows, SetAside(table=table, lines=rejected.height, first_line=at, first=first)


def read_plain(
    path: Path,
    separator: str | None = None,
    header: bool | None = None,
    table: Literal["reference", "current"] = "current",
    like: ReadOptions | None = None,
) -> tuple[pl.DataFrame, SetAside | None, ReadOptions]:
    """Read one file of ``modelyard drift`` without a project (:func:`read_compared`), with
    the read options guessed (``like``: see :func:`_guess_read`); an error names this
    command's options (not modelyard.yaml's ``read`` keys)."""
    from modelyard.errors import DataError

    read = _guess_read(path, separator, header, like)
    try:
        return (*read_compared(path, read, table), read)
    except DataError as exc:
        guess = f"separator {read.separator!r}, " + (
            "a header line" if read.has_header else "no header (columns column_1, ...)"
        )
        raise DataError(
            exc.what, where=exc.where, expected=exc.expected, found=exc.found,
            fix=f"modelyard drift read it with {guess}: set them with --separator and "
            "--header / --no-header, or describe the files in a project (data.source.read) "
            "and pass -c.",
        ) from None  # fmt: skip


def drift_files(
    reference: Path,
    current: Path,
    *,
    columns: list[str] | None = None,
    target: str | None = None,
    separator: str | None = None,
    header: bool | None = None,
    min_rows: int = 100,
) -> DriftReport:
    """Drift between two plain files (CSV, Parquet, JSON, or URLs), without a project: each
    CSV's separator and header guessed unless given, the contract inferred from ``reference``."""
    ref, ref_aside, read = read_plain(reference, separator, header, "reference")
    cur, cur_aside, _ = read_plain(current, separator, header, "current", like=read)
    return compare(
        ref, cur, reference_name=str(reference), columns=columns, target=target,
        min_rows=min_rows, set_aside=[a for a in (ref_aside, cur_aside) if a is not None],
    )  # fmt: skip


def compare(
    ref: pl.DataFrame,
    cur: pl.DataFrame,
    *,
    reference_name: str = "the reference",
    contract: DataContract | None = None,
    declared_target: str | None = None,
    declared_task: Task | None = None,
    columns: list[str] | None = None,
    target: str | None = None,
    thresholds: DriftThresholds | None = None,
    min_rows: int = 100,
    set_aside: Sequence[SetAside] = (),
) -> DriftReport:
    """Drift of ``cur`` from ``ref`` on every column ``contract`` knows (inferred from ``ref``
    when None; ``declared_target``/``declared_task`` are a project's), or on ``columns``; the
    ``target`` (default: the contract's) is reported apart, as label drift. ``set_aside``:
    the lines of the files that were not rows (:func:`read_compared`), for the report."""
    from modelyard.config.schema import ColumnRoles, ContractSection, DriftThresholds
    from modelyard.data.contract import infer_contract
    from modelyard.ops.monitoring.drift import drift as run_drift

    if target is not None and target not in ref.columns:
        import difflib

        from modelyard.errors import ModelyardError

        guess = difflib.get_close_matches(target, ref.columns, n=1)
        raise ModelyardError(
            f"the target column '{target}' is not in {reference_name}",
            expected=f"one of {', '.join(ref.columns)}",
            fix="Pass --target with a column of REFERENCE."
            + (f" Did you mean '{guess[0]}'?" if guess else ""),
        )
    if contract is None:
        label = target or declared_target
        contract = infer_contract(
            ref, target=label if label in ref.columns else None,
            task=declared_task if label == declared_target else None,
            roles=ColumnRoles(), options=ContractSection(),
        )  # fmt: skip
    label = target or contract.target
    if label not in ref.columns:  # a project's target the files do not have: no label drift
        label = None
    # every column the contract knows is compared, not only its features; the target apart
    contract = contract.model_copy(
        update={
            "target": label,
            "task": contract.task if label == contract.target else None,
            "columns": [
                c.model_copy(update={"role": "target" if c.name == label else "feature"})
                if c.role in ("target", "leakage") or c.name == label
                else c
                for c in contract.columns
            ],
        }
    )
    report = run_drift(
        ref, cur, contract=contract, columns=columns, target=label,
        thresholds=thresholds or DriftThresholds(), min_rows=min_rows,
    )  # fmt: skip
    return report.model_copy(update={"set_aside": list(set_aside)}) if set_aside else report


def project_read_options(
    read: ReadOptions, separator: str | None, header: bool | None
) -> ReadOptions:
    """A project's read options with ``--separator`` / ``--header`` applied."""
    if separator is None and header is None:
        return read
    update: dict[str, Any] = {"separator": separator or read.separator}
    if header is not None:
        update["has_header"] = header
    return read.model_copy(update=update)

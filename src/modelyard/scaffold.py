"""``modelyard init``: a commented modelyard.yaml for a data file, with the task inferred."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.config.schema import ColumnRoles, ContractSection, ReadOptions, Source
from modelyard.data.sources import excel_sheets, file_format, sniff_csv
from modelyard.errors import DataError, name_list

if TYPE_CHECKING:
    import polars as pl

_TEMPLATE = """\
# modelyard.yaml: the whole pipeline in one file. Reference: docs/configuration.md
# Relative paths start at this file's folder; ${{VAR}} and ${{VAR:-default}} read the environment.
version: 1
name: {name}
seed: 42                      # every random choice (sampling, splits, models) uses it

data:
  source:
    path: {path}
    read:
{read}
  target: {target}
  task: {task}                # inferred from the target's values (auto | binary | multiclass | regression)
  # test:                     # an explicit hold-out file, read like the source unless overridden
  #   path: data/test.csv
  #   read: {{skip_rows: 1}}
  # normalize:                # fix values written differently across files
  #   {target_or_col}: {{strip_suffix: "."}}
  columns:
    id: []                    # row identifiers: never features
    drop: []                  # removed right after reading
    leakage: []               # known to leak the target: profiled, never features
  # sample: 10000             # work on a seeded sample while iterating

contract:
  path: contract.yaml         # inferred on the first run, then yours to edit and commit

validation:
  on_error: quarantine        # quarantine | warn | fail
  max_invalid_fraction: 0.05  # more invalid rows than this fails the run
  checks: []                  # e.g. - {{column: age, min: 0, max: 120}}
                              #      - {{expression: "x > 0 AND y > 0", name: positive}}

profile:
  bins: 30
  top_values: 10

# The model search: what `modelyard run` fits. The values shown are the defaults, resolved for
# this data; uncomment a line to change it.
models:
  # candidates: [{families}]
{not_installed}                              # the default: every family installed here; dummy is the baseline to beat
  budget: auto                # wall-clock for exploration, tuning and the final fit: 90s, 5m, 1h;
                              # auto here: {budget}
  metric: auto                # here: {metric}{metrics_note}
  # cv_sample: 20000          # cross-validate the search on at most this many training rows{cv_sample_note}
  # ensemble: true            # blend the best models into a weighted ensemble (kept where it wins)
  # class_weight: none        # balanced: weight classes inversely to their frequency

tuning:
  top_k: 2                    # how many of the best families Optuna tunes after exploring (0: none)
  # n_trials: 20              # a trial count per family instead of the budget: exactly reproducible
  # pruning: true             # stop a trial whose first fold is below the median of earlier ones

split:
  # method: auto              # here: {split_method}
  # test_size: 0.2            # the hold-out share, scored once at the end
  cv_folds: 5                 # cross-validation folds of the model search

compute:
  executor: local             # serial | local (every core) | dask (modelyard[dask])
  workers: auto               # local: one process per core
  # address: tcp://scheduler:8786   # dask: a running cluster; unset, a LocalCluster

# Columns found: {columns}
"""


_NULL_VALUES = ["", "NA", "?"]
"""The missing-value tokens the yaml of a CSV file lists (and init reads the sample with)."""


def scaffold(
    data_file: Path, *, target: str | None, name: str | None, out: Path
) -> tuple[str, str]:
    """Return the text of a modelyard.yaml for ``data_file`` and the inferred task."""
    from modelyard.data.sources import read_source

    if not data_file.is_file():
        raise DataError(
            "no such file",
            where=str(data_file),
            fix="Pass the path of a CSV, Parquet, JSON or Excel file.",
        )
    fmt = file_format(data_file)
    read, renamed, date_note = ReadOptions(), [], None
    if fmt == "csv":
        sniffed = sniff_csv(data_file, name_columns=True)
        read, renamed, date_note = sniffed.options, sniffed.renamed, sniffed.date_note
    sheets: list[str] = []
    if fmt == "excel":
        sheets = excel_sheets(data_file)
        read = read.model_copy(update={"sheet": sheets[0] if sheets else None})
    nulls = _NULL_VALUES + [t for t in read.null_values if t not in _NULL_VALUES]
    read = read.model_copy(update={"null_values": nulls})  # as the yaml says
    frame = read_source(Source(path=data_file.resolve(), read=read), sample=20_000, seed=0)
    task = "auto"
    if target is not None:
        if target not in frame.columns:
            guess = difflib.get_close_matches(target, frame.columns, n=1)
            hint = f" Did you mean '{guess[0]}'?" if guess else ""
            raise DataError(
                f"the target column '{target}' is not in {data_file}",
                expected=f"one of {name_list(frame.columns)}",
                fix=f"Pass --target with a column name.{hint}",
            )
        import polars as pl

        from modelyard.data.contract import infer_contract
        from modelyard.data.sources import infer_task

        typed = infer_contract(
            frame, target=None, task=None, roles=ColumnRoles(), options=ContractSection()
        )
        col = typed.column(target)
        series = frame[target]
        if col.type in ("int", "float") and series.dtype == pl.String:
            series = series.cast(pl.Float64, strict=False)
        task = infer_task(series)
    rel = os.path.relpath(data_file.resolve(), out.resolve().parent)
    read_lines = [
        f'      separator: "{read.separator}"',
        f"      has_header: {'true' if read.has_header else 'false'}",
        f"      strip_whitespace: {'true' if read.strip_whitespace else 'false'}",
        f"      null_values: {json.dumps(read.null_values)}",
    ]
    if read.sheet is not None:
        shown = ", ".join(json.dumps(n) for n in sheets[:10]) + (
            ", ..." if len(sheets) > 10 else ""
        )
        read_lines.append(
            f"      sheet: {json.dumps(read.sheet)}  # the workbook's sheets: {shown}"
        )
    if read.skip_rows:  # a title line above the table
        read_lines.append(f"      skip_rows: {read.skip_rows}")
    if read.columns is not None:
        why = (
            "the header's names; renamed: " + ", ".join(renamed)
            if read.has_header
            else "the file has no header: name them"
        )
        read_lines.append(f"      columns: {json.dumps(read.columns)}  # {why}")
    if read.date_format is not None:
        read_lines.append(f"      parse_dates: {json.dumps(read.parse_dates)}")
        read_lines.append(f'      date_format: "{read.date_format}"  # guessed: {date_note}')
    if read.decimal_comma:
        read_lines.append("      decimal_comma: true  # guessed: numbers are written 54,93")
    if read.encoding != "utf8":
        read_lines.append(f"      encoding: {read.encoding}  # guessed: the file is not UTF-8")
    text = _TEMPLATE.format(
        name=(name or data_file.name.split(".")[0]).replace(" ", "_") or "project",
        path=rel,
        read="\n".join(read_lines),
        target=target if target is not None else "null   # set the column to predict",
        task=task,
        target_or_col=target or "label",
        columns=", ".join(frame.columns)[:2000],
        **_search_defaults(data_file, frame, read, target=target, task=task),
    )
    return text, task


def _search_defaults(
    data_file: Path, frame: pl.DataFrame, read: ReadOptions, *, target: str | None, task: str
) -> dict[str, str]:
    """What the model search will do with the defaults, for the comments of the template: the
    families installed, the auto budget for this table's size, the metric and the split."""
    from modelyard.config.schema import ModelsSection, SplitSection
    from modelyard.data.sources import estimate_shape
    from modelyard.modeling.search.budget import auto_budget
    from modelyard.modeling.tasks import METRICS
    from modelyard.modeling.zoo import family

    candidates = ModelsSection().candidates
    ready = [name for name in candidates if family(name).available()]
    missing = [name for name in candidates if name not in ready]
    shape = estimate_shape(Source(path=data_file.resolve(), read=read))
    rows = shape[0] if shape is not None else frame.height
    rows = round(rows * (1 - SplitSection().test_size))
    columns = max(1, frame.width - (1 if target is not None else 0))
    seconds = auto_budget(rows, columns)
    cv_rows = ModelsSection().cv_sample or rows
    if task in METRICS:
        metric, *others = METRICS[task]  # the default first
        metrics_note = f"; or one of {', '.join(others)}"
        split = "stratified" if task != "regression" else "random"
    else:
        metric = "roc_auc (binary), f1_macro (multiclass), rmse (regression)"
        metrics_note = ""
        split = "stratified for classification, random for regression"
    return {
        "families": ", ".join(ready),
        "not_installed": "  #                           # not installed: "
        + ", ".join(f"{name} (modelyard[{name}])" for name in missing)
        + "\n"
        if missing
        else "",
        "budget": f"about {seconds:.0f} s (~{rows:,} training rows x {columns} columns)",
        "metric": metric,
        "metrics_note": metrics_note,
        "cv_sample_note": f" (here: {min(rows, cv_rows):,} of ~{rows:,})" if rows > cv_rows else "",
        "split_method": split,
    }

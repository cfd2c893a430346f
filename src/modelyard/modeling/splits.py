"""The hold-out split and the cross-validation folds.

The hold-out test set is made once, by :func:`make_split`, and never seen by model selection or
tuning; cross-validation (:func:`cv_splitter`) runs on the training part only.

- ``auto``: ``test_file`` when an explicit test frame is given, else ``stratified`` for
  classification and ``random`` for regression.
- ``stratified``: class shares kept in both parts; when a class is too rare to be split
  (fewer than 2 rows, or fewer rows than the parts need) it falls back to ``random`` and says
  so in the description.
- ``time``: rows sorted by the time column (``split.time_column``, else the contract's ``time``
  column); training rows are those before ``cutoff``, test rows those from it on. Without a
  cutoff the last ``test_size`` share is the test set, and rows sharing the boundary time all go
  to the test set (no time is on both sides). Both parts stay sorted by time, which
  :class:`~sklearn.model_selection.TimeSeriesSplit` relies on.
- ``group``: a seeded ``GroupShuffleSplit`` on ``split.group_column`` (missing is one group).
- ``test_file``: the given test frame as is.

Random choices use ``seed``; row order inside each part is the input order (time: time order).

This is the split of data held in memory (one part). A table of several parts is split per row
by a hash of its key and the seed, with no shuffle: :mod:`modelyard.modeling.table_split`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from modelyard.config.schema import SplitSection
from modelyard.data.contract import DataContract, Task, did_you_mean
from modelyard.errors import DataError, ModelyardError, name_list

if TYPE_CHECKING:
    from modelyard.data.table import Table


@dataclass(frozen=True)
class Split:
    """A train / test split and how it was made (``description`` is for people).

    A table of several parts is split into :attr:`train_table` / :attr:`test_table` (every
    row, on disk); :attr:`train` and :attr:`test` are then seeded samples of them, held in
    memory (what the search and the gate use), and :attr:`sample` says how they were drawn.
    Otherwise the tables are ``None`` and ``train`` / ``test`` hold every row.
    """

    train: pl.DataFrame
    test: pl.DataFrame
    method: str
    description: str
    train_table: Table | None = None
    """Every training row, when ``train`` is a sample of them."""
    test_table: Table | None = None
    """Every test row, when ``test`` is a sample of them."""
    sample: str | None = None
    """How the in-memory samples were drawn, e.g. "model search on a stratified sample of
    250,000 of 8,000,000 training rows"."""

    @property
    def train_rows(self) -> int:
        """Training rows in all (more than ``train.height`` when ``train`` is a sample)."""
        return self.train_table.num_rows if self.train_table is not None else self.train.height

    @property
    def test_rows(self) -> int:
        """Test rows in all (more than ``test.height`` when ``test`` is a sample)."""
        return self.test_table.num_rows if self.test_table is not None else self.test.height


def _pct(share: float) -> str:
    return f"{round((1 - share) * 100):d}/{round(share * 100):d}"


def _rows(n: int) -> str:
    return f"{n:,} row{'s' if n != 1 else ''}"


def _take(df: pl.DataFrame, idx: np.ndarray) -> pl.DataFrame:
    return df[np.sort(idx).astype(np.int64)]


def _n_test(n: int, share: float) -> int:
    return max(1, min(n - 1, math.ceil(share * n)))


def _random(df: pl.DataFrame, share: float, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = df.height
    perm = np.random.default_rng(seed).permutation(n)
    k = _n_test(n, share)
    return _take(df, perm[k:]), _take(df, perm[:k])


def _column(df: pl.DataFrame, name: str, what: str) -> pl.Series:
    if name not in df.columns:
        raise ModelyardError(
            f"the {what} column '{name}' is not in the data{did_you_mean(name, df.columns)}",
            where="split",
            expected=f"one of {name_list(df.columns)}",
            fix="Correct the column name in the split section of modelyard.yaml.",
        )
    return df.get_column(name)


def _resolve_method(
    contract: DataContract, options: SplitSection, test: pl.DataFrame | None
) -> str:
    method = options.method
    if method == "auto":
        if test is not None:
            return "test_file"
        return "random" if contract.task == "regression" else "stratified"
    if method == "test_file" and test is None:
        raise ModelyardError(
            "split.method is 'test_file' but no test file was given",
            where="split.method",
            fix="Set data.test to the hold-out file, or choose another split method.",
        )
    if method != "test_file" and test is not None:
        raise ModelyardError(
            f"data.test gives a test file, but split.method is '{method}'",
            where="split.method",
            expected="'auto' or 'test_file' when data.test is set",
            fix="Remove data.test to split the training data, or set split.method to auto.",
        )
    return method


def make_split(
    df: pl.DataFrame,
    contract: DataContract,
    options: SplitSection,
    *,
    test: pl.DataFrame | None = None,
    seed: int,
) -> Split:
    """Split ``df`` into training and hold-out test rows (see the module docstring)."""
    method = _resolve_method(contract, options, test)
    share = options.test_size
    if method == "test_file":
        assert test is not None
        check_test_columns(df.columns, test.columns)
        return Split(
            df,
            test,
            method,
            f"test file: train {_rows(df.height)}, test {_rows(test.height)}",
        )
    if df.height < 2:
        raise DataError(
            f"cannot split {_rows(df.height)} into train and test",
            where="split",
            expected="at least 2 rows",
        )
    if method == "random":
        train, hold = _random(df, share, seed)
        desc = f"random {_pct(share)}, seed {seed}: train {_rows(train.height)}, test {_rows(hold.height)}"
        return Split(train, hold, method, desc)
    if method == "stratified":
        return _stratified(df, contract, share, seed)
    if method == "time":
        return _time(df, contract, options)
    return _group(df, options, seed)


def check_test_columns(train: list[str], test: list[str]) -> None:
    """The test file must hold every column of the training data."""
    in_test = set(test)
    missing = [c for c in train if c not in in_test]
    if missing:
        raise DataError(
            f"the test file lacks {len(missing):,} column(s) of the training data: "
            f"{name_list(missing)}",
            where="data.test",
            fix="Use a test file with the same columns as the training data.",
        )


def _stratified(df: pl.DataFrame, contract: DataContract, share: float, seed: int) -> Split:
    from sklearn.model_selection import train_test_split

    target = contract.target
    if target is None:
        raise ModelyardError(
            "a stratified split needs a target column",
            where="split.method",
            fix="Set data.target, or use split.method: random.",
        )
    y = _column(df, target, "target").cast(pl.String).fill_null("\0null").to_numpy()
    _, counts = np.unique(y, return_counts=True)
    n_test = _n_test(df.height, share)
    reason = None
    if counts.min() < 2:
        reason = f"a class of '{target}' has fewer than 2 rows"
    elif n_test < len(counts) or df.height - n_test < len(counts):
        reason = f"the parts are smaller than the {len(counts)} classes of '{target}'"
    if reason is None:
        train_idx, test_idx = train_test_split(
            np.arange(df.height), test_size=n_test, stratify=y, random_state=seed
        )
        train, hold = _take(df, train_idx), _take(df, test_idx)
        desc = f"stratified {_pct(share)} on {target}, seed {seed}"
    else:
        train, hold = _random(df, share, seed)
        desc = f"random {_pct(share)}, seed {seed} (not stratified: {reason})"
    return Split(
        train,
        hold,
        "stratified" if reason is None else "random",
        f"{desc}: train {_rows(train.height)}, test {_rows(hold.height)}",
    )


def _parse_cutoff(cutoff: str, dtype: pl.DataType, column: str) -> Any:
    try:
        if dtype == pl.Date:
            return dt.date.fromisoformat(cutoff[:10])
        if isinstance(dtype, pl.Datetime):
            return dt.datetime.fromisoformat(cutoff)
        if dtype.is_numeric():
            return float(cutoff)
    except ValueError:
        kind = (
            "an ISO date"
            if dtype == pl.Date
            else "an ISO datetime"
            if isinstance(dtype, pl.Datetime)
            else "a number"
        )
        raise ModelyardError(
            f"the cutoff '{cutoff}' cannot be compared with the time column '{column}'",
            where="split.cutoff",
            expected=kind,
            found=repr(cutoff),
        ) from None
    return cutoff


def _time_column(df: pl.DataFrame, contract: DataContract, options: SplitSection) -> str:
    if options.time_column:
        return options.time_column
    for col in contract.columns:
        if col.role == "time":
            return col.name
    raise ModelyardError(
        "a time split needs a time column, and none is set",
        where="split.time_column",
        expected="split.time_column or data.columns.time naming a date/datetime column",
        fix="Set split.time_column (or data.columns.time) in modelyard.yaml.",
    )


def _time(df: pl.DataFrame, contract: DataContract, options: SplitSection) -> Split:
    name = _time_column(df, contract, options)
    col = _column(df, name, "time")
    nulls = col.null_count()
    if nulls:
        raise DataError(
            f"the time column '{name}' has {nulls} missing value(s); such rows cannot be placed in time",
            where="split",
            fix="Make the time column non-nullable in the contract, or drop those rows.",
        )
    ordered = df.sort(name, maintain_order=True)
    times = ordered.get_column(name)
    if options.cutoff is not None:
        cutoff = _parse_cutoff(options.cutoff, times.dtype, name)
        shown = options.cutoff
    else:
        cutoff = times[ordered.height - _n_test(ordered.height, options.test_size)]
        shown = str(cutoff)
    n_train = int((times < cutoff).sum())
    train, hold = ordered[:n_train], ordered[n_train:]
    if train.height == 0 or hold.height == 0:
        empty = "training" if train.height == 0 else "test"
        raise ModelyardError(
            f"the time split on '{name}' at {shown} leaves the {empty} set empty",
            where="split.cutoff",
            expected=f"a cutoff between {times[0]} and {times[-1]}",
            found=shown,
        )
    desc = (
        f"time on {name}: train < {shown} ({_rows(train.height)}), "
        f"test >= {shown} ({_rows(hold.height)})"
    )
    return Split(train, hold, "time", desc)


def _group(df: pl.DataFrame, options: SplitSection, seed: int) -> Split:
    from sklearn.model_selection import GroupShuffleSplit

    if not options.group_column:
        raise ModelyardError(
            "a group split needs a group column, and none is set",
            where="split.group_column",
            fix="Set split.group_column in modelyard.yaml.",
        )
    name = options.group_column
    groups = _column(df, name, "group").cast(pl.String).fill_null("\0null").to_numpy()
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise DataError(
            f"a group split needs at least 2 groups, '{name}' has {n_groups}",
            where="split.group_column",
        )
    splitter = GroupShuffleSplit(n_splits=1, test_size=options.test_size, random_state=seed)
    train_idx, test_idx = next(splitter.split(np.zeros(df.height), groups=groups))
    train, hold = _take(df, train_idx), _take(df, test_idx)
    desc = (
        f"group on {name} ({n_groups:,} groups) {_pct(options.test_size)}, seed {seed}: "
        f"train {_rows(train.height)}, test {_rows(hold.height)}"
    )
    return Split(train, hold, "group", desc)


def cv_splitter(
    task: Task,
    options: SplitSection,
    *,
    n_rows: int,
    seed: int,
    groups_available: bool = False,
) -> Any:
    """The cross-validation splitter for the training part.

    ``time`` -> ``TimeSeriesSplit`` (rows must be in time order, as :func:`make_split` leaves
    them); ``group`` -> ``GroupKFold`` (pass ``groups=`` to ``split``; requires
    ``groups_available``); classification -> ``StratifiedKFold(shuffle=True)``; regression ->
    ``KFold(shuffle=True)``. Folds are ``split.cv_folds``, at most ``n_rows``.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit

    if n_rows < 2:
        raise DataError(
            f"cross-validation needs at least 2 training rows, found {n_rows}", where="split"
        )
    folds = max(2, min(options.cv_folds, n_rows))
    if options.method == "time":
        return TimeSeriesSplit(n_splits=min(folds, n_rows - 1))
    if options.method == "group":
        if not groups_available:
            raise ModelyardError(
                "group cross-validation needs the group column, which is not available",
                where="split.group_column",
                fix="Set split.group_column and keep that column in the training data.",
            )
        return GroupKFold(n_splits=folds)
    if task in ("binary", "multiclass"):
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)

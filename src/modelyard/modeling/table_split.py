"""The hold-out split of a table of several parts: per row, with no shuffle.

A table too big to hold (more rows than ``data.batch_rows``, so several parts) is split part by
part, one task per part on the executor (:func:`modelyard.compute.map_in_order`):

- ``random`` / ``stratified``: a row is a test row when a hash of its key and the seed, read
  as a number in [0, 1), is below ``split.test_size``. The key is the contract's id columns
  when it has some, else all of the row's values (equal rows then land on the same side). The
  shares (and each class's share) are the configured ones within binomial noise.
- ``group``: the hash of the group column: a group never straddles train and test.
- ``time``: rows before the cutoff train; without ``split.cutoff`` it is the time at the
  ``1 - test_size`` quantile of the time column (collected alone), chosen by the same rule as
  in memory (rows sharing the boundary time all test).
- ``test_file``: the training table and the test table as they are.

The outcome depends only on the data, the config and the seed: not on the executor, the number
of workers or the order the parts finished. Then two seeded samples are drawn part by part,
again by hashing (so no part is held beside another): the training sample the search uses
(stratified by the target for classification, every row of a rare class kept) and a bounded
test sample the promotion gate scores both the candidate and the champion on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from modelyard.compute import map_in_order
from modelyard.config.schema import SplitSection
from modelyard.data.contract import DataContract, did_you_mean
from modelyard.data.table import Table, link_table, write_part
from modelyard.errors import DataError, ModelyardError, name_list
from modelyard.modeling.splits import (
    Split,
    _n_test,
    _parse_cutoff,
    _pct,
    _resolve_method,
    _rows,
    _time_column,
    check_test_columns,
)

if TYPE_CHECKING:
    from modelyard.compute import Executor

TEST_SAMPLE_ROWS = 100_000
"""The test rows held in memory (the promotion gate scores the candidate and the champion on
this seeded sample of the test table; the evaluation's metrics use every test row)."""
RARE_CLASS_ROWS = 10
"""A class that would have fewer rows than this in the training sample keeps all its rows."""
_SAMPLE_SALT = 0x5EED_0001
_TEST_SALT = 0x5EED_0002
_NULL = "\0null"


def _seed(seed: int, salt: int = 0) -> int:
    return (seed * 0x9E3779B1 + salt) % (2**63)


def hash_unit(frame: pl.DataFrame, key: list[str], seed: int) -> pl.Series:
    """Per row a number in [0, 1) from a hash of its ``key`` columns and ``seed``: the same
    for the same values in any part, process or machine (with the same polars)."""
    expr = pl.col(key[0]) if len(key) == 1 else pl.struct(key)
    h = frame.select(expr.hash(seed=_seed(seed)).alias("h")).get_column("h")
    return (h // 2048).cast(pl.Float64) / float(2**53)


@dataclass(frozen=True)
class _Rule:
    """How one part's rows are told apart (sent with each task)."""

    kind: Literal["hash", "time"]
    key: list[str]
    share: float
    seed: int
    cutoff: Any = None
    target: str | None = None


@dataclass
class _PartStats:
    train: int
    test: int
    classes: dict[str, int] = field(default_factory=dict)
    """Training rows per class of the target (classification)."""


def _labels(frame: pl.DataFrame, target: str) -> pl.Series:
    return frame.get_column(target).cast(pl.String).fill_null(_NULL)


def _split_part(path: str, train_path: str, test_path: str, rule: _Rule) -> _PartStats:
    """Split one part into its training and test part files; count the training classes."""
    frame = pl.read_parquet(path)
    if rule.kind == "time":
        is_test = frame.get_column(rule.key[0]) >= rule.cutoff
    else:
        is_test = hash_unit(frame, rule.key, rule.seed) < rule.share
    train, test = frame.filter(~is_test), frame.filter(is_test)
    write_part(train, Path(train_path))
    write_part(test, Path(test_path))
    classes: dict[str, int] = {}
    if rule.target is not None and train.height:
        counts = _labels(train, rule.target).value_counts()
        classes = dict(zip(counts[:, 0].to_list(), counts[:, 1].to_list(), strict=True))
    return _PartStats(train.height, test.height, classes)


def _sample_part(
    path: str, key: list[str], seed: int, target: str | None, rates: dict[str, float], part: int
) -> pl.DataFrame:
    """The rows of one part drawn at their class's rate (``rates[""]`` without a target), with
    their hash (``__u``) and position (``__part``, ``__row``) for the driver's exact cut."""
    frame = pl.read_parquet(path)
    if frame.height == 0:
        return frame.with_columns(
            __u=pl.lit(0.0), __part=pl.lit(0, pl.Int64), __row=pl.lit(0, pl.Int64)
        )
    u = hash_unit(frame, key, seed)
    rate: pl.Expr | pl.Series
    if target is None:
        rate = pl.lit(rates.get("", 1.0))
    else:
        rate = _labels(frame, target).replace_strict(rates, default=1.0, return_dtype=pl.Float64)
    return (
        frame.with_columns(__u=u, __part=pl.lit(part, pl.Int64))
        .with_row_index("__row")
        .with_columns(pl.col("__row").cast(pl.Int64))
        .filter(pl.col("__u") < rate)
    )


def _draw(
    table: Table,
    want: dict[str, int],
    counts: dict[str, int],
    *,
    key: list[str],
    seed: int,
    target: str | None,
    executor: Executor | None,
) -> pl.DataFrame:
    """Exactly ``want[c]`` rows of each class ``c`` (``""``: all rows) of ``table``, the ones
    with the smallest hash, in table order. Each part returns only rows drawn at a slightly
    higher rate than needed, so at most a little more than the sample is ever held."""
    rates: dict[str, float] = {}
    for label, n in counts.items():
        k = want.get(label, 0)
        rate = k / n if n else 0.0
        slack = (10 * math.sqrt(max(k, 1)) + 50) / max(n, 1)
        rates[label] = 1.0 if k >= n else min(1.0, rate * 1.05 + slack)
    calls = [(str(p), key, seed, target, rates, i) for i, p in enumerate(table.parts())]
    drawn = [f for f in map_in_order(executor, _sample_part, calls) if f.height]
    if not drawn:
        return pl.read_parquet(table.parts()[0]).clear()
    rows = pl.concat(drawn, how="vertical")
    group = _labels(rows, target) if target is not None else pl.Series([""] * rows.height)
    rows = rows.with_columns(__class=group)
    limits = pl.DataFrame(
        {"__class": list(want), "__k": list(want.values())},
        schema={"__class": pl.String, "__k": pl.Int64},
    )
    chosen = (
        rows.sort("__u", "__part", "__row")
        .with_columns(__rank=pl.int_range(pl.len()).over("__class"))
        .join(limits, on="__class", how="left")
        .filter(pl.col("__rank") < pl.col("__k"))
        .sort("__part", "__row")
    )
    sample: pl.DataFrame = chosen.drop("__u", "__part", "__row", "__class", "__rank", "__k")
    return sample


def _stratified_want(counts: dict[str, int], n: int) -> dict[str, int]:
    """Rows to draw per class for a sample of about ``n`` of ``sum(counts)`` rows: the same
    share of every class, except that a class that would keep fewer than
    :data:`RARE_CLASS_ROWS` rows keeps them all."""
    total = sum(counts.values())
    rare = {c for c, k in counts.items() if k * n / max(total, 1) < RARE_CLASS_ROWS}
    kept = sum(counts[c] for c in rare)
    rest = total - kept
    share = max(0.0, min(1.0, (n - kept) / rest)) if rest else 0.0
    return {c: k if c in rare else round(k * share) for c, k in counts.items()}


def _key(contract: DataContract, columns: list[str]) -> tuple[list[str], str]:
    ids = [c.name for c in contract.columns if c.role == "id" and c.name in columns]
    if ids:
        return ids, f"the id column{'s' if len(ids) > 1 else ''} {name_list(ids)}"
    return list(columns), "each row's values"


def _check_column(name: str, columns: list[str], what: str) -> None:
    if name not in columns:
        raise ModelyardError(
            f"the {what} column '{name}' is not in the data{did_you_mean(name, columns)}",
            where="split",
            expected=f"one of {name_list(columns)}",
            fix="Correct the column name in the split section of modelyard.yaml.",
        )


def split_table(
    valid: Table,
    contract: DataContract,
    options: SplitSection,
    *,
    test: Table | None = None,
    seed: int,
    scratch: Callable[[str], Path],
    executor: Executor | None,
    sample_rows: Callable[[int], int],
) -> Split:
    """Split a table of several parts (see the module docstring). ``sample_rows(n)`` is the
    size of the in-memory training sample for ``n`` training rows (``models.search_rows``);
    ``scratch(name)`` gives a fresh folder for each output table."""
    method = _resolve_method(contract, options, None if test is None else pl.DataFrame())
    columns = valid.columns
    target = contract.target if contract.task in ("binary", "multiclass") else None
    if method == "test_file":
        assert test is not None
        check_test_columns(list(columns), test.columns)
        train_table = link_table(valid, scratch("split_train"))
        test_table = link_table(test, scratch("split_test"))
        counts: dict[str, int] = _class_counts(train_table, target, executor)
        desc = f"test file: train {_rows(train_table.num_rows)}, test {_rows(test_table.num_rows)}"
        key, _ = _key(contract, columns)
        return _with_samples(
            train_table, test_table, counts, method, desc, key=key, seed=seed, target=target,
            time=None, executor=executor, sample_rows=sample_rows,
        )  # fmt: skip
    if valid.num_rows < 2:
        raise DataError(
            f"cannot split {_rows(valid.num_rows)} into train and test",
            where="split",
            expected="at least 2 rows",
        )
    share = options.test_size
    time_name = None
    if method == "time":
        time_name = _time_column(pl.DataFrame(), contract, options)
        _check_column(time_name, columns, "time")
        cutoff, shown = _cutoff(valid, time_name, options)
        rule = _Rule("time", [time_name], share, seed, cutoff=cutoff, target=target)
        what = f"time on {time_name}: train < {shown}, test >= {shown}"
    elif method == "group":
        if not options.group_column:
            raise ModelyardError(
                "a group split needs a group column, and none is set",
                where="split.group_column",
                fix="Set split.group_column in modelyard.yaml.",
            )
        _check_column(options.group_column, columns, "group")
        rule = _Rule("hash", [options.group_column], share, seed, target=target)
        what = (
            f"group on {options.group_column} {_pct(share)} by a hash of the group and seed "
            f"{seed} (no group on both sides)"
        )
    else:
        key, shown_key = _key(contract, columns)
        rule = _Rule("hash", key, share, seed, target=target)
        what = f"random {_pct(share)} by a hash of {shown_key} and seed {seed}" + (
            " (class shares kept within sampling noise)" if target is not None else ""
        )
    train_folder, test_folder = scratch("split_train"), scratch("split_test")
    calls = [
        (str(p), str(train_folder / p.name), str(test_folder / p.name), rule) for p in valid.parts()
    ]
    n_train = n_test = 0
    counts = {}
    for stats in map_in_order(executor, _split_part, calls):
        n_train += stats.train
        n_test += stats.test
        for label, k in stats.classes.items():
            counts[label] = counts.get(label, 0) + k
    if n_train == 0 or n_test == 0:
        empty = "training" if n_train == 0 else "test"
        raise ModelyardError(
            f"the {method} split of {_rows(valid.num_rows)} leaves the {empty} set empty",
            where="split.cutoff" if method == "time" else "split",
            fix="Choose another cutoff or test_size."
            if method == "time"
            else "Use more groups or rows, or another split.method.",
        )
    desc = f"{what}, per part: train {_rows(n_train)}, test {_rows(n_test)}"
    if target is None:
        counts = {"": n_train}
    return _with_samples(
        Table(train_folder, n_train), Table(test_folder, n_test), counts,
        "hash" if rule.kind == "hash" and method != "group" else method, desc,
        key=rule.key if method != "time" else _key(contract, columns)[0], seed=seed,
        target=target, time=time_name, executor=executor, sample_rows=sample_rows,
    )  # fmt: skip


def _class_counts(table: Table, target: str | None, executor: Executor | None) -> dict[str, int]:
    if target is None:
        return {"": table.num_rows}
    counts = (
        table.scan()
        .select(pl.col(target).cast(pl.String).fill_null(_NULL).alias("c"))
        .group_by("c")
        .len()
        .collect()
    )
    return dict(zip(counts["c"].to_list(), counts["len"].to_list(), strict=True))


def _cutoff(table: Table, name: str, options: SplitSection) -> tuple[Any, str]:
    """The time split's cutoff: the configured one, or the in-memory rule's on the column."""
    column = table.scan().select(name).collect().get_column(name)
    nulls = column.null_count()
    if nulls:
        raise DataError(
            f"the time column '{name}' has {nulls} missing value(s); such rows cannot be placed in time",
            where="split",
            fix="Make the time column non-nullable in the contract, or drop those rows.",
        )
    if options.cutoff is not None:
        return _parse_cutoff(options.cutoff, column.dtype, name), options.cutoff
    ordered = column.sort()
    cutoff = ordered[len(ordered) - _n_test(len(ordered), options.test_size)]
    return cutoff, str(cutoff)


def _with_samples(
    train_table: Table,
    test_table: Table,
    counts: dict[str, int],
    method: str,
    desc: str,
    *,
    key: list[str],
    seed: int,
    target: str | None,
    time: str | None,
    executor: Executor | None,
    sample_rows: Callable[[int], int],
) -> Split:
    """The Split of two tables, with the training sample and the bounded test sample."""
    n_train = train_table.num_rows
    n = min(n_train, sample_rows(n_train))
    if target is not None:
        want = _stratified_want(counts, n)
        how = "stratified "
    else:
        want, counts, how = {"": n}, {"": n_train}, ""
    train = _draw(
        train_table, want, counts, key=key, seed=seed + _SAMPLE_SALT, target=target,
        executor=executor,
    )  # fmt: skip
    if time is not None:
        train = train.sort(time, maintain_order=True)
    k = min(test_table.num_rows, TEST_SAMPLE_ROWS)
    test = _draw(
        test_table, {"": k}, {"": test_table.num_rows}, key=key, seed=seed + _TEST_SALT,
        target=None, executor=executor,
    )  # fmt: skip
    if train.height >= n_train:
        sample = f"model search on all {n_train:,} training rows"
    else:
        sample = f"model search on a {how}sample of {train.height:,} of {n_train:,} training rows"
    if test.height < test_table.num_rows:
        sample += f"; the gate compares models on a sample of {test.height:,} test rows"
    return Split(
        train, test, method, desc, train_table=train_table,
        test_table=test_table, sample=sample,
    )  # fmt: skip

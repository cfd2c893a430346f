"""Validation throughput: modelyard vs pandera (pandas and polars backends), same checks.

1,000,000 rows resampled with replacement (numpy default_rng(0)) from diamonds.csv, read
typed. modelyard validates against the contract inferred from diamonds plus declared checks;
pandera gets the same checks (types, ranges, category sets, nullability, an expression).

Run (pandera is not a modelyard dependency, so it comes in an ephemeral environment):

    uv run --with 'pandera[polars]' python bench/validate.py [--rows N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from modelyard.config.schema import Check, ColumnRoles, ContractSection, ValidationSection
from modelyard.data.contract import infer_contract
from modelyard.data.validation import validate

DATA = Path(os.environ.get("MODELYARD_DATA", Path(__file__).parents[1] / "../shared/data"))
CUTS = ["Fair", "Good", "Very Good", "Premium", "Ideal"]
COLORS = ["D", "E", "F", "G", "H", "I", "J"]
CLARITIES = ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"]


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    path = DATA / "diamonds.csv"
    if not path.exists():
        path = Path("/work/shared/data/diamonds.csv")
    ref = pl.read_csv(path)
    idx = np.random.default_rng(0).integers(0, ref.height, args.rows)
    df = ref[idx]
    contract = infer_contract(
        ref, target="price", task=None, roles=ColumnRoles(), options=ContractSection()
    )
    checks = [
        Check(name="x_positive", column="x", min=0.001),
        Check(name="y_positive", column="y", min=0.001),
        Check(name="z_positive", column="z", min=0.001),
        Check(name="carat_range", column="carat", min=0.1, max=6.0),
        Check(name="cut_levels", column="cut", values=CUTS),
        Check(name="color_levels", column="color", values=COLORS),
        Check(name="clarity_levels", column="clarity", values=CLARITIES),
        Check(name="price_range", column="price", min=300, max=20000),
        Check(name="depth_consistent", expression="depth BETWEEN 40 AND 80 AND table > 0"),
    ]
    options = ValidationSection(checks=checks, max_invalid_fraction=1.0)
    result = validate(df, contract, options)
    print(
        f"rows: {df.height:,}  columns: {df.width}  rules: {result.report.rules}  "
        f"invalid rows: {result.report.invalid_rows:,}  (cpus: {os.cpu_count()}, "
        f"polars {pl.__version__})"
    )
    results: dict[str, float] = {}
    results["modelyard"] = best(lambda: validate(df, contract, options), args.repeat)

    try:
        import pandera.pandas as pa
        import pandera.polars as pap
    except ImportError:
        print("pandera not installed: run with uv run --with 'pandera[polars]' ...")
    else:
        pdf = df.to_pandas()
        pd_schema = pandas_schema(pa, contract)
        invalid_pd = pd_lazy_failures(pd_schema, pdf)
        results["pandera-pandas"] = best(lambda: pd_lazy_failures(pd_schema, pdf), args.repeat)
        pl_schema = polars_schema(pap, contract)
        invalid_pl = pl_lazy_failures(pap, pl_schema, df)
        results["pandera-polars"] = best(lambda: pl_lazy_failures(pap, pl_schema, df), args.repeat)
        print(f"pandera failure cases: pandas {invalid_pd:,}, polars {invalid_pl:,}")

    base = results["modelyard"]
    for name, secs in results.items():
        rate = df.height / secs / 1e6
        print(
            f"{name:>15}: {secs * 1000:8.1f} ms  {rate:7.2f} M rows/s  "
            f"(modelyard is {secs / base:4.1f}x faster)"
            if name != "modelyard"
            else f"{name:>15}: {secs * 1000:8.1f} ms  {rate:7.2f} M rows/s"
        )


def _column_checks(check_mod: Any, contract: Any, name: str) -> list[Any]:
    col = contract.column(name)
    checks = []
    if col.min is not None:
        checks.append(check_mod.ge(col.min))
    if col.max is not None:
        checks.append(check_mod.le(col.max))
    if col.categories is not None:
        checks.append(check_mod.isin(col.categories))
    extra = {
        "x": [check_mod.ge(0.001)],
        "y": [check_mod.ge(0.001)],
        "z": [check_mod.ge(0.001)],
        "carat": [check_mod.in_range(0.1, 6.0)],
        "cut": [check_mod.isin(CUTS)],
        "color": [check_mod.isin(COLORS)],
        "clarity": [check_mod.isin(CLARITIES)],
        "price": [check_mod.in_range(300, 20000)],
    }
    return checks + extra.get(name, [])


def pandas_schema(pa: Any, contract: Any) -> Any:
    types = {"int": "int64", "float": "float64", "str": "object"}
    columns = {
        c.name: pa.Column(
            types[c.type],
            checks=_column_checks(pa.Check, contract, c.name),
            nullable=c.nullable,
            unique=c.unique,
        )
        for c in contract.columns
    }
    row = pa.Check(lambda d: d["depth"].between(40, 80) & (d["table"] > 0))
    return pa.DataFrameSchema(columns, checks=[row], strict=True)


def pd_lazy_failures(schema: Any, pdf: Any) -> int:
    import pandera.errors as pe

    try:
        schema.validate(pdf, lazy=True)
    except pe.SchemaErrors as exc:
        return len(exc.failure_cases)
    return 0


def polars_schema(pap: Any, contract: Any) -> Any:
    types = {"int": pl.Int64, "float": pl.Float64, "str": pl.String}
    columns = {
        c.name: pap.Column(
            types[c.type],
            checks=_column_checks(pap.Check, contract, c.name),
            nullable=c.nullable,
            unique=c.unique,
        )
        for c in contract.columns
    }
    row = pap.Check(
        lambda data: data.lazyframe.select(
            pl.col("depth").is_between(40, 80) & (pl.col("table") > 0)
        )
    )
    return pap.DataFrameSchema(columns, checks=[row], strict=True)


def pl_lazy_failures(pap: Any, schema: Any, df: pl.DataFrame) -> int:
    import pandera.errors as pe

    try:
        schema.validate(df, lazy=True)
    except pe.SchemaErrors as exc:
        return len(exc.failure_cases)
    return 0


if __name__ == "__main__":
    main()

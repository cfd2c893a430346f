"""Profiling speed: modelyard profile + HTML vs ydata-profiling (default and minimal).

Datasets: diamonds (53,940 x 10) and kddcup99 10% (494,021 x 42). Each tool gets the frame
already in memory (polars for modelyard and ``describe``, pandas for ydata); the time counts
the profile and the HTML rendering (``ProfileReport(df).to_html()`` for ydata). polars'
``describe()`` is the floor. The best of ``--repeat`` runs is printed (ydata runs once).

ydata-profiling is not a modelyard dependency; it comes in an ephemeral environment:

    uv run --with ydata-profiling --with 'setuptools<81' python bench/profile.py [--skip-ydata-kdd]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from modelyard.config.schema import ProfileSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.data.profile import profile, type_of
from modelyard.reports.profile import profile_json, render_profile_html

DATA = Path(os.environ.get("MODELYARD_DATA", Path(__file__).parents[1] / "../shared/data"))


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def load(name: str) -> tuple[pl.DataFrame, str, Any]:
    if name == "diamonds":
        return pl.read_csv(DATA / "diamonds.csv"), "price", "regression"
    lines = (DATA / "kddcup99" / "kddcup.names").read_text().splitlines()[1:]
    names = [line.split(":")[0] for line in lines if ":" in line] + ["label"]
    df = pl.read_csv(
        DATA / "kddcup99" / "kddcup.data_10_percent.gz", has_header=False, new_columns=names
    )
    return df, "label", "multiclass"


def contract_of(df: pl.DataFrame, target: str, task: Any) -> DataContract:
    return DataContract(
        target=target,
        task=task,
        columns=[
            ColumnContract(name=n, type=type_of(t), role="target" if n == target else "feature")
            for n, t in df.schema.items()
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-ydata", action="store_true", help="no ydata-profiling at all")
    parser.add_argument("--skip-ydata-kdd", action="store_true", help="no ydata on kddcup99")
    args = parser.parse_args()

    try:
        from ydata_profiling import ProfileReport  # type: ignore[import-not-found]
    except ImportError:
        ProfileReport = None
        if not args.skip_ydata:
            print("ydata-profiling is not installed: run with --with ydata-profiling")

    rows: list[tuple[str, str, float]] = []
    options = ProfileSection()
    for name in ("diamonds", "kddcup99"):
        df, target, task = load(name)
        contract = contract_of(df, target, task)

        def ours(df: pl.DataFrame = df, contract: DataContract = contract) -> None:
            prof = profile(df, contract, options)
            render_profile_html(prof)
            profile_json(prof)

        def stage_only(df: pl.DataFrame = df, contract: DataContract = contract) -> None:
            profile(df, contract, options)

        ours()  # warm-up (thread pools, imports)
        rows.append((name, "polars describe()", best(df.describe, args.repeat)))
        rows.append((name, "modelyard profile", best(stage_only, args.repeat)))
        rows.append((name, "modelyard profile + HTML", best(ours, args.repeat)))
        skip = args.skip_ydata or (name == "kddcup99" and args.skip_ydata_kdd)
        if ProfileReport is not None and not skip:
            pdf = df.to_pandas()
            for mode, kwargs in (("default", {}), ("minimal", {"minimal": True})):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t = time.perf_counter()
                    ProfileReport(pdf, progress_bar=False, **kwargs).to_html()
                    rows.append((name, f"ydata-profiling {mode}", time.perf_counter() - t))
        print(f"{name}: {df.height:,} rows x {df.width} columns done", flush=True)

    print()
    print(
        f"{'dataset':<10} {'tool':<26} {'seconds':>9} {'vs ydata default':>17} "
        f"{'x polars describe':>18}"
    )
    for name, tool, sec in rows:
        floor = next(s for n, t, s in rows if n == name and t == "polars describe()")
        ydata = next((s for n, t, s in rows if n == name and t == "ydata-profiling default"), None)
        speedup = f"{ydata / sec:,.1f}x faster" if ydata else "n/a"
        print(f"{name:<10} {tool:<26} {sec:>9.3f} {speedup:>17} {sec / floor:>17.1f}x")


if __name__ == "__main__":
    main()

"""Profile a synthetic table part by part: wall time and peak memory (run under
``/usr/bin/time -v``; "Maximum resident set size" is the peak RSS).

    python bench/profile_memory.py make FOLDER [ROWS] [BATCH]   # a seeded 20-column table
    python bench/profile_memory.py parts FOLDER [serial|local]  # the profile, part by part
    python bench/profile_memory.py whole FOLDER                 # the same, on one DataFrame

``whole`` collects the table and profiles it as one part: with ``PYTHONPATH`` pointing at an
older checkout's ``src`` it measures the in-memory profile this one replaced.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import polars as pl


def make(folder: Path, rows: int, batch: int) -> None:
    from modelyard.data.table import write_table

    def part(start: int, n: int) -> pl.DataFrame:
        rng = np.random.default_rng(start)
        cols: dict[str, object] = {}
        for j in range(8):
            x = rng.lognormal(size=n) if j % 2 else rng.normal(size=n) * (j + 1)
            x[rng.random(n) < 0.01] = np.nan
            cols[f"f{j}"] = x
        for j in range(4):
            cols[f"i{j}"] = rng.integers(0, 10 ** (j + 1), n)
        levels = [5, 50, 1_000, 20_000]
        for j, k in enumerate(levels):
            cols[f"c{j}"] = pl.Series(rng.integers(0, k, n)).cast(pl.String)
        cols["key"] = pl.Series(np.arange(start, start + n)).cast(pl.String)
        cols["when"] = pl.Series(
            rng.integers(1_500_000_000, 1_700_000_000, n) * 1_000_000, dtype=pl.Datetime("us")
        )
        cols["flag"] = rng.random(n) < 0.3
        cols["label"] = pl.Series(rng.integers(0, 3, n)).cast(pl.String)
        return pl.DataFrame(cols)

    start = time.perf_counter()
    table = write_table((part(i, min(batch, rows - i)) for i in range(0, rows, batch)), folder)
    print(f"wrote {table} in {time.perf_counter() - start:.1f}s")


def contract_of(schema: pl.Schema):  # type: ignore[no-untyped-def]
    from modelyard.data.contract import ColumnContract, DataContract
    from modelyard.data.profile import type_of

    cols = [
        ColumnContract(
            name=n,
            type=type_of(d),
            role="target" if n == "label" else "id" if n == "key" else "feature",
        )
        for n, d in schema.items()
    ]
    return DataContract(target="label", task="multiclass", columns=cols)


def main() -> None:
    what, folder = sys.argv[1], Path(sys.argv[2])
    if what == "make":
        rows = int(sys.argv[3]) if len(sys.argv) > 3 else 3_000_000
        batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000_000
        make(folder, rows, batch)
        return
    from modelyard.config.schema import ProfileSection
    from modelyard.data.profile import profile
    from modelyard.data.table import Table

    parts = sorted(folder.glob("part-*.parquet"))
    rows = sum(pl.scan_parquet(p).select(pl.len()).collect().item() for p in parts)
    table = Table(folder, rows)
    contract = contract_of(table.schema)
    start = time.perf_counter()
    if what == "whole":
        df = table.collect()
        loaded = time.perf_counter()
        prof = profile(df, contract, ProfileSection())
        print(f"read {loaded - start:.1f}s, profile {time.perf_counter() - loaded:.1f}s")
    else:
        from modelyard.compute import open_executor

        kind = sys.argv[3] if len(sys.argv) > 3 else "serial"
        with open_executor(kind, workers=2) as ex:  # type: ignore[arg-type]
            prof = profile(table, contract, ProfileSection(), executor=ex)
        print(f"profile ({kind}) {time.perf_counter() - start:.1f}s")
    estimated = {c.name: sorted(getattr(c, "estimated", {})) for c in prof.columns}
    estimated = {k: v for k, v in estimated.items() if v}
    print(
        f"{prof.dataset.rows:,} rows, {prof.dataset.duplicate_rows} duplicates; estimated: {estimated}"
    )
    key = prof.column("key")
    print(f"key distinct {key.distinct:,}; f1 p50 {prof.column('f1').numeric.quantiles.p50}")  # type: ignore[union-attr]


if __name__ == "__main__":
    main()

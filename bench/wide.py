"""Wide tables: contract inference and validation of 300 rows x 10,000 columns.

The table is real data made wide: 300 rows resampled with replacement (numpy default_rng(0))
from the first 20,000 rows of kddcup99 10%, its 41 features repeated (each copy resampled with
its own seed) until there are 10,000 columns, plus the `label` target. It is written as CSV
and read back as a source reads it (every column as text), so inference has to parse every
column, as it does for a user's CSV file.

Timed, once each (seconds): read, infer_contract, contract_to_yaml + contract_from_yaml (the
contract file the user edits), validate, profile; then, unless --skip-cli, the whole
`modelyard run --until validate` of a fresh project on the same file (no contract yet), as a
user runs it.

    uv run python bench/wide.py [--columns 10000] [--rows 300] [--skip-cli] [--skip-profile]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from modelyard.config.schema import (
    ColumnRoles,
    ContractSection,
    ProfileSection,
    Source,
    ValidationSection,
)
from modelyard.data.contract import contract_from_yaml, contract_to_yaml, infer_contract
from modelyard.data.profile import profile
from modelyard.data.sources import read_source
from modelyard.data.validation import validate

DATA = Path(os.environ.get("MODELYARD_DATA", Path(__file__).parents[1] / "../shared/data"))


def wide_frame(rows: int, columns: int) -> pl.DataFrame:
    kdd = DATA / "kddcup99"
    names = [
        line.split(":")[0]
        for line in (kdd / "kddcup.names").read_text().splitlines()[1:]
        if ":" in line
    ]
    ref = pl.read_csv(
        kdd / "kddcup.data_10_percent.gz", has_header=False, new_columns=[*names, "label"],
        n_rows=20_000, infer_schema=False,
    )  # fmt: skip
    parts: list[pl.DataFrame] = []
    copy, width = 0, 0
    while width < columns:
        idx = np.random.default_rng(copy).integers(0, ref.height, rows)
        take = min(len(names), columns - width)
        part = ref[idx].select(names[:take])
        parts.append(part.rename({n: f"{n}_{copy}" for n in part.columns}))
        width += take
        copy += 1
    label = ref[np.random.default_rng(0).integers(0, ref.height, rows)].select("label")
    return pl.concat([*parts, label], how="horizontal")


def timed(what: str, fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = fn()
    print(f"{what:>34}: {time.perf_counter() - started:8.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--columns", type=int, default=10_000)
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wide_frame(args.rows, args.columns).write_csv(folder / "wide.csv")
        print(f"{args.rows} rows x {args.columns + 1} columns (cpus: {os.cpu_count()})")
        df = timed(
            "read (every column as text)", lambda: read_source(Source(path=folder / "wide.csv"))
        )
        contract = timed(
            "infer_contract",
            lambda: infer_contract(
                df, target="label", task=None, roles=ColumnRoles(), options=ContractSection()
            ),
        )
        text = timed("contract_to_yaml", lambda: contract_to_yaml(contract))
        timed("contract_from_yaml", lambda: contract_from_yaml(text, source="contract.yaml"))
        options = ValidationSection(max_invalid_fraction=1.0)
        result = timed("validate", lambda: validate(df, contract, options))
        if not args.skip_profile:
            timed("profile", lambda: profile(result.valid, contract, ProfileSection()))
        if args.skip_cli:
            return
        (folder / "modelyard.yaml").write_text(
            "version: 1\nname: wide\ndata:\n  source: {path: wide.csv}\n  target: label\n"
            "validation: {max_invalid_fraction: 1.0}\n"
        )
        exe = str(Path(sys.executable).with_name("modelyard"))
        done = timed(
            "modelyard run --until validate",
            lambda: subprocess.run(
                [exe, "run", "--until", "validate"], cwd=folder, capture_output=True, text=True
            ),
        )
        if done.returncode:
            print(done.stderr[-2000:])


if __name__ == "__main__":
    main()

"""Drift detection: modelyard's effect-size drift vs Evidently's DataDriftPreset, same frames.

Run (outside CI, about a minute): ``uv run --with evidently python bench/drift.py``
(without evidently installed only modelyard runs).

Data: the first 20 non-constant columns of ../shared/data/kddcup99 (10% file), 1,000,000 rows
drawn with replacement with ``numpy.random.default_rng(0)``; reference = the first 500k rows,
current = the last 500k. Cases:

(a) no change;
(b) with the same generator: ``duration`` + 100 on every current row, 20% of current rows'
    ``protocol_type`` set to ``udp``, 30% of the current rows with ``logged_in`` = 0 set to 1.

Plus adult.data vs adult.test (the same population) with the test labels normalised.

Each tool runs in a child interpreter that builds the frames, resets its peak-RSS counter,
then runs; "peak MB" is the peak resident memory of the run minus the resident memory before it
(the frames themselves and the imports done so far are not counted).
Prints time, peak memory and the flagged columns of both tools.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROWS = 1_000_000
HALF = ROWS // 2


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(tool: str, case: str) -> tuple[float, float, list[str]]:
    """Run one tool on one case in a fresh interpreter (polars' threads do not survive fork)."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", tool, case],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    seconds, peak, flagged = json.loads(done.stdout.strip().splitlines()[-1])
    return float(seconds), float(peak), list(flagged)


def child(tool: str, case: str) -> None:
    ref, cur = frames(case)
    fn = modelyard_flags(ref, cur) if tool == "modelyard" else evidently_flags(ref, cur)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
    base = _rss_kb("VmRSS")
    started = time.perf_counter()
    flagged = fn()
    seconds = time.perf_counter() - started
    print(json.dumps([seconds, (_rss_kb("VmHWM") - base) / 1024, flagged]))


def frames(case: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    if case == "adult":
        return adult_frames()
    ref, cur, shifted = kdd_frames()
    return (ref, cur) if case == "a" else (ref, shifted)


def kdd_frames() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    names_file = DATA / "kddcup99" / "kddcup.names"
    names = [line.split(":")[0] for line in names_file.read_text().splitlines()[1:] if ":" in line]
    with gzip.open(DATA / "kddcup99" / "kddcup.data_10_percent.gz", "rb") as fh:
        kdd = pl.read_csv(fh.read(), has_header=False, new_columns=[*names, "label"])
    features = [c for c in names if kdd.get_column(c).n_unique() > 1][:20]
    kdd = kdd.select(features)
    rng = np.random.default_rng(0)
    sample = kdd[rng.integers(0, kdd.height, ROWS)]
    ref, cur = sample[:HALF], sample[HALF:]
    udp = rng.random(HALF) < 0.2
    flip = (cur.get_column("logged_in").to_numpy() == 0) & (rng.random(HALF) < 0.3)
    shifted = cur.with_columns(
        pl.col("duration") + 100,
        pl.when(pl.Series(udp)).then(pl.lit("udp")).otherwise(pl.col("protocol_type"))
        .alias("protocol_type"),
        pl.when(pl.Series(flip)).then(1).otherwise(pl.col("logged_in")).alias("logged_in"),
    )  # fmt: skip
    return ref, cur, shifted


def adult_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    cols = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
            "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
            "hours-per-week", "native-country", "income"]  # fmt: skip
    numbers = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
    read = {"has_header": False, "new_columns": cols, "infer_schema": False}

    def clean(df: pl.DataFrame) -> pl.DataFrame:
        df = df.with_columns(pl.all().str.strip_chars().replace("?", None))
        return df.with_columns(pl.col(numbers).cast(pl.Int64)).filter(pl.col("age").is_not_null())

    train = clean(pl.read_csv(DATA / "adult" / "adult.data", **read))  # type: ignore[arg-type]
    test = clean(pl.read_csv(DATA / "adult" / "adult.test", skip_rows=1, **read))  # type: ignore[arg-type]
    test = test.with_columns(pl.col("income").str.strip_suffix("."))
    return train, test


def modelyard_flags(ref: pl.DataFrame, cur: pl.DataFrame) -> Callable[[], list[str]]:
    def run() -> list[str]:
        from modelyard.ops.monitoring.drift import drift

        return drift(ref, cur).drifted_features

    return run


def evidently_flags(ref: pl.DataFrame, cur: pl.DataFrame) -> Callable[[], list[str]]:
    ref_pd, cur_pd = ref.to_pandas(), cur.to_pandas()

    def run() -> list[str]:
        from evidently import Report
        from evidently.presets import DataDriftPreset

        snapshot = Report([DataDriftPreset()]).run(current_data=cur_pd, reference_data=ref_pd)
        flagged = []
        for metric in snapshot.dict()["metrics"]:
            config = metric.get("config", {})
            if not str(config.get("type", "")).endswith(":ValueDrift"):
                continue
            value, threshold = float(metric["value"]), float(config["threshold"])
            is_test = "p_value" in str(config.get("method", "")).lower()
            if (value < threshold) if is_test else (value >= threshold):
                flagged.append(config["column"])
        return flagged

    return run


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    try:
        import evidently

        peer = f"evidently {evidently.__version__}"
    except ImportError:
        peer = None
    print(f"python {sys.version.split()[0]}, polars {pl.__version__}, numpy {np.__version__}")
    t0 = time.perf_counter()
    ref, _, _ = kdd_frames()
    print(
        f"kddcup99: {ref.width} columns {ref.columns}\n"
        f"  reference {HALF:,} rows, current {HALF:,} rows "
        f"(prepared in {time.perf_counter() - t0:.1f} s)"
    )
    del ref
    cases = [
        ("(a) kdd no change", "a", []),
        ("(b) kdd shifted", "b", ["duration", "protocol_type", "logged_in"]),
        ("adult.data vs adult.test", "adult", []),
    ]
    print(f"\n{'case':<26} {'tool':<18} {'seconds':>8} {'peak MB':>8}  flagged columns")
    for name, case, expected in cases:
        tools = ["modelyard"] + (["evidently"] if peer else [])
        times = {}
        for tool in tools:
            seconds, peak, flagged = measure(tool, case)
            times[tool] = seconds
            ok = "ok" if sorted(flagged) == sorted(expected) else f"EXPECTED {expected}"
            label = peer if tool == "evidently" else tool
            print(
                f"{name:<26} {label:<18} {seconds:8.2f} {peak:8.0f}  {flagged} [{ok}]", flush=True
            )
        if peer:
            print(f"{'':<26} speed-up x{times['evidently'] / times['modelyard']:.1f}", flush=True)


if __name__ == "__main__":
    main()

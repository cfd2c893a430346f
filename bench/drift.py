"""Drift detection: modelyard's drift verdicts vs Evidently's DataDriftPreset, same frames.

Run (outside CI, about two minutes): ``uv run --with evidently python bench/drift.py``
(without evidently installed only modelyard runs; ``--eras`` runs part 1 only, ``--kdd`` part 2).

Part 1, real eras: per-column agreement on natural splits of shared/data, each tool on the
same polars/pandas frames (types as polars infers them):

- bike_sharing/hour.csv and day.csv, ``dteday`` < 2012-01-01 (2011 vs 2012; day.csv has 365
  rows a side, where Evidently switches from distances to p-value tests);
- taxis.csv, ``pickup`` before / from 2019-03-16 (two halves of March);
- wine_quality red vs white (a natural population split, not a time split).

For every column: modelyard's verdict now (effect size above its threshold and test p-value
below 0.01), its verdict under the former rule (Wasserstein/std > 0.1, effect sizes alone),
Evidently's verdict with its method and value, and the noise floor of the deciding effect size:
the 95th percentile of that effect size over 100 random splits of the pooled rows into the two
sizes (for the time splits, of whole days reassigned within each month: the hours of one day
are not independent, and a year split keeps its seasons balanced). The target
(cnt, cnt, tip, quality) is label drift for modelyard, a column like the others for Evidently.

Part 2, scale:

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------------- part 1: eras


@dataclass
class Era:
    name: str
    ref: pl.DataFrame
    cur: pl.DataFrame
    target: str
    block: pl.Expr | None = None
    """Rows of one value of this expression (a day) move together in the noise-floor splits."""
    strata: pl.Expr | None = None
    """Blocks are reassigned within each value of this expression (a month), so that both sides
    keep the split's own balance of seasons."""


def eras() -> list[Era]:
    out = []
    for name in ("hour", "day"):
        df = pl.read_csv(DATA / "bike_sharing" / f"{name}.csv", try_parse_dates=True)
        cut = pl.col("dteday") < pl.date(2012, 1, 1)
        out.append(
            Era(f"bike_sharing/{name}.csv 2011 | 2012", df.filter(cut), df.filter(~cut), "cnt",
                block=pl.col("dteday"), strata=pl.col("mnth"))
        )  # fmt: skip
    taxis = pl.read_csv(DATA / "taxis.csv", try_parse_dates=True)
    cut = pl.col("pickup") < pl.datetime(2019, 3, 16)
    out.append(
        Era("taxis.csv March 1-15 | 16-31", taxis.filter(cut), taxis.filter(~cut), "tip",
            block=pl.col("pickup").dt.date())
    )  # fmt: skip
    red = pl.read_csv(
        DATA / "wine_quality" / "winequality-red.csv", separator=";", infer_schema_length=None
    )
    white = pl.read_csv(
        DATA / "wine_quality" / "winequality-white.csv", separator=";", schema=red.schema
    )
    out.append(Era("wine_quality red | white", red, white, "quality"))
    return out


def evidently_columns(ref: pl.DataFrame, cur: pl.DataFrame) -> dict[str, tuple[str, float, bool]]:
    """Column -> (method, value, drifted) of Evidently's DataDriftPreset."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(
        current_data=cur.to_pandas(), reference_data=ref.to_pandas()
    )
    out = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith(":ValueDrift"):
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        method = str(config.get("method", ""))
        is_test = "p_value" in method.lower()
        drifted = (value < threshold) if is_test else (value >= threshold)
        short = {"Wasserstein distance (normed)": "W", "Jensen-Shannon distance": "JS(e)",
                 "K-S p_value": "KS p", "chi-square p_value": "chi2 p", "Z-test p_value": "z p",
                 "Percentile text content drift": "text"}.get(method, method)  # fmt: skip
        out[str(config["column"])] = (short, value, drifted)
    return out


def _deciding(f: Any) -> tuple[str, float | None]:
    """The effect size a verdict rests on: W for numbers, JS for categories."""
    return ("W", f.wasserstein) if f.kind == "numeric" else ("JS", f.jensen_shannon)


def noise_floor(era: Era, column: str, kind: str, splits: int = 100) -> float | None:
    """95th percentile of the deciding effect size over random splits of the pooled rows into
    the two sizes: of whole blocks (days) when the era has them, reassigned within each stratum
    (month) when it has strata."""
    from modelyard.ops.monitoring.drift import column_drift

    def keyed(df: pl.DataFrame, side: bool) -> pl.DataFrame:
        return df.select(
            pl.col(column),
            (era.block if era.block is not None else pl.int_range(pl.len())).alias("_block"),
            (era.strata if era.strata is not None else pl.lit(0)).alias("_stratum"),
            pl.lit(side).alias("_ref"),
        )

    pooled = pl.concat([keyed(era.ref, True), keyed(era.cur, False)], how="vertical_relaxed")
    if era.block is None:  # rows are the blocks: number them across both sides
        pooled = pooled.with_columns(pl.int_range(pl.len()).alias("_block"))
    blocks = (
        pooled.group_by("_block")
        .agg(pl.col("_stratum").first(), pl.col("_ref").first())
        .sort("_block")
    )
    strata = blocks.partition_by("_stratum", maintain_order=True)
    rng = np.random.default_rng(0)
    values = []
    for _ in range(splits):
        chosen: list[Any] = []
        for st in strata:
            ids = st.get_column("_block").to_numpy()
            k = int(st.get_column("_ref").sum())
            chosen.extend(rng.permutation(ids)[:k].tolist())
        left = pooled.get_column("_block").is_in(pl.Series(chosen).implode())
        f = column_drift(
            pooled.filter(left).get_column(column),
            pooled.filter(~left).get_column(column),
            kind="categorical" if kind == "categorical" else None,
        )
        values.append(_deciding(f)[1])
    finite = [v for v in values if v is not None]
    return float(np.quantile(finite, 0.95)) if finite else None


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2g}" if abs(v) < 0.01 and v != 0 else f"{v:.3g}"


def compare_eras(peer: str | None) -> None:
    from modelyard.config.schema import DriftThresholds
    from modelyard.ops.monitoring.drift import drift

    old = DriftThresholds(wasserstein=0.1, p_value=1.0)
    totals = [0, 0]
    for era in eras():
        now = drift(era.ref, era.cur, target=era.target)
        before = drift(era.ref, era.cur, target=era.target, thresholds=old)
        ev = evidently_columns(era.ref, era.cur) if peer else {}
        print(
            f"\n== {era.name}: {era.ref.height:,} | {era.cur.height:,} rows, target "
            f"{era.target}\n{'column':<22} {'modelyard now':<34} {'old rule':<8} "
            f"{'evidently':<24} {'agree':<6} noise p95"
        )
        agree = n = 0
        rows = [(f, False) for f in now.features]
        rows += [(now.target, True)] if now.target is not None else []
        for f, is_target in rows:
            old_f = before.target if is_target else before.feature(f.column)
            assert old_f is not None
            name, value = _deciding(f)
            p = "-" if f.p_value is None else _num(f.p_value)
            mine = (
                f"{'drift' if f.drifted else f.status:<5} {name} {_num(value)} PSI {_num(f.psi)}"
                f" p {p}"
            )
            e = ev.get(f.column)
            theirs = (
                f"{'drift' if e[2] else 'ok':<5} {e[0]} {_num(e[1])}" if e else "(not compared)"
            )
            same = "" if e is None else ("yes" if bool(e[2]) == bool(f.drifted) else "NO")
            if e is not None:
                n += 1
                agree += same == "yes"
            floor = noise_floor(era, f.column, f.kind)
            label = f.column + (" (target)" if is_target else "")
            print(
                f"{label:<22} {mine:<34} {'drift' if old_f.drifted else 'ok':<8} "
                f"{theirs:<24} {same:<6} {name} {_num(floor)}",
                flush=True,
            )
        totals[0] += agree
        totals[1] += n
        if peer:
            print(f"agreement: {agree} of {n} columns compared by both")
    if peer:
        print(f"\nall eras: modelyard and {peer} agree on {totals[0]} of {totals[1]} columns")


# --------------------------------------------------------------------------- part 2: kdd


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
    if "--kdd" not in sys.argv:
        print("\n# Part 1: real eras, per-column verdicts")
        compare_eras(peer)
    if "--eras" in sys.argv:
        return
    print("\n# Part 2: 1M kddcup99 rows and adult")
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

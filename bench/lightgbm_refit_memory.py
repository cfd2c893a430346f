"""Peak memory of the out-of-core LightGBM refit (``fit_lightgbm_sequence``), per stage, on
the training table of a project that has run ``train`` (its ``split`` and ``train``
artifacts: the Parquet parts, the fitted preprocessor and the LightGBM members' parameters).

    python bench/lightgbm_refit_memory.py PROJECT [--rows N ...] [--rounds R] [--threads T]
        [--fits K]

For each N it runs, in a fresh child process, the refit of the first LightGBM member on the
first parts holding about N rows, with R rounds, and prints the peak RSS (``VmHWM``, reset
between stages through ``/proc/self/clear_refs``) of each stage, in MB and in bytes per row
above the process's RSS before the fit: reading the targets, building the binned
``Dataset``, the first R rounds. Run it niced: ``nice -n 10 uv run python ...``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def status(field: str) -> int:
    """``field`` of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def inputs(project: Path) -> tuple[list[str], list[int], Any, Any, dict[str, Any]]:
    """The training table's parts and their rows, the problem, the fitted preprocessor and
    the first LightGBM member's refit parameters."""
    import pyarrow.parquet as pq

    from modelyard.config.schema import ModelsSection
    from modelyard.engine.store import ArtifactStore, AutoCodec
    from modelyard.modeling.stages import Problem

    root = project / ".modelyard"
    store = ArtifactStore(root)

    def load(step: str) -> Any:
        folder = root / "artifacts" / step
        keys = sorted(
            (p for p in folder.iterdir() if (p / "meta.json").is_file()),
            key=lambda p: p.stat().st_mtime,
        )
        return store.load(step, keys[-1].name, AutoCodec())

    split = load("split")
    contract = load("modeling_contract").contract
    trained = load("train")
    preprocessor = trained.model.named_steps["features"]
    members = dict(trained.model.named_steps["model"].members)
    name = next(n for n, m in members.items() if hasattr(m, "booster_"))
    member = next(m for m in trained.choice.members if m.name == name)
    params = dict(member.params)
    parts = [str(p) for p in split.train_table.parts()]
    rows = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    problem = Problem.of(contract, ModelsSection())
    return parts, rows, problem, preprocessor, params


def measure(project: Path, want: int, rounds: int, threads: int, fits: int = 1) -> dict[str, Any]:
    import lightgbm as lgb

    from modelyard.modeling import outofcore

    parts, rows, problem, preprocessor, params = inputs(project)
    chosen: list[str] = []
    total = 0
    for p, n in zip(parts, rows, strict=True):
        if total >= want:
            break
        chosen.append(p)
        total += n
    params["n_estimators"] = rounds
    classes = ["0", "1"] if problem.task == "binary" else None
    base = status("VmRSS")
    reset_peak()
    stages: dict[str, tuple[int, int]] = {}
    prefix = ""
    targets = outofcore._targets

    def timed_targets(*a: Any, **k: Any) -> Any:
        out = targets(*a, **k)
        stages[prefix + "targets"] = (status("VmHWM"), status("VmRSS"))
        reset_peak()
        return out

    train = lgb.train

    def staged_train(native: dict[str, Any], dataset: Any, **k: Any) -> Any:
        dataset.construct()  # (done already by the fit itself, and the parts released)
        stages[prefix + "dataset"] = (status("VmHWM"), status("VmRSS"))
        reset_peak()
        booster = train(native, dataset, **k)
        stages[prefix + f"{rounds} rounds"] = (status("VmHWM"), status("VmRSS"))
        return booster

    sample = lgb.Dataset._init_from_sample

    def staged_sample(self: Any, *a: Any, **k: Any) -> Any:
        out = sample(self, *a, **k)
        stages[prefix + "sample"] = (status("VmHWM"), status("VmRSS"))
        reset_peak()
        return out

    lgb.Dataset._init_from_sample = staged_sample  # type: ignore[method-assign]
    outofcore._targets = timed_targets  # type: ignore[assignment]
    lgb.train = staged_train  # type: ignore[assignment]
    for number in range(fits):  # several LightGBM members are refitted one after the other
        prefix = f"fit {number + 1}: " if fits > 1 else ""
        reset_peak()
        fit = outofcore.fit_lightgbm_sequence(
            chosen, problem, preprocessor, params, classes, None, 0, threads
        )
        del fit.estimator.booster_
    return {
        "rows": fit.rows,
        "parts": len(chosen),
        "features": fit.estimator.n_features_in_,
        "base_mb": base / 1e6,
        "stages": {
            k: {
                "peak_mb": round(hwm / 1e6),
                "rss_after_mb": round(rss / 1e6),
                "peak_bytes_per_row": round((hwm - base) / fit.rows, 1),
                "rss_after_bytes_per_row": round((rss - base) / fit.rows, 1),
            }
            for k, (hwm, rss) in stages.items()
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("project", type=Path)
    ap.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 4_000_000, 8_000_000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fits", type=int, default=1, help="refits one after the other")
    ap.add_argument("--one", action="store_true", help="measure in this process (one N)")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.project, args.rows[0], args.rounds, args.threads, args.fits)))
        return
    for want in args.rows:  # each N in a fresh process: its peak is its own
        out = subprocess.run(
            [sys.executable, __file__, str(args.project), "--rows", str(want), "--one",
             "--rounds", str(args.rounds), "--threads", str(args.threads),
             "--fits", str(args.fits)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        print(json.dumps({"want": want, **json.loads(out.stdout.splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()

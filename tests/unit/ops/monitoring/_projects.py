"""Tiny real projects for the monitoring tests: bike sharing (2011 only) and penguins."""

from __future__ import annotations

from pathlib import Path

import polars as pl

TINY = """
models: {candidates: [dummy, linear], ensemble: false, cv_sample: 2000}
tuning: {top_k: 0}
evaluation: {permutation_importance: false, threshold: default}
"""


def bike_project(root: Path, data: Path) -> tuple[Path, pl.DataFrame]:
    """A project trained on 2011 (written to root/train-2011.csv); returns (yaml, 2012 rows)."""
    hour = pl.read_csv(data / "bike_sharing" / "hour.csv", infer_schema=False)
    y2011 = hour.filter(pl.col("dteday").str.starts_with("2011"))
    y2012 = hour.filter(pl.col("dteday").str.starts_with("2012"))
    y2011.write_csv(root / "train-2011.csv")
    yaml = root / "modelyard.yaml"
    yaml.write_text(
        "version: 1\nname: bike\nseed: 0\n"
        "data:\n  source: {path: train-2011.csv, read: {parse_dates: [dteday]}}\n"
        "  target: cnt\n  task: regression\n"
        "  columns: {id: [instant], leakage: [casual, registered], time: dteday}\n"
        "split: {method: time, cutoff: '2011-11-01'}\n"
        "monitoring:\n  windows: {by: event_time, size: 1mo}\n  min_rows: 100\n" + TINY
    )
    return yaml, y2012


def penguins_project(root: Path, data: Path, *, models: str = "[dummy, linear]") -> Path:
    """The penguins project; ``models: "[dummy]"`` makes the baseline itself the model, which
    the gate then lets through (a deliberately weak first champion)."""
    yaml = root / "modelyard.yaml"
    gate = "gate: {beat_baseline: false}\n" if models == "[dummy]" else ""
    yaml.write_text(
        "version: 1\nname: penguins\nseed: 0\n"
        f"data:\n  source: {{path: {data / 'penguins.csv'}}}\n  target: species\n"
        "monitoring:\n  windows: {by: rows, size: '200'}\n  min_rows: 100\n"
        "  retrain: {min_labelled_rows: 20}\n" + gate + TINY.replace("[dummy, linear]", models)
    )
    return yaml

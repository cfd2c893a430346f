"""A small monitoring report built from a synthetic log (no model needed)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from modelyard.config.schema import MonitoringSection
from modelyard.data.contract import ColumnContract, DataContract
from modelyard.ops.monitoring.monitor import MonitorReport, monitor

CONTRACT = DataContract(
    target="y",
    task="binary",
    columns=[
        ColumnContract(name="t", type="datetime", role="time"),
        ColumnContract(name="x", type="float"),
        ColumnContract(name="c", type="str"),
        ColumnContract(name="y", type="str", role="target"),
    ],
)


def synthetic(*, shift_second_day: float = 3.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(reference, log rows): day 1 like the reference, day 2 with ``x`` shifted."""
    rng = np.random.default_rng(0)
    n = 400
    ref = pl.DataFrame(
        {"x": rng.normal(0, 1, n), "c": rng.choice(["a", "b"], n), "y": rng.choice(["0", "1"], n)}
    )
    x = np.concatenate([rng.normal(0, 1, n), rng.normal(shift_second_day, 1, n)])
    start = dt.datetime(2024, 1, 1)
    t = [start + dt.timedelta(seconds=86400 * i // n) for i in range(2 * n)]  # n per day
    pred = (x > 0.5).astype(int).astype(str)
    label = np.where(rng.random(2 * n) < 0.9, pred, np.where(pred == "1", "0", "1"))
    status = np.where(rng.random(2 * n) < 0.05, "rejected", "served")
    log = pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(2 * n)],
            "row": [0] * (2 * n),
            "arrival_time": [v.replace(tzinfo=dt.UTC) for v in t],
            "event_time": t,
            "status": status,
            "model_version": ["1"] * (2 * n),
            "latency_ms": [1.0] * (2 * n),
            "prediction": pred,
            "proba_1": 1 / (1 + np.exp(-(x - 0.5))),
            "proba_0": 1 - 1 / (1 + np.exp(-(x - 0.5))),
            "label": label,
            "t": t,
            "x": x,
            "c": rng.choice(["a", "b"], 2 * n),
        }
    )
    return ref, log


def report(settings: MonitoringSection | None = None) -> MonitorReport:
    ref, log = synthetic()
    s = settings or MonitoringSection.model_validate({"windows": {"size": "1d"}, "min_rows": 50})
    return monitor(log, ref, CONTRACT, settings=s, reference_metric=0.99, metric="accuracy")

"""How fast a model answers one record, measured the way the server predicts.

At register time the promotion gate needs the latency of the candidate as it will be served:
:func:`served_from_pipeline` builds the :class:`~modelyard.ops.serving.model.ServedModel` of a
fitted pipeline in memory (the same class, the same compiled fast path, checked on the same probe
rows as ``modelyard serve``), and :func:`measure_latency` times single records of the test set
through it: the record check of the request schema, the features (fast path when it compiles)
and the estimator. HTTP and JSON parsing are not included (``bench/`` measures the whole
server). Records are the test rows as a client sends them: the accepted columns only, in JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from modelyard.data.contract import DataContract

if TYPE_CHECKING:
    import polars as pl

    from modelyard.ops.serving.model import ServedModel

WARMUP = 10
"""Predictions made (on the first records) before timing starts."""


class Latency(BaseModel):
    """Single-record prediction latency, in milliseconds."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    rows: int
    """Records timed, one prediction each."""
    p50_ms: float
    """Median."""
    p99_ms: float
    """99th percentile (linear interpolation)."""
    max_ms: float
    """Slowest."""
    fast_path: bool
    """Whether the compiled fast path served them (else the scikit-learn pipeline)."""
    note: str
    """Why the fast path is or is not used."""


def served_from_pipeline(
    pipeline: Any,
    contract: DataContract,
    *,
    task: str,
    name: str = "candidate",
    version: str = "unregistered",
    local_dir: Path | None = None,
) -> ServedModel:
    """The served form of a fitted pipeline, exactly as ``load_served_model`` builds it."""
    from modelyard.ops.pyfunc import ModelyardPyfunc
    from modelyard.ops.serving.model import ServedModel, check_agreement, compile_served
    from modelyard.ops.tracking import model_inputs

    features = model_inputs(pipeline, contract)
    wrapper = ModelyardPyfunc.from_pipeline(pipeline, features=features, task=task)
    check_agreement(contract, wrapper)
    served = ServedModel(
        name=name,
        version=version,
        source="memory",
        contract=contract,
        task=task,
        classes=None if wrapper.classes is None else list(wrapper.classes),
        features=list(features),
        pipeline=pipeline,
        wrapper=wrapper,
        local_dir=local_dir or Path(),
    )
    compile_served(served)
    return served


def json_records(frame: pl.DataFrame, contract: DataContract, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows as a client sends them: accepted columns, through JSON."""
    from modelyard.ops.serving.request import ACCEPTED_ROLES

    names = [
        c.name for c in contract.columns if c.role in ACCEPTED_ROLES and c.name in frame.columns
    ]
    records: list[dict[str, Any]] = json.loads(frame.head(limit).select(names).write_json())
    return records


def measure_latency(
    served: ServedModel, records: list[dict[str, Any]], *, warmup: int = WARMUP
) -> Latency | None:
    """Time each record alone (check + predict); ``None`` without records."""
    import numpy as np

    if not records:
        return None
    check, predict = served.checker.check, served.predict
    for record in records[: max(0, warmup)]:
        predict([check(record).values])
    timings = np.empty(len(records), dtype=np.float64)
    clock = time.perf_counter
    for i, record in enumerate(records):
        start = clock()
        predict([check(record).values])
        timings[i] = clock() - start
    timings *= 1000.0
    return Latency(
        rows=len(records),
        p50_ms=float(np.percentile(timings, 50)),
        p99_ms=float(np.percentile(timings, 99)),
        max_ms=float(timings.max()),
        fast_path=served.compiled is not None,
        note=served.fast_reason,
    )

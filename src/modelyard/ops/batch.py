"""Batch scoring: a file scored by a registered model, validated against the contract first.

Invalid rows (types, missing required values, the declared checks) are not scored; they go to
a quarantine file beside the output with the reasons, so every input row ends up in exactly
one of the two files. Rows holding a value outside the training range or a category unseen in
training are drift, not invalid: scored, counted (:attr:`BatchResult.drifted`) and flagged in
the output's ``_drift`` column.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    import polars as pl

    from modelyard.data.contract import DataContract
    from modelyard.data.validation import Violation


@dataclass(frozen=True)
class BatchResult:
    rows: int
    scored: int
    quarantined: int
    output: Path
    quarantine: Path | None
    model: str
    version: str
    drifted: int = 0
    """Scored rows flagged as drift (a value outside the training range, an unseen category)."""
    drift: list[Violation] = field(default_factory=list)
    """The drift rules those rows break (column, check, rows, examples)."""


def score_frame(
    model: Any, frame: pl.DataFrame, contract: DataContract, *, batch_rows: int = 50_000,
    progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:  # fmt: skip
    """Predictions (``prediction`` + ``proba_<class>``) for validated rows, in batches."""
    import polars as pl

    from modelyard.data.frames import from_pandas
    from modelyard.modeling.features import to_pandas

    parts = []
    for start in range(0, frame.height, batch_rows):
        chunk = frame.slice(start, batch_rows)
        out = model.predict(to_pandas(chunk, contract))
        parts.append(from_pandas(out.reset_index(drop=True)))
        if progress:
            progress(min(start + batch_rows, frame.height), frame.height)
    if not parts:
        return pl.DataFrame({"prediction": []})
    return pl.concat(parts)


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """Write Parquet or CSV (by extension) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame.write_parquet(tmp)
        elif suffix == ".csv":
            frame.write_csv(tmp)
        else:
            raise ModelyardError(
                f"cannot write '{path.name}'",
                where="--out",
                expected="a .parquet or .csv file",
                found=repr(path.suffix or "no extension"),
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)

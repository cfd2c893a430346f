"""The label set as training data: one label per row, joined to the source rows by key.

Two stage functions, run by the pipeline (:func:`modelyard.recipe.build_pipeline`) as the
steps ``labels`` (keyed by the label set's content digest) and ``labelled`` (the source data
plus the labels, which the contract and validation steps then read):

- a label whose key is a source row's sets that row's target: it fills a missing target,
  and it replaces a target the source has (a reviewed label is a correction);
- a label for a row the source does not have (queued from the prediction log or another
  file) adds that row, from the values saved with the label;
- a label that matches no source row and carries no values cannot become a row: it is
  counted (``unmatched``), and ``modelyard label status`` lists it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import DataError
from modelyard.labels.keys import KEY, row_keys
from modelyard.labels.records import LabelSpec
from modelyard.labels.store import LabelSet
from modelyard.labels.validate import ConflictRule, resolve

if TYPE_CHECKING:
    import polars as pl

LABEL = "_label"


def label_set_digest(root: Path) -> str:
    """A digest of the label set's content: it changes with every new version."""
    files = LabelSet(root)._files()
    h = hashlib.blake2b(digest_size=12)
    for file in files:
        h.update(file.name.encode() + b"\0" + file.read_bytes())
    return f"v{len(files)}:{h.hexdigest()}"


@dataclass
class LabelTable:
    """The label set resolved to one label per row, as of one version."""

    version: int
    labels: dict[str, Any]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    held: int = 0


def label_table(root: Path, spec: LabelSpec, rule: ConflictRule) -> LabelTable:
    """The latest version of the label set at ``root``, conflicts resolved by ``rule``."""
    store = LabelSet(root)
    version = store.version
    resolution = resolve(store.read(version), spec, rule)
    return LabelTable(version, resolution.labels, resolution.rows, len(resolution.held))


def join_labels(
    train: pl.DataFrame, table: LabelTable, spec: LabelSpec
) -> tuple[pl.DataFrame, int]:
    """The source rows with their labels set, plus the labelled rows the source lacks; and
    how many labels matched no row and carried no values (see the module docstring)."""
    import polars as pl

    if not table.labels:
        return train, 0
    target = spec.target
    keys = row_keys(train, spec.key_columns, spec.features)
    known = set(keys.drop_nulls().to_list())
    dtype = train.schema.get(target, pl.String)
    mapping = {k: v for k, v in table.labels.items() if k in known}
    try:
        labels = pl.Series(
            LABEL, [mapping.get(k) for k in keys.to_list()], dtype=dtype, strict=True
        )
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise DataError(
            f"the labels do not fit the target column {target!r} ({dtype}): {exc}",
            where="labels", fix="Check the label set against the contract (modelyard label status).",
        ) from None  # fmt: skip
    if target in train.columns:
        out = train.with_columns(pl.coalesce(labels, pl.col(target)).alias(target))
    else:
        out = train.with_columns(labels.alias(target))
    extra = [
        {**table.rows[k], target: v}
        for k, v in sorted(table.labels.items())
        if k not in known and k in table.rows
    ]
    unmatched = sum(1 for k in table.labels if k not in known and k not in table.rows)
    if extra:
        added = pl.DataFrame(extra, infer_schema_length=None)
        common = [c for c in out.columns if c in added.columns]
        added = added.select(common).cast({c: out.schema[c] for c in common}, strict=False)
        out = pl.concat([out, added], how="diagonal_relaxed")
    return out.drop(KEY, strict=False), unmatched

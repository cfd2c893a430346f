"""Continuous ingestion: Kafka topics and watched folders into a partitioned Parquet dataset,
exactly once (see :mod:`modelyard.data.streaming.manifest`).

>>> from modelyard.data.streaming import follow  # doctest: +SKIP
>>> stats = follow(config, until_idle=5)  # doctest: +SKIP
"""

from modelyard.data.streaming.ingester import BatchReport, Ingester, IngestStats, follow
from modelyard.data.streaming.manifest import (
    DatasetWriter,
    Manifest,
    load_manifest,
    read_dataset,
    read_quarantine,
)

__all__ = [
    "BatchReport",
    "DatasetWriter",
    "IngestStats",
    "Ingester",
    "Manifest",
    "follow",
    "load_manifest",
    "read_dataset",
    "read_quarantine",
]

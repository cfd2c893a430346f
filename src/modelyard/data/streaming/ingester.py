"""Continuous ingestion: micro-batches from a source, validated, committed exactly once.

Each micro-batch (``ingest.max_rows`` records, or ``ingest.max_seconds`` after its first
record) is validated against the data contract by the same :func:`~modelyard.data.validation.validate`
as the batch pipeline, always in quarantine mode (a stream never stops for bad records): valid
rows are appended to the dataset, invalid records go to the quarantine with their raw payload
and the reasons. Both, and the source positions, are committed by one manifest replacement
(:mod:`~modelyard.data.streaming.manifest`).

Stopping: ``stop_event`` (set by SIGINT/SIGTERM when :func:`follow` runs in the main thread)
ends the loop after the current batch is committed. A crash (SIGKILL, power loss) loses only
the uncommitted batch, which is read again on restart.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import polars as pl

from modelyard.config.schema import IngestSection, ProjectConfig, ValidationSection
from modelyard.data.contract import DataContract, contract_from_yaml
from modelyard.data.streaming.manifest import QUARANTINE_SCHEMA, DatasetWriter, Manifest
from modelyard.data.streaming.records import Chunk, Decoder, payload_text
from modelyard.data.validation import REASONS, ROW, validate
from modelyard.errors import DataError

__all__ = ["BatchReport", "IngestStats", "Ingester", "follow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchReport:
    """Progress after one committed batch."""

    batch: int
    records: int
    valid: int
    quarantined: int
    seconds: float
    """Wall time of the batch, from its first record to its commit."""
    total_records: int
    """Records committed since the ingester started."""
    records_per_second: float
    """Throughput since the ingester started."""


@dataclass
class IngestStats:
    """What one :func:`follow` call did."""

    batches: int = 0
    records: int = 0
    valid: int = 0
    quarantined: int = 0
    duplicates: int = 0
    """Records the source replayed and the manifest already had (skipped)."""
    discarded: int = 0
    """Uncommitted records dropped after a rebalance (read again)."""
    seconds: float = 0.0
    stopped_by: str = ""
    history: list[BatchReport] = field(default_factory=list, repr=False)

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


class RecordSource(Protocol):
    """What the ingester needs from a source (Kafka topic, watched folder)."""

    generation: int
    duplicates: int

    def open(self, manifest: Manifest) -> None: ...
    def poll(self, max_records: int, timeout: float) -> Chunk | None: ...
    def pending_positions(self) -> dict[str, dict[int, int]]: ...
    def committed(self, manifest: Manifest) -> None: ...
    def discard(self) -> None: ...
    def close(self) -> None: ...


def load_contract(config: ProjectConfig) -> DataContract:
    """The project's data contract file, which ingestion requires."""
    path = config.contract.path
    if not path.is_file():
        raise DataError(
            "continuous ingestion needs the data contract",
            where=str(path),
            expected="the contract file",
            found="no file",
            fix="Run `modelyard validate` (or `modelyard run`) once on reference data to infer "
            "it, or write it by hand.",
        )
    return contract_from_yaml(path.read_text(encoding="utf-8"), source=str(path))


def _stream_options(options: ValidationSection) -> ValidationSection:
    # a stream never stops for bad records: they all go to the quarantine
    return options.model_copy(update={"on_error": "quarantine", "max_invalid_fraction": 1.0})


class Ingester:
    """Runs one source into one dataset. Build with :meth:`from_config` or by hand."""

    def __init__(
        self,
        source: RecordSource,
        writer: DatasetWriter,
        contract: DataContract | None,
        validation: ValidationSection,
        *,
        max_rows: int = 10_000,
        max_seconds: float = 5.0,
    ) -> None:
        self.source = source
        self.writer = writer
        self.contract = contract
        self.validation = _stream_options(validation)
        self.max_rows = max_rows
        self.max_seconds = max_seconds

    @classmethod
    def from_config(
        cls, config: ProjectConfig, *, contract: DataContract | None = None
    ) -> Ingester:
        section = config.ingest
        if section is None:
            raise DataError(
                "modelyard.yaml has no 'ingest' section",
                fix="Add one: ingest: {from: kafka://host:9092/topic, dataset: data/ingested}.",
            )
        contract = contract or load_contract(config)
        _check_partition(section, contract)
        source: RecordSource
        if isinstance(section.from_, str) and section.from_.startswith("kafka://"):
            from modelyard.data.streaming.kafka import KafkaSource

            decoder = Decoder(
                [c.name for c in contract.columns],
                decoder=section.decoder,
                allow_extra=contract.allow_extra_columns,
                max_bytes=section.max_message_bytes,
            )
            source = KafkaSource(
                section.from_, section.kafka, decoder, group_id=f"modelyard-{config.name}"
            )
        else:
            from modelyard.data.streaming.folder import FolderSource

            source = FolderSource(section)
        writer = DatasetWriter(
            section.dataset, partition_by=section.partition_by, quarantine=section.quarantine
        )
        return cls(
            source,
            writer,
            contract,
            config.validation,
            max_rows=section.max_rows,
            max_seconds=section.max_seconds,
        )

    # ------------------------------------------------------------------ loop

    def run(
        self,
        *,
        stop_event: threading.Event | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
        until_idle: float | None = None,
    ) -> IngestStats:
        """Ingest until ``stop_event`` is set (or, with ``until_idle``, until no record came
        for that many seconds); commit what is buffered, then return the statistics."""
        stop = stop_event or threading.Event()
        stats = IngestStats()
        started = time.monotonic()
        manifest = self.writer.open()
        try:
            # a configuration problem (a check on an unknown column) fails now, not per batch
            if self.contract is not None:
                empty = pl.DataFrame(
                    schema=dict.fromkeys((c.name for c in self.contract.columns), pl.String)
                )
                validate(empty, self.contract, self.validation)
            self.source.open(manifest)
            buffer: list[Chunk] = []
            buffered = 0
            first_at = 0.0
            last_record = time.monotonic()
            generation = self.source.generation
            while True:
                if stop.is_set():
                    stats.stopped_by = "stop"
                    break
                now = time.monotonic()
                wait = (
                    0.2 if not buffered else max(0.0, min(0.2, first_at + self.max_seconds - now))
                )
                chunk = self.source.poll(self.max_rows - buffered, wait)
                if self.source.generation != generation:  # uncommitted records dropped
                    stats.discarded += buffered
                    buffer, buffered, generation = [], 0, self.source.generation
                if chunk is not None and chunk.records:
                    if not buffered:
                        first_at = time.monotonic()
                    buffer.append(chunk)
                    buffered += chunk.records
                    last_record = time.monotonic()
                now = time.monotonic()
                if buffered and (buffered >= self.max_rows or now - first_at >= self.max_seconds):
                    self._commit(
                        buffer,
                        buffered,
                        first_at=first_at,
                        stats=stats,
                        started=started,
                        on_batch=on_batch,
                    )
                    buffer, buffered = [], 0
                idle = chunk is None and now - last_record >= (until_idle or 0.0)
                if until_idle is not None and not buffered and idle:
                    stats.stopped_by = "idle"
                    break
            if buffered:
                self._commit(
                    buffer,
                    buffered,
                    first_at=first_at,
                    stats=stats,
                    started=started,
                    on_batch=on_batch,
                )
        finally:
            stats.duplicates = self.source.duplicates
            stats.seconds = time.monotonic() - started
            self.source.close()
            self.writer.close()
        return stats

    def _commit(
        self,
        buffer: list[Chunk],
        records: int,
        *,
        first_at: float,
        stats: IngestStats,
        started: float,
        on_batch: Callable[[BatchReport], None] | None,
    ) -> None:
        batch_no = self.writer.manifest.batch + 1
        valid_frames: list[pl.DataFrame] = []
        quarantine_frames: list[pl.DataFrame] = []
        for chunk in buffer:
            valid, quarantine = self.check(chunk, batch_no)
            if valid.height:
                valid_frames.append(valid)
            if quarantine.height:
                quarantine_frames.append(quarantine)
        valid = pl.concat(valid_frames, how="vertical_relaxed") if valid_frames else pl.DataFrame()
        quarantine = (
            pl.concat(quarantine_frames)
            if quarantine_frames
            else pl.DataFrame(schema=QUARANTINE_SCHEMA)
        )
        files: dict[str, str] = getattr(self.source, "pending_files", dict)()
        manifest = self.writer.commit(
            valid,
            quarantine,
            records=records,
            kafka=self.source.pending_positions(),
            files=files,
        )
        self.source.committed(manifest)
        stats.batches += 1
        stats.records += records
        stats.valid += valid.height
        stats.quarantined += quarantine.height
        elapsed = time.monotonic() - started
        report = BatchReport(
            batch=manifest.batch,
            records=records,
            valid=valid.height,
            quarantined=quarantine.height,
            seconds=time.monotonic() - first_at,
            total_records=stats.records,
            records_per_second=stats.records / elapsed if elapsed > 0 else 0.0,
        )
        log.info(
            "ingest: batch %d: %d records (%d valid, %d quarantined), %.0f records/s",
            report.batch,
            records,
            report.valid,
            report.quarantined,
            report.records_per_second,
        )
        if on_batch is not None:
            on_batch(report)

    def check(self, chunk: Chunk, batch: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Validate one chunk: ``(valid typed rows, quarantine records)``."""
        sources: list[str] = []
        payloads: list[str | None] = []
        encodings: list[str] = []
        reasons: list[str] = []
        for rej in chunk.rejected:
            text, enc = payload_text(rej.payload)
            sources.append(rej.source)
            payloads.append(text)
            encodings.append(enc)
            reasons.append(rej.reason)
        valid = pl.DataFrame()
        if chunk.frame.height:
            try:
                result = validate(chunk.frame, self.contract, self.validation)
            except DataError as exc:  # the frame does not fit (a file with other columns)
                bad_rows = list(range(chunk.frame.height))
                bad_reasons = [str(exc)] * len(bad_rows)
                raw = chunk.frame
            else:
                valid = result.valid
                bad_rows = result.quarantine[ROW].to_list()
                bad_reasons = result.quarantine[REASONS].to_list()
                raw = result.quarantine.drop(ROW, REASONS)
            for i, (row, reason) in enumerate(zip(bad_rows, bad_reasons, strict=True)):
                sources.append(chunk.sources[row])
                if chunk.payloads is not None:
                    text, enc = payload_text(chunk.payloads[row])
                else:  # a row of a file: its raw values as JSON
                    text, enc = json.dumps(raw.row(i, named=True), default=str), "json"
                payloads.append(text)
                encodings.append(enc)
                reasons.append(reason)
        quarantine = pl.DataFrame(
            {
                "_source": sources,
                "_payload": payloads,
                "_encoding": encodings,
                "_reasons": reasons,
                "_batch": [batch] * len(sources),
            },
            schema=QUARANTINE_SCHEMA,
        )
        return valid, quarantine


def _check_partition(section: IngestSection, contract: DataContract) -> None:
    if section.partition_by == "ingestion_date":
        return
    names = [c.name for c in contract.columns]
    if section.partition_by not in names:
        from modelyard.data.contract import did_you_mean

        raise DataError(
            f"ingest.partition_by names an unknown column '{section.partition_by}'",
            expected="ingestion_date or a column of the contract",
            fix=did_you_mean(section.partition_by, names) or "Check ingest.partition_by.",
        )


def follow(
    config: ProjectConfig,
    *,
    stop_event: threading.Event | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    contract: DataContract | None = None,
    until_idle: float | None = None,
    handle_signals: bool = True,
) -> IngestStats:
    """Run the continuous ingestion of ``config.ingest`` until stopped.

    ``stop_event`` stops it (after committing the current batch); in the main thread SIGINT
    and SIGTERM set it too (``handle_signals``). ``on_batch`` receives a :class:`BatchReport`
    after each commit (progress and throughput). ``until_idle`` stops after that many seconds
    without a new record (catch-up mode). ``contract`` defaults to the project's contract file.
    """
    ingester = Ingester.from_config(config, contract=contract)
    stop = stop_event or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if handle_signals and threading.current_thread() is threading.main_thread():

        def request_stop(signum: int, frame: FrameType | None) -> None:
            log.info(
                "ingest: %s received, stopping after the current batch", signal.Signals(signum).name
            )
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
    try:
        return ingester.run(stop_event=stop, on_batch=on_batch, until_idle=until_idle)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def dataset_path(config: ProjectConfig) -> Path | None:
    """Where ``config.ingest`` writes its dataset (for ``data.source.dataset``)."""
    return config.ingest.dataset if config.ingest is not None else None

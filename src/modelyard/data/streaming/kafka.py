"""A Kafka topic as a record source (confluent-kafka).

One ingester owns a dataset (the writer's lock), so the consumer assigns itself every partition
of the topics (no group rebalances: a restart after a crash resumes at once instead of waiting
for the dead member's session to expire) and re-reads the topic metadata every
``_METADATA_SECONDS`` to pick up new partitions. The dataset's manifest owns the positions: each
partition is assigned at the manifest's next offset (or at the start / end for a partition
never read), whatever the group has committed. Auto-commit is off; offsets are committed to the group only
after a batch is durable, as a convenience for monitoring tools. A message at an offset below the
next expected one (redelivered after a reconnect or a rebalance) is a replay and is skipped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from modelyard.config.schema import KafkaOptions
from modelyard.data.streaming.manifest import Manifest
from modelyard.data.streaming.records import Chunk, Decoder
from modelyard.errors import DataError, MissingExtraError

__all__ = ["KafkaSource", "parse_kafka_url"]

log = logging.getLogger(__name__)

_SECURITY = {
    "sasl_mechanism": "sasl.mechanism",
    "username": "sasl.username",
    "password": "sasl.password",
    "ssl_ca": "ssl.ca.location",
    "ssl_certificate": "ssl.certificate.location",
    "ssl_key": "ssl.key.location",
    "ssl_key_password": "ssl.key.password",
}
_METADATA_SECONDS = 30.0


def parse_kafka_url(url: str) -> tuple[str, list[str]]:
    """``kafka://h1:9092,h2:9092/topic[,topic2]`` -> (bootstrap servers, topics)."""
    brokers, _, topics = url.removeprefix("kafka://").partition("/")
    names = [t for t in topics.strip("/").split(",") if t]
    if not brokers or not names:
        raise DataError("expected kafka://host:port/topic", where=url)
    return brokers, names


def consumer_config(url: str, options: KafkaOptions, *, group_id: str) -> dict[str, Any]:
    """The librdkafka settings (secrets revealed: never log this)."""
    brokers, _ = parse_kafka_url(url)
    conf: dict[str, Any] = {
        "bootstrap.servers": brokers,
        "group.id": options.group_id or group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": options.start,
        "enable.partition.eof": False,
        "security.protocol": options.security.protocol,
    }
    for name, key in _SECURITY.items():
        value = getattr(options.security, name)
        if value is None:
            continue
        conf[key] = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    conf.update(options.settings)
    return conf


class KafkaSource:
    """Polls decoded micro-batch chunks from the topics of ``url``."""

    def __init__(self, url: str, options: KafkaOptions, decoder: Decoder, *, group_id: str) -> None:
        self.url = url
        self.options = options
        self.decoder = decoder
        self.group_id = group_id
        self.topics = parse_kafka_url(url)[1]
        self.generation = 0
        """Bumped when uncommitted records were discarded (a rebalance): the ingester drops
        chunks of an older generation."""
        self.duplicates = 0
        self._consumer: Any = None
        self._committed: dict[tuple[str, int], int] = {}
        self._next: dict[tuple[str, int], int] = {}
        self._pending: dict[tuple[str, int], int] = {}
        self._last_warning = 0.0

    def open(self, manifest: Manifest) -> None:
        try:
            from confluent_kafka import Consumer
        except ImportError:
            raise MissingExtraError("confluent-kafka", "kafka", "ingesting from Kafka") from None
        self._committed = {(t, p): o for t, ps in manifest.kafka.items() for p, o in ps.items()}
        self._next = dict(self._committed)
        self._consumer = Consumer(consumer_config(self.url, self.options, group_id=self.group_id))
        self._assigned: set[tuple[str, int]] = set()
        self._metadata_at = 0.0
        self._refresh_partitions(timeout=10.0)

    def _refresh_partitions(self, timeout: float) -> None:
        """Assign new partitions of the topics (all of them, at the first call)."""
        from confluent_kafka import KafkaException, TopicPartition

        self._metadata_at = time.monotonic()
        found: set[tuple[str, int]] = set()
        for topic in self.topics:
            try:
                meta = self._consumer.list_topics(topic, timeout=timeout)
            except KafkaException as exc:
                self._warn(f"cannot read the metadata of topic {topic}: {exc}")
                continue
            info = meta.topics.get(topic)
            if info is None or info.error is not None:
                self._warn(f"topic {topic} is not available yet")
                continue
            found.update((topic, p) for p in info.partitions)
        new = sorted(found - self._assigned)
        if not new:
            return
        parts = [TopicPartition(t, p, self._start_offset((t, p))) for t, p in new]
        self._consumer.incremental_assign(parts)
        self._assigned.update(new)
        log.info("kafka: assigned %s", [(tp.topic, tp.partition, tp.offset) for tp in parts])

    def _start_offset(self, key: tuple[str, int]) -> int:
        from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

        committed = self._committed.get(key)
        if committed is not None:
            return committed
        return OFFSET_BEGINNING if self.options.start == "earliest" else OFFSET_END

    def _reset(self) -> None:
        """Forget uncommitted records: they will be read again from the manifest's positions."""
        self.generation += 1
        self._pending.clear()
        self._next = dict(self._committed)

    def _rewind(self) -> None:
        """Re-assign the current partitions at the manifest's positions."""
        self._reset()
        parts = self._consumer.assignment()
        for tp in parts:
            tp.offset = self._start_offset((tp.topic, tp.partition))
        if parts:
            self._consumer.assign(parts)

    def poll(self, max_records: int, timeout: float) -> Chunk | None:
        from confluent_kafka import KafkaError

        if time.monotonic() - self._metadata_at > (_METADATA_SECONDS if self._assigned else 1.0):
            self._refresh_partitions(timeout=min(timeout, 1.0) or 0.1)
        generation = self.generation
        messages = self._consumer.consume(
            num_messages=max(1, min(max_records, 10_000)), timeout=timeout
        )
        if self.generation != generation:  # records were discarded meanwhile: start over
            self._rewind()
            return None
        items: list[tuple[str, bytes | None]] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise DataError("the Kafka consumer failed", where=self.url, found=err.str())
                self._warn(err.str())
                continue
            key = (msg.topic(), msg.partition())
            offset = msg.offset()
            expected = self._next.get(key)
            if expected is not None and offset < expected:
                self.duplicates += 1
                continue
            self._next[key] = offset + 1
            self._pending[key] = offset + 1
            items.append((f"kafka:{key[0]}/{key[1]}@{offset}", msg.value()))
        return self.decoder.decode(items) if items else None

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:
            log.warning("kafka: %s (retrying)", text)
            self._last_warning = now

    def pending_positions(self) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        for (topic, partition), offset in self._pending.items():
            out.setdefault(topic, {})[partition] = offset
        return out

    def committed(self, manifest: Manifest) -> None:
        """The batch is durable: remember its positions, and tell the group (best effort)."""
        from confluent_kafka import KafkaException, TopicPartition

        self._committed = {(t, p): o for t, ps in manifest.kafka.items() for p, o in ps.items()}
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._pending.items()]
        self._pending.clear()
        if offsets:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            except KafkaException as exc:  # the broker is down: the manifest has the truth
                log.debug("kafka: offset commit to the group failed: %s", exc)

    def discard(self) -> None:
        """Drop uncommitted records (they will be read again)."""
        self._rewind()

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            except Exception as exc:  # closing while the broker is down
                log.debug("kafka: close failed: %s", exc)
            self._consumer = None

"""Continuous ingestion from a real Kafka-protocol broker, with real process crashes and a
broker restart: every message of the topic lands exactly once in data + quarantine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from modelyard.data.streaming import read_dataset, read_quarantine
from modelyard.data.streaming.manifest import load_manifest
from tests.integration.data_servers import Broker
from tests.unit.data.streaming._project import message, write_project

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("_ingest_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def hostile(i: int) -> bytes | None:
    """Every 50th message is malformed, in turn: not JSON, wrong type, missing field, empty,
    huge, not UTF-8, not an object."""
    kind = (i // 50) % 7
    return [
        f"not json {i}".encode(),
        message(i, x="NaN-ish"),
        json.dumps({"x": 1.0, "label": "a"}).encode(),
        b"",
        b'{"id": %d, "pad": "' % i + b"x" * 3000 + b'"}',
        b"\xff\xfe\xfd" + str(i).encode(),
        b"[%d]" % i,
    ][kind]


def payloads(n: int) -> tuple[list[bytes | None], set[int]]:
    """n messages; returns them and the ids that must end valid."""
    out: list[bytes | None] = []
    valid: set[int] = set()
    for i in range(n):
        if i % 50 == 49:
            out.append(hostile(i))
        else:
            out.append(message(i))
            valid.add(i)
    return out, valid


def project(tmp: Path, broker: Broker, topic: str, max_rows: int = 150) -> Path:
    write_project(
        tmp,
        {
            "from": f"kafka://{broker.bootstrap}/{topic}",
            "kafka": {
                "group_id": f"g-{topic}",
                "settings": {"session.timeout.ms": 6000, "reconnect.backoff.max.ms": 500},
            },
            "max_rows": max_rows,
            "max_seconds": 0.5,
            "max_message_bytes": 2000,
        },
    )
    return tmp / "modelyard.yaml"


def start_worker(yaml: Path, until_idle: float | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(WORKER), str(yaml)]
    if until_idle is not None:
        args.append(str(until_idle))
    log = (yaml.parent / "worker.log").open("ab")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def committed(dataset: Path) -> int:
    return load_manifest(dataset).records if (dataset / "_manifest.json").exists() else 0


def wait_for(cond: object, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


def assert_exactly_once(dataset: Path, n: int, valid_ids: set[int]) -> None:
    data = read_dataset(dataset)
    quarantine = read_quarantine(dataset)
    ids = data["id"].to_list()
    assert len(ids) == len(set(ids)), "duplicate valid rows"
    assert set(ids) == valid_ids, "valid rows lost"
    sources = quarantine["_source"].to_list()
    assert len(sources) == len(set(sources)), "duplicate quarantined records"
    assert len(sources) == n - len(valid_ids), "quarantined records lost"
    assert data.height + quarantine.height == n
    assert load_manifest(dataset).records == n
    reasons = " | ".join(quarantine["_reasons"].to_list())
    for expected in (
        "not JSON",
        "empty message",
        "max_message_bytes",
        "not UTF-8",
        "not an object",
        "id: missing",
        "x: ",
    ):
        assert expected in reasons, expected


def test_sigkill_mid_batch_and_restart_exactly_once(tmp_path: Path, kafka_broker: Broker) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=2)
    n = 12_000
    msgs, valid_ids = payloads(n)
    kafka_broker.produce(topic, msgs)
    yaml = project(tmp_path, kafka_broker, topic, max_rows=60)
    dataset = tmp_path / "data" / "ingested"
    log = tmp_path / "worker.log"
    for delay in (0.0, 0.05, 0.1):  # kill at different points of a batch
        before = committed(dataset)
        proc = start_worker(yaml)
        wait_for(lambda b=before: committed(dataset) > b, 60, "a commit", log)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert committed(dataset) < n, "killed too late to be mid-ingestion"
    proc = start_worker(yaml, until_idle=3.0)
    assert proc.wait(timeout=120) == 0, log.read_text()[-4000:]
    assert_exactly_once(dataset, n, valid_ids)


def test_broker_restart_during_ingestion(tmp_path: Path, kafka_broker: Broker) -> None:
    topic = f"r-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic, partitions=2)
    msgs, valid_ids = payloads(2000)
    yaml = project(tmp_path, kafka_broker, topic)
    dataset = tmp_path / "data" / "ingested"
    log = tmp_path / "worker.log"
    kafka_broker.produce(topic, msgs[:1000])
    proc = start_worker(yaml)
    try:
        wait_for(lambda: committed(dataset) > 0, 60, "a commit", log)
        kafka_broker.stop()
        time.sleep(2)  # the ingester sees the broker gone
        kafka_broker.start()
        kafka_broker.produce(topic, msgs[1000:])
        wait_for(lambda: committed(dataset) >= 2000, 120, "all records", log)
        time.sleep(1.5)  # a replay, if any, would show up now
    finally:
        proc.send_signal(signal.SIGTERM)  # clean stop
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()[-4000:]
    assert_exactly_once(dataset, 2000, valid_ids)

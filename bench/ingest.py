"""Benchmark: N JSON messages from a real Kafka-protocol broker (noida-db) into a partitioned
Parquet dataset, validated against a contract (exactly-once commits, fsync per batch).

    uv run --all-extras python bench/ingest.py [--messages 1000000] [--batch 50000]

Prints the produce rate, the ingest rate (messages/s, from the start of `follow` to the last
commit) and the peak resident memory of the ingesting process (the producer runs in a child).
Outside CI: it takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PRODUCER = r"""
import json, sys, time
from confluent_kafka import Producer
bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10000,
              "queue.buffering.max.messages": 500000, "compression.type": "none"})
labels = ["a", "b", "c"]
t0 = time.perf_counter()
for i in range(n):
    if i % 1000 == 999:
        value = b"not json"
    else:
        value = json.dumps({"id": i, "x": (i % 1000) / 10, "label": labels[i % 3],
                            "ts": "2026-11-26T10:00:00", "ok": i % 2 == 0}).encode()
    while True:
        try:
            p.produce(topic, value=value)
            break
        except BufferError:
            p.poll(0.05)
    if i % 20000 == 0:
        p.poll(0)
assert p.flush(120) == 0
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    args = parser.parse_args()

    from confluent_kafka.admin import AdminClient, NewTopic

    from modelyard.config.loader import load_config
    from modelyard.data.contract import ColumnContract, DataContract, contract_to_yaml
    from modelyard.data.streaming import follow, read_dataset

    root = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    port = free_port()
    exe = Path(sys.executable).with_name("noida-db")
    broker = subprocess.Popen(
        [
            str(exe),
            "start",
            "--only",
            "kafka",
            "--kafka-port",
            str(port),
            "--host",
            "127.0.0.1",
            "--data-dir",
            str(root / "broker"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        bootstrap = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        topic = "bench"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.create_topics([NewTopic(topic, num_partitions=2)]).values():
            f.result(30)
        out = subprocess.run(
            [sys.executable, "-c", PRODUCER, bootstrap, topic, str(args.messages)],
            check=True,
            capture_output=True,
            text=True,
        )
        produce_s = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]

        contract = DataContract(
            columns=[
                ColumnContract(name="id", type="int", nullable=False),
                ColumnContract(name="x", type="float", nullable=False, min=0, max=100),
                ColumnContract(name="label", type="str", categories=["a", "b", "c"]),
                ColumnContract(name="ts", type="datetime"),
                ColumnContract(name="ok", type="bool"),
            ]
        )
        project = root / "project"
        project.mkdir()
        (project / "contract.yaml").write_text(contract_to_yaml(contract))
        (project / "seed.csv").write_text("id\n1\n")
        (project / "modelyard.yaml").write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "name": "bench",
                    "data": {"source": {"path": "seed.csv"}},
                    "ingest": {
                        "from": f"kafka://{bootstrap}/{topic}",
                        "max_rows": args.batch,
                        "max_seconds": 2.0,
                    },
                }
            )
        )
        config = load_config(project / "modelyard.yaml")
        last = [0.0]
        t0 = time.perf_counter()
        stats = follow(
            config, until_idle=3.0, on_batch=lambda r: last.__setitem__(0, time.perf_counter())
        )
        ingest_s = last[0] - t0
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        dataset = project / "data" / "ingested"
        rows = read_dataset(dataset).height
        size = sum(f.stat().st_size for f in dataset.rglob("*.parquet")) / 2**20
        print(f"messages            {stats.records:>12,}")
        print(f"valid rows          {stats.valid:>12,}   quarantined {stats.quarantined:,}")
        print(f"batches             {stats.batches:>12,}   (max_rows {args.batch:,})")
        print(f"produce             {args.messages / produce_s:>12,.0f} msg/s  ({produce_s:.1f} s)")
        print(f"ingest + validate   {stats.records / ingest_s:>12,.0f} msg/s  ({ingest_s:.1f} s)")
        print(f"peak RSS (ingester) {peak_mib:>12,.0f} MiB")
        print(f"dataset             {size:>12,.1f} MiB Parquet, {rows:,} rows readable")
        assert stats.records == args.messages and rows == stats.valid
    finally:
        os.killpg(broker.pid, signal.SIGTERM)
        broker.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

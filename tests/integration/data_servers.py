"""Servers for the data-collection tests: an S3-compatible server (moto), PostgreSQL (Debian's
package, on a private data folder) and a Kafka-protocol broker (noida-db, persisting to disk).

Imported by ``conftest.py``. Each fixture skips when its server is missing, and fails under
``CI=true`` (``skip_or_fail``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

S3_KEY, S3_SECRET = "testing-key", "testing-secret"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    pytest.fail(
        f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s:\n{log.read_text()[-3000:]}"
    )


# ---------------------------------------------------------------------------- S3


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto) on 127.0.0.1; yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        skip_or_fail(f"moto's server is not installed ({exc}): uv sync")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_options(s3_server: str) -> dict[str, str]:
    """s3fs storage options for the test server."""
    return {"endpoint_url": s3_server, "key": S3_KEY, "secret": S3_SECRET}


# ---------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 (initdb'd in a private folder, run as the
    ``postgres`` user when the tests run as root); yields a ``postgresql://`` URL."""
    bins = sorted(str(p) for p in Path("/usr/lib/postgresql").glob("*/bin"))
    if not bins or not Path(bins[-1], "initdb").exists():
        skip_or_fail("PostgreSQL is not installed: apt-get install -y postgresql")
    pgbin = Path(bins[-1])
    root = tmp_path_factory.mktemp("postgres")
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            skip_or_fail("running as root without runuser: cannot start PostgreSQL")
        shutil.chown(root, "postgres", "postgres")
        root.chmod(0o700)
        for parent in root.parents:  # the postgres user must reach the folder
            if parent == Path(parent.anchor):
                break
            with contextlib.suppress(PermissionError):
                parent.chmod(parent.stat().st_mode | 0o011)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    data, log = root / "data", root / "log"
    subprocess.run(
        [*prefix, str(pgbin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    ctl = [*prefix, str(pgbin / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [
            *ctl,
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root}",
            "-l",
            str(log),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "fast", "-w", "stop"], capture_output=True)


# ---------------------------------------------------------------------------- Kafka


class Broker:
    """A noida-db Kafka-protocol broker that can be stopped and restarted on the same port and
    data folder (it persists to disk)."""

    def __init__(self, exe: Path, root: Path) -> None:
        self.exe, self.root = exe, root
        self.port = _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "broker.log"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(self.exe),
                    "start",
                    "--only",
                    "kafka",
                    "--kafka-port",
                    str(self.port),
                    "--host",
                    "127.0.0.1",
                    "--data-dir",
                    str(self.root / "data"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_port(self.port, 30, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.proc = None

    def create_topic(self, name: str, partitions: int = 2) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.create_topics([NewTopic(name, num_partitions=partitions)]).values():
            future.result(timeout=15)

    def produce(self, topic: str, payloads: list[bytes | None]) -> None:
        from confluent_kafka import Producer

        producer = Producer(
            {"bootstrap.servers": self.bootstrap, "linger.ms": 5, "message.max.bytes": 4_000_000}
        )
        for i, payload in enumerate(payloads):
            producer.produce(topic, value=payload, key=str(i).encode())
            if i % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0, "messages not delivered"


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real Kafka-protocol broker (noida-db) on 127.0.0.1 for the session."""
    exe = Path(sys.executable).with_name("noida-db")
    if not exe.exists():
        skip_or_fail(f"the noida-db broker is not installed ({exe}): uv sync")
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        skip_or_fail("confluent-kafka is not installed: uv sync --extra kafka")
    broker = Broker(exe, tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()

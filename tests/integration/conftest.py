"""Fixtures that start real servers on 127.0.0.1 and stop them after the session.

Each server fixture skips its tests when the server's executable is missing, but fails them
when ``CI=true`` (in CI every integration test must really run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing(what: str) -> None:
    """Skip for a missing server executable, but fail in CI."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true: integration tests must not be skipped)")
    pytest.skip(what)


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``url`` until it answers 200, the process dies, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"no answer from {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, wait, then kill if needed: the whole process group of a server started with
    ``start_new_session=True`` (servers fork workers that a plain terminate would orphan)."""

    def signal_group(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    signal_group(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        signal_group(signal.SIGKILL)
        proc.wait(timeout=15)
    else:
        signal_group(signal.SIGKILL)  # stragglers of the group, if any


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend, proxied artifacts); yields its URI."""
    exe = Path(sys.executable).with_name("mlflow")
    if not exe.exists():
        missing(f"the mlflow server executable is missing ({exe}): uv sync --extra mlflow-server")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = root / "server.log"
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        # no background job runner (a dozen huey consumer processes we do not use)
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(exe),
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination",
                str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        # ~12 s on an idle machine; minutes when the machine is shared
        wait_http(f"{uri}/health", timeout=180, proc=proc, log=log)
        yield uri
    finally:
        stop(proc)


# Servers of the data-collection tests (S3, PostgreSQL, Kafka): see data_servers.py.
# A real Dask cluster (dask scheduler + two dask worker processes): see dask_cluster.py.
from tests.integration.dask_cluster import dask_cluster  # noqa: E402, F401
from tests.integration.data_servers import (  # noqa: E402, F401
    kafka_broker,
    postgres_server,
    s3_options,
    s3_server,
)

"""A real Dask cluster for the tests: ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1, each a separate process started from this project's environment.

Imported by ``conftest.py`` (fixture ``dask_cluster``). It skips when ``distributed`` (the
``dask`` extra) is missing, and fails under ``CI=true``.

The scheduler and the workers get the repository root on ``PYTHONPATH``, so tasks from
``tests.*`` modules import there (a real cluster needs the tasks' code installed on the
scheduler and on every worker, just the same: the scheduler unpickles task graphs too).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 120.0
"""How long the scheduler and the workers may take to start (a busy 2-core machine)."""


@dataclass
class DaskCluster:
    """A running cluster: ``address`` for ``compute.address``; ``kill_worker`` for the tests
    of a worker lost mid-run."""

    address: str
    root: Path
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    """Pids of every process a ``kill_worker`` call killed."""
    logs: list[Path] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        """One more ``dask worker`` (a nanny and its single-threaded worker process)."""
        folder = self.root / f"worker-{len(self.logs)}"
        folder.mkdir()
        self.logs.append(folder / "log")
        with (folder / "log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "distributed.cli.dask_worker", self.address,
                    "--nworkers", "1", "--nthreads", "1", "--memory-limit", "2GB",
                    "--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                    "--local-directory", str(folder),
                    "--death-timeout", "60",  # gone with the scheduler, whatever happens
                ],
                cwd=folder, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: kill_worker takes nanny and worker
            )  # fmt: skip
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int = 2, timeout: float = START_SECONDS) -> None:
        """Until ``n`` workers are connected to the scheduler."""
        import distributed

        with distributed.Client(self.address, timeout=timeout) as client:
            try:
                client.wait_for_workers(n, timeout=timeout)
            except TimeoutError:
                logs = "\n".join(log.read_text()[-1500:] for log in self.logs)
                pytest.fail(f"{n} Dask workers did not join within {timeout:.0f} s:\n{logs}")

    def worker_pids(self) -> list[int]:
        """The processes that run tasks (each nanny's spawned child)."""
        return [
            pid
            for proc in self.workers
            for pid in _group(proc.pid)
            if "spawn_main" in _cmdline(pid)  # not the nanny, not a resource tracker
        ]

    def kill_worker(self, index: int = 0, *, replace: bool = True) -> list[int]:
        """SIGKILL the ``index``-th ``dask worker``, nanny and worker process together (as when
        its machine is lost: no nanny restarts it); with ``replace``, start a new one so the
        cluster gets back to its size (it joins a few seconds later). Returns the killed pids."""
        proc = self.workers.pop(index)
        pids = _group(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self.killed.extend(pids)
        if replace:
            self.start_worker()
        return pids

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL what is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):  # the group's stragglers, if any
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=15)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    """The scheduler unpickles task graphs too (Dask 2024.12 and later): both it and the
    workers need the tasks' modules."""
    paths = [str(ROOT), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _group(pgid: int) -> list[int]:
    """The processes of a process group (a ``dask worker``: its nanny, the worker process the
    nanny spawned, multiprocessing's resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text(encoding="ascii")
                if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                    pids.append(int(entry.name))
    return sorted(pids)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCluster]:
    """A real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, stopped at the
    end of the session. Yields a :class:`DaskCluster` (``.address``, ``.kill_worker()``)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        skip_or_fail("distributed (the dask extra) is not installed: uv sync --extra dask")
    root = tmp_path_factory.mktemp("dask-cluster")
    port = free_port()
    log = root / "scheduler.log"
    with log.open("wb") as out:
        scheduler = subprocess.Popen(
            [
                sys.executable, "-m", "distributed.cli.dask_scheduler",
                "--host", "127.0.0.1", "--port", str(port),
                "--dashboard-address", "127.0.0.1:0",
            ],
            cwd=root, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    cluster = DaskCluster(f"tcp://127.0.0.1:{port}", root, scheduler)
    try:
        _wait_listening(port, scheduler, log)
        for _ in range(2):
            cluster.start_worker()
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dask scheduler exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    pytest.fail(f"dask scheduler not listening on {port}:\n{log.read_text()[-3000:]}")

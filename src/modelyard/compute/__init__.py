"""The compute layer: where units of parallel work run. It knows nothing of ML.

One small interface, :class:`Executor`, and three back-ends that give the same results:

- ``serial``: in this process, one task after another;
- ``local`` (the default): a pool of worker processes on this machine, one per core;
- ``dask``: a ``dask.distributed`` cluster (a ``LocalCluster`` of processes when no address is
  given), from the ``modelyard[dask]`` extra.

Every task runs single-threaded (OpenMP and BLAS pools limited to one thread): parallelism comes
from running tasks side by side, never from native thread pools, so nothing oversubscribes.
Tasks are plain module-level functions; their arguments and results are pickled.

>>> with open_executor("serial") as ex:
...     data = ex.share([1, 2, 3])          # sent to each worker once
...     future = ex.submit(sum, data)       # a concurrent.futures.Future
...     future.result()
6

A task that raises sets its future's exception (the worker's traceback is attached as a note);
a worker process that dies sets :class:`WorkerLost` on the task it was running, and the pool
replaces the worker. Neither stops the other tasks.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any, Literal

from modelyard.errors import ModelyardError

__all__ = [
    "Executor",
    "ExecutorKind",
    "Shared",
    "WorkerLost",
    "available_cores",
    "map_in_order",
    "on_this_machine",
    "open_executor",
]

ExecutorKind = Literal["serial", "local", "dask"]

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "POLARS_MAX_THREADS",
)
"""Environment variables that cap native thread pools; set to 1 in every worker process."""

ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"
"""polars' allocator (jemalloc) options, read as a process loads polars."""

LOCAL_ALLOCATOR = "dirty_decay_ms:30000,muzzy_decay_ms:30000"
"""What a local worker's polars allocator is told: keep the pages a task frees for 30 s, so
the next part's task reuses them instead of having the kernel fault in and zero fresh ones.
polars' own default returns them after half a second (its import puts
``dirty_decay_ms:500,muzzy_decay_ms:1000`` in front of the variable, to keep an interactive
session's memory low). On 2 cores the data steps' system time falls by half (measured in
bench/README.md). A worker's resident memory stays at its high-water mark while it works,
which it reaches on every part anyway; a task that needs the whole machine runs in a fresh
worker, the others stopped. Not for Dask workers, whose memory manager counts resident pages
against a worker's limit."""

_POLARS_ALLOCATOR = "dirty_decay_ms:500,muzzy_decay_ms:1000"


def local_allocator(current: str | None) -> str:
    """The allocator variable of a local worker, from the driver's (``current``): polars'
    default and any other options kept, :data:`LOCAL_ALLOCATOR` after them (the last value
    of an option wins); a decay the user chose is kept instead."""
    current = current or ""
    own = current.removeprefix(_POLARS_ALLOCATOR).strip(",")
    if "decay_ms" in own:
        return current
    return f"{current},{LOCAL_ALLOCATOR}" if current else LOCAL_ALLOCATOR


SYS_PATH_VARIABLE = "MODELYARD_WORKER_SYS_PATH"
"""The driver's ``sys.path`` (JSON) handed to a local worker, which puts it first on its own:
a task function importable here is importable there (as with multiprocessing's spawn)."""


class WorkerLost(ModelyardError):
    """The worker process running a task died (killed, out of memory, a crash in native code)."""


class Shared:
    """A value sent to the workers once (:meth:`Executor.share`); tasks receive the value itself.

    Pass it as a top-level argument of :meth:`Executor.submit`.
    """

    def __init__(self, token: str, ref: Any) -> None:
        self.token = token
        self.ref = ref
        """The back-end's handle: the value (serial), a file path (local), a dask future."""

    def __repr__(self) -> str:
        return f"Shared({self.token})"


class Executor(ABC):
    """Runs tasks: ``submit(fn, *args) -> concurrent.futures.Future``.

    Use it as a context manager, or call :meth:`close`. ``workers`` is how many tasks run at
    once; schedulers keep about that many in flight.
    """

    kind: ExecutorKind
    local_files: bool = True
    """The workers run on this machine, so they can read its files (a task may open a local
    file itself rather than have its bytes shipped)."""

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many tasks run side by side."""

    @abstractmethod
    def share(self, value: Any) -> Shared:
        """Send ``value`` to every worker once; pass the handle to :meth:`submit`."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` on a worker (a :class:`Shared` argument arrives as its value)."""

    def start(self) -> None:  # noqa: B027 - most back-ends are started when made
        """Start the workers now rather than on the first task: they start while the caller
        does its own work (a worker process takes most of a second to import its libraries)."""

    def submit_alone(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` as a task that needs the whole machine: all its cores (the task
        sets its own threads) and all the memory it can get.

        The local pool runs it once every earlier task has ended, in a fresh worker process
        (no heap left over from other tasks), with its other workers stopped until it ends,
        so their memory is free for it; later tasks wait for it. Elsewhere it is a task like
        any other."""
        return self.submit(fn, *args)

    @abstractmethod
    def cancel(self, futures: Iterable[Future[Any]]) -> None:
        """Drop queued tasks, and stop running ones where the back-end can (local: the worker
        is replaced; dask: a running task finishes, its result is dropped)."""

    def unshare(self, shared: Shared) -> None:  # noqa: B027 - optional for back-ends
        """Release a shared value (best effort)."""

    @abstractmethod
    def close(self, *, kill: bool = False) -> None:
        """Stop the workers (``kill``: at once, as on Ctrl-C); pending futures are cancelled."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.close(kill=exc_type is not None and issubclass(exc_type, KeyboardInterrupt))

    def describe(self) -> str:
        """One line for reports: ``local, 8 workers``."""
        return f"{self.kind}, {self.workers} worker{'s' if self.workers != 1 else ''}"


def map_in_order(
    executor: Executor | None, fn: Callable[..., Any], calls: Iterable[tuple[Any, ...]]
) -> Iterator[Any]:
    """``fn(*args)`` for each ``args`` of ``calls``, results yielded in the order of ``calls``.

    The streaming map of the data stages: ``calls`` is read lazily, at most ``workers + 1``
    tasks are running or queued, and at most twice that many results wait their turn, so
    memory stays flat whatever their number. A task that finishes frees its place at once,
    even when an earlier one is still running: a slow part (or a cluster that queued two
    tasks on one worker) does not leave the other workers idle. Results come in order, so
    what the caller merges never depends on where or when a task ran. A single call (or no
    executor) runs inline, in this process: a table of one part costs no round trip. A task
    that raises cancels the others and its exception is raised here.
    """
    todo = iter(calls)
    head = list(itertools.islice(todo, 2))
    if executor is None or len(head) < 2:
        for args in itertools.chain(head, todo):
            yield fn(*args)
        return
    running_limit = executor.workers + 1
    held_limit = 2 * running_limit
    pending: deque[Future[Any]] = deque()
    try:
        for args in itertools.chain(head, todo):
            while True:
                while pending and pending[0].done():
                    yield pending.popleft().result()
                running = [f for f in pending if not f.done()]
                if len(running) < running_limit and len(pending) < held_limit:
                    break
                wait(running, return_when=FIRST_COMPLETED)
            pending.append(executor.submit(fn, *args))
        while pending:
            yield pending.popleft().result()
    finally:
        if pending:
            executor.cancel(list(pending))


def on_this_machine(address: str | None) -> bool:
    """Whether a Dask cluster's workers run on this machine: a ``LocalCluster`` (no address),
    or a scheduler on a loopback address (``tcp://127.0.0.1:8786``, ``localhost``)."""
    if not address:
        return True
    from urllib.parse import urlsplit

    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = _read_cpu_max().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError, ZeroDivisionError):
        pass
    return max(1, cores)


def _read_cpu_max() -> str:
    """The cgroup (v2) CPU quota: ``"max 100000"`` or ``"<quota> <period>"`` in microseconds."""
    return Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii")


def resolve_workers(workers: int | Literal["auto"]) -> int:
    """``auto`` is :func:`available_cores`."""
    if workers == "auto":
        return available_cores()
    if workers < 1:
        raise ModelyardError(
            "the number of workers must be at least 1",
            where="compute.workers",
            found=str(workers),
            fix="Use a positive number, or auto (one per core).",
        )
    return workers


def open_executor(
    kind: ExecutorKind = "local",
    *,
    workers: int | Literal["auto"] = "auto",
    address: str | None = None,
    warm: tuple[str, ...] = (),
) -> Executor:
    """An executor of ``kind``; back-ends start on first use, so an unused one costs nothing.

    ``warm`` names modules a new local worker imports before its first task.
    """
    if kind == "serial":
        from modelyard.compute.serial import SerialExecutor

        return SerialExecutor()
    if kind == "local":
        from modelyard.compute.pool import ProcessPool

        n = resolve_workers(workers)  # a wrong count fails here, before any work is done
        return _Lazy(lambda: ProcessPool(n, warm=warm), "local")
    if kind == "dask":
        from modelyard.compute.cluster import DaskExecutor

        size = None if address else resolve_workers(workers)
        lazy = _Lazy(lambda: DaskExecutor(address=address, workers=size), "dask")
        lazy.local_files = on_this_machine(address)
        return lazy
    raise ModelyardError(
        f"unknown executor '{kind}'",
        where="compute.executor",
        expected="serial, local or dask",
        found=repr(kind),
    )


class _Lazy(Executor):
    """Starts the real executor on first use: a cached run starts no process."""

    def __init__(self, start: Callable[[], Executor], kind: ExecutorKind) -> None:
        self._start = start
        self._real: Executor | None = None
        self.kind = kind

    @property
    def real(self) -> Executor:
        if self._real is None:
            self._real = self._start()
        return self._real

    @property
    def workers(self) -> int:
        return self.real.workers

    def start(self) -> None:
        self.real.start()

    def share(self, value: Any) -> Shared:
        return self.real.share(value)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        return self.real.submit(fn, *args)

    def submit_alone(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        return self.real.submit_alone(fn, *args)

    def cancel(self, futures: Iterable[Future[Any]]) -> None:
        if self._real is not None:
            self._real.cancel(futures)

    def unshare(self, shared: Shared) -> None:
        if self._real is not None:
            self._real.unshare(shared)

    def close(self, *, kill: bool = False) -> None:
        if self._real is not None:
            self._real.close(kill=kill)
            self._real = None

    def describe(self) -> str:
        return self.real.describe()

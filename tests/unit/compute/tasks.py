"""Task functions for the compute tests, in a module every worker can import.

Tasks travel by reference (module and name), so they must not live in a test's ``__main__``:
local pool workers import them through the driver's ``sys.path`` (the pool hands it over),
Dask ``LocalCluster`` workers are spawned with it, and the integration cluster's workers get the
repository root on ``PYTHONPATH``.

Tasks that block wait for a *release file* the test creates, never for a fixed time, and give
up after ``timeout`` seconds so that a broken executor fails a test instead of hanging it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

LOADS: dict[str, int] = {}
"""How many times this process has unpickled the :class:`Counted` value of each key."""


def add(a: float, b: float) -> float:
    return a + b


def dot(matrix: np.ndarray, seed: int) -> list[float]:
    """A little floating-point work on a shared array: identical bits wherever it runs."""
    vector = np.random.default_rng(seed).normal(size=matrix.shape[1])
    return [float(v) for v in np.tanh(matrix @ vector).cumsum()]


def fail(message: str) -> None:
    raise ValueError(message)


def whoami() -> int:
    return os.getpid()


def workers_beside_me() -> tuple[int, list[int]]:
    """This process's pid, and those of the other live workers of its pool (from /proc: the
    processes whose stderr is a log in the same pool folder as this one's)."""
    me = os.getpid()
    folder = Path("/proc/self/fd/2").readlink().parent
    others = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            log = (entry / "fd" / "2").readlink()
            state = (entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if log.parent == folder and state != "Z":
            others.append(int(entry.name))
    return me, sorted(others)


def heavy_modules() -> list[str]:
    """The ML libraries this process has imported so far."""
    import sys

    return sorted(m for m in ("sklearn", "scipy", "pandas", "lightgbm") if m in sys.modules)


def load_openmp() -> None:
    """Load an OpenMP runtime, as a model library does (the system's libgomp: scikit-learn
    would take seconds to import)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("gomp")
    if name is None:  # pragma: no cover - no system libgomp: scikit-learn brings its own
        import sklearn.ensemble  # noqa: F401
    else:
        ctypes.CDLL(name)


def thread_info() -> dict[str, Any]:
    """The native thread pools this task would use, and the OpenMP variable it sees."""
    import polars as pl
    from threadpoolctl import threadpool_info

    load_openmp()

    return {
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "polars": pl.thread_pool_size(),
        "pools": {
            f"{p['internal_api']}:{p['filepath']}": p["num_threads"] for p in threadpool_info()
        },
    }


def environment(name: str) -> str | None:
    return os.environ.get(name)


def wait_for(release: str, value: Any = None, timeout: float = 60.0) -> Any:
    """Return ``value`` once ``release`` exists (TimeoutError after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not Path(release).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} was never created")
        time.sleep(0.02)
    return value


def announce_and_wait(announce: str, release: str, value: Any = None, timeout: float = 60.0) -> Any:
    """Write this process's pid to ``announce`` (atomically), then :func:`wait_for`."""
    tmp = Path(f"{announce}.{os.getpid()}.tmp")
    tmp.write_text(str(os.getpid()), encoding="ascii")
    tmp.replace(announce)
    return wait_for(release, value, timeout)


def kill_self() -> None:
    """Die as an out-of-memory kill would: SIGKILL, no cleanup."""
    os.kill(os.getpid(), signal.SIGKILL)


def kill_self_once(marker: str) -> str:
    """Die the first time (leaving ``marker``); a re-run answers ``"re-run"``."""
    if Path(marker).exists():
        return "re-run"
    Path(marker).touch()
    kill_self()
    return "unreachable"


class Counted:
    """A value whose unpickling is counted in :data:`LOADS`, to see how often it is loaded."""

    def __init__(self, payload: Any, key: str) -> None:
        self.payload = payload
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (_load_counted, (self.payload, self.key))


def _load_counted(payload: Any, key: str) -> Counted:
    LOADS[key] = LOADS.get(key, 0) + 1
    return Counted(payload, key)


DASK_REDELIVERY = 2
"""Loads of a shared value a Dask worker may show: Dask drops a worker's copy it thinks no
task there needs, and the worker fetches it again later (seen once in a CI run); a load per
task would be many more."""


def probe_shared(value: Counted) -> tuple[int, int, int, Any]:
    """(pid, id of the value, loads of it in this process so far, payload)."""
    return os.getpid(), id(value), LOADS.get(value.key, 0), value.payload


def _cannot_rebuild() -> None:
    raise RuntimeError("this object cannot be rebuilt here")


class Unloadable:
    """Pickles fine, but unpickling it raises (a result the driver cannot load)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_cannot_rebuild, ())


def unloadable() -> Unloadable:
    return Unloadable()


class UnpicklableError(Exception):
    """An exception that holds a lock, so it cannot travel back from a worker."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_unpicklable(message: str) -> None:
    raise UnpicklableError(message)


def raise_missing_extra() -> None:
    """What a fit raises on a worker that lacks an optional library."""
    from modelyard.errors import MissingExtraError

    raise MissingExtraError("catboost", "catboost", "the catboost family")

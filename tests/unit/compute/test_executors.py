"""The compute layer's promises, checked on the three back-ends with real processes.

serial, local (a pool of ``python -m modelyard.compute.worker`` processes) and dask (a
``LocalCluster`` of two single-threaded worker processes): the same results; a task that raises
or a worker that dies fails that task only; shared values reach each worker once; cancel and
close leave nothing running. Task functions live in :mod:`tests.unit.compute.tasks`.

No wall-clock asserts: every wait has a generous timeout that only guards against a hang.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard import compute
from modelyard.compute import Executor, WorkerLost, available_cores, open_executor
from modelyard.compute.pool import ProcessPool
from modelyard.compute.task import error_text
from modelyard.errors import (
    ConfigError,
    DataError,
    MissingExtraError,
    ModelyardError,
    Problem,
    StepFailed,
)
from tests.conftest import skip_or_fail
from tests.unit.compute import tasks

RESULT_TIMEOUT = 120.0
"""Seconds a future may take before a test calls it a hang (the machine is shared and busy)."""

pytestmark = [
    pytest.mark.timeout(900),  # a last guard: each wait below has its own, shorter timeout
    pytest.mark.skipif(sys.platform != "linux", reason="the process checks read /proc"),
]

KINDS = ["serial", "local", "dask"]
REMOTE = ["local", "dask"]


def _need_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        skip_or_fail("distributed is not installed: uv sync --extra dask")


def _open(kind: str, workers: int = 2) -> Executor:
    if kind == "dask":
        _need_dask()
    return open_executor(kind, workers=workers)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def started() -> Iterator[dict[str, Executor]]:
    """Executors kept for the module, for tests that leave them as they found them (a Dask
    cluster takes seconds to start here)."""
    opened: dict[str, Executor] = {}
    try:
        yield opened
    finally:
        for ex in opened.values():
            ex.close(kill=True)


def _kept(started: dict[str, Executor], kind: str) -> Executor:
    if kind not in started:
        started[kind] = _open(kind)
    return started[kind]


@pytest.fixture(params=KINDS)
def executor(request: pytest.FixtureRequest, started: dict[str, Executor]) -> Executor:
    """Each back-end, shared by the tests that do not kill, cancel or close."""
    return _kept(started, request.param)


@pytest.fixture(params=REMOTE)
def remote(request: pytest.FixtureRequest, started: dict[str, Executor]) -> Executor:
    """The back-ends whose tasks run in other processes, shared likewise."""
    return _kept(started, request.param)


@pytest.fixture(params=REMOTE)
def fresh_remote(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """A new executor of each remote back-end, for tests that break or close it."""
    ex = _open(request.param)
    try:
        yield ex
    finally:
        ex.close(kill=True)


@pytest.fixture
def local() -> Iterator[Executor]:
    ex = _open("local")
    try:
        yield ex
    finally:
        ex.close(kill=True)


@pytest.fixture
def dask() -> Iterator[Executor]:
    ex = _open("dask")
    try:
        yield ex
    finally:
        ex.close(kill=True)


LOCAL = "dirty_decay_ms:30000,muzzy_decay_ms:30000"

# ---------------------------------------------------------------------------- helpers


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True  # not Linux: os.kill said it exists
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children() -> set[int]:
    """Live descendants of this process."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        found = psutil.Process().children(recursive=True)
        return {p.pid for p in found if alive(p.pid)}
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text(encoding="ascii")
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - mine
        mine |= frontier
    return {pid for pid in mine if alive(pid)}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = RESULT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def announced_pid(path: Path) -> int:
    wait_until(path.exists, f"a task announced itself in {path.name}")
    return int(path.read_text(encoding="ascii"))


def outcome(future: Future[Any]) -> Any:
    """The result, or the exception, of a future that must end."""
    try:
        return future.result(timeout=RESULT_TIMEOUT)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and not future.done():
            raise AssertionError("the task never ended: the executor hangs") from exc
        return exc


# ---------------------------------------------------------------------------- results


def test_the_three_backends_give_identical_results(started: dict[str, Executor]) -> None:
    matrix = np.random.default_rng(7).normal(size=(40, 12))
    expected = [tasks.dot(matrix, seed) for seed in range(6)]
    for kind in KINDS:
        ex = _kept(started, kind)
        shared = ex.share(matrix)
        futures = [ex.submit(tasks.dot, shared, seed) for seed in range(6)]
        sums = [ex.submit(tasks.add, i, 0.1) for i in range(6)]
        assert [f.result(timeout=RESULT_TIMEOUT) for f in futures] == expected, kind
        assert [f.result(timeout=RESULT_TIMEOUT) for f in sums] == [i + 0.1 for i in range(6)]


def test_a_raising_task_gives_its_exception_with_the_worker_traceback(executor: Executor) -> None:
    futures = [
        executor.submit(tasks.add, 1, 2),
        executor.submit(tasks.fail, "bad input 7"),
        executor.submit(tasks.add, 3, 4),
    ]
    assert futures[0].result(timeout=RESULT_TIMEOUT) == 3
    assert futures[2].result(timeout=RESULT_TIMEOUT) == 7
    exc = futures[1].exception(timeout=RESULT_TIMEOUT)
    assert isinstance(exc, ValueError)
    assert str(exc) == "bad input 7"
    [note] = exc.__notes__
    assert note.startswith("in the worker:")
    assert "tasks.py" in note and "in fail" in note
    assert error_text(exc).startswith("ValueError: bad input 7 (File ")
    assert executor.submit(tasks.add, 5, 5).result(timeout=RESULT_TIMEOUT) == 10


def test_a_modelyard_error_raised_in_a_task_arrives_as_itself(executor: Executor) -> None:
    """A worker without an optional library raises MissingExtraError: the user sees that, not
    a RuntimeError about pickling."""
    exc = executor.submit(tasks.raise_missing_extra).exception(timeout=RESULT_TIMEOUT)
    assert type(exc) is MissingExtraError
    assert "pip install 'modelyard[catboost]'" in str(exc)
    assert exc.fix is not None and "catboost" in exc.fix
    assert exc.__notes__[0].startswith("in the worker:")


def test_a_local_dask_cluster_claims_no_fixed_port() -> None:
    """Two runs at once start two LocalClusters: neither may want a fixed port (the second run
    would print "Port 8787 is already in use" on the user's terminal)."""
    _need_dask()
    with socket.socket() as sock, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with contextlib.suppress(OSError):  # taken already: just as good
            sock.bind(("127.0.0.1", 8787))
            sock.listen()
        ex = _open("dask", workers=1)
        try:
            assert ex.submit(tasks.add, 1, 1).result(timeout=RESULT_TIMEOUT) == 2
        finally:
            ex.close(kill=True)
    assert not [str(w.message) for w in seen if "8787" in str(w.message)]


@pytest.mark.parametrize(
    "make",
    [
        lambda: ModelyardError("what", where="here", expected="e", found="f", fix="do this"),
        lambda: DataError("unreadable", where="data.source"),
        lambda: MissingExtraError("catboost", "catboost", "the catboost family"),
        lambda: ConfigError(
            [Problem("modelyard.yaml:3", "data.path", "missing")], source="modelyard.yaml"
        ),
        lambda: StepFailed("train", ValueError("boom"), resume="modelyard run --from train"),
        lambda: WorkerLost("the worker died", where="compute.executor: local", found="signal 9"),
    ],
    ids=[
        "ModelyardError",
        "DataError",
        "MissingExtraError",
        "ConfigError",
        "StepFailed",
        "WorkerLost",
    ],
)
def test_modelyard_errors_survive_pickling(make: Callable[[], ModelyardError]) -> None:
    """As they travel back from a worker process: same type, same message, same fields."""
    error = make()
    error.add_note("in the worker: here")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.args == error.args
    assert (back.what, back.where, back.expected, back.found, back.fix) == (
        error.what,
        error.where,
        error.expected,
        error.found,
        error.fix,
    )
    assert back.__notes__ == ["in the worker: here"]


def test_an_exception_that_cannot_travel_arrives_as_text(remote: Executor) -> None:
    exc = remote.submit(tasks.raise_unpicklable, "holds a lock").exception(timeout=RESULT_TIMEOUT)
    assert exc is not None
    assert "UnpicklableError" in str(exc) and "holds a lock" in str(exc)
    assert any(n.startswith("in the worker:") for n in getattr(exc, "__notes__", []))
    assert remote.submit(tasks.add, 1, 1).result(timeout=RESULT_TIMEOUT) == 2


def test_a_result_the_driver_cannot_load_fails_that_task_only(remote: Executor) -> None:
    bad = remote.submit(tasks.unloadable)
    good = remote.submit(tasks.add, 2, 3)
    exc = outcome(bad)
    assert isinstance(exc, Exception)
    assert "cannot be rebuilt" in str(exc) or "cannot be rebuilt" in repr(exc.__cause__)
    assert good.result(timeout=RESULT_TIMEOUT) == 5
    assert remote.submit(tasks.add, 4, 4).result(timeout=RESULT_TIMEOUT) == 8


def test_tasks_run_single_threaded(executor: Executor) -> None:
    """Native pools already loaded are capped (serial: in this process), and a worker process
    starts with the thread variables at 1, so libraries it loads later start capped too."""
    tasks.load_openmp()  # loaded here too, as the pipeline has before its first fit

    info = executor.submit(tasks.thread_info).result(timeout=RESULT_TIMEOUT)
    assert any(key.startswith("openmp:") for key in info["pools"])
    assert any(key.startswith("openblas:") for key in info["pools"])
    assert set(info["pools"].values()) == {1}, info["pools"]
    if executor.kind != "serial":  # serial runs in this process: its environment is the user's
        assert info["omp"] == "1"
        assert info["polars"] == 1  # sized once, when polars is imported


def test_local_workers_keep_the_pages_their_tasks_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """polars' allocator in a local worker keeps freed pages (the next part reuses them):
    after polars' own default, which its import has put in this process's environment."""
    import polars  # noqa: F401 - sets the variable, as in any driver

    from modelyard.compute import ALLOCATOR_VARIABLE, LOCAL_ALLOCATOR

    ex = _open("local")
    try:
        got = ex.submit(tasks.environment, ALLOCATOR_VARIABLE).result(timeout=RESULT_TIMEOUT)
    finally:
        ex.close(kill=True)
    assert got.startswith("dirty_decay_ms:500") and got.endswith("," + LOCAL_ALLOCATOR)


def test_dask_workers_keep_glibcs_own_mmap_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which pins glibc's
    mmap threshold: the profile's tasks then spent three times the system time. A
    LocalCluster modelyard starts leaves it unset."""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    ex = _open("dask", workers=1)
    try:
        got = ex.submit(tasks.environment, "MALLOC_TRIM_THRESHOLD_").result(timeout=RESULT_TIMEOUT)
    finally:
        ex.close(kill=True)
    assert got is None
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # a nanny sets it here before spawning


def test_a_trim_threshold_the_user_configured_for_dask_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _need_dask()
    import dask

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    key = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
    ex = _open("dask", workers=1)
    try:
        with dask.config.set({key: 1 << 20}):  # the cluster starts with the first task
            future = ex.submit(tasks.environment, "MALLOC_TRIM_THRESHOLD_")
        got = future.result(timeout=RESULT_TIMEOUT)
    finally:
        ex.close(kill=True)
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)  # the nanny put it here
    assert got == str(1 << 20)


@pytest.mark.parametrize(
    ("driver", "worker"),
    [
        (None, LOCAL),
        ("", LOCAL),
        (
            "dirty_decay_ms:500,muzzy_decay_ms:1000",
            f"dirty_decay_ms:500,muzzy_decay_ms:1000,{LOCAL}",
        ),
        (
            "dirty_decay_ms:500,muzzy_decay_ms:1000,thp:always",
            f"dirty_decay_ms:500,muzzy_decay_ms:1000,thp:always,{LOCAL}",
        ),
        (
            "dirty_decay_ms:500,muzzy_decay_ms:1000,dirty_decay_ms:0",
            "dirty_decay_ms:500,muzzy_decay_ms:1000,dirty_decay_ms:0",
        ),
        ("muzzy_decay_ms:0", "muzzy_decay_ms:0"),
    ],
)
def test_a_decay_the_user_chose_is_kept(driver: str | None, worker: str) -> None:
    from modelyard.compute import local_allocator

    assert local_allocator(driver) == worker


def test_a_worker_imports_no_ml_library_before_a_task_needs_one(remote: Executor) -> None:
    """Starting a worker is cheap (a cancelled fit's worker is replaced): the compute layer
    itself imports no ML library."""
    assert remote.submit(tasks.heavy_modules).result(timeout=RESULT_TIMEOUT) == []


def test_local_workers_import_what_the_driver_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local: Executor
) -> None:
    """A task module found through the driver's sys.path (a script's folder, a test root) is
    found by the workers too, wherever they were started from."""
    name = f"driver_only_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    assert local.submit(module.triple, 5).result(timeout=RESULT_TIMEOUT) == 15


# ---------------------------------------------------------------------------- shared values


def test_share_delivers_the_value_once_per_worker(executor: Executor) -> None:
    value = tasks.Counted({"rows": [1, 2, 3]}, uuid.uuid4().hex)
    shared = executor.share(value)
    probes = [executor.submit(tasks.probe_shared, shared) for _ in range(8)]
    seen = [f.result(timeout=RESULT_TIMEOUT) for f in probes]
    assert {payload["rows"][2] for *_, payload in seen} == {3}
    if executor.kind == "serial":
        assert {obj for _, obj, _, _ in seen} == {id(value)}  # the value itself, no copy
        return
    by_pid: dict[int, set[tuple[int, int]]] = {}
    for pid, obj, loads, _ in seen:
        by_pid.setdefault(pid, set()).add((obj, loads))
    assert os.getpid() not in by_pid
    for pid, objects in by_pid.items():
        if executor.kind == "dask":  # see tasks.DASK_REDELIVERY
            loads = {n for _, n in objects}
            assert loads <= set(range(1, tasks.DASK_REDELIVERY + 1)), f"worker {pid} reloads it"
        else:
            assert objects == {(next(iter(objects))[0], 1)}, f"worker {pid} loaded it again"


def test_unshare_leaves_other_shared_values_usable(executor: Executor) -> None:
    first = executor.share(tasks.Counted("first", uuid.uuid4().hex))
    second = executor.share(tasks.Counted("second", uuid.uuid4().hex))
    assert executor.submit(tasks.probe_shared, first).result(timeout=RESULT_TIMEOUT)[3] == "first"
    executor.unshare(first)
    again = executor.submit(tasks.probe_shared, second).result(timeout=RESULT_TIMEOUT)
    assert again[3] == "second"


# ---------------------------------------------------------------------------- cancel


def test_cancel_drops_queued_tasks(remote: Executor, tmp_path: Path) -> None:
    release = tmp_path / "release"
    blockers = [
        remote.submit(tasks.announce_and_wait, str(tmp_path / f"b{i}"), str(release), i)
        for i in range(2)
    ]
    for i in range(2):
        announced_pid(tmp_path / f"b{i}")  # both workers are busy: what follows is queued
    queued = [remote.submit(tasks.add, i, 100) for i in range(3)]
    remote.cancel(queued[:2])
    release.touch()
    assert [b.result(timeout=RESULT_TIMEOUT) for b in blockers] == [0, 1]
    assert queued[2].result(timeout=RESULT_TIMEOUT) == 102
    assert all(f.cancelled() for f in queued[:2])


def test_cancel_of_a_running_local_task_replaces_its_worker(
    local: Executor, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    running = local.submit(tasks.announce_and_wait, str(tmp_path / "a"), str(release), "a")
    other = local.submit(tasks.announce_and_wait, str(tmp_path / "b"), str(tmp_path / "go-b"), "b")
    pid = announced_pid(tmp_path / "a")
    announced_pid(tmp_path / "b")
    local.cancel([running])
    assert running.cancelled()
    wait_until(lambda: not alive(pid), "the cancelled task's worker is gone")
    (tmp_path / "go-b").touch()
    assert other.result(timeout=RESULT_TIMEOUT) == "b"
    # the pool is whole again: two workers, one of them new, run two tasks side by side
    later = [
        local.submit(tasks.announce_and_wait, str(tmp_path / f"c{i}"), str(release), i)
        for i in range(2)
    ]
    pids = {announced_pid(tmp_path / f"c{i}") for i in range(2)}
    assert len(pids) == 2 and pid not in pids
    release.touch()
    assert [f.result(timeout=RESULT_TIMEOUT) for f in later] == [0, 1]
    assert local.workers == 2


def test_cancel_of_a_running_dask_task_drops_its_result(
    started: dict[str, Executor], tmp_path: Path
) -> None:
    dask = _kept(started, "dask")
    release = tmp_path / "release"
    running = dask.submit(tasks.announce_and_wait, str(tmp_path / "a"), str(release), "a")
    announced_pid(tmp_path / "a")
    dask.cancel([running])
    assert running.cancelled()
    release.touch()
    assert dask.submit(tasks.add, 1, 2).result(timeout=RESULT_TIMEOUT) == 3


def test_cancel_on_serial_is_harmless() -> None:
    with _open("serial") as ex:
        done = ex.submit(tasks.add, 1, 2)
        ex.cancel([done])
        assert done.result() == 3


def test_a_task_run_alone_waits_for_the_others_and_has_the_machine_to_itself(
    local: Executor, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    before = [
        local.submit(tasks.announce_and_wait, str(tmp_path / f"b{i}"), str(release), i)
        for i in range(2)
    ]
    old = {announced_pid(tmp_path / f"b{i}") for i in range(2)}
    alone = local.submit_alone(tasks.workers_beside_me)
    after = local.submit(tasks.whoami)
    release.touch()
    assert [f.result(timeout=RESULT_TIMEOUT) for f in before] == [0, 1]
    pid, beside = alone.result(timeout=RESULT_TIMEOUT)
    assert beside == []  # the other workers were stopped: their memory is free for it
    assert pid not in old  # a fresh process: no heap left over from earlier tasks
    assert after.result(timeout=RESULT_TIMEOUT) != pid  # it ran after, on a worker of the pool
    wait_until(lambda: not alive(pid), "the alone task's worker is gone")
    # the pool is whole again, with fresh workers (each held by its task until both have
    # announced: with the first release, one worker could take both tasks in turn)
    again = tmp_path / "release-again"
    later = [
        local.submit(tasks.announce_and_wait, str(tmp_path / f"c{i}"), str(again), i)
        for i in range(2)
    ]
    pids = {announced_pid(tmp_path / f"c{i}") for i in range(2)}
    again.touch()
    assert len(pids) == 2 and not pids & (old | {pid})
    assert [f.result(timeout=RESULT_TIMEOUT) for f in later] == [0, 1]


def test_a_task_run_alone_that_fails_or_dies_leaves_the_pool_whole(
    local: Executor, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="nope"):
        local.submit_alone(tasks.fail, "nope").result(timeout=RESULT_TIMEOUT)
    assert isinstance(outcome(local.submit_alone(tasks.kill_self)), WorkerLost)
    release = tmp_path / "release"
    both = [
        local.submit(tasks.announce_and_wait, str(tmp_path / f"c{i}"), str(release), i)
        for i in range(2)
    ]
    assert len({announced_pid(tmp_path / f"c{i}") for i in range(2)}) == 2
    release.touch()
    assert [f.result(timeout=RESULT_TIMEOUT) for f in both] == [0, 1]


def test_a_task_run_alone_is_a_task_like_any_other_elsewhere(executor: Executor) -> None:
    assert executor.submit_alone(tasks.add, 40, 2).result(timeout=RESULT_TIMEOUT) == 42


# ---------------------------------------------------------------------------- dead workers


def test_a_local_worker_killed_mid_task_fails_that_task_only(
    local: Executor, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    doomed = local.submit(tasks.announce_and_wait, str(tmp_path / "a"), str(release), "a")
    survivor = local.submit(tasks.announce_and_wait, str(tmp_path / "b"), str(release), "b")
    queued = local.submit(tasks.add, 20, 22)
    pid = announced_pid(tmp_path / "a")
    announced_pid(tmp_path / "b")
    os.kill(pid, signal.SIGKILL)
    exc = outcome(doomed)
    assert isinstance(exc, WorkerLost), exc
    assert "signal 9" in str(exc)
    assert queued.result(timeout=RESULT_TIMEOUT) == 42  # ran on the replacement worker
    release.touch()
    assert survivor.result(timeout=RESULT_TIMEOUT) == "b"
    assert local.submit(tasks.add, 1, 1).result(timeout=RESULT_TIMEOUT) == 2


def test_a_task_that_kills_its_worker_gives_worker_lost(local: Executor) -> None:
    lost = local.submit(tasks.kill_self)
    fine = [local.submit(tasks.add, i, i) for i in range(4)]
    assert isinstance(outcome(lost), WorkerLost)
    assert [f.result(timeout=RESULT_TIMEOUT) for f in fine] == [0, 2, 4, 6]


@pytest.mark.slow
def test_a_killed_dask_worker_reruns_its_task_or_fails_it(dask: Executor, tmp_path: Path) -> None:
    once = dask.submit(tasks.kill_self_once, str(tmp_path / "died"))
    result = outcome(once)
    assert result == "re-run" or isinstance(result, WorkerLost), result
    release = tmp_path / "release"
    victim = dask.submit(tasks.announce_and_wait, str(tmp_path / "a"), str(release), "a")
    os.kill(announced_pid(tmp_path / "a"), signal.SIGKILL)
    release.touch()
    result = outcome(victim)
    assert result == "a" or isinstance(result, WorkerLost), result
    assert dask.submit(tasks.add, 2, 2).result(timeout=RESULT_TIMEOUT) == 4


@pytest.mark.slow
def test_a_task_that_keeps_killing_dask_workers_gives_worker_lost() -> None:
    _need_dask()
    import dask.config

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        ex = _open("dask")
        ex.submit(tasks.add, 0, 0).result(timeout=RESULT_TIMEOUT)  # the scheduler reads it now
    try:
        exc = outcome(ex.submit(tasks.kill_self))
        assert isinstance(exc, WorkerLost), exc
        assert "died" in str(exc)
        assert ex.submit(tasks.add, 3, 3).result(timeout=RESULT_TIMEOUT) == 6
    finally:
        ex.close(kill=True)


def test_a_pool_that_cannot_replace_a_worker_fails_its_tasks_instead_of_hanging(
    tmp_path: Path,
) -> None:
    pool = ProcessPool(1)
    try:
        release = tmp_path / "release"
        running = pool.submit(tasks.announce_and_wait, str(tmp_path / "a"), str(release))
        queued = pool.submit(tasks.add, 1, 1)
        pid = announced_pid(tmp_path / "a")

        def no_more_processes() -> Any:
            raise OSError(11, "Resource temporarily unavailable")

        pool._spawn = no_more_processes  # type: ignore[method-assign]
        os.kill(pid, signal.SIGKILL)
        assert isinstance(outcome(running), WorkerLost)
        exc = outcome(queued)
        assert isinstance(exc, ModelyardError), exc
        assert "Resource temporarily unavailable" in str(exc)
        with pytest.raises(ModelyardError, match="Resource temporarily unavailable"):
            pool.submit(tasks.add, 2, 2)
    finally:
        pool.close(kill=True)


# ---------------------------------------------------------------------------- close and start


def test_close_stops_every_worker_and_removes_the_temporary_folder(fresh_remote: Executor) -> None:
    before = children()
    shared = fresh_remote.share(tasks.Counted("x", uuid.uuid4().hex))
    pids = {
        f.result(timeout=RESULT_TIMEOUT)
        for f in [fresh_remote.submit(tasks.whoami) for _ in range(6)]
    }
    started = children() - before
    assert pids <= started
    folder = Path(shared.ref).parent if fresh_remote.kind == "local" else None
    if folder is not None:
        assert folder.is_dir() and folder.name.startswith("modelyard-pool-")
    fresh_remote.close()
    assert not any(alive(pid) for pid in started)
    assert children() <= before
    if folder is not None:
        assert not folder.exists()


def test_close_with_kill_stops_running_tasks_at_once(
    fresh_remote: Executor, tmp_path: Path
) -> None:
    before = children()
    running = fresh_remote.submit(
        tasks.announce_and_wait, str(tmp_path / "a"), str(tmp_path / "never")
    )
    pid = announced_pid(tmp_path / "a")
    fresh_remote.close(kill=True)
    assert running.cancelled() or isinstance(outcome(running), Exception)
    wait_until(lambda: not alive(pid), "the running task's worker is gone")
    assert children() <= before


@pytest.mark.parametrize(("error", "kill"), [(KeyboardInterrupt, True), (ValueError, False)])
def test_leaving_the_with_block_closes_and_kills_only_on_ctrl_c(
    tmp_path: Path, error: type[BaseException], kill: bool
) -> None:
    """A KeyboardInterrupt closes with ``kill`` (at once); another error lets workers stop."""
    before = children()
    closes: list[bool] = []
    with pytest.raises(error), _open("local") as ex:
        ex.submit(tasks.announce_and_wait, str(tmp_path / "a"), str(tmp_path / "never"))
        pid = announced_pid(tmp_path / "a")
        real = ex.real  # type: ignore[attr-defined]
        close = real.close

        def spy(*, kill: bool = False) -> None:
            closes.append(kill)
            close(kill=kill)

        real.close = spy
        if not kill:
            (tmp_path / "never").touch()  # a graceful stop lets the running task finish
        raise error
    assert closes == [kill]
    assert not alive(pid)
    assert children() <= before


def test_a_closed_pool_refuses_new_tasks() -> None:
    pool = ProcessPool(1)
    pool.close()
    pool.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(tasks.add, 1, 1)


@pytest.mark.parametrize("kind", REMOTE)
def test_an_executor_starts_nothing_until_first_use(kind: str) -> None:
    before = children()
    ex = _open(kind)
    try:
        assert children() == before
        ex.cancel([])
        assert children() == before
        assert ex.submit(tasks.add, 1, 1).result(timeout=RESULT_TIMEOUT) == 2
        assert children() > before
    finally:
        ex.close()
    assert children() <= before
    unused = _open(kind)
    unused.close()
    assert children() <= before


# ---------------------------------------------------------------------------- cores and errors


def test_available_cores_is_the_affinity_here() -> None:
    cores = available_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert cores <= len(os.sched_getaffinity(0))
    assert compute.resolve_workers("auto") == cores
    assert compute.resolve_workers(3) == 3


@given(
    affinity=st.integers(1, 64),
    quota=st.one_of(st.just("max"), st.integers(1_000, 6_400_000).map(str)),
    period=st.sampled_from([50_000, 100_000, 1_000_000]),
)
def test_available_cores_honours_the_cgroup_quota(affinity: int, quota: str, period: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "sched_getaffinity", lambda _: set(range(affinity)), raising=False)
        mp.setattr(compute, "_read_cpu_max", lambda: f"{quota} {period}\n")
        cores = available_cores()
    expected = affinity if quota == "max" else min(affinity, max(1, int(quota) // period))
    assert cores == expected


def test_available_cores_ignores_an_unreadable_cgroup_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2}, raising=False)
    for text in ["", "garbage", "100000"]:
        monkeypatch.setattr(compute, "_read_cpu_max", lambda text=text: text)
        assert available_cores() == 3

    def missing() -> str:
        raise FileNotFoundError("/sys/fs/cgroup/cpu.max")

    monkeypatch.setattr(compute, "_read_cpu_max", missing)
    assert available_cores() == 3


def test_an_unknown_executor_is_a_clear_error() -> None:
    with pytest.raises(ModelyardError) as info:
        open_executor("ray")  # type: ignore[arg-type]
    err = info.value
    assert err.where == "compute.executor"
    assert err.expected is not None and "serial, local or dask" in err.expected
    assert "'ray'" in str(err)


@pytest.mark.parametrize("kind", ["local", "dask"])
@pytest.mark.parametrize("workers", [0, -2])
def test_too_few_workers_is_a_clear_error_at_once(kind: str, workers: int) -> None:
    before = children()
    with pytest.raises(ModelyardError) as info:
        open_executor(kind, workers=workers)  # type: ignore[arg-type]
    assert info.value.where == "compute.workers"
    assert str(workers) in str(info.value) and "auto" in str(info.value)
    assert children() == before


def test_a_dask_address_that_answers_nothing_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _need_dask()
    from modelyard.compute import cluster
    from tests.integration.dask_cluster import free_port

    monkeypatch.setattr(cluster, "_CONNECT_SECONDS", 2)
    ex = open_executor("dask", address=f"tcp://127.0.0.1:{free_port()}")
    with pytest.raises(ModelyardError) as info:
        ex.submit(tasks.add, 1, 1)
    assert info.value.where == "compute.address"
    assert info.value.fix is not None and "dask scheduler" in info.value.fix


def test_the_module_docstring_example_runs() -> None:
    import doctest

    failures, tried = doctest.testmod(compute, verbose=False, report=False)
    assert tried > 0 and failures == 0

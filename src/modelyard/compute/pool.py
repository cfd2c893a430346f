"""The local executor: a pool of worker processes on this machine.

Each worker is a fresh ``python -m modelyard.compute.worker`` process (not a fork, and not
``multiprocessing``'s spawn, which re-runs the caller's ``__main__``) that reads tasks from its
stdin and writes results to its stdout (anything the task prints goes to a log instead). A
thread here hands tasks to idle workers and reads results, so the pool knows exactly which
task each worker runs:

- a task that raises sets its future's exception; the worker carries on;
- a worker that dies (killed, out of memory, a crash in native code) fails only the task it was
  running, with :class:`~modelyard.compute.WorkerLost`, and is replaced;
- :meth:`ProcessPool.cancel` drops queued tasks and replaces the workers of running ones;
- workers run in their own session: a Ctrl-C in the terminal reaches this process only, which
  stops them (:meth:`ProcessPool.close` with ``kill``) so nothing is left behind;
- a driver killed outright (SIGKILL, a crash) cannot stop them: they notice that their parent
  is gone and exit within a second, and the next pool removes the dead one's folder.

Shared values are pickled once to a file in a private temporary folder; each worker loads a
value the first time a task needs it and keeps the few most recent ones. Workers get this
process's ``sys.path``, so a task function importable here is importable there.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from modelyard.compute import (
    ALLOCATOR_VARIABLE,
    SYS_PATH_VARIABLE,
    THREAD_VARIABLES,
    Executor,
    Shared,
    WorkerLost,
    local_allocator,
)
from modelyard.errors import ModelyardError


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    send: Connection
    conn: Connection
    """Results come in here; end of file means the worker died."""
    log: Path
    task: int | None = None


@dataclass
class _Task:
    id: int
    payload: bytes
    future: Future[Any]
    alone: bool = False
    """Run by itself, in a fresh worker, the others stopped (:meth:`Executor.submit_alone`)."""
    worker: _Worker | None = field(default=None, repr=False)


class ProcessPool(Executor):
    """``workers`` processes; see the module docstring."""

    kind = "local"

    def __init__(self, workers: int, *, warm: tuple[str, ...] = ()) -> None:
        self._n = workers
        self._warm = warm
        _sweep_stale_folders()
        self._dir = Path(tempfile.mkdtemp(prefix=_PREFIX))
        self._claim = _claim(self._dir)
        # Re-entrant: a Ctrl-C that lands between a ``with self._lock`` acquiring and entering
        # its block can leave the lock held by the main thread (a CPython race); close(), in
        # that same thread, must still get it instead of hanging the user's Ctrl-C.
        self._lock = threading.RLock()
        self._queue: collections.deque[_Task] = collections.deque()
        self._tasks: dict[int, _Task] = {}
        self._next_id = 0
        self._closed = False
        self._broken: Callable[[], ModelyardError] | None = None
        """Set when the manager thread failed: makes the error every task then gets."""
        self._wake_r, self._wake_w = os.pipe()
        self._workers: list[_Worker] = []
        self._alone = False
        """Whether the one worker is running a task alone (the others are stopped)."""
        try:
            for _ in range(workers):
                self._workers.append(self._spawn())
        except BaseException:
            self._stop_workers(kill=True)
            self._cleanup()
            raise
        self._thread = threading.Thread(target=self._manage, name="modelyard-pool", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ interface

    @property
    def workers(self) -> int:
        return self._n

    def share(self, value: Any) -> Shared:
        token = uuid.uuid4().hex
        path = self._dir / f"{token}.pkl"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        return Shared(token, str(path))

    def unshare(self, shared: Shared) -> None:
        Path(str(shared.ref)).unlink(missing_ok=True)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        return self._enqueue(fn, args, alone=False)

    def submit_alone(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        return self._enqueue(fn, args, alone=True)

    def _enqueue(
        self, fn: Callable[..., Any], args: tuple[Any, ...], *, alone: bool
    ) -> Future[Any]:
        future: Future[Any] = Future()
        wire = [("shared", a.token, a.ref) if isinstance(a, Shared) else ("value", a) for a in args]
        body = pickle.dumps((fn, wire), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:  # one section: a close or a failure in between cannot strand the task
            if self._broken is not None:
                raise self._broken()
            if self._closed:
                raise RuntimeError("the pool is closed")
            task = _Task(self._next_id, self._next_id.to_bytes(8, "big") + body, future, alone)
            self._next_id += 1
            self._tasks[task.id] = task
            self._queue.append(task)
        self._wake()
        return future

    def cancel(self, futures: Iterable[Future[Any]]) -> None:
        wanted = {id(f) for f in futures}
        to_kill: list[_Worker] = []
        with self._lock:
            for task in list(self._tasks.values()):
                if id(task.future) not in wanted or task.future.done():
                    continue
                del self._tasks[task.id]
                if task.worker is None:
                    self._queue.remove(task)
                else:
                    to_kill.append(task.worker)
                task.future.cancel()  # futures stay pending while they run, so this works
        for worker in to_kill:
            worker.process.kill()  # the manager sees it die and replaces it
        self._wake()

    def close(self, *, kill: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pending = list(self._tasks.values())
            self._tasks.clear()
            self._queue.clear()
        for task in pending:
            task.future.cancel()
        self._wake()
        self._thread.join(timeout=10)
        self._stop_workers(kill=kill)
        self._cleanup()

    # ------------------------------------------------------------------ workers

    def _spawn(self) -> _Worker:
        env = dict(os.environ)
        env.update({name: "1" for name in THREAD_VARIABLES})
        env[ALLOCATOR_VARIABLE] = local_allocator(env.get(ALLOCATOR_VARIABLE))
        env[SYS_PATH_VARIABLE] = json.dumps(sys.path)  # tasks import what this process can
        log = self._dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        with log.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "modelyard.compute.worker", *self._warm],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the driver only
            )
        assert process.stdin is not None and process.stdout is not None
        send = Connection(os.dup(process.stdin.fileno()), readable=False)
        conn = Connection(os.dup(process.stdout.fileno()), writable=False)
        process.stdin.close()
        process.stdout.close()
        return _Worker(process, send, conn, log)

    def _replace(self, dead: _Worker) -> None:
        code = dead.process.wait()
        with self._lock:
            task = self._tasks.pop(dead.task, None) if dead.task is not None else None
        if task is not None and not task.future.done():
            cause = f"signal {-code}" if code < 0 else f"exit status {code}"
            detail = _tail(dead.log)
            task.future.set_exception(
                WorkerLost(
                    f"the worker process running this task died ({cause})",
                    where="compute.executor: local",
                    found=detail or None,
                )
            )
        dead.conn.close()
        dead.send.close()
        dead.log.unlink(missing_ok=True)
        self._workers.remove(dead)
        if self._alone:  # it was the only worker
            self._alone = False
            self._restart_workers()
        elif not self._closed:
            self._workers.append(self._spawn())

    def _restart_workers(self) -> None:
        """After a task ran alone: the pool's workers again, fresh."""
        if not self._closed:
            self._workers.extend(self._spawn() for _ in range(self._n))

    def _stop_workers(self, *, kill: bool) -> None:
        for worker in self._workers:
            try:
                if kill:
                    worker.process.kill()
                else:
                    worker.send.send_bytes(b"")
            except OSError:
                pass
        for worker in self._workers:
            try:
                worker.process.wait(timeout=None if kill else 10)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker.conn.close()
            worker.send.close()
            worker.log.unlink(missing_ok=True)
        self._workers.clear()

    def _cleanup(self) -> None:
        for fd in (self._wake_r, self._wake_w, self._claim):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._dir, ignore_errors=True)

    # ------------------------------------------------------------------ the manager thread

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # closed
            os.write(self._wake_w, b"x")

    def _dispatch(self) -> None:
        """Hand queued tasks to idle workers, in order. A task to run alone waits for every
        running task to end; its worker is then the only one until it ends."""
        while True:
            with self._lock:
                while self._queue and self._queue[0].future.cancelled():
                    self._tasks.pop(self._queue.popleft().id, None)
                if not self._queue:
                    return
                idle = [w for w in self._workers if w.task is None]
                task = self._queue[0]
                if not idle or (task.alone and len(idle) < len(self._workers)):
                    return
                self._queue.popleft()
            if task.alone:
                self._stop_workers(kill=False)  # all idle: their memory goes back to the system
                worker = self._spawn()
                self._workers.append(worker)
                self._alone = True
            else:
                worker = idle[0]
            with self._lock:
                task.worker = worker
                worker.task = task.id
            with contextlib.suppress(OSError):  # a dead worker: its connection reports it next
                worker.send.send_bytes(task.payload)

    def _manage(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # no process can be started, or a bug: fail, never hang
            self._fail_everything(exc)

    def _fail_everything(self, exc: BaseException) -> None:
        def error() -> ModelyardError:
            return ModelyardError(
                "the local process pool stopped working",
                where="compute.executor: local",
                found=f"{type(exc).__name__}: {exc}",
                fix="Check the machine's free memory and process limits (ulimit -u), or set "
                "compute.executor: serial.",
            )

        with self._lock:
            self._broken = error
            pending = list(self._tasks.values())
            self._tasks.clear()
            self._queue.clear()
        for task in pending:
            with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                task.future.set_exception(error())

    def _serve(self) -> None:
        while not self._closed:
            self._dispatch()
            conns: dict[Any, _Worker] = {w.conn: w for w in self._workers}
            ready = wait([*conns, self._wake_r])
            for item in ready:
                if item == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except OSError:
                        return
                    continue
                worker = conns[item]
                try:
                    message = worker.conn.recv_bytes()
                except (EOFError, OSError):
                    if not self._closed:
                        self._replace(worker)
                    continue
                self._deliver(worker, message)

    def _deliver(self, worker: _Worker, message: bytes) -> None:
        try:
            task_id, ok, value = pickle.loads(message)
        except Exception as exc:  # the worker runs one task at a time: it is this one
            task_id, ok = worker.task, False
            value = ModelyardError(
                "the result of this task cannot be loaded here",
                where="compute.executor: local",
                found=f"{type(exc).__name__}: {exc}",
                fix="Return values that unpickle anywhere: plain data, arrays, frames, models.",
            )
        worker.task = None
        if self._alone:  # its worker goes with its heap; the pool's workers come back
            self._alone = False
            self._stop_workers(kill=False)
            self._restart_workers()
        with self._lock:
            task = self._tasks.pop(task_id, None)
        if task is None or task.future.done():
            return
        if ok:
            task.future.set_result(value)
        else:
            task.future.set_exception(value)


_PREFIX = "modelyard-pool-"
STALE_SECONDS = 60.0
"""A pool folder whose owner is gone is removed by the next pool, once this old."""


def _claim(folder: Path) -> int:
    """Hold a lock on ``folder`` for the pool's life: the kernel drops it when this process
    ends, however it ends, which is how the next pool knows the folder is abandoned."""
    fd = os.open(folder / ".owner", os.O_CREAT | os.O_RDWR, 0o600)
    with contextlib.suppress(ImportError):  # not POSIX: no sweeping
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _sweep_stale_folders() -> None:
    """Remove the folders (copies of shared data, worker logs) of pools whose process was
    killed or crashed before it could: their ``.owner`` lock is free, and not just made."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            fd = os.open(folder / ".owner", os.O_RDWR)
        except OSError:  # no lock file: not a pool of ours, or not yet claimed
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime < STALE_SECONDS:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its pool is alive
            continue
        else:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])

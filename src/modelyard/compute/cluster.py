"""The dask executor: tasks on a ``dask.distributed`` cluster (the ``modelyard[dask]`` extra).

With an address (``tcp://host:8786``) it connects to a running scheduler; without one it starts
a ``LocalCluster`` of single-threaded worker processes on 127.0.0.1 and stops it on close.
A shared value is the result of a task that returns it: each worker fetches it once, and
the scheduler computes it again if every worker that held it is lost (scattered data could not
be recovered: the tasks waiting on it would wait forever). Each task runs under the same
single-thread limits as on the local pool. A worker that dies has its task re-run elsewhere by
the scheduler; a task that keeps killing workers fails with
:class:`~modelyard.compute.WorkerLost`. A running task cannot be stopped: cancelling drops its
result.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from modelyard.compute import THREAD_VARIABLES, Executor, Shared, WorkerLost, on_this_machine
from modelyard.compute.task import call, portable
from modelyard.errors import MissingExtraError, ModelyardError

_CONNECT_SECONDS = 30

TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
"""Set by Dask's nannies in every worker process they start (``distributed.nanny.
pre-spawn-environ``), to 65536 by default: glibc then returns freed memory to the system at
once. Setting it also fixes glibc's mmap threshold at 128 KiB (left alone, it grows to the
size of the largest block freed), so every array of more than 128 KiB a task makes is mapped
afresh and its pages faulted in and zeroed again: the profile's per-part numpy work spends
three times the system time (bench/README.md). The workers of a ``LocalCluster`` modelyard
starts are left with glibc's default, as the local pool's are; see :func:`_spawn_config`."""

_DASK_TRIM_DEFAULT = 65536


def _spawn_config() -> dict[str, Any]:
    """Dask configuration for the nannies of a ``LocalCluster``: :data:`TRIM_VARIABLE` unset
    when it is Dask's default (a value the user configured is kept, as is one in the
    driver's environment, which the workers inherit)."""
    import dask

    key = f"distributed.nanny.pre-spawn-environ.{TRIM_VARIABLE}"
    if str(dask.config.get(key, None)) == str(_DASK_TRIM_DEFAULT):
        return {key: None}
    return {}


def _value(value: Any) -> Any:
    """The task behind a shared value (see :meth:`DaskExecutor.share`)."""
    return value


def _run(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(fn, args)
    except Exception as exc:  # one that cannot be pickled travels as text, as on the local pool
        error = portable(exc)
    # Dask pickles the chained exceptions too (pickle itself drops them): cut the chain, the
    # worker's traceback is in a note.
    error.__cause__ = error.__context__ = None
    raise error


class DaskExecutor(Executor):
    """See the module docstring; ``workers`` sizes the ``LocalCluster`` (no ``address``)."""

    kind = "dask"

    def __init__(self, *, address: str | None, workers: int | None) -> None:
        try:
            import distributed as typed_distributed
        except ImportError:
            raise MissingExtraError(
                "distributed", "dask", "compute.executor: dask (a Dask cluster)"
            ) from None
        distributed: Any = typed_distributed  # its API is only partly annotated
        self._client: Any = None
        self._cluster: Any = None
        self._links: dict[int, Any] = {}
        self.local_files = on_this_machine(address)
        try:
            if address:
                self._client = distributed.Client(address, timeout=_CONNECT_SECONDS)
            else:
                import dask

                with dask.config.set(_spawn_config()):  # read as the nannies are made
                    self._cluster = distributed.LocalCluster(
                        n_workers=workers or 1,
                        threads_per_worker=1,
                        processes=True,
                        env=dict.fromkeys(THREAD_VARIABLES, "1"),  # read by polars at import
                        host="127.0.0.1",
                        dashboard_address=None,
                        # no dashboard, but the scheduler's HTTP server (health, metrics)
                        # still starts: on any free port, not 8787 (a second run would warn)
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    )
                self._client = distributed.Client(self._cluster)
            self._client.wait_for_workers(1, timeout=_CONNECT_SECONDS)
        except RuntimeError as exc:
            if address or "failed to start" not in str(exc):
                raise
            raise ModelyardError(
                "the local Dask cluster could not start its worker processes",
                where="compute.executor: dask",
                found=str(exc),
                fix="Dask starts workers with multiprocessing's spawn, which re-runs the "
                "calling script: in a script, call Project.run() under "
                "`if __name__ == '__main__':`. Or start a cluster (dask scheduler, dask worker) "
                "and set compute.address.",
            ) from None
        except (OSError, TimeoutError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise ModelyardError(
                "cannot reach the Dask cluster",
                where="compute.address",
                found=f"{type(exc).__name__}: {exc}",
                fix="Check that the scheduler runs and its address is right "
                "(dask scheduler prints it), and that at least one worker joined it.",
            ) from None

    @property
    def workers(self) -> int:
        info = self._client.scheduler_info(n_workers=-1)
        return max(1, sum(int(w.get("nthreads", 1)) for w in info["workers"].values()))

    def describe(self) -> str:
        where = "LocalCluster" if self._cluster is not None else self._client.scheduler.address
        return f"dask ({where}), {self.workers} worker threads"

    def share(self, value: Any) -> Shared:
        # A task that returns the value, not scattered data: Dask keeps a broadcast copy on
        # only some workers (it drops replicas it thinks unneeded), cannot recover scattered
        # data once they are all lost, and the tasks waiting on it then wait forever. A task
        # result, the scheduler computes again. Each worker fetches it once, as it needs it.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Large object", UserWarning)  # it is the point
            future = self._client.submit(_value, value, pure=False)
        return Shared(uuid.uuid4().hex, future)

    def unshare(self, shared: Shared) -> None:
        shared.ref.release()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        values = [a.ref if isinstance(a, Shared) else a for a in args]
        remote = self._client.submit(_run, fn, *values, pure=False)
        future: Future[Any] = Future()
        self._links[id(future)] = remote

        def settle(done: Any) -> None:
            self._links.pop(id(future), None)
            if future.done():
                return
            try:
                if done.status == "finished":
                    future.set_result(done.result())
                elif done.status == "cancelled":
                    future.cancel()
                else:
                    future.set_exception(_translate(done.exception()))
            except BaseException as exc:  # e.g. a result this process cannot unpickle
                if not future.done():  # never leave the future pending: that would hang a run
                    future.set_exception(_unloadable(exc))

        remote.add_done_callback(settle)
        return future

    def cancel(self, futures: Iterable[Future[Any]]) -> None:
        remotes = []
        for future in futures:
            remote = self._links.pop(id(future), None)
            if remote is not None:
                remotes.append(remote)
            future.cancel()
        if remotes:
            self._client.cancel(remotes)

    def close(self, *, kill: bool = False) -> None:
        remotes = list(self._links.values())
        self._links.clear()
        try:
            if remotes:
                self._client.cancel(remotes)
            self._client.close(timeout=5 if kill else 30)
        finally:
            if self._cluster is not None:
                self._cluster.close(timeout=5 if kill else 30)
                self._cluster = None


def _unloadable(exc: BaseException) -> ModelyardError:
    return ModelyardError(
        "the result of this task cannot be loaded here",
        where="compute.executor: dask",
        found=f"{type(exc).__name__}: {exc}",
        fix="Check that the workers and this process have the same versions of the libraries "
        "the task returns objects of.",
    )


def _translate(exc: BaseException | None) -> BaseException:
    if exc is None:
        return RuntimeError("the task failed without an exception")
    if type(exc).__name__ == "KilledWorker":
        return WorkerLost(
            "the workers running this task died, each time it was retried",
            where="compute.executor: dask",
            found=str(exc),
        )
    return exc

"""The serial executor: every task runs in this process, at once, one after another."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from modelyard.compute import Executor, Shared
from modelyard.compute.task import call


class SerialExecutor(Executor):
    """Runs each task when it is submitted; its future is already done."""

    kind = "serial"

    @property
    def workers(self) -> int:
        return 1

    def share(self, value: Any) -> Shared:
        return Shared(uuid.uuid4().hex, value)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        values = [a.ref if isinstance(a, Shared) else a for a in args]
        try:
            result = call(fn, values)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def cancel(self, futures: Iterable[Future[Any]]) -> None:
        """Nothing is ever queued or running."""

    def close(self, *, kill: bool = False) -> None:
        """Nothing to stop."""

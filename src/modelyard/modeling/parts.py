"""Per-part work on a table of several parts: one task per part on the executor.

A stage over a multi-part :class:`~modelyard.data.table.Table` submits one task per part (a
module-level function of the part's path and small parameters, which writes its own output
part files and returns small statistics), keeps at most ``executor.workers + 1`` tasks in
flight (memory stays flat), and merges the results in part order, so the outcome never depends
on where or in which order the tasks ran. A table of one part runs its task inline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.compute import Executor


def map_parts(
    executor: Executor | None,
    fn: Callable[..., Any],
    calls: Sequence[tuple[Any, ...]],
) -> Iterator[Any]:
    """``fn(*args)`` for each ``args`` of ``calls``, results yielded in order. One call (or no
    executor) runs inline; otherwise on the executor, at most ``workers + 1`` in flight."""
    if executor is None or len(calls) <= 1:
        for args in calls:
            yield fn(*args)
        return
    limit = executor.workers + 1
    pending: deque[Future[Any]] = deque()
    todo = iter(calls)
    try:
        for args in todo:
            pending.append(executor.submit(fn, *args))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        if pending:
            executor.cancel(list(pending))

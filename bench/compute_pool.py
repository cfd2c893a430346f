"""How long the local executor takes to start, run a trivial task and close.

``ProcessPool(2)`` (the ``local`` back-end: two ``python -m modelyard.compute.worker``
processes) timed phase by phase, next to the standard library's ``ProcessPoolExecutor`` with
the ``spawn`` start method (fresh interpreters too). The pool is lazy inside ``open_executor``:
these costs are paid on the first ``submit``, not on opening.

    uv run python bench/compute_pool.py            # --repeat N --workers W
    uv run python bench/compute_pool.py --warm modelyard.modeling.search.fit   # as `run` does

``--warm`` names modules each worker imports before its first task (the pipeline warms the
model-fitting module, so the first fit does not pay for scikit-learn and the boosters).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from modelyard.compute.pool import ProcessPool

PHASES = ("start", "first task", "one task per worker", "close", "total")


WARM: tuple[str, ...] = ()


def _modelyard(workers: int) -> tuple[float, ...]:
    t0 = time.perf_counter()
    pool = ProcessPool(workers, warm=WARM)
    t1 = time.perf_counter()
    assert pool.submit(abs, -3).result() == 3
    t2 = time.perf_counter()
    assert [f.result() for f in [pool.submit(abs, -i) for i in range(workers)]] == list(
        range(workers)
    )
    t3 = time.perf_counter()
    pool.close()
    t4 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0


def _stdlib(workers: int) -> tuple[float, ...]:
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    t1 = time.perf_counter()
    assert pool.submit(abs, -3).result() == 3
    t2 = time.perf_counter()
    assert list(pool.map(abs, [-i for i in range(workers)])) == list(range(workers))
    t3 = time.perf_counter()
    pool.shutdown()
    t4 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0


def _report(name: str, run: Callable[[int], tuple[float, ...]], workers: int, repeat: int) -> Any:
    rows = [run(workers) for _ in range(repeat)]
    print(f"\n{name} ({workers} workers, {repeat} runs): median / min / max, ms")
    for i, phase in enumerate(PHASES):
        values = [r[i] * 1000 for r in rows]
        print(
            f"  {phase:>20}: {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warm", nargs="*", default=[])
    args = parser.parse_args()
    global WARM  # noqa: PLW0603 - one setting for the timed function
    WARM = tuple(args.warm)
    _report(f"modelyard ProcessPool, warm={list(WARM)}", _modelyard, args.workers, args.repeat)
    _report("ProcessPoolExecutor (spawn)", _stdlib, args.workers, args.repeat)


if __name__ == "__main__":
    main()

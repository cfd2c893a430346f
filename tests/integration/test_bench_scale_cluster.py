"""bench/scale.py's own Dask cluster (``dask scheduler`` and ``dask worker`` on 127.0.0.1):
its workers start as docs/big-data.md advises, and a second bench run in the same work folder
starts it again, with fresh worker logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit._bench import load_bench

pytestmark = pytest.mark.integration


def test_the_bench_cluster_starts_again_in_the_same_folder(tmp_path: Path) -> None:
    scale = load_bench("scale")
    root = tmp_path / "dask-1000"
    with scale.dask_cluster(root, workers=1) as cluster:
        assert len(cluster.workers) == 1
    log = root / "worker-0" / "worker.log"
    log.write_bytes(log.read_bytes() + b"\nleft by the run before\n")
    with scale.dask_cluster(root, workers=1) as cluster:  # was FileExistsError: worker-0
        assert len(cluster.workers) == 1
    # the run's worker log is its own: the memory and restart lines counted are this run's
    assert b"left by the run before" not in log.read_bytes()


def test_the_bench_workers_start_as_the_docs_advise(tmp_path: Path) -> None:
    """One thread per native pool, and glibc's mmap threshold not pinned by the nanny (its
    Dask configuration file sets ``MALLOC_TRIM_THRESHOLD_`` to null)."""
    import distributed

    scale = load_bench("scale")
    names = ("MALLOC_TRIM_THRESHOLD_", "POLARS_MAX_THREADS", "OMP_NUM_THREADS")

    def environment(names: tuple[str, ...]) -> dict[str, str | None]:
        import os  # a nested function travels by value: the worker cannot import tests/

        return {name: os.environ.get(name) for name in names}

    with (
        scale.dask_cluster(tmp_path / "dask", workers=1) as cluster,
        distributed.Client(cluster.address, timeout=60) as client,
    ):
        found = client.run(environment, names)
    assert list(found.values()) == [
        {"MALLOC_TRIM_THRESHOLD_": None, "POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1"}
    ]

"""Batch scoring on a real Dask cluster (``dask scheduler`` + two ``dask worker`` processes,
fixture ``dask_cluster``): the per-batch kernels run on the workers, through the project's
executor, and the output equals the one-batch output made here."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.integration.dask_cluster import DaskCluster
from tests.unit.ops._predict_project import predict, scoring_input, trained

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_predict_on_dask_runs_the_batches_on_the_workers_and_equals_one_batch_here(
    dask_cluster: DaskCluster, shared_data: Path, tmp_path: Path
) -> None:
    import distributed

    yaml = trained(tmp_path, shared_data)
    data = tmp_path / "score.csv"
    scoring_input(shared_data).write_csv(data)
    here = predict(yaml, data, tmp_path / "here.parquet", batch_rows=1_000_000)
    dask_cluster.wait_for_workers(2)
    with distributed.Client(dask_cluster.address) as client:
        with distributed.get_task_stream(client) as stream:
            on_dask = predict(
                yaml, data, tmp_path / "dask.parquet", executor="dask",
                address=dask_cluster.address, batch_rows=97,
            )  # fmt: skip
            workers = set(client.scheduler_info()["workers"])
        ran = [t for t in stream.data if str(t["key"]).startswith("_run")]  # the executor's tasks
    assert on_dask.batches == len(ran) == 11
    assert {t["worker"] for t in ran} <= workers
    assert pl.read_parquet(on_dask.output).equals(pl.read_parquet(here.output))
    assert pl.read_parquet(on_dask.quarantine).equals(pl.read_parquet(here.quarantine))
    assert (on_dask.rows, on_dask.scored, on_dask.quarantined, on_dask.drifted, on_dask.drift) == (
        here.rows, here.scored, here.quarantined, here.drifted, here.drift
    )  # fmt: skip

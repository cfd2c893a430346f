"""A project of several parts on a real Dask cluster (``dask scheduler`` + two ``dask worker``
processes, fixture ``dask_cluster``): the split, the samples, the final fit's row counts and
the metrics on every test row equal the serial run's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.dask_cluster import DaskCluster
from tests.unit.modeling.test_outofcore import PROJECT, _data

pytestmark = pytest.mark.integration


def _run(folder: Path, compute: str) -> object:
    from modelyard import Project

    folder.mkdir()
    _data(2_400).write_csv(folder / "data.csv")
    text = PROJECT.format(
        search_rows=1000, executor="serial", candidates="dummy, linear, xgboost, lightgbm"
    ).replace("compute: {executor: serial, workers: 2}", compute)
    (folder / "modelyard.yaml").write_text(text)
    return Project.from_yaml(folder / "modelyard.yaml").run(until="evaluate")


def test_a_big_table_on_a_dask_cluster_equals_serial(
    dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    dask_cluster.wait_for_workers(2)
    on_dask = _run(
        tmp_path / "dask", f"compute: {{executor: dask, address: '{dask_cluster.address}'}}"
    )
    serial = _run(tmp_path / "serial", "compute: {executor: serial}")
    a, b = on_dask.output("split"), serial.output("split")  # type: ignore[attr-defined]
    assert a.train_table.collect().equals(b.train_table.collect())
    assert a.test_table.collect().equals(b.test_table.collect())
    assert a.train.equals(b.train) and a.test.equals(b.test)
    fits = [(m.name, m.rows, m.how) for m in on_dask.output("train").members]  # type: ignore[attr-defined]
    assert fits == [(m.name, m.rows, m.how) for m in serial.output("train").members]  # type: ignore[attr-defined]
    assert any("out of core" in how and rows == a.train_rows for _, rows, how in fits)
    ev_a, ev_b = on_dask.output("evaluate"), serial.output("evaluate")  # type: ignore[attr-defined]
    assert ev_a.rows == ev_b.rows == a.test_rows
    assert ev_a.metrics == pytest.approx(ev_b.metrics)

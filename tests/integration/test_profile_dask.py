"""The profile of a many-part table on a real Dask cluster (``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1) equals the serial one, bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.compute import open_executor
from modelyard.config.schema import ProfileSection
from modelyard.data.profile import profile
from modelyard.data.table import as_table
from tests.integration.dask_cluster import DaskCluster
from tests.unit.data.test_profile import make_contract
from tests.unit.data.test_profile_parts import _mixed

pytestmark = pytest.mark.integration


def test_profile_on_a_dask_cluster_equals_the_serial_profile(
    dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    dask_cluster.wait_for_workers(2)
    df = _mixed(4_000, 9)
    table = as_table(df, tmp_path / "t", batch_rows=500)  # workers read the parts themselves
    contract = make_contract(df, "y", "regression")
    options = ProfileSection()
    with open_executor("serial") as serial:
        want = profile(table, contract, options, executor=serial)
    with open_executor("dask", address=dask_cluster.address) as ex:
        got = profile(table, contract, options, executor=ex)

    assert got == want
    assert got.dataset.rows == 4_000 and got.correlations is not None

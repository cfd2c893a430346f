"""The reference the prediction log is compared with: read as ingest reads the training data
(a line it quarantines is set aside, not fatal) and, unless retraining needs all of it, a
seeded sample of bounded size."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from modelyard.ops.monitoring import session
from modelyard.recipe import Project
from tests.unit.ops.monitoring._projects import penguins_project


@pytest.fixture
def project(tmp_path: Path, shared_data: Path) -> Project:
    lines = (shared_data / "penguins.csv").read_text().splitlines()
    lines.insert(40, "a,ragged,line")  # ingest quarantines it
    lines.insert(80, '"an unbalanced quote,1')
    data = tmp_path / "data"
    data.mkdir()
    (data / "penguins.csv").write_text("\n".join(lines) + "\n")
    project = Project.from_yaml(penguins_project(tmp_path, data))
    project.run(until="contract")
    return project


def test_a_line_ingest_quarantines_does_not_stop_the_monitor(
    project: Project, shared_data: Path
) -> None:
    # before: read_source raised on the first line that is not a row
    reference = project._monitor_inputs(None, None).reference
    whole = pl.read_csv(shared_data / "penguins.csv", infer_schema=False)
    assert reference.height == whole.height
    assert reference.columns == whole.columns


def test_the_reference_is_a_bounded_seeded_sample_unless_retraining(
    project: Project, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "REFERENCE_ROWS", 50)
    first = project._monitor_inputs(None, None).reference
    again = project._monitor_inputs(None, None).reference
    assert first.height == 50 and first.equals(again)  # seeded
    whole = pl.read_csv(shared_data / "penguins.csv", infer_schema=False)
    # rows of the source, in file order
    order = {row: i for i, row in enumerate(whole.rows())}
    positions = [order[row] for row in first.rows()]
    assert positions == sorted(positions) and len(set(positions)) == 50
    assert project._monitor_inputs(None, None, whole=True).reference.height == whole.height


def test_the_report_says_the_reference_is_a_sample_and_of_how_many_rows(
    project: Project, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.ops.monitoring.monitor import monitor
    from modelyard.reports.drift import render_monitor_html
    from tests.unit.ops.monitoring._synthetic import CONTRACT, synthetic

    monkeypatch.setattr(session, "REFERENCE_ROWS", 50)
    rows = pl.read_csv(shared_data / "penguins.csv", infer_schema=False).height
    assert project._monitor_inputs(None, None).reference_total == rows
    assert project._monitor_inputs(None, None, whole=True).reference_total is None
    ref, log = synthetic()
    sampled = monitor(log, ref, CONTRACT, reference_total=10_000)
    assert (sampled.reference_rows, sampled.reference_total_rows) == (ref.height, 10_000)
    html = render_monitor_html(sampled)
    assert "reference sampled (seeded) from" in html and "10,000" in html
    assert "sampled (seeded)" not in render_monitor_html(monitor(log, ref, CONTRACT))

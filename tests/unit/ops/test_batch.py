"""Batch scoring streams (issue 13): the result does not depend on the batch size or on the
executor, unreadable lines are quarantined with their line numbers, a killed predict leaves
no output file, and hostile input gives a clear error or an empty output with a quarantine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from modelyard.errors import DataError, ModelyardError
from tests.unit.ops._predict_project import predict, scoring_input, trained

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    return trained(tmp_path_factory.mktemp("scoring"), shared_data)


@pytest.fixture(scope="module")
def data(project: Path, shared_data: Path) -> Path:
    file = project.parent / "score.csv"
    scoring_input(shared_data).write_csv(file)
    return file


def outcome(result: Any) -> tuple[Any, ...]:
    """Everything a predict produced, but how many batches it took."""
    quarantine = pl.read_parquet(result.quarantine) if result.quarantine else None
    counts = (result.rows, result.scored, result.quarantined, result.rejected, result.drifted)
    return counts, result.drift, pl.read_parquet(result.output), quarantine


def assert_same(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert a[0] == b[0]
    assert a[1] == b[1]
    # the same rows and values; a probability may differ in its last bits (2e-18 seen): BLAS
    # sums a row's products in an order that depends on the shape of the batch it is in
    assert_frame_equal(a[2], b[2], check_exact=False, rel_tol=1e-12, abs_tol=1e-15)
    assert (a[3] is None and b[3] is None) or a[3].equals(b[3])


@pytest.fixture(scope="module")
def whole(project: Path, data: Path) -> tuple[Any, ...]:
    """The input scored in one batch: what every other batch size must give."""
    result = predict(project, data, project.parent / "whole.parquet", batch_rows=1_000_000)
    assert result.batches == 1
    return outcome(result)


def test_one_batch_scores_valid_rows_and_quarantines_the_rest_with_their_rows(
    whole: tuple[Any, ...], shared_data: Path
) -> None:
    (rows, scored, quarantined, rejected, drifted), drift, output, quarantine = whole
    frame = scoring_input(shared_data)
    assert rows == frame.height == scored + quarantined and rejected == 0
    assert output.height == scored and quarantine.height == quarantined
    # the quarantine's _row is the row's position in the file
    for row, reasons in quarantine.select("_row", "_reasons").iter_rows():
        assert frame.row(row) == quarantine.filter(pl.col("_row") == row).select(frame.columns).row(
            0
        )
        assert reasons
    reasons = " ".join(quarantine["_reasons"])
    assert "is not a" in reasons and "duplicate" in reasons and "bill_length_mm" in reasons
    assert (
        quarantine.filter(pl.col("_row") == frame.height - 1)["_reasons"]
        .item()
        .endswith("is a duplicate")
    )  # the last row repeats the first, 1,031 rows before: across any batch boundary
    assert {(v.column, v.check) for v in drift} == {
        ("flipper_length_mm", "range"),
        ("island", "category"),
        ("id", "range"),
    }  # fmt: skip  (ids of the later copies are above the training's)
    assert drifted == output["_drift"].is_not_null().sum() > 0
    assert quarantine.columns[-2:] == ["_row", "_reasons"]  # no unreadable line: no _line


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_many_batches_give_exactly_the_one_batch_output(
    project: Path, data: Path, whole: tuple[Any, ...], executor: str, tmp_path: Path
) -> None:
    result = predict(project, data, tmp_path / "out.parquet", executor=executor, batch_rows=97)
    assert result.batches == 11
    assert_same(outcome(result), whole)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "out.quarantine.parquet"]


def test_predict_scores_in_this_process_without_starting_a_local_pool(
    project: Path,
    data: Path,
    whole: tuple[Any, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``modelyard predict`` of a small file stays as fast as before, and a big one holds one
    copy of the libraries: with the local executor no worker process starts (the pool's tree
    was twice the memory for no gain); batches run here, one at a time."""
    from modelyard.compute import pool

    def no_pool(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a process pool was started for one batch")

    monkeypatch.setattr(pool.ProcessPool, "__init__", no_pool)
    result = predict(project, data, tmp_path / "out.parquet", executor="local")
    assert result.batches == 1
    assert_same(outcome(result), whole)
    many = predict(project, data, tmp_path / "many.parquet", executor="local", batch_rows=600)
    assert many.batches > 1
    assert_same(outcome(many), whole)
    with pytest.raises(AssertionError, match="pool was started"):  # the guard works
        pool.ProcessPool(2)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch_rows=st.integers(min_value=40, max_value=1100))
@example(batch_rows=515)  # a last batch of 2 rows: a probability 2e-18 off the whole file's
def test_the_output_does_not_depend_on_the_batch_size(
    project: Path, data: Path, whole: tuple[Any, ...], batch_rows: int, tmp_path: Path
) -> None:
    out = tmp_path / f"out-{batch_rows}.parquet"
    assert_same(outcome(predict(project, data, out, batch_rows=batch_rows)), whole)


def test_csv_output_streams_too(
    project: Path, data: Path, whole: tuple[Any, ...], tmp_path: Path
) -> None:
    result = predict(project, data, tmp_path / "out.csv", batch_rows=200)
    written = pl.read_csv(result.output, schema=whole[2].schema)
    assert written.equals(whole[2])


def test_unreadable_lines_go_to_the_quarantine_with_their_line_numbers(
    project: Path, shared_data: Path, tmp_path: Path
) -> None:
    """The reader hands each batch over with the lines of its stretch that are not rows;
    they are counted and quarantined after the invalid rows, whatever the batch size."""
    from modelyard import Project
    from modelyard.data.table import rejected_schema
    from modelyard.ops.batch import score_batches

    rows = scoring_input(shared_data, copies=1)
    lines = [(60, "a,b"), (250, "x,y,z,w,1,2,3,4,5,6"), (251, "")]

    def batches(size: int) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
        out = []
        for start in range(0, rows.height, size):
            near = [(n, t) for n, t in lines if start <= n - 2 < start + size]
            bad = pl.DataFrame(
                {"_file": ["score.csv"] * len(near), "_line": [n for n, _ in near],
                 "_text": [t for _, t in near], "_reasons": ["wrong number of fields"] * len(near)},
                schema=rejected_schema(),
            )  # fmt: skip
            out.append((rows.slice(start, size), bad))
        return out

    p = Project.from_yaml(project)
    model = p.registry().load_version("1")
    contract = p.declared_contract()
    assert contract is not None
    results = []
    for size in (10_000, 50):
        out = tmp_path / f"out-{size}.parquet"
        scored = score_batches(
            batches(size), model=model, contract=contract, validation=p.config.validation, out=out
        )
        assert scored.rejected == 3 and scored.rows == rows.height + 3
        assert scored.rows == scored.scored + scored.quarantined
        assert scored.quarantine is not None
        results.append((pl.read_parquet(out), pl.read_parquet(scored.quarantine)))
    (out1, q1), (out2, q2) = results
    assert out1.equals(out2) and q1.equals(q2)
    tail = q1.tail(3)
    assert tail["_line"].to_list() == [60, 250, 251]
    assert tail["_text"].to_list() == ["a,b", "x,y,z,w,1,2,3,4,5,6", ""]
    assert (
        tail["_row"].null_count() == 3
        and tail["species" if "species" in q1.columns else "id"].null_count() == 3
    )
    assert q1.head(q1.height - 3)["_line"].null_count() == q1.height - 3


def test_a_ragged_line_of_the_file_is_quarantined_not_fatal(
    project: Path, shared_data: Path, tmp_path: Path
) -> None:
    frame = scoring_input(shared_data, copies=1)
    text = frame.write_csv().splitlines()
    text.insert(100, "Adelie,Torgersen")  # line 101 of the file
    (tmp_path / "ragged.csv").write_text("\n".join(text) + "\n")
    result = predict(project, tmp_path / "ragged.csv", tmp_path / "out.parquet", batch_rows=40)
    assert result.rejected == 1 and result.rows == frame.height + 1
    quarantine = pl.read_parquet(result.quarantine)
    assert quarantine.filter(pl.col("_line") == 101)["_text"].to_list() == ["Adelie,Torgersen"]


# --------------------------------------------------------------------------- killed, hostile


@pytest.mark.parametrize("where", ["scoring", "publish"])
def test_a_killed_predict_leaves_no_output_and_the_next_one_cleans_up(
    project: Path, shared_data: Path, where: str, tmp_path: Path
) -> None:
    data = tmp_path / "big.csv"
    scoring_input(shared_data, copies=40).write_csv(data)  # 13,760 rows
    out, marker = tmp_path / "out.parquet", tmp_path / "marker"
    pl.DataFrame({"earlier": [1]}).write_parquet(out)  # an earlier predict's output
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.ops._predict_project", str(project), str(data),
         str(out), str(marker), where, "500"],
        cwd=ROOT, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.parquet.")]
    assert len(left) == 1 and left[0].endswith(".parts")  # its staging folder
    if where == "scoring":  # the earlier output is still there, whole
        assert pl.read_parquet(out).columns == ["earlier"]
        assert not (tmp_path / "out.quarantine.parquet").exists()
    else:  # killed between the quarantine's rename and the output's: no output at all
        assert not out.exists()
    result = predict(project, data, out, batch_rows=5000)
    assert result.scored == pl.read_parquet(out).height and result.scored > 13_000
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_failing_predict_leaves_no_output_and_no_staging(
    project: Path, shared_data: Path, tmp_path: Path
) -> None:
    frame = scoring_input(shared_data, copies=1).drop("island")  # a contract column missing
    frame.write_csv(tmp_path / "in.csv")
    with pytest.raises(DataError, match="island"):
        predict(project, tmp_path / "in.csv", tmp_path / "out.parquet", batch_rows=50)
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]


def test_all_rows_invalid_gives_an_empty_output_and_a_quarantine_of_every_row(
    project: Path, shared_data: Path, tmp_path: Path
) -> None:
    frame = scoring_input(shared_data, copies=1).with_columns(bill_depth_mm=pl.lit("deep"))
    frame.write_csv(tmp_path / "in.csv")
    for batch_rows in (1_000, 60):
        out = tmp_path / f"out-{batch_rows}.parquet"
        result = predict(project, tmp_path / "in.csv", out, batch_rows=batch_rows)
        assert (result.rows, result.scored, result.quarantined) == (frame.height, 0, frame.height)
        output = pl.read_parquet(out)
        assert output.height == 0 and {"id", "prediction", "_drift"} <= set(output.columns)
        assert pl.read_parquet(result.quarantine)["_row"].to_list() == list(range(frame.height))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("id,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n", "no data rows"),
    ],
)  # fmt: skip
def test_an_empty_file_or_a_header_alone_is_a_clear_error_without_traceback(
    project: Path, content: str, message: str, tmp_path: Path
) -> None:
    from modelyard.cli import main

    (tmp_path / "in.csv").write_text(content)
    out = tmp_path / "out.parquet"
    run = CliRunner().invoke(
        main, ["predict", "-c", str(project), str(tmp_path / "in.csv"), "--out", str(out)]
    )
    assert run.exit_code == 2, run.output
    assert message in run.output and "Traceback" not in run.output
    assert not out.exists()


def test_a_wrong_output_extension_fails_before_any_work(
    project: Path, data: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelyardError, match=r"a \.parquet or \.csv file"):
        predict(project, data, tmp_path / "out.xlsx")
    with pytest.raises(ModelyardError, match="at least one row"):
        predict(project, data, tmp_path / "out.csv", batch_rows=0)


def test_the_cli_takes_a_batch_size_and_reports_the_batches(
    project: Path, data: Path, whole: tuple[Any, ...], tmp_path: Path
) -> None:
    from modelyard.cli import main

    out = tmp_path / "out.parquet"
    args = ["predict", "-c", str(project), str(data), "--out", str(out), "--json"]
    run = CliRunner().invoke(main, [*args, "--batch-rows", "300"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output)
    assert (summary["batches"], summary["rejected"]) == (4, 0)
    assert (summary["rows"], summary["scored"]) == whole[0][:2]
    assert pl.read_parquet(out).equals(whole[2])

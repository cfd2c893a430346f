"""``modelyard drift A B`` and ``modelyard monitor --emit-config`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from modelyard.cli.monitor import drift, monitor


def _halves(tmp_path: Path, shared_data: Path) -> tuple[Path, Path, Path]:
    diamonds = pl.read_csv(shared_data / "diamonds.csv")
    a, b = diamonds[:20000], diamonds[20000:40000]
    ref, same, moved = tmp_path / "ref.csv", tmp_path / "same.parquet", tmp_path / "moved.csv"
    a.write_csv(ref)
    a.sample(fraction=1.0, shuffle=True, seed=0).write_parquet(same)
    b.with_columns(pl.col("carat") * 1.5, pl.lit("Fair").alias("cut")).write_csv(moved)
    return ref, same, moved


def test_drift_command_on_two_files(tmp_path: Path, shared_data: Path) -> None:
    ref, same, moved = _halves(tmp_path, shared_data)
    done = CliRunner().invoke(drift, [str(ref), str(same), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["status"] == "ok" and report["drifted_features"] == []
    assert {f["column"]: f["kind"] for f in report["features"]}["carat"] == "numeric"  # CSV typed
    html = tmp_path / "out" / "drift.html"
    done = CliRunner().invoke(drift, [str(ref), str(moved), "--html", str(html)])
    assert done.exit_code == 0, done.output
    assert "carat" in done.output and "cut" in done.output
    flagged = [line.split()[1] for line in done.output.splitlines() if line.startswith(" !")]
    assert {"carat", "cut"} <= set(flagged)
    assert 'data-stat="psi" data-column="carat"' in html.read_text()


def test_drift_command_with_a_project_reports_its_target_as_label_drift(
    tmp_path: Path, shared_data: Path
) -> None:
    # the project's target was compared (and counted) as one more feature
    from tests.unit.ops.monitoring._projects import bike_project

    yaml, y2012 = bike_project(tmp_path, shared_data)
    y2012.write_csv(tmp_path / "2012.csv")
    done = CliRunner().invoke(
        drift, ["-c", str(yaml), str(tmp_path / "train-2011.csv"), str(tmp_path / "2012.csv"),
                "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    features = [f["column"] for f in report["features"]]
    assert "cnt" not in features and {"casual", "registered", "hum"} <= set(features)
    assert report["target"]["column"] == "cnt" and report["target"]["status"] == "drift"
    assert report["target"]["kind"] == "numeric"  # a regression target
    assert "cnt" not in report["drifted_features"]
    assert report["thresholds"]["wasserstein"] == 0.2 and report["thresholds"]["p_value"] == 0.01


def test_drift_command_user_errors(tmp_path: Path) -> None:
    done = CliRunner().invoke(drift, [str(tmp_path / "nope.csv"), str(tmp_path / "nope.csv")])
    assert done.exit_code != 0


def test_emit_config(tmp_path: Path) -> None:
    yaml = tmp_path / "modelyard.yaml"
    yaml.write_text(
        "version: 1\nname: p\ndata: {source: {builtin: iris}}\nmonitoring: {performance_drop: 0.02}\n"
    )
    done = CliRunner().invoke(
        monitor, ["-c", str(yaml), "--emit-config", str(tmp_path / "p"), "--json"]
    )
    assert done.exit_code == 0, done.output
    written = json.loads(done.output)["written"]
    assert [Path(p).name for p in written] == [
        "modelyard-alerts.yml",
        "modelyard-dashboard.json",
        "prometheus.yml",
    ]
    rules = (tmp_path / "p" / "modelyard-alerts.yml").read_text()
    assert "modelyard_performance_drop > 0.02" in rules
    assert "modelyard_http_request_duration_seconds_bucket" in rules
    assert "127.0.0.1:9108" in (tmp_path / "p" / "prometheus.yml").read_text()


def _with_bad_lines(tmp_path: Path, shared_data: Path) -> tuple[Path, Path]:
    diamonds = pl.read_csv(shared_data / "diamonds.csv")
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    diamonds[:5000].write_csv(ref)
    lines = diamonds[5000:10000].write_csv().splitlines(keepends=True)
    # line 1001 of the file: two fields short; line 2002: one too many; both are not rows
    lines.insert(1000, "0.3,Ideal,E,SI1,61.5,55.0,326,3.95\n")
    lines.insert(2001, "0.3,Ideal,E,SI1,61.5,55.0,326,3.95,3.98,2.43,7\n")
    cur.write_text("".join(lines))
    return ref, cur


def test_drift_command_sets_aside_lines_that_are_not_rows(
    tmp_path: Path, shared_data: Path
) -> None:
    # they stopped the command ("line 1001 has 8 fields"), where ingest and the monitor set
    # such lines aside and read the rest
    ref, cur = _with_bad_lines(tmp_path, shared_data)
    done = CliRunner().invoke(drift, [str(ref), str(cur), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["current_rows"] == 5000 and report["reference_rows"] == 5000
    (aside,) = report["set_aside"]
    assert aside["table"] == "current" and aside["lines"] == 2
    assert aside["first_line"] == 1001 and f"{cur}:1001" in aside["first"]
    assert "8 fields" in aside["first"]
    done = CliRunner().invoke(drift, [str(cur), str(ref), "--html", str(tmp_path / "d.html")])
    assert done.exit_code == 0, done.output
    assert "2 lines of the reference file are not rows" in done.output
    assert "left out" in done.output and f"{cur}:1001" in done.output
    html = (tmp_path / "d.html").read_text()
    assert "2 lines of the reference file are not rows" in html
    # read as a project reads its data: the same
    yaml = tmp_path / "modelyard.yaml"
    yaml.write_text("version: 1\nname: d\ndata: {source: {path: ref.csv}, target: price}\n")
    done = CliRunner().invoke(drift, ["-c", str(yaml), str(ref), str(cur), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["current_rows"] == 5000 and report["target"]["column"] == "price"
    assert [(a["table"], a["lines"]) for a in report["set_aside"]] == [("current", 2)]


def test_drift_command_refuses_a_file_mostly_not_rows(tmp_path: Path) -> None:
    # more lines that are not rows than rows: a wrong separator or header guess, not a few
    # broken lines; a clear error, as before
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    ref.write_text("a,b,c\n" + "".join(f"{i},{i % 3},x\n" for i in range(300)))
    cur.write_text("a,b,c\n" + "".join(f"{i},{i}\n" if i % 3 else f"{i},1,y\n" for i in range(300)))
    done = CliRunner().invoke(drift, [str(ref), str(cur)])
    assert done.exit_code != 0
    message = str(done.exception)
    assert "200 of the 300 lines are not rows" in message and "--separator" in message
    assert "cur.csv:3: line 3 has 2 fields" in message


def test_drift_reads_the_current_file_as_the_reference_writes_values(tmp_path: Path) -> None:
    # the current file's sample holds no day above 12: its dates are read in the reference's
    # format, not left as text that no longer parses (a missing-rate drift that is not there)
    ref, cur = tmp_path / "ref.csv", tmp_path / "cur.csv"
    ref.write_text(
        "when;x;y\n"
        + "".join(f"{i % 28 + 1}/{i % 12 + 1}/2020;{i % 7},5;{i % 2}\n" for i in range(400))
    )
    cur.write_text(
        "when;x;y\n"
        + "".join(f"{i % 12 + 1}/{i % 12 + 1}/2021;{i % 7},5;{i % 2}\n" for i in range(400))
    )
    done = CliRunner().invoke(drift, [str(ref), str(cur), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    when = next(f for f in report["features"] if f["column"] == "when")
    assert when["kind"] == "numeric" and when["missing_current"] == 0.0  # dates: numeric
    x = next(f for f in report["features"] if f["column"] == "x")
    assert x["kind"] == "numeric" and x["status"] == "ok"  # 0,5 .. 6,5 read as numbers in both


def test_drift_of_two_workbooks_reads_them_as_workbooks(tmp_path: Path) -> None:
    # the CSV sniffer is for CSV files: a workbook's bytes guessed nothing useful
    import xlsxwriter

    paths = []
    for name, shift in (("ref", 0), ("cur", 50)):
        path = tmp_path / f"{name}.xlsx"
        book = xlsxwriter.Workbook(path)
        sheet = book.add_worksheet("data")
        sheet.write_row(0, 0, ["x", "kind"])
        for i in range(300):
            sheet.write_row(i + 1, 0, [i % 100 + shift, "ab"[i % 2]])
        book.close()
        paths.append(path)
    done = CliRunner().invoke(drift, [str(paths[0]), str(paths[1]), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["reference_rows"] == 300 and report["drifted_features"] == ["x"]

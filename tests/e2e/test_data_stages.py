"""The data stages as a user runs them (issue 11, items 4, 8, 10, 16, 17, 18, 19): real files
from shared/data, the CLI in a subprocess, exit codes, messages and the files it writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from tests.e2e.test_cli import modelyard

PASSWORD = "p@ss/w:rd#x"


def project(folder: Path, data: str, target: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "modelyard.yaml").write_text(
        f"version: 1\nname: e2e\ndata:\n  source: {{path: {data}}}\n  target: {target}\n{extra}"
    )
    return folder


def contract_columns(folder: Path) -> dict[str, dict[str, object]]:
    contract = yaml.safe_load((folder / "contract.yaml").read_text())
    return {c["name"]: c for c in contract["columns"]}


def alerts(folder: Path) -> set[tuple[str, str]]:
    profile = json.loads((folder / "modelyard-out" / "profile.json").read_text())
    return {(a["kind"], c) for a in profile["alerts"] for c in a["columns"]}


def test_a_role_moved_in_the_yaml_is_not_silently_ignored(
    tmp_path: Path, shared_data: Path
) -> None:
    """Item 4: after the first run, data.columns.leakage had no effect."""
    shutil.copy(shared_data / "titanic.csv", tmp_path / "titanic.csv")
    folder = project(tmp_path, "titanic.csv", "survived")
    assert modelyard("run", "--until", "contract", cwd=folder).returncode == 0
    unchanged = modelyard("validate", cwd=folder)
    assert unchanged.returncode == 0, unchanged.stderr
    config = folder / "modelyard.yaml"
    config.write_text(config.read_text() + "  columns: {leakage: [alive]}\n")
    moved = modelyard("validate", cwd=folder)
    assert moved.returncode == 2
    assert "Traceback" not in moved.stderr
    assert str(folder / "contract.yaml") + ":" in moved.stderr
    assert "'alive' has role feature here, but" in moved.stderr
    assert "modelyard.yaml declares it leakage (data.columns.leakage)" in moved.stderr
    (folder / "contract.yaml").unlink()  # the documented way out: infer it again
    again = modelyard("validate", cwd=folder)
    assert again.returncode == 0, again.stderr
    assert contract_columns(folder)["alive"]["role"] == "leakage"


def test_identifiers_and_free_text_are_said_in_the_contract_not_encoded_as_categories(
    tmp_path: Path, shared_data: Path
) -> None:
    """Item 8: a near-unique title column was a feature with an 'info' alert only."""
    taxis = pl.read_csv(shared_data / "taxis.csv", infer_schema=False)
    taxis = taxis.with_columns(
        pl.format("{} to {} at {}", "pickup_zone", "dropoff_zone", "pickup").alias("trip"),
        pl.format("TRIP-{}", pl.int_range(pl.len())).alias("trip_id"),
    )
    taxis.write_csv(tmp_path / "taxis.csv")
    folder = project(tmp_path, "taxis.csv", "payment", "  columns: {leakage: [tip, total]}\n")
    done = modelyard("run", "--until", "profile", cwd=folder)
    assert done.returncode == 0, done.stderr
    columns = contract_columns(folder)
    trip, trip_id = columns["trip"], columns["trip_id"]
    assert (trip["role"], trip.get("text")) == ("feature", True)
    assert "free text (TF-IDF features), not categories" in str(trip["reason"])
    assert trip_id["role"] == "id" and "an identifier, not a feature" in str(trip_id["reason"])
    assert "categories" not in trip and "categories" not in trip_id
    found = alerts(folder)
    assert ("inferred", "trip") in found and ("inferred", "trip_id") in found
    assert ("high_cardinality", "trip") not in found and ("unique", "trip_id") not in found


def test_zero_one_flags_get_no_skew_or_outlier_alerts(tmp_path: Path, shared_data: Path) -> None:
    """Item 10: "'Action' is skewed" on a binary column."""
    shutil.copy(shared_data / "bike_sharing" / "hour.csv", tmp_path / "hour.csv")
    folder = project(tmp_path, "hour.csv", "cnt", "  columns: {leakage: [casual, registered]}\n")
    done = modelyard("run", "--until", "profile", cwd=folder)
    assert done.returncode == 0, done.stderr
    found = alerts(folder)
    for flag in ("holiday", "workingday"):  # 0/1 (holiday: 2.9% ones, skew 5.6)
        assert ("skewed", flag) not in found and ("outliers", flag) not in found


def _penguins(folder: Path, shared_data: Path, *, junk: int = 0, unlabelled: int = 0) -> None:
    df = pl.read_csv(shared_data / "penguins.csv", infer_schema=False)
    row = pl.int_range(pl.len())
    df.with_columns(
        pl.when(row < junk).then(pl.lit("n/a")).otherwise("bill_length_mm").alias("bill_length_mm"),
        pl.when((row >= 100) & (row < 100 + unlabelled)).then(None).otherwise("species").alias("species"),
    ).write_csv(folder / "penguins.csv")  # fmt: skip


def test_validation_over_its_limit_writes_the_report_and_quarantine_first(
    tmp_path: Path, shared_data: Path
) -> None:
    """Item 16: nothing was written, --json printed nothing, examples read None, None, None."""
    _penguins(tmp_path, shared_data, unlabelled=12)
    checks = "validation: {checks: [{name: heavy, column: body_mass_g, max: 5400}]}\n"
    folder = project(tmp_path, "penguins.csv", "species", checks)
    done = modelyard("validate", "--json", cwd=folder)
    assert done.returncode == 2
    summary = json.loads(done.stdout)
    report = summary["validation"]["train"]
    assert (report["invalid_rows"], report["missing_target_rows"]) == (34, 12)
    out = folder / "modelyard-out"
    assert Path(summary["outputs"]["validation_train"]) == out / "validation" / "train.json"
    quarantine = pl.read_parquet(out / "quarantine" / "train.parquet")
    assert quarantine.height == 46 and quarantine["_reasons"].null_count() == 0
    assert (folder / "contract.yaml").is_file()
    assert json.loads((out / "run.json").read_text())["error"] == summary["error"]
    message = done.stderr
    assert "None" not in message and "Traceback" not in message
    assert "modelyard-out/validation/train.json" in message
    assert "modelyard-out/quarantine/train.parquet" in message
    assert "resume" not in message


def test_rows_without_a_target_are_left_out_not_failed(tmp_path: Path, shared_data: Path) -> None:
    """Item 16: 30 rows (8.7%) without a target failed the run as invalid data."""
    _penguins(tmp_path, shared_data, unlabelled=30)
    folder = project(tmp_path, "penguins.csv", "species")
    done = modelyard("run", "--until", "split", "--json", cwd=folder)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["validation"]["train"]
    assert (report["invalid_rows"], report["missing_target_rows"], report["valid_rows"]) == (
        0, 30, 314,
    )  # fmt: skip


def test_a_password_with_reserved_characters_never_reaches_a_message(tmp_path: Path) -> None:
    """Item 17: the URL mask stopped at the first '@' and showed 'ss/w:rd#x'."""
    pytest.importorskip("psycopg")
    (tmp_path / "modelyard.yaml").write_text(
        "version: 1\nname: e2e\ndata:\n  source:\n    sql:\n"
        "      url: postgresql://me:${PG_PASSWORD}@127.0.0.1:9/app\n      table: t\n"
        "  target: y\n"
    )
    done = modelyard("validate", cwd=tmp_path, env={"PG_PASSWORD": PASSWORD})
    assert done.returncode == 2, done.stderr
    assert "postgresql://me:***@127.0.0.1:9/app" in done.stderr
    for piece in ("p@ss", "ss/w", "w:rd", "rd#x", "%40ss"):
        assert piece not in done.stderr and piece not in done.stdout


def _wide_csv(path: Path, shared_data: Path, columns: int) -> list[str]:
    """300 rows resampled from kddcup99, its 41 features repeated to ``columns`` columns."""
    kdd = shared_data / "kddcup99"
    names = [
        line.split(":")[0]
        for line in (kdd / "kddcup.names").read_text().splitlines()[1:]
        if ":" in line
    ]
    ref = pl.read_csv(
        kdd / "kddcup.data_10_percent.gz", has_header=False, new_columns=[*names, "label"],
        n_rows=5_000, infer_schema=False,
    )  # fmt: skip
    parts = []
    for copy in range(-(-columns // len(names))):
        idx = np.random.default_rng(copy).integers(0, ref.height, 300)
        parts.append(ref[idx].select(names).rename(lambda n, c=copy: f"{n}_{c}"))  # type: ignore[misc]
    wide = (
        pl.concat(parts, how="horizontal").select(pl.all().head(300)).select(pl.nth(range(columns)))
    )
    wide = wide.with_columns(ref[np.random.default_rng(0).integers(0, ref.height, 300)]["label"])
    wide.write_csv(path)
    return wide.columns


def test_a_wide_file_validates_and_its_errors_stay_short(tmp_path: Path, shared_data: Path) -> None:
    """Item 18: 760 s in contract; an error listed 9,982 column names on one 89 KB line."""
    names = _wide_csv(tmp_path / "wide.csv", shared_data, 3_000)
    folder = project(tmp_path, "wide.csv", "label")
    done = modelyard("run", "--until", "validate", "--json", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["validation"]["train"]["rows"] == 300
    assert len(contract_columns(folder)) == 3_001
    (folder / "contract.yaml").unlink()
    project(tmp_path, "wide.csv", "labl")
    typo = modelyard("run", "--until", "contract", cwd=folder)
    assert typo.returncode == 2
    error = next(line for line in typo.stderr.splitlines() if line.startswith("error:"))
    assert len(error) < 600
    assert "the target column 'labl' is not in the data (did you mean 'label'?)" in error
    assert f"one of the 3,001 columns '{names[0]}', '{names[1]}'" in error
    assert "... and 2,993 more (3,001 in all)" in error


def test_smaller_defects_of_item_19(tmp_path: Path, shared_data: Path) -> None:
    """A target typo exited 1 with a resume command; a bad path named an environment variable
    it did not use; 1% junk made a number column text; run.json said 0.0 seconds."""
    _penguins(tmp_path, shared_data, junk=4)  # 4 of 344 values of bill_length_mm: 1.2%
    folder = project(tmp_path, "penguins.csv", "specis")
    typo = modelyard("validate", cwd=folder)
    assert typo.returncode == 2
    assert "(did you mean 'species'?)" in typo.stderr
    assert "resume" not in typo.stderr and "--from" not in typo.stderr

    project(tmp_path, "nowhere.csv", "species")
    missing = modelyard("validate", cwd=folder)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "environment variable" not in missing.stderr

    project(tmp_path, "penguins.csv", "species")
    done = modelyard("validate", "--json", cwd=folder)
    assert done.returncode == 0, done.stderr
    bill = contract_columns(folder)["bill_length_mm"]
    assert (bill["type"], bill["unreadable"]) == ("float", 4)
    assert str(bill["reason"]).startswith('4 of 344 values (1.2%) are not a float (e.g. "n/a")')
    quarantine = pl.read_parquet(folder / "modelyard-out" / "quarantine" / "train.parquet")
    assert quarantine["_reasons"].to_list() == ["bill_length_mm: 'n/a' is not a float"] * 4
    summary = json.loads((folder / "modelyard-out" / "run.json").read_text())
    assert summary["seconds"] > 0
    assert summary["seconds"] >= sum(s["seconds"] for s in summary["steps"])

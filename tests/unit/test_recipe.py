"""The Project API on the data steps: roles of two files, a run stopped by validation,
user errors inside steps, and the run summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from modelyard import Project
from modelyard.errors import ConfigError, DataError, ValidationFailed

CONFIG = """\
version: 1
name: penguins_data
data:
  source:
    path: penguins.csv
  target: {target}
  columns:
    leakage: {leakage}
validation:
  max_invalid_fraction: {limit}
  checks: {checks}
"""


def project(
    folder: Path,
    *,
    target: str = "species",
    leakage: str = "[]",
    limit: float = 0.05,
    checks: str = "[]",
) -> Project:
    (folder / "modelyard.yaml").write_text(
        CONFIG.format(target=target, leakage=leakage, limit=limit, checks=checks)
    )
    return Project.from_yaml(folder / "modelyard.yaml")


@pytest.fixture
def penguins(tmp_path: Path, shared_data: Path) -> Path:
    shutil.copy(shared_data / "penguins.csv", tmp_path / "penguins.csv")
    return tmp_path


# --------------------------------------------------------------------------- item 4


def test_a_role_changed_in_the_yaml_after_the_first_run_is_an_error_naming_both_files(
    penguins: Path,
) -> None:
    """Issue 11 item 4: contract.yaml silently kept 'feature' after the yaml said leakage."""
    project(penguins).run(until="contract")
    contract_file = penguins / "contract.yaml"
    assert "role: leakage" not in contract_file.read_text()
    with pytest.raises(ConfigError) as err:
        project(penguins, leakage="[island]").run(until="validate")
    message = str(err.value)
    assert f"{contract_file}:" in message and str(penguins / "modelyard.yaml") in message
    assert "'island' has role feature here, but" in message
    assert "declares it leakage (data.columns.leakage)" in message
    assert "no file wins" in message
    # Agreeing again (the contract edited to match) runs, and the role is the declared one.
    contract_file.write_text(
        contract_file.read_text().replace(
            "- name: island\n    type: str\n    role: feature",
            "- name: island\n    type: str\n    role: leakage",
        )
    )
    result = project(penguins, leakage="[island]").run(until="validate")
    assert result.output("contract").column("island").role == "leakage"


def test_an_unchanged_role_runs_and_a_role_only_the_contract_has_needs_a_reason(
    penguins: Path,
) -> None:
    first = project(penguins, leakage="[island]").run(until="contract")
    assert first.output("contract").column("island").role == "leakage"
    again = project(penguins, leakage="[island]").run(until="validate")  # nothing changed
    assert again.cached == ["ingest", "contract"]
    with pytest.raises(ConfigError) as err:  # the yaml no longer declares it
        project(penguins).run(until="validate")
    assert "'island' has role leakage here, but" in str(err.value)
    assert "does not declare it (data.columns.leakage)" in str(err.value)
    contract_file = penguins / "contract.yaml"
    text = contract_file.read_text().replace(
        "    role: leakage\n", "    role: leakage\n    reason: the colony gives the species away\n"
    )
    contract_file.write_text(text)  # a documented choice of the contract's own
    kept = project(penguins).run(until="validate")
    assert kept.output("contract").column("island").role == "leakage"
    with pytest.raises(ConfigError, match=r"the target is 'species' here, but .* has 'sex'"):
        project(penguins, target="sex").run(until="validate")


# --------------------------------------------------------------------------- item 16


def _corrupt(folder: Path, *, bad: int, unlabelled: int) -> None:
    df = pl.read_csv(folder / "penguins.csv", infer_schema=False)
    idx = pl.int_range(df.height)
    df = df.with_columns(
        pl.when(idx < bad).then(pl.lit("n/a")).otherwise("bill_length_mm").alias("bill_length_mm"),
        pl.when((idx >= 100) & (idx < 100 + unlabelled)).then(None).otherwise("species").alias("species"),
    )  # fmt: skip
    df.write_csv(folder / "penguins.csv")


def test_a_run_stopped_by_validation_writes_its_report_quarantine_and_contract_first(
    penguins: Path,
) -> None:
    """Issue 11 item 16: nothing was written, and the message's examples were None, None."""
    _corrupt(penguins, bad=0, unlabelled=10)
    heavy = "[{name: heavy, column: body_mass_g, max: 5400}]"  # 34 of 344 rows: 9.9% > 5%
    with pytest.raises(ValidationFailed) as err:
        project(penguins, checks=heavy).run()  # the first run: no contract yet
    out = penguins / "modelyard-out"
    report = json.loads((out / "validation" / "train.json").read_text())
    assert (report["invalid_rows"], report["missing_target_rows"]) == (34, 10)
    quarantine = pl.read_parquet(out / "quarantine" / "train.parquet")
    assert quarantine.height == 44
    assert (
        quarantine.filter(pl.col("_row") == 100)["_reasons"].item()
        == "species: missing target value"
    )
    assert (penguins / "contract.yaml").is_file()  # the file the message tells you to edit
    message = str(err.value)
    assert message.startswith("validation of the training data: 34 of 344 rows (9.88%) are invalid")
    assert (
        "None" not in message and "heavy on 'body_mass_g': 34 rows (e.g. '5700', '5550'" in message
    )
    assert "modelyard-out/validation/train.json" in message
    assert "modelyard-out/quarantine/train.parquet" in message
    assert "resume" not in message
    summary = json.loads((out / "run.json").read_text())
    assert summary["error"] == message
    assert [(s["name"], s["status"]) for s in summary["steps"]] == [
        ("ingest", "ran"), ("contract", "ran"), ("validate", "failed"),
    ]  # fmt: skip
    assert err.value.run is not None and err.value.run.to_dict() == summary


def test_a_run_of_a_table_in_many_parts_stops_and_publishes_the_same_quarantine(
    penguins: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 13: validation part by part (batch_rows 50: 7 parts) stops like the one-part run
    and streams the same quarantine file; nothing is left of the parts it was written from."""
    _corrupt(penguins, bad=0, unlabelled=10)
    heavy = "[{name: heavy, column: body_mass_g, max: 5400}]"
    with pytest.raises(ValidationFailed):
        project(penguins, checks=heavy).run()
    out = penguins / "modelyard-out"
    whole = pl.read_parquet(out / "quarantine" / "train.parquet")
    whole_report = json.loads((out / "validation" / "train.json").read_text())
    other = tmp_path_factory.mktemp("parts")
    shutil.copy(penguins / "penguins.csv", other / "penguins.csv")
    shutil.copy(penguins / "contract.yaml", other / "contract.yaml")
    (other / "modelyard.yaml").write_text(
        CONFIG.format(target="species", leakage="[]", limit=0.05, checks=heavy).replace(
            "  target:", "  batch_rows: 50\n  target:"
        )
    )
    with pytest.raises(ValidationFailed) as err:
        Project.from_yaml(other / "modelyard.yaml").run()
    assert str(err.value).startswith("validation of the training data: 34 of 344 rows (9.88%)")
    out = other / "modelyard-out"
    assert pl.read_parquet(out / "quarantine" / "train.parquet").equals(whole)
    assert json.loads((out / "validation" / "train.json").read_text()) == whole_report
    assert sorted(p.name for p in (out / "quarantine").iterdir()) == ["train.parquet"]


def test_rows_without_a_target_do_not_stop_the_run(penguins: Path) -> None:
    _corrupt(penguins, bad=0, unlabelled=30)  # 8.7% of the rows, over the 5% limit
    result = project(penguins).run(until="split")
    report = result.validation["train"]
    assert (report.invalid_rows, report.missing_target_rows, report.valid_rows) == (0, 30, 314)
    split = result.output("split")
    assert split.train.height + split.test.height == 314


# --------------------------------------------------------------------------- item 19


def test_a_target_that_is_not_in_the_data_is_a_user_error_with_a_suggestion(
    penguins: Path,
) -> None:
    """Issue 11 item 19: it was a StepFailed (exit 1) with a resume command and no hint."""
    with pytest.raises(DataError) as err:
        project(penguins, target="specis").run()
    message = str(err.value)
    assert "the target column 'specis' is not in the data (did you mean 'species'?)" in message
    assert "resume" not in message and "--from" not in message


def test_a_file_with_another_separator_is_an_error_naming_the_separator(
    penguins: Path,
) -> None:
    """A semicolon file read with the default ',' is one column: the fix names ';'."""
    frame = pl.read_csv(penguins / "penguins.csv")
    frame.write_csv(penguins / "penguins.csv", separator=";")
    with pytest.raises(DataError) as err:
        project(penguins).run()
    assert err.value.fix is not None
    assert "looks separated by ';'. Set data.source.read.separator: ';'" in err.value.fix


def test_run_json_records_the_seconds_the_run_took(penguins: Path) -> None:
    """Issue 11 item 19: run.json always said "seconds": 0.0."""
    result = project(penguins).run(until="profile")
    summary = json.loads((penguins / "modelyard-out" / "run.json").read_text())
    steps = sum(s["seconds"] for s in summary["steps"])
    assert summary["seconds"] > 0 and summary["seconds"] >= steps
    assert summary["seconds"] <= round(result.seconds, 3)  # run.json rounds to the ms


def test_the_params_logged_to_mlflow_mask_every_url_password() -> None:
    """Issue 11 item 17: tracking.uri is a plain string; its password went to the params."""
    from modelyard.recipe import _masked

    params = {
        "tracking": {"uri": "http://admin:p@ss/w:rd#x@mlflow:5000"},
        "monitoring": {"reference": "s3://key:p@ss/w:rd#x@bucket/ref.parquet"},
        "seed": 42,
        "names": ["a://b", "plain"],
    }
    assert _masked(params) == {
        "tracking": {"uri": "http://admin:***@mlflow:5000"},
        "monitoring": {"reference": "s3://key:***@bucket/ref.parquet"},
        "seed": 42,
        "names": ["a://b", "plain"],
    }


def test_a_test_file_over_the_limit_stops_the_run_with_both_reports_written(
    penguins: Path,
) -> None:
    df = pl.read_csv(penguins / "penguins.csv", infer_schema=False)
    junk = pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.lit("?")).otherwise("bill_depth_mm")
    df.head(120).with_columns(junk.alias("bill_depth_mm")).write_csv(penguins / "test.csv")
    (penguins / "modelyard.yaml").write_text(
        CONFIG.format(target="species", leakage="[]", limit=0.05, checks="[]").replace(
            "    path: penguins.csv\n", "    path: penguins.csv\n  test: {path: test.csv}\n"
        )
    )
    with pytest.raises(ValidationFailed) as err:
        Project.from_yaml(penguins / "modelyard.yaml").run(until="split")
    assert str(err.value).startswith("validation of the test data: 30 of 120 rows (25.00%)")
    out = penguins / "modelyard-out"
    assert json.loads((out / "validation" / "train.json").read_text())["invalid_rows"] == 0
    assert json.loads((out / "validation" / "test.json").read_text())["invalid_rows"] == 30
    assert pl.read_parquet(out / "quarantine" / "test.parquet").height == 30
    steps = {s["name"]: s["status"] for s in json.loads((out / "run.json").read_text())["steps"]}
    assert steps["validate"] == "ran" and steps["validate_test"] == "failed"


def test_a_hold_out_from_later_dates_and_larger_values_is_kept_and_flagged_not_quarantined(
    penguins: Path,
) -> None:
    """A time split's test file lies after the training dates, and its numbers may lie beyond
    the training range: that is drift to report, not invalid data. Quarantining it (70 % of
    bike sharing's 2012 hold-out was) would evaluate the model on the easy rows only."""
    df = pl.read_csv(penguins / "penguins.csv").drop_nulls()
    dated = df.with_columns(
        (pl.date(2020, 1, 1) + pl.duration(days=pl.int_range(pl.len()))).alias("day")
    )
    train, test = dated.head(240), dated.slice(240)
    test = test.with_columns(pl.col("body_mass_g") * 3)  # far above the training maximum
    train.write_csv(penguins / "penguins.csv")
    test.write_csv(penguins / "test.csv")
    (penguins / "modelyard.yaml").write_text(
        CONFIG.format(target="species", leakage="[]", limit=0.05, checks="[]").replace(
            "    path: penguins.csv\n", "    path: penguins.csv\n  test: {path: test.csv}\n"
        )
    )
    Project.from_yaml(penguins / "modelyard.yaml").run(until="split")
    out = penguins / "modelyard-out"
    report = json.loads((out / "validation" / "test.json").read_text())
    assert report["invalid_rows"] == 0
    assert report["drifted_rows"] == test.height  # every row is flagged, and kept
    assert {v["column"] for v in report["drift"]} == {"body_mass_g"}
    # The contract bounds no date: the next month's training data is not invalid either.
    contract = (penguins / "contract.yaml").read_text()
    day = contract[contract.index("name: day") :].split("- name:")[0]
    assert "min:" not in day and "max:" not in day


# --------------------------------------------------------------------------- item 6


def test_editing_a_user_feature_function_reruns_the_modeling_steps_only(
    penguins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 6: a step's code version was the package version, so an edited
    ``features.custom`` function reused stale results."""
    module = penguins / "my_features_item6.py"
    module.write_text("def add(frame):\n    return frame.assign(ratio=frame['bill_length_mm'])\n")
    monkeypatch.syspath_prepend(str(penguins))
    (penguins / "modelyard.yaml").write_text(
        CONFIG.format(target="species", leakage="[]", limit=0.05, checks="[]")
        + "features:\n  custom: ['my_features_item6:add']\n"
    )
    first = Project.from_yaml(penguins / "modelyard.yaml")
    first.run(until="split")
    unchanged = {s.name: s.action for s in Project.from_yaml(penguins / "modelyard.yaml").plan()}
    assert unchanged["split"] == "cached" and unchanged["profile"] == "cached"

    module.write_text("def add(frame):\n    return frame.assign(ratio=frame['bill_depth_mm'])\n")
    plan = {s.name: s for s in Project.from_yaml(penguins / "modelyard.yaml").plan()}
    assert plan["profile"].action == "cached"  # the data steps do not run user features
    assert plan["split"].action == "run" and "code changed" in plan["split"].reason
    assert plan["explore"].action == "run"


def test_each_kind_of_step_follows_the_modelyard_code_it_runs() -> None:
    from modelyard import recipe

    data, modeling, ops = (recipe.code_version(k) for k in ("data", "modeling", "ops"))
    assert len({data, modeling, ops}) == 3
    assert all(v.startswith(recipe.STEP_VERSION + "+") for v in (data, modeling, ops))
    assert recipe.code_version("data") == data  # a pure function of the files


def test_labels_join_a_table_in_many_parts_as_they_join_the_whole_frame(tmp_path: Path) -> None:
    """Issue 13: ``labelled`` works part by part; the result is the whole frame's join."""
    from modelyard.compute import open_executor
    from modelyard.config.schema import ProjectConfig
    from modelyard.data.table import Ingested, as_table, rejected_schema, write_table
    from modelyard.engine.events import Progress
    from modelyard.labels.training import LabelTable, join_labels
    from modelyard.recipe import _label_spec, labelled

    config = ProjectConfig.model_validate(
        {"version": 1, "name": "p", "data": {"source": {"path": "x.csv"}, "target": "y",
         "columns": {"id": ["id"]}, "batch_rows": 100}}
    )  # fmt: skip
    train = pl.DataFrame(
        {"id": [str(i) for i in range(10)], "x": list("abcdefghij"), "y": ["no", None] * 5}
    )
    table = LabelTable(
        1,
        {"1": "yes", "8": "no", "9": "yes", "log:1": "no", "gone": "yes"},
        {"log:1": {"id": "log:1", "x": "z"}},
    )
    notes: list[str] = []
    progress = Progress("labelled", lambda e: notes.append(getattr(e, "note", "") or ""))
    rejected = write_table([], tmp_path / "rejected", schema=rejected_schema())

    def scratch(name: str) -> Path:
        folder = tmp_path / f"{name}{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        return folder

    expected, unmatched = join_labels(train, table, _label_spec(config, "binary", ["x"]))
    assert unmatched == 1
    with open_executor("local", workers=2) as ex:
        for batch_rows, parts in ((3, 5), (100, 1)):  # many parts, and one (as before)
            rows = as_table(train, scratch("rows"), batch_rows=batch_rows)
            out = labelled(
                Ingested(rows, rejected), table, config, "binary", ["x"], progress, scratch, ex
            )
            assert len(out.rows.parts()) == parts and out.rows.num_rows == 11
            assert out.rows.collect().equals(expected)
    assert sum("1 label(s) match no training row" in n for n in notes) == 2


def test_the_workers_import_the_model_code_only_when_the_run_fits_models(
    penguins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of the data steps alone started its workers importing scikit-learn and the
    boosters (3.5 s on each core, taken from the data steps)."""
    from modelyard import compute

    warmed: list[tuple[str, ...]] = []
    real = compute.open_executor

    class Fits(Exception):
        pass

    fit = "modelyard.modeling.search.fit"

    def spy(*args: object, warm: tuple[str, ...] = (), **kw: object) -> object:
        warmed.append(warm)
        if fit in warm:
            raise Fits  # stops before the search
        return real(*args, warm=warm, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(compute, "open_executor", spy)
    proj = project(penguins)
    proj.run(until="split")
    proj.run_step("split")
    data_modules = (
        "modelyard.data.sources", "modelyard.data.contract", "modelyard.data.validation",
        "modelyard.data.profile",
    )  # fmt: skip
    assert warmed == [data_modules, ()]  # the steps the first run ran; split warms nothing
    for fitting in (lambda: proj.run_step("explore"), lambda: proj.run(until="explore")):
        with pytest.raises(Fits):
            fitting()
    assert warmed[2:] == [(fit,)] * 2


def test_a_run_starts_its_workers_before_its_first_step_and_a_cached_run_none(
    penguins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers start as the run starts its steps, not when the first task is submitted
    (most of a second of imports each step waited for); a run with nothing to run starts
    none."""
    from modelyard import compute
    from modelyard.engine.runner import run as real_run

    events: list[str] = []
    real_start = compute._Lazy.start

    def start(self: compute._Lazy) -> None:
        events.append("start")
        real_start(self)

    def run(*args: object, **kw: object) -> object:
        events.append("steps")
        return real_run(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(compute._Lazy, "start", start)
    monkeypatch.setattr("modelyard.recipe.run", run)
    proj = project(penguins)
    proj.run(until="contract")
    assert events == ["start", "steps"]
    proj.run(until="contract")
    assert events == ["start", "steps"]  # cached: neither

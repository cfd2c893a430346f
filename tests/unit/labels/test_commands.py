"""The ``modelyard label`` commands on a real, trained project (penguins), end to end:
queue -> export (Labelbox) -> simulated annotation -> import -> status -> the pipeline trains on
the accepted labels."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from modelyard.cli import main
from tests.unit.labels.test_labelbox import labelbox_export, radio
from tests.unit.ops.monitoring._projects import penguins_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> tuple[Path, Path]:
    """A trained penguins project; and a file of 80 penguins rows without their species."""
    from modelyard.recipe import Project

    root = tmp_path_factory.mktemp("penguins")
    yaml = penguins_project(root, shared_data)
    # a fixed budget: on a busy machine the automatic one can run out before a fit finishes
    all_rows = pl.read_csv(shared_data / "penguins.csv", infer_schema=False).sample(
        fraction=1.0, shuffle=True, seed=1
    )
    all_rows.tail(-80).write_csv(root / "train.csv")  # the model never sees the first 80
    text = yaml.read_text().replace(str(shared_data / "penguins.csv"), str(root / "train.csv"))
    yaml.write_text(text.replace("cv_sample: 2000}", "cv_sample: 2000, budget: 600}"))
    Project.from_yaml(yaml).run()
    rows = all_rows.head(80)
    rows.drop("species").write_csv(root / "unlabelled.csv")
    rows.write_csv(root / "truth.csv")
    return yaml, root


def cli(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(main, list(args))
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    return done.exit_code, done.output


def test_the_label_loop_end_to_end(project: tuple[Path, Path]) -> None:
    yaml, root = project
    code, out = cli("label", "queue", "-c", str(yaml), "--data", str(root / "unlabelled.csv"),
                    "--budget", "12", "--json")  # fmt: skip
    assert code == 0, out
    queue = json.loads(out)
    items = queue["items"]
    assert len(items) == 12 and len({i["key"] for i in items}) == 12
    assert all(i["model_version"].startswith("penguins/") and i["reason"] for i in items)
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert all(set(i["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"} for i in items)

    out_dir = root / "to-label"
    code, out = cli(
        "label", "export", "-c", str(yaml), "--format", "labelbox", "--out", str(out_dir)
    )
    assert code == 0, out
    assert (out_dir / "data_rows.ndjson").is_file()

    truth = pl.read_csv(root / "truth.csv", infer_schema=False)
    by_row = {json.dumps({k: v for k, v in r.items() if k != "species"}, sort_keys=True): r["species"]
              for r in truth.to_dicts()}  # fmt: skip

    def annotate(key: str) -> list[tuple[str, dict[str, object]]]:
        row = next(i["row"] for i in items if i["key"] == key)
        plain = {k: (None if v is None else str(v)) for k, v in row.items()}
        species = next((s for r, s in by_row.items() if _same(json.loads(r), plain)), "Adelie")
        first = ("ann1@example.com", radio("species", species))
        if key == items[0]["key"]:  # a second annotator disagrees on one row
            return [
                first,
                (
                    "ann2@example.com",
                    radio("species", "Gentoo" if species != "Gentoo" else "Adelie"),
                ),
            ]
        if key == items[1]["key"]:
            return [("ann1@example.com", radio("species", "Pengu"))]  # not a class
        return [first]

    exported = labelbox_export(out_dir / "data_rows.ndjson", annotate, root / "export.ndjson")
    with exported.open("a") as f:  # and a row nobody queued, and a line that is not JSON
        f.write(
            json.dumps(
                {
                    "data_row": {"global_key": "h:unknown"},
                    "projects": {
                        "p": {
                            "labels": [
                                {
                                    "annotations": {
                                        "classifications": [radio("species", "Adelie")]
                                    },
                                    "label_details": {
                                        "created_at": "2026-12-01T00:00:00Z",
                                        "created_by": "x",
                                    },
                                }
                            ]
                        }
                    },
                }
            )
            + "\n"
        )
        f.write("{oops\n")  # fmt: skip
    code, out = cli(
        "label", "import", "-c", str(yaml), "--format", "labelbox", str(exported), "--json"
    )
    assert code == 0, out
    result = json.loads(out)
    assert result["accepted"] == 12 and result["quarantined"] == 3 and result["version"] == 1
    assert set(result["reasons"]) == {"unknown class 'Pengu'", "unknown row key 'h", "not JSON"}
    quarantine = [json.loads(x) for x in Path(result["quarantine"]).read_text().splitlines()]
    assert {q["reason"].split(" ")[0] for q in quarantine} == {"unknown", "not"}

    code, out = cli(
        "label", "import", "-c", str(yaml), "--format", "labelbox", str(exported), "--json"
    )
    again = json.loads(out)  # the same file twice adds nothing
    assert again["accepted"] == 0 and again["reasons"]["duplicate"] == 12

    code, out = cli("label", "status", "-c", str(yaml), "--json")
    status = json.loads(out)
    assert status["version"] == 1 and status["labels"] == 12 and status["rows"] == 11
    assert status["agreement"]["rows_with_several_annotators"] == 1
    assert status["agreement"]["all_agree_share"] == 0.0
    assert len(status["held"]) == 1  # majority of a 1-1 tie: held
    code, text = cli("label", "status", "-c", str(yaml))
    assert "held for review: 1" in text

    # the pipeline now trains on the source rows plus the 10 resolved labelled rows
    from modelyard.recipe import Project

    p = Project.from_yaml(yaml)
    plan = {s.name: s for s in p.plan()}
    assert {"labels", "labelled"} <= set(plan)
    assert plan["ingest"].action == "cached" and plan["validate"].action != "cached"
    run = p.run()  # the whole pipeline: retraining goes through the gate as usual
    source = pl.read_csv(Path(p.config.data.source.path), infer_schema=False).height
    assert run.output("labelled").rows.height == source + 10
    assert run.ran[:2] == ["labels", "labelled"] and "ingest" in run.cached
    assert run.registration is not None and run.registration.previous_champion is not None
    assert run.registration.decision is not None
    assert {s.name: s.action for s in p.plan()}["labels"] == "cached"  # nothing new: cached


def test_the_queue_reads_the_serving_prediction_log(project: tuple[Path, Path]) -> None:
    from modelyard.ops.serving.predlog import LogOptions, PredictionLog, dumps

    yaml, root = project
    rows = pl.read_csv(root / "unlabelled.csv").head(20).to_dicts()
    log = PredictionLog(LogOptions(path=root / "predlog"))
    now = "2026-12-01T10:00:00+00:00"
    log.put(
        [(f"r{i}", 0, now, None, "/predict", "served", "penguins", "1", dumps(row), dumps("Adelie"),
          None, None, 1.0) for i, row in enumerate(rows)]
        + [("bad", 0, now, None, "/predict", "rejected", "penguins", "1", dumps({"island": 3}),
            None, None, "[]", 1.0)]
    )  # fmt: skip
    log.close()
    code, out = cli("label", "queue", "-c", str(yaml), "--log", str(root / "predlog"),
                    "--budget", "5", "--json")  # fmt: skip
    assert code == 0, out
    queue = json.loads(out)
    assert len(queue["items"]) == 5 and queue["skipped"]["rejected requests"] == 1
    assert all(
        i["key"].startswith("h:") and set(i["row"]) >= {"island", "sex"} for i in queue["items"]
    )


def _same(a: dict[str, object], b: dict[str, object]) -> bool:
    def num(v: object) -> object:
        try:
            return float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return v

    return a.keys() == b.keys() and all(num(a[k]) == num(b[k]) for k in a)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["label", "queue"], "exactly one input"),
        (["label", "queue", "--data", "nope.csv"], "does not exist"),
        (["label", "queue", "--dataset", "--budget", "0"], "budget must be at least 1"),
        (["label", "queue", "--dataset"], "no unlabelled rows to queue"),
        (["label", "import", "--format", "labelbox", "missing.ndjson"], "does not exist"),
        (["label", "import", "--format", "labelbox", "EMPTY"], "holds no labels"),
        (["label", "export", "--format", "prodigy", "--out", "x"], "'prodigy' is not one of"),
        (["label", "queue", "--data", "EMPTY.csv"], "the file is empty"),
        (["label", "queue", "--data", "WRONG.csv"], "lack the model's feature column"),
        (["label", "queue", "--log", "nolog"], "prediction log folder does not exist"),
        (["label", "import", "--format", "labelbox", "ARRAY"], "no label could be read"),
    ],
)
def test_bad_input_gives_a_clear_message_without_a_traceback(
    project: tuple[Path, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    yaml, _ = project
    files = {"EMPTY": "", "EMPTY.csv": "", "WRONG.csv": "a,b\n1,2\n",
             "ARRAY": json.dumps([{"id": 1, "annotations": []}], indent=2)}  # fmt: skip
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = [str(tmp_path / a) if a in files or a.endswith((".csv", ".ndjson")) or a == "nolog"
            else a for a in args]  # fmt: skip
    code, out = cli(*args, "-c", str(yaml))
    assert code != 0
    assert message in out and "Traceback" not in out


def test_an_unknown_format_is_refused_by_name(project: tuple[Path, Path]) -> None:
    yaml, _ = project
    code, out = cli("label", "export", "-c", str(yaml), "--format", "cvat", "--out", "x")
    assert code == 2 and "'cvat' is not one of 'label-studio', 'labelbox'" in out

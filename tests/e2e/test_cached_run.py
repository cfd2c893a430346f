"""Issue 12: an unchanged `modelyard run` costs almost nothing: it loads no step output,
publishes nothing and imports no ML library; what changed (a published file, a setting, a
registry that lost the model) is done again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import small_quickstart
from tests.e2e.test_cli import modelyard

HEAVY = ("sklearn", "scipy", "xgboost", "lightgbm", "mlflow", "optuna", "pandas")

IN_PROCESS = f"""
import json, sys
from importlib.metadata import entry_points

main = entry_points(group="console_scripts")["modelyard"].load()
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("LOADED=" + json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))))
print("EXIT=" + json.dumps(code))
"""
"""The CLI called in this process (its console-script entry point), then the heavy libraries
the command imported."""


def in_process(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert json.loads(lines["EXIT"]) in (0, None), done.stderr
    return done, json.loads(lines["LOADED"])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The quickstart with a small model search (the cached run is what is tested)."""
    return small_quickstart(tmp_path / "quickstart")


def published(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file a run wrote where the user looks: its inode and modification time."""
    files = [*(folder / "modelyard-out").rglob("*"), folder / "contract.yaml"]
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in files
        if p.is_file()
    }


def test_an_unchanged_run_loads_publishes_and_imports_nothing_but_a_change_publishes(
    project: Path,
) -> None:
    first = modelyard("run", cwd=project)
    assert first.returncode == 0, first.stderr
    before = published(project)
    assert {"modelyard-out/report.html", "modelyard-out/run.json", "contract.yaml"} <= set(before)

    second, loaded = in_process("run", cwd=project)
    assert loaded == []  # not even the model zoo behind the cached model
    assert "0 steps ran, 11 cached" in second.stdout  # results on stdout, progress on stderr
    assert "model: quickstart version 1" in second.stdout  # the summary as before
    assert published(project) == before  # nothing rewritten, nothing replaced
    as_json, loaded = in_process("run", "--json", cwd=project)
    assert loaded == []
    result = json.loads(as_json.stdout[: as_json.stdout.rindex("}") + 1])
    assert {s["status"] for s in result["steps"]} == {"cached"}
    assert result["registration"]["version"] == "1"
    assert result["validation"]["train"]["rows"] == 569
    assert published(project) == before
    dry, loaded = in_process("run", "--dry-run", cwd=project)
    assert loaded == [] and dry.stdout.count("cached") == 11

    # a published file deleted, or edited: the outputs are published again
    (project / "modelyard-out" / "report.html").unlink()
    (project / "modelyard-out" / "leaderboard.json").write_text("{}")
    third, loaded = in_process("run", cwd=project)
    assert "0 steps ran, 11 cached" in third.stdout
    assert (project / "modelyard-out" / "report.html").is_file()
    assert json.loads((project / "modelyard-out" / "leaderboard.json").read_text())["rows"]
    assert published(project)["modelyard-out/run.json"] != before["modelyard-out/run.json"]
    again = published(project)
    assert in_process("run", cwd=project)[1] == [] and published(project) == again

    # the contract file deleted: written again
    (project / "contract.yaml").unlink()
    assert modelyard("run", cwd=project).returncode == 0
    assert (project / "contract.yaml").is_file()

    # a setting the reports depend on: the profile runs again and its report is rewritten
    config = yaml.safe_load((project / "modelyard.yaml").read_text())
    config["profile"]["bins"] = 7
    (project / "modelyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    changed = json.loads(modelyard("run", "--json", cwd=project).stdout)
    assert "profile" in [s["name"] for s in changed["steps"] if s["status"] == "ran"]
    assert published(project)["modelyard-out/profile.html"] != again["modelyard-out/profile.html"]

    # where the outputs go: published there
    config["output_dir"] = "elsewhere"
    (project / "modelyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    moved = json.loads(modelyard("run", "--json", cwd=project).stdout)
    assert {s["status"] for s in moved["steps"]} == {"cached"}
    assert (project / "elsewhere" / "report.html").is_file()
    assert (project / "elsewhere" / "run.json").is_file()


def test_a_registry_that_lost_the_model_registers_it_again(project: Path) -> None:
    """A cached run must leave the project as a run does: with its model in the registry."""
    assert modelyard("run", cwd=project).returncode == 0
    workdir = project / ".modelyard"

    # the model's files gone: said, and done again
    (workdir / "mlartifacts").rename(workdir / "moved")
    plan = json.loads(modelyard("run", "--dry-run", "--json", cwd=project).stdout)
    register = next(s for s in plan if s["name"] == "register")
    assert (
        register["action"] == "run" and "files of model quickstart version 1" in register["reason"]
    )
    (workdir / "moved").rename(workdir / "mlartifacts")
    assert "register           cached" in modelyard("run", "--dry-run", cwd=project).stdout

    # the whole registry deleted
    (workdir / "mlflow.db").unlink()
    plan = json.loads(modelyard("run", "--dry-run", "--json", cwd=project).stdout)
    actions = {s["name"]: (s["action"], s["reason"]) for s in plan}
    assert actions.pop("register")[0] == "run"
    assert {a for a, _ in actions.values()} == {"cached"}
    again = modelyard("run", "--json", cwd=project)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert [s["name"] for s in result["steps"] if s["status"] == "ran"] == ["register"]
    registration = result["registration"]
    assert (registration["version"], registration["decision"]["promote"]) == ("1", True)
    listed = json.loads(modelyard("models", "list", "--json", cwd=project).stdout)
    assert [(v["version"], v["aliases"]) for v in listed] == [("1", ["champion"])]

    # the new registration is the one kept: the next run is cached and reports it
    cached, loaded = in_process("run", "--json", cwd=project)
    assert loaded == []
    last = json.loads(cached.stdout[: cached.stdout.rindex("}") + 1])
    assert {s["status"] for s in last["steps"]} == {"cached"}
    assert last["registration"]["run_id"] == registration["run_id"]

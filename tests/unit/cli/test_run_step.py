"""``modelyard run --step NAME [--store URL]``: one step, as a Kubeflow component runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main

DATA_ONLY = "version: 1\nname: rows\ndata:\n  source: {path: rows.csv}\n"
STEPS = ["ingest", "contract", "validate", "profile"]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A project of four data steps (no target: no model search)."""
    monkeypatch.delenv("MODELYARD_STORE", raising=False)
    rows = [f"{i % 7 + 4.5},{i % 5},{'abc'[i % 3]}" for i in range(60)]
    (tmp_path / "rows.csv").write_text("a,b,c\n" + "\n".join(rows) + "\n")
    (tmp_path / "modelyard.yaml").write_text(DATA_ONLY)
    return str(tmp_path / "modelyard.yaml")


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = CliRunner().invoke(main, list(args), env=env)
    return done.exit_code, done.stdout, done.stderr


def test_steps_run_one_by_one_with_the_plans_keys_then_have_nothing_to_do(
    config: str, tmp_path: Path
) -> None:
    store = str(tmp_path / "shared-store")
    keys = {}
    for name in STEPS:
        code, out, err = cli("run", "-c", config, "--step", name, "--store", store, "--json")
        assert code == 0, err
        result = json.loads(out)
        assert (result["step"], result["status"], result["store"]) == (name, "ran", store)
        keys[name] = result["key"]
    assert sorted(p.name for p in (tmp_path / "shared-store" / "artifacts").iterdir()) == sorted(
        STEPS
    )
    assert not (tmp_path / ".modelyard" / "artifacts").exists()  # the store was elsewhere
    assert not (tmp_path / "modelyard-out").exists()  # a step publishes nothing
    code, out, _ = cli("run", "-c", config, "--step", "profile", "--store", store)
    assert code == 0
    assert out.startswith(
        f"profile: nothing to do, its output is in the store (key {keys['profile']}"
    )
    # a whole run finds every step there, under the same keys
    code, out, _ = cli("run", "-c", config, "--store", store, "--json")
    assert code == 0
    steps = json.loads(out)["steps"]
    assert {s["name"]: (s["status"], s["key"]) for s in steps} == {
        name: ("cached", key) for name, key in keys.items()
    }


def test_the_store_comes_from_the_flag_then_the_environment_then_the_config(
    config: str, tmp_path: Path
) -> None:
    Path(config).write_text(DATA_ONLY + f"store: {tmp_path / 'from-config'}\n")
    env = {"MODELYARD_STORE": str(tmp_path / "from-env")}
    flag = str(tmp_path / "from-flag")
    assert cli("run", "-c", config, "--step", "ingest")[0] == 0
    assert cli("run", "-c", config, "--step", "ingest", env=env)[0] == 0
    assert cli("run", "-c", config, "--step", "ingest", "--store", flag, env=env)[0] == 0
    for where in ("from-config", "from-env", "from-flag"):
        assert (tmp_path / where / "artifacts" / "ingest").is_dir(), where
    assert not (tmp_path / ".modelyard" / "artifacts").exists()


def test_a_missing_input_names_the_step_to_run_first_without_a_traceback(config: str) -> None:
    code, out, err = cli("run", "-c", config, "--step", "validate")
    assert code != 0 and out == ""
    assert "step 'validate' needs the output of steps 'contract', 'ingest'" in err
    assert f"Run `modelyard run -c {config} --step ingest` first" in err
    assert f"`modelyard run -c {config} --until validate`" in err
    assert "Traceback" not in err


def test_a_name_that_is_not_a_step_lists_the_steps(config: str) -> None:
    code, _, err = cli("run", "-c", config, "--step", "profil")
    assert code != 0
    assert "there is no step 'profil' (did you mean 'profile'?)" in err
    assert "steps: ingest, contract, validate, profile" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("other", [["--from", "ingest"], ["--until", "profile"], ["--dry-run"]])
def test_step_with_from_until_or_dry_run_is_a_usage_error(config: str, other: list[str]) -> None:
    code, _, err = cli("run", "-c", config, "--step", "ingest", *other)
    assert code == 2
    assert "--step" in err and "cannot go with" in err

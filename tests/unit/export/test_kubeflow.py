"""``modelyard export kubeflow``: the KFP v2 IR of every example passes kfp-pipeline-spec's
strict parse, recompiles to the same bytes, has the pipeline's edges, turns Kubeflow's caching
off, and carries secrets by reference only; bad flags are clear errors and leave no file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from modelyard.cli import main
from modelyard.errors import ModelyardError
from modelyard.export import SecretEnv, Task, Workflow, parse_env, parse_secret
from modelyard.export.kubeflow import compile_workflow
from modelyard.recipe import Project
from tests.conftest import EXAMPLES, copy_project
from tests.unit.export.kfp_spec import container, strict_parse, task_order

STORE = "s3://modelyard-test/project"
EXAMPLE_NAMES = sorted(p.parent.name for p in EXAMPLES.glob("*/modelyard.yaml"))


def export(config: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["export", "kubeflow", "-c", str(config), "--image", "registry.example/proj:1",
         "--store", STORE, "--out", str(out), *extra],
    )  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    return copy_project(EXAMPLES / "quickstart", tmp_path / "quickstart") / "modelyard.yaml"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_exports_a_strictly_valid_spec_with_the_pipelines_edges(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    monkeypatch.setenv("MODELYARD_DATA", str(shared_data))  # where the examples' data is
    config = copy_project(EXAMPLES / name, tmp_path / name) / "modelyard.yaml"
    code, output = export(config, tmp_path / "a.yaml")
    assert code == 0, output
    parsed = strict_parse((tmp_path / "a.yaml").read_text())
    raw = parsed.raw
    steps = Project.from_yaml(config).pipeline().steps
    tasks = raw["root"]["dag"]["tasks"]
    by_step = {t["taskInfo"]["name"]: key for key, t in tasks.items()}
    assert sorted(by_step) == sorted(s.name for s in steps)  # one task per step
    edges = {
        (t_up, t["taskInfo"]["name"])
        for t in tasks.values()
        for t_up in (
            next(n for n, k in by_step.items() if k == dep) for dep in t.get("dependentTasks", [])
        )
    }
    assert edges == {(up, s.name) for s in steps for up in s.upstream}
    for step in steps:
        box = container(raw, by_step[step.name])
        assert box["command"] + box["args"] == [
            "modelyard", "run", "-c", "/project/modelyard.yaml", "--step", step.name,
            "--store", STORE,
        ]  # fmt: skip
        assert box["image"] == "registry.example/proj:1"
    # Kubeflow's caching is off for every task (modelyard's keys decide)
    for task in parsed.spec.root.dag.tasks.values():
        assert task.HasField("caching_options")
        assert task.caching_options.enable_cache is False
    # recompiling gives the same bytes
    code, output = export(config, tmp_path / "b.yaml")
    assert code == 0, output
    assert (tmp_path / "a.yaml").read_bytes() == (tmp_path / "b.yaml").read_bytes()


def test_recompiling_in_other_processes_gives_the_same_bytes(
    quickstart: Path, tmp_path: Path
) -> None:
    """No timestamp, no set order, no hash seed in the file."""
    texts = []
    for seed in ("1", "2"):
        out = tmp_path / f"p{seed}.yaml"
        done = subprocess.run(
            [sys.executable, "-c", "from modelyard.cli import main; main()", "export", "kubeflow", "-c", str(quickstart),
             "--image", "img:1", "--store", STORE, "--out", str(out),
             "--secret", "aws:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY", "--secret", "db:pw=PGPASSWORD",
             "--env", "AWS_ENDPOINT_URL=http://minio:9000", "--env", "A=1"],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        texts.append(out.read_bytes())
    assert texts[0] == texts[1]
    strict_parse(texts[0].decode())


def test_the_task_order_respects_the_dependencies(quickstart: Path, tmp_path: Path) -> None:
    export(quickstart, tmp_path / "p.yaml")
    raw = strict_parse((tmp_path / "p.yaml").read_text()).raw
    order = task_order(raw)
    tasks = raw["root"]["dag"]["tasks"]
    for i, name in enumerate(order):
        assert set(tasks[name].get("dependentTasks", [])) <= set(order[:i])
    assert order[0] == "ingest"


def test_secrets_are_references_never_values(
    quickstart: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentinel = "s3cr3t-value-that-must-not-leak"
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "password"):
        monkeypatch.setenv(var, sentinel)
    code, output = export(
        quickstart, tmp_path / "p.yaml",
        "--secret", "aws-creds:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY",
        "--secret", "db:password=PGPASSWORD",
        "--env", "AWS_ENDPOINT_URL=http://minio:9000",
    )  # fmt: skip
    assert code == 0, output
    text = (tmp_path / "p.yaml").read_text()
    assert sentinel not in text
    parsed = strict_parse(text)
    assert parsed.platform is not None and parsed.raw_platform is not None
    executors = parsed.raw_platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == set(parsed.raw["deploymentSpec"]["executors"])
    for config in executors.values():
        assert config["secretAsEnv"] == [
            {"keyToEnv": [{"envVar": "AWS_ACCESS_KEY_ID", "secretKey": "AWS_ACCESS_KEY_ID"},
                          {"envVar": "AWS_SECRET_ACCESS_KEY", "secretKey": "AWS_SECRET_ACCESS_KEY"}],
             "optional": False, "secretName": "aws-creds",
             "secretNameParameter": {"runtimeValue": {"constant": "aws-creds"}}},
            {"keyToEnv": [{"envVar": "PGPASSWORD", "secretKey": "password"}],
             "optional": False, "secretName": "db",
             "secretNameParameter": {"runtimeValue": {"constant": "db"}}},
        ]  # fmt: skip
    for executor in parsed.raw["deploymentSpec"]["executors"].values():
        # the plain env only: the secrets' variables are set by the platform spec
        assert executor["container"]["env"] == [
            {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"}
        ]


def test_without_secrets_there_is_no_platform_document(quickstart: Path, tmp_path: Path) -> None:
    export(quickstart, tmp_path / "p.yaml")
    text = (tmp_path / "p.yaml").read_text()
    assert "\n---" not in text
    assert strict_parse(text).platform is None
    assert "env" not in container(yaml.safe_load(text), "ingest")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "/tmp/store"], "local path"),
        (["--store", "store"], "local path"),
        (["--store", "file:///tmp/store"], "local path"),
        (["--store", "s3://me:pw@bucket/p"], "holds credentials"),
        (["--secret", "aws"], "needs the keys"),
        (["--secret", "aws:"], "needs the keys"),
        (["--secret", "AWS_Creds:KEY"], "not a Kubernetes secret name"),
        (["--secret", "aws:bad key"], "not a key of a Kubernetes secret"),
        (["--secret", "aws:tls.crt"], "needs an environment variable name"),
        (["--secret", "aws:KEY=1X"], "needs an environment variable name"),
        (["--secret", "aws:KEY,KEY"], "named twice"),
        (["--secret", "a:K", "--secret", "b:K"], "set twice"),
        (["--env", "AWS_SECRET_ACCESS_KEY=abc"], "in clear"),
        (["--env", "DB_URL=postgresql://me:pw@db/app"], "in clear"),
        (["--env", "no-equals"], "not an environment variable"),
        (["--config-path-in-image", "project/modelyard.yaml"], "must be absolute"),
        (["--image", ""], "no image"),
    ],
)
def test_bad_flags_are_clear_errors_and_write_nothing(
    quickstart: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "p.yaml"
    out.write_text("the previous file\n")
    code, output = export(quickstart, out, *args)
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    assert "pw@" not in output  # a password is masked in the message
    assert out.read_text() == "the previous file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml", "quickstart"]


@pytest.mark.parametrize("missing", ["--image", "--store", "--out"])
def test_a_missing_required_flag_is_named(quickstart: Path, tmp_path: Path, missing: str) -> None:
    args = {"--image": "img:1", "--store": STORE, "--out": str(tmp_path / "p.yaml")}
    del args[missing]
    flat = [x for pair in args.items() for x in pair]
    result = CliRunner().invoke(main, ["export", "kubeflow", "-c", str(quickstart), *flat])
    assert result.exit_code == 2
    assert f"Missing option '{missing}'" in result.output


def test_an_unwritable_out_is_a_clear_error_and_leaves_no_half_file(
    quickstart: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, output = export(quickstart, blocker / "p.yaml")  # a folder that is a file
    assert code == 2
    assert "cannot write the pipeline file" in output and "Traceback" not in output
    code, output = export(quickstart, tmp_path)  # a folder
    assert code == 2 and "the output is a folder" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "quickstart"]


def test_the_out_is_replaced_whole(quickstart: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "er" / "p.yaml"
    assert export(quickstart, out)[0] == 0
    first = out.read_bytes()
    assert export(quickstart, out, "--env", "A=1")[0] == 0
    assert out.read_bytes() != first
    assert [p.name for p in out.parent.iterdir()] == ["p.yaml"]  # no temporary file left


def test_the_config_path_in_the_image_and_the_help(quickstart: Path, tmp_path: Path) -> None:
    code, _ = export(quickstart, tmp_path / "p.yaml", "--config-path-in-image", "/app/my.yaml")
    assert code == 0
    args = container(yaml.safe_load((tmp_path / "p.yaml").read_text()), "split")["args"]
    assert args[:3] == ["run", "-c", "/app/my.yaml"]
    help_text = CliRunner().invoke(main, ["export", "kubeflow", "--help"]).output
    assert "caching is off" in help_text and "create_run_from_pipeline_package" in help_text


def test_step_names_that_collide_as_kubeflow_names_are_refused() -> None:
    workflow = Workflow(
        "p", "img", STORE, (Task("a_b", ("modelyard",)), Task("a-b", ("modelyard",)))
    )
    with pytest.raises(ModelyardError, match="no distinct Kubeflow task name"):
        compile_workflow(workflow)


def test_a_pipeline_name_is_made_a_kubernetes_name() -> None:
    workflow = Workflow("My_Project.v2-", "img", STORE, (Task("ingest", ("modelyard",)),))
    parsed = strict_parse(compile_workflow(workflow))
    assert parsed.spec.pipeline_info.name == "my-project-v2"
    assert parsed.spec.pipeline_info.display_name == "My_Project.v2-"


_NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
_ENV = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)


@given(
    name=_NAME,
    mapping=st.dictionaries(st.from_regex(r"[-._a-zA-Z0-9]{1,12}", fullmatch=True), _ENV,
                            min_size=1, max_size=4),
)  # fmt: skip
def test_a_secret_spec_round_trips_into_the_platform_spec(
    name: str, mapping: dict[str, str]
) -> None:
    spec = f"{name}:" + ",".join(f"{k}={v}" for k, v in mapping.items())
    secret = parse_secret(spec)
    assert secret == SecretEnv(name, mapping)
    if len(set(mapping.values())) < len(mapping):
        return  # two keys into one variable: refused when the workflow is built
    workflow = Workflow("p", "img", STORE, (Task("ingest", ("modelyard",)),), secrets=(secret,))
    parsed = strict_parse(compile_workflow(workflow))
    assert parsed.raw_platform is not None
    config = parsed.raw_platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    pairs = config["exec-ingest"]["secretAsEnv"][0]["keyToEnv"]
    assert {p["secretKey"]: p["envVar"] for p in pairs} == mapping


@given(st.text(max_size=40))
def test_any_secret_or_env_text_parses_or_is_a_clear_error(text: str) -> None:
    for parse in (parse_secret, parse_env):
        try:
            parse(text)
        except ModelyardError as exc:
            assert str(exc)

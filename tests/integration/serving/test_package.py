"""``modelyard package``: the build context lints (hadolint, kubernetes-validate) and the server
starts from the context's own requirements in a fresh virtual environment, as the Dockerfile
runs it, and answers /ready and /predict."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from modelyard.cli.serve import package
from tests.conftest import skip_or_fail
from tests.integration.conftest import free_port, wait_http
from tests.unit.ops.serving._world import NAME, build_world

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(path).exists():
        skip_or_fail(f"{name} is not installed")
    return path


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.ensemble import HistGradientBoostingClassifier

    root = tmp_path_factory.mktemp("pkg")
    world = build_world(root, [HistGradientBoostingClassifier(max_iter=20, random_state=0)])
    out = root / "context"
    result = CliRunner().invoke(
        package,
        ["--model", f"{NAME}@champion", "--tracking-uri", world.tracking_uri, "--out", str(out),
         "-c", str(root / "none.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_context_layout_and_lints(context: Path) -> None:
    for name in ("Dockerfile", "requirements.txt", "serve.json", "model/MLmodel",
                 "model/contract.yaml", "modelyard/ops/serving/app.py", "k8s/deployment.yaml",
                 "k8s/service.yaml", "k8s/hpa.yaml", "k8s/servicemonitor.yaml",
                 ".github/workflows/image.yml"):  # fmt: skip
        assert (context / name).is_file(), name
    reqs = (context / "requirements.txt").read_text()
    pinned = [line for line in reqs.splitlines() if line and not line.startswith("#")]
    assert all("==" in line for line in pinned)
    names = {re.split("==", line)[0].lower() for line in pinned}
    assert {"fastapi", "uvicorn", "scikit-learn", "mlflow-skinny"} <= names
    assert not names & {"optuna", "lightgbm", "xgboost-cpu", "mlflow", "torch"}  # no training stack
    hadolint = subprocess.run(
        [_tool("hadolint"), str(context / "Dockerfile")], capture_output=True, text=True
    )
    assert hadolint.returncode == 0, hadolint.stdout + hadolint.stderr
    validate = _tool("kubernetes-validate")
    for name in ("deployment", "service", "hpa"):
        done = subprocess.run(
            [validate, str(context / "k8s" / f"{name}.yaml")], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
    deployment = yaml.safe_load((context / "k8s" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["limits"]
    docker = (context / "Dockerfile").read_text()
    assert "USER 10001" in docker and "HEALTHCHECK" in docker


def _dockerfile_env_and_cmd(text: str) -> tuple[dict[str, str], list[str]]:
    joined = text.replace("\\\n", " ")
    env: dict[str, str] = {}
    cmd: list[str] = []
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for key, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[key] = value
        if line.startswith("CMD "):
            cmd = json.loads(line[4:])
    return env, cmd


def test_server_starts_from_the_context_in_a_fresh_venv(context: Path, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        skip_or_fail("uv is not installed")
    app = tmp_path / "app"  # the image's /app: what the Dockerfile copies
    shutil.copytree(context, app, ignore=shutil.ignore_patterns("k8s", ".github"))
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True
    )
    py = venv / "bin" / "python"
    done = subprocess.run(
        [uv, "pip", "install", "--python", str(py), "-r", str(app / "requirements.txt")],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    env_vars, cmd = _dockerfile_env_and_cmd((app / "Dockerfile").read_text())
    port = free_port()
    env = {k: v.replace("/app", str(app)) for k, v in env_vars.items()}
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env}
    argv = [str(py) if a == "python" else a for a in cmd]
    argv = [str(port) if a == "8080" else "127.0.0.1" if a == "0.0.0.0" else a for a in argv]
    log = tmp_path / "server.log"
    proc = subprocess.Popen(argv, cwd=app, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", timeout=90, proc=proc, log=log)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        record = {"island": "Biscoe", "sex": "FEMALE", "bill_length_mm": 45.0,
                  "bill_depth_mm": 15.0, "flipper_length_mm": 215, "body_mass_g": 5000}  # fmt: skip
        conn.request("POST", "/predict", json.dumps(record), {"Content-Type": "application/json"})
        res = conn.getresponse()
        body = json.loads(res.read())
        assert res.status == 200, body
        assert body["predictions"][0]["prediction"] == "Gentoo"
        assert body["model"]["name"] == NAME
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

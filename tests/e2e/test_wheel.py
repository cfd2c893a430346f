"""The built wheel, installed in a fresh virtual environment, runs on a user's own data in a
folder outside the repository (README: "Your own data").

The wheel is installed with its declared dependencies: uv resolves them from the wheel's own
metadata (a missing or wrong requirement fails here), constrained to the lock file's versions,
so that the packages come from uv's cache (offline) when ``uv run`` has synced the project,
and from the package index otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, skip_or_fail

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the wheel, the venv's bin folder, a clean environment) after a fresh install."""
    uv = shutil.which("uv")
    if uv is None:
        skip_or_fail("uv is not on PATH (pip install uv)")
    assert uv is not None
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
    built = _run([uv, "build", "--wheel", "--out-dir", str(tmp / "dist"), str(ROOT)], tmp, env)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("modelyard-*.whl")

    pins = _run([uv, "export", "--frozen", "--no-hashes", "--no-dev", "--no-emit-project",
                 "--all-extras", "--project", str(ROOT)], tmp, env)  # fmt: skip
    assert pins.returncode == 0, pins.stderr
    (tmp / "constraints.txt").write_text(pins.stdout, encoding="utf-8")
    venv = tmp / "venv"
    made = _run([uv, "venv", "--quiet", "--python", os.path.realpath(sys.executable),
                 str(venv)], tmp, env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    install = [uv, "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel),
               "--constraint", str(tmp / "constraints.txt")]  # fmt: skip
    done = _run([*install, "--offline"], tmp, env)
    if done.returncode != 0:  # uv's cache lacks something: fetch it from the package index
        done = _run(install, tmp, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return wheel, venv / "bin", env


def test_the_wheel_holds_every_file_of_the_package(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "src"
    expected = {
        p.relative_to(package).as_posix()
        for p in (package / "modelyard").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert expected, "no source files found"
    assert expected <= names, sorted(expected - names)
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)


def test_the_installed_command_runs_on_your_own_data_outside_the_repository(
    installed: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    _, bin_dir, env = installed
    exe = str(bin_dir / "modelyard")
    own = tmp_path / "my-project"
    own.mkdir()
    assert ROOT not in own.parents

    where = _run([str(bin_dir / "python"), "-c", "import modelyard; print(modelyard.__file__)"],
                 own, env)  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(bin_dir.parent), where.stdout  # not src/

    shown = _run([exe, "--help"], own, env)
    assert shown.returncode == 0, shown.stderr
    assert "init" in shown.stdout and "run" in shown.stdout

    rows = ["age,city,income,churned"] + [
        f"{20 + i % 50},{'abc'[i % 3]},{1000 + 37 * i},{'yes' if i % 4 == 0 else 'no'}"
        for i in range(40)
    ]
    (own / "customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    init = _run([exe, "init", "customers.csv", "--target", "churned"], own, env)
    assert init.returncode == 0, init.stderr
    config = yaml.safe_load((own / "modelyard.yaml").read_text(encoding="utf-8"))
    assert config["data"]["target"] == "churned"

    ran = _run([exe, "run", "--until", "validate"], own, env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert (own / "contract.yaml").is_file()
    assert (own / ".modelyard").is_dir()
    assert not (ROOT / "customers.csv").exists()


def test_the_whole_main_job_runs_on_the_runtime_dependencies_alone(
    installed: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    """The pipeline, the registry and batch scoring, with no pyarrow and no dev tool."""
    _, bin_dir, env = installed
    exe = str(bin_dir / "modelyard")
    absent = _run([str(bin_dir / "python"), "-c", "import pyarrow"], tmp_path, env)
    assert absent.returncode != 0 and "No module named 'pyarrow'" in absent.stderr
    rows = ["age,city,member,income,churned"] + [  # churn follows income, with some noise
        f"{20 + i % 50},{'abc'[i % 3]},{'true' if i % 5 else 'false'},{1000 + 37 * (i % 23)},"
        f"{'yes' if (i % 23 > 11) != (i % 7 == 0) else 'no'}"
        for i in range(80)
    ]  # (a target no model here can learn is now refused by the gate's baseline check)
    (tmp_path / "customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    init = _run([exe, "init", "customers.csv", "--target", "churned"], tmp_path, env)
    assert init.returncode == 0, init.stderr
    config = yaml.safe_load((tmp_path / "modelyard.yaml").read_text(encoding="utf-8"))
    config["models"] |= {"candidates": ["linear", "lightgbm"], "budget": "10m"}
    config["tuning"] = {"top_k": 0}
    config["compute"] = {"executor": "serial"}
    (tmp_path / "modelyard.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    ran = _run([exe, "run"], tmp_path, env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "promoted to champion" in ran.stderr + ran.stdout
    scored = _run([exe, "predict", "customers.csv", "--out", "scored.csv"], tmp_path, env)
    assert scored.returncode == 0, scored.stderr[-3000:]
    lines = (tmp_path / "scored.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 81 and "prediction" in lines[0]

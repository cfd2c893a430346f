"""What a user installs: the main command gets the runtime dependencies only, CI runs the
README's test command, and nothing pulls CUDA or torch wheels."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, skip_or_fail

DEV_TOOLS = {"pytest", "hypothesis", "ruff", "mypy", "import-linter", "moto", "schemathesis"}
GPU = re.compile(r"^(nvidia-|torch|triton|cupy|jax)", re.I)


def _test_command(text: str) -> str:
    lines = [line for line in text.splitlines() if " pytest" in line and "uv run" in line]
    assert len(lines) == 1, f"expected one test command, found {lines}"
    return lines[0].strip()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = _test_command((ROOT / "README.md").read_text(encoding="utf-8").split("## ")[0])
    ci = _test_command((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    assert ci == readme
    assert "--dev" in readme or "--group dev" in readme, "the tests need the dev group"
    assert readme in (ROOT / "DEVELOPERS.md").read_text(encoding="utf-8")


def _exported(*args: str) -> set[str]:
    uv = shutil.which("uv")
    if uv is None:
        skip_or_fail("uv is not on PATH (pip install uv)")
    assert uv is not None
    out = subprocess.run(
        [uv, "export", "--frozen", "--no-hashes", "--no-emit-project", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    names = set()
    for line in out.stdout.splitlines():
        if line and not line.startswith(("#", " ")):
            names.add(re.split(r"[=<>;\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_the_default_install_has_no_dev_tools() -> None:
    """``uv run modelyard ...`` installs the default groups: runtime dependencies only."""
    default = _exported()
    assert {"mlflow-skinny", "scikit-learn", "polars"} <= default
    assert not default & DEV_TOOLS, sorted(default & DEV_TOOLS)
    assert _exported("--dev") >= DEV_TOOLS, "the dev group lost a tool the checks use"


@pytest.mark.parametrize(
    "scope",
    [
        (),
        ("--all-extras", "--dev"),
        ("--all-extras", "--no-default-groups", "--group", "labelstudio"),
    ],
)
def test_nothing_pulls_gpu_wheels(scope: tuple[str, ...]) -> None:
    names = _exported(*scope)
    assert not {n for n in names if GPU.match(n)}, sorted(n for n in names if GPU.match(n))
    assert "xgboost-cpu" in names and "xgboost" not in names

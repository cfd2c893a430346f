"""Shared fixtures: the real datasets in ../shared/data and a CI-aware skip."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]  # fmt: skip
"""The Adult files have no header: their column names (adult.names)."""


RUN_STATE = (
    ".modelyard", "modelyard-out", "contract.yaml", "mlflow.db", "mlruns", "mlartifacts",
    "__pycache__", "*.pyc", ".*.tmp",
)  # fmt: skip
"""What a user's run leaves in an example's folder (the cache, the outputs, the inferred
contract, an MLflow store): never copied into a test's project."""


def copy_project(source: Path, dest: Path) -> Path:
    """A copy of an example project's own files only: a test never reads the state that a
    user's run (the README's main job) left in the checkout."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*RUN_STATE))
    return dest


def small_quickstart(dest: Path, **sections: dict[str, object]) -> Path:
    """A copy of the quickstart with a small, reproducible model search (two cheap candidates,
    one tuning trial, no permutation importance); ``sections`` replace whole sections
    (``tuning={...}``, ``tracking={...}``). Returns the project's folder."""
    import yaml

    folder = copy_project(EXAMPLES / "quickstart", dest)
    config = yaml.safe_load((folder / "modelyard.yaml").read_text())
    config["models"] |= {"candidates": ["dummy", "linear"], "budget": "10m"}
    config["tuning"] = {"top_k": 0, "n_trials": 1}
    config["evaluation"] = {"permutation_importance": False}
    config |= sections
    (folder / "modelyard.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def assert_packed(sizes: list[int], batch_rows: int) -> None:
    """A streamed table's parts: none empty, none above ``batch_rows`` rows, no two neighbours
    that would fit in one part (so a table of at most ``batch_rows`` rows is one part)."""
    assert sizes and all(0 < n <= batch_rows for n in sizes), sizes
    assert all(a + b > batch_rows for a, b in itertools.pairwise(sizes)), sizes


def skip_or_fail(reason: str) -> None:
    """Skip on a user's machine; under CI=true a missing component is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: every real component must be exercised)")
    pytest.skip(reason)


def shared_data_dir() -> Path:
    return Path(os.environ.get("MODELYARD_DATA") or ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets (``../shared/data``, or ``$MODELYARD_DATA``)."""
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        skip_or_fail(f"the shared datasets are not at {path}; set MODELYARD_DATA")
    return path

"""The layering rules of DESIGN.md and the cheap-import promise, enforced."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = [
    "pandas",
    "polars",
    "sklearn",
    "mlflow",
    "fastapi",
    "optuna",
    "pyarrow",
    "numpy",
    "pydantic",
]


def test_import_layers_hold() -> None:
    """cli > recipe > reports > ops > modeling > data > config > errors; engine stands apart."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    done = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _modules_loaded_by(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}


def test_import_modelyard_loads_no_heavy_library() -> None:
    assert not set(HEAVY) & _modules_loaded_by("import modelyard")


def test_help_loads_no_heavy_library() -> None:
    code = "import sys\nfrom modelyard.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert not set(HEAVY) & _modules_loaded_by(code)


def test_public_api_is_small_and_lazy() -> None:
    import modelyard

    assert set(modelyard.__all__) == {"Project", "RunResult", "ModelyardError", "__version__"}
    assert modelyard.Project.__name__ == "Project"


MODEL_CODE = ["sklearn", "optuna", "xgboost", "lightgbm", "scipy", "pandas", "mlflow"]


def test_the_run_report_loads_no_model_code() -> None:
    """Every `modelyard run` publishes the run report, a run of the data steps alone too: its
    records (leaderboard, tuning, members, evaluation) import no model library (scikit-learn
    alone took 1 to 2 s of such a run)."""
    assert not set(MODEL_CODE) & _modules_loaded_by("import modelyard.reports.run")


def test_records_that_moved_are_still_found_where_they_were() -> None:
    """Pickles name a class by its module: artifacts written before the search's records moved
    to ``results`` load through the old names."""
    import importlib

    from modelyard.modeling.search import results

    for old, name in [("tune", "TuningResult"), ("tune", "TrialRecord"), ("ensemble", "Member")]:
        module = importlib.import_module(f"modelyard.modeling.search.{old}")
        assert getattr(module, name) is getattr(results, name)

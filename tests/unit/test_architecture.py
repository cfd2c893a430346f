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

"""A registered adult (census income) champion built with modelyard's own stages, and the
adult.test rows as JSON records with the registered pyfunc's predictions (tests and bench)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "adult" / "modelyard.yaml"
NAME = "adult"


@dataclass
class Adult:
    tracking_uri: str
    workdir: Path
    records: list[dict[str, Any]]
    """adult.test rows that pass the contract, as JSON records (features only)."""
    expected: Any
    """The registered pyfunc's predict() of those rows (pandas frame)."""
    contract: Any


BUDGET = """
models:
  candidates: [hist_gradient_boosting]
  ensemble: false
split:
  cv_folds: 2
tuning:
  top_k: 0
evaluation:
  permutation_importance: false
"""


def build_adult(root: Path, data_dir: Path) -> Adult:
    """Run the adult example pipeline (a small budget: one model family, no tuning), so the
    served champion is exactly what `modelyard run` registers."""
    os.environ.setdefault("MODELYARD_DATA", str(data_dir))
    from modelyard import Project
    from modelyard.modeling.features import to_pandas
    from modelyard.ops.promotion import pyfunc_inputs

    root.mkdir(parents=True, exist_ok=True)
    config = root / "modelyard.yaml"
    config.write_text(EXAMPLE.read_text().replace("../../../shared/data", str(data_dir)) + BUDGET)
    project = Project.from_yaml(config)
    result = project.run()
    assert result.registration is not None and result.registration.decision.promote
    contract = result.output("contract")
    valid_test = result.output("split").test
    registry = project.registry()
    model = registry.load_version(result.registration.version)
    features = pyfunc_inputs(model)
    expected = model.predict(to_pandas(valid_test, contract))
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        for rec in valid_test.select(features).to_dicts()
    ]
    return Adult(registry.tracking_uri, project.config.workdir, records, expected, contract)

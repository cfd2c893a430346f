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


def build_adult(root: Path, data_dir: Path, *, max_iter: int = 100) -> Adult:
    os.environ.setdefault("MODELYARD_DATA", str(data_dir))
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    from modelyard import recipe
    from modelyard.config.loader import load_config
    from modelyard.config.schema import FeaturesSection, TrackingSection
    from modelyard.modeling.features import build_preprocessor, target_array, to_pandas
    from modelyard.ops.registry import Registry
    from modelyard.ops.tracking import default_tracking_uri, log_training_run

    config = load_config(EXAMPLE)
    train = recipe.ingest(config)
    test = recipe.ingest_test(config)
    contract = recipe.contract(train, config, None)
    valid_train = recipe.validate(train, contract, config).valid
    valid_test = recipe.validate(test, contract, config).valid
    task = contract.task or "binary"
    model = Pipeline(
        [
            ("features", build_preprocessor(contract, FeaturesSection(), task=task, seed=0)),
            ("model", HistGradientBoostingClassifier(max_iter=max_iter, random_state=0)),
        ]
    ).fit(to_pandas(valid_train, contract), target_array(valid_train, contract))
    workdir = root / ".modelyard"
    x_test = to_pandas(valid_test, contract)
    # The logged signature declares non-nullable int columns as long: give the pyfunc int64.
    x_pyfunc = x_test.copy()
    for col in contract.features:
        if col.type == "int" and not col.nullable:
            x_pyfunc[col.name] = x_pyfunc[col.name].astype("int64")
    run = log_training_run(
        tracking=TrackingSection(),
        workdir=workdir,
        project=NAME,
        params={"model": "hgb"},
        metrics={"accuracy": float(model.score(x_test, target_array(valid_test, contract)))},
        model=model,
        contract=contract,
        task=task,
        input_example=x_pyfunc.head(5),
        artifacts={},
        tags={"code_version": "test"},
    )
    uri = default_tracking_uri(workdir)
    registry = Registry(uri, NAME, workdir / "audit.jsonl")
    assert run.registered_version is not None
    registry.promote(run.registered_version, reason="test", command="test")
    pyfunc = registry.load_version(run.registered_version)
    features = [c.name for c in contract.features]
    expected = pyfunc.predict(x_pyfunc)
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        for rec in valid_test.select(features).to_dicts()
    ]
    return Adult(uri, workdir, records, expected, contract)

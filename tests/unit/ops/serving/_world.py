"""A registered penguin model (the real modelyard preprocessor) for the serving tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.unit.ops._penguins import FEATURES, TARGET, Penguins, load_penguins

NAME = "penguins"


@dataclass
class World:
    data: Penguins
    workdir: Path
    tracking_uri: str
    versions: list[str]
    models: list[Any]


def build_world(root: Path, estimators: list[Any], contract: Any = None) -> World:
    """Log and register one version per estimator; the first becomes the champion.
    ``contract`` replaces the penguins' hand-written one (which has no ranges or categories)."""
    from sklearn.pipeline import Pipeline

    from modelyard.config.schema import FeaturesSection, TrackingSection
    from modelyard.modeling.features import build_preprocessor
    from modelyard.ops.registry import Registry
    from modelyard.ops.tracking import default_tracking_uri, log_training_run

    data = load_penguins()
    if contract is not None:
        data = Penguins(data.train, data.test, contract)
    workdir = root / ".modelyard"
    versions: list[str] = []
    models: list[Any] = []
    for est in estimators:
        pre = build_preprocessor(data.contract, FeaturesSection(), task="multiclass")
        model = Pipeline([("features", pre), ("model", est)]).fit(
            data.train[FEATURES], data.train[TARGET]
        )
        run = log_training_run(
            tracking=TrackingSection(),
            workdir=workdir,
            project=NAME,
            params={"model": type(est).__name__},
            metrics={"accuracy": float(model.score(data.test[FEATURES], data.test[TARGET]))},
            model=model,
            contract=data.contract,
            task="multiclass",
            input_example=data.train[FEATURES].head(5),
            artifacts={},
            tags={"code_version": "test"},
        )
        assert run.registered_version is not None
        versions.append(run.registered_version)
        models.append(model)
    uri = default_tracking_uri(workdir)
    Registry(uri, NAME, workdir / "audit.jsonl").promote(versions[0], reason="test", command="t")
    return World(data, workdir, uri, versions, models)

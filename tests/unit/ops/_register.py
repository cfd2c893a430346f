"""Register penguin models trained on chosen columns through the real register step.

Also a script: ``python -m tests.unit.ops._register WORKDIR MARKER WHERE`` registers one model
and, at ``WHERE`` (``upload``: the model files uploaded, not finalised; ``gate``: the version
registered, the gate not applied), writes its pid to MARKER and sleeps until it is killed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.unit.ops._penguins import FEATURES, TARGET, load_penguins

NAME = "penguins"


def contract_of(columns: list[str]) -> Any:
    """The penguin contract restricted to ``columns`` (plus the target)."""
    contract = load_penguins().contract
    keep = [c for c in contract.columns if c.name in columns or c.name == TARGET]
    return contract.model_copy(update={"columns": keep})


def fit(columns: list[str], estimator: Any = None) -> Any:
    """The real modelyard preprocessor + ``estimator`` fitted on ``columns`` of the train split."""
    import polars as pl
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from modelyard.config.schema import FeaturesSection
    from modelyard.modeling.features import build_preprocessor, to_pandas

    data = load_penguins()
    contract = contract_of(columns)
    pre = build_preprocessor(contract, FeaturesSection(), task="multiclass")
    model = Pipeline([("features", pre), ("model", estimator or LogisticRegression(max_iter=500))])
    train = pl.from_pandas(data.train)
    return model.fit(to_pandas(train, contract), data.train[TARGET].astype(str).to_numpy())


def rows_of(drop: tuple[str, ...] = ()) -> Any:
    """The test split with every column (minus ``drop``), as the register step receives it."""
    import polars as pl

    return pl.from_pandas(load_penguins().test).drop(list(drop))


def register(
    workdir: Path,
    model: Any,
    columns: list[str],
    rows: Any,
    *,
    test_metrics: dict[str, float] | None = None,
    **options: Any,
) -> Any:
    """``register_and_gate`` as the pipeline calls it, for a model trained on ``columns``."""
    from modelyard.config.schema import GateSection, TrackingSection
    from modelyard.data.profile import Alert
    from modelyard.modeling.features import target_array, to_pandas
    from modelyard.ops.promotion import register_and_gate

    alerts: list[Alert] = options.pop("leakage_alerts", [])
    contract = contract_of(columns)
    X = to_pandas(rows, contract)
    y = target_array(rows, contract)
    score = float(model.score(X, y))
    return register_and_gate(
        project=NAME, workdir=workdir, tracking=TrackingSection(),
        gate=GateSection.model_validate(options), model=model, contract=contract,
        task="multiclass", metric="accuracy", greater_is_better=True, test_X=X, test_y=y,
        candidate_score=score, metrics={"test_accuracy": score}, params={"columns": columns},
        artifacts={"note.txt": "x"}, tags={"code_version": "test"}, data_valid=True,
        command="pytest", test_rows=rows, test_metrics=test_metrics or {"accuracy": score},
        leakage_alerts=alerts,
    )  # fmt: skip


def _pause(marker: Path) -> None:
    import os
    import time

    marker.write_text(str(os.getpid()))
    time.sleep(600)


def main(workdir: str, marker: str, where: str) -> None:
    """Register one model and stop (sleep, to be killed) at ``where``."""
    from mlflow.tracking import MlflowClient

    from modelyard.ops.registry import Registry

    flag = Path(marker)
    if where == "upload":
        upload = MlflowClient.log_model_artifacts

        def upload_then_pause(self: Any, model_id: str, local_dir: str) -> None:
            upload(self, model_id, local_dir)
            _pause(flag)

        MlflowClient.log_model_artifacts = upload_then_pause  # type: ignore[method-assign]
    elif where == "gate":
        Registry.apply = lambda *args, **kwargs: _pause(flag)  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown stop {where!r}")
    register(Path(workdir), fit(FEATURES), FEATURES, rows_of())


if __name__ == "__main__":
    main(*sys.argv[1:])

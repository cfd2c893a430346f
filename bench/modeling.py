"""The whole `modelyard run` on the example projects, with scikit-learn's HistGradientBoosting
(default parameters, same split, same preprocessing) as the floor to beat.

    MODELYARD_DATA=../shared/data uv run python bench/modeling.py [adult diamonds penguins bike_sharing kddcup99]

Targets (issue 4): adult test ROC-AUC >= 0.929 with the default budget and the whole run <= 5 min
on a 2-core machine; diamonds R2 >= 0.98; penguins accuracy >= 0.97; bike sharing (time split)
R2 reported; kddcup99 macro F1 reported.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTED = {
    "adult": "roc_auc",
    "diamonds": "r2",
    "penguins": "accuracy",
    "bike_sharing": "r2",
    "kddcup99": "f1_macro",
}


def hgb_floor(result, task: str, metric: str, seed: int) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from threadpoolctl import threadpool_limits

    from modelyard.config.schema import FeaturesSection
    from modelyard.modeling.features import build_preprocessor, target_array, to_pandas
    from modelyard.modeling.tasks import score

    contract, split = result.output("contract"), result.output("split")
    model = (
        HistGradientBoostingRegressor(random_state=seed)
        if task == "regression"
        else HistGradientBoostingClassifier(random_state=seed)
    )
    pipe = Pipeline(
        [
            ("features", build_preprocessor(contract, FeaturesSection(), task=task, seed=seed)),
            ("model", model),
        ]
    )
    with threadpool_limits(1):
        pipe.fit(to_pandas(split.train, contract), target_array(split.train, contract))
        X, y = to_pandas(split.test, contract), target_array(split.test, contract)
        proba = pipe.predict_proba(X) if task != "regression" else None
        return score(
            task,
            metric,
            y,
            y_pred=pipe.predict(X),
            y_proba=proba,
            classes=getattr(pipe, "classes_", None),
        )


def main(names: list[str]) -> None:
    from modelyard import Project

    os.environ.setdefault("MODELYARD_DATA", str(ROOT.parent / "shared" / "data"))
    print(
        f"{'example':<13} {'metric':<9} {'modelyard':>10} {'HGB floor':>10} {'model':<26} {'run s':>7}"
    )
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / name
            shutil.copytree(
                ROOT / "examples" / name,
                folder,
                ignore=shutil.ignore_patterns(".modelyard", "modelyard-out", "contract.yaml"),
            )
            start = time.perf_counter()
            result = Project.from_yaml(folder / "modelyard.yaml").run()
            seconds = time.perf_counter() - start
            evaluation = result.output("evaluate")
            trained = result.output("train")
            metric = REPORTED[name]
            ours = evaluation.metrics.get(metric, float("nan"))
            floor = hgb_floor(result, evaluation.task, metric, result.output("split") and 42)
            print(
                f"{name:<13} {metric:<9} {ours:>10.4f} {floor:>10.4f} {trained.choice.name[:26]:<26} {seconds:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:] or list(REPORTED))

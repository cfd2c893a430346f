"""Bagged trees: random forests and extremely randomised trees (one thread: deterministic)."""

from __future__ import annotations

from typing import Any

from modelyard.data.contract import Task
from modelyard.modeling.zoo import Family, is_classification
from modelyard.modeling.zoo.space import Choice, Int, Space

_TREES = 200
"""Trees per forest: past a few hundred, more trees change the score in the third decimal."""


class _Forest(Family):
    def fixed(self, task: Task) -> dict[str, Any]:
        return {"n_estimators": _TREES, "n_jobs": 1}

    def portfolio(self, task: Task) -> list[dict[str, Any]]:
        if is_classification(task):
            return [{"max_features": "sqrt", "min_samples_leaf": 1}]
        return [{"max_features": 1.0, "min_samples_leaf": 1}]

    def space(self, task: Task) -> Space:
        return {
            "max_features": Choice(("sqrt", 0.2, 0.35, 0.5, 0.75, 1.0)),
            "min_samples_leaf": Int(1, 30, log=True),
        }


class RandomForest(_Forest):
    name = "random_forest"

    def estimator(self, task: Task, seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        if is_classification(task):
            return RandomForestClassifier(random_state=seed)
        return RandomForestRegressor(random_state=seed)


class ExtraTrees(_Forest):
    name = "extra_trees"

    def estimator(self, task: Task, seed: int) -> Any:
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        if is_classification(task):
            return ExtraTreesClassifier(random_state=seed)
        return ExtraTreesRegressor(random_state=seed)

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.ops.serving._world import World, build_world


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Two registered penguin versions: 1 (HGB, champion) and 2 (logistic regression)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    root: Path = tmp_path_factory.mktemp("serving")
    return build_world(
        root,
        [
            HistGradientBoostingClassifier(max_iter=30, random_state=0),
            LogisticRegression(max_iter=1000),
        ],
    )

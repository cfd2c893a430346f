"""Tiny real penguin classifiers, their contract and data, shared by the ops and MLflow tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

DATA = Path("/work/shared/data/penguins.csv")
CATEGORICAL = ["island", "sex"]
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
FEATURES = CATEGORICAL + NUMERIC
TARGET = "species"


@dataclass(frozen=True)
class Penguins:
    train: pd.DataFrame
    test: pd.DataFrame
    contract: Any


def pipeline(estimator: Any) -> Any:
    """The shape of every modelyard model: ``Pipeline([("features", ...), ("model", ...)])``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                CATEGORICAL,
            ),
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
        ]
    )
    return Pipeline([("features", features), ("model", estimator)])


@cache
def load_penguins() -> Penguins:
    """Penguins shuffled with a fixed seed, split 75/25, and their hand-written contract."""
    from modelyard.data.contract import ColumnContract, DataContract

    df = pd.read_csv(DATA).dropna(subset=[TARGET]).sample(frac=1.0, random_state=0)
    df = df.reset_index(drop=True)
    cut = int(len(df) * 0.75)
    types = {"island": "str", "sex": "str", "flipper_length_mm": "int", "body_mass_g": "int"}
    contract = DataContract(
        target=TARGET,
        task="multiclass",
        columns=[
            *(ColumnContract(name=c, type=types.get(c, "float")) for c in FEATURES),  # type: ignore[arg-type]
            ColumnContract(name=TARGET, type="str", role="target", nullable=False),
        ],
    )
    return Penguins(train=df.iloc[:cut], test=df.iloc[cut:], contract=contract)

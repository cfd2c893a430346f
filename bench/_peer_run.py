"""Fit one peer tool on a train CSV and write its predictions for a test CSV.

Called by ``bench/automl.py`` once per (dataset, tool), each in its own process and never two
at once. FLAML and AutoGluon run in the peers' interpreter (``/work/peers/bin/python``, see
bench/README.md); the HistGradientBoosting floor runs in the bench's own interpreter. This file
imports only the standard library at the top, so it loads in either.

    python bench/_peer_run.py --tool flaml --train T.csv --test S.csv --target y \\
        --task binary --metric roc_auc --budget 120 --out pred.csv --info info.json

Writes ``--out``: one row per test row, in order, with ``prediction`` and, for classification,
``proba_<class>`` per class (the same columns as ``modelyard predict``); and ``--info``: the
tool's version, fit and predict seconds, and what it chose. The target column of the test file
is dropped before predicting. Thread settings are left at each tool's defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

TOOLS = ("flaml", "autogluon", "hgb")

# The bench's metric names -> each tool's name for it (the metric the tool optimises).
FLAML_METRIC = {
    "roc_auc": "roc_auc",
    "accuracy": "accuracy",
    "r2": "r2",
    "rmse": "rmse",
    "f1_macro": "macro_f1",
}
AUTOGLUON_METRIC = {
    "roc_auc": "roc_auc",
    "accuracy": "accuracy",
    "r2": "r2",
    "rmse": "root_mean_squared_error",
    "f1_macro": "f1_macro",
}


def read(path: Path, dates: list[str]) -> Any:
    import pandas as pd

    return pd.read_csv(path, parse_dates=dates or False, low_memory=False)


def fit_flaml(train: Any, test: Any, a: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    import flaml
    from flaml import AutoML

    automl = AutoML()
    X, y = train.drop(columns=[a.target]), train[a.target]
    start = time.perf_counter()
    automl.fit(
        X,
        y,
        task="regression" if a.task == "regression" else "classification",
        time_budget=a.budget,
        metric=FLAML_METRIC[a.metric],
        seed=a.seed,
        verbose=0,
    )
    fit = time.perf_counter() - start
    start = time.perf_counter()
    pred = automl.predict(test)
    proba = None
    if a.task != "regression":
        proba = dict(zip(automl.classes_, automl.predict_proba(test).T, strict=True))
    info = {
        "version": flaml.__version__,
        "fit_seconds": fit,
        "predict_seconds": time.perf_counter() - start,
        "chosen": f"{automl.best_estimator} {automl.best_config}",
    }
    return pred, proba, info


def fit_autogluon(train: Any, test: Any, a: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    import autogluon.tabular
    from autogluon.tabular import TabularPredictor

    predictor = TabularPredictor(
        label=a.target,
        eval_metric=AUTOGLUON_METRIC[a.metric],
        problem_type=a.task,
        path=str(Path(a.workdir) / "autogluon"),
        verbosity=2,
    )
    start = time.perf_counter()
    predictor.fit(train, time_limit=a.budget, presets="medium_quality")
    fit = time.perf_counter() - start
    start = time.perf_counter()
    pred = predictor.predict(test)
    proba = None
    if a.task != "regression":
        frame = predictor.predict_proba(test, as_multiclass=True)
        proba = {c: frame[c].to_numpy() for c in frame.columns}
    board = predictor.leaderboard(silent=True)
    info = {
        "version": autogluon.tabular.__version__,
        "fit_seconds": fit,
        "predict_seconds": time.perf_counter() - start,
        "chosen": str(predictor.model_best),
        "models_trained": board["model"].tolist(),
    }
    return pred, proba, info


def hgb_frames(train: Any, test: Any) -> tuple[Any, Any]:
    """Categorical columns (text, with the training set's categories) for
    ``categorical_features="from_dtype"``; booleans as 0/1; dates as days since 1970.

    A text column with more than 255 levels (HGB's limit) is ordinal-encoded as a number.
    Values not seen in training become missing, which HGB handles.
    """
    import pandas as pd

    train, test = train.copy(), test.copy()
    for col in train.columns:
        kind = train[col].dtype
        if pd.api.types.is_bool_dtype(kind):
            train[col], test[col] = train[col].astype(float), test[col].astype(float)
        elif pd.api.types.is_datetime64_any_dtype(kind):
            day = pd.Timedelta(days=1)
            epoch = pd.Timestamp(0)
            train[col] = (train[col] - epoch) / day
            test[col] = (test[col] - epoch) / day
        elif not pd.api.types.is_numeric_dtype(kind):
            levels = sorted(train[col].dropna().astype(str).unique())
            dtype = pd.CategoricalDtype(levels)
            train[col] = train[col].astype("string").astype(dtype)
            test[col] = test[col].astype("string").astype(dtype)
            if len(levels) > 255:
                train[col] = train[col].cat.codes.replace(-1, float("nan")).astype(float)
                test[col] = test[col].cat.codes.replace(-1, float("nan")).astype(float)
    return train, test


def fit_hgb(train: Any, test: Any, a: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    X, y = train.drop(columns=[a.target]), train[a.target]
    X, test = hgb_frames(X, test)
    model = (
        HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=a.seed)
        if a.task == "regression"
        else HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=a.seed)
    )
    start = time.perf_counter()
    model.fit(X, y)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(test)
    proba = None
    if a.task != "regression":
        proba = dict(zip(model.classes_, model.predict_proba(test).T, strict=True))
    info = {
        "version": sklearn.__version__,
        "fit_seconds": fit,
        "predict_seconds": time.perf_counter() - start,
        "chosen": f"{type(model).__name__}() n_iter={model.n_iter_}",
    }
    return pred, proba, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tool", choices=TOOLS, required=True)
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--task", choices=("binary", "multiclass", "regression"), required=True)
    p.add_argument("--metric", required=True, help="the metric the tool optimises")
    p.add_argument("--budget", type=float, default=120.0, help="seconds (FLAML, AutoGluon)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dates", default="", help="comma-separated columns to parse as dates")
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--info", type=Path, required=True)
    a = p.parse_args(argv)

    import pandas as pd

    dates = [c for c in a.dates.split(",") if c]
    start = time.perf_counter()
    train = read(a.train, dates)
    test = read(a.test, dates).drop(columns=[a.target])
    read_seconds = time.perf_counter() - start
    fit = {"flaml": fit_flaml, "autogluon": fit_autogluon, "hgb": fit_hgb}[a.tool]
    pred, proba, info = fit(train, test, a)
    out = pd.DataFrame({"prediction": list(pred)})
    for cls, values in (proba or {}).items():
        out[f"proba_{cls}"] = list(values)
    if len(out) != len(test):
        print(f"{a.tool} returned {len(out)} predictions for {len(test)} rows", file=sys.stderr)
        return 1
    a.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(a.out, index=False)
    info["read_seconds"] = read_seconds
    info["python"] = sys.executable
    a.info.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

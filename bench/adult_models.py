"""Adult census: the model zoo's defaults, ensembles, and a whole modelyard-style selection.

Run: ``uv run python bench/adult_models.py [--quick]``. Prints:

1. every zoo family with its defaults, fitted on all of adult.data, scored on adult.test
   (ROC-AUC) with its fit time;
2. blends of the boosted defaults (soft voting; stacking for comparison);
3. the modelyard selection as ``modelyard run`` does it: 5-fold CV exploration of all
   candidates on a seeded 20k sample, Optuna tuning of the top 2 (20 trials each, pruning),
   a soft-voting ensemble of the tuned pair, ``choose``, refit on the full training set,
   test ROC-AUC and the wall-clock time of the whole selection.

References (same data, test ROC-AUC): scikit-learn HGB defaults 0.9272, Optuna-tuned HGB
0.9275, FLAML 0.9289. The preprocessor here is a plain one (median impute numbers, one-hot
categories seen >= 10 times), like modelyard's default feature step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelyard.modeling import zoo
from modelyard.modeling.explore import cross_validate, explore, make_folds
from modelyard.modeling.select import choose, fit_final, make_ensemble
from modelyard.modeling.tune import tune

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "adult"
if not DATA.exists():
    DATA = Path("/work/shared/data/adult")
COLS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
    "native-country", "income",
]  # fmt: skip
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
POSITIVE = ">50K"


def read_adult(path: Path, *, skip_rows: int = 0) -> tuple[Any, np.ndarray]:
    """adult.data / adult.test as (pandas X, string labels); "?" is missing, "." stripped."""
    df = pl.read_csv(
        path, has_header=False, new_columns=COLS, skip_rows=skip_rows, infer_schema_length=0
    )
    df = df.with_columns(pl.all().str.strip_chars())
    df = df.with_columns(pl.all().replace("?", None)).filter(pl.col("income").is_not_null())
    df = df.with_columns(
        pl.col("income").str.strip_chars_end("."),
        *[pl.col(c).cast(pl.Float64) for c in NUMERIC],
    )
    y = df["income"].to_numpy().astype(object)
    return df.drop("income").to_pandas(), y


def load() -> tuple[Any, np.ndarray, Any, np.ndarray]:
    X, y = read_adult(DATA / "adult.data")
    Xt, yt = read_adult(DATA / "adult.test", skip_rows=1)
    return X, y, Xt, yt


def adult_preprocessor(X: Any) -> ColumnTransformer:
    cat = [c for c in X.columns if c not in NUMERIC]
    onehot = OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=10, sparse_output=False
    )
    return ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMERIC),
            ("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")), ("onehot", onehot)]), cat),
        ]
    )  # fmt: skip


def auc(model: Any, X: Any, y: np.ndarray) -> float:
    proba = model.predict_proba(X)
    col = list(model.classes_).index(POSITIVE)
    return float(roc_auc_score(y == POSITIVE, proba[:, col]))


def roc_auc_scorer(y: np.ndarray, _pred: np.ndarray, proba: Any, classes: Any) -> float:
    col = list(classes).index(POSITIVE)
    return float(roc_auc_score(y == POSITIVE, proba[:, col]))


def section_defaults(X: Any, y: np.ndarray, Xt: Any, yt: np.ndarray) -> dict[str, Any]:
    print("== 1. zoo defaults: fit on adult.data (32,561 rows), ROC-AUC on adult.test ==")
    fitted: dict[str, Any] = {}
    for name in zoo.MODEL_NAMES:
        start = time.perf_counter()
        pipe = fit_final(
            X, y, name=name, task="binary", params={}, preprocessor=adult_preprocessor(X), seed=0
        )
        seconds = time.perf_counter() - start
        print(f"  {name:24s} test_auc={auc(pipe, Xt, yt):.4f}  fit={seconds:5.1f}s", flush=True)
        fitted[name] = pipe
    return fitted


def section_blends(X: Any, y: np.ndarray, Xt: Any, yt: np.ndarray, fitted: dict[str, Any]) -> None:
    print("== 2. blends of defaults (test ROC-AUC) ==")
    for members in (
        ("lightgbm", "xgboost"),
        ("hist_gradient_boosting", "lightgbm", "xgboost"),
        ("lightgbm", "xgboost", "mlp"),
    ):
        col = list(fitted[members[0]].classes_).index(POSITIVE)
        mean = np.mean([fitted[m].predict_proba(Xt)[:, col] for m in members], axis=0)
        score = roc_auc_score(yt == POSITIVE, mean)
        print(f"  soft vote {'+'.join(members):40s} test_auc={score:.4f}")
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    stack = Pipeline(
        [
            ("features", adult_preprocessor(X)),
            (
                "model",
                StackingClassifier(
                    [(m, zoo.make_model(m, "binary", seed=0)) for m in ("lightgbm", "xgboost")],
                    final_estimator=LogisticRegression(),
                    cv=StratifiedKFold(5, shuffle=True, random_state=0),
                ),
            ),
        ]
    ).fit(X, y)
    print(
        f"  stacking lightgbm+xgboost (5-fold, logistic) test_auc={auc(stack, Xt, yt):.4f}  "
        f"fit={time.perf_counter() - start:.1f}s"
    )


def section_selection(
    X: Any, y: np.ndarray, Xt: Any, yt: np.ndarray, *, n_trials: int, sample: int
) -> None:
    print(
        f"== 3. modelyard selection: CV explore on {sample} rows, tune top 2 x {n_trials} "
        "trials, ensemble, refit on all ==",
        flush=True,
    )
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(X), size=min(sample, len(X)), replace=False))
    Xs, ys = X.iloc[idx].reset_index(drop=True), y[idx]
    pre = adult_preprocessor(Xs)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    board = explore(
        Xs, ys, task="binary", candidates=list(zoo.MODEL_NAMES), preprocessor=pre, cv=cv,
        scorer=roc_auc_scorer, greater_is_better=True, seed=0,
    )  # fmt: skip
    t_explore = time.perf_counter() - t0
    for row in board.rows:
        mean = "failed" if row.mean is None else f"{row.mean:.4f} ± {row.std:.4f}"
        print(f"  cv {row.name:24s} {mean}  fit/fold={row.fit_seconds or 0:5.2f}s")
    print(f"  explore: {t_explore:.1f}s")
    results = []
    for row in board.top(2):
        start = time.perf_counter()
        result = tune(
            Xs, ys, name=row.name, task="binary", preprocessor=pre, cv=cv,
            scorer=roc_auc_scorer, greater_is_better=True, seed=0, n_trials=n_trials,
            timeout=None, pruning=True, storage=None, study_name=f"adult-{row.name}",
        )  # fmt: skip
        results.append(result)
        print(
            f"  tuned {row.name:21s} cv={result.best_score:.4f} (defaults {row.mean:.4f}) "
            f"complete={result.n_trials_completed} pruned={result.n_pruned} "
            f"{time.perf_counter() - start:.1f}s",
            flush=True,
        )
        print(f"    best_params={result.best_params}")
    members = [(r.name, r.best_params) for r in results]
    start = time.perf_counter()
    ensemble = make_ensemble(members, "binary", pre, 0)
    scores, _ = cross_validate(
        ensemble, Xs, ys, folds=make_folds(cv, Xs, ys), scorer=roc_auc_scorer
    )
    ens_score = float(np.mean(scores))
    print(f"  ensemble cv={ens_score:.4f}  {time.perf_counter() - start:.1f}s")
    choice = choose(board, results, ens_score, ensemble_members=members)
    print(f"  choice: {choice.name} ({choice.source}) cv={choice.score:.4f}: {choice.reason}")
    start = time.perf_counter()
    final = fit_final(
        X, y, name=choice.name, task="binary", params=choice.params,
        preprocessor=adult_preprocessor(X), seed=0,
    )  # fmt: skip
    t_total = time.perf_counter() - t0
    print(f"  refit on 32,561 rows: {time.perf_counter() - start:.1f}s")
    print(f"  FINAL test_auc={auc(final, Xt, yt):.4f}  selection wall time={t_total:.1f}s")
    for r in results:
        tuned = fit_final(
            X, y, name=r.name, task="binary", params=r.best_params,
            preprocessor=adult_preprocessor(X), seed=0,
        )  # fmt: skip
        print(f"  (for comparison) tuned {r.name} alone: test_auc={auc(tuned, Xt, yt):.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sections 1-2 only")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--sample", type=int, default=20000)
    args = parser.parse_args(argv)
    import os

    print(f"cores={os.cpu_count()} load={os.getloadavg()[0]:.1f} zoo.N_JOBS={zoo.N_JOBS}")
    X, y, Xt, yt = load()
    fitted = section_defaults(X, y, Xt, yt)
    section_blends(X, y, Xt, yt, fitted)
    if not args.quick:
        section_selection(X, y, Xt, yt, n_trials=args.trials, sample=args.sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())

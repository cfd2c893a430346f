"""Hold-out evaluation on real data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from modelyard.config.schema import (
    ColumnRoles,
    ContractSection,
    EvaluationSection,
    FeaturesSection,
    SplitSection,
)
from modelyard.data.contract import DataContract, infer_contract
from modelyard.errors import ModelyardError
from modelyard.modeling.evaluate import Evaluation, choose_threshold, evaluate
from modelyard.modeling.features import build_preprocessor, target_array, to_pandas
from modelyard.modeling.splits import Split, make_split


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """OpenMP models (hist-GBM) crawl when other processes load the CPUs; tests use 1 thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _fit(split: Split, contract: DataContract, estimator: object) -> object:
    from sklearn.pipeline import Pipeline

    task = contract.task
    assert task is not None
    model = Pipeline(
        [
            ("features", build_preprocessor(contract, FeaturesSection(), task=task, seed=0)),
            ("model", estimator),
        ]
    )
    return model.fit(to_pandas(split.train, contract), target_array(split.train, contract))


@pytest.fixture(scope="module")
def titanic(shared_data: Path) -> tuple[object, Split, DataContract]:
    from sklearn.linear_model import LogisticRegression

    df = pl.read_csv(shared_data / "titanic.csv")
    contract = infer_contract(
        df,
        target="survived",
        task=None,
        roles=ColumnRoles(leakage=["alive"]),
        options=ContractSection(),
    )
    split = make_split(df, contract, SplitSection(), seed=42)
    return _fit(split, contract, LogisticRegression(max_iter=1000)), split, contract


@pytest.fixture(scope="module")
def titanic_eval(titanic: tuple[object, Split, DataContract]) -> Evaluation:
    model, split, contract = titanic
    options = EvaluationSection(slices=["sex", "age"], threshold="f1")
    return evaluate(model, split.test, contract, options, task="binary", metric="auto", seed=0)


def test_binary_metrics_are_in_range(titanic_eval: Evaluation) -> None:
    ev = titanic_eval
    assert ev.rows == 179 and ev.metric == "roc_auc" and ev.positive_class == "1"
    for name in ("roc_auc", "pr_auc", "f1", "precision", "recall", "accuracy", "brier"):
        assert 0.0 <= ev.metrics[name] <= 1.0, name
    assert ev.metrics["roc_auc"] > 0.8  # a logistic model on titanic, without the leaky column
    assert 0.0 < ev.metrics["log_loss"] < 0.693  # better than a coin
    assert ev.score == ev.metrics["roc_auc"]


def test_confusion_matrix_and_threshold(titanic_eval: Evaluation) -> None:
    ev = titanic_eval
    assert ev.threshold_source == "test" and ev.threshold is not None and 0 < ev.threshold < 1
    cm = ev.confusion_matrix
    assert cm is not None and cm.labels == ["0", "1"]
    assert sum(map(sum, cm.matrix)) == ev.rows
    assert sum(cm.matrix[1]) == 69  # positives in the stratified test set (38.4% of 179)
    assert ev.threshold_metrics is not None
    tp, fp, fn = cm.matrix[1][1], cm.matrix[0][1], cm.matrix[1][0]
    assert ev.threshold_metrics["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # the F1-optimal threshold on the test set is at least as good as 0.5 there
    assert ev.threshold_metrics["f1"] >= ev.metrics["f1"]


def test_curves_are_monotone(titanic_eval: Evaluation) -> None:
    ev = titanic_eval
    assert ev.roc_curve is not None and ev.pr_curve is not None and ev.calibration is not None
    assert len(ev.roc_curve) <= 200 and len(ev.pr_curve) <= 200
    fpr = np.array([p.x for p in ev.roc_curve])
    tpr = np.array([p.y for p in ev.roc_curve])
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    # trapezoid area under the (downsampled) ROC curve is the reported roc_auc
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(ev.metrics["roc_auc"], abs=0.01)
    recall = np.array([p.x for p in ev.pr_curve])
    assert np.all(np.diff(recall) >= 0) and recall[-1] == 1.0
    assert all(0 <= p.y <= 1 for p in ev.pr_curve)
    assert sum(p.count for p in ev.calibration) == ev.rows
    predicted = [p.predicted for p in ev.calibration]
    assert predicted == sorted(predicted)


def test_slices_sum_to_rows(titanic_eval: Evaluation) -> None:
    ev = titanic_eval
    sex = [s for s in ev.slices if s.column == "sex"]
    assert {s.value for s in sex} == {"male", "female"}
    assert sum(s.rows for s in sex) == ev.rows
    age = [s for s in ev.slices if s.column == "age"]  # numeric: quartiles plus missing
    assert sum(s.rows for s in age) == ev.rows and "(missing)" in {s.value for s in age}
    assert all("accuracy" in s.metrics for s in ev.slices)


def test_permutation_importance_names_input_columns(titanic_eval: Evaluation) -> None:
    imp = titanic_eval.permutation_importance
    assert imp is not None
    names = [i.feature for i in imp]
    assert "alive" not in names and "survived" not in names
    assert "sex" in names[:4] or "who" in names[:4] or "adult_male" in names[:4]
    means = [i.mean for i in imp]
    assert means == sorted(means, reverse=True)


def test_threshold_given_or_default(titanic: tuple[object, Split, DataContract]) -> None:
    model, split, contract = titanic
    options = EvaluationSection(threshold="f1", permutation_importance=False)
    ev = evaluate(
        model, split.test, contract, options, task="binary", metric="f1", seed=0, threshold=0.3
    )
    assert (ev.threshold, ev.threshold_source, ev.metric) == (0.3, "given", "f1")
    options = EvaluationSection(threshold="default", permutation_importance=False)
    ev = evaluate(model, split.test, contract, options, task="binary", metric="auto", seed=0)
    assert (ev.threshold, ev.threshold_source) == (0.5, "default")
    assert ev.permutation_importance is None
    # at 0.5 the threshold metrics are predict()'s
    assert ev.threshold_metrics is not None
    assert ev.threshold_metrics["f1"] == pytest.approx(ev.metrics["f1"])


def test_user_mistakes_are_clear(titanic: tuple[object, Split, DataContract]) -> None:
    model, split, contract = titanic
    with pytest.raises(ModelyardError, match="did you mean 'sex'"):
        evaluate(
            model,
            split.test,
            contract,
            EvaluationSection(slices=["sexx"]),
            task="binary",
            metric="auto",
            seed=0,
        )
    with pytest.raises(ModelyardError, match="unknown metric 'auc'"):
        evaluate(
            model, split.test, contract, EvaluationSection(), task="binary", metric="auc", seed=0
        )


def test_choose_threshold_by_hand() -> None:
    y = np.array(["0", "0", "1", "1"])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    # F1 at p>=0.8: 2/3; p>=0.4: 1/2; p>=0.35: 0.8; p>=0.1: 2/3
    assert choose_threshold(y, p, positive="1", method="f1") == 0.35
    # cost = ratio*FN + FP; ratio 10 -> 0.35 (cost 1); ratio 0.1 -> 0.8 (cost 0.1)
    assert choose_threshold(y, p, positive="1", method="cost", cost_ratio=10) == 0.35
    assert choose_threshold(y, p, positive="1", method="cost", cost_ratio=0.1) == 0.8
    # when the top score is a negative and FNs are cheap, predicting no positive is cheapest
    q = np.array([0.9, 0.4, 0.35, 0.3])
    t = choose_threshold(y, q, positive="1", method="cost", cost_ratio=0.1)
    assert t > 0.9 and not np.any(q >= t)
    assert choose_threshold(y, p, positive="1", method="default") == 0.5


def test_multiclass_evaluation(shared_data: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    df = pl.read_csv(shared_data / "penguins.csv", null_values=["NA", ""])
    contract = infer_contract(
        df, target="species", task=None, roles=ColumnRoles(), options=ContractSection()
    )
    split = make_split(df, contract, SplitSection(), seed=0)
    model = _fit(split, contract, HistGradientBoostingClassifier(max_iter=50, random_state=0))
    options = EvaluationSection(slices=["island"], permutation_importance=False)
    ev = evaluate(model, split.test, contract, options, task="multiclass", metric="auto", seed=0)
    assert ev.metric == "f1_macro" and ev.metrics["f1_macro"] > 0.9
    assert ev.threshold is None and ev.roc_curve is None
    assert ev.confusion_matrix is not None
    assert ev.confusion_matrix.labels == ["Adelie", "Chinstrap", "Gentoo"]
    assert sum(map(sum, ev.confusion_matrix.matrix)) == ev.rows == split.test.height
    assert sum(s.rows for s in ev.slices) == ev.rows


def test_regression_residuals(shared_data: Path) -> None:
    from sklearn.linear_model import Ridge

    df = pl.read_csv(shared_data / "diamonds.csv").sample(6000, seed=0)
    contract = infer_contract(
        df, target="price", task=None, roles=ColumnRoles(), options=ContractSection()
    )
    split = make_split(df, contract, SplitSection(), seed=0)
    model = _fit(split, contract, Ridge())
    options = EvaluationSection(slices=["cut"], permutation_importance=True)
    ev = evaluate(model, split.test, contract, options, task="regression", metric="mae", seed=0)
    assert ev.rows == 1200 and ev.confusion_matrix is None and ev.threshold is None
    assert (
        ev.residuals is not None and len(ev.residuals.predicted) == len(ev.residuals.actual) == 1000
    )
    assert ev.residuals.summary["mae"] == pytest.approx(ev.metrics["mae"])
    assert ev.metrics["r2"] > 0.85 and ev.metrics["rmse"] >= ev.metrics["mae"] > 0
    assert {"rmse", "mae", "r2", "mape"} <= set(ev.metrics)
    assert sum(s.rows for s in ev.slices) == 1200 and len(ev.slices) == 5
    assert ev.permutation_importance is not None and ev.permutation_importance[0].feature == "carat"
    ev.model_dump_json()  # serialisable (NaN metrics included)


def test_a_test_label_the_model_never_saw_is_reported_not_a_crash(shared_data: Path) -> None:
    """A group split by island leaves a species out of training: the evaluation failed with
    "y_true contains values not belonging to the passed labels"."""
    from sklearn.linear_model import LogisticRegression

    df = pl.read_csv(shared_data / "penguins.csv", null_values="NA").drop_nulls("species")
    contract = infer_contract(
        df, target="species", task=None, roles=ColumnRoles(), options=ContractSection()
    )
    train = df.filter(pl.col("species") != "Chinstrap")
    split = Split(train, df, "group", "train without Chinstrap")
    model = _fit(split, contract, LogisticRegression(max_iter=1000))
    options = EvaluationSection(slices=["island"])
    ev = evaluate(model, df, contract, options, task="multiclass", metric="f1_macro", seed=0)
    assert ev.unseen_classes == ["Chinstrap"]
    assert "log_loss" not in ev.metrics  # no probability column for a class never seen
    chinstrap = int((df["species"] == "Chinstrap").sum())
    assert ev.metrics["accuracy"] <= 1 - chinstrap / df.height + 1e-9  # always wrong on it
    assert ev.permutation_importance  # computed on the rows with a known label
    assert {s.column for s in ev.slices} == {"island"}


def test_permutation_importance_is_the_same_on_any_executor(
    titanic: tuple[object, Split, DataContract],
) -> None:
    from modelyard.compute import open_executor

    model, split, contract = titanic
    options = EvaluationSection()
    alone = evaluate(model, split.test, contract, options, task="binary", metric="auto", seed=3)
    with open_executor("local", workers=2) as ex:
        pooled = evaluate(
            model, split.test, contract, options, task="binary", metric="auto", seed=3,
            executor=ex,
        )  # fmt: skip
    assert alone.permutation_importance == pooled.permutation_importance
    assert alone.permutation_importance and alone.permutation_importance[0].mean > 0

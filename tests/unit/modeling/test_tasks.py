"""Metrics against values computed by hand (not by the code under test)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from modelyard.errors import ModelyardError
from modelyard.modeling.tasks import (
    METRICS,
    baseline_score,
    compute_metrics,
    default_metric,
    greater_is_better,
    positive_class,
    resolve_metric,
    score,
    sklearn_scorer,
)


def test_regression_metrics_by_hand() -> None:
    y, pred = np.array([1.0, 2.0]), np.array([1.0, 4.0])
    m = compute_metrics("regression", y, y_pred=pred)
    assert m["rmse"] == pytest.approx(math.sqrt(2))
    assert m["mae"] == pytest.approx(1.0)
    assert m["mape"] == pytest.approx(0.5)  # (0/1 + 2/2) / 2
    # r2: y=[1,2,3], pred=[1,2,4]: ss_res = 1, ss_tot = 2
    assert score("regression", "r2", [1, 2, 3], y_pred=[1, 2, 4]) == pytest.approx(0.5)


def test_mape_is_left_out_when_a_target_is_zero() -> None:
    m = compute_metrics("regression", np.array([0.0, 2.0]), y_pred=np.array([1.0, 2.0]))
    assert "mape" not in m
    assert set(m) == {"rmse", "mae", "r2"}
    assert math.isnan(score("regression", "mape", [0.0, 2.0], y_pred=[1.0, 2.0]))


def test_binary_metrics_by_hand() -> None:
    y = np.array(["0", "0", "1", "1"])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    proba = np.column_stack([1 - p1, p1])
    pred = np.array(["0", "1", "0", "1"])  # tp=1 fp=1 fn=1 tn=1
    m = compute_metrics("binary", y, y_pred=pred, y_proba=proba, classes=["0", "1"])
    assert list(m) == list(METRICS["binary"])
    assert m["roc_auc"] == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered
    assert m["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert m["log_loss"] == pytest.approx(
        -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    )
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.5)


def test_positive_class_is_the_greater_label_whatever_the_column_order() -> None:
    assert positive_class(["yes", "no"]) == "yes"
    assert positive_class(["<=50K", ">50K"]) == ">50K"
    assert positive_class([0, 1]) == "1"
    y = np.array(["no", "yes", "yes"])
    # probabilities given in the order ["yes", "no"]: roc_auc still uses P(yes)
    proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.7, 0.3]])
    auc = score("binary", "roc_auc", y, y_pred=None, y_proba=proba, classes=["yes", "no"])
    assert auc == pytest.approx(1.0)
    # a 1-D probability is the positive class's
    auc1d = score("binary", "roc_auc", y, y_pred=None, y_proba=np.array([0.2, 0.9, 0.7]))
    assert auc1d == pytest.approx(1.0)


def test_undefined_binary_metric_is_nan() -> None:
    y = np.array(["1", "1"])
    assert math.isnan(
        score("binary", "roc_auc", y, y_pred=None, y_proba=[0.3, 0.6], classes=["0", "1"])
    )


def test_multiclass_metrics_by_hand() -> None:
    y = np.array(["a", "a", "b", "c"])
    pred = np.array(["a", "b", "b", "c"])
    proba = np.array([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    m = compute_metrics("multiclass", y, y_pred=pred, y_proba=proba, classes=["a", "b", "c"])
    # per class F1: a 2/3 (p=1, r=.5), b 2/3 (p=.5, r=1), c 1
    assert m["f1_macro"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["log_loss"] == pytest.approx(
        -(math.log(0.8) + math.log(0.4) + math.log(0.7) + math.log(0.8)) / 4
    )


def test_label_only_metrics_without_probabilities() -> None:
    m = compute_metrics("binary", ["0", "1"], y_pred=["0", "1"])
    assert set(m) == {"f1", "precision", "recall", "accuracy"}
    with pytest.raises(ModelyardError, match="probabilities"):
        score("binary", "roc_auc", ["0", "1"], y_pred=["0", "1"])


def test_resolve_metric() -> None:
    assert resolve_metric("binary", "auto") == "roc_auc" == default_metric("binary")
    assert resolve_metric("multiclass", "auto") == "f1_macro"
    assert resolve_metric("regression", "auto") == "rmse"
    assert resolve_metric("regression", "mae") == "mae"
    with pytest.raises(ModelyardError, match="did you mean 'rmse'") as err:
        resolve_metric("regression", "rmes")
    assert "'mae'" in str(err.value) and "models.metric" in str(err.value)
    with pytest.raises(ModelyardError, match="metric of regression tasks"):
        resolve_metric("binary", "rmse")


def test_greater_is_better() -> None:
    assert (
        greater_is_better("roc_auc") and greater_is_better("r2") and greater_is_better("f1_macro")
    )
    assert not greater_is_better("rmse") and not greater_is_better("log_loss")
    assert not greater_is_better("brier") and not greater_is_better("mape")
    with pytest.raises(ModelyardError, match="did you mean 'accuracy'"):
        greater_is_better("acuracy")


def test_scorer_negates_losses_and_pickles() -> None:
    from sklearn.dummy import DummyRegressor
    from sklearn.model_selection import cross_validate

    X = np.zeros((4, 1))
    y = np.array([1.0, 3.0, 1.0, 3.0])
    model = DummyRegressor().fit(X, y)  # predicts the mean, 2.0
    scorer = pickle.loads(pickle.dumps(sklearn_scorer("regression", "rmse")))
    assert scorer(model, X, y) == pytest.approx(-1.0)
    cv = cross_validate(DummyRegressor(), X, y, cv=2, scoring=scorer)
    assert np.all(cv["test_score"] <= 0)


def test_scorer_on_a_classifier_uses_its_classes() -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array(["no", "no", "yes", "yes"])
    model = LogisticRegression().fit(X, y)
    assert sklearn_scorer("binary", "roc_auc")(model, X, y) == pytest.approx(1.0)
    assert sklearn_scorer("binary", "log_loss")(model, X, y) < 0


def test_an_unknown_sample_weight_column_lists_a_few_columns_and_a_count() -> None:
    """Issue 11 item 18: a message listed every column of a wide table on one line."""
    from modelyard.config.schema import ModelsSection
    from modelyard.data.contract import ColumnContract, DataContract
    from modelyard.modeling.stages import Problem

    columns = [ColumnContract(name=f"c{i}", type="float") for i in range(10_000)]
    contract = DataContract(
        target="y",
        task="binary",
        columns=[*columns, ColumnContract(name="y", type="str", role="target", nullable=False)],
    )
    with pytest.raises(ModelyardError) as err:
        Problem.of(contract, ModelsSection(sample_weight_column="c1O"))
    message = str(err.value)
    assert len(message) < 500 and "'c9999'" not in message
    assert "one of the 10,001 columns 'c0', 'c1'" in message
    assert "... and 9,993 more (10,001 in all)" in message
    assert "Did you mean 'c1'?" in message


# --------------------------------------------------------------------------- the baseline


def test_the_baseline_predicts_the_training_class_shares_and_majority() -> None:
    train = np.array(["no", "no", "no", "yes"])  # shares 0.75 / 0.25, majority "no"
    test = np.array(["no", "yes", "yes", "yes"])
    assert baseline_score("binary", "roc_auc", train, test) == 0.5  # a constant ranks nothing
    assert baseline_score("binary", "accuracy", train, test) == 0.25  # always "no"
    assert baseline_score("binary", "f1", train, test) == 0.0  # never the positive "yes"
    assert baseline_score("binary", "brier", train, test) == pytest.approx(
        (0.25**2 + 3 * 0.75**2) / 4
    )
    assert baseline_score("binary", "log_loss", train, test) == pytest.approx(
        -(math.log(0.75) + 3 * math.log(0.25)) / 4
    )
    shares = np.array(["a", "b", "b", "c"])
    assert baseline_score("multiclass", "accuracy", shares, np.array(["b", "c"])) == 0.5


def test_the_regression_baseline_predicts_the_training_mean() -> None:
    train, test = np.array([1.0, 2.0, 6.0]), np.array([0.0, 6.0])  # mean 3
    assert baseline_score("regression", "mae", train, test) == 3.0
    assert baseline_score("regression", "rmse", train, test) == 3.0
    assert baseline_score("regression", "r2", train, test) == 0.0  # the test mean is 3 too


def test_an_undefined_baseline_is_nan() -> None:
    one_class = np.array(["yes", "yes"])
    assert math.isnan(baseline_score("binary", "roc_auc", np.array(["no", "yes"]), one_class))
    unseen = np.array(["a", "d"])  # "d" has no training share: no probability for it
    assert math.isnan(baseline_score("multiclass", "log_loss", np.array(["a", "b"]), unseen))
    assert baseline_score("multiclass", "accuracy", np.array(["a", "a", "b"]), unseen) == 0.5
    assert math.isnan(baseline_score("regression", "rmse", np.array([]), np.array([1.0])))

"""The calibration path through a real (tiny) project: the register step saves the champion's
``calibration.json`` fitted on the search's out-of-fold predictions, and the ``monitor``
command's context loads it for the estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.ops.monitoring._projects import bike_project, penguins_project

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_champion_carries_its_calibration_to_the_monitor(
    tmp_path: Path, shared_data: Path
) -> None:
    from modelyard.ops.monitoring.estimate import CALIBRATION_FILE, estimate, load_calibration
    from modelyard.recipe import Project

    yaml = penguins_project(tmp_path, shared_data, models="[linear]")
    # bounded by trials, not the wall clock (a busy machine must not starve the search)
    yaml.write_text(
        yaml.read_text().replace("tuning: {top_k: 0}", "tuning: {top_k: 0, n_trials: 1}")
    )
    project = Project.from_yaml(yaml)
    result = project.run()
    assert result.registration is not None
    champion = project.registry().champion()
    assert champion is not None
    client = project.registry().client
    assert CALIBRATION_FILE in {a.path for a in client.list_artifacts(champion.run_id)}
    calibration = load_calibration(client, champion.run_id)
    assert calibration is not None and calibration.task == "multiclass"
    assert calibration.classes == ["Adelie", "Chinstrap", "Gentoo"]
    # fitted on the covered out-of-fold rows of the training part
    assert 100 < calibration.rows <= result.output("split").train.height
    ctx = project._monitor_inputs(None, None)
    assert ctx.calibration == calibration
    # what the monitor would do with the champion's logged probabilities
    model = project.registry().load_champion()
    from modelyard.modeling.features import to_pandas

    test = result.output("split").test
    contract = result.output("contract")
    proba = model.predict(to_pandas(test, contract))
    cols = [f"proba_{c}" for c in calibration.classes]
    est = estimate(calibration, proba[cols].to_numpy(), proba["prediction"].astype(str).tolist())
    truth = test.get_column("species").cast(str).to_numpy()
    realised = float(np.mean(proba["prediction"].astype(str).to_numpy() == truth))
    assert set(est) == {"accuracy", "f1_macro"}
    assert abs(est["accuracy"] - realised) <= 0.1  # ~70 test rows: sampling error is large


def test_a_regression_champion_has_no_calibration(tmp_path: Path, shared_data: Path) -> None:
    from modelyard.recipe import Project

    yaml, _ = bike_project(tmp_path, shared_data)
    yaml.write_text(
        yaml.read_text().replace("tuning: {top_k: 0}", "tuning: {top_k: 0, n_trials: 1}")
    )
    Project.from_yaml(yaml).run()
    assert Project.from_yaml(yaml)._monitor_inputs(None, None).calibration is None

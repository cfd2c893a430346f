"""Every example project runs its data half (`run --until profile`) on the real datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard import Project
from tests.conftest import EXAMPLES, copy_project

# example -> (training rows, a column the profile must flag as leaking the target, or None)
EXPECTED = {
    "adult": (32_561, None),
    "titanic": (891, "alive"),
    "diamonds": (53_940, None),
    "bike_sharing": (17_379, "registered"),
    "kddcup99": (494_021, None),
    "penguins": (344, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_until_profile(
    name: str, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DATA", str(shared_data))
    folder = tmp_path / name
    copy_project(EXAMPLES / name, folder)
    result = Project.from_yaml(folder / "modelyard.yaml").run(until="profile")
    rows, leak = EXPECTED[name]
    report = result.validation["train"]
    assert report.rows == rows
    assert report.valid_rows + report.invalid_rows == rows
    assert (folder / "modelyard-out" / "profile.html").is_file()
    assert (folder / "contract.yaml").is_file()
    if leak is not None:
        alerts = result.output("profile").alerts
        assert any(a.kind == "leakage" and leak in a.columns for a in alerts), [
            a.message for a in alerts
        ]


def test_bike_sharing_trains_on_2011_and_registers_with_its_time_column(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time column reaches the model through its parts, so the registered model takes it."""
    monkeypatch.setenv("MODELYARD_DATA", str(shared_data))
    folder = tmp_path / "bike"
    copy_project(EXAMPLES / "bike_sharing", folder)
    config = folder / "modelyard.yaml"
    config.write_text(
        config.read_text()
        + "models:\n  candidates: [dummy, linear]\n  cv_sample: 3000\n"
        + "tuning:\n  top_k: 0\nevaluation:\n  permutation_importance: false\n"
    )
    result = Project.from_yaml(config).run()
    split = result.output("split")
    assert (
        split.train["dteday"].max() < split.test["dteday"].min()
    )  # the past trains, the future tests
    assert result.registration is not None
    model = Project.from_yaml(config).registry().load_version(result.registration.version)
    from modelyard.modeling.features import to_pandas

    out = model.predict(to_pandas(split.test.head(50), result.output("contract")))
    assert len(out) == 50
    assert "dteday" in model.features  # the columns the registered model takes

"""A cached run asks a real MLflow server whether it still holds the cached registration."""

from __future__ import annotations

import pytest

from modelyard.ops.tracking import missing_registration


def test_a_server_is_asked_whether_it_still_holds_the_version(
    mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    run = client.create_run(experiment_id="0")
    other = client.create_run(experiment_id="0")
    client.create_registered_model("presence")
    source = f"runs:/{run.info.run_id}/model"
    version = client.create_model_version("presence", source, run_id=run.info.run_id).version
    assert missing_registration(mlflow_server, "presence", str(version), run.info.run_id) is None
    assert "another run" in (
        missing_registration(mlflow_server, "presence", str(version), other.info.run_id) or ""
    )
    gone = missing_registration(mlflow_server, "presence", str(int(version) + 1), "r")
    assert gone is not None and "missing from the registry" in gone
    client.delete_model_version("presence", str(version))
    assert "missing" in (
        missing_registration(mlflow_server, "presence", str(version), run.info.run_id) or ""
    )
    # a server that does not answer is not taken for a lost registration
    assert missing_registration("http://127.0.0.1:9", "presence", "1", "r") is None
    # credentials in the URI go in a header, not into the request line
    assert (
        missing_registration(
            mlflow_server.replace("http://", "http://me:p%40ss@"), "presence", "1", "r"
        )
        is not None
    )

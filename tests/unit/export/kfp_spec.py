"""The strict parse of an exported Kubeflow pipeline, shared by the unit and integration tests.

The ``PipelineSpec`` document goes through ``kfp-pipeline-spec``'s protobuf with unknown
fields rejected (what the KFP API server does with ``protojson.Unmarshal``); so does the
``PlatformSpec`` document. Its executors' configs are ``google.protobuf.Struct`` in that
protobuf (their message, ``KubernetesExecutorConfig``, is in kfp-kubernetes, which needs the
whole kfp SDK): they are checked against the field names of
kubernetes_platform/proto/kubernetes_executor_config.proto, and the one field typed from
pipeline_spec.proto (``secretNameParameter``) is parsed strictly too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

KUBERNETES_EXECUTOR_FIELDS = {
    "secretAsVolume", "secretAsEnv", "pvcMount", "nodeSelector", "podMetadata",
    "imagePullSecret", "imagePullPolicy", "configMapAsVolume", "configMapAsEnv",
    "activeDeadlineSeconds", "fieldPathAsEnv", "tolerations", "genericEphemeralVolume",
    "nodeAffinity", "podAffinity", "enabledSharedMemory", "emptyDirMounts", "securityContext",
    "initContainers",
}  # fmt: skip
"""``KubernetesExecutorConfig``'s fields (JSON names), kfp-kubernetes 2.17."""
SECRET_AS_ENV_FIELDS = {"secretName", "keyToEnv", "optional", "secretNameParameter"}
KEY_TO_ENV_FIELDS = {"secretKey", "envVar"}


@dataclass
class Parsed:
    spec: pipeline_spec_pb2.PipelineSpec
    platform: pipeline_spec_pb2.PlatformSpec | None
    raw: dict[str, Any]
    raw_platform: dict[str, Any] | None


def strict_parse(text: str) -> Parsed:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert 1 <= len(docs) <= 2, f"expected 1 or 2 YAML documents, found {len(docs)}"
    spec = json_format.ParseDict(
        docs[0], pipeline_spec_pb2.PipelineSpec(), ignore_unknown_fields=False
    )
    platform = None
    if len(docs) == 2:
        platform = json_format.ParseDict(
            docs[1], pipeline_spec_pb2.PlatformSpec(), ignore_unknown_fields=False
        )
        executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        for name, config in executors.items():
            assert name in spec.deployment_spec["executors"], f"unknown executor {name}"
            assert set(config) <= KUBERNETES_EXECUTOR_FIELDS, set(config)
            for item in config.get("secretAsEnv", []):
                assert set(item) <= SECRET_AS_ENV_FIELDS, set(item)
                assert isinstance(item["secretName"], str)
                assert isinstance(item.get("optional", False), bool)
                for pair in item["keyToEnv"]:
                    assert set(pair) == KEY_TO_ENV_FIELDS, set(pair)
                    assert all(isinstance(v, str) for v in pair.values())
                parameter = json_format.ParseDict(
                    item["secretNameParameter"],
                    pipeline_spec_pb2.TaskInputsSpec.InputParameterSpec(),
                    ignore_unknown_fields=False,
                )
                assert parameter.runtime_value.constant.string_value == item["secretName"]
    assert spec.schema_version == "2.1.0"
    assert spec.pipeline_info.name
    return Parsed(spec, platform, docs[0], docs[1] if len(docs) == 2 else None)


def task_order(raw: dict[str, Any]) -> list[str]:
    """The root DAG's tasks in an order that respects ``dependentTasks`` (Kahn's algorithm,
    ties by name), as an executor would start them."""
    tasks = raw["root"]["dag"]["tasks"]
    waiting = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    for name, deps in waiting.items():
        assert deps <= set(tasks), f"{name} depends on unknown tasks {deps - set(tasks)}"
    order: list[str] = []
    while waiting:
        ready = sorted(n for n, deps in waiting.items() if not deps - set(order))
        assert ready, f"the DAG has a cycle among {sorted(waiting)}"
        order.append(ready[0])
        del waiting[ready[0]]
    return order


def container(raw: dict[str, Any], task: str) -> dict[str, Any]:
    """The container of a root task's executor."""
    component = raw["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    executor = raw["components"][component]["executorLabel"]
    result: dict[str, Any] = raw["deploymentSpec"]["executors"][executor]["container"]
    return result

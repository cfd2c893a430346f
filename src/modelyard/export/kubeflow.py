"""A :class:`~modelyard.export.Workflow` as a Kubeflow Pipelines v2 pipeline: the IR YAML.

What the kfp SDK's compiler writes for container components, written here with PyYAML (the
SDK is ~115 MB and pins its dependencies): a ``PipelineSpec`` document (``schemaVersion``
2.1.0) and, when secrets are used, a second document, the ``PlatformSpec`` that
kfp-kubernetes' ``use_secret_as_env`` writes (``platforms.kubernetes.deploymentSpec.executors
.<executor>.secretAsEnv``). Per step: a component ``comp-<task>`` whose executor
``exec-<task>`` is a container (the image, ``modelyard`` + ``run -c CONFIG --step NAME
--store URL``, the plain env), and a task of the root DAG with ``dependentTasks`` = the
step's inputs and caching off (``cachingOptions.enableCache: false``: modelyard's keys decide,
see :mod:`modelyard.export`).

Deterministic: sorted keys, no timestamp, nothing random; compiling the same project twice
gives the same bytes. Secrets appear only by reference (secret name, key, variable).
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.__about__ import __version__
from modelyard.errors import ModelyardError
from modelyard.export import Task, Workflow

SCHEMA_VERSION = "2.1.0"
"""The only IR schema version the KFP v2 API server accepts."""
SDK_VERSION = f"modelyard-{__version__}"
"""``sdkVersion``: who wrote the file (KFP's backend reads it as a label only)."""


def k8s_name(text: str) -> str:
    """``text`` as KFP wants names: lower case, letters, digits and '-' (``ingest_test`` ->
    ``ingest-test``), as the kfp compiler sanitises them."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def _task_keys(tasks: tuple[Task, ...]) -> dict[str, str]:
    keys: dict[str, str] = {}
    taken: dict[str, str] = {}
    for t in tasks:
        key = k8s_name(t.name)
        if not key or key in taken:
            raise ModelyardError(
                f"the step '{t.name}' has no distinct Kubeflow task name",
                where="modelyard export kubeflow",
                expected="step names that differ in lower case letters and digits",
                found=f"'{t.name}' -> '{key}'"
                + (f", like step '{taken[key]}'" if key in taken else ""),
            )
        keys[t.name] = key
        taken[key] = t.name
    return keys


def pipeline_spec(workflow: Workflow) -> dict[str, Any]:
    """The ``PipelineSpec`` document, as plain data (camelCase keys, the protobuf's JSON)."""
    name = k8s_name(workflow.name)
    if not name:
        raise ModelyardError(
            "the project's name has no letter or digit to name the pipeline",
            where="name",
            found=repr(workflow.name),
        )
    keys = _task_keys(workflow.tasks)
    env = [{"name": k, "value": v} for k, v in sorted(workflow.env.items())]
    components: dict[str, Any] = {}
    executors: dict[str, Any] = {}
    tasks: dict[str, Any] = {}
    for t in workflow.tasks:
        key = keys[t.name]
        container: dict[str, Any] = {
            "image": workflow.image,
            "command": list(t.command[:1]),
            "args": list(t.command[1:]),
        }
        if env:
            container["env"] = env
        executors[f"exec-{key}"] = {"container": container}
        components[f"comp-{key}"] = {"executorLabel": f"exec-{key}"}
        task: dict[str, Any] = {
            "cachingOptions": {"enableCache": False},
            "componentRef": {"name": f"comp-{key}"},
            "taskInfo": {"name": t.name},
        }
        if t.inputs:
            task["dependentTasks"] = sorted(keys[up] for up in t.inputs)
        tasks[key] = task
    info = {"name": name, "displayName": workflow.name}
    if workflow.description:
        info["description"] = workflow.description
    return {
        "components": components,
        "deploymentSpec": {"executors": executors},
        "pipelineInfo": info,
        "root": {"dag": {"tasks": tasks}},
        "schemaVersion": SCHEMA_VERSION,
        "sdkVersion": SDK_VERSION,
    }


def platform_spec(workflow: Workflow) -> dict[str, Any] | None:
    """The ``PlatformSpec`` document (Kubernetes secrets as env vars), or ``None`` without
    secrets. Each secret both ways kfp-kubernetes writes it: ``secretNameParameter`` (KFP
    >= 2.4 reads it) and the older ``secretName``."""
    if not workflow.secrets:
        return None
    secret_as_env = [
        {
            "keyToEnv": [
                {"envVar": variable, "secretKey": key} for key, variable in sorted(s.keys.items())
            ],
            "optional": False,
            "secretName": s.secret,
            "secretNameParameter": {"runtimeValue": {"constant": s.secret}},
        }
        for s in workflow.secrets
    ]
    keys = _task_keys(workflow.tasks)
    executors = {f"exec-{keys[t.name]}": {"secretAsEnv": secret_as_env} for t in workflow.tasks}
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def _dump(data: dict[str, Any]) -> str:
    """Block YAML with sorted keys and no anchors (a shared list is written out each time)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text: str = yaml.dump(
        data, Dumper=Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True,
        width=4096,
    )  # fmt: skip
    return text


def compile_workflow(workflow: Workflow) -> str:
    """The IR YAML file's text: a header, the ``PipelineSpec``, the ``PlatformSpec``."""
    header = (
        "# PIPELINE DEFINITION\n"
        f"# Name: {k8s_name(workflow.name)}\n"
        f"# Written by {SDK_VERSION} (modelyard export kubeflow): one task per pipeline step,\n"
        "# each running `modelyard run --step NAME` against the shared store.\n"
    )
    text = header + _dump(pipeline_spec(workflow))
    platform = platform_spec(workflow)
    if platform is not None:
        text += "---\n" + _dump(platform)
    return text

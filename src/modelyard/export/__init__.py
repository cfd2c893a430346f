"""Exports of the pipeline to orchestrators: one small interface, one module per orchestrator.

The interface is a :class:`Workflow`: a DAG of :class:`Task` (one per pipeline step), each
with the container command that runs that step alone (``modelyard run -c CONFIG --step NAME
--store URL``), the steps it reads from the store (its inputs, which are also its edges), the
step whose output it writes, plus what every task shares: the image, plain environment
variables and environment variables taken from secrets (:class:`SecretEnv`: a reference to a
secret, never its value). :func:`workflow_from_project` builds it from a project's pipeline
(the same steps, names and dependencies as a local ``modelyard run``); an orchestrator's module
turns it into that orchestrator's file (:mod:`modelyard.export.kubeflow`: Kubeflow Pipelines v2
IR YAML). An Airflow or Argo export would be one more module taking the same :class:`Workflow`.

The steps exchange nothing through the orchestrator: each reads its inputs from the shared
store by their content keys and writes its output there, so the orchestrator only orders
them. That is also why the orchestrator's own caching is turned off: modelyard's
cache key of a step hashes its code, its parameters and the content of its inputs, down to the
source data, and a step whose output is already stored exits at once; an orchestrator's key is
only the command and image, the same on every run, and would replay a stale result after the
data changed.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from modelyard.errors import ModelyardError, mask_url, split_credentials

if TYPE_CHECKING:
    from modelyard.recipe import Project


# ----------------------------------------------------------------------------- the interface


@dataclass(frozen=True)
class SecretEnv:
    """Environment variables filled from one secret of the cluster, by reference only.

    ``keys`` maps a key of the secret to the environment variable that receives its value.
    """

    secret: str
    keys: Mapping[str, str]


@dataclass(frozen=True)
class Task:
    """One step of the pipeline as an orchestrator runs it: a container command.

    Attributes:
        name: the step's name (``modelyard run --step NAME``).
        command: the full command line (argv) the container runs.
        inputs: the steps whose outputs this step reads from the store: its edges.
        output: the store entry this step writes (the step's own name in the store).
        description: one line for the orchestrator's UI.
    """

    name: str
    command: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    output: str = ""
    description: str = ""


@dataclass(frozen=True)
class Workflow:
    """A DAG of tasks that share one image, one store, plain env and env from secrets.

    ``tasks`` are in a topological order (every task after its inputs).
    """

    name: str
    image: str
    store: str
    tasks: tuple[Task, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[SecretEnv, ...] = ()
    description: str = ""

    def edges(self) -> set[tuple[str, str]]:
        """``(upstream, downstream)`` pairs."""
        return {(up, t.name) for t in self.tasks for up in t.inputs}


class Exporter(Protocol):
    """An orchestrator's export: a :class:`Workflow` in, the text of its file out."""

    def __call__(self, workflow: Workflow) -> str: ...


# ----------------------------------------------------------------------------- building one

RUN_IN_IMAGE = ("modelyard", "run")
"""The program a task's container runs (the pipeline image has modelyard on its PATH)."""

_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_LIKE = re.compile(r"secret|passw|token|credential|access_key|private", re.IGNORECASE)
_LOCAL_SCHEMES = {"", "file", "local"}
SECRET_FORMAT = "SECRET:KEY[=ENV_VAR][,KEY[=ENV_VAR]...]"


def parse_secret(spec: str) -> SecretEnv:
    """``--secret`` as typed: ``aws-creds:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY`` or
    ``db:password=PGPASSWORD`` (a key becomes the variable of its own name unless ``=ENV_VAR``
    renames it)."""
    where = f"--secret {spec!r}"
    name, colon, rest = spec.partition(":")
    name = name.strip()
    if not colon or not rest.strip():
        raise ModelyardError(
            "a secret needs the keys to put in the environment",
            where=where,
            expected=SECRET_FORMAT,
            found=repr(spec),
            fix="Name the keys, e.g. --secret aws-creds:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY.",
        )
    if len(name) > 253 or not _SECRET_NAME.match(name):
        raise ModelyardError(
            "not a Kubernetes secret name",
            where=where,
            expected="lower-case letters, digits, '-' and '.', starting and ending with a "
            "letter or digit (at most 253 characters)",
            found=repr(name),
        )
    keys: dict[str, str] = {}
    for item in rest.split(","):
        key, eq, env = (part.strip() for part in item.partition("="))
        if not eq:
            env = key
        if not key or not _SECRET_KEY.match(key):
            raise ModelyardError(
                "not a key of a Kubernetes secret",
                where=where,
                expected="letters, digits, '-', '_' and '.'",
                found=repr(key),
            )
        if not _ENV_NAME.match(env):
            raise ModelyardError(
                f"the secret's key {key!r} needs an environment variable name",
                where=where,
                expected="KEY=ENV_VAR with ENV_VAR made of letters, digits and '_', not "
                "starting with a digit",
                found=repr(env),
                fix=f"Write it as {key}=MY_VARIABLE.",
            )
        if key in keys:
            raise ModelyardError("a key is named twice", where=where, found=repr(key))
        keys[key] = env
    return SecretEnv(name, keys)


def parse_env(spec: str) -> tuple[str, str]:
    """``--env NAME=VALUE``: a plain (non-secret) variable, written into the file as is."""
    name, eq, value = spec.partition("=")
    if not eq or not _ENV_NAME.match(name):
        raise ModelyardError(
            "not an environment variable",
            where=f"--env {spec.partition('=')[0]!r}",
            expected="NAME=VALUE with NAME made of letters, digits and '_'",
            found=repr(name) if eq else "no '='",
        )
    if _SECRET_LIKE.search(name) or split_credentials(value) is not None:
        raise ModelyardError(
            "a secret would be written into the pipeline file in clear",
            where=f"--env {name}",
            fix="Put it in a Kubernetes secret and map it with --secret SECRET:KEY[=ENV_VAR].",
        )
    return name, value


def check_store(url: str) -> str:
    """The store as the cluster's pods see it: an object-store URL without credentials."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in _LOCAL_SCHEMES or re.match(r"^[A-Za-z]:[\\/]", url):
        raise ModelyardError(
            "the store is a local path, which the cluster's pods cannot read",
            where="--store",
            expected="an object-store URL every pod reaches, such as s3://bucket/prefix or "
            "gs://bucket/prefix",
            found=repr(url),
            fix="Create a bucket (or a prefix in one) for the project and pass its URL.",
        )
    if split_credentials(url) is not None:
        raise ModelyardError(
            "the store URL holds credentials, which would be written into the pipeline file",
            where="--store",
            found=repr(mask_url(url)),
            fix="Drop them from the URL and map them from a Kubernetes secret with --secret "
            "(e.g. --secret aws-creds:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY).",
        )
    return url


def _check_env(env: Mapping[str, str], secrets: Sequence[SecretEnv]) -> None:
    seen: dict[str, str] = {name: "--env" for name in env}
    for s in secrets:
        for variable in s.keys.values():
            if variable in seen:
                raise ModelyardError(
                    f"the environment variable {variable!r} is set twice",
                    where=f"--secret {s.secret}",
                    found=f"also set by {seen[variable]}",
                    fix="Give each variable one source.",
                )
            seen[variable] = f"--secret {s.secret}"


def workflow_from_project(
    project: Project,
    *,
    image: str,
    store: str,
    config_in_image: str,
    secrets: Iterable[SecretEnv] = (),
    env: Mapping[str, str] | None = None,
) -> Workflow:
    """The project's pipeline as a :class:`Workflow`: one task per step, with the same names
    and dependencies as a local run (read from the pipeline object, not from CLI output)."""
    if not image.strip():
        raise ModelyardError(
            "no image given",
            where="--image",
            fix="Pass the image the pipeline runs in (see docs/kubeflow.md).",
        )
    if not PurePosixPath(config_in_image).is_absolute():
        raise ModelyardError(
            "the project file's path in the image must be absolute",
            where="--config-path-in-image",
            found=repr(config_in_image),
            fix="e.g. /project/modelyard.yaml",
        )
    store = check_store(store)
    secrets = tuple(secrets)
    env = dict(env or {})
    _check_env(env, secrets)
    pipeline = project.pipeline()
    tasks = tuple(
        Task(
            name=step.name,
            command=(*RUN_IN_IMAGE, "-c", config_in_image, "--step", step.name, "--store", store),
            inputs=tuple(step.upstream),
            output=step.name,
            description=step.description,
        )
        for step in pipeline.steps
    )
    return Workflow(
        name=project.config.name,
        image=image,
        store=store,
        tasks=tasks,
        env=env,
        secrets=secrets,
        description=f"modelyard project '{project.config.name}': one task per pipeline step",
    )


def shell_command(task: Task) -> str:
    """The task's command as one shell line (for messages and docs)."""
    return shlex.join(task.command)


def write_atomic(path: Path, text: str, *, where: str = "--out") -> Path:
    """Write ``text`` to ``path`` whole or not at all (temp file + rename)."""
    path = Path(path)
    if path.is_dir():
        raise ModelyardError(
            "the output is a folder", where=where, found=str(path), fix="Name a file."
        )
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ModelyardError(
            "cannot write the pipeline file",
            where=where,
            found=f"{type(exc).__name__}: {exc.strerror or exc}",
            fix="Choose a path in a folder you can write to.",
        ) from None
    return path

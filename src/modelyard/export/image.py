"""The build context of the image an exported pipeline runs in (``--build-context DIR``).

Not the serving image of ``modelyard package`` (that one holds the server and one model, and
installs none of the training libraries): every step of the pipeline runs in this one, so it
holds modelyard with its runtime dependencies and the ``s3`` extra (pinned to the versions
installed here), a ``modelyard`` command on the PATH, and the project's folder at
``/project`` (its run state left out: the cache, the outputs, an MLflow store)::

    Dockerfile          python:3.11-slim, non-root (uid 10001)
    .dockerignore
    requirements.txt    pinned: modelyard's runtime dependencies and s3fs
    modelyard/          the modelyard package
    project/            the project's files (modelyard.yaml, contract.yaml, your code, data)
"""

from __future__ import annotations

import importlib.metadata as md
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from modelyard.errors import ModelyardError

UID = 10001
PROJECT_IN_IMAGE = "/project"
EXTRAS = ("s3",)
"""The extras the image installs: the store on S3 (and any fsspec URL s3fs covers)."""
RUN_STATE = (
    ".modelyard", "modelyard-out", "mlflow.db", "mlruns", "mlartifacts", "__pycache__", "*.pyc",
    ".git", ".venv", ".*.tmp",
)  # fmt: skip
"""What a local run leaves in a project folder: never copied into the image."""


def requirements() -> list[str]:
    """modelyard's runtime dependencies and those of :data:`EXTRAS`, pinned to what is
    installed."""
    wanted: set[str] = set()
    for line in md.requires("modelyard") or []:
        spec, _, marker = line.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra and extra.group(1) not in EXTRAS:
            continue
        wanted.add(re.split(r"[=<>!~\[ ]", spec.strip(), maxsplit=1)[0])
    pinned = []
    for name in sorted(wanted, key=str.lower):
        try:
            pinned.append(f"{name}=={md.version(name)}")
        except md.PackageNotFoundError:
            raise ModelyardError(
                f"the package '{name}' the pipeline image needs is not installed",
                where="--build-context",
                fix="Install the s3 extra: pip install 'modelyard[s3]' (or uv sync --extra s3).",
            ) from None
    return pinned


def dockerfile() -> str:
    return f"""\
# Built by modelyard export kubeflow --build-context: every step of the pipeline runs here.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PYTHONPATH=/opt/modelyard \\
    MLFLOW_DISABLE_TELEMETRY=true \\
    DO_NOT_TRACK=true

COPY requirements.txt /opt/modelyard/requirements.txt
RUN pip install --no-cache-dir -r /opt/modelyard/requirements.txt

COPY modelyard/ /opt/modelyard/modelyard/
RUN printf '#!/bin/sh\\nexec python -c "from modelyard.cli import main; main()" "$@"\\n' \\
        > /usr/local/bin/modelyard \\
    && chmod 0755 /usr/local/bin/modelyard \\
    && useradd --system --uid {UID} --create-home --shell /usr/sbin/nologin modelyard

COPY --chown={UID}:{UID} project/ {PROJECT_IN_IMAGE}/
WORKDIR {PROJECT_IN_IMAGE}
USER {UID}

ENTRYPOINT ["modelyard"]
CMD ["--help"]
"""


def build_context(project_dir: Path, out: Path, *, exclude: Iterable[Path] = ()) -> list[str]:
    """Write the build context into ``out`` (a new or empty folder); the files written.

    ``exclude``: more folders of the project not to copy (the configured workdir and outputs;
    ``out`` itself when it is inside the project)."""
    out = Path(out)
    project_dir = Path(project_dir).resolve()
    skip = {p.resolve() for p in (*exclude, out)}

    def ignore(folder: str, names: list[str]) -> set[str]:
        ignored = set(shutil.ignore_patterns(*RUN_STATE)(folder, names))
        return ignored | {n for n in names if (Path(folder) / n).resolve() in skip}

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelyardError(
            "the build context's folder is not empty",
            where="--build-context",
            found=str(out),
            fix="Name a new folder, or empty this one.",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "requirements.txt").write_text(
            "# Pinned by modelyard export kubeflow: modelyard's runtime dependencies and s3fs.\n"
            + "\n".join(requirements())
            + "\n",
            encoding="utf-8",
        )
        src = Path(__file__).resolve().parents[1]  # the modelyard package
        shutil.copytree(
            src, out / "modelyard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        shutil.copytree(project_dir, out / "project", ignore=ignore)
        (out / "Dockerfile").write_text(dockerfile(), encoding="utf-8")
        (out / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n", encoding="utf-8")
    except OSError as exc:
        raise ModelyardError(
            "cannot write the build context",
            where="--build-context",
            found=f"{type(exc).__name__}: {exc}",
            fix="Choose a folder you can write to.",
        ) from None
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())

"""Serve or package a model from modelyard.yaml's ``serving`` section plus overrides.

:meth:`modelyard.recipe.Project.serve` and :meth:`~modelyard.recipe.Project.package` call these
with the project's configuration; ``modelyard serve`` / ``package`` without a project (``--model``
and ``--tracking-uri`` only) call them with ``config=None``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.config.schema import ProjectConfig
    from modelyard.ops.packaging import PackageResult


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def serve(
    config: ProjectConfig | None,
    *,
    model: str | None = None,
    tracking_uri: str | None = None,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    server: str | None = None,
    lenient: bool | None = None,
    labels: Path | None = None,
    announce: Callable[[str], None] = _to_stderr,
) -> None:
    """Run the prediction server in the foreground until it is stopped (SIGINT/SIGTERM).

    ``model``: NAME@ALIAS, NAME/VERSION or a model folder (default: ``serving.model``, else the
    project's champion). ``labels``: the label set Label Studio's annotation webhooks append to
    (none: they are refused). Every other argument overrides the ``serving`` section. A registered
    model that cannot be found fails before the server starts. ``announce`` receives the line
    saying what is served where.
    """
    from modelyard.ops.serving.server import run_server, settings_from_config

    settings, launch, token = settings_from_config(
        config, model=model, tracking_uri=tracking_uri, lenient=lenient
    )
    if labels is not None:
        from modelyard.ops.serving.labelstudio import SETTINGS_KEY

        settings.extra[SETTINGS_KEY] = {"labels": str(Path(labels).resolve())}
    if host:
        launch.host = host
    if port:
        launch.port = port
    if workers:
        launch.workers = workers
    if server:
        launch.server = server
    check_model_exists(settings.model, settings.tracking_uri)
    announce(
        f"modelyard serve: {settings.model} on http://{launch.host}:{launch.port} "
        f"({launch.workers} worker{'s' if launch.workers > 1 else ''}, {launch.server})"
    )
    run_server(settings, launch, token)


def check_model_exists(model: str, tracking_uri: str | None) -> None:
    """Fail before the server starts (one clear message) when the model cannot be found."""
    from modelyard.ops.registry import Registry, parse_model_ref

    ref = parse_model_ref(model)
    if ref.path is None and ref.name is not None and tracking_uri is not None:
        Registry(tracking_uri, ref.name, audit_log=Path(os.devnull)).resolve(ref)


def package(
    config: ProjectConfig | None,
    out: Path,
    *,
    model: str | None = None,
    tracking_uri: str | None = None,
    image: str | None = None,
    service_monitor: bool = True,
) -> PackageResult:
    """Write a Docker/Kubernetes build context serving one model version into ``out``."""
    import tempfile

    from modelyard.ops.packaging import package as build
    from modelyard.ops.registry import parse_model_ref
    from modelyard.ops.serving.model import fetch_model
    from modelyard.ops.serving.server import settings_from_config

    settings, _, _ = settings_from_config(config, model=model, tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="modelyard-package-") as tmp:
        local, facts = fetch_model(
            parse_model_ref(settings.model), settings.tracking_uri, Path(tmp)
        )
        return build(
            local,
            Path(out),
            name=str(facts.get("name") or "model"),
            version=str(facts.get("version") or "local"),
            facts={k: v for k, v in facts.items() if k not in ("name", "version")},
            image=image,
            service_monitor=service_monitor,
            lenient=settings.lenient,
            max_body_bytes=settings.max_body_bytes,
            max_batch_rows=settings.max_batch_rows,
            checks=settings.checks,
        )

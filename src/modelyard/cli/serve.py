"""``modelyard serve`` (a registered model over HTTP) and ``modelyard package`` (its
Docker/Kubernetes build context).

Thin calls of :meth:`~modelyard.recipe.Project.serve` and :meth:`~modelyard.recipe.Project.package`
(or, with ``--model`` and no project, of :mod:`modelyard.ops.serving.launch`). Only click is
imported here; everything else loads when a command runs, so ``modelyard --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelyard.cli.options import config_option, load_project

if TYPE_CHECKING:
    from modelyard.recipe import Project

_CONFIG = config_option(
    "The project file (or its folder); optional when --model and --tracking-uri are given."
)
_MODEL = click.option(
    "--model",
    "model",
    metavar="NAME@ALIAS|NAME/VERSION|FOLDER",
    help="What to serve (default: serving.model, else the project's champion).",
)
_TRACKING = click.option(
    "--tracking-uri", help="MLflow tracking URI (default: the project's embedded store)."
)


@click.command()
@_CONFIG
@_MODEL
@_TRACKING
@click.option("--host", help="Interface to listen on (default: serving.host, 127.0.0.1).")
@click.option("--port", type=int, help="TCP port (default: serving.port, 8080).")
@click.option("--workers", type=click.IntRange(min=1), help="Server processes (default 1).")
@click.option(
    "--server", "server_kind", type=click.Choice(["uvicorn", "granian"]), help="ASGI server."
)
@click.option("--lenient/--strict", default=None, help="Predict despite contract violations.")
@click.option(
    "--labels",
    "labels",
    type=click.Path(path_type=Path, file_okay=False),
    help="Label set that Label Studio's annotation webhooks append to "
    "(default: labels/ in the project folder; none without a project).",
)
def serve(
    config_path: Path,
    model: str | None,
    tracking_uri: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    server_kind: str | None,
    lenient: bool | None,
    labels: Path | None,
) -> None:
    """Serve a registered model over HTTP (POST /predict, /health, /ready, /metrics, ...)."""
    options: dict[str, Any] = dict(
        model=model, tracking_uri=tracking_uri, host=host, port=port, workers=workers,
        server=server_kind, lenient=lenient, labels=labels,
    )  # fmt: skip
    project = _project(config_path, required=_needs_project(model, tracking_uri))
    if project is not None:
        project.serve(**options)
    else:  # --model (and --tracking-uri) only
        from modelyard.ops.serving.launch import serve as serve_model

        serve_model(None, **options)


def _project(config_path: Path, required: bool) -> Project | None:
    """The project, or None when there is no modelyard.yaml and none is needed."""
    path = config_path / "modelyard.yaml" if config_path.is_dir() else config_path
    if not path.exists() and not required:
        return None
    return load_project(path)


def _needs_project(model: str | None, tracking_uri: str | None) -> bool:
    return model is None or (tracking_uri is None and not Path(model).is_dir())


@click.command()
@_CONFIG
@_MODEL
@_TRACKING
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Folder of the build context."
)
@click.option("--image", help="Image name (default ghcr.io/OWNER/<name>-model:<version>).")
@click.option(
    "--service-monitor/--no-service-monitor", default=True, help="Write a ServiceMonitor."
)
def package(
    config_path: Path,
    model: str | None,
    tracking_uri: str | None,
    out: Path,
    image: str | None,
    service_monitor: bool,
) -> None:
    """Write a Docker/Kubernetes build context serving one model version."""
    project = _project(config_path, required=_needs_project(model, tracking_uri))
    if project is not None:
        result = project.package(
            out, model=model, tracking_uri=tracking_uri, image=image,
            service_monitor=service_monitor,
        )  # fmt: skip
    else:  # --model (and --tracking-uri) only
        from modelyard.ops.serving.launch import package as package_model

        result = package_model(
            None, out, model=model, tracking_uri=tracking_uri, image=image,
            service_monitor=service_monitor,
        )  # fmt: skip
    click.echo(f"wrote {len(result.files)} files to {result.out} (image {result.image})")

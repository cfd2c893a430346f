"""``modelyard export``: the pipeline as another orchestrator's file (``export kubeflow``).

Thin: parses the flags, builds the :class:`~modelyard.export.Workflow` from the project and
hands it to the orchestrator's module. Only click is imported at module level.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.cli.options import config_option, load_project


@click.group()
def export() -> None:
    """Export the pipeline to an orchestrator (Kubeflow Pipelines)."""


@export.command(
    epilog="Upload the file in the Kubeflow Pipelines UI (Pipelines > Upload pipeline), or "
    "with the kfp client: kfp.Client(host=...).create_run_from_pipeline_package("
    "'pipeline.yaml', arguments={}). See docs/kubeflow.md."
)
@config_option()
@click.option(
    "--image",
    required=True,
    metavar="IMAGE",
    help="The container image every step runs in: modelyard with its training dependencies "
    "and the project file (not the serving image of `modelyard package`; see docs/kubeflow.md).",
)
@click.option(
    "--store",
    required=True,
    metavar="URL",
    help="The store every step reads and writes, reachable from the cluster: s3://bucket/prefix "
    "(or another fsspec URL). A local path is refused.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Where to write the pipeline (IR YAML); written whole or not at all.",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="SECRET:KEY[=VAR],...",
    help="Environment variables from a Kubernetes secret, by reference (never its value): "
    "aws-creds:AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY, or db:password=PGPASSWORD. Repeatable.",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    metavar="NAME=VALUE",
    help="A plain environment variable for every step, e.g. AWS_ENDPOINT_URL=http://minio:9000 "
    "or MLFLOW_TRACKING_URI (one that looks secret is refused: use --secret). Repeatable.",
)
@click.option(
    "--build-context",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Also write the build context of IMAGE into DIR (a new folder): a Dockerfile, modelyard "
    "with its pinned dependencies and the s3 extra, and the project's files at /project. "
    "Then: docker build -t IMAGE DIR && docker push IMAGE.",
)
@click.option(
    "--config-path-in-image",
    metavar="PATH",
    help="Where the project file is inside the image [default: /project/<its file name>].",
)
def kubeflow(
    config_path: Path,
    image: str,
    store: str,
    out: Path,
    secrets: tuple[str, ...],
    env: tuple[str, ...],
    build_context: Path | None,
    config_path_in_image: str | None,
) -> None:
    """Compile the pipeline to a Kubeflow Pipelines v2 pipeline (IR YAML).

    One container component per step, each running
    `modelyard run -c CONFIG --step NAME --store URL` in IMAGE, with the DAG's edges; the
    steps exchange their data through the store, by content key.

    Caching: Kubeflow's own caching is off for every task; modelyard's cache keys decide.
    They hash the step's code, its parameters and the content of its inputs, down to the
    source data, so a task whose output is already in the store exits at once with nothing
    to do. Kubeflow's key is only the command, image and inputs, the same on every run: it
    would replay a stale result after the data changed.

    Compiling the same project twice gives the same bytes.
    """
    from modelyard.export import parse_env, parse_secret, workflow_from_project, write_atomic
    from modelyard.export.kubeflow import compile_workflow

    parsed_secrets = [parse_secret(s) for s in secrets]
    plain: dict[str, str] = {}
    for item in env:
        name, value = parse_env(item)
        plain[name] = value
    project = load_project(config_path)
    file = project.config_path or config_path
    in_image = config_path_in_image or f"/project/{file.name}"
    workflow = workflow_from_project(
        project,
        image=image,
        store=store,
        config_in_image=in_image,
        secrets=parsed_secrets,
        env=plain,
    )
    text = compile_workflow(workflow)
    tracking = project.config.tracking.uri
    if "MLFLOW_TRACKING_URI" not in plain and not (
        tracking and tracking.startswith(("http://", "https://", "databricks"))
    ):
        click.secho(
            "warning: tracking.uri is not an MLflow server, so the register step would write "
            "to a database inside its pod, lost when the pod ends. Set tracking.uri (or "
            "--env MLFLOW_TRACKING_URI=...) to a server the cluster reaches.",
            fg="yellow",
            err=True,
        )
    if build_context is not None:
        from modelyard.export.image import build_context as write_context

        config = project.config
        write_context(
            file.resolve().parent, build_context, exclude=(config.workdir, config.output_dir, out)
        )
        click.echo(
            f"wrote the image's build context to {build_context}: docker build -t {image} {build_context}"
        )
    path = write_atomic(out, text)
    n = len(workflow.tasks)
    click.echo(
        f"wrote {path}: {n} task{'s' if n != 1 else ''}, "
        f"{len(workflow.edges())} edge{'s' if len(workflow.edges()) != 1 else ''}, "
        f"image {image}, store {store}"
    )
    click.echo(
        "upload it in the Kubeflow Pipelines UI, or with "
        f"kfp.Client(host=...).create_run_from_pipeline_package({str(path)!r})"
    )

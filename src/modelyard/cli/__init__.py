"""The ``modelyard`` command: a thin layer over the Python API (:class:`modelyard.recipe.Project`).

One module per command group: :mod:`.run` (run, ingest, validate, profile), :mod:`.models`
(models ..., predict), :mod:`.serve` (serve, package), :mod:`.monitor` (monitor, drift),
:mod:`.project` (init, clean, config, schema), :mod:`.export` (export kubeflow); the options they share are in :mod:`.options`.

Heavy libraries are imported inside the commands, so ``modelyard --help`` stays fast.
User errors print one paragraph (no traceback) and exit with status 2; a failed step exits 1.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from modelyard.__about__ import __version__
from modelyard.cli.export import export
from modelyard.cli.label import label
from modelyard.cli.models import models, predict
from modelyard.cli.monitor import drift, monitor
from modelyard.cli.project import clean, init, schema, show_config
from modelyard.cli.run import ingest, profile, run, validate
from modelyard.cli.serve import package, serve


def _fail(exc: Exception) -> NoReturn:
    from modelyard.errors import StepFailed

    click.secho(f"error: {exc}", fg="red", err=True)
    sys.exit(1 if isinstance(exc, StepFailed) else 2)


class _Guard(click.Group):
    """Turn ModelyardError (and Ctrl-C) into a clean message; anything else keeps its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from modelyard.cli.options import INTERRUPTED
        from modelyard.errors import ModelyardError

        INTERRUPTED.clear()  # per command: an earlier one in this process is over
        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            if not INTERRUPTED.is_set():  # else a library wrapped the interrupt into its error
                _fail(exc)
            _interrupted()
        except KeyboardInterrupt:
            _interrupted()


def _interrupted() -> None:
    click.secho(
        "interrupted: finished steps are cached; run the same command again to resume.",
        fg="yellow",
        err=True,
    )
    sys.exit(130)


@click.group(cls=_Guard, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelyard")
def main() -> None:
    """modelyard: from a table of raw data to a tested, versioned, served and monitored model.

    Start with `modelyard init DATA_FILE --target COLUMN`, then `modelyard run`.
    """


for _command in (
    run, ingest, validate, profile,  # cli/run.py
    models, predict,  # cli/models.py
    init, clean, show_config, schema,  # cli/project.py
    serve, package,  # cli/serve.py
    monitor, drift,  # cli/monitor.py
    label,  # cli/label.py
    export,  # cli/export.py
):  # fmt: skip
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()

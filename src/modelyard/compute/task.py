"""How every back-end runs one task: native thread pools capped at one thread, the warnings of
model search silenced, and the worker's traceback attached to an exception it raises."""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any


def call(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    """``fn(*args)`` single-threaded (OpenMP, BLAS) and without per-fit warnings."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), warnings.catch_warnings():
        quiet_warnings()
        try:
            return fn(*args)
        except Exception as exc:
            where = "".join(traceback.format_tb(exc.__traceback__)[-3:])
            exc.add_note(f"in the worker:\n{where.rstrip()}")
            raise


def quiet_warnings() -> None:
    """Warnings that one fit of a search can raise and no user can act on."""
    warnings.simplefilter("ignore", category=UserWarning)
    warnings.simplefilter("ignore", category=FutureWarning)
    warnings.simplefilter("ignore", category=RuntimeWarning)
    try:
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        return
    warnings.simplefilter("ignore", category=ConvergenceWarning)


def error_text(exc: BaseException) -> str:
    """``Type: message`` and the last line of where it happened, for a leaderboard row."""
    text = f"{type(exc).__name__}: {exc}"
    notes = getattr(exc, "__notes__", None) or []
    frames = [line.strip() for note in notes for line in note.splitlines() if "File " in line]
    if frames:
        text += f" ({frames[-1]})"
    elif exc.__traceback__ is not None:
        last = traceback.extract_tb(exc.__traceback__)[-1]
        text += f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
    return text

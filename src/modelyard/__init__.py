"""modelyard: from a table of raw data to a tested, versioned, served and monitored model.

>>> import modelyard
>>> modelyard.__version__ == modelyard.__about__.__version__
True

The public names load lazily, so ``import modelyard`` stays fast and free of side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.__about__ import __version__

if TYPE_CHECKING:
    from modelyard.errors import ModelyardError
    from modelyard.recipe import Project, RunResult

__all__ = ["ModelyardError", "Project", "RunResult", "__version__"]

_LAZY = {
    "Project": "modelyard.recipe",
    "RunResult": "modelyard.recipe",
    "ModelyardError": "modelyard.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'modelyard' has no attribute {name!r}")

"""mcir: image restoration with model-contrastive learning ("learning from history").

Importing the package is light on purpose: submodules (``mcir.archs``, ``mcir.models`` ...)
pull in torch and register their classes when they are imported. ``mcir.Restorer`` (the Python API,
:mod:`mcir.restorer`) is imported on first use.
"""

from typing import Any

from mcir.version import __version__

__all__ = ["Restorer", "__version__"]


def __getattr__(name: str) -> Any:
    """``mcir.Restorer``, imported (with torch) when first asked for."""
    if name == "Restorer":
        from mcir.restorer import Restorer

        return Restorer
    raise AttributeError(f"module 'mcir' has no attribute {name!r}")

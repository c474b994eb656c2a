"""mcir: image restoration with model-contrastive learning ("learning from history").

Importing the package is light on purpose: submodules (``mcir.archs``, ``mcir.models`` ...)
pull in torch and register their classes when they are imported.
"""

from mcir.version import __version__

__all__ = ["__version__"]

"""Task models (a network and its losses), registered in ``MODEL_REGISTRY``."""

# Imported for their registration side effect.
from mcir.models import mcir_model, restoration_model  # noqa: F401
from mcir.models.mcir_model import MCIRModel
from mcir.models.restoration_model import RestorationModel
from mcir.registry import MODEL_REGISTRY

__all__ = ["MODEL_REGISTRY", "MCIRModel", "RestorationModel"]

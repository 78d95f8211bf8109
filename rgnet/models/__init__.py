"""Models: ordinary ``nn.Module``s in a registry (``rgnet.models.registry``) that says which tensors IMP may prune."""

from rgnet.models import cnn1d, conv, mlp, resnet  # noqa: F401  (register the built-in models)
from rgnet.models.registry import (
    MODELS,
    PRUNABLE_TYPES,
    ModelSpec,
    build_model,
    check_params,
    output_layer,
    prunable_layers,
    register,
)

__all__ = ["MODELS", "ModelSpec", "PRUNABLE_TYPES", "build_model", "check_params", "output_layer", "prunable_layers",
           "register"]

"""The model registry: how a model is built and which of its tensors IMP may prune.

Every model is an ordinary ``nn.Module``. Which tensors IMP may prune is declared here: the weights of
every ``nn.Linear`` and ``nn.Conv1d/2d`` in module order; whether the first and the output (last) of them
are pruned is each model's declared default, overridable with ``ModelConfig.prune_first/prune_output``.
A *layer* is named by its module path (``"fc1"``, ``"blocks.3.conv2"``); its tensor is ``<layer>.weight``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from rgnet.config import ModelConfig, check_like
from rgnet.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]   # build(in_shape, n_classes, **params) -> nn.Module
    prune_first: bool = True
    prune_output: bool = True
    doc: str = ""


MODELS: dict[str, ModelSpec] = {}
PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def register(name: str, *, prune_first: bool = True, prune_output: bool = True, doc: str = ""):
    """Decorator: ``@register("mlp")`` on ``build(in_shape, n_classes, **params) -> nn.Module``."""

    def deco(fn):
        MODELS[name] = ModelSpec(fn, prune_first, prune_output, doc)
        return fn

    return deco


def check_params(cfg: ModelConfig) -> None:
    """Names, types and ranges of a model's parameters (types from the builder's defaults; sizes >= 1)."""
    spec = MODELS.get(cfg.name)
    if spec is None:
        raise ConfigError(f"unknown model {cfg.name!r}; valid models are {', '.join(sorted(MODELS))}")
    defaults = {n: p.default for n, p in list(inspect.signature(spec.build).parameters.items())[2:]}
    unknown = set(cfg.params) - set(defaults)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {sorted(unknown)} for model {cfg.name!r}; valid parameters are "
                          f"{', '.join(sorted(defaults)) or 'none'}")
    for k, v in cfg.params.items():
        check_like(v, defaults[k], f"model parameter {k}")
        sizes = v if isinstance(v, (list, tuple)) else [v]
        if any(isinstance(x, int) and not isinstance(x, bool) and x < 1 for x in sizes):
            raise ConfigError(f"model parameter {k}={v!r} must hold sizes >= 1; fix that setting")


def build_model(cfg: ModelConfig, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """Build the model named by ``cfg`` for inputs of shape ``in_shape`` (without batch) and ``n_classes``."""
    spec = MODELS.get(cfg.name)
    if spec is None:
        raise ConfigError(f"unknown model {cfg.name!r}; valid models are {', '.join(sorted(MODELS))}")
    try:
        return spec.build(tuple(in_shape), int(n_classes), **cfg.params)
    except TypeError as e:
        raise ConfigError(f"bad parameters {cfg.params} for model {cfg.name!r} ({e}); "
                          f"see `rgnet.models.MODELS[{cfg.name!r}].doc`") from None


def prunable_layers(model: nn.Module, cfg: ModelConfig) -> dict[str, nn.Parameter]:
    """Ordered ``{layer name: weight}`` of the tensors IMP prunes for this model and config."""
    spec = MODELS[cfg.name]
    found = [(n, m.weight) for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]
    if not found:
        raise ConfigError(f"model {cfg.name!r} has no Linear or Conv layer to prune")
    first = spec.prune_first if cfg.prune_first is None else cfg.prune_first
    output = spec.prune_output if cfg.prune_output is None else cfg.prune_output
    keep = list(found)
    if not output:
        keep = keep[:-1]
    if not first and found[0] in keep:
        keep = keep[1:]
    return dict(keep)


def output_layer(model: nn.Module) -> str:
    """Name of the last Linear/Conv layer (the classifier)."""
    return [n for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)][-1]

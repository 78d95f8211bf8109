"""Which symmetries a transfer may use (``--align``), and what a branch records of its alignment."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError

ALIGN_MODES = ("none", "inputs", "inputs+units")
MLP_MODELS = ("mlp", "lenet_300_100")   # the models whose first layer sees the flattened input


def check_align(mode: str, model: str | None = None) -> None:
    """:class:`ConfigError` unless ``mode`` is one of :data:`ALIGN_MODES` (and ``model`` is an MLP when aligning)."""
    if mode not in ALIGN_MODES:
        raise ConfigError(f"--align must be one of {', '.join(ALIGN_MODES)}, got {mode!r}")
    if mode != "none" and model is not None and model not in MLP_MODELS:
        raise ConfigError(f"--align {mode} needs an MLP ({', '.join(MLP_MODELS)}), whose first layer sees the "
                          f"flattened input; model {model!r} is not one — use --align none")


# ------------------------------------------------------------------------------------------- input features


def alignment_attrs(inputs: xr.Dataset | None, units: dict[str, np.ndarray] | None, mode: str,
                    min_confidence: float | None = None) -> dict[str, str]:
    """What a transfer branch stores about its alignment (JSON strings, netCDF-safe); ``min_confidence``: the
    refusal threshold the transfer was run with."""
    out = {"align": mode}
    if inputs is not None:
        out["input_permutation"] = json.dumps(inputs.permutation.values.tolist())
        keys = ("confidence", "agreement", "fit_z", "objective", "cosine", "identity_objective")
        out["input_alignment"] = json.dumps({k: float(inputs[k]) for k in keys}
                                            | {"identifiable": bool(inputs.identifiable),
                                               "min_confidence": min_confidence}
                                            | {k: inputs.attrs[k] for k in ("evidence", "method")})
    if units is not None:
        out["unit_permutations"] = json.dumps({k: np.asarray(v).tolist() for k, v in units.items()})
    return out


def require_identifiable(inputs: xr.Dataset, pair: str, min_confidence: float) -> None:
    """:class:`ConfigError` when :func:`rgnet.align.align_inputs`' confidence is below ``min_confidence``."""
    if float(inputs.confidence) < min_confidence:
        raise ConfigError(f"the input permutation {pair} is not identifiable from the data (held-out confidence "
                          f"{float(inputs.confidence):.1f} < {min_confidence:g}), so an aligned transfer would "
                          "train a guess; pass --min-confidence 0 to align anyway")

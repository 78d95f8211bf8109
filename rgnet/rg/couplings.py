"""Coupling trajectories from recorded runs: the coarse-grained description of each IMP level."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError
from rgnet.rg.trajectory import scale_factor

#: Quantiles of |w| / std used as shape couplings.
SHAPE_QUANTILES = (0.25, 0.5, 0.75, 0.9)


def _per_layer(da: xr.DataArray, name: str) -> xr.DataArray:
    """Turn a ``(…, level, layer)`` variable into ``(…, level, coupling)`` with names ``"name:layer"``."""
    da = da.rename(layer="coupling")
    return da.assign_coords(coupling=[f"{name}:{layer}" for layer in da["coupling"].values])


def _scale(ds: xr.Dataset) -> xr.DataArray:
    return _per_layer(np.log(ds["w_std"]), "log_std")


def _shape(ds: xr.Dataset) -> xr.DataArray:
    parts = [_per_layer(ds["w_kurtosis"], "kurtosis")]
    for q in SHAPE_QUANTILES:
        absq = ds["absw_quantile"].sel(quantile=q, method="nearest").drop_vars("quantile")
        parts.append(_per_layer(absq / ds["w_std"], f"absq{round(q * 100):02d}"))
    return xr.concat(parts, dim="coupling")


def _density(ds: xr.Dataset) -> xr.DataArray:
    return _per_layer(np.log(ds["layer_density"]), "log_density")


_KINDS = {
    "scale": (_scale, "log of the std of surviving trained weights per layer"),
    "shape": (_shape, "excess kurtosis and quantiles of |w|/std per layer"),
    "density": (_density, "log of the fraction of weights remaining per layer"),
}


def couplings(ds: xr.Dataset, kind: str | Sequence[str] = "scale") -> xr.DataArray:
    """Coupling trajectory of a recorded run (or of several runs).

    Parameters
    ----------
    ds : xr.Dataset
        Run Dataset with dims ``(level, layer, ...)`` and optionally a leading ``run`` dim.
    kind : str or sequence of str
        ``"scale"`` (``log_std:<layer>``, log of the std of surviving weights),
        ``"shape"`` (``kurtosis:<layer>`` excess kurtosis and ``absqNN:<layer>`` = quantile NN % of
        |w| / std, dimensionless), ``"density"`` (``log_density:<layer>``); a list concatenates kinds.

    Returns
    -------
    xr.DataArray
        Trajectory with dims ``(run, level, coupling)`` (``run`` only if ``ds`` has it); attribute
        ``scale_factor`` holds the RG scale factor ``b`` per level when it can be found.
    """
    kinds = [kind] if isinstance(kind, str) else list(kind)
    unknown = [k for k in kinds if k not in _KINDS]
    if unknown or not kinds:
        raise ConfigError(f"Unknown coupling kind {unknown or kinds}; choose from {sorted(_KINDS)}.")
    traj = xr.concat([_KINDS[k][0](ds) for k in kinds], dim="coupling")
    traj = traj.transpose(*[d for d in ("run", "level") if d in traj.dims], "coupling")
    traj = traj.drop_vars([c for c in traj.coords if c not in traj.dims and "coupling" in traj[c].dims])
    traj.name = "couplings"
    traj.attrs = {
        "long_name": "; ".join(_KINDS[k][1] for k in kinds),
        "units": "1",
        "kind": ",".join(kinds),
    }
    try:
        traj.attrs["scale_factor"] = scale_factor(ds)
    except ConfigError:
        pass
    return traj


def microscopic(tensors_ds: xr.Dataset, layers: Sequence[str] | None = None) -> xr.DataArray:
    """Flattened trained weights per level, for Redman-style DMD on the whole parameter vector.

    Parameters
    ----------
    tensors_ds : xr.Dataset
        The ``tensors/trained`` group of a run file: one variable per parameter (e.g. ``fc1.weight``)
        with dims ``(level, <name>.d0, <name>.d1, ...)`` and optionally a leading ``run`` dim.
    layers : sequence of str, optional
        Layer names (``"fc1"`` selects every parameter ``fc1.*``) or full parameter names;
        default all parameters.

    Returns
    -------
    xr.DataArray
        Dims ``(run, level, component)`` (``run`` only if present in the input), with coordinate
        ``parameter(component)`` naming the parameter each component belongs to.
    """
    names = [n for n in tensors_ds.data_vars if "level" in tensors_ds[n].dims]
    if layers is not None:
        wanted = list(layers)
        names = [n for n in names if n in wanted or n.rsplit(".", 1)[0] in wanted]
        if not names:
            raise ConfigError(f"No parameter matches layers {wanted}; the file has {sorted(tensors_ds.data_vars)}.")
    if not names:
        raise ConfigError("The tensors Dataset has no variable with a level dim; open the group tensors/trained.")
    lead = [d for d in ("run", "level") if d in tensors_ds.dims]
    blocks, labels = [], []
    for n in names:
        da = tensors_ds[n].transpose(*lead, ...)
        values = np.asarray(da.values, dtype=float)
        blocks.append(values.reshape(*values.shape[: len(lead)], -1))
        labels.append(np.full(blocks[-1].shape[-1], n))
    coords = {d: tensors_ds[d].values for d in lead if d in tensors_ds.coords}
    coords["parameter"] = ("component", np.concatenate(labels))
    return xr.DataArray(
        np.concatenate(blocks, axis=-1),
        dims=(*lead, "component"),
        coords=coords,
        name="weights",
        attrs={"long_name": "trained weights (pruned entries are zero)", "units": "1"},
    )

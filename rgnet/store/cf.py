"""CF attributes for the analysis Datasets that rgnet writes as netCDF (verdicts.nc, flow.nc)."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

import numpy as np
import xarray as xr


def self_describing(ds: xr.Dataset, title: str) -> xr.Dataset:
    """Add ``Conventions``, ``title``, ``history`` and, on booleans, CF flag attributes (in place; returned).

    xarray stores booleans as bytes; ``flag_values``/``flag_meanings`` say what the bytes mean to any reader.
    64-bit integers (not among CF 1.8's types) become 32-bit where the values fit.
    """
    for name, v in list(ds.variables.items()):
        if v.dtype == bool:
            v.attrs.update(flag_values=np.array([0, 1], np.int8), flag_meanings="false true")
        elif v.dtype == np.int64 and (v.size == 0 or np.abs(v.values).max() < 2**31):
            ds[name] = v.astype(np.int32)
    ds.attrs.update(Conventions="CF-1.8", title=title,
                    history=f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} computed by rgnet")
    return ds


def write_groups(out, groups: dict[str, xr.Dataset], title: str) -> None:
    """Write Datasets as groups of one netCDF file whose root carries ``Conventions``, ``title``, ``history``."""
    root = self_describing(xr.Dataset(), title)
    root.to_netcdf(out, engine="h5netcdf")
    for name, ds in groups.items():
        ds.to_netcdf(out, engine="h5netcdf", group=name, mode="a")


@contextlib.contextmanager
def in_memory_writes() -> Iterator[None]:
    """Around ``ds.to_netcdf(BytesIO)``: with a dask.distributed client active, xarray would take a distributed
    lock named after the target, which a scheduler cannot know for an in-memory file; write locally instead."""
    import dask  # noqa: PLC0415

    with dask.config.set(scheduler="synchronous"):
        yield

"""The ``ds.rg`` accessor: RG analysis methods on run Datasets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from rgnet.rg.couplings import couplings
from rgnet.rg.dmd import dmd
from rgnet.rg.flow import wasserstein_flow
from rgnet.rg.linearise import linearise
from rgnet.rg.summary import flow_report
from rgnet.rg.trajectory import scale_factor


@xr.register_dataset_accessor("rg")
class RGAccessor:
    """RG analysis of a run Dataset (single run or with a ``run`` dim): ``ds.rg.linearise()`` etc."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def couplings(self, kind: str | Sequence[str] = "scale") -> xr.DataArray:
        """Coupling trajectory; see :func:`rgnet.rg.couplings`."""
        return couplings(self._ds, kind)

    def flow(self, variable: str = "hist") -> xr.Dataset:
        """Wasserstein-1 flow of the weight distributions; see :func:`rgnet.rg.wasserstein_flow`."""
        return wasserstein_flow(self._ds, variable)

    def linearise(self, kind: str | Sequence[str] = "scale", **kwargs: Any) -> xr.Dataset:
        """Fixed point and spectrum of the couplings of ``kind``; see :func:`rgnet.rg.linearise`."""
        return linearise(self.couplings(kind), **kwargs)

    def dmd(self, kind: str | Sequence[str] = "scale", **kwargs: Any) -> xr.Dataset:
        """DMD of the couplings of ``kind``; see :func:`rgnet.rg.dmd`."""
        return dmd(self.couplings(kind), **kwargs)

    def scale_factor(self) -> float:
        """RG scale factor per level ``b``; see :func:`rgnet.rg.scale_factor`."""
        return scale_factor(self._ds)

    def report(self, **kwargs: Any) -> xr.Dataset:
        """Flow summary per run; see :func:`rgnet.rg.flow_report`."""

        return flow_report(self._ds, **kwargs)

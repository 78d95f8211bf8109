"""RG analysis of IMP recordings: xarray in, xarray out.

A trajectory is a DataArray with dims ``(run, level, coupling)`` (``run`` optional). Importing this
module registers the ``ds.rg`` Dataset accessor.
"""

from rgnet.rg import accessor as _accessor  # noqa: F401  (registers ds.rg)
from rgnet.rg.couplings import couplings, microscopic
from rgnet.rg.dmd import dmd, gavish_donoho_rank
from rgnet.rg.flow import beta_function, fixed_point_level, flow_speed, wasserstein, wasserstein_flow
from rgnet.rg.linearise import linearise
from rgnet.rg.relevance import open_relevance, relevance_flow
from rgnet.rg.summary import flow_report, format_flow_report
from rgnet.rg.toy import block_spin_ising2d, ising1d_decimation, migdal_kadanoff_2d
from rgnet.rg.trajectory import scale_factor

__all__ = [
    "beta_function",
    "block_spin_ising2d",
    "couplings",
    "dmd",
    "fixed_point_level",
    "flow_report",
    "flow_speed",
    "format_flow_report",
    "gavish_donoho_rank",
    "ising1d_decimation",
    "linearise",
    "microscopic",
    "migdal_kadanoff_2d",
    "open_relevance",
    "relevance_flow",
    "scale_factor",
    "wasserstein",
    "wasserstein_flow",
]

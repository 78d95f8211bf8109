"""Figures of rgnet's xarray objects: each function takes them (and an optional Axes) and returns the Axes or Figure.

One style throughout (:data:`STYLE`): sizes for a two-column paper, the Okabe-Ito colour-blind-safe palette,
labelled axes with units, density on a log axis with dense on the left (the lottery-ticket convention).
New figures are made with pyplot so that notebooks show them; for files, save them with ``fig.savefig`` (Agg
renders PNG and PDF without a display). Nothing here imports torch.

=============================  ============================================  ==========================================
function                       input                                         shows
=============================  ============================================  ==========================================
``ladder``, ``ladder_panels``  ``rgnet.winning_tickets(...)``                accuracy vs density per arm, mean ± std
``early_stop``                 ``rgnet.open_runs(...)``                      early-stop iteration vs density
``stopping_rules``             ``data/protocol/early_stopping.nc``           accuracy each stopping rule gives up
``weight_flow``                run Dataset                                   weight distributions per layer and level
``weight_distributions``       run Dataset, layer                            one panel of ``weight_flow``
``flow_speed``                 ``rgnet.rg.wasserstein_flow(...)``            W1 between successive levels
``coupling_flow``              ``rg.couplings(...)``, ``rg.linearise(...)``  trajectories, fixed point, eigen-directions
``spectrum``                   eigenvalues per task                          Koopman/DMD eigenvalues, unit circle
``exponents``                  ``rg.linearise(...)`` per task                exponents y with intervals
``transfer_matrix``            ``rgnet.transfer_matrix(...)``                gap at the winning level and verdicts
``aligned_transfer``           ``rgnet.transfer_matrix(...)``                aligned vs unaligned transfer gaps
``class_graph``                networkx graph                                universality classes
``roc``                        scores per predictor, binary labels           ROC curves with AUC
``ising_validation``           ``rg.migdal_kadanoff_2d(...)``                MK flow, recovered λ and y vs exact
``phase_diagram``              phase ``transfer.nc`` (level, classes)        gap into each task on the (swaps, noise)
                                                                             grid, asymmetry arrows, predicted classes
``phase_panels``               phase ``transfer.nc``, levels                 ``phase_diagram`` per level, one scale
``predicted_vs_measured``      phase ``universality.nc``, predictor          score vs measured gap per pair
``score_intervals``            phase ``universality.nc``                     tau_w with its task interval per predictor
=============================  ============================================  ==========================================
"""

from rgnet.plot._style import COLUMN, OKABE_ITO, PAGE, STYLE, style
from rgnet.plot.flow import coupling_flow, flow_speed, layer_densities, weight_distributions, weight_flow
from rgnet.plot.ising import ising_validation
from rgnet.plot.phase import phase_diagram, phase_panels, predicted_vs_measured, score_intervals
from rgnet.plot.spectra import eigenvalue_sets, exponents, spectrum
from rgnet.plot.tickets import early_stop, ladder, ladder_panels, stopping_rules
from rgnet.plot.transfer import aligned_transfer, class_graph, roc, roc_curve, transfer_matrix

__all__ = [
    "COLUMN",
    "aligned_transfer",
    "OKABE_ITO",
    "PAGE",
    "phase_diagram",
    "phase_panels",
    "predicted_vs_measured",
    "STYLE",
    "class_graph",
    "coupling_flow",
    "early_stop",
    "eigenvalue_sets",
    "exponents",
    "flow_speed",
    "ising_validation",
    "ladder",
    "ladder_panels",
    "layer_densities",
    "roc",
    "roc_curve",
    "score_intervals",
    "spectrum",
    "stopping_rules",
    "style",
    "transfer_matrix",
    "weight_distributions",
    "weight_flow",
]

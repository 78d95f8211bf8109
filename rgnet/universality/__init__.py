"""Universality classes of IMP flows, and a scored prediction of which tickets transfer.

signatures per run (:mod:`~rgnet.universality.signatures`, one registry) -> distances between runs
(:mod:`~rgnet.universality.distances`) -> a calibrated permutation test of "same class" and a networkx graph
of tasks (:mod:`~rgnet.universality.classes`) -> predicted transfer scores, scored against the measured
transfer matrix next to baselines (:mod:`~rgnet.universality.scoring`, :mod:`~rgnet.universality.baselines`).
:func:`universality` runs it all and returns one Dataset; ``rgnet universality FILES`` prints it.
No torch is imported here.
"""

from rgnet.universality.analysis import SYMMETRY_NOTE, read_transfer, symmetry_pairs, universality
from rgnet.universality.classes import class_graph, class_share, classes, permutation_test, same_class, same_class_test
from rgnet.universality.distances import run_distances, w1_spectra
from rgnet.universality.format import format_universality
from rgnet.universality.scoring import auroc, loto_balanced_accuracy, mantel_p, weighted_tau
from rgnet.universality.signatures import SIGNATURES, pooled_exponents, register_signature, signatures

__all__ = ["SIGNATURES", "SYMMETRY_NOTE", "auroc", "class_graph", "class_share", "classes", "format_universality",
           "loto_balanced_accuracy", "mantel_p", "permutation_test", "pooled_exponents", "read_transfer",
           "register_signature", "run_distances", "same_class", "same_class_test", "signatures", "symmetry_pairs",
           "universality", "w1_spectra", "weighted_tau"]

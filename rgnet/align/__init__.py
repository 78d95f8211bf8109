"""Transfer up to symmetry: permutations between tasks (input features) and between networks (hidden units).

Two symmetries leave what an MLP can learn unchanged. A fixed permutation of the input features is absorbed
by permuting the first layer's columns; a permutation of a hidden layer's units is absorbed by permuting
that layer's rows and the next layer's columns. A winning ticket lives in one frame; this module finds the
correspondence to another frame and carries the ticket across it.

- :func:`align_inputs` estimates the input permutation between two tasks from their data: graph matching of
  the feature-feature correlation matrices (``scipy.optimize.quadratic_assignment``, FAQ) together with
  per-feature statistics by class (``linear_sum_assignment``); pairwise swaps maximise the sum. Its
  confidence is cross-fitted (fit on one half of the samples, scored on the other, against random
  permutations), so it separates pairs the data identify from pairs they do not (``identifiable``;
  :func:`require_identifiable` refuses the others).
- :func:`match_units` is weight matching (Ainsworth et al., Git Re-Basin, arXiv 2209.04836, algorithm 1):
  one ``linear_sum_assignment`` per hidden layer, by coordinate descent until no layer changes.
- :func:`permute_mlp` applies both to the tensors of an MLP (masks, weights, biases).
- :func:`ticket_iou` (``overlap``) is the analysis: how similar are the tickets of two runs once their hidden units are
  matched (mask IoU before and after, against chance ``d / (2 - d)`` and against random masks matched alike).

Convention: ``permutation[j]`` is the source feature (or unit of network ``b``) matched to target feature
(unit of ``a``) ``j``, so ``x_target[:, j] ~ x_source[:, permutation[j]]`` and the aligned first layer is
``W_source[:, permutation]``. Nothing here imports torch.
"""

from rgnet.align.inputs import (
    INPUT_METHODS,
    MIN_CONFIDENCE,
    align_inputs,
    planted_features,
    planted_support,
    true_permutation,
)
from rgnet.align.modes import ALIGN_MODES, MLP_MODELS, alignment_attrs, check_align, require_identifiable
from rgnet.align.overlap import chance_iou, iou, ticket_iou
from rgnet.align.units import match_units, mlp_layers, permute_mlp

__all__ = ["ALIGN_MODES", "INPUT_METHODS", "MIN_CONFIDENCE", "MLP_MODELS", "align_inputs", "alignment_attrs",
           "chance_iou", "check_align", "iou", "match_units", "mlp_layers", "permute_mlp", "planted_features",
           "planted_support", "require_identifiable", "ticket_iou", "true_permutation"]

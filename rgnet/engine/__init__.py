"""The batched training engine: K runs of one architecture trained as one stacked model (see ``train``)."""

from rgnet.engine.prune import next_masks
from rgnet.engine.stacked import StackedMLP, stackable
from rgnet.engine.train import StackData, Trained, train_stack

__all__ = ["StackData", "StackedMLP", "Trained", "next_masks", "stackable", "train_stack"]

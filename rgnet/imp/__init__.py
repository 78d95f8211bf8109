"""Iterative magnitude pruning: masks, pruning rules, the masked training loop and the IMP driver."""

"""The store: run files (schema, atomic writer), xarray readers, checks and upgrades."""

from rgnet.store.check import verify
from rgnet.store.reader import branches, config_of, open_run, open_tensors, open_tree, read_tensors

__all__ = ["branches", "config_of", "open_run", "open_tensors", "open_tree", "read_tensors", "verify"]

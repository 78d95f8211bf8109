"""The HDF5 store: schema, atomic writer, xarray reader."""

from rgnet.store.reader import branches, config_of, open_run, open_runs, open_tree

__all__ = ["branches", "config_of", "open_run", "open_runs", "open_tree"]

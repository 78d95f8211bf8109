"""The HDF5 store: schema, atomic writer, xarray reader."""

from rgnet.store.reader import config_of, open_run, open_runs, open_tree

__all__ = ["config_of", "open_run", "open_runs", "open_tree"]

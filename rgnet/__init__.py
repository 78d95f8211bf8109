"""rgnet: lottery-ticket experiments read as renormalisation-group flows.

Record IMP runs (``rgnet.record``), train baselines and ticket transfers as branches of them
(``rgnet.run_baselines``, ``rgnet.transfer``), open them with xarray (``rgnet.open_run``, ``rgnet.open_runs``,
``rgnet.open_tree``, ``rgnet.open_tensors``), judge them (``rgnet.winning_tickets``, ``rgnet.transfer_matrix``)
and analyse the sequence of theories as an RG flow (``rgnet.rg``).

``import rgnet`` does not import torch: the training entry points are loaded on first use.
"""

from rgnet import rg  # noqa: E402  (registers the ds.rg accessor)
from rgnet.config import ModelConfig, PruneConfig, RunConfig, StoreConfig, TaskConfig, TrainConfig, load_toml
from rgnet.errors import ConfigError, DataError, RgnetError, StoreError
from rgnet.imp.tickets import Ticket, load_ticket, ticket_from_run, write_ticket
from rgnet.store import config_of, open_run, open_runs, open_tensors, open_tree, read_tensors, verify
from rgnet.verdicts import matching, transfer_matrix, winning_tickets

# training entry points (they import torch): attribute -> module
_LAZY = {"record": "rgnet.imp.driver", "run_baselines": "rgnet.imp.branches", "transfer": "rgnet.imp.transfer"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rgnet' has no attribute {name!r}")


__all__ = ["ConfigError", "DataError", "ModelConfig", "PruneConfig", "RgnetError", "RunConfig", "StoreConfig",
           "StoreError", "TaskConfig", "Ticket", "TrainConfig", "config_of", "load_ticket", "load_toml", "matching",
           "open_run", "open_runs", "open_tensors", "open_tree", "read_tensors", "record", "rg", "run_baselines",
           "ticket_from_run", "transfer", "transfer_matrix", "verify", "winning_tickets", "write_ticket"]

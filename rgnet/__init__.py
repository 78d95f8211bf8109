"""rgnet: lottery-ticket experiments read as renormalisation-group flows.

Record IMP runs (``rgnet.record``), train baselines and ticket transfers as branches of them
(``rgnet.run_baselines``, ``rgnet.transfer``), open them with xarray (``rgnet.open_run``, ``rgnet.open_runs``,
``rgnet.open_tree``), judge them (``rgnet.winning_tickets``, ``rgnet.transfer_matrix``) and analyse the
sequence of theories as an RG flow (``rgnet.rg``), with universality classes and a scored prediction of
which tickets transfer (``rgnet.universality``).
"""

from rgnet import rg, universality  # noqa: E402  (rg registers the ds.rg accessor)
from rgnet.config import ModelConfig, PruneConfig, RunConfig, StoreConfig, TaskConfig, TrainConfig, load_toml
from rgnet.errors import ConfigError, DataError, RgnetError, StoreError
from rgnet.imp.branches import run_baselines
from rgnet.imp.driver import record
from rgnet.imp.tickets import Ticket, load_ticket, ticket_from_run, write_ticket
from rgnet.imp.transfer import transfer
from rgnet.store import config_of, open_run, open_runs, open_tree
from rgnet.verdicts import matching, transfer_matrix, winning_tickets

__all__ = ["ConfigError", "DataError", "ModelConfig", "PruneConfig", "RgnetError", "RunConfig", "StoreConfig",
           "StoreError", "TaskConfig", "Ticket", "TrainConfig", "config_of", "load_ticket", "load_toml", "matching",
           "open_run", "open_runs", "open_tree", "record", "rg", "run_baselines", "ticket_from_run", "transfer",
           "transfer_matrix", "universality", "winning_tickets", "write_ticket"]


def __getattr__(name: str):
    """``rgnet.plot`` is imported on first use, so that ``import rgnet`` does not load matplotlib."""
    if name == "plot":
        import importlib

        return importlib.import_module("rgnet.plot")
    raise AttributeError(f"module 'rgnet' has no attribute {name!r}")

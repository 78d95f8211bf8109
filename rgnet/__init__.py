"""rgnet: lottery-ticket experiments read as renormalisation-group flows.

Record IMP runs (``rgnet.record``), train baselines and ticket transfers as branches of them
(``rgnet.run_baselines``, ``rgnet.transfer``), open them with xarray (``rgnet.open_run``, ``rgnet.open_runs``,
``rgnet.open_tree``, ``rgnet.open_tensors``), judge them (``rgnet.winning_tickets``, ``rgnet.transfer_matrix``),
analyse the sequence of theories as an RG flow (``rgnet.rg``), with universality classes and a scored
prediction of which tickets transfer (``rgnet.universality``), and draw them (``rgnet.plot``). Whole
experiments (runs x baselines x transfers, from one TOML spec) run on dask.distributed with ``rgnet.sweep``.

``import rgnet`` is cheap: it imports neither torch nor xarray nor matplotlib. Each name below is loaded on
first use, and the first use of any of them (or ``import rgnet.rg``) registers the ``ds.rg`` accessor.
"""

import importlib

import rgnet.tasks  # noqa: F401  (registers the tasks, whose parameter defaults the run_id needs)
from rgnet.config import ModelConfig, PruneConfig, RunConfig, StoreConfig, TaskConfig, TrainConfig, load_toml
from rgnet.errors import ConfigError, DataError, RgnetError, StoreError

_LAZY = {
    "record": "rgnet.imp.driver", "record_many": "rgnet.imp.driver", "run_baselines": "rgnet.imp.branches",
    "transfer": "rgnet.imp.transfer",
    **{k: "rgnet.imp.tickets" for k in ("Ticket", "load_ticket", "ticket_from_run", "write_ticket")},
    **{k: "rgnet.store" for k in ("config_of", "open_run", "open_tensors", "open_tree", "read_tensors", "verify")},
    "open_runs": "rgnet.catalog", "as_run": "rgnet.catalog", "task_labels": "rgnet.sweep",
    **{k: "rgnet.verdicts" for k in ("matching", "transfer_matrix", "winning_tickets")},
}
_MODULES = ("rg", "universality", "plot", "sweep")  # sub-packages loaded on first use


def __getattr__(name: str):
    if name in _MODULES or name in _LAZY:
        rg = importlib.import_module("rgnet.rg")  # registers ds.rg
        if name in _MODULES:
            value = importlib.import_module(f"rgnet.{name}")
        else:
            value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value if name != "rg" else rg
    raise AttributeError(f"module 'rgnet' has no attribute {name!r}")


__all__ = ["ConfigError", "DataError", "ModelConfig", "PruneConfig", "RgnetError", "RunConfig", "StoreConfig",
           "StoreError", "TaskConfig", "Ticket", "TrainConfig", "as_run", "config_of", "load_ticket", "load_toml",
           "matching", "open_run", "open_runs", "open_tensors", "open_tree", "plot", "read_tensors", "record",
           "record_many", "rg", "run_baselines", "sweep", "task_labels", "ticket_from_run", "transfer",
           "transfer_matrix", "universality", "verify", "winning_tickets", "write_ticket"]

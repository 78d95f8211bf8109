"""rgnet: lottery-ticket experiments read as renormalisation-group flows.

Record IMP runs (``rgnet.record``), open them with xarray (``rgnet.open_run``, ``rgnet.open_runs``) and
analyse the sequence of theories as an RG flow (``rgnet.rg``).
"""

from rgnet import rg  # noqa: E402  (registers the ds.rg accessor)
from rgnet.config import ModelConfig, PruneConfig, RunConfig, StoreConfig, TaskConfig, TrainConfig, load_toml
from rgnet.errors import ConfigError, DataError, RgnetError, StoreError
from rgnet.imp.driver import record
from rgnet.store import config_of, open_run, open_runs, open_tree

__all__ = ["ConfigError", "DataError", "ModelConfig", "PruneConfig", "RgnetError", "RunConfig", "StoreConfig",
           "StoreError", "TaskConfig", "TrainConfig", "config_of", "load_toml", "open_run", "open_runs",
           "open_tree", "record", "rg"]

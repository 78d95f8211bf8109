"""Winning tickets as files: the mask of one IMP level and the rewound weights it restarts from.

A ticket is what IMP *found*, not what it trained: ``weights = mask ⊙ rewind`` for the prunable tensors and
the rewind point for everything else (biases, norms), plus provenance (source run, level, density, rewind
iteration, config, data summary). ``rgnet transfer`` accepts a ticket file or a run file and a level.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import h5netcdf
import h5py
import numpy as np

from rgnet.errors import ConfigError, StoreError
from rgnet.store.outputs import check_new
from rgnet.store.provenance import history_line
from rgnet.store.reader import read_tensors
from rgnet.store.writer import DIMS_COMMENT, atomic_update, check_run_file, layer_dims, weighted_layers

TICKET_SCHEMA = 1


@dataclass
class Ticket:
    """Masks (bool, per prunable layer) and the full state dict at the rewind iteration, with provenance."""

    masks: dict[str, np.ndarray]
    rewind: dict[str, np.ndarray]
    level: int
    density: float
    rewind_iteration: int
    run_id: str
    config: str          # the source run's canonical config JSON
    task: str            # the source run's data summary JSON
    source: str          # path of the run file it came from

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """The rewound weights with pruned entries set to exactly zero."""
        out = {k: v.copy() for k, v in self.rewind.items()}
        for layer, m in self.masks.items():
            out[f"{layer}.weight"] = out[f"{layer}.weight"] * m.astype(out[f"{layer}.weight"].dtype)
        return out

    @property
    def n_classes(self) -> int:
        return int(json.loads(self.task)["n_classes"])

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(json.loads(self.task)["in_shape"])


def ticket_from_run(path: str | Path, level: int) -> Ticket:
    """The ticket of ``level`` of a run file: the mask that level trained with and the run's rewind point."""
    attrs = check_run_file(Path(path))
    n = int(attrs["levels_complete"])
    if not 0 <= level < n:
        raise StoreError(f"{str(path)!r} has levels 0-{n - 1} complete; --level {level} is not one of them")
    masks = {k: m.astype(bool) for k, m in read_tensors(path, "mask", level).items()}
    rewind = read_tensors(path, "rewind")
    with h5py.File(path, "r") as f:
        dens = float(f["density"][level])
    k = json.loads(attrs["config"])["prune"]["rewind"]
    return Ticket(masks, rewind, level, dens, int(k), attrs["run_id"], attrs["config"], attrs["task"], str(path))


def write_ticket(ticket: Ticket, out: str | Path, overwrite: bool = False) -> Path:
    """Write ``ticket`` to a new netCDF-compatible HDF5 file. An existing ``out`` is refused, unless ``overwrite``
    and it is a ticket file (never a run file, a tensor file, a sweep index or another command's output)."""
    out = check_new(out, "ticket", overwrite, inputs=[ticket.source])
    groups = {"mask": {k: m.astype(np.uint8) for k, m in ticket.masks.items()}, "weights": ticket.weights}
    weighted = weighted_layers(groups)
    with atomic_update(out, create=True) as f:
        f.attrs.update(rgnet_ticket=TICKET_SCHEMA, run_id=ticket.run_id, config=ticket.config, task=ticket.task,
                       level=ticket.level, density=ticket.density, rewind_iteration=ticket.rewind_iteration,
                       source=ticket.source, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       title=f"rgnet winning ticket: run {ticket.run_id}, level {ticket.level}",
                       history=history_line(f"ticket of level {ticket.level} from {ticket.source}"),
                       comment=DIMS_COMMENT)
        for sub, arrays in groups.items():
            g = f.create_group(sub)
            for name, a in arrays.items():
                g.create_variable(name, layer_dims(f, sub, name, a.shape, weighted), data=a)
    return out


def read_ticket(path: str | Path) -> Ticket:
    """A ticket written by :func:`write_ticket`."""
    with h5netcdf.File(path, "r") as f:
        a = dict(f.attrs)
        masks = {k: np.asarray(v[...]).astype(bool) for k, v in f["mask"].variables.items()}
        weights = {k: np.asarray(v[...]) for k, v in f["weights"].variables.items()}
    return Ticket(masks, weights, int(a["level"]), float(a["density"]), int(a["rewind_iteration"]), str(a["run_id"]),
                  str(a["config"]), str(a["task"]), str(a["source"]))


def is_ticket_file(path: str | Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return "rgnet_ticket" in f.attrs
    except OSError:
        return False


def load_ticket(path: str | Path, level: int | None = None) -> Ticket:
    """A ticket from a ticket file, or from level ``level`` of a run file."""
    p = Path(path)
    if not p.is_file():
        raise StoreError(f"{str(p)!r} does not exist; pass a run file or a ticket file")
    if is_ticket_file(p):
        t = read_ticket(p)
        if level is not None and level != t.level:
            raise ConfigError(f"ticket file {str(p)!r} holds level {t.level}, not {level}; drop --level(s)")
        return t
    if level is None:
        raise ConfigError(f"{str(p)!r} is a run file; say which level's ticket to take with --level")
    return ticket_from_run(p, level)

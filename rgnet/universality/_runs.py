"""Runs as the universality analysis sees them: a trunk Dataset, its task key and seed, and its tensors on demand."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from rgnet.catalog import expand
from rgnet.errors import ConfigError, DataError, StoreError
from rgnet.progress import Stages
from rgnet.store.reader import open_run, open_tensors
from rgnet.tasks import task_label

RunSource = str | os.PathLike | xr.Dataset


@dataclass
class LoadedRun:
    """One IMP run: its trunk summaries (``ds``, dims ``level, layer, ...``), task key, seed and file."""

    ds: xr.Dataset
    task: str
    seed: int
    run_id: str
    path: str = ""
    tensor_groups: dict[str, xr.Dataset] = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return json.loads(self.ds.attrs["config"])

    def tensors(self, group: str) -> xr.Dataset:
        """The ``tensors/<group>`` Dataset (``trained``, ``mask``, ``rewind``) restricted to the complete levels.

        Raises :class:`DataError` when the run has no such tensors (recorded with ``tensors = false``).
        """
        if group not in self.tensor_groups:
            if not self.path:
                raise DataError(f"run {self.run_id} is an in-memory Dataset without tensors/{group}; "
                                "pass run files recorded with tensors")

            try:
                t = open_tensors(self.path, group).load()
            except (OSError, StoreError):
                raise DataError(f"{self.path!r} has no tensors/{group} group; record the run with tensors "
                                "(the default, not --no-tensors)") from None
            self.tensor_groups[group] = t
        t = self.tensor_groups[group]
        keep = [v for v in t.data_vars if t[v].size]
        if not keep:
            raise DataError(f"{self.path or self.run_id!r} holds no {group} tensors (recorded with tensors = false); "
                            f"record the runs with tensors to use this signature")
        t = t[keep]
        if "level" in t.dims:
            t = t.isel(level=slice(0, self.ds.sizes["level"]))
        return t


def read_runs(sources: RunSource | Iterable[RunSource], labels: dict[str, str] | None = None,
              log: Callable[[str], None] | None = None) -> list[LoadedRun]:
    """Open run files (paths, a glob, a directory) or take in-memory run Datasets, as :class:`LoadedRun` objects.

    ``labels`` renames task keys (``task_label``) or run ids to short names, as in :func:`rgnet.transfer_matrix`;
    ``log`` hears of the run reached every :data:`rgnet.progress.PACE` seconds.
    """
    if isinstance(sources, xr.Dataset):
        items: Sequence[RunSource] = [sources]
    elif isinstance(sources, (str, os.PathLike)):
        items = expand(sources)
    else:
        items = [s if isinstance(s, xr.Dataset) else str(s) for s in sources]
        items = [x for s in items for x in ([s] if isinstance(s, xr.Dataset) else expand(s))]
    if not items:
        raise ConfigError("no runs given; pass run files (.h5) written by `rgnet record`")
    say = Stages.of(log)
    runs = []
    for k, item in enumerate(items, 1):
        say.paced(f"loading run {k} of {len(items)}")
        ds = item if isinstance(item, xr.Dataset) else open_run(item)
        cfg = json.loads(ds.attrs["config"])
        run_id = str(ds.attrs.get("run_id", ""))
        task = (labels or {}).get(run_id) or task_label(cfg, labels)
        runs.append(LoadedRun(ds.load(), task, int(cfg.get("seed", 0)), run_id,
                        "" if isinstance(item, xr.Dataset) else str(item)))
    return runs


def to_runs(sources: RunSource | Iterable[RunSource] | Sequence[LoadedRun],
            labels: dict[str, str] | None = None, log: Callable[[str], None] | None = None) -> list[LoadedRun]:
    """``sources`` as :class:`LoadedRun` objects: a list of them is taken as it is, anything else is read."""
    if isinstance(sources, (list, tuple)) and sources and all(isinstance(s, LoadedRun) for s in sources):
        return list(sources)
    return read_runs(sources, labels, log)


def run_coords(runs: Sequence[LoadedRun]) -> dict[str, tuple[str, np.ndarray]]:
    """Coordinates along ``run``: ``task`` (the task key), ``seed``, ``run_id`` and ``path``."""
    return {"task": ("run", np.array([r.task for r in runs])), "seed": ("run", np.array([r.seed for r in runs])),
            "run_id": ("run", np.array([r.run_id for r in runs])), "path": ("run", np.array([r.path for r in runs]))}


def task_params(runs: Sequence[LoadedRun]) -> dict[str, dict]:
    """The task section of the config (name and parameters) of each task key."""
    return {r.task: r.config["task"] for r in runs}

"""``rgnet info --check``: verify a whole run — every dataset read back, coordinates, tensor files.

A run passes when every chunk of every dataset reads back with its fletcher32 checksum, every coordinate
equals what the run's config makes of it (coordinates carry no checksum: they are recomputed instead), and
every tensor file a complete level needs is present, belongs to this run, to its group and to its level.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from rgnet.config import TrainConfig, eval_iterations
from rgnet.store.reader import _checked
from rgnet.store.writer import BRANCHES, plain_attr, tensor_dir, tensor_file
from rgnet.theory import QUANTILES, bin_edges


def verify(path: str | Path) -> list[str]:
    """The problems of a run file and its tensor folder, one sentence each (empty: the run is intact)."""
    p, attrs = _checked(path)
    problems: list[str] = []
    try:
        with h5py.File(p, "r") as f:
            f.visititems(lambda name, obj: _read_all(p, name, obj, problems))
            if int(attrs["rgnet_schema"]) < 2:
                return problems
            groups = [None] + [f"{BRANCHES}/{b}" for b in sorted(f[BRANCHES])] if BRANCHES in f else [None]
            expected = {}
            for group in groups:
                g = f[group] if group else f
                problems += _coordinates(p, g, group, attrs)
                if not bool(plain_attr(g.attrs.get("tensor_files", 1))):
                    continue
                done = (np.flatnonzero(g["level_done"][...]) if group
                        else np.arange(int(attrs["levels_complete"])))
                if group is None:
                    expected[tensor_file(p, "init")] = (group, None)
                expected.update({tensor_file(p, int(i), group): (group, int(i)) for i in done})
                layers = {x.decode() if isinstance(x, bytes) else str(x) for x in g["layer"][...]}
                if len(done):
                    problems += _layers(tensor_file(p, int(done[0]), group), layers)
    except OSError as e:
        return problems + [f"{p}: cannot be read ({str(e).splitlines()[0]})"]
    for file, (group, level) in expected.items():
        if not file.is_file():
            problems.append(f"{file}: missing (the tensors of {_what(group, level)})")
    folder = tensor_dir(p)
    for file in sorted(folder.rglob("*.nc")) if folder.is_dir() else []:
        problems += _tensor_file(p, attrs["run_id"], file, expected.get(file))
    return problems


def _what(group: str | None, level: int | None) -> str:
    return f"{'level ' + str(level) if level is not None else 'the initial and rewind weights'}" + \
           (f" of {group}" if group else "")


def _read_all(f: Path, name: str, obj, problems: list[str]) -> None:
    if isinstance(obj, h5py.Dataset):
        try:
            obj[...]
        except OSError:
            problems.append(f"{f}: variable {name!r} is damaged (a chunk fails its checksum or cannot be read)")


def _coordinates(p: Path, g, group: str | None, attrs: dict) -> list[str]:
    """Coordinates against what the config says they are."""
    where = f"{p}{':' + group if group else ''}"
    cfg = json.loads(plain_attr(g.attrs["config"])) if group and "config" in g.attrs else json.loads(attrs["config"])
    n, bins = g["level"].shape[0], g["bin"].shape[0]
    edges = bin_edges(bins)
    want = {"level": np.arange(n), "quantile": QUANTILES, "bin": (edges[1:] + edges[:-1]) / 2,
            "bin_bounds": np.stack([edges[:-1], edges[1:]], 1),
            "iteration": eval_iterations(TrainConfig(**{k: v for k, v in cfg["train"].items()
                                                        if k in ("steps", "eval_every")}))}
    if group is None:
        want |= {"seed": cfg["seed"]}
    out = []
    for name, value in want.items():
        try:
            ok = name in g and np.array_equal(np.asarray(g[name][...]), value)
        except OSError:
            ok = False  # reported by the read of every dataset
        if not ok:
            out.append(f"{where}: coordinate {name!r} is not what the run's config makes of it (damaged)")
    if group is None and "run_id" in g and plain_attr(g["run_id"].asstr()[()]) != attrs["run_id"]:
        out.append(f"{where}: coordinate 'run_id' differs from the file's run_id attribute (damaged)")
    return out


def _layers(file: Path, layers: set[str]) -> list[str]:
    """The ``layer`` coordinate against the layers whose masks the first level's tensor file holds."""
    try:
        with h5py.File(file, "r") as h:
            masks = {plain_attr(v.attrs["parameter"]) for v in h["mask"].values()
                     if isinstance(v, h5py.Dataset) and "parameter" in v.attrs}
    except (OSError, KeyError):
        return []  # a missing or unreadable file is reported on its own
    return [] if masks == layers else [f"{file}: masks of layers {sorted(masks)}, but the run's layer coordinate "
                                       f"says {sorted(layers)} (damaged)"]


def _tensor_file(p: Path, run_id: str, file: Path, expected: tuple | None) -> list[str]:
    """A tensor file's owner, group, level and every dataset."""
    problems: list[str] = []
    try:
        with h5py.File(file, "r") as h:
            owner, group, level = (plain_attr(h.attrs.get(k)) for k in ("run_id", "group", "level"))
            if owner != run_id:
                return [f"{file}: belongs to run {owner}, not to {run_id} of {p} (a tensor file of another run)"]
            if expected is not None:
                want_group, want_level = expected
                if str(group or "/").strip("/") != (want_group or "").strip("/"):
                    problems.append(f"{file}: holds tensors of group {group!r}, not of {want_group or '/'!r}")
                if want_level is not None and (level is None or int(level) != want_level):
                    problems.append(f"{file}: holds level {level}, not level {want_level} (a swapped level file)")
            h.visititems(lambda name, obj: _read_all(file, name, obj, problems))
    except OSError as e:
        problems.append(f"{file}: cannot be opened as a tensor file ({str(e).splitlines()[0]})")
    return problems

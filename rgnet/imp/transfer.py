"""Ticket transfer: train a winning ticket of a source run on a target task, as a branch of the target run.

The ticket (mask of source level L and the source's rewound weights) is trained with the *target's* training
settings from the source's rewind iteration and stored at level L of ``branches/transfer_<source run_id>``
in the target file, next to the target's own ticket of the same level (same pruning schedule, so the same
density). Same architecture and input shape are required. When the class count differs, the output layer
takes the target's own initial weights and is either pruned at random to the source's output-layer density
(``output="pruned"``, default) or left dense (``output="dense"``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np

from rgnet.config import RunConfig
from rgnet.errors import ConfigError, StoreError
from rgnet.imp.branches import Branch, Trunk, keep_random, open_trunk, run_branch
from rgnet.imp.driver import normalise
from rgnet.imp.seeds import generator
from rgnet.imp.tickets import Ticket, is_ticket_file, load_ticket
from rgnet.store.writer import check_run_file

OUTPUT_MODES = ("pruned", "dense")
DENSITY_TOLERANCE = 0.05   # relative: a transferred ticket must sit at the target level's density


def transfer(source: str | Path, target: str | Path, levels: list[int] | None = None, *, output: str = "pruned",
             tensors: bool | None = None, device: str = "cpu", data_root=None, progress: bool | None = None,
             threads: int | None = None,
             log: Callable[[str], None] | None = None) -> str:
    """Train the tickets of ``source`` (a run file, at ``levels``, default all pruned levels both runs have;
    or a ticket file) on the run recorded in ``target``; resumable. Returns the branch's group path."""
    check_output_mode(output)
    if not Path(source).is_file():
        raise StoreError(f"source {str(source)!r} does not exist; pass a run file or a ticket file")
    trunk = open_trunk(target, device, data_root)
    if is_ticket_file(source):
        first = load_ticket(source)
        if levels is not None and levels != [first.level]:
            raise ConfigError(f"{str(source)!r} is a ticket of level {first.level}; drop --levels or pass that level")
        levels, get = [first.level], (lambda level: first)
    else:
        n = int(check_run_file(Path(source))["levels_complete"])
        levels = list(range(1, min(n, trunk.levels))) if levels is None else levels
        get = functools.lru_cache(maxsize=1)(lambda level: load_ticket(source, level))  # one ticket in memory
        first = get(levels[0]) if levels else load_ticket(source, 0)
    check_compatible(first, trunk)
    branch = transfer_branch(trunk, get, first, output)
    return run_branch(trunk, branch, levels, tensors=tensors, progress=progress, threads=threads, log=log)


def check_output_mode(output: str) -> None:
    if output not in OUTPUT_MODES:
        raise ConfigError(f"--output-layer must be one of {', '.join(OUTPUT_MODES)}, got {output!r}")


def target_config(source: str | Path, task_name: str, task_params: dict) -> RunConfig:
    """The source run's config with the task replaced: what ``rgnet transfer --task`` records as target."""
    src = load_ticket(source, None if is_ticket_file(source) else 0)
    cfg = RunConfig.from_json(src.config)
    return normalise(cfg.replace(task={"name": task_name, "params": dict(task_params)}))


def check_compatible(ticket: Ticket, trunk: Trunk) -> None:
    """Same architecture and input shape, or :class:`ConfigError` naming what differs."""
    src = RunConfig.from_json(ticket.config)
    if src.model != trunk.cfg.model:
        raise ConfigError(f"the ticket comes from model {src.model.name} {src.model.params} but the target run "
                          f"uses {trunk.cfg.model.name} {trunk.cfg.model.params}; transfer needs the same "
                          "architecture — record the target with the source's model")
    if ticket.in_shape != trunk.task.in_shape:
        raise ConfigError(f"input shapes differ: the ticket's task {src.task.name} has inputs {ticket.in_shape}, "
                          f"the target task {trunk.cfg.task.name} has {trunk.task.in_shape}; transfer needs "
                          "tasks with the same input shape")
    if ticket.rewind_iteration >= trunk.cfg.train.steps:
        raise ConfigError(f"the ticket restarts at iteration {ticket.rewind_iteration}, beyond the target's "
                          f"{trunk.cfg.train.steps} training steps")


def transfer_branch(trunk: Trunk, get: Callable[[int], Ticket], first: Ticket, output: str) -> Branch:
    """The branch that trains ``get(level)`` on the target run ``trunk``."""
    new_head = first.n_classes != trunk.task.n_classes
    out = trunk.output
    rewind = dict(first.rewind)
    if new_head:  # the classifier cannot move: take the target's own initial output layer
        for k in (f"{out}.weight", f"{out}.bias"):
            if k in trunk.init:
                rewind[k] = trunk.init[k]
    bad = sorted(k for k, v in trunk.init.items() if k not in rewind or rewind[k].shape != v.shape)
    if bad:
        raise ConfigError(f"the ticket's tensors {bad} do not fit the target model; transfer needs the same "
                          "architecture")
    name = f"transfer_{first.run_id}" + ("_dense_output" if new_head and output == "dense" else "")

    def check(level: int) -> None:
        _check_density(get(level), trunk, level, skip=out if new_head else None)

    def masks(level: int) -> dict[str, np.ndarray]:
        t = get(level)
        m = dict(t.masks)
        if new_head and out in m:
            if output == "dense":
                m[out] = np.ones(trunk.layers[out].shape, dtype=bool)
            else:
                shape = tuple(trunk.layers[out].shape)
                size = int(np.prod(shape))
                m[out] = keep_random(size, round(t.masks[out].mean() * size),
                                     generator(trunk.cfg.seed, "transfer-output", level, name)).reshape(shape)
        return m

    src = RunConfig.from_json(first.config)
    spec = {"kind": "transfer", "source_run_id": first.run_id, "output": output if new_head else "kept"}
    attrs = {"source_run_id": first.run_id, "source_path": first.source, "source_config": first.config,
             "source_task": first.task, "source_task_name": src.task.name, "source_seed": src.seed,
             "source_rewind_iteration": first.rewind_iteration,
             "comment": "level L holds the source's level-L ticket trained on this run's task"}
    return Branch(name, spec, first.rewind_iteration, rewind, masks, attrs, check)


def _check_density(ticket: Ticket, trunk: Trunk, level: int, skip: str | None) -> None:
    """The ticket must sit at the density of the target's own ticket of the same level (a new head excluded)."""
    own = trunk.mask(level)
    names = [n for n in own if n != skip]
    dens = sum(int(ticket.masks[n].sum()) for n in names) / sum(ticket.masks[n].size for n in names)
    want = sum(int(own[n].sum()) for n in names) / sum(own[n].size for n in names)
    if abs(dens - want) > DENSITY_TOLERANCE * want:
        raise ConfigError(f"the ticket of level {level} has density {dens:.4f} but the target's own level {level} "
                          f"has {want:.4f}; record the target with the source's pruning settings (fraction, scope, "
                          "output fraction) so that levels match")

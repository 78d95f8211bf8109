"""Ticket transfer: train a winning ticket of a source run on a target task, as a branch of the target run.

The ticket (mask of source level L and the source's rewound weights) is trained with the *target's* training
settings from the source's rewind iteration and stored at level L of ``branches/transfer_<source run_id>``
in the target file, next to the target's own ticket of the same level (same pruning schedule, so the same
density). Same architecture and input shape are required. When the class count differs, the output layer
takes the target's own initial weights and is either pruned at random to the source's output-layer density
(``output="pruned"``, default) or left dense (``output="dense"``).

``align`` transfers the ticket *up to symmetry* (MLPs): ``"inputs"`` permutes its first layer's columns by
the input-feature permutation estimated from the two tasks' data (:func:`rgnet.align.align_inputs`);
``"inputs+units"`` also permutes its hidden units to match the target's own tickets (weight matching on the
number of levels each weight survives, :func:`rgnet.align.match_units`). The aligned transfer is its own
branch (``transfer_<source run_id>_align_inputs`` / ``..._align_inputs_units``) beside the unaligned one,
stores its permutations as attributes, reuses them on resume, and draws the same data order as the
unaligned branch, so that an identity alignment reproduces it exactly.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from rgnet.align import (
    MIN_CONFIDENCE,
    align_inputs,
    alignment_attrs,
    check_align,
    match_units,
    mlp_layers,
    permute_mlp,
    require_identifiable,
)
from rgnet.config import RunConfig
from rgnet.engine.seeds import generator
from rgnet.errors import ConfigError, StoreError
from rgnet.imp.branches import Branch, Trunk, keep_random, open_trunk, run_branches
from rgnet.imp.driver import normalise
from rgnet.imp.names import transfer_name
from rgnet.imp.tickets import Ticket, is_ticket_file, load_ticket
from rgnet.store.reader import read_tensors
from rgnet.store.writer import BRANCHES, check_run_file
from rgnet.tasks import load_task, task_label

OUTPUT_MODES = ("pruned", "dense")
DENSITY_TOLERANCE = 0.05   # relative: a transferred ticket must sit at the target level's density


def transfer(source: str | Path, target: str | Path, levels: list[int] | None = None, *, output: str = "pruned",
             align: str = "none", min_confidence: float = MIN_CONFIDENCE, tensors: bool | None = None,
             device: str = "cpu", data_root=None, progress: bool | None = None, threads: int | None = None,
             log: Callable[[str], None] | None = None, stack: int | None = None) -> str:
    """Train the tickets of ``source`` (a run file, at ``levels``, default all pruned levels both runs have;
    or a ticket file) on the run recorded in ``target``, aligned by ``align`` (none, inputs, inputs+units;
    refused when the input permutation's confidence is below ``min_confidence``); resumable; the levels train
    as stacks of at most ``stack`` (default all). Returns the branch's group path."""
    check_output_mode(output)
    check_align(align)
    trunk = open_trunk(target, device, data_root) if Path(source).is_file() else None
    branch, levels = transfer_of(source, trunk, levels, output=output, align=align, min_confidence=min_confidence,
                                 data_root=data_root)
    return run_branches(trunk, [branch], levels, tensors=tensors, progress=progress, threads=threads, log=log,
                        stack=stack)[0]


def transfer_of(source: str | Path, trunk: Trunk | None, levels: list[int] | None = None, *, output: str = "pruned",
                align: str = "none", min_confidence: float = MIN_CONFIDENCE, data_root=None
                ) -> tuple[Branch, list[int]]:
    """The branch that trains ``source``'s tickets in ``trunk`` (an opened target run) and the levels it trains
    (see :func:`transfer`); nothing is written. Several of them train as one stack with
    :func:`rgnet.imp.branches.run_branches`."""
    check_output_mode(output)
    check_align(align)
    if trunk is None or not Path(source).is_file():
        raise StoreError(f"source {str(source)!r} does not exist; pass a run file or a ticket file")
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
    check_align(align, trunk.cfg.model.name)
    if first.run_id == trunk.cfg.run_id:
        raise ConfigError(f"{str(source)!r} holds tickets of run {first.run_id}, the target run itself; a transfer "
                          "goes to another run (its own tickets are its IMP levels) — pass another --target")
    return transfer_branch(trunk, get, first, output, align, source=source, data_root=data_root,
                           min_confidence=min_confidence), levels


def check_output_mode(output: str) -> None:
    if output not in OUTPUT_MODES:
        raise ConfigError(f"--output-layer must be one of {', '.join(OUTPUT_MODES)}, got {output!r}")


def target_config(source: str | Path, task_name: str, task_params: dict) -> RunConfig:
    """The source run's config with the task replaced: what ``rgnet transfer --task`` records as target."""
    src = load_ticket(source, None if is_ticket_file(source) else 0)
    cfg = RunConfig.from_json(src.config)
    return normalise(cfg.replace(task={"name": task_name, "params": dict(task_params)}))


def check_identifiable(source: str | Path, target: RunConfig, min_confidence: float = MIN_CONFIDENCE,
                       data_root=None) -> None:
    """:class:`ConfigError` unless the two tasks' data identify the input permutation (before a target run is
    recorded for the transfer; :func:`alignment` decides alike)."""
    src = load_ticket(source, None if is_ticket_file(source) else 0)
    src_cfg = RunConfig.from_json(src.config)
    a, b = load_task(src_cfg.task, data_root), load_task(target.task, data_root)
    inputs = align_inputs(a.x_train, b.x_train, a.y_train, b.y_train)
    require_identifiable(inputs, f"from {task_label(src.config)} to {task_label(target.to_json())}", min_confidence)


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


def transfer_branch(trunk: Trunk, get: Callable[[int], Ticket], first: Ticket, output: str, align: str = "none",
                    source: str | Path | None = None, data_root=None, min_confidence: float = MIN_CONFIDENCE
                    ) -> Branch:
    """The branch that trains ``get(level)`` on the target run ``trunk``, aligned by ``align``."""
    new_head = first.n_classes != trunk.task.n_classes
    out = trunk.output
    base = transfer_name(first.run_id, dense_output=new_head and output == "dense")  # seeds the output masks
    name = transfer_name(first.run_id, align, dense_output=new_head and output == "dense")
    layers = mlp_layers(trunk.init)
    input_perm, unit_perms, align_attrs = alignment(trunk, first, align, name, source, data_root, min_confidence)
    rewind = permute_mlp(first.rewind, layers, input_perm, unit_perms)
    if new_head:  # the classifier cannot move: take the target's own initial output layer
        for k in (f"{out}.weight", f"{out}.bias"):
            if k in trunk.init:
                rewind[k] = trunk.init[k]
    bad = sorted(k for k, v in trunk.init.items() if k not in rewind or rewind[k].shape != v.shape)
    if bad:
        raise ConfigError(f"the ticket's tensors {bad} do not fit the target model; transfer needs the same "
                          "architecture")

    def check(level: int) -> None:
        _check_density(get(level), trunk, level, skip=out if new_head else None)

    def masks(level: int) -> dict[str, np.ndarray]:
        t = get(level)
        m = permute_mlp(t.masks, layers, input_perm, unit_perms)
        if new_head and out in m:
            if output == "dense":
                m[out] = np.ones(trunk.layers[out].shape, dtype=bool)
            else:
                shape = tuple(trunk.layers[out].shape)
                size = int(np.prod(shape))
                m[out] = keep_random(size, round(t.masks[out].mean() * size),
                                     generator(trunk.cfg.seed, "transfer-output", level, base)).reshape(shape)
        return m

    src = RunConfig.from_json(first.config)
    spec = {"kind": "transfer", "source_run_id": first.run_id, "output": output if new_head else "kept"}
    if align != "none":
        spec["align"] = align
    attrs = {"source_run_id": first.run_id, "source_path": first.source, "source_config": first.config,
             "source_task": first.task, "source_task_name": src.task.name, "source_seed": src.seed,
             "source_rewind_iteration": first.rewind_iteration,
             "comment": "level L holds the source's level-L ticket trained on this run's task"
                        + ("" if align == "none" else ", carried across the stored permutations"), **align_attrs}
    return Branch(name, spec, first.rewind_iteration, rewind, masks, attrs, check, stream=base)


def alignment(trunk: Trunk, first: Ticket, align: str, name: str, source: str | Path | None = None,
              data_root=None, min_confidence: float = MIN_CONFIDENCE
              ) -> tuple[np.ndarray | None, list[np.ndarray] | None, dict]:
    """``(input permutation, hidden-unit permutations, branch attributes)`` for an aligned transfer.

    A branch that exists already keeps the permutations it stored (resuming never re-estimates them).
    Inputs: :func:`align_inputs` on the two tasks' training inputs and labels; :class:`ConfigError` when its
    confidence is below ``min_confidence`` (the data do not identify the permutation). Units: :func:`match_units`
    between the target's and the (input-aligned) source's *survival* — per weight, the number of pruned
    levels it is kept, over the levels both runs have (one level for a ticket file), so that one permutation
    serves every level.
    """
    if align == "none":
        return None, None, {}
    stored = _stored_alignment(trunk.path, name)
    if stored is not None:
        return stored
    src_cfg = RunConfig.from_json(first.config)
    src_task = load_task(src_cfg.task, data_root)
    if src_task.fingerprint() != json.loads(first.task).get("fingerprint"):
        raise StoreError(f"the source task {src_cfg.task.name!r} gives other data now than the ticket was found on "
                         "(fingerprint differs); input alignment needs the source's own data — restore it")
    inputs = align_inputs(src_task.x_train, trunk.task.x_train, src_task.y_train, trunk.task.y_train)
    require_identifiable(inputs, f"from {task_label(first.config)} to {task_label(trunk.cfg.to_json())}",
                         min_confidence)
    input_perm = inputs.permutation.values
    units = None
    if align == "inputs+units":
        layers = mlp_layers(trunk.init)
        mine, theirs = _survival(trunk, first, source)
        shapes = {x: trunk.init[f"{x}.weight"].shape for x in layers}
        a = [mine.get(x, np.zeros(shapes[x])) for x in layers]
        b = [theirs.get(x, np.zeros(shapes[x])) for x in layers]
        units = match_units(a, b, input_perm=input_perm)
        return input_perm, units, alignment_attrs(inputs, dict(zip(layers, units)), align, min_confidence)
    return input_perm, units, alignment_attrs(inputs, None, align, min_confidence)


def _survival(trunk: Trunk, first: Ticket, source) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per prunable layer, how many pruned levels each weight survives: target's and source's."""
    if source is None or is_ticket_file(source):
        return ({n: m.astype(np.float64) for n, m in trunk.mask(first.level).items()},
                {n: m.astype(np.float64) for n, m in first.masks.items()})
    n = min(int(check_run_file(Path(source))["levels_complete"]), trunk.levels)
    per = [read_tensors(source, "mask", lv) for lv in range(1, n)]
    theirs = {k: np.sum([m[k] for m in per], 0, dtype=np.float64) for k in trunk.masks}
    mine = {k: m[1:n].sum(0, dtype=np.float64) for k, m in trunk.masks.items()}
    return mine, theirs


def describe_alignment(path: str | Path, group: str) -> str:
    """One line on what an aligned branch stored of its input alignment."""
    with h5py.File(path, "r") as f:
        raw = f[group].attrs.get("input_alignment")
    if raw is None:
        return f"{group}: no input alignment stored"
    r = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    if "agreement" not in r:   # stored before [relevance]: an in-sample confidence
        return f"input alignment: confidence {r['confidence']:.1f} (in-sample, not cross-fitted)"
    word = "identifiable" if r["identifiable"] else "NOT identifiable (aligned anyway)"
    return (f"input alignment: held-out confidence {r['confidence']:.1f} ({word} at {MIN_CONFIDENCE:g}), "
            f"the two halves of the data match {100 * r['agreement']:.0f} % of the features alike")


def _stored_alignment(path: Path, name: str):
    """The permutations an existing aligned branch stored, or None if the branch does not exist yet."""
    with h5py.File(path, "r") as f:
        if name not in f.get(BRANCHES, {}):
            return None
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f[BRANCHES][name].attrs.items()}
    input_perm = np.asarray(json.loads(attrs["input_permutation"]))
    units = json.loads(attrs["unit_permutations"]) if "unit_permutations" in attrs else None
    keep = {k: attrs[k] for k in ("align", "input_permutation", "input_alignment", "unit_permutations") if k in attrs}
    return input_perm, (None if units is None else [np.asarray(v) for v in units.values()]), keep


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

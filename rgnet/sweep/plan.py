"""A sweep as a task graph of units: trunks, then baselines, then transfers; one writer per run file at a time.

A :class:`Unit` is one call of today's public entry points (``rgnet.record``, ``rgnet.run_baselines``,
``rgnet.transfer``) writing one run file. Its ``needs`` are the trunks it trains on (a transfer: those of its
source and its target); its ``after`` adds the previous writer of its file (trunk, baselines, then the
transfers into it, in plan order), so that no two units ever write one file at once, while a failed writer
keeps back only the units that need it. ``stage`` is a unit's place in its file's chain.

:func:`stack` is the pluggable step that turns units into worker calls: trunks of one model together, baselines
of one model together, the transfers into one target together. A group trains as stacked models
(:mod:`rgnet.engine`): its trunks as one stack, the baselines and transfers into one file as one stack (every
branch level one member); ``size=1``, the default, gives one call per unit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rgnet.config import RunConfig
from rgnet.imp.names import baseline_names, transfer_name
from rgnet.store.reader import run_progress
from rgnet.sweep.spec import PlannedRun, Spec


@dataclass(frozen=True)
class Unit:
    """One worker call's worth of training, writing into the run file ``path``."""

    kind: str                                  # trunk | baselines | transfer
    name: str                                  # readable and unique: "trunk default-s0", ...
    path: str                                  # the run file it writes (absolute)
    config: str                                # the run config (JSON) of that file
    source: str = ""                           # transfer: the source run file
    source_id: str = ""                        # transfer: the source run_id
    kinds: tuple[str, ...] = ()                # baselines
    levels: tuple[int, ...] = ()               # branch levels to train
    align: str = "none"                        # transfer
    min_confidence: float = 0.0                # transfer: refuse an alignment less certain than this
    tensors: bool | None = None                # branches: keep trained weights (None: as the trunk)
    rewind_to: int | None = None               # rewind baseline
    after: tuple[str, ...] = ()                # names of the units that must finish first
    needs: tuple[str, ...] = ()                # those of them whose failure means this unit cannot run (trunks)
    stage: int = 0                             # place among the writers of ``path`` (0: the trunk)

    @property
    def run_id(self) -> str:
        return Path(self.path).stem.rsplit("-", 1)[-1]


@dataclass(frozen=True)
class Group:
    """Units run by one worker call (today one after another), and the groups it must wait for."""

    key: str
    units: tuple[Unit, ...]
    after: tuple[str, ...] = field(default=())


def plan(spec: Spec, out: str | Path) -> list[Unit]:
    """The units of ``spec`` writing into folder ``out``, in an order where every unit follows those it needs."""
    out = Path(out).resolve()
    path = {r.config.run_id: str(out / r.file) for r in spec.runs}
    name = {r.config.run_id: f"{r.label}-s{r.config.seed}" for r in spec.runs}
    trunks = [Unit("trunk", f"trunk {name[r.config.run_id]}", path[r.config.run_id], r.config.to_json())
              for r in spec.runs]
    chains: dict[str, list[Unit]] = {u.path: [u] for u in trunks}

    def add(target: PlannedRun, src: PlannedRun | None = None, **kw) -> None:
        chain = chains[path[target.config.run_id]]
        needs = (chain[0].name,) + ((f"trunk {name[src.config.run_id]}",) if src is not None else ())
        after = tuple(dict.fromkeys((chain[-1].name,) + needs[1:]))  # the previous writer, and the source
        chain.append(Unit(path=path[target.config.run_id], config=target.config.to_json(), after=after,
                          needs=needs, stage=len(chain), **kw))

    b = spec.baselines
    if b is not None:
        for r in spec.runs:
            add(r, kind="baselines", name=f"baselines {name[r.config.run_id]}", kinds=b.kinds,
                levels=b.levels or _all_levels(r), tensors=b.tensors, rewind_to=b.rewind_to)
    t = spec.transfers
    if t is not None:
        for align in t.align:
            for src, tgt in spec.transfer_pairs():
                sid = src.config.run_id
                levels = t.levels or tuple(lv for lv in _all_levels(src) if lv in _all_levels(tgt))
                add(tgt, src, kind="transfer", source=path[sid], source_id=sid,
                    align=align, min_confidence=t.min_confidence, levels=levels, tensors=t.tensors,
                    name=f"transfer {name[sid]} -> {name[tgt.config.run_id]}" + ("" if align == "none" else
                                                                               f" [{align}]"))
    units = [u for chain in chains.values() for u in chain]
    return sorted(units, key=lambda u: u.stage)  # stable: plan order within a stage; needs lie in earlier stages


def _all_levels(r: PlannedRun) -> tuple[int, ...]:
    """Every pruned level the run plans (what run_baselines and transfer train by default)."""
    return tuple(range(1, r.config.prune.levels + 1))


def stack(units: list[Unit], size: int = 1) -> list[Group]:
    """Group units into worker calls of at most ``size`` (>= 1) units, as a batched engine would stack them.

    Trunks of one model (many runs: ``record_runs``), baselines of one model (one per file), and the
    transfers into one target file (``transfer_many``), in plan order. No group can wait for itself: trunk
    groups wait for nothing, baseline groups only for trunk groups, and a target's transfer groups for trunk
    groups, its baselines and its earlier transfer groups; a group's ``after`` is every other group holding a
    unit that one of its units comes after (units of one group that follow each other run in that order).
    """
    buckets: dict[tuple, list[Unit]] = {}
    for u in units:
        model = json.dumps(json.loads(u.config)["model"], sort_keys=True)
        buckets.setdefault((u.kind, u.path if u.kind == "transfer" else model), []).append(u)
    groups: list[list[Unit]] = []
    for members in buckets.values():
        groups += [members[i:i + size] for i in range(0, len(members), size)]
    groups.sort(key=lambda g: g[0].stage)   # every group a group waits for starts at an earlier stage
    where = {u.name: i for i, g in enumerate(groups) for u in g}
    out = []
    for i, g in enumerate(groups):
        needs = sorted({where[d] for u in g for d in u.after if d in where} - {i})
        out.append(Group(_key(g, i), tuple(g), tuple(_key(groups[j], j) for j in needs)))
    return out


def _key(g: list[Unit], i: int) -> str:
    first = g[0].name.replace(" -> ", "->").replace(" ", "-")
    return f"{first}+{len(g) - 1}-{i}" if len(g) > 1 else f"{first}-{i}"


# ------------------------------------------------------------------------------------------ progress from files

def progress(units: list[Unit], cache: dict | None = None) -> dict[str, tuple[int, int]]:
    """Per unit name, ``(levels done, levels planned)`` as the run files say now (each file read once).

    A trunk is done when IMP has finished (all levels, or the target density); a branch unit when each of its
    branches has trained each of its levels. A trunk whose last level diverged counts as not done, so that
    running it again reports the divergence. ``cache`` (a dict kept by the caller) skips re-reading files that
    have not changed since (every commit renames a new file into place).
    """
    states: dict[str, dict | None] = {}
    for u in units:
        if u.path not in states:
            states[u.path] = _cached_state(Path(u.path), cache)
    out = {}
    for u in units:
        s, cfg = states[u.path], json.loads(u.config)
        if u.kind == "trunk":
            total = cfg["prune"]["levels"] + 1
            done = 0 if s is None else s["levels"]
            if s is not None and s["finished"](cfg) and not s["diverged"]:
                done = total
            out[u.name] = (min(done, total), total)
            continue
        groups = branch_groups(u, cfg)
        total = len(groups) * len(u.levels)
        done = 0
        if s is not None:
            for g in groups:
                have = s["groups"].get(g)
                if have is not None:
                    done += sum(1 for lv in u.levels if lv < len(have) and have[lv])
        out[u.name] = (done, total)
    return out


def branch_groups(u: Unit, cfg: dict) -> list[str]:
    """Names of the branches (``branches/<name>``) a baselines or transfer unit writes."""
    if u.kind == "transfer":
        return [transfer_name(u.source_id, u.align)]  # a sweep's transfers keep the output layer as is
    return baseline_names(u.kinds, RunConfig.from_dict(cfg), u.rewind_to)


def _cached_state(path: Path, cache: dict | None) -> dict | None:
    if cache is None:
        return _file_state(path)
    try:
        st = path.stat()
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return None
    if path not in cache or cache[path][0] != stamp:
        cache[path] = (stamp, _file_state(path))
    return cache[path][1]


def _file_state(path: Path) -> dict | None:
    """Complete trunk levels, last density and divergence, and each branch's ``level_done``; None if absent."""
    if not path.is_file():
        return None
    try:
        state = run_progress(path)
    except (OSError, KeyError):
        return None  # unreadable or not an rgnet run: the unit runs and reports why
    n, dens = state["levels"], state["density"]
    return {**state, "finished": lambda cfg: RunConfig.from_dict(cfg).prune.finished(n, dens)}

"""Running units: one unit (:func:`run_unit`), one worker call (:func:`run_group`), and the two executors —
in this process, one unit after another (:func:`run_here`), or on a dask.distributed cluster (:func:`run_dask`).

A unit that fails because of what was asked (a :class:`rgnet.RgnetError`: diverged training, refused levels)
returns its failure instead of raising, so dask does not retry it and the units needing it are skipped. Any
other exception (a full disk, a lost file system) raises and dask retries the call ``retries`` times; a worker
that dies mid-unit (killed, out of memory) makes the scheduler run the call again elsewhere, and the run
resumes after its last complete level.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid
from typing import Callable

from rgnet.config import RunConfig
from rgnet.errors import DivergedError, RgnetError
from rgnet.progress import Clock, duration, left, on_terminal, to_stderr
from rgnet.store.writer import lock_wait as waiting
from rgnet.sweep.plan import Group, Unit, progress

OK = ("ok", "done")        # a unit's statuses after which the units needing it may run


def run_unit(unit: Unit, lock_wait: float = 3600.0) -> dict:
    """Train ``unit`` through rgnet's public entry points; returns its result (status, error, timing, where).

    ``lock_wait``: seconds to wait for a run file that another process holds (a duplicate of this unit that
    the scheduler believed lost) before failing.
    """

    start, status, error = time.time(), "ok", ""
    try:
        with waiting(lock_wait):
            _train(unit)
    except DivergedError as e:
        status, error = "diverged", str(e)
    except RgnetError as e:
        status, error = "failed", str(e)
    return {"name": unit.name, "status": status, "error": error, "start": start, "end": time.time(),
            "pid": os.getpid(), "host": socket.gethostname()}


def _train(unit: Unit) -> None:
    """The one place that trains one unit (a group's trunks were stacked first by :func:`_stack_trunks`)."""
    from rgnet.imp.branches import run_baselines  # noqa: PLC0415  (torch: loaded by the workers that train)
    from rgnet.imp.driver import record  # noqa: PLC0415
    from rgnet.imp.transfer import transfer  # noqa: PLC0415

    quiet = {"progress": False}
    if unit.kind == "trunk":
        record(RunConfig.from_json(unit.config), unit.path, **quiet)
    elif unit.kind == "baselines":
        run_baselines(unit.path, list(unit.kinds), list(unit.levels), rewind_to=unit.rewind_to,
                            tensors=unit.tensors, **quiet)
    elif unit.kind == "transfer":
        transfer(unit.source, unit.path, list(unit.levels), align=unit.align, min_confidence=unit.min_confidence,
                 tensors=unit.tensors, **quiet)
    else:
        raise ValueError(f"unknown unit kind {unit.kind!r}")


def run_group(units: tuple[Unit, ...], lock_wait: float, *upstream: dict) -> dict:
    """Run a group's units one after another; a unit that needs a unit that did not succeed is skipped.

    ``upstream``: what the groups this one waits for returned (dask passes them once they are done). Returns
    ``{"results": [one per unit], "failed": {unit name: status}}``, the failures of this group and of every
    group upstream, so that a failure is seen by every unit downstream of it.
    """
    failed = {k: v for up in upstream for k, v in up["failed"].items()}
    ready = [u for u in units if not any(d in failed for d in u.needs)]
    _stack_trunks(ready, lock_wait)
    _stack_branches(ready, lock_wait)
    results: list[dict] = []
    for u in units:
        bad = [d for d in u.needs if d in failed]
        results.append(skipped(u, f"{bad[0]} {failed[bad[0]]}") if bad else run_unit(u, lock_wait))
        if results[-1]["status"] not in OK:
            failed[u.name] = results[-1]["status"]
    return {"results": results, "failed": failed}


def _stack_trunks(units: list[Unit], lock_wait: float) -> None:
    """Train a group's trunks as one stacked model (:func:`rgnet.record_many`) before the per-unit loop.

    Only a fast path: the loop in :func:`run_group` then finds those files complete (or resumes them) and
    reports each unit's own status, so a diverged or refused run is reported by its unit as before. Errors
    other than rgnet's (a full disk, a lost file system) raise, and dask retries the call.
    """
    trunks = [u for u in units if u.kind == "trunk"]
    if len(trunks) < 2:
        return
    from rgnet.imp.driver import record_many  # noqa: PLC0415  (torch: loaded by the workers that train)

    try:
        with waiting(lock_wait):
            record_many([RunConfig.from_json(u.config) for u in trunks], [u.path for u in trunks], progress=False)
    except RgnetError:
        pass  # each unit reports it below, from its own file


def _stack_branches(units: list[Unit], lock_wait: float) -> None:
    """Train a group's baselines and transfers into one run file as one stacked call (:func:`run_branches`).

    A fast path like :func:`_stack_trunks`: units that share a target file, levels and storage train together
    (every branch level one run of the stack); the loop in :func:`run_group` then finds their levels done and
    reports each unit, and trains (and reports) any unit this call refused or left unfinished.
    """
    from rgnet.imp.branches import baseline, open_trunk, run_branches  # noqa: PLC0415  (torch: in workers)
    from rgnet.imp.transfer import transfer_of  # noqa: PLC0415

    together: dict[tuple, list[Unit]] = {}
    for u in units:
        if u.kind in ("baselines", "transfer"):
            together.setdefault((u.path, u.levels, u.tensors), []).append(u)
    for (path, levels, tensors), us in together.items():
        if len(us) < 2:
            continue
        try:
            with waiting(lock_wait):
                trunk = open_trunk(path)
                branches = []
                for u in us:
                    if u.kind == "baselines":
                        branches += [baseline(trunk, k, u.rewind_to) for k in u.kinds]
                    else:
                        branches.append(transfer_of(u.source, trunk, list(levels), align=u.align,
                                                    min_confidence=u.min_confidence)[0])
                run_branches(trunk, branches, list(levels), tensors=tensors, progress=False)
        except RgnetError:
            pass  # each unit reports it below, from its own file


def skipped(u: Unit, why: str) -> dict:
    return {"name": u.name, "status": "skipped", "error": f"not run: {why}", "start": float("nan"),
            "end": float("nan"), "pid": -1, "host": ""}


# ------------------------------------------------------------------------------------------ executors

class Progress:
    """A tqdm bar over the planned levels of the units, with the units done, running and failed as postfix; in a
    log (``show=None`` and stderr not a terminal) plain lines instead: one per finished unit, and one every
    :data:`rgnet.progress.PACE` seconds, with the time elapsed and left.

    Levels are counted from the run files (:func:`rgnet.sweep.plan.progress`), so a long unit shows its levels
    as they are committed, wherever it runs.
    """

    def __init__(self, units: list[Unit], show: bool | None):
        from tqdm.auto import tqdm  # noqa: PLC0415

        self.units = units
        self.done_units: set[str] = set()
        self.failed = 0
        self.cache: dict = {}
        self.total = sum(t for _, t in progress(units, self.cache).values())
        self.lines = show is None and not on_terminal()
        self.clock, self.reported, self.before = Clock(), -1, None
        self.bar = tqdm(total=self.total, unit="level", dynamic_ncols=True, file=sys.stderr,
                        disable=self.lines or (None if show is None else not show), desc="sweep")
        self.refresh()

    def refresh(self, running: int = 0) -> None:
        done = sum(d for d, _ in progress(self.units, self.cache).values())
        self.before = done if self.before is None else self.before   # resumed levels do not set the pace
        state = (f"units {len(self.done_units)}/{len(self.units)}, running {running}"
                 + (f", failed {self.failed}" if self.failed else ""))
        self.bar.n = done
        self.bar.set_postfix_str(state, refresh=False)
        self.bar.refresh()
        if self.lines and (len(self.done_units) != self.reported or self.clock.due()):
            self.reported = len(self.done_units)
            self.clock.mark()
            to_stderr(f"sweep: {done}/{self.total} levels, {state}; {duration(self.clock.elapsed)} elapsed, "
                      f"{left(done - self.before, self.total - self.before, self.clock.elapsed)} left")

    def finished(self, results: list[dict]) -> None:
        for r in results:
            self.done_units.add(r["name"])
            self.failed += r["status"] not in OK

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.refresh()
        self.bar.close()


def run_here(units: list[Unit], lock_wait: float, bar: Progress) -> dict[str, dict]:
    """Every unit in this process, in plan order (the sequential reference)."""
    results: dict[str, dict] = {}
    upstream = {"failed": {}}
    for u in units:
        upstream = run_group((u,), lock_wait, upstream)
        results[u.name] = upstream["results"][0]
        bar.finished(upstream["results"])
        bar.refresh()
    return results


def run_dask(groups: list[Group], client, lock_wait: float, retries: int, bar: Progress,
             poll: float = 1.0, log: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Submit every group to ``client`` (dependencies as futures) and collect the units' results."""
    token = uuid.uuid4().hex[:8]  # fresh keys: an earlier sweep's results must not be taken for this one's
    futures, owner = {}, {}
    for g in groups:
        needs = [futures[k] for k in g.after]
        f = client.submit(run_group, g.units, lock_wait, *needs, key=f"{g.key}-{token}", retries=retries,
                          pure=False)
        futures[g.key], owner[f.key] = f, g
    results: dict[str, dict] = {}
    pending, last = set(futures.values()), 0.0
    while pending:
        time.sleep(0.1)
        for f in [f for f in pending if f.done()]:
            pending.discard(f)
            g = owner[f.key]
            # an error no retry cured, a worker lost too often, or a needed group that erred
            rs = f.result()["results"] if f.status == "finished" else _erred(g, f, futures, log)
            results.update({r["name"]: r for r in rs})
            bar.finished(rs)
        if time.monotonic() - last > poll or not pending:
            bar.refresh(running=_running(client, pending))
            last = time.monotonic()
    return results


def _running(client, pending) -> int:
    """Units being trained: those assigned to workers, at most one per worker thread."""
    try:
        processing, threads = client.processing(), client.nthreads()
    except Exception:  # only for the progress bar
        return 0
    keys = {f.key for f in pending}
    return sum(min(threads.get(w, 1), sum(1 for k in tasks if k in keys)) for w, tasks in processing.items())


def _erred(g: Group, f, futures: dict, log) -> list[dict]:
    upstream = [k for k in g.after if futures[k].status == "error"]
    if upstream:
        return [skipped(u, f"{upstream[0]} erred") for u in g.units]
    exc = f.exception()
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if log:
        log(f"rgnet sweep: {g.key} erred: {text}")
    return [{"name": u.name, "status": "error", "error": text, "start": float("nan"), "end": float("nan"),
             "pid": -1, "host": ""} for u in g.units]

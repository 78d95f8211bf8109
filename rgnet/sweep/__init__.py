"""Sweeps on dask.distributed: one spec (TOML) -> runs, baselines and transfers -> a task graph -> any cluster.

``rgnet.sweep.sweep(spec, out)`` (and ``rgnet sweep SPEC --dir OUT``) expands the spec into runs
(:mod:`rgnet.sweep.spec`), plans the units of work (:mod:`rgnet.sweep.plan`), skips what the files already hold,
runs the rest on a LocalCluster (processes, one thread each, one worker per core), on an existing cluster
(``scheduler="tcp://host:8786"``) or in this process (``sequential=True``), and writes ``OUT/index.nc``
(:mod:`rgnet.sweep.index`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rgnet.errors import ConfigError
from rgnet.sweep.index import check_index_path, write_index
from rgnet.sweep.plan import Unit, plan, progress, stack
from rgnet.sweep.run import Progress, run_dask, run_here
from rgnet.sweep.spec import Spec, load_spec, task_labels

__all__ = ["SweepResult", "load_spec", "plan", "stack", "sweep", "task_labels"]


@dataclass
class SweepResult:
    """What a sweep did: the plan, each unit's result in this invocation, and the index it wrote."""

    units: list[Unit]
    results: dict[str, dict]       # unit name -> status, error, start, end, pid, host (units run now)
    skipped_done: int              # units the files already held
    index: Path | None
    seconds: float

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results.values() if r["status"] not in ("ok", "done")]


def sweep(spec: str | Path | Spec, out: str | Path, *, scheduler: str | None = None, client=None,
          workers: int | None = None, host: str = "127.0.0.1", dashboard: str | None = "127.0.0.1:8787",
          sequential: bool = False, stack_size: int = 1, retries: int = 2, lock_wait: float = 3600.0,
          dry_run: bool = False, progress_bar: bool | None = None,
          log: Callable[[str], None] | None = None) -> SweepResult:
    """Run (or resume) the sweep ``spec`` (a TOML path or a :class:`Spec`) into the folder ``out``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``); its workers must see ``out`` at the same path.
    client : distributed.Client, optional
        Use this client (and its cluster) instead of starting one.
    workers : int, optional
        Workers of the LocalCluster started otherwise (default: one per CPU core; each one thread).
    host, dashboard : str
        Where the LocalCluster's scheduler and dashboard listen (default: this machine only, 127.0.0.1).
    sequential : bool
        Run every unit in this process, one after another, without dask (the reference a cluster must equal).
    stack_size : int
        Units per worker call (:func:`rgnet.sweep.plan.stack`): trunks or baselines of one model, or the
        transfers into one file, run one after another in that call.
    retries : int
        Times dask re-runs a call that raised an unexpected exception (worker deaths are retried by the
        scheduler on their own, up to ``distributed.scheduler.allowed-failures``).
    lock_wait : float
        Seconds a unit waits for a run file held by another process before it fails.
    dry_run : bool
        Only plan: return the units, run nothing, write no index.
    """

    say = log or (lambda s: None)
    spec_path = str(spec) if not isinstance(spec, Spec) else ""
    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    _check_options(workers, retries, lock_wait, stack_size)
    places = [name for name, on in (("--sequential", sequential), ("--scheduler", scheduler),
                                    ("a client", client is not None), ("--workers", workers is not None)) if on]
    if len(places) > 1:  # say so rather than pick one
        raise ConfigError(f"{' and '.join(places)} do not combine; choose one place to run: --sequential, "
                          "--scheduler ADDRESS, or the local cluster (--workers N)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--dir {str(out)!r} is a file; pass a folder for the sweep's run files")
    check_index_path(out)  # refuse before any training
    units = plan(spec, out)
    before = progress(units)
    todo = [u for u in units if before[u.name][0] < before[u.name][1]]
    say(f"sweep: {len(spec.runs)} runs, {len(units)} units ({len(units) - len(todo)} already done, {len(todo)} "
        f"to run) into {out}")
    if dry_run:
        return SweepResult(units, {}, len(units) - len(todo), None, 0.0)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    results: dict[str, dict] = {}
    if todo:
        where = contextlib.nullcontext() if sequential else _client(client, scheduler, workers, host, dashboard, say)
        with where as c, Progress(units, progress_bar) as bar:
            waiting = {u.name for u in todo}
            bar.finished([{"name": u.name, "status": "done"} for u in units if u.name not in waiting])
            results = (run_here(todo, lock_wait, bar) if sequential else
                       run_dask(stack(todo, stack_size), c, lock_wait, retries, bar, log=say))
    seconds = time.perf_counter() - t0
    index = write_index(out, spec, units, results, progress(units), spec_path)
    return SweepResult(units, results, len(units) - len(todo), index, seconds)


def _check_options(workers, retries, lock_wait, stack_size) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be a positive integer, got {workers!r}; omit it for one per core")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"--retries must be an integer >= 0, got {retries!r}")
    if not lock_wait >= 0:
        raise ConfigError(f"--lock-wait must be a number of seconds >= 0, got {lock_wait!r}")
    if isinstance(stack_size, bool) or not isinstance(stack_size, int) or stack_size < 1:
        raise ConfigError(f"--stack must be a positive number of units per worker call, got {stack_size!r}")


@contextlib.contextmanager
def _client(client, scheduler: str | None, workers: int | None, host: str, dashboard: str | None, say):
    """The given client, a client of the scheduler at ``scheduler``, or a new LocalCluster's."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster  # noqa: PLC0415

    if scheduler:
        try:
            c = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ConfigError(f"cannot reach the dask scheduler at {scheduler!r} ({str(e).splitlines()[0]}); check "
                              "the address (tcp://HOST:PORT) or omit --scheduler to run on this machine") from None
        with c:
            n = len(c.nthreads())
            say(f"scheduler {scheduler}: {n} workers now; dashboard {c.dashboard_link}")
            yield c
        return
    n = workers or os.cpu_count() or 1
    show = bool(dashboard) and _has_bokeh()
    # without a dashboard the scheduler still serves a few HTTP routes (health): on the scheduler's host, any port
    http = {"dashboard_address": dashboard} if show else {"dashboard_address": None,
                                                           "scheduler_kwargs": {"dashboard_address": f"{host}:0"}}
    quiet = contextlib.ExitStack()  # entered only once the work is done: restores the loggers after the close
    with quiet, LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host=host, **http) as cluster, \
            Client(cluster) as c:
        link = c.dashboard_link if show else "off" if not dashboard else "none (pip install 'bokeh>=3.1' to get one)"
        say(f"LocalCluster: {n} workers x 1 thread, scheduler {cluster.scheduler_address}, dashboard {link}")
        yield c
        # the sweep is done (an error skips this: dask then closes as it does, warnings and all); its closing is no news
        with contextlib.suppress(Exception):  # only quiets: a worker lost meanwhile must not fail a done sweep
            c.run(_silence)
        quiet.enter_context(_quiet())
        c.close()
        cluster.sync(_stop_workers, cluster, WORKER_EXIT_S)


#: seconds a LocalCluster's worker process gets to exit once the sweep is done: a process that has trained takes
#: seconds to unload torch, more than the 4 s dask allows before it kills it with a warning
WORKER_EXIT_S = 60.0
# loggers of distributed that report a cluster's shutdown (killed, restarted or closed workers, closed streams)
_SHUTDOWN_LOGGERS = ("distributed.nanny", "distributed.worker", "distributed.core", "distributed.comm",
                     "distributed.batched", "distributed.scheduler", "distributed.client", "distributed.deploy")


async def _stop_workers(cluster, timeout: float) -> None:
    """Close the cluster's workers (nannies), waiting up to ``timeout`` seconds for each process to exit."""
    await asyncio.gather(*(w.close(timeout=timeout) for w in list(cluster.workers.values())))


def _silence() -> dict[str, int]:
    """Turn the warnings of distributed's shutdown loggers off (errors still show); their previous levels."""
    previous = {}
    for name in _SHUTDOWN_LOGGERS:
        logger = logging.getLogger(name)
        previous[name] = logger.level
        logger.setLevel(logging.ERROR)
    return previous


@contextlib.contextmanager
def _quiet():
    """:func:`_silence` in this process for the block (a worker about to close is silenced for good)."""
    previous = _silence()
    try:
        yield
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)


def _has_bokeh() -> bool:
    return importlib.util.find_spec("bokeh") is not None

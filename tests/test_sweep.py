"""Sweeps: the spec's expansion, the task graph, runs on a 2-worker LocalCluster equal to a sequential run,
idempotent re-runs, a worker killed mid-unit, locks that wait, and spec errors."""

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY_SWEEP as TINY

import rgnet
from rgnet.cli import main
from rgnet.errors import ConfigError, StoreError
from rgnet.store.writer import exclusive, lock_wait, plain_attr
from rgnet.sweep import load_spec, plan, stack, sweep
from rgnet.sweep.compare import sweeps_differ
from rgnet.sweep.plan import progress

ROOT = Path(__file__).resolve().parents[1]

TRANSFERS = """
[transfers]
levels = [1, 3]
tensors = false
"""


def write_spec(folder: Path, text: str, name: str = "spec.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))
    return folder / name


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_spec(tmp_path_factory.mktemp("spec"), TINY + TRANSFERS)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny) -> tuple[Path, list]:
    """The tiny sweep run sequentially in this process, in two invocations: without transfers, then all."""
    out = tmp_path_factory.mktemp("sequential")
    partial = write_spec(tmp_path_factory.mktemp("partial"), TINY)
    first = sweep(partial, out, sequential=True, progress_bar=False)
    second = sweep(tiny, out, sequential=True, progress_bar=False)
    return out, [first, second]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, Client(cluster) as c:
        yield c


# ------------------------------------------------------------------------------------------ spec and plan

def test_grid_expansion(tmp_path):
    spec = load_spec(write_spec(tmp_path, """
        [task]
        params = { num_samples = 600 }
        [train]
        steps = 10
        [sweep]
        seeds = "0-1"
        [tasks.default]
        name = "mnist1d"
        [tasks.shuffled]
        name = "mnist1d"
        params = { shuffle_seq = true }
        [tasks.teacher]
        name = "teacher"
        [grid]
        "train.lr" = [0.01, 0.003]
        "model.params.widths" = [[16], [8, 8]]
    """))
    assert len(spec.runs) == 3 * 2 * 2 * 2
    by = {(r.label, r.config.seed): r.config for r in spec.runs}
    cfg = by[("shuffled_lr=0.003_widths=[8,8]", 1)]
    # a member of the base task's name adds its parameters to the base's; another task starts from its defaults
    want = rgnet.RunConfig(task=rgnet.TaskConfig("mnist1d", {"num_samples": 600, "shuffle_seq": True}),
                           model=rgnet.ModelConfig("mlp", {"widths": [8, 8]}), train=rgnet.TrainConfig(steps=10,
                                                                                                  lr=0.003), seed=1)
    assert cfg.run_id == want.run_id
    assert by[("teacher_lr=0.01_widths=[16]", 0)].task.params["n_train"] == 4000   # teacher defaults, no num_samples
    assert len({r.config.run_id for r in spec.runs}) == len(spec.runs)
    assert all(r.file.endswith(f"-s{r.config.seed}-{r.config.run_id}.h5") for r in spec.runs)
    assert spec.runs[0].file == f"default_lr=0.01_widths=-16-s0-{spec.runs[0].config.run_id}.h5"
    # without named tasks a run is labelled by its task; a grid over the task adds its values once
    grid = load_spec(write_spec(tmp_path, """
        [task]
        params = { num_samples = 600 }
        [grid]
        "task.params.corr_noise_scale" = [0.3, 0.4]
    """, "grid.toml"))
    assert [r.label for r in grid.runs] == ["mnist1d_corr_noise_scale=0.3", "mnist1d_corr_noise_scale=0.4"]
    assert [r.config.task.params["corr_noise_scale"] for r in grid.runs] == [0.3, 0.4]
    plain = load_spec(write_spec(tmp_path, "[task]\nparams = { num_samples = 600 }\n", "plain.toml"))
    assert [r.label for r in plain.runs] == ["mnist1d(num_samples=600)"] and plain.runs[0].config.seed == 0


def test_models_and_transfer_pairs(tmp_path):
    text = """
        [sweep]
        seeds = [0, 1]
        [tasks.a]
        name = "teacher"
        [tasks.b]
        name = "teacher"
        params = { seed = 1 }
        [models.small]
        name = "mlp"
        params = { widths = [16] }
        [models.big]
        name = "lenet_300_100"
        [transfers]
        levels = [1]
    """
    spec = load_spec(write_spec(tmp_path, text))
    assert sorted({r.label for r in spec.runs}) == ["a_big", "a_small", "b_big", "b_small"]
    pairs = {(s.label, t.label, s.config.seed, t.config.seed) for s, t in spec.transfer_pairs()}
    # every ordered pair of labels whose runs share the model, same seed
    assert pairs == {(x, y, k, k) for x, y in [("a_small", "b_small"), ("b_small", "a_small"), ("a_big", "b_big"),
                                                ("b_big", "a_big")] for k in (0, 1)}
    every_seed = load_spec(write_spec(tmp_path, text + 'seeds = "all"\n', "all.toml")).transfer_pairs()
    assert len(every_seed) == 16
    only = load_spec(write_spec(tmp_path, text + 'pairs = [["a_big", "b_big"]]\n', "one.toml")).transfer_pairs()
    assert {(s.label, t.label) for s, t in only} == {("a_big", "b_big")} and len(only) == 2


def test_dependency_order_and_stacks(tiny, tmp_path):
    units = plan(load_spec(tiny), tmp_path)
    by = {u.name: u for u in units}
    assert [sum(u.kind == k for u in units) for k in ("trunk", "baselines", "transfer")] == [3, 3, 6]
    seen: set[str] = set()
    for u in units:   # every unit after the units it needs, in plan order
        assert set(u.after) <= seen and set(u.needs) <= seen | set(u.after), u.name
        seen.add(u.name)
    for u in units:
        if u.kind == "transfer":
            src = next(n for n in by if n.startswith("trunk ") and by[n].path == u.source)
            assert src in u.after and src in u.needs and f"trunk {u.name.split(' -> ')[1]}" in u.needs
    # the writers of one file form a chain: each comes after the previous one
    for path in {u.path for u in units}:
        chain = [u for u in units if u.path == path]
        assert [u.stage for u in chain] == list(range(len(chain))) == [0, 1, 2, 3]
        assert all(chain[i - 1].name in chain[i].after for i in range(1, len(chain)))
    groups = stack(units, 2)
    assert sorted(u.name for g in groups for u in g.units) == sorted(by)
    assert [[u.name for u in g.units] for g in groups if g.units[0].kind == "trunk"] == [
        ["trunk a-s0", "trunk b-s0"], ["trunk c-s0"]]
    keys, done = [g.key for g in groups], set()
    for i, g in enumerate(groups):   # only earlier groups are waited for: no cycles
        assert len(g.units) <= 2 and len({u.kind for u in g.units}) == 1
        assert all(keys.index(k) < i for k in g.after)
        if g.units[0].kind == "transfer":   # the transfers into one target, in the order of its chain
            assert len({u.path for u in g.units}) == 1
        else:
            assert len({u.path for u in g.units}) == len(g.units)
        for u in g.units:   # run in group order, every unit finds what it comes after done
            assert set(u.after) <= done
            done.add(u.name)
    assert [len(g.units) for g in stack(units)] == [1] * len(units)


def test_the_family_spec_is_the_scripts_experiment(tmp_path):
    spec = load_spec(ROOT / "scripts" / "transfer_family.toml")
    loader = importlib.util.spec_from_file_location("record_transfer_family", ROOT / "scripts" /
                                                    "record_transfer_family.py")
    script = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(script)
    from rgnet.imp.driver import normalise

    ids = {normalise(script.config(m, s, 3000)).run_id: (m, s) for m in script.FAMILY for s in range(5)}
    assert {r.config.run_id: (r.label, r.config.seed) for r in spec.runs} == ids
    units = plan(spec, tmp_path)
    assert [sum(u.kind == k for u in units) for k in ("trunk", "baselines", "transfer")] == [35, 35, 7 * 6 * 5]
    b = next(u for u in units if u.kind == "baselines")
    assert b.kinds == ("reinit", "random_prune_layerwise") and b.levels == (1, 2, 4, 6, 8, 10, 12)
    assert b.tensors is False and json_config(units[0])["store"]["tensors"] is True


def json_config(u):
    import json

    return json.loads(u.config)


BAD_SPECS = [
    ("[sweep]\nseeds = [0]\nseed = 3\n", "unknown key(s) ['seed'] in [sweep]"),
    ("seed = 3\n", "give seeds as [sweep] seeds"),
    ("[sweep]\nseeds = [-1]\n", "seeds must be a non-empty list of integers >= 0 or a range"),
    ("[tasks.x]\nname = \"nope\"\n", "unknown task 'nope'"),
    ("[tasks.x]\nname = \"teacher\"\nparams = { widht = 3 }\n", "unknown parameter(s) ['widht']"),
    ("[grid]\n\"lr\" = [1]\n", "must be the dotted path of a setting"),
    ("[grid]\n\"train.lrr\" = [0.1]\n", "unknown setting(s) ['lrr'] in [train]"),
    ("[baselines]\nkinds = [\"reinit\", \"shuffle\"]\n", "unknown kind(s) ['shuffle']"),
    ("[baselines]\nkinds = [\"reinit\"]\nlevels = [13]\n", "levels [13] are not IMP levels"),
    ("[transfers]\nlevels = [1]\n", "needs at least two tasks"),
    ("[tasks.a]\nname = \"mnist1d\"\n[tasks.b]\nname = \"teacher\"\n[transfers]\npairs = [[\"a\", \"z\"]]\n",
     "unknown run label(s) ['z']"),
    ("[tasks.a]\nname = \"mnist1d\"\n[tasks.b]\nname = \"teacher\"\n[transfers]\nalign = \"mirror\"\n",
     "align must be one or a list of none, inputs, inputs+units"),
    ("[tasks.a]\nname = \"mnist1d\"\n[tasks.b]\nname = \"teacher\"\n[transfers]\nmin_confidence = \"high\"\n",
     "min_confidence must be a number"),
    ("[tasks.a]\nname = \"teacher\"\n[tasks.b]\nname = \"teacher\"\n", "are the same run"),
    ("[sweep\n", "is not valid TOML"),
]


@pytest.mark.parametrize("text, needle", BAD_SPECS)
def test_spec_errors_are_one_sentence_and_exit_2(tmp_path, capsys, text, needle):
    path = write_spec(tmp_path, text)
    with pytest.raises(ConfigError, match=None) as e:
        load_spec(path)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert main(["sweep", str(path), "--dir", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rgnet: error: ") and len(err.strip().splitlines()) == 1 and needle in err
    assert not (tmp_path / "out").exists()


def test_refusals_before_any_training(tmp_path, tiny, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["sweep", str(tiny), "--dir", str(tmp_path / "file"), "--quiet"]) == 2
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "index.nc").write_text("mine")
    assert main(["sweep", str(tiny), "--dir", str(tmp_path / "d"), "--quiet"]) == 2
    assert main(["sweep", str(tmp_path / "none.toml"), "--dir", str(tmp_path / "e"), "--quiet"]) == 2
    assert main(["sweep", str(tiny), "--dir", str(tmp_path / "e"), "--workers", "0", "--quiet"]) == 2
    assert main(["sweep", str(tiny), "--dir", str(tmp_path / "e"), "--workers", "2", "--sequential", "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 5 and "is a file" in err[0] and "not an rgnet sweep index" in err[1]
    assert "does not exist" in err[2] and "--workers must be a positive integer" in err[3]
    assert "--sequential and --workers do not combine" in err[4] and not (tmp_path / "e").exists()
    assert (tmp_path / "d" / "index.nc").read_text() == "mine" and list((tmp_path / "d").iterdir()) == [
        tmp_path / "d" / "index.nc"]


# ------------------------------------------------------------------------------------------ running

def test_sequential_reruns_only_what_is_missing(reference, tiny, capsys):
    out, (first, second) = reference
    assert not first.failed and len(first.results) == 6          # trunks and baselines
    assert second.skipped_done == 6 and sorted(second.results) == sorted(
        u.name for u in second.units if u.kind == "transfer")   # the second run adds only the transfers
    state = progress(second.units)
    assert all(d == t > 0 for d, t in state.values())
    assert main(["sweep", str(tiny), "--dir", str(out), "--dry-run", "--quiet"]) == 0
    plan_lines = capsys.readouterr().out.splitlines()
    assert len(plan_lines) == 12 and all("[done]" in line for line in plan_lines)
    assert "transfer b-s0 -> a-s0  [done]  after: baselines a-s0, trunk b-s0" in plan_lines


@pytest.mark.slow   # a dask cluster of worker processes
def test_two_workers_equal_the_sequential_run_and_rerun_nothing(reference, tiny, client, tmp_path):
    seq, _ = reference
    out = tmp_path / "dask"
    result = sweep(tiny, out, client=client, progress_bar=False)
    assert not result.failed and len(result.results) == 12
    assert sweeps_differ(seq, out) == []                            # bit for bit, every variable and tensor
    assert len({r["pid"] for r in result.results.values()}) == 2    # both workers trained
    # dependency order and one writer per file, from the units' wall-clock spans
    r = result.results
    for u in result.units:
        assert all(r[d]["end"] <= r[u.name]["start"] for d in u.after), u.name
    for path in {u.path for u in result.units}:
        spans = sorted((r[u.name]["start"], r[u.name]["end"]) for u in result.units if u.path == path)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # the index: every run complete; open_runs and the verdicts take it
    import xarray as xr

    with xr.open_dataset(result.index) as ix:
        assert list(ix.status.values) == ["complete"] * 3 and list(ix.label.values) == ["a", "b", "c"]
        assert (ix.unit_status.values == "done").all() and ix.attrs["rgnet_sweep_index"] == 1
        assert list(ix.task_seed.values) == [0, 1, 2]
    runs = rgnet.open_runs(result.index)
    assert runs.sizes["run"] == 3 and set(runs.path.values) == {str(p) for p in out.glob("*.h5")}
    m = rgnet.transfer_matrix(result.index)
    assert list(m.source.values) == ["a", "b", "c"] and int(m.n_transfers.where(m.source != m.target).sum()) == 12
    xr.testing.assert_identical(m.drop_attrs(), rgnet.transfer_matrix(seq / "index.nc").drop_attrs())
    xr.testing.assert_equal(rgnet.winning_tickets(result.index).drop_vars("path"),
                            rgnet.winning_tickets(seq / "index.nc").drop_vars("path"))
    # idempotent: the same spec again runs nothing and touches no run file
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "index.nc"}
    again = sweep(tiny, out, client=client, progress_bar=False)
    assert again.results == {} and again.skipped_done == 12
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "index.nc"} == before


@pytest.mark.slow   # a dask cluster of worker processes
def test_stacked_trunks_train_as_one_model_and_equal_the_sequential_run(reference, tiny, client, tmp_path):
    seq, _ = reference
    out = tmp_path / "stacked"
    result = sweep(tiny, out, client=client, progress_bar=False, stack_size=2)
    assert not result.failed and sweeps_differ(seq, out) == []      # bit for bit, except wall times
    trunks = {u.name: u.path for u in result.units if u.kind == "trunk"}
    seconds = {}
    for name in ("trunk a-s0", "trunk b-s0"):                        # one group of two trunks (see stack())
        with h5py.File(trunks[name], "r") as f:
            seconds[name] = f["train_seconds"][:]
    # the engine shares a stack's wall time equally among its runs: equal times mean one stacked model
    np.testing.assert_array_equal(seconds["trunk a-s0"], seconds["trunk b-s0"])
    # the two transfers into a (from b and from c, levels 1 and 3) are one group: one stack of four branch levels
    groups = [g for g in stack(result.units, 2) if g.units[0].kind == "transfer" and len(g.units) == 2]
    assert groups
    path = groups[0].units[0].path
    with h5py.File(path, "r") as f:
        times = [f[f"branches/{name}/train_seconds"][[1, 3]] for name in f["branches"]
                 if name.startswith("transfer")]
    assert len(times) == 2
    np.testing.assert_array_equal(times[0], times[1])
    assert times[0][0] == times[0][1]


def _kill_a_worker_mid_trunk(out: Path, client, killed: dict, stop: threading.Event) -> None:
    """Kill (SIGKILL) the worker holding a trunk's lock once that trunk has a complete level."""
    workers = set(client.run(os.getpid).values())
    while not stop.is_set():
        for lock in out.glob("*.h5.lock"):
            run = lock.with_name(lock.name[:-5])
            try:
                holder = lock.read_text().split()
                with h5py.File(run, "r") as f:
                    n = int(plain_attr(f.attrs["levels_complete"]))
                    seconds = f["train_seconds"][:n].copy()
            except (OSError, KeyError, ValueError):
                continue
            if 1 <= n < 4 and len(holder) >= 2 and int(holder[1]) in workers:
                os.kill(int(holder[1]), signal.SIGKILL)
                killed.update(pid=int(holder[1]), run=run, levels=n, seconds=seconds)
                return
        time.sleep(0.005)


@pytest.mark.slow   # a dask cluster of worker processes
def test_a_worker_killed_mid_unit_loses_at_most_its_level(reference, tiny, client, tmp_path):
    seq, _ = reference
    out = tmp_path / "killed"
    out.mkdir()
    killed: dict = {}
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_worker_mid_trunk, args=(out, client, killed, stop))
    killer.start()
    try:
        result = sweep(tiny, out, client=client, progress_bar=False, stack_size=2)
    finally:
        stop.set()
        killer.join()
    assert killed, "the sweep finished before a worker could be killed in the middle of a trunk"
    assert not result.failed and all(r["pid"] != killed["pid"] for r in result.results.values())
    with h5py.File(killed["run"], "r") as f:   # the levels complete before the kill were not trained again
        assert int(plain_attr(f.attrs["levels_complete"])) == 4
        np.testing.assert_array_equal(f["train_seconds"][: killed["levels"]], killed["seconds"])
    assert sweeps_differ(seq, out) == []
    assert not list(out.glob("*.lock")) and not list(out.rglob("*.partial"))


# ------------------------------------------------------------------------------------------ failures, locks, readers

def test_a_failed_unit_holds_back_only_the_units_that_need_it(tmp_path, capsys):
    no_baselines = TINY.split("[baselines]")[0]
    spec = write_spec(tmp_path, no_baselines.replace("n_test = 200 }", "n_test = 200, input_dim = 20 }", 1) + TRANSFERS)
    code = main(["sweep", str(spec), "--dir", str(tmp_path / "out"), "--sequential", "--quiet"])
    assert code == 3
    import xarray as xr

    with xr.open_dataset(tmp_path / "out" / "index.nc") as ix:
        status = dict(zip(ix.unit.values, ix.unit_status.values))
        assert {u for u, s in status.items() if s == "failed"} == {   # a has 20 inputs, b and c 40
            "transfer a-s0 -> b-s0", "transfer a-s0 -> c-s0", "transfer b-s0 -> a-s0", "transfer c-s0 -> a-s0"}
        # the transfer after a failed one into the same file still ran
        assert status["transfer c-s0 -> b-s0"] == "done" and status["transfer b-s0 -> c-s0"] == "done"
        assert list(ix.status.values) == ["failed"] * 3
    assert "input shapes differ" in capsys.readouterr().err


def test_an_unexpected_error_is_retried_then_reported(tmp_path, monkeypatch):
    """An exception that is not an rgnet error (a lost file system, say) is retried; if it persists, the unit
    is reported as an error and the units after it as skipped; the sweep still writes its index."""
    from distributed import Client, LocalCluster

    import rgnet.sweep.run as run

    calls: list[str] = []

    def broken(unit):
        calls.append(unit.name)
        raise OSError("disk gone")

    monkeypatch.setattr(run, "_train", broken)
    spec = write_spec(tmp_path, TINY)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, Client(cluster) as c:
        result = sweep(spec, tmp_path / "out", client=c, retries=1, progress_bar=False)
    assert sorted(calls) == sorted(2 * ["trunk a-s0", "trunk b-s0", "trunk c-s0"])   # tried twice each
    status = {k: (r["status"], r["error"]) for k, r in result.results.items()}
    assert status["trunk a-s0"] == ("error", "OSError: disk gone")
    assert status["baselines a-s0"][0] == "skipped" and "trunk-a-s0" in status["baselines a-s0"][1]
    import xarray as xr

    with xr.open_dataset(result.index) as ix:
        assert list(ix.status.values) == ["failed"] * 3


HOLD = ("import sys, time; from pathlib import Path; from rgnet.store.writer import exclusive\n"
        "with exclusive(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(float(sys.argv[2]))\n")


def _holder(path: Path, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_lock_waits_for_its_holder_and_recovers_from_a_dead_one(tmp_path):
    path = tmp_path / "run.h5"
    p = _holder(path, 60)
    try:
        with pytest.raises(StoreError, match=f"another process is recording .*pid {p.pid}"):
            with exclusive(path):     # the default (rgnet record): fail at once
                pass
        t0 = time.monotonic()
        with pytest.raises(StoreError, match="did not finish within 0.3 s"):
            with lock_wait(0.3), exclusive(path):
                pass
        assert time.monotonic() - t0 >= 0.3
        p.kill()                       # SIGKILL: the holder leaves its lock file behind
        p.wait()
        assert path.with_name("run.h5.lock").exists()
        with exclusive(path, wait=5):  # ... which is simply locked again
            pass
    finally:
        p.kill()
        p.wait()
    p = _holder(path, 1.0)            # a live holder that finishes: the waiter gets the lock after it
    t0 = time.monotonic()
    with exclusive(path, wait=30):
        waited = time.monotonic() - t0
    p.wait()
    assert 0.2 < waited < 30 and not path.with_name("run.h5.lock").exists()


def test_reading_a_sweep_index_does_not_import_torch(reference):
    out, _ = reference
    code = ("import sys, rgnet; rgnet.open_runs(sys.argv[1]); rgnet.transfer_matrix(sys.argv[1]); "
            "rgnet.winning_tickets([sys.argv[1]]); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code, str(out / "index.nc")], check=True)

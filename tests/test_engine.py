"""The batched engine: a run trained in a stack is the run trained alone (bit for bit on one CPU thread),
per run in everything (data, order, masks, pruning, divergence), and recorded into its own resumable file."""

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import small_config

import rgnet
from rgnet.cli import main
from rgnet.engine import next_masks, stackable, train_stack
from rgnet.engine.loop import DeviceData, train_level
from rgnet.engine.masks import Masker
from rgnet.engine.seeds import stream_seed
from rgnet.imp.driver import build, normalise, numpy_state, record_many
from rgnet.tasks import load_task

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # bitwise equality holds per thread count


def _runs(cfgs, density=0.6):
    """Models, data and random masks of the runs ``cfgs`` (one task load per distinct task)."""
    tasks, out = {}, []
    g = torch.Generator().manual_seed(5)
    for cfg in cfgs:
        cfg = normalise(cfg)
        key = json.dumps(dataclasses.asdict(cfg.task), sort_keys=True)
        if key not in tasks:
            task = load_task(cfg.task)
            tasks[key] = (task, DeviceData.from_task(task, CPU))
        task, data = tasks[key]
        model, layers, output = build(cfg, task, CPU)
        masks = {n: torch.rand(w.shape, generator=g) < density for n, w in layers.items()}
        out.append((cfg, model, layers, output, data, masks, stream_seed(cfg.seed, "data", 1, "trunk")))
    return out


def _alone(run, **kw):
    cfg, model, layers, _, data, masks, stream = run
    result, captured = train_level(model, Masker(layers, masks), data, cfg.train, stream, **kw)
    return result, captured, numpy_state(model)


def _stacked(runs, **kw):
    states = [numpy_state(r[1]) for r in runs]
    return train_stack(runs[0][1], states, [r[5] for r in runs], [r[4] for r in runs], runs[0][0].train,
                       [r[6] for r in runs], batched=True, **kw)


def _assert_same(alone, stacked):
    result, captured, state = alone
    assert result.stop == stacked.result.stop and result.diverged_at == stacked.result.diverged_at
    for name, curve in result.curves.items():
        np.testing.assert_array_equal(curve, stacked.result.curves[name], err_msg=name)
    for name, v in state.items():
        np.testing.assert_array_equal(v, stacked.trained[name], err_msg=name)
    if captured is not None:
        for name, v in captured.items():
            assert torch.equal(v, stacked.captured[name]), name


def test_batch_order_of_a_stack_is_each_runs_own_order():
    from rgnet.engine.loop import BatchOrder, batch_indices

    streams = [stream_seed(s, "data", 2, "trunk") for s in range(3)]
    order = BatchOrder(100, 30, torch.tensor(streams))  # 3 batches per epoch: steps 0-6 span 3 epochs
    stacked = torch.stack([order.batch(i) for i in range(7)], 1)
    for k, stream in enumerate(streams):
        assert torch.equal(stacked[k], batch_indices(100, 30, 0, 7, stream))


def test_one_run_in_the_engine_is_train_level_bit_for_bit():
    cfg = small_config(train={"steps": 90, "eval_every": 30})
    runs = _runs([cfg])
    stacked = _stacked(runs, capture_at=30)  # before train_level trains the same module in place
    assert stackable(runs[0][1])
    _assert_same(_alone(runs[0], capture_at=30), stacked[0])


def test_runs_of_different_family_members_in_one_stack_equal_each_alone():
    """Seeds, masks and tasks (MNIST-1D with different correlated noise) differ per run; each run is itself."""
    cfg = small_config(train={"steps": 90, "eval_every": 30})
    cfgs = [cfg, cfg.replace(seed=1), cfg.replace(seed=2, task={"params": {"corr_noise_scale": 0.5}})]
    runs = _runs(cfgs)
    assert runs[0][4] is runs[1][4] and runs[2][4] is not runs[0][4]
    stacked = _stacked(runs, start=30, capture_at=60)  # a late-rewound level: from iteration 30
    for run, s in zip(runs, stacked):
        _assert_same(_alone(run, start=30, capture_at=60), s)
    assert not np.array_equal(stacked[0].trained["fc1.weight"], stacked[1].trained["fc1.weight"])


def test_a_diverging_run_stops_alone_and_the_others_go_on():
    cfg = small_config(train={"steps": 60, "eval_every": 20})
    runs = _runs([cfg, cfg.replace(seed=1)])
    states = [numpy_state(r[1]) for r in runs]
    states[1] = {k: v * np.float32(1e30) for k, v in states[1].items()}  # logits overflow: inf loss at once
    out = train_stack(runs[0][1], states, [r[5] for r in runs], [r[4] for r in runs], cfg.train,
                      [r[6] for r in runs])
    assert out[1].result.diverged_at == 0 and np.isnan(out[1].result.curves["val_loss"][1:]).all()
    assert out[0].result.diverged_at is None
    _assert_same(_alone(runs[0]), out[0])


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_pruning_never_mixes_runs(scope):
    """Run 1's weights are 1000x run 0's: thresholds pooled over runs would prune only run 0."""
    from rgnet.engine.masks import magnitude_prune

    cfg = small_config(prune={"scope": scope})
    runs = _runs([cfg, cfg.replace(seed=1)], density=1.0)
    states = [numpy_state(r[1]) for r in runs]
    states[1] = {k: v * np.float32(1000) for k, v in states[0].items()}
    zero = dataclasses.replace(cfg.train, steps=0, eval_every=1)  # evaluate, do not train
    out = train_stack(runs[0][1], states, [r[5] for r in runs], [r[4] for r in runs], zero, [r[6] for r in runs])
    masks = next_masks(out, [r[5] for r in runs], [r[3] for r in runs], [cfg.prune, cfg.prune])
    alone = magnitude_prune({n: torch.from_numpy(states[0][f"{n}.weight"]) for n in masks[0]}, runs[0][5],
                            runs[0][3], cfg.prune)
    total = sum(m.numel() for m in alone.values())
    assert sum(int(m.sum()) for m in alone.values()) < total
    for m in masks:  # same weights up to scale: the same masks as run 0 pruned alone
        for n in alone:
            assert torch.equal(m[n], alone[n]), n


def test_a_model_that_does_not_stack_trains_one_run_after_another():
    cfg = small_config(model={"name": "cnn1d", "params": {}}, train={"steps": 6, "eval_every": 3})
    runs = _runs([cfg, cfg.replace(seed=1)])
    assert not stackable(runs[0][1])
    states = [numpy_state(r[1]) for r in runs]
    alone = [_alone(run) for run in runs]  # trains the modules in place; the stack starts from ``states``
    stacked = train_stack(runs[0][1], states, [r[5] for r in runs], [r[4] for r in runs], cfg.train,
                          [r[6] for r in runs])
    for a, s in zip(alone, stacked):
        _assert_same(a, s)


def _datasets(path):
    out = {}
    files = [Path(path), *sorted(Path(f"{path}.tensors").rglob("*.nc"))]
    for f in files:
        with h5py.File(f, "r") as h:
            names: list[str] = []
            h.visititems(lambda name, obj, found=names: found.append(name) if isinstance(obj, h5py.Dataset) else None)
            out.update({f"{f.name}:{name}": h[name][()] for name in names})
    return out


def _assert_same_files(a, b):
    """Every variable of run files ``a`` and ``b`` and their tensor files, except the wall time."""
    da, db = _datasets(a), _datasets(b)
    assert {k.replace(Path(a).name, "") for k in da} == {k.replace(Path(b).name, "") for k in db}
    for k, v in da.items():
        if k.endswith("train_seconds"):
            continue
        w = db[k.replace(Path(a).name, Path(b).name, 1)]
        assert np.array_equal(v, w, equal_nan=np.asarray(v).dtype.kind == "f"), k


def test_seeds_recorded_as_a_stack_equal_each_seed_recorded_alone(tmp_path):
    cfg = small_config()
    paths = record_many([cfg.replace(seed=s) for s in range(3)], [tmp_path / f"s{s}.h5" for s in range(3)],
                        progress=False)
    alone = rgnet.record(cfg.replace(seed=1), tmp_path / "alone.h5", progress=False)
    _assert_same_files(alone, paths[1])
    assert rgnet.open_run(paths[2]).sizes["level"] == 4


def test_one_run_of_a_stack_resumes_after_a_cut_and_after_an_interrupt(tmp_path, monkeypatch):
    from conftest import record_interrupted

    cfg = small_config()
    refs = [rgnet.record(cfg.replace(seed=s), tmp_path / f"ref{s}.h5", progress=False) for s in range(3)]
    cut = rgnet.record(cfg, tmp_path / "s0.h5", progress=False)
    with h5py.File(cut, "r+") as f:  # as if the last two levels had never been committed
        f.attrs["levels_complete"] = np.int32(2)
    record_interrupted(cfg.replace(seed=1), tmp_path / "s1.h5", monkeypatch, stop_at=1)  # level 0 only
    paths = record_many([cfg.replace(seed=s) for s in range(3)], [tmp_path / f"s{s}.h5" for s in range(3)],
                        stack=3, progress=False)
    for ref, path in zip(refs, paths):
        _assert_same_files(ref, path)


@pytest.mark.slow  # ~25 s on 2 loaded cores, most of it creating the 10 branch groups in the store
def test_baselines_and_a_transfer_trained_as_stacks_equal_them_one_at_a_time(tmp_path):
    from rgnet.imp.transfer import transfer
    from rgnet.store.writer import copy_run

    cfg = small_config(train={"steps": 20, "eval_every": 10}, prune={"levels": 1})
    source = rgnet.record(cfg, tmp_path / "source.h5", progress=False)
    target = rgnet.record(cfg.replace(seed=1), tmp_path / "target.h5", progress=False)  # another seed
    together, alone = copy_run(target, tmp_path / "together.h5"), copy_run(target, tmp_path / "alone.h5")
    for path, stack in ((together, None), (alone, 1)):  # 4 kinds in one stack, or one by one
        rgnet.run_baselines(path, progress=False, stack=stack)
        transfer(source, path, progress=False, stack=stack)
    _assert_same_files(alone, together)
    assert len(rgnet.open_tree(together).children["branches"].children) == 5


@pytest.mark.slow  # ~30 s: three runs recorded alone, a stack killed mid-level, resumed
def test_a_stack_killed_mid_level_resumes_to_the_files_recorded_alone(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    cfg = small_config(train={"steps": 600, "eval_every": 200})
    cfgs, paths = [cfg.replace(seed=s) for s in range(3)], [tmp_path / f"s{s}.h5" for s in range(3)]
    refs = [rgnet.record(c, tmp_path / f"ref{s}.h5", progress=False) for s, c in enumerate(cfgs)]
    code = ("import sys, json, rgnet; cfgs = [rgnet.RunConfig.from_json(c) for c in json.loads(sys.argv[1])]; "
            "rgnet.record_many(cfgs, json.loads(sys.argv[2]), progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps([c.to_json() for c in cfgs]),
                             json.dumps([str(p) for p in paths])])
    t0 = time.time()
    while not all(p.exists() and rgnet.open_run(p).sizes["level"] >= 1 for p in paths):
        assert proc.poll() is None and time.time() - t0 < 120, "the stack ended or stalled before level 1"
        time.sleep(0.05)
    time.sleep(0.2)  # into level 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert all(1 <= rgnet.open_run(p).sizes["level"] < 4 for p in paths)
    record_many(cfgs, paths, progress=False)
    for ref, path in zip(refs, paths):
        _assert_same_files(ref, path)


@pytest.mark.parametrize("args, words", [
    (["--seeds", "a-b"], "--seeds 'a-b' must look like"),
    (["--seeds", "0-3", "--out", "run.h5"], "put {seed} in it"),
    (["--seeds", "0-1", "--seed", "2"], "either --seed or --seeds"),
    (["--stack", "4"], "give --seeds too"),
    (["--seeds", "0-1", "--stack", "0"], "--stack must be a positive"),
])
def test_bad_seeds_and_stack_are_one_sentence_and_exit_2(args, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["record", "--steps", "5", "--levels", "1", "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_cli_records_one_file_per_seed(tmp_path, capsys):
    out = str(tmp_path / "s{seed}.h5")
    assert main(["record", "--seeds", "0,2", "--stack", "1", "--widths", "16", "--steps", "20", "--eval-every", "10",
                 "--levels", "1", "--out", out, "--quiet"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "s0.h5"), str(tmp_path / "s2.h5")]
    for s in (0, 2):
        assert json.loads(rgnet.open_run(tmp_path / f"s{s}.h5").attrs["config"])["seed"] == s

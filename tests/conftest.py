import pytest

from rgnet import ModelConfig, PruneConfig, RunConfig, StoreConfig, TrainConfig


def small_config(**sections) -> RunConfig:
    """A run that takes about a second: MNIST-1D, a small MLP, 3 levels of 60 steps."""
    cfg = RunConfig(model=ModelConfig("mlp", {"widths": [32, 32]}),
                    train=TrainConfig(steps=60, eval_every=20, batch_size=50, lr=3e-3),
                    prune=PruneConfig(levels=3, fraction=0.3), store=StoreConfig(bins=16))
    return cfg.replace(**sections) if sections else cfg


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: tiny models run fastest so (no OpenMP spin-waits on a busy machine), and
    bitwise comparisons hold per thread count (``rgnet.record`` uses one thread for small models)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def small_cfg() -> RunConfig:
    return small_config()


def tensors(path, kind: str, group: str | None = None) -> dict:
    """Tensors of a run file as numpy arrays by parameter (or layer) name; per-level kinds on the full level
    axis of complete levels (levels a branch has not trained are zeros)."""
    import numpy as np

    import rgnet

    ds = rgnet.open_tensors(path, kind, group or None)
    if "level" in ds.dims:
        n = int(rgnet.open_run(path).sizes["level"])
        ds = ds.reindex(level=np.arange(n), fill_value=0)
    return {k: v.values for k, v in ds.data_vars.items()}


def record_interrupted(cfg, path, monkeypatch, stop_at: int, device: str = "cpu") -> None:
    """Record ``cfg`` into ``path`` and interrupt it (KeyboardInterrupt) when level ``stop_at`` starts training:
    levels ``0 .. stop_at - 1`` are complete."""
    import rgnet
    import rgnet.imp.driver as driver

    calls, real = [], driver.train_stack

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) == stop_at + 1:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(driver, "train_stack", interrupted)
    try:
        rgnet.record(cfg, path, progress=False, device=device)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the run finished before it was interrupted")
    finally:
        monkeypatch.setattr(driver, "train_stack", real)


# three small teacher tasks, one seed: 3 trunks, 3 baseline units, 6 transfers (two into every file)
TINY_SWEEP = """
[model]
params = { widths = [32, 32] }
[train]
steps = 100
eval_every = 50
batch_size = 50
lr = 3e-3
[prune]
levels = 3
fraction = 0.3
[store]
bins = 16
[sweep]
seeds = [0]
[tasks.a]
name = "teacher"
params = { n_train = 400, n_val = 100, n_test = 200 }
[tasks.b]
name = "teacher"
params = { n_train = 400, n_val = 100, n_test = 200, seed = 1 }
[tasks.c]
name = "teacher"
params = { n_train = 400, n_val = 100, n_test = 200, seed = 2 }
[baselines]
kinds = ["reinit"]
levels = [1, 3]
tensors = false
"""

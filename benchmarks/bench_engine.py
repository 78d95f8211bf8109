"""Batched engine speed: model-steps/s of K runs trained as one stacked model, in one process, against
rgnet's single-run loop (``train_level``) and the loop most public LTH code uses (DataLoader +
``torch.nn.utils.prune`` + Adam, from ``bench_train_loop.py``). Same MNIST-1D model, mask density 0.5,
batch 100, the same number of steps for every loop, each measured level evaluated at its start and end (the
DataLoader loop does not evaluate).

Also prints a plain matmul's GFLOP/s on the same threads, and the engine's GFLOP/s (the model's matmul
FLOPs per step: forward, weight gradients, input gradients below the first layer), so the distance to the
FLOP limit is visible.

    python benchmarks/bench_engine.py [--ks 1,4,16,64,256] [--threads 1] [--steps 200] [--models mlp]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import rgnet
from rgnet.engine import train_stack
from rgnet.engine.loop import DeviceData, train_level
from rgnet.engine.masks import Masker
from rgnet.engine.seeds import stream_seed
from rgnet.imp.driver import build, normalise, numpy_state
from rgnet.tasks import load_task

sys.path.insert(0, str(Path(__file__).parent))
from bench_train_loop import reference_loop  # noqa: E402  (the DataLoader + prune loop, shared)

MODELS = {"mlp": ("mlp", {"widths": [100, 100]}), "lenet_300_100": ("lenet_300_100", {}), "cnn1d": ("cnn1d", {})}


def matmul_gflops(dev: torch.device, seconds: float = 1.0, n: int = 512) -> float:
    """GFLOP/s of a plain float32 ``n x n`` matmul on ``dev`` (the current threads on CPU): the practical limit."""
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    a @ b
    sync()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            a @ b
        sync()
        reps += 10
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def step_flops(model: torch.nn.Module, batch: int) -> float:
    """Matmul FLOPs of one training step of an MLP: forward, weight gradients, input gradients of layers > 1
    (NaN for models with convolutions)."""
    if any(isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d)) for m in model.modules()):
        return float("nan")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    sizes = [m.in_features * m.out_features for m in linears]
    return 2 * batch * (2 * sum(sizes) + sum(sizes[1:]))


def steps_per_second(fn, steps: int) -> float:
    """Steps per second of ``fn(steps)``."""
    t0 = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - t0)


def bench_model(name: str, ks: list[int], dev: torch.device, steps: int, gemm: float, repeats: int) -> None:
    """Print the table of one model: the two single-run loops, then the engine at each K."""
    model_name, params = MODELS[name]
    cfg = normalise(rgnet.RunConfig(model=rgnet.ModelConfig(model_name, params)))
    task = load_task(cfg.task)
    data = DeviceData.from_task(task, dev)
    model, layers, _ = build(cfg, task, dev)
    g = torch.Generator().manual_seed(1)
    mask = {n: (torch.rand(w.shape, generator=g) < 0.5).to(dev) for n, w in layers.items()}
    state = numpy_state(model)
    flops = step_flops(model, cfg.train.batch_size)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def level_cfg(n):
        return cfg.replace(train={"steps": n, "eval_every": n}).train

    def single(n):
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        train_level(model, Masker(layers, mask), data, level_cfg(n), stream_seed(0, "bench"))
        sync()

    def reference(n):
        reference_loop(build(cfg, task, torch.device("cpu"))[0], {k: m.cpu() for k, m in mask.items()}, task,
                       n, cfg.train.batch_size, cfg.train.lr)

    def stacked(n, k):
        train_stack(model, [state] * k, [mask] * k, [data] * k, level_cfg(n),
                    [stream_seed(s, "bench") for s in range(k)], batched=True)
        sync()

    runs = {"ref": reference, "one": single} if dev.type == "cpu" else {"one": single}
    for k in ks:
        runs[k] = lambda n, k=k: stacked(n, k)
    rates: dict = {}
    for _ in range(repeats):  # the best of a few rounds, each round over all loops: a busy machine slows all alike
        for key, fn in runs.items():
            rates[key] = max(rates.get(key, 0.0), steps_per_second(fn, steps) * (key if isinstance(key, int) else 1))
    ref, one = rates.get("ref", float("nan")), rates["one"]
    print(f"\n{name}: {flops / 1e6:.1f} MFLOP per step (batch {cfg.train.batch_size}, dense count)")
    print(f"  DataLoader + torch.nn.utils.prune loop: {ref:9.0f} steps/s")
    print(f"  rgnet train_level (one run):            {one:9.0f} steps/s   ({one / ref:.2f}x the DataLoader loop)")
    print(f"  {'K':>5} {'model-steps/s':>14} {'vs one run':>11} {'vs DataLoader':>14} {'GFLOP/s':>8} "
          f"{'of matmul':>9}")
    for k in ks:
        rate = rates[k]
        gf = rate * flops / 1e9
        print(f"  {k:5d} {rate:14.0f} {rate / one:10.2f}x {rate / ref:13.2f}x {gf:8.1f} {gf / gemm:8.0%}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ks", default="1,4,16,64,256", help="stack sizes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200, help="steps per measured level, the same for every loop")
    ap.add_argument("--models", default="mlp", help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="rounds over all loops; the best of them is shown")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    gemm = matmul_gflops(dev, n=512 if dev.type == "cpu" else 4096)
    print(f"torch {torch.__version__}, {a.threads} thread(s), device {dev}; plain matmul: {gemm:.1f} GFLOP/s")
    for name in a.models.split(","):
        bench_model(name, [int(k) for k in a.ks.split(",")], dev, a.steps, gemm, a.repeats)


if __name__ == "__main__":
    main()

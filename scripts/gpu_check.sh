#!/usr/bin/env bash
# GPU check for the device machine (torch with CUDA preinstalled, no network): the GPU tests, the default
# job on cuda vs. cpu, and training throughput (one run; K runs stacked by rgnet.engine). Wheels of the missing
# pure-Python packages travel in .whl/:
#   echo /.whl/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl h5netcdf==1.8.2 mnist1d==0.0.2.post1
# then run `bash scripts/gpu_check.sh` on the device machine with .whl carried along.
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
out=${OUT:-/tmp/out}; mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider 2>&1 | tail -5
for dev in cuda cpu; do
  /usr/bin/time -f "$dev wall %e s" python3 -m rgnet.cli record --device $dev --levels 3 --out "$out/default-$dev.h5" --quiet
  python3 -m rgnet.cli info "$out/default-$dev.h5"
done
python3 - <<'PY'
import time, torch, rgnet
from rgnet.engine.masks import Masker, full_masks
from rgnet.engine.seeds import generator
from rgnet.engine.loop import DeviceData, train_level
from rgnet.models import build_model, prunable_layers
from rgnet.tasks import load_task
task = load_task(rgnet.TaskConfig())
for name, params in (("mlp", {"widths": [100, 100]}), ("cnn1d", {})):
    for dev in ("cuda", "cpu"):
        torch.manual_seed(0)
        mc = rgnet.ModelConfig(name, params)
        model = build_model(mc, task.in_shape, 10).to(dev)
        layers = prunable_layers(model, mc)
        data = DeviceData.from_task(task, torch.device(dev))
        cfg = rgnet.TrainConfig(steps=3000, eval_every=3000)
        for rep in range(2):
            t = time.perf_counter()
            train_level(model, Masker(layers, full_masks(layers)), data, cfg, generator(0, "x"))
            if dev == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t
        print(f"{name:6s} {dev:4s} {3000 / dt:8.0f} steps/s (batch 100, one model)")
PY
# the batched engine (rgnet.engine): one run vs K stacked runs of the default MLP, model-steps/s on the GPU
python3 benchmarks/bench_engine.py --device cuda --ks 1,64,1024 --steps 300 --repeats 1
